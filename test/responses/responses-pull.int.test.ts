/**
 * Responses back, end to end on the sandbox through the CLI (issue 13 points 1 and 5): a survey sent by
 * `surveys run` is answered by the sandbox's recipients (and by a few responses the test seeds), then
 * `responses pull` writes the reason codes to Customer.io, the reason-code segment fills, and the winback
 * audience built on it changes in `audiences plan`. Also: an interrupted pull (the batch endpoint applies
 * and then drops the connection) resumes without writing anything twice; unknown people and late answers
 * are counted, never written; the same response read twice is written once.
 *
 * Every command runs at an explicit `--now` in 2027 (the Qualtrics emulator refuses an expiration in its
 * own real past); `responses pull` exports up to `--now`, which is also when the sandbox's drawn answers
 * become visible.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { QualtricsClient, qualtricsConfigFromEnv } from '../../reconciler/providers/qualtrics/client.ts';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import type { SurveyResponse } from '../../reconciler/sandbox/qualtrics/state.ts';
import {
  DAY,
  FIELDS_YAML,
  HOUR,
  SEGMENTS_YAML,
  SURVEY,
  applyAt,
  at,
  distributionsOf,
  makeSurveyProject,
  resetSurveySandbox,
  seedQualtrics,
  surveysRun,
  syncAt,
  targetYaml,
  tm,
  useSurveySandbox,
  type Delivery,
  type Person,
  type TargetOptions,
} from '../support/survey-fixture.ts';

let sandbox: RunningSandbox;
useSurveySandbox(1313, (s) => (sandbox = s));

/** Tuesday 10:00 in New York. */
const T = '2027-01-12T15:00:00.000Z';

const TARGET: TargetOptions = { name: 'delivery_check', survey: SURVEY.delivery, audience: 'recent_buyers', after: '2d', before: '5d', response_window: '48h' };

/** The reason-code segment and the winback audience routed by it. */
const REASON_SEGMENTS = `---
kind: Segment
name: said_bad
conditions:
  attribute: { field: survey_reason, op: in, value: [bad] }
---
kind: Segment
name: winback_offer
description: Recent buyers whose answer was "bad" get the winback offer.
conditions:
  all:
    - segment: recent_buyers
    - segment: said_bad
`;

interface PullJson {
  ok: boolean;
  target: { mode: string; label: string };
  targets: Array<{ target: string; fetched: number; written: number; duplicate: number; unknown_person: number; late: number; unmapped: number; no_answer: number; not_written: number; retried: number }>;
  surveys: Array<{ survey: string; status: string; note?: string; cursor_before: string | null; cursor_after: string | null }>;
}

async function pull(dir: string, now: string, expected = 0): Promise<PullJson> {
  const r = await tm(dir, sandbox, 'responses', 'pull', '--format', 'json', '--now', now);
  if (r.code !== expected) throw new Error(`responses pull exited ${r.code} (expected ${expected})\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout) as PullJson;
}

async function members(dir: string, now: string): Promise<Record<string, number>> {
  const r = await tm(dir, sandbox, 'audiences', 'plan', '--format', 'json', '--now', now);
  if (r.code !== 0) throw new Error(`audiences plan exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  const plan = JSON.parse(r.stdout) as { segments: Array<{ segment: string; members: number }> };
  return Object.fromEntries(plan.segments.map((s) => [s.segment, s.members]));
}

const people = (n: number): Person[] => Array.from({ length: n }, (_, i) => ({ id: `p${String(i + 1).padStart(3, '0')}`, email: `p${i + 1}@example.com`, order_count: 1, accepts_marketing: false }));

/** A project whose one target writes the reason code as an attribute and an event; sent at T. */
async function sentSurvey(n: number): Promise<{ dir: string; invited: string[] }> {
  const ps = people(n);
  const deliveries: Delivery[] = ps.map((p) => ({ order_id: `${p.id}-o1`, customer_id: p.id, delivered_at: at(T, -3 * DAY) }));
  const project = await makeSurveyProject({ people: ps, deliveries, targets: [TARGET] });
  const dir = project.dir;
  await writeFile(path.join(dir, 'specs', 'fields.yaml'), `${FIELDS_YAML}  survey_answered: { owner: qualtrics, stage: engagement }\n`);
  await writeFile(path.join(dir, 'specs', 'segments.yaml'), SEGMENTS_YAML + REASON_SEGMENTS);
  await writeFile(path.join(dir, 'specs', 'surveys.yaml'), targetYaml(TARGET).replace('write: { attribute: survey_reason }', 'write: { attribute: survey_reason, event: survey_answered }'));
  seedQualtrics(sandbox, [TARGET]);
  await applyAt(dir, sandbox, T);
  await syncAt(dir, sandbox, T);
  const run = await surveysRun(dir, sandbox, T);
  expect(run.targets[0]?.status).toBe('sent');
  const [d] = distributionsOf(sandbox, SURVEY.delivery);
  return { dir, invited: [...d!.people].sort() };
}

const CODES: Record<string, string> = { '1': 'good', '2': 'bad' };
const answerOf = (r: SurveyResponse) => (typeof r.answers['QID1'] === 'string' ? (r.answers['QID1'] as string) : undefined);

/** What the pull should make of the sandbox's responses recorded before `now` (by extRef). */
function expected(invited: readonly string[], now: string, lateAfter: number) {
  const visible = sandbox.qualtrics.responses(SURVEY.delivery).filter((r) => Date.parse(r.recordedDate) < Date.parse(now));
  const write = visible.filter((r) => invited.includes(r.externalDataReference ?? '') && Date.parse(r.recordedDate) <= lateAfter && answerOf(r) && CODES[answerOf(r)!]);
  return { visible, write };
}

const eventsOf = (id: string) => sandbox.customerio.eventsFor(id).filter((e) => e.name === 'survey_answered');

describe('responses pull on the sandbox', () => {
  it('writes the reason codes to Customer.io, fills the reason-code segment and changes the winback audience; unknown and late answers are counted, never written; a response read twice is written once', async () => {
    const { dir, invited } = await sentSurvey(40);
    expect(invited).toHaveLength(40);
    const drawn = sandbox.qualtrics.responses(SURVEY.delivery);
    // The sandbox's recipients answered: a share of them, within the link's life, after the send.
    expect(drawn.length).toBeGreaterThan(5);
    expect(drawn.length).toBeLessThan(30);
    for (const r of drawn) {
      expect(Date.parse(r.recordedDate)).toBeGreaterThan(Date.parse(T));
      expect(Date.parse(r.recordedDate)).toBeLessThanOrEqual(Date.parse(T) + 48 * HOUR);
    }
    const silent = invited.filter((id) => !drawn.some((r) => r.externalDataReference === id));
    // Seeded: an answer from a contact tidemark never invited, and a late one (49h after the invitation).
    sandbox.qualtrics.seedResponses(SURVEY.delivery, [
      { recordedDate: at(T, 5 * HOUR), recipient: { externalDataReference: 'stranger' }, values: { QID1: 2 } },
      { recordedDate: at(T, 49 * HOUR), recipient: { externalDataReference: silent[0]! }, values: { QID1: 2 } },
    ]);

    const t1 = at(T, DAY);
    const before = await members(dir, t1);
    expect(before['winback_offer']).toBe(0);

    const first = await pull(dir, t1);
    const e1 = expected(invited, t1, Date.parse(T) + 48 * HOUR);
    const c1 = first.targets[0]!;
    expect(first.ok).toBe(true);
    expect(first.target.mode).toBe('live');
    expect(c1).toMatchObject({ target: 'delivery_check', fetched: e1.visible.length, written: e1.write.length, duplicate: 0, unknown_person: 1, late: 0, not_written: 0 });
    expect(c1.written + c1.unknown_person + c1.unmapped + c1.no_answer).toBe(c1.fetched);

    for (const r of e1.write) {
      const id = r.externalDataReference!;
      expect(sandbox.customerio.getPerson(id)?.attributes['survey_reason']).toBe(CODES[answerOf(r)!]);
      const ev = eventsOf(id);
      expect(ev).toHaveLength(1);
      expect(ev[0]!.data).toMatchObject({ reason_code: CODES[answerOf(r)!], survey: SURVEY.delivery, target: 'delivery_check' });
    }
    expect(sandbox.customerio.getPerson('stranger')).toBeUndefined();

    const bad = new Set(e1.write.filter((r) => answerOf(r) === '2').map((r) => r.externalDataReference));
    const after = await members(dir, t1);
    expect(after['said_bad']).toBe(bad.size);
    expect(after['winback_offer']).toBe(bad.size);
    expect(bad.size).toBeGreaterThan(0);

    // Three days on: the rest of the answers, and the late one, counted and not written.
    const t3 = at(T, 3 * DAY);
    const second = await pull(dir, t3);
    const e3 = expected(invited, t3, Date.parse(T) + 48 * HOUR);
    const c3 = second.targets[0]!;
    expect(c3.late).toBe(1);
    // The responses at the cursor's second come again (startDate is inclusive): duplicates, not writes.
    expect(c3.written).toBe(e3.write.length - e1.write.length);
    expect(c3.fetched).toBe(e3.visible.length - e1.visible.length + c3.duplicate);
    expect(sandbox.customerio.getPerson(silent[0]!)?.attributes['survey_reason']).toBeUndefined();
    expect(eventsOf(silent[0]!)).toHaveLength(0);

    // The same responses read again: every one a duplicate, nothing sent.
    sandbox.resetRequestCounts();
    const third = await pull(dir, t3);
    expect(third.targets[0]).toMatchObject({ written: 0, fetched: third.targets[0]!.duplicate });
    expect(sandbox.requestCounts()['POST /api/v2/batch'] ?? 0).toBe(0);
    for (const r of e3.write) expect(eventsOf(r.externalDataReference!)).toHaveLength(1);

    const final = await members(dir, t3);
    const badAll = new Set(e3.write.filter((r) => answerOf(r) === '2').map((r) => r.externalDataReference));
    expect(final['winback_offer']).toBe(badAll.size);

    // Text output: counts and where it ran, never a person id.
    const text = await tm(dir, sandbox, 'responses', 'pull', '--now', t3);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^Responses pulled for test on /m);
    expect(text.stdout).toMatch(/delivery_check: fetched \d+, written 0, duplicate \d+; not written: unknown person 0, late 0, unmapped answer 0, no answer 0/);
    expect(text.stdout).not.toMatch(/p0\d\d|stranger/);
  });

  it('draws the same answers on every run, visible only once their time has come', async () => {
    const draw = async () => {
      await sentSurvey(30);
      return sandbox.qualtrics.responses(SURVEY.delivery).map((r) => ({ id: r.responseId, ext: r.externalDataReference, at: r.recordedDate, answers: r.answers, drawn: r.drawn }));
    };
    const first = await draw();
    resetSurveySandbox(sandbox);
    expect(await draw()).toEqual(first);
    expect(first.every((r) => r.drawn)).toBe(true);
    // Without an endDate an export reads the emulator's own clock (today), before any of these 2027 answers.
    const client = new QualtricsClient(qualtricsConfigFromEnv(sandbox.env));
    const none = await client.exportResponses(SURVEY.delivery, { format: 'json' }, { pollIntervalMs: 1 });
    expect(none.format === 'json' ? none.responses : ['csv']).toEqual([]);
    const some = await client.exportResponses(SURVEY.delivery, { format: 'json', endDate: at(T, DAY).replace(/\.\d{3}Z$/, 'Z') }, { pollIntervalMs: 1 });
    expect(some.format === 'json' ? some.responses.length : -1).toBe(first.filter((r) => Date.parse(r.at) < Date.parse(T) + DAY).length);
  });

  it('resumes an interrupted pull from its cursor without writing anything twice', async () => {
    const { dir, invited } = await sentSurvey(30);
    const t2 = at(T, 2 * DAY);
    const { write } = expected(invited, t2, Date.parse(T) + 48 * HOUR);
    expect(write.length).toBeGreaterThan(3);

    // Customer.io applies every batch and the answer never arrives: nothing can be counted as written.
    sandbox.faults.set({ service: 'track', pathPattern: '^/api/v2/batch$', dropAfterApplyRate: 1 });
    const broken = await pull(dir, t2, 1);
    expect(broken.ok).toBe(false);
    expect(broken.targets[0]).toMatchObject({ written: 0, not_written: write.length });
    expect(broken.surveys[0]?.note).toMatch(/not acknowledged/);

    // Half the entries refused (207): some written, the others wait.
    sandbox.faults.set({ service: 'track', pathPattern: '^/api/v2/batch$', partialFailureRate: 0.5 });
    const partial = await pull(dir, t2, 1);
    expect(partial.targets[0]!.retried).toBe(partial.targets[0]!.written);

    sandbox.faults.clear();
    const resumed = await pull(dir, t2);
    expect(resumed.ok).toBe(true);
    expect(resumed.targets[0]!.not_written).toBe(0);
    // Every answer written once over the three runs: one event each (the resent ones carried the same id).
    expect(partial.targets[0]!.written + resumed.targets[0]!.retried).toBe(write.length);
    for (const r of write) {
      expect(eventsOf(r.externalDataReference!)).toHaveLength(1);
      expect(sandbox.customerio.getPerson(r.externalDataReference!)?.attributes['survey_reason']).toBe(CODES[answerOf(r)!]);
    }
    const again = await pull(dir, t2);
    expect(again.targets[0]).toMatchObject({ written: 0, not_written: 0 });
  });

  it('writes a response that reached the export after a later one did (recorded before the cursor, within the overlap)', async () => {
    const { dir, invited } = await sentSurvey(30);
    const t1 = at(T, DAY);
    const first = await pull(dir, t1);
    const cursor = Date.parse(first.surveys[0]!.cursor_after!);
    const drawn = sandbox.qualtrics.responses(SURVEY.delivery);
    const silent = invited.filter((id) => !drawn.some((r) => r.externalDataReference === id));
    // Recorded ten minutes before the newest response the first pull read, but indexed only now.
    sandbox.qualtrics.seedResponses(SURVEY.delivery, [{ recordedDate: new Date(cursor - 10 * 60_000).toISOString(), recipient: { externalDataReference: silent[0]! }, values: { QID1: 2 } }]);
    const second = await pull(dir, at(t1, HOUR));
    expect(second.targets[0]!.written).toBeGreaterThanOrEqual(1);
    expect(sandbox.customerio.getPerson(silent[0]!)?.attributes['survey_reason']).toBe('bad');
    expect(eventsOf(silent[0]!)).toHaveLength(1);
  });
});
