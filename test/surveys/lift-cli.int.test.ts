/**
 * `tidemark surveys report TARGET` end to end on the sandbox (issue 13 point 3): the CLI (in process) runs
 * `apply` → `sync run` → `surveys run` (which records invitations and holdout decisions), the outcome
 * events arrive through a later sync, and the report's counts match the people the test put in each
 * group (the holdout hash is deterministic) and when it delivered their next order. Sends happen at 2027
 * clocks: the Qualtrics emulator refuses an expiration in its own (real) past.
 */
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { inHoldout } from '../../reconciler/surveys/holdout.ts';
import { computeLift } from '../../reconciler/surveys/lift.ts';
import { DAY, applyAt, at, makeSurveyProject, seedQualtrics, surveysRun, syncAt, tm, useSurveySandbox, writeDeliveries, type Delivery, type Person, type TargetOptions } from '../support/survey-fixture.ts';

let sandbox: RunningSandbox;
useSurveySandbox(1313, (s) => (sandbox = s));

const T = '2027-01-12T15:00:00.000Z';
const TARGET: TargetOptions = { name: 'delivery_check', survey: 'SV_del1v3ryCh3ck0', audience: 'recent_buyers', after: '2d', before: '5d', holdout: '50%', response_window: '48h' };
const ids = Array.from({ length: 24 }, (_, i) => `p${String(i).padStart(2, '0')}`);
const person = (id: string): Person => ({ id, email: `${id}@example.com`, order_count: 1, accepts_marketing: false });
const delivered = (id: string, when: string, n: number): Delivery => ({ order_id: `${id}-o${n}`, customer_id: id, delivered_at: when });

interface ReportJson {
  environment: string;
  target: { mode: string };
  mode: string;
  survey_target: string;
  outcome: { event: string; within: string; label: string };
  invited: { decided: number; open: number; closed: number; reached: number; rate: number | null };
  holdout: { decided: number; open: number; closed: number; reached: number; rate: number | null };
  status: string;
  difference: number | null;
  ci: { lower: number; upper: number } | null;
  relative_lift: number | null;
}

describe('surveys report on the sandbox', () => {
  it('counts the invited and the held out from the run, their next delivery from a later sync, open windows apart', async () => {
    const first = ids.map((id) => delivered(id, at(T, -3 * DAY), 0));
    const { dir } = await makeSurveyProject({ people: ids.map(person), deliveries: first, targets: [TARGET] });
    await appendFile(path.join(dir, 'specs', 'surveys.yaml'), 'outcome: { event: order_delivered, within: 10d, label: "another delivery within 10 days" }\n');
    seedQualtrics(sandbox, [TARGET]);
    await applyAt(dir, sandbox, T);
    await syncAt(dir, sandbox, T);
    const run = await surveysRun(dir, sandbox, T);
    const held = ids.filter((id) => inHoldout(id, TARGET.name, 0.5));
    const invited = ids.filter((id) => !held.includes(id));
    expect(held.length).toBeGreaterThan(2);
    expect(invited.length).toBeGreaterThan(2);
    expect(run.targets[0]!.send).toMatchObject({ invited: invited.length, held_out: held.length });

    // Five days on, every window (10 days from T) is still open: nothing to compare yet.
    const early = await tm(dir, sandbox, 'surveys', 'report', TARGET.name, '--now', at(T, 5 * DAY));
    expect(early.code).toBe(0);
    expect(early.stdout).toContain(`${invited.length} invited and ${held.length} held out still inside their 10-day window: not counted yet.`);
    expect(early.stdout).toContain('No comparison yet');

    // p00–p09 have their next order delivered 4 days after the invitation (inside the window), p10–p14
    // 11 days after (outside it), p15–p23 none. Synced at T + 12d, when every window has closed.
    const reached = ids.slice(0, 10);
    const later = [...reached.map((id) => delivered(id, at(T, 4 * DAY), 1)), ...ids.slice(10, 15).map((id) => delivered(id, at(T, 11 * DAY), 1))];
    await writeDeliveries(dir, [...first, ...later]);
    const T2 = at(T, 12 * DAY);
    await syncAt(dir, sandbox, T2);
    const r = await tm(dir, sandbox, 'surveys', 'report', TARGET.name, '--now', T2, '--format', 'json');
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as ReportJson;
    const x1 = invited.filter((id) => reached.includes(id)).length;
    const x0 = held.filter((id) => reached.includes(id)).length;
    const expected = computeLift({ n: invited.length, x: x1 }, { n: held.length, x: x0 });
    expect(report).toMatchObject({
      environment: 'test',
      mode: 'report',
      survey_target: 'delivery_check',
      outcome: { event: 'order_delivered', within: '10d', label: 'another delivery within 10 days' },
      invited: { decided: invited.length, open: 0, closed: invited.length, reached: x1 },
      holdout: { decided: held.length, open: 0, closed: held.length, reached: x0 },
      status: 'ok',
    });
    expect(report.difference).toBeCloseTo(expected.difference!, 12);
    expect(report.ci!.lower).toBeCloseTo(expected.ci!.lower, 12);
    expect(report.ci!.upper).toBeCloseTo(expected.ci!.upper, 12);
    // Counts only.
    expect(r.stdout).not.toMatch(/p\d\d/);

    const md = await tm(dir, sandbox, 'surveys', 'report', TARGET.name, '--now', T2, '--format', 'markdown');
    expect(md.stdout).toContain(`| invited | ${invited.length} | ${x1} |`);
    expect(md.stdout).toContain(`| held out | ${held.length} | ${x0} |`);
    expect(md.stdout).toContain("Newcombe's hybrid score interval");

    const unknown = await tm(dir, sandbox, 'surveys', 'report', 'delivery_chek', '--now', T2);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no SurveyTarget named "delivery_chek" in the specs. Did you mean "delivery_check"?');
  });
});
