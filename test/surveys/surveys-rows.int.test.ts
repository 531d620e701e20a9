/**
 * Row-level outcomes of a send on the sandbox: rows Qualtrics' import fails (its per-row report) are
 * counted as failed, never recorded as invited, and invited by the next run; people without an address
 * Qualtrics could send to are counted (`no_email`) and never imported; addresses reach Qualtrics as the
 * Workspace normalises them. (An address that is not one never gets this far: the sync rejects its row.)
 */
import { describe, expect, it } from 'vitest';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import {
  DAY,
  DIRECTORY_ID,
  HOUR,
  SURVEY,
  applyAt,
  at,
  distributionsOf,
  makeSurveyProject,
  seedQualtrics,
  surveysPlan,
  surveysRun,
  syncAt,
  useSurveySandbox,
  type TargetOptions,
} from '../support/survey-fixture.ts';

let sandbox: RunningSandbox;
useSurveySandbox(777, (s) => (sandbox = s));

const T = '2027-01-12T15:00:00.000Z';
const target: TargetOptions = { name: 'rows', survey: SURVEY.delivery, audience: 'recent_buyers', after: '2d', before: '5d', response_window: '48h' };

describe('rows of a send', () => {
  it('records only the rows Qualtrics imported; the failed ones are invited by the next run, once', async () => {
    const ids = Array.from({ length: 60 }, (_, i) => `r${String(i).padStart(2, '0')}`);
    const { dir } = await makeSurveyProject({
      people: ids.map((id) => ({ id, email: `${id}@example.com`, order_count: 1 })),
      deliveries: ids.map((id) => ({ order_id: `${id}-1`, customer_id: id, delivered_at: at(T, -3 * DAY) })),
      targets: [target],
    });
    seedQualtrics(sandbox, [target]);
    await applyAt(dir, sandbox, T);
    await syncAt(dir, sandbox, T);

    sandbox.faults.set({ service: 'qualtrics', pathPattern: '/transactioncontacts$', methods: ['POST'], partialFailureRate: 0.3 });
    const first = await surveysRun(dir, sandbox, T);
    sandbox.faults.clear();
    const send = first.targets[0]!.send!;
    expect(send.failed).toBeGreaterThan(0);
    expect(send.invited + send.failed).toBe(ids.length);
    const [d1] = distributionsOf(sandbox, SURVEY.delivery);
    expect(d1!.people.length).toBe(send.invited);

    // The failed rows were not recorded: the next run finds them eligible and invites exactly them.
    const plan = await surveysPlan(dir, sandbox, at(T, HOUR));
    expect(plan.rows).toMatchObject({ already_invited: send.invited, eligible: send.failed });
    await surveysRun(dir, sandbox, at(T, HOUR));
    const [, d2] = distributionsOf(sandbox, SURVEY.delivery);
    expect(new Set(d2!.people).size).toBe(send.failed);
    expect([...d1!.people, ...d2!.people].sort()).toEqual(ids);
  }, 60_000);

  it('counts people without a sendable email and never imports them; sends addresses as the Workspace normalises them', async () => {
    const people = [
      { id: 'ok', email: 'ok@example.com' },
      { id: 'padded', email: '  Ana.Lopez@Example.COM ' },
      { id: 'none' },
    ];
    const { dir } = await makeSurveyProject({
      people,
      deliveries: people.map((p) => ({ order_id: `${p.id}-1`, customer_id: p.id, delivered_at: at(T, -3 * DAY) })),
      targets: [target],
    });
    seedQualtrics(sandbox, [target]);
    await applyAt(dir, sandbox, T);
    await syncAt(dir, sandbox, T);
    const run = await surveysRun(dir, sandbox, T);
    expect(run.targets[0]!.eligibility).toMatchObject({ in_window: 3, no_email: 1, eligible: 2 });
    expect(distributionsOf(sandbox, SURVEY.delivery).map((d) => d.people.sort())).toEqual([['ok', 'padded']]);
    const emails = Object.fromEntries(sandbox.qualtrics.directoryContacts(DIRECTORY_ID).map((c) => [c.extRef, c.email]));
    expect(emails).toEqual({ ok: 'ok@example.com', padded: 'ana.lopez@example.com' });
  }, 60_000);
});
