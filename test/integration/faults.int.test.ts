/**
 * Apply under the failures a real service produces, injected by the sandbox: 429 storms and 5xx bursts are
 * ridden out, and a create whose answer is lost is neither retried blindly nor duplicated by the next run.
 */
import { describe, expect, it } from 'vitest';
import { applyChanges, makePlan } from '../../reconciler/composition/use-cases.ts';
import type { FaultConfig } from '../../reconciler/sandbox/common/faults.ts';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { DECLARED, expectExactlyDeclared, pending, PLAN, remoteNames, useSandboxAndProject, withWs } from '../support/integration-fixture.ts';

let sandbox: RunningSandbox;
let dir: string;

useSandboxAndProject(53, { sandbox: (s) => (sandbox = s), dir: (d) => (dir = d) });

/** Faults left when the plan was made, before `during` replaced them. */
let leftAfterPlanning: FaultConfig | undefined;

/** Applies a fresh plan; `during` faults are switched on after the plan is made, so they hit the writes. */
const applyWith = (during?: FaultConfig) =>
  withWs(dir, sandbox, (ws) =>
    applyChanges(ws, {
      options: PLAN,
      who: 'faults test',
      confirm: async () => {
        leftAfterPlanning = sandbox.faults.get();
        if (during) sandbox.faults.set(during);
        return true;
      },
    }),
  );

describe('faults', () => {
  it('converges in one apply through a 5xx burst on the refresh and a 429 storm on the writes', async () => {
    sandbox.faults.set({ burst5xx: 4, storm429: { count: 3, retryAfterSeconds: 0 } });
    const outcome = await applyWith({ storm429: { count: 6, retryAfterSeconds: 0 } });
    expect(outcome.status).toBe('done');
    if (outcome.status !== 'done') return;
    expect(outcome.result.results.map((r) => [r.address, r.status])).toEqual(Object.keys(DECLARED).map((a) => [a, 'applied']));
    // Every injected fault was met (and survived), none is left over.
    expect(leftAfterPlanning).toEqual({ burst5xx: 0, storm429: { count: 0, retryAfterSeconds: 0 } });
    expect(sandbox.faults.get()).toEqual({ storm429: { count: 0, retryAfterSeconds: 0 } });
    sandbox.faults.clear();
    expectExactlyDeclared(sandbox);
    await withWs(dir, sandbox, async (ws) => expect(pending(await makePlan(ws, PLAN))).toEqual([]));
  });

  it('does not resend a create answered with a 5xx, and the next run creates it exactly once', async () => {
    const outcome = await applyWith({ burst5xx: 1, service: 'app', pathPattern: '^/v1/segments$' });
    expect(outcome.status).toBe('done');
    if (outcome.status !== 'done') return;
    const failed = outcome.result.results.filter((r) => r.status === 'failed');
    expect(failed.map((r) => r.address)).toEqual(['customerio.segment.vip_customers']);
    expect(failed[0]!.message).toMatch(/HTTP 503.*not idempotent/);
    // One POST for it, not retried (the other segment's create is the second).
    expect(sandbox.requestCounts()['POST /v1/segments']).toBe(2);
    sandbox.faults.clear();

    await withWs(dir, sandbox, async (ws) => {
      // The service did not create it: recovery finds nothing to adopt, and the plan creates it.
      expect(ws.recovery.adopted).toEqual([]);
      expect(pending(await makePlan(ws, PLAN))).toEqual([['customerio.segment.vip_customers', 'create']]);
      expect((await applyChanges(ws, { options: PLAN, who: 'faults test' })).status).toBe('done');
    });
    expectExactlyDeclared(sandbox);
  });

  it('adopts objects whose create was applied but whose answer was dropped, instead of duplicating them', async () => {
    const outcome = await applyWith({ service: 'qualtrics', pathPattern: '/(mailinglists|eventsubscriptions)$', dropAfterApplyRate: 1 });
    expect(outcome.status).toBe('done');
    if (outcome.status !== 'done') return;
    const byAddress = Object.fromEntries(outcome.result.results.map((r) => [r.address, r]));
    for (const a of ['qualtrics.mailing_list.cancel_intent_reason', 'qualtrics.mailing_list.lapsed_diagnosis', 'qualtrics.mailing_list.post_purchase_fit']) {
      expect(byAddress[a]?.status).toBe('failed');
      expect(byAddress[a]?.message).toMatch(/may or may not have been applied/);
    }
    // What depends on a list whose outcome is unknown waits for it.
    expect(byAddress['qualtrics.event_subscription.post_purchase_fit']).toMatchObject({ status: 'skipped' });
    expect(byAddress['customerio.segment.vip_customers']?.status).toBe('applied');
    // The lists exist even though tidemark got no answer; the journal keeps their outcome open.
    expect(remoteNames(sandbox).lists).toEqual(['tidemark: cancel intent', 'tidemark: lapsed diagnosis', 'tidemark: post-purchase fit']);
    sandbox.faults.clear();

    await withWs(dir, sandbox, async (ws) => {
      const run = await ws.conn.store.getApply(outcome.result.runId);
      expect(run?.status).toBe('failed');
      expect(run?.changes.filter((c) => c.status === 'pending').map((c) => c.address)).toEqual([
        'qualtrics.mailing_list.cancel_intent_reason',
        'qualtrics.mailing_list.lapsed_diagnosis',
        'qualtrics.mailing_list.post_purchase_fit',
      ]);
      expect(ws.recovery.adopted.map((a) => a.split(' ')[0])).toEqual([
        'qualtrics.mailing_list.cancel_intent_reason',
        'qualtrics.mailing_list.lapsed_diagnosis',
        'qualtrics.mailing_list.post_purchase_fit',
      ]);
      const plan = await makePlan(ws, PLAN);
      expect(pending(plan)).toEqual([['qualtrics.event_subscription.post_purchase_fit', 'create']]);
      expect((await applyChanges(ws, { saved: plan, options: PLAN, who: 'faults test' })).status).toBe('done');
      expect(pending(await makePlan(ws, PLAN))).toEqual([]);
    });
    expectExactlyDeclared(sandbox);
  });

  it('adopts an event subscription whose create answer was dropped (it has no name to match on)', async () => {
    const outcome = await applyWith({ service: 'qualtrics', pathPattern: '/eventsubscriptions$', dropAfterApplyRate: 1 });
    expect(outcome.status).toBe('done');
    if (outcome.status !== 'done') return;
    expect(outcome.result.results.filter((r) => r.status !== 'applied').map((r) => [r.address, r.status])).toEqual([
      ['qualtrics.event_subscription.post_purchase_fit', 'failed'],
    ]);
    sandbox.faults.clear();
    await withWs(dir, sandbox, async (ws) => {
      expect(ws.recovery.adopted).toEqual([`qualtrics.event_subscription.post_purchase_fit (${sandbox.qualtrics.eventSubscriptions()[0]!.id})`]);
      expect(pending(await makePlan(ws, PLAN))).toEqual([]);
    });
    expectExactlyDeclared(sandbox);
  });
});
