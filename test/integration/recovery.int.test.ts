/**
 * A killed or failed apply resumes without loss and without duplicates: whatever the service created before
 * the state could record it is found and adopted by the next run, never created a second time.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyChanges, makePlan, openEnvironment } from '../../reconciler/composition/use-cases.ts';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { expectExactlyDeclared, FAST_RETRY, pending, PLAN, STAGING_DIRECTORY, useSandboxAndProject, withWs } from '../support/integration-fixture.ts';

const REPO = path.resolve(import.meta.dirname, '../..');

let sandbox: RunningSandbox;
let dir: string;

useSandboxAndProject(41, { sandbox: (s) => (sandbox = s), dir: (d) => (dir = d) });

async function waitFor(what: string, condition: () => boolean, child?: { exitCode: number | null }): Promise<void> {
  // Polls the emulator's state, not the clock: the deadline only stops a broken run from hanging the suite.
  for (let i = 0; i < 2_000; i++) {
    if (condition()) return;
    if (child && child.exitCode !== null) throw new Error(`the apply exited (${child.exitCode}) before ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`gave up waiting for ${what}`);
}

describe('recovery', () => {
  it('adopts objects the service created when recording them failed, so the next plan does not create them again', async () => {
    const failAfterCreate = new Set(['qualtrics.mailing_list.lapsed_diagnosis', 'qualtrics.event_subscription.post_purchase_fit']);
    await withWs(dir, sandbox, async (ws) => {
      const outcome = await applyChanges(ws, {
        options: PLAN,
        who: 'recovery test',
        afterRemoteCall: (c) => {
          // The service answered; the process fails before the state records the new object.
          if (failAfterCreate.has(c.address)) throw new Error('state write failed (simulated)');
        },
      });
      expect(outcome.status).toBe('done');
      if (outcome.status !== 'done') return;
      expect(outcome.result.ok).toBe(false);
      const failed = outcome.result.results.filter((r) => r.status === 'failed');
      expect(failed.map((r) => r.address).sort()).toEqual([...failAfterCreate].sort());
      for (const r of failed) expect(r.message).toMatch(/may have created it anyway/);
      expect(await ws.conn.store.getManaged('qualtrics.mailing_list.lapsed_diagnosis')).toBeUndefined();
    });
    // Both objects exist remotely, unknown to the state.
    expectExactlyDeclared(sandbox);

    await withWs(dir, sandbox, async (ws) => {
      expect(ws.recovery.runs).toBe(1);
      expect(ws.recovery.adopted.map((a) => a.split(' ')[0]).sort()).toEqual([...failAfterCreate].sort());
      expect(ws.recovery.unresolved).toEqual([]);
      expect(pending(await makePlan(ws, PLAN))).toEqual([]);
      expect((await applyChanges(ws, { options: PLAN, who: 'recovery test' })).status).toBe('nothing');
    });
    // A later open has nothing left to settle.
    await withWs(dir, sandbox, async (ws) => expect(ws.recovery).toEqual({ runs: 0, adopted: [], forgotten: [], unresolved: [] }));
    expectExactlyDeclared(sandbox);
  });

  it('settles an apply killed with SIGKILL mid-way: adopts the orphan, then one apply converges', async () => {
    // The apply runs in its own process against this test's sandbox (the service outlives a crashed client).
    // The answer to the mailing-list create is held back after Qualtrics created the list, so the process
    // dies after the list exists and before tidemark could record it.
    sandbox.faults.set({ service: 'qualtrics', methods: ['POST'], pathPattern: '/mailinglists$', latencyAfterApplyMs: 30_000 });
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      NO_COLOR: '1',
      CIO_STAGING_SITE_ID: sandbox.env.CUSTOMERIO_SITE_ID,
      CIO_STAGING_TRACK_API_KEY: sandbox.env.CUSTOMERIO_TRACK_API_KEY,
      CIO_STAGING_APP_API_KEY: sandbox.env.CUSTOMERIO_APP_API_KEY,
      QUALTRICS_STAGING_API_TOKEN: sandbox.env.QUALTRICS_API_TOKEN,
      CUSTOMERIO_TRACK_URL: sandbox.urls.customerioTrack,
      CUSTOMERIO_APP_URL: sandbox.urls.customerioApp,
      QUALTRICS_BASE_URL: sandbox.urls.qualtrics,
    };
    const child = spawn(process.execPath, [path.join(REPO, 'bin/tidemark.js'), 'apply', '--auto-approve'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += String(d)));
    child.stderr.on('data', (d) => (output += String(d)));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    try {
      await waitFor('Qualtrics to hold the first list', () => sandbox.qualtrics.listMailingLists(STAGING_DIRECTORY).length === 1, child);
    } catch (err) {
      child.kill('SIGKILL');
      throw new Error(`${(err as Error).message}\n${output}`);
    }
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    sandbox.faults.clear();
    const orphan = sandbox.qualtrics.listMailingLists(STAGING_DIRECTORY)[0]!;
    expect(output).not.toMatch(/Apply (complete|failed)/);

    // The next run talks to the same services the killed one did (their state belongs to them), in process.
    const ws = await openEnvironment({ cwd: dir, env, specs: 'specs', retry: FAST_RETRY });
    try {
      // The killed run is settled: the lock of the dead process is taken over and its pending create adopted.
      expect(ws.recovery.runs).toBe(1);
      expect(ws.recovery.adopted).toEqual([`qualtrics.mailing_list.cancel_intent_reason (${orphan.mailingListId})`]);
      const history = await ws.conn.store.listApplies(5);
      expect(history.map((r) => r.status)).toEqual(['interrupted']);

      const plan = await makePlan(ws, PLAN);
      expect(plan.changes.find((c) => c.address === 'qualtrics.mailing_list.cancel_intent_reason')?.action).toBe('noop');
      expect(plan.changes.every((c) => c.action === 'noop' || c.action === 'create')).toBe(true);
      const outcome = await applyChanges(ws, { saved: plan, options: PLAN, who: 'recovery test' });
      expect(outcome.status).toBe('done');
      if (outcome.status === 'done') expect(outcome.result.ok).toBe(true);
      expect(pending(await makePlan(ws, PLAN))).toEqual([]);
    } finally {
      await ws.conn.close();
    }
    expectExactlyDeclared(sandbox);
  });
});
