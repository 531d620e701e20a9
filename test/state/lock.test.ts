import { spawn, spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { LockHeldError, LockLostError } from '../../reconciler/state/errors.ts';
import type { LockInfo, StateStore } from '../../reconciler/state/types.ts';
import { stateBackends, testClock, type Backend, type Location } from '../support/state-backends.ts';

const backends = await stateBackends('lock');
const repo = path.resolve(import.meta.dirname, '../..');

/** A pid that certainly belonged to a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  return r.pid!;
}

async function heldError(p: Promise<unknown>): Promise<LockHeldError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LockHeldError);
  return err as LockHeldError;
}

/** Starts a child process that takes the lock, waits until it holds it, and returns a way to SIGKILL it. */
async function childHolder(b: Backend, loc: Location): Promise<{ info: LockInfo; kill(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repo, 'test/state/fixtures/hold-lock.ts'), JSON.stringify(b.connection(loc))], {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (l) => {
      rl.close();
      resolve(l);
    });
    child.once('exit', (code) => reject(new Error(`lock holder exited early with ${code}`)));
  });
  return {
    info: JSON.parse(line) as LockInfo,
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

for (const b of backends) {
  describe.skipIf(!b.available)(`state lock on ${b.name}`, () => {
    afterAll(() => b.cleanup());

    async function two(opts: Parameters<Backend['open']>[1] = {}): Promise<[StateStore, StateStore, Location]> {
      const loc = await b.newLocation();
      return [await b.open(loc, opts), await b.open(loc, opts), loc];
    }

    it('stops a second acquirer and tells it who holds the lock', async () => {
      const [a, c] = await two();
      const lock = await a.acquireLock({ operation: 'apply', who: 'ana@laptop 4242' });
      expect(await c.lockInfo()).toEqual(lock.info);
      const err = await heldError(c.acquireLock({ operation: 'sync recharge', who: 'ci@runner 7' }));
      expect(err.code).toBe('STATE003');
      expect(err.holder).toEqual(lock.info);
      expect(err.holder).toMatchObject({ operation: 'apply', who: 'ana@laptop 4242', pid: process.pid, hostname: os.hostname(), stale: false });
      expect(err.message).toContain('ana@laptop 4242');
      expect(err.message).toContain(`tidemark unlock ${lock.info.id}`);

      await lock.release();
      await lock.release();
      expect(await c.lockInfo()).toBeUndefined();
      const next = await c.acquireLock({ operation: 'sync recharge', who: 'ci@runner 7' });
      expect(next.tookOver).toBeUndefined();
      await next.release();
      await a.close();
      await c.close();
    });

    it('force-unlocks only the lock it was asked to, and the old holder learns it lost the lock', async () => {
      const [a, c] = await two();
      const lock = await a.acquireLock({ operation: 'apply', who: 'ana' }, { heartbeatMs: false });
      expect(await c.forceUnlock('not-the-id')).toBe(false);
      expect((await c.lockInfo())?.id).toBe(lock.info.id);

      const aborted = new Promise((resolve) => lock.signal.addEventListener('abort', resolve, { once: true }));
      expect(await c.forceUnlock(lock.info.id)).toBe(true);
      expect(await c.lockInfo()).toBeUndefined();
      await expect(lock.heartbeat()).rejects.toBeInstanceOf(LockLostError);
      await aborted;
      expect(lock.signal.reason).toBeInstanceOf(LockLostError);

      const next = await c.acquireLock({ operation: 'apply', who: 'bo' });
      expect(await c.forceUnlock()).toBe(true);
      expect(await c.forceUnlock()).toBe(false);
      await next.release();
      await lock.release();
      await a.close();
      await c.close();
    });

    it('releases its locks when the store closes', async () => {
      const [a, c] = await two();
      await a.acquireLock({ operation: 'apply', who: 'ana' });
      await a.close();
      const lock = await c.acquireLock({ operation: 'apply', who: 'bo' });
      expect(lock.tookOver).toBeUndefined();
      await lock.release();
      await c.close();
    });

    it('lets the next acquirer take over from a process that was killed while holding the lock', async () => {
      const loc = await b.newLocation();
      const store = await b.open(loc);
      const child = await childHolder(b, loc);
      const held = await heldError(store.acquireLock({ operation: 'apply', who: 'me' }));
      expect(held.holder).toMatchObject({ id: child.info.id, who: 'child process', stale: false });

      await child.kill();
      // Postgres notices the dead session on its own schedule; the lock is free once it has.
      let lock;
      for (let attempt = 0; !lock; attempt++) {
        try {
          lock = await store.acquireLock({ operation: 'apply', who: 'me' });
        } catch (e) {
          if (!(e instanceof LockHeldError) || attempt > 200) throw e;
          await new Promise((r) => setTimeout(r, 25));
        }
      }
      expect(lock.tookOver).toMatchObject({
        id: child.info.id,
        who: 'child process',
        stale: true,
        staleReason: b.name === 'sqlite' ? 'holder-dead' : 'session-gone',
      });
      expect((await store.lockInfo())?.id).toBe(lock.info.id);
      await lock.release();
      await store.close();
    });

    if (b.name === 'sqlite') {
      it('takes over a lock whose lease expired without a heartbeat', async () => {
        const clock = testClock();
        const [a, c] = await two({ clock });
        const lock = await a.acquireLock({ operation: 'apply', who: 'ana' }, { ttlMs: 1000, heartbeatMs: false });
        clock.advance(999);
        await heldError(c.acquireLock({ operation: 'apply', who: 'bo' }));
        clock.advance(1);
        expect(await c.lockInfo()).toMatchObject({ id: lock.info.id, stale: true, staleReason: 'lease-expired' });
        const next = await c.acquireLock({ operation: 'apply', who: 'bo' });
        expect(next.tookOver).toMatchObject({ id: lock.info.id, staleReason: 'lease-expired' });
        await expect(lock.heartbeat()).rejects.toBeInstanceOf(LockLostError);
        expect(lock.signal.aborted).toBe(true);
        await next.release();
        await a.close();
        await c.close();
      });

      it('keeps a lock whose holder renews its lease', async () => {
        const clock = testClock();
        const [a, c] = await two({ clock });
        const lock = await a.acquireLock({ operation: 'apply', who: 'ana' }, { ttlMs: 1000, heartbeatMs: false });
        for (let i = 0; i < 3; i++) {
          clock.advance(800);
          await lock.heartbeat();
        }
        expect(lock.info.expiresAt).toBe(new Date(clock.now().getTime() + 1000).toISOString());
        const err = await heldError(c.acquireLock({ operation: 'apply', who: 'bo' }));
        expect(err.holder).toMatchObject({ id: lock.info.id, heartbeatAt: clock.now().toISOString(), stale: false });
        await lock.release();
        await a.close();
        await c.close();
      });

      it('judges a holder dead by its pid only on the same host', async () => {
        const loc = await b.newLocation();
        const pid = deadPid();
        const sameHost = await b.open(loc, { holder: { pid } });
        const dead = await sameHost.acquireLock({ operation: 'apply', who: 'crashed run' }, { heartbeatMs: false });
        const me = await b.open(loc);
        expect(await me.lockInfo()).toMatchObject({ id: dead.info.id, stale: true, staleReason: 'holder-dead' });
        const mine = await me.acquireLock({ operation: 'apply', who: 'me' });
        expect(mine.tookOver).toMatchObject({ id: dead.info.id, staleReason: 'holder-dead' });
        await mine.release();

        // The same pid on another host says nothing about that host's process: only the lease can free it.
        const otherHost = await b.open(loc, { holder: { pid, hostname: 'some-other-host' } });
        const remote = await otherHost.acquireLock({ operation: 'apply', who: 'remote run' }, { heartbeatMs: false });
        const err = await heldError(me.acquireLock({ operation: 'apply', who: 'me' }));
        expect(err.holder).toMatchObject({ id: remote.info.id, hostname: 'some-other-host', stale: false });
        await remote.release();
        await Promise.all([sameHost.close(), otherHost.close(), me.close()]);
      });

      it('renews the lease in the background', async () => {
        const [a, c] = await two();
        const lock = await a.acquireLock({ operation: 'apply', who: 'ana' }, { ttlMs: 60_000, heartbeatMs: 5 });
        const first = lock.info.heartbeatAt;
        // Wait for renewals by state, not by time: the heartbeat timestamp must move.
        while (lock.info.heartbeatAt === first) await new Promise((r) => setTimeout(r, 5));
        expect((await c.lockInfo())?.heartbeatAt).toBe(lock.info.heartbeatAt);
        await lock.release();
        await a.close();
        await c.close();
      });
    }

    if (b.name === 'postgres') {
      it('frees a lock held by a live session by terminating that session', async () => {
        const [a, c] = await two();
        const lock = await a.acquireLock({ operation: 'apply', who: 'hung run' }, { heartbeatMs: false });
        const lost = new Promise((resolve) => lock.signal.addEventListener('abort', resolve, { once: true }));
        expect(await c.forceUnlock()).toBe(true);
        await lost;
        expect(lock.signal.reason).toBeInstanceOf(LockLostError);
        const next = await c.acquireLock({ operation: 'apply', who: 'bo' });
        expect(next.tookOver).toBeUndefined();
        await next.release();
        await lock.release();
        await a.close();
        await c.close();
      });

      it('reports a row left by a dead session as stale and replaces it', async () => {
        const loc = await b.newLocation();
        const store = await b.open(loc);
        const raw = await b.raw(loc);
        await raw.exec(`INSERT INTO state_locks (env, lock_id, operation, who, pid, hostname, session_pid, acquired_at, heartbeat_at, expires_at)
          VALUES ('default', 'ghost', 'apply', 'ghost run', 1, 'gone-host', 2147483000, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', '2026-01-01T00:02:00.000Z')`);
        await raw.close();
        expect(await store.lockInfo()).toMatchObject({ id: 'ghost', stale: true, staleReason: 'session-gone' });
        const lock = await store.acquireLock({ operation: 'apply', who: 'me' });
        expect(lock.tookOver).toMatchObject({ id: 'ghost', who: 'ghost run' });
        expect(await store.lockInfo()).toMatchObject({ id: lock.info.id, stale: false });
        await lock.release();
        await store.close();
      });
    }
  });
}
