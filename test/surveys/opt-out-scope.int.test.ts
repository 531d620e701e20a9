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
  // BUG (reported, not fixed): `optedOutLoader` (composition/surveys-job.ts) reads only the target's own
  // mailing list, so a directory-wide opt-out is seen only by targets whose list already holds the
  // contact. Here `second` counts u as eligible (opted out 0), imports u into its list, and asks for a
  // distribution that Qualtrics refuses (400 "has no recipients": its only contact opted out), so
  // `surveys run` exits 1 and the send stays `imported`, failing again on every run until its response
  // window closes. With other people in the same send, the distribution goes out and u is recorded as
  // invited (a cap slot taken) although Qualtrics blocked the email. `it.fails` until fixed.
  it.fails('counts them as opted out for a target whose list never held them, and does not import them', async () => {
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
});
