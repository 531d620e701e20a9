import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { registerSecret } from '../../reconciler/core/redact.ts';
import { StateConflictError, StateNotFoundError, StateSchemaError } from '../../reconciler/state/errors.ts';
import { MIGRATIONS } from '../../reconciler/state/migrations/all.ts';
import { migrationChecksum, type Migration } from '../../reconciler/state/migrations/migration.ts';
import type { StateStore } from '../../reconciler/state/types.ts';
import { stateBackends, testClock, type Backend, type Location } from '../support/state-backends.ts';

const backends = await stateBackends('store');

const segment = (name: string, remoteId: string, attributes: unknown = { name }) => ({
  address: `customerio.segment.${name}`,
  kind: 'customerio.segment',
  remoteId,
  attributes,
  preventDestroy: false,
});

for (const b of backends) {
  describe.skipIf(!b.available)(`state store on ${b.name}`, () => {
    afterAll(() => b.cleanup());

    async function fresh(opts: Parameters<Backend['open']>[1] = {}): Promise<{ loc: Location; store: StateStore }> {
      const loc = await b.newLocation();
      return { loc, store: await b.open(loc, opts) };
    }

    describe('migrations', () => {
      it('applies every known migration once and records version, name and checksum', async () => {
        const clock = testClock();
        const { loc, store } = await fresh({ clock });
        const first = await store.describe();
        expect(first.backend).toBe(b.name);
        expect(first.schemaVersion).toBe(MIGRATIONS.length);
        expect(first.migrations).toEqual(
          MIGRATIONS.map((m) => ({ version: m.version, name: m.name, checksum: migrationChecksum(m), appliedAt: clock.now().toISOString() })),
        );
        await store.close();

        clock.advance(60_000);
        const again = await b.open(loc, { clock });
        expect((await again.describe()).migrations).toEqual(first.migrations);
        await again.close();
      });

      it('applies a newer migration on the next open and leaves the applied ones alone', async () => {
        const clock = testClock();
        const loc = await b.newLocation();
        await (await b.open(loc, { clock })).close();
        const extra: Migration = { version: MIGRATIONS.length + 1, name: 'test_extra', sql: 'CREATE TABLE test_extra (id INTEGER NOT NULL PRIMARY KEY)' };
        clock.advance(1000);
        const store = await b.open(loc, { clock }, [...MIGRATIONS, extra]);
        const d = await store.describe();
        expect(d.schemaVersion).toBe(extra.version);
        expect(d.migrations.map((m) => [m.version, m.appliedAt])).toEqual([
          ...MIGRATIONS.map((m) => [m.version, '2026-03-01T12:00:00.000Z']),
          [extra.version, '2026-03-01T12:00:01.000Z'],
        ]);
        await store.close();
      });

      it('refuses state written by a newer tidemark, naming both versions', async () => {
        const loc = await b.newLocation();
        await (await b.open(loc)).close();
        const raw = await b.raw(loc);
        await raw.exec(`INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (999, 'from_the_future', 'x', '2030-01-01T00:00:00.000Z')`);
        await raw.close();
        const err = await b.open(loc).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(StateSchemaError);
        expect((err as StateSchemaError).code).toBe('STATE001');
        expect((err as Error).message).toMatch(new RegExp(`schema version 999.*only knows versions up to ${MIGRATIONS.length}\\b`));
      });

      it('refuses a database whose applied migration no longer matches the shipped one', async () => {
        const loc = await b.newLocation();
        await (await b.open(loc)).close();
        const raw = await b.raw(loc);
        await raw.exec(`UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1`);
        await raw.close();
        await expect(b.open(loc)).rejects.toMatchObject({ code: 'STATE002' });
      });
    });

    describe('managed objects', () => {
      it('stores, lists sorted by address, replaces and deletes managed objects', async () => {
        const clock = testClock();
        const { store } = await fresh({ clock });
        await store.putManaged(segment('vip', '12', { name: 'VIP', nested: { list: [1, 'two', null] } }));
        clock.advance(1000);
        await store.putManaged({ ...segment('churn_risk', '7'), specDigest: 'sha256:abc', preventDestroy: true });

        expect((await store.listManaged()).map((m) => m.address)).toEqual(['customerio.segment.churn_risk', 'customerio.segment.vip']);
        expect(await store.getManaged('customerio.segment.vip')).toEqual({
          address: 'customerio.segment.vip',
          kind: 'customerio.segment',
          remoteId: '12',
          attributes: { name: 'VIP', nested: { list: [1, 'two', null] } },
          preventDestroy: false,
          updatedAt: '2026-03-01T12:00:00.000Z',
        });
        expect(await store.getManaged('customerio.segment.churn_risk')).toMatchObject({ specDigest: 'sha256:abc', preventDestroy: true });

        clock.advance(1000);
        await store.putManaged(segment('vip', '12', { name: 'VIP customers' }));
        expect(await store.getManaged('customerio.segment.vip')).toMatchObject({
          attributes: { name: 'VIP customers' },
          updatedAt: '2026-03-01T12:00:02.000Z',
        });

        expect(await store.deleteManaged('customerio.segment.vip')).toBe(true);
        expect(await store.deleteManaged('customerio.segment.vip')).toBe(false);
        expect(await store.getManaged('customerio.segment.vip')).toBeUndefined();
        expect((await store.listManaged()).map((m) => m.address)).toEqual(['customerio.segment.churn_risk']);
        await store.close();
      });

      it('never lets two addresses manage the same remote object', async () => {
        const { store } = await fresh();
        await store.putManaged(segment('vip', '12'));
        await expect(store.putManaged(segment('vip_copy', '12'))).rejects.toBeInstanceOf(StateConflictError);
        // The same id under another kind is another object.
        await store.putManaged({ ...segment('list', '12'), address: 'qualtrics.mailing_list.list', kind: 'qualtrics.mailing_list' });
        expect((await store.listManaged()).map((m) => m.address)).toEqual(['customerio.segment.vip', 'qualtrics.mailing_list.list']);
        await store.close();
      });

      it('moves an address, refusing an unknown source or a taken target', async () => {
        const { store } = await fresh();
        await store.putManaged(segment('vip', '12'));
        await store.putManaged(segment('lapsed', '13'));
        await store.moveManaged('customerio.segment.vip', 'customerio.segment.vip_customers');
        expect(await store.getManaged('customerio.segment.vip')).toBeUndefined();
        expect(await store.getManaged('customerio.segment.vip_customers')).toMatchObject({ remoteId: '12', kind: 'customerio.segment' });

        await expect(store.moveManaged('customerio.segment.nope', 'customerio.segment.x')).rejects.toBeInstanceOf(StateNotFoundError);
        await expect(store.moveManaged('customerio.segment.lapsed', 'customerio.segment.vip_customers')).rejects.toBeInstanceOf(
          StateConflictError,
        );
        expect(await store.getManaged('customerio.segment.lapsed')).toMatchObject({ remoteId: '13' });
        await store.close();
      });
    });

    describe('transactions', () => {
      it('rolls back every write when the function throws, including writes made through the store itself', async () => {
        const { store } = await fresh();
        await expect(
          store.transaction(async (tx) => {
            await tx.putManaged(segment('a', '1'));
            await store.setCursor('c', 'v');
            throw new Error('boom');
          }),
        ).rejects.toThrow('boom');
        expect(await store.listManaged()).toEqual([]);
        expect(await store.getCursor('c')).toBeUndefined();
        await store.close();
      });

      it('commits the outer transaction when a nested one fails and is caught', async () => {
        const { store } = await fresh();
        const result = await store.transaction(async (tx) => {
          await tx.putManaged(segment('a', '1'));
          await store
            .transaction(async (inner) => {
              await inner.putManaged(segment('b', '2'));
              throw new Error('inner');
            })
            .catch(() => undefined);
          // A failed constraint inside is contained too (on Postgres it would otherwise poison the transaction).
          await tx.putManaged(segment('c', '1')).catch(() => undefined);
          await tx.setCursor('after', 'yes');
          return 'done';
        });
        expect(result).toBe('done');
        expect((await store.listManaged()).map((m) => m.address)).toEqual(['customerio.segment.a']);
        expect(await store.getCursor('after')).toBe('yes');
        await store.close();
      });

      it('keeps concurrent work outside a transaction out of it', async () => {
        const { store } = await fresh();
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        const tx = store.transaction(async (t) => {
          await t.setCursor('in_tx', '1');
          await gate;
          throw new Error('rollback');
        });
        const outside = store.setCursor('outside', '1');
        release();
        await expect(tx).rejects.toThrow('rollback');
        await outside;
        expect(await store.getCursor('in_tx')).toBeUndefined();
        expect(await store.getCursor('outside')).toBe('1');
        await store.close();
      });
    });

    describe('apply journal', () => {
      it('records each change as it happens and survives a reopen, exposing the unfinished run', async () => {
        registerSecret('sk_live_journal_secret');
        const clock = testClock();
        const { loc, store } = await fresh({ clock });
        const runId = await store.beginApply({
          who: 'ana@laptop 4242',
          planDigest: 'sha256:plan',
          changes: [
            { address: 'customerio.segment.vip', action: 'create' },
            { address: 'customerio.segment.old', action: 'delete' },
            { address: 'qualtrics.mailing_list.nps', action: 'update' },
          ],
        });
        clock.advance(1000);
        await store.recordChange(runId, 'customerio.segment.vip', { status: 'pending' });
        await store.recordChange(runId, 'customerio.segment.vip', { status: 'applied', remoteId: '99' });
        await store.recordChange(runId, 'customerio.segment.old', { status: 'failed', error: 'HTTP 401 with token sk_live_journal_secret' });
        await store.recordChange(runId, 'qualtrics.mailing_list.nps', { status: 'pending' });
        await store.close();

        // The process "crashed" here: the run never finished.
        const reopened = await b.open(loc, { clock });
        const unfinished = await reopened.unfinishedApplies();
        expect(unfinished).toEqual([
          {
            id: runId,
            status: 'running',
            who: 'ana@laptop 4242',
            planDigest: 'sha256:plan',
            startedAt: '2026-03-01T12:00:00.000Z',
            changes: [
              { address: 'customerio.segment.vip', action: 'create', status: 'applied', position: 0, remoteId: '99', updatedAt: '2026-03-01T12:00:01.000Z' },
              {
                address: 'customerio.segment.old',
                action: 'delete',
                status: 'failed',
                position: 1,
                error: 'HTTP 401 with token [redacted]',
                updatedAt: '2026-03-01T12:00:01.000Z',
              },
              { address: 'qualtrics.mailing_list.nps', action: 'update', status: 'pending', position: 2, updatedAt: '2026-03-01T12:00:01.000Z' },
            ],
          },
        ]);

        clock.advance(1000);
        await reopened.finishApply(runId, { status: 'interrupted', error: 'recovered after a crash' });
        expect(await reopened.unfinishedApplies()).toEqual([]);
        expect(await reopened.getApply(runId)).toMatchObject({ status: 'interrupted', finishedAt: '2026-03-01T12:00:02.000Z', error: 'recovered after a crash' });
        await reopened.close();
      });

      it('refuses to record into a finished or unknown run, or an address outside the run', async () => {
        const { store } = await fresh();
        const runId = await store.beginApply({ who: 'ci', changes: [{ address: 'customerio.segment.vip', action: 'create' }] });
        await expect(store.recordChange(runId, 'customerio.segment.other', { status: 'applied' })).rejects.toBeInstanceOf(StateNotFoundError);
        await expect(store.recordChange('no-such-run', 'customerio.segment.vip', { status: 'applied' })).rejects.toBeInstanceOf(StateNotFoundError);
        await store.finishApply(runId, { status: 'succeeded' });
        await expect(store.recordChange(runId, 'customerio.segment.vip', { status: 'applied' })).rejects.toBeInstanceOf(StateConflictError);
        await expect(store.finishApply(runId, { status: 'failed' })).rejects.toBeInstanceOf(StateConflictError);
        await store.close();
      });

      it('lists applies newest first', async () => {
        const clock = testClock();
        const { store } = await fresh({ clock });
        const ids: string[] = [];
        for (let i = 0; i < 3; i++) {
          ids.push(await store.beginApply({ who: `run${i}`, changes: [] }));
          await store.finishApply(ids[i]!, { status: 'succeeded' });
        }
        // Same timestamp (fixed clock): creation order still decides.
        expect((await store.listApplies()).map((a) => a.who)).toEqual(['run2', 'run1', 'run0']);
        expect((await store.listApplies(2)).map((a) => a.id)).toEqual([ids[2], ids[1]]);
        await store.close();
      });
    });

    describe('sync runs', () => {
      it('keeps run history per source, newest first, and knows the last success', async () => {
        registerSecret('warehouse_pw_123');
        const clock = testClock();
        const { store } = await fresh({ clock });
        const r1 = await store.startRun('recharge', { trigger: 'schedule' });
        clock.advance(60_000);
        await store.finishRun(r1, { status: 'succeeded', counts: { created: 3, updated: 2, rejected: 1 } });
        clock.advance(3_600_000);
        const r2 = await store.startRun('recharge', { trigger: 'schedule' });
        await store.finishRun(r2, { status: 'failed', error: 'connect to postgres://u:warehouse_pw_123@db failed' });
        const other = await store.startRun('shopify_orders');
        clock.advance(3_600_000);
        const r3 = await store.startRun('recharge');

        const runs = await store.lastRuns('recharge', 10);
        expect(runs.map((r) => [r.id, r.status])).toEqual([
          [r3, 'running'],
          [r2, 'failed'],
          [r1, 'succeeded'],
        ]);
        expect(runs[1]!.error).toBe('connect to postgres://[redacted]@db failed');
        expect((await store.lastRuns('recharge', 2)).map((r) => r.id)).toEqual([r3, r2]);
        expect(await store.lastSuccess('recharge')).toEqual({
          id: r1,
          source: 'recharge',
          status: 'succeeded',
          startedAt: '2026-03-01T12:00:00.000Z',
          finishedAt: '2026-03-01T12:01:00.000Z',
          meta: { trigger: 'schedule' },
          counts: { created: 3, updated: 2, rejected: 1 },
        });
        expect(await store.lastSuccess('shopify_orders')).toBeUndefined();
        expect((await store.lastRuns('shopify_orders', 5)).map((r) => r.id)).toEqual([other]);
        await expect(store.finishRun(r1, { status: 'failed' })).rejects.toBeInstanceOf(StateConflictError);
        await expect(store.finishRun('nope', { status: 'failed' })).rejects.toBeInstanceOf(StateNotFoundError);
        await store.close();
      });
    });

    describe('cursors', () => {
      it('sets, overwrites and deletes named cursors', async () => {
        const { store } = await fresh();
        expect(await store.getCursor('qualtrics.responses.SV_1')).toBeUndefined();
        await store.setCursor('qualtrics.responses.SV_1', 'token-1');
        await store.setCursor('qualtrics.responses.SV_1', 'token-2');
        expect(await store.getCursor('qualtrics.responses.SV_1')).toBe('token-2');
        expect(await store.deleteCursor('qualtrics.responses.SV_1')).toBe(true);
        expect(await store.deleteCursor('qualtrics.responses.SV_1')).toBe(false);
        expect(await store.getCursor('qualtrics.responses.SV_1')).toBeUndefined();
        await store.close();
      });
    });

    describe('environments', () => {
      it('keeps each environment to its own state', async () => {
        const loc = await b.newLocation();
        const staging = await b.open(loc, { env: 'staging' });
        const production = await b.open(loc, { env: 'production' });

        await staging.putManaged(segment('vip', '12'));
        await production.putManaged(segment('vip', '99'));
        await staging.setCursor('c', 'staging');
        const run = await staging.startRun('recharge');
        const lock = await staging.acquireLock({ operation: 'apply', who: 'ana' });
        const acks = await staging.openAckSession('people');
        await acks.append([{ key: 'p1', hash: 'h' }]);
        await acks.close();

        expect((await production.getManaged('customerio.segment.vip'))?.remoteId).toBe('99');
        expect((await staging.getManaged('customerio.segment.vip'))?.remoteId).toBe('12');
        expect(await production.getCursor('c')).toBeUndefined();
        expect(await production.lastRuns('recharge', 5)).toEqual([]);
        expect(await production.lockInfo()).toBeUndefined();
        expect(await production.countSnapshot('people')).toBe(0);
        expect(await staging.countSnapshot('people')).toBe(1);
        // Production can take its own lock while staging's is held.
        const prodLock = await production.acquireLock({ operation: 'apply', who: 'bo' });
        await prodLock.release();
        await lock.release();
        await staging.finishRun(run, { status: 'succeeded' });
        if (b.name === 'sqlite') {
          expect(existsSync(path.join(loc.dir!, 'state-staging.sqlite'))).toBe(true);
          expect(existsSync(path.join(loc.dir!, 'state-production.sqlite'))).toBe(true);
        }
        await staging.close();
        await production.close();
      });

      it('rejects environment names that could escape the state directory', async () => {
        const loc = await b.newLocation();
        await expect(b.open(loc, { env: '../prod' })).rejects.toMatchObject({ code: 'STATE008' });
        await expect(b.open(loc, { env: '' })).rejects.toMatchObject({ code: 'STATE008' });
      });
    });
  });
}
