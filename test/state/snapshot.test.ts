import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StateStore } from '../../reconciler/state/types.ts';
import { stateBackends, testClock } from '../support/state-backends.ts';

const backends = await stateBackends('snapshot');

for (const b of backends) {
  describe.skipIf(!b.available)(`snapshots on ${b.name}`, () => {
    let store: StateStore;
    const clock = testClock();
    beforeAll(async () => {
      store = await b.open(await b.newLocation(), { clock });
    });
    afterAll(async () => {
      await store?.close();
      await b.cleanup();
    });

    describe('ack sessions and the snapshot index', () => {
      async function index(source: string): Promise<Map<string, { hash: string; ordering: number | null }>> {
        const out = new Map<string, { hash: string; ordering: number | null }>();
        for await (const page of store.readSnapshotIndex(source, { pageSize: 2 })) for (const e of page) out.set(e.key, { hash: e.hash, ordering: e.ordering });
        return out;
      }

      it('applies appended acknowledgements on close, the last append of a key winning', async () => {
        const acks = await store.openAckSession('ack-latest');
        await acks.append([
          { key: 'a', hash: 'h1', ordering: 1, payload: '{"v":1}' },
          { key: 'b', hash: 'h1', ordering: null, payload: null },
        ]);
        await acks.append([{ key: 'a', hash: 'h2', ordering: 2, payload: '{"v":2}' }]);
        await acks.close();
        expect(await store.getSnapshotEntry('ack-latest', 'a')).toMatchObject({ hash: 'h2', ordering: 2, payload: '{"v":2}' });
        expect(await store.getSnapshotEntry('ack-latest', 'b')).toMatchObject({ hash: 'h1', ordering: null, payload: null });
        expect(Object.fromEntries(await index('ack-latest'))).toEqual({ a: { hash: 'h2', ordering: 2 }, b: { hash: 'h1', ordering: null } });
        expect(await store.getSnapshotPayloads('ack-latest', ['a', 'b', 'zz', 'a'])).toEqual(new Map([['a', '{"v":2}']]));
      });

      it('merges a log whose writer vouches for one acknowledgement per key as it is (eachKeyOnce): new keys, new payloads, a payload gone', async () => {
        const first = await store.openAckSession('ack-once');
        await first.append([
          { key: 'a', hash: 'h1', ordering: 1, payload: '{"v":1}' },
          { key: 'b', hash: 'h1', ordering: null, payload: '{"v":1}' },
        ]);
        await first.close({ eachKeyOnce: true });
        const second = await store.openAckSession('ack-once');
        await second.record({ acknowledged: [{ key: 'a', hash: 'h2', ordering: 2, payload: '{"v":2}' }] });
        await second.append([
          { key: 'b', hash: 'h3', ordering: 3, payload: null },
          { key: 'c', hash: 'h1', ordering: null, payload: '{"v":1}' },
        ]);
        await second.close({ eachKeyOnce: true });
        expect(Object.fromEntries(await index('ack-once'))).toEqual({ a: { hash: 'h2', ordering: 2 }, b: { hash: 'h3', ordering: 3 }, c: { hash: 'h1', ordering: null } });
        // b was acknowledged without a payload: the one before is not kept as what Customer.io holds.
        expect(await store.getSnapshotPayloads('ack-once', ['a', 'b', 'c'])).toEqual(new Map([['a', '{"v":2}'], ['c', '{"v":1}']]));
        expect(second.generation).toBeDefined();
        expect(second.generation).not.toBe(first.generation);
      });

      it('shows acknowledgements of a session that died in the index, and applies them when the next session opens', async () => {
        const acks = await store.openAckSession('crashy');
        await acks.append([{ key: 'k1', hash: 'h1', ordering: 5, payload: '{}' }]);
        // No close: the process died here.
        expect(await store.countSnapshot('crashy')).toBe(0);
        expect(Object.fromEntries(await index('crashy'))).toEqual({ k1: { hash: 'h1', ordering: 5 } });
        const next = await store.openAckSession('crashy');
        expect(await store.countSnapshot('crashy')).toBe(1);
        await expect(acks.append([{ key: 'k2', hash: 'h', ordering: null }])).rejects.toMatchObject({ code: 'STATE007' });
        await acks.close(); // superseded: leaves the newer session alone
        await next.append([{ key: 'k2', hash: 'h2', ordering: null }]);
        await next.close();
        expect([...(await index('crashy')).keys()].sort()).toEqual(['k1', 'k2']);
      });

      it('applies a recorded batch at once when asked: in the snapshot and its generation before the close, the latest of a key winning', async () => {
        const before = await store.openAckSession('ack-apply');
        await before.append([{ key: 'a', hash: 'h0', ordering: 0, payload: '{"v":0}' }, { key: 'b', hash: 'h0', ordering: 0, payload: '{"v":0}' }]);
        await before.close();
        const g0 = await store.snapshotGeneration('ack-apply');
        const acks = await store.openAckSession('ack-apply');
        await acks.record({ acknowledged: [{ key: 'a', hash: 'h1', ordering: 1, payload: '{"v":1}' }, { key: 'c', hash: 'h1', ordering: 1, payload: '{"v":1}' }] }, { apply: true });
        // Applied in the record's own transaction: other readers of the snapshot see it now.
        expect(await store.getSnapshotEntry('ack-apply', 'a')).toMatchObject({ hash: 'h1', ordering: 1, payload: '{"v":1}' });
        expect(await store.countSnapshot('ack-apply')).toBe(3);
        const g1 = await store.snapshotGeneration('ack-apply');
        expect(g1).not.toBe(g0);
        // A batch logged, then one applied with a key twice in it: the whole log goes, in order.
        await acks.record({ acknowledged: [{ key: 'b', hash: 'h2', ordering: 2, payload: '{"v":2}' }] });
        expect(await store.getSnapshotEntry('ack-apply', 'b')).toMatchObject({ hash: 'h0' });
        await acks.record(
          {
            acknowledged: [
              { key: 'c', hash: 'h3', ordering: 3, payload: '{"v":3}' },
              { key: 'c', hash: 'h4', ordering: 4, payload: null },
            ],
          },
          { apply: true },
        );
        expect(await store.getSnapshotEntry('ack-apply', 'b')).toMatchObject({ hash: 'h2', payload: '{"v":2}' });
        expect(await store.getSnapshotEntry('ack-apply', 'c')).toMatchObject({ hash: 'h4', ordering: 4, payload: null });
        // A batch of distinct keys applied after one logged with a key of it: that key is in the log twice.
        await acks.record({ acknowledged: [{ key: 'b', hash: 'h5', ordering: 5, payload: '{"v":5}' }] });
        await acks.record({ acknowledged: [{ key: 'b', hash: 'h6', ordering: 6, payload: '{"v":6}' }, { key: 'd', hash: 'h6', ordering: 6, payload: '{}' }] }, { apply: true });
        expect(await store.getSnapshotEntry('ack-apply', 'b')).toMatchObject({ hash: 'h6', payload: '{"v":6}' });
        const g2 = await store.snapshotGeneration('ack-apply');
        expect(g2).not.toBe(g1);
        // Nothing left to merge: the close keeps the generation the last batch made, and says so.
        await acks.close({ eachKeyOnce: true });
        expect(acks.generation).toBe(g2);
        expect(await store.snapshotGeneration('ack-apply')).toBe(g2);
        expect(Object.fromEntries(await index('ack-apply'))).toEqual({ a: { hash: 'h1', ordering: 1 }, b: { hash: 'h6', ordering: 6 }, c: { hash: 'h4', ordering: 4 }, d: { hash: 'h6', ordering: 6 } });
      });

      it('keeps what an applied batch wrote, and merges what was only logged, when the session dies', async () => {
        const acks = await store.openAckSession('apply-crash');
        await acks.record({ acknowledged: [{ key: 'k1', hash: 'h1', ordering: 1, payload: '{}' }] }, { apply: true });
        await acks.record({ acknowledged: [{ key: 'k1', hash: 'h2', ordering: 2, payload: '{}' }, { key: 'k2', hash: 'h1', ordering: 1, payload: '{}' }] });
        // No close: the process died here. The applied batch is in the snapshot, the logged one in the index.
        expect(await store.getSnapshotEntry('apply-crash', 'k1')).toMatchObject({ hash: 'h1' });
        expect(Object.fromEntries(await index('apply-crash'))).toEqual({ k1: { hash: 'h2', ordering: 2 }, k2: { hash: 'h1', ordering: 1 } });
        const next = await store.openAckSession('apply-crash');
        expect(await store.getSnapshotEntry('apply-crash', 'k1')).toMatchObject({ hash: 'h2', ordering: 2 });
        expect(await store.countSnapshot('apply-crash')).toBe(2);
        // A batch of a superseded session applies nothing.
        await expect(acks.record({ acknowledged: [{ key: 'k3', hash: 'h', ordering: null }] }, { apply: true })).rejects.toMatchObject({ code: 'STATE007' });
        await next.close();
        expect(await store.countSnapshot('apply-crash')).toBe(2);
      });

      it('refuses rows without a key or hash, writing nothing', async () => {
        const acks = await store.openAckSession('bad');
        await expect(acks.append([{ key: 'ok', hash: 'h' }, { key: '', hash: 'h' }])).rejects.toThrow(/without a key/);
        await acks.close();
        expect(await store.countSnapshot('bad')).toBe(0);
      });
    });

    describe('pending entries', () => {
      const entry = (key: string, v: number, reason = 'retryable') => ({ key, hash: `h${v}`, ordering: v, payload: `{"v":${v}}`, location: `data/x.ndjson:${v}`, reason });

      it('records acks, pending entries and settled keys of one chunk together, the latest pending entry of a key winning', async () => {
        const acks = await store.openAckSession('pend');
        await acks.record({ acknowledged: [{ key: 'a', hash: 'h1', ordering: 1, payload: '{}' }], pending: [entry('b', 1), entry('c', 1, 'unacknowledged')] });
        expect(await store.readPending('pend')).toEqual([entry('b', 1), entry('c', 1, 'unacknowledged')]);
        // A newer entry of b replaces the old one; c was acknowledged, so its pending entry is settled.
        await acks.record({ acknowledged: [{ key: 'c', hash: 'h1', ordering: 1, payload: '{}' }], pending: [entry('b', 2), entry('b', 3)], settled: ['c'] });
        expect(await store.readPending('pend')).toEqual([entry('b', 3)]);
        expect(await store.countPending('pend')).toBe(1);
        await acks.close();
        expect(await store.countSnapshot('pend')).toBe(2);
        // Pending entries outlive the session: the next run sends them.
        expect(await store.readPending('pend')).toEqual([entry('b', 3)]);
        await store.dropSnapshot('pend');
        expect(await store.countPending('pend')).toBe(0);
      });

      it('writes nothing of a chunk whose session was superseded, and nothing when one pending entry is bad', async () => {
        const acks = await store.openAckSession('pend-old');
        const next = await store.openAckSession('pend-old');
        await expect(acks.record({ acknowledged: [{ key: 'a', hash: 'h', ordering: null }], pending: [entry('b', 1)] })).rejects.toMatchObject({ code: 'STATE007' });
        await expect(next.record({ acknowledged: [{ key: 'a', hash: 'h', ordering: null }], pending: [entry('b', 1), { ...entry('c', 1), reason: '' }] })).rejects.toThrow(/reason/);
        await next.close();
        expect(await store.countPending('pend-old')).toBe(0);
        expect(await store.countSnapshot('pend-old')).toBe(0);
      });

      it('keeps pending entries per source', async () => {
        const one = await store.openAckSession('pend-one');
        await one.record({ acknowledged: [], pending: [entry('k', 1)] });
        await one.close();
        expect(await store.readPending('pend-two')).toEqual([]);
        expect(await store.countPending('pend-one')).toBe(1);
      });
    });
  });
}
