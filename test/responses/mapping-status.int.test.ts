/**
 * `tidemark status` watches the response mapping (issue 13 point 4), on the sandbox through the CLI: a
 * survey whose question CX removed, answers to a choice no reason code names (read by `responses pull`),
 * and codes no published segment uses. Each is an alert (exit 3), in text, JSON and GitHub annotations,
 * naming targets, questions and recodes, never a person.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import {
  DAY,
  PAYLOAD,
  SEGMENTS_YAML,
  SURVEY,
  applyAt,
  at,
  makeSurveyProject,
  seedQualtrics,
  surveysRun,
  syncAt,
  tm,
  useSurveySandbox,
  type Person,
  type TargetOptions,
} from '../support/survey-fixture.ts';

let sandbox: RunningSandbox;
useSurveySandbox(4141, (s) => (sandbox = s));

const T = '2027-01-12T15:00:00.000Z';
const CHECK: TargetOptions = { name: 'delivery_check', survey: SURVEY.delivery, audience: 'recent_buyers', after: '2d', before: '5d', response_window: '48h', priority: 1 };
const NPS: TargetOptions = { name: 'nps', survey: SURVEY.nps, audience: 'marketing_ok', after: '6d', before: '10d', response_window: '48h', priority: 2 };

interface StatusJson {
  responses: Array<{ kind: string; target: string; message: string }>;
}

describe('status alerts on the response mapping', () => {
  it('raises a removed question, answers no code names and codes nothing uses; clears the ones the specs fix', async () => {
    const ps: Person[] = Array.from({ length: 30 }, (_, i) => ({ id: `m${String(i).padStart(3, '0')}`, email: `m${i}@example.com`, order_count: 1, accepts_marketing: i % 2 === 0 }));
    const { dir } = await makeSurveyProject({ people: ps, deliveries: ps.map((p) => ({ order_id: `${p.id}-1`, customer_id: p.id, delivered_at: at(T, -3 * DAY) })), targets: [CHECK, NPS] });
    // CX's surveys: delivery_check's question offers a third choice no code names; nps's has no QID1 at all.
    sandbox.qualtrics.seedReferencedSurveys([
      { id: SURVEY.delivery, name: 'delivery', questions: [{ id: 'QID1', text: 'How was it?', type: 'single', choices: { '1': 'Good', '2': 'Bad', '3': 'Meh' } }], embeddedData: [...PAYLOAD] },
      { id: SURVEY.nps, name: 'nps', questions: [{ id: 'QID7', text: 'Anything else?', type: 'single', choices: { '1': 'Yes', '2': 'No' } }], embeddedData: [...PAYLOAD] },
    ]);
    seedQualtrics(sandbox, [CHECK, NPS]);
    await applyAt(dir, sandbox, T);
    await syncAt(dir, sandbox, T);
    await surveysRun(dir, sandbox, T);
    // Some recipients answered "Meh" (3): the pull counts them unmapped and writes nothing for them.
    const meh = sandbox.qualtrics.responses(SURVEY.delivery).filter((r) => r.answers['QID1'] === '3').length;
    expect(meh).toBeGreaterThan(0);
    const pulled = await tm(dir, sandbox, 'responses', 'pull', '--format', 'json', '--now', at(T, 2 * DAY));
    expect(pulled.code, pulled.stderr).toBe(0);

    const status = async (...args: string[]) => tm(dir, sandbox, 'status', '--now', at(T, 2 * DAY), ...args);
    const json = await status('--format', 'json');
    expect(json.code).toBe(3);
    const alerts = (JSON.parse(json.stdout) as StatusJson).responses;
    expect(alerts.map((a) => [a.kind, a.target])).toEqual([
      ['unmapped_answers', 'delivery_check'],
      ['code_feeds_nothing', 'delivery_check'],
      ['question_missing', 'nps'],
      ['code_feeds_nothing', 'nps'],
    ]);
    expect(alerts[0]!.message).toBe(`${meh} response${meh === 1 ? '' : 's'} to target delivery_check in the last 30 days answered QID1 with a choice no reason code names (answer "3"): add the code to responses.reason_codes`);
    expect(alerts[2]!.message).toMatch(/^survey SV_n3tPr0m0t3r000 has no question QID1 any more \(CX changed the survey\)/);

    const text = await status();
    expect(text.code).toBe(3);
    expect(text.stdout).toMatch(/✗ responses of nps: question_missing: survey SV_n3tPr0m0t3r000 has no question QID1/);
    const gh = await status('--format', 'github');
    expect(gh.stdout).toMatch(/^::warning title=tidemark responses unmapped_answers \(delivery_check\)::/m);
    for (const out of [json.stdout, text.stdout, gh.stdout]) expect(out).not.toMatch(/m0\d\d/);

    // The specs catch up: "3" gets a code, a published segment uses the codes, nps reads QID7.
    const surveys = await readFile(path.join(dir, 'specs', 'surveys.yaml'), 'utf8');
    const [check, nps] = surveys.split('---\n');
    await writeFile(path.join(dir, 'specs', 'surveys.yaml'), [check!.replace('reason_codes: { "1": good, "2": bad }', 'reason_codes: { "1": good, "2": bad, "3": meh }'), nps!.replace('question: QID1', 'question: QID7')].join('---\n'));
    await writeFile(
      path.join(dir, 'specs', 'segments.yaml'),
      `${SEGMENTS_YAML}---\nkind: Segment\nname: answered\nconditions:\n  attribute: { field: survey_reason, op: exists }\npublish: { customerio_segment: true }\n`,
    );
    await applyAt(dir, sandbox, at(T, 2 * DAY));
    const after = await status('--format', 'json');
    expect((JSON.parse(after.stdout) as StatusJson).responses).toEqual([]);
  }, 120_000);
});
