/**
 * One apply at a time per environment: a second apply is refused and told who holds the lock, and opening
 * the workspace meanwhile (a plan, a drift check) leaves the running apply alone.
 */
import { describe, expect, it } from 'vitest';
import { applyChanges, detectDrift, makePlan } from '../../reconciler/composition/use-cases.ts';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { DECLARED, expectExactlyDeclared, open, PLAN, useSandboxAndProject, withWs } from '../support/integration-fixture.ts';

let sandbox: RunningSandbox;
let dir: string;

useSandboxAndProject(67, { sandbox: (s) => (sandbox = s), dir: (d) => (dir = d) });

describe('the apply lock', () => {
  it('refuses a second apply while one runs, naming the holder, and the first completes untouched', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let paused!: () => void;
    const atGate = new Promise<void>((r) => (paused = r));

    const first = await open(dir, sandbox);
    const second = await open(dir, sandbox);
    try {
      const running = applyChanges(first, {
        options: PLAN,
        who: 'alice@ci pid 1',
        afterRemoteCall: async (c) => {
          if (c.address === 'customerio.segment.vip_customers') {
            paused();
            await gate;
          }
        },
      });
      await atGate;

      const refused = await applyChanges(second, { options: PLAN, who: 'bob@laptop pid 2' });
      expect(refused.status).toBe('locked');
      if (refused.status === 'locked') expect(refused.holder).toMatch(/locked by alice@ci pid 1 .*for "apply"/);

      // Opening the workspace during the apply (what `tidemark plan` or `drift` does) must not take the
      // running apply for an interrupted one.
      const third = await open(dir, sandbox);
      try {
        expect(third.recovery.runs).toBe(0);
        expect(third.recovery.deferred).toMatch(/alice@ci pid 1/);
        await detectDrift(third);
        await makePlan(third, PLAN);
      } finally {
        await third.conn.close();
      }

      release();
      const done = await running;
      expect(done.status).toBe('done');
      if (done.status === 'done') {
        expect(done.result.ok).toBe(true);
        expect(done.result.results.map((r) => r.status)).toEqual(Object.keys(DECLARED).map(() => 'applied'));
      }
      expect((await first.conn.store.listApplies(5)).map((r) => [r.who, r.status])).toEqual([['alice@ci pid 1', 'succeeded']]);

      // Once released, the next apply runs and has nothing left to do.
      expect((await applyChanges(second, { options: PLAN, who: 'bob@laptop pid 2' })).status).toBe('nothing');
    } finally {
      release();
      await first.conn.close();
      await second.conn.close();
    }
    expectExactlyDeclared(sandbox);
    await withWs(dir, sandbox, async (ws) => expect(await ws.conn.store.lockInfo()).toBeUndefined());
  });
});
