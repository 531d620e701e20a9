/**
 * Opt-outs that Qualtrics reports outside the target's own mailing list (issue 12 point 1: "Qualtrics
 * does not report them unsubscribed, opted out or bounced"). A person who opted out of the whole
 * directory through one target's invitation is opted out for every target; the second target's list has
 * never held them, so only the directory knows.
 */
import { describe, expect, it } from 'vitest';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import {
  DAY,
  DIRECTORY_ID,
  SURVEY,
  applyAt,
  at,
  distributionsOf,
  makeSurveyProject,
  qualtricsApi,
  seedQualtrics,
  surveysPlan,
  surveysRun,
  syncAt,
  useSurveySandbox,
  type TargetOptions,
} from '../support/survey-fixture.ts';

let sandbox: RunningSandbox;
useSurveySandbox(4242, (s) => (sandbox = s));

const T = '2027-01-12T15:00:00.000Z';

describe('opted out of the whole directory', () => {
  // The second target's list has never held u, so only the first target's list shows the directory-wide
  // opt-out: tidemark reads every list it manages in the directory.
  it('counts them as opted out for a target whose list never held them, and does not import them', async () => {
    const targets: TargetOptions[] = [
      { name: 'first', survey: SURVEY.delivery, audience: 'recent_buyers', after: '2d', before: '5d', priority: 1, response_window: '48h' },
      { name: 'second', survey: SURVEY.repeat, audience: 'recent_buyers', after: '8d', before: '20d', priority: 2, response_window: '48h', frequency_cap: '{ max: 1, per: 30d, scope: this_target }' },
    ];
    const deliveries = [{ order_id: 'u-1', customer_id: 'u', delivered_at: at(T, -3 * DAY) }];
    const { dir } = await makeSurveyProject({ people: [{ id: 'u', email: 'u@example.com', order_count: 1, accepts_marketing: true }], deliveries, targets });
    seedQualtrics(sandbox, targets);
    await applyAt(dir, sandbox, T);
    await syncAt(dir, sandbox, T);
    await surveysRun(dir, sandbox, T);
    expect(distributionsOf(sandbox, SURVEY.delivery).map((d) => d.people)).toEqual([['u']]);

    // u opts out of everything Qualtrics sends from this directory.
    const u = sandbox.qualtrics.directoryContacts(DIRECTORY_ID).find((c) => c.extRef === 'u')!;
    await qualtricsApi(sandbox, 'PUT', `/directories/${DIRECTORY_ID}/contacts/${u.contactId}`, { unsubscribed: true });

    // A week later (ten days after the delivery) u is in the second target's window; its cap is its own,
    // so the first target's invitation does not cap u.
    const T2 = at(T, 7 * DAY);
    await syncAt(dir, sandbox, T2);
    expect((await surveysPlan(dir, sandbox, T2)).second).toMatchObject({ in_window: 1, opted_out: 1, eligible: 0 });
    await surveysRun(dir, sandbox, T2);
    expect(distributionsOf(sandbox, SURVEY.repeat)).toEqual([]);
  }, 60_000);

  it('abandons a send Qualtrics refuses because everyone in it opted out before tidemark could see it, and reads them as opted out next run', async () => {
    const targets: TargetOptions[] = [{ name: 'first', survey: SURVEY.delivery, audience: 'recent_buyers', after: '2d', before: '5d', priority: 1, response_window: '48h' }];
    const deliveries = [{ order_id: 'v-1', customer_id: 'v', delivered_at: at(T, -3 * DAY) }];
    const { dir } = await makeSurveyProject({ people: [{ id: 'v', email: 'v@example.com', order_count: 1, accepts_marketing: true }], deliveries, targets });
    seedQualtrics(sandbox, targets);
    // v opted out of the directory through another team's survey: a contact in no list tidemark manages.
    await qualtricsApi(sandbox, 'POST', `/directories/${DIRECTORY_ID}/contacts`, { extRef: 'v', email: 'v@example.com', unsubscribed: true });
    await applyAt(dir, sandbox, T);
    await syncAt(dir, sandbox, T);
    const run = await surveysRun(dir, sandbox, T, 1);
    expect(run.ok).toBe(false);
    const first = run.targets.find((t) => t.target === 'first')!;
    expect(first.send?.phase).toBe('abandoned');
    expect(first.send?.note).toMatch(/Qualtrics refused the distribution: none of its 1 contacts can be emailed/);
    expect(distributionsOf(sandbox, SURVEY.delivery)).toEqual([]);
    // Abandoned, not retried: the next run reads v from the list as opted out, and sends nothing.
    const T2 = at(T, 3_600_000);
    expect((await surveysPlan(dir, sandbox, T2)).first).toMatchObject({ in_window: 1, opted_out: 1, eligible: 0 });
    const next = await surveysRun(dir, sandbox, T2);
    expect(next.ok).toBe(true);
    expect(next.resumed).toEqual([]);
  }, 60_000);
});
