import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StateError } from '../../reconciler/state/errors.ts';
import type { SnapshotDiffClass, SnapshotDiffRow, StagedRow, StateStore } from '../../reconciler/state/types.ts';
import { stateBackends, testClock } from './harness.ts';

const backends = await stateBackends('snapshot');

/** Stages rows, seals, commits every given key, discards: what a successful sync run leaves behind. */
async function syncOnce(store: StateStore, source: string, rows: StagedRow[], ack: string[] = rows.map((r) => r.key)): Promise<void> {
  const stage = await store.openStage(source);
  await stage.add(rows);
  await stage.seal();
  await stage.commit(ack);
  await stage.discard();
}

async function collect(it: AsyncIterable<SnapshotDiffRow>): Promise<SnapshotDiffRow[]> {
  const out: SnapshotDiffRow[] = [];
  for await (const r of it) out.push(r);
  return out;
}

// ----- the naive model the SQL must agree with

interface ModelEntry {
  hash: string;
  ordering: number | null;
  payload: string | null;
}

function beats(w: { ordering: number | null; seq: number }, l: { ordering: number | null; seq: number }): boolean {
  if (w.ordering !== null && (l.ordering === null || w.ordering > l.ordering)) return true;
  return w.ordering === l.ordering && w.seq > l.seq;
}

function naiveDiff(entries: ReadonlyMap<string, ModelEntry>, incoming: readonly StagedRow[]) {
  const winners = new Map<string, { row: StagedRow; seq: number; ordering: number | null }>();
  incoming.forEach((row, i) => {
    const cand = { row, seq: i + 1, ordering: row.ordering ?? null };
    const cur = winners.get(row.key);
    if (!cur || beats(cand, cur)) winners.set(row.key, cand);
  });
  const classes = new Map<string, SnapshotDiffClass>();
  for (const [key, w] of winners) {
    const e = entries.get(key);
    if (!e) classes.set(key, 'new');
    else if (e.hash === w.row.hash) classes.set(key, 'unchanged');
    else if (w.ordering !== null && e.ordering !== null && w.ordering < e.ordering) classes.set(key, 'out_of_order');
    else classes.set(key, 'changed');
  }
  for (const key of entries.keys()) if (!winners.has(key)) classes.set(key, 'removed');
  return { winners, classes, duplicates: incoming.length - winners.size };
}

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

    it('classifies keys as new, changed, unchanged or out of order against what was sent', async () => {
      await syncOnce(store, 'classes', [
        { key: 'same', hash: 'h1', ordering: 100 },
        { key: 'edited', hash: 'h1', ordering: 100 },
        { key: 'stale', hash: 'h1', ordering: 100 },
        { key: 'tie', hash: 'h1', ordering: 100 },
        { key: 'unordered', hash: 'h1' },
        { key: 'same_but_older', hash: 'h1', ordering: 100 },
      ]);
      const sentAt = clock.now().toISOString();
      clock.advance(1000);
      const stage = await store.openStage('classes');
      await stage.add([
        { key: 'same', hash: 'h1', ordering: 200 },
        { key: 'edited', hash: 'h2', ordering: 200, payload: '{"plan":"gold"}' },
        { key: 'stale', hash: 'h2', ordering: 50 },
        { key: 'tie', hash: 'h2', ordering: 100 },
        { key: 'unordered', hash: 'h2', ordering: 10 },
        { key: 'same_but_older', hash: 'h1', ordering: 1 },
        { key: 'fresh', hash: 'h9' },
      ]);
      expect(await stage.seal({ keepUnchanged: true })).toEqual({
        staged: 7,
        duplicates: 0,
        new: 1,
        changed: 3,
        unchanged: 2,
        outOfOrder: 1,
      });
      const rows = await collect(stage.diff(['new', 'changed', 'unchanged', 'out_of_order']));
      const prev = (ordering: number | null) => ({ hash: 'h1', ordering, sentAt });
      expect(rows).toEqual([
        { seq: 1, key: 'same', class: 'unchanged', hash: 'h1', ordering: 200, payload: null, previous: prev(100) },
        { seq: 2, key: 'edited', class: 'changed', hash: 'h2', ordering: 200, payload: '{"plan":"gold"}', previous: prev(100) },
        { seq: 3, key: 'stale', class: 'out_of_order', hash: 'h2', ordering: 50, payload: null, previous: prev(100) },
        { seq: 4, key: 'tie', class: 'changed', hash: 'h2', ordering: 100, payload: null, previous: prev(100) },
        { seq: 5, key: 'unordered', class: 'changed', hash: 'h2', ordering: 10, payload: null, previous: prev(null) },
        { seq: 6, key: 'same_but_older', class: 'unchanged', hash: 'h1', ordering: 1, payload: null, previous: prev(100) },
        { seq: 7, key: 'fresh', class: 'new', hash: 'h9', ordering: null, payload: null, previous: null },
      ]);
      expect((await collect(stage.diff(['new', 'changed']))).map((r) => r.key)).toEqual(['edited', 'tie', 'unordered', 'fresh']);
      await stage.discard();
    });

    it('advances the snapshot only for acknowledged keys', async () => {
      await syncOnce(store, 'acks', [
        { key: 'a', hash: 'a1' },
        { key: 'b', hash: 'b1' },
      ]);
      clock.advance(1000);
      const stage = await store.openStage('acks');
      await stage.add([
        { key: 'a', hash: 'a2', payload: 'A2' },
        { key: 'b', hash: 'b2', payload: 'B2' },
        { key: 'c', hash: 'c1', payload: 'C1' },
        { key: 'd', hash: 'd1' },
      ]);
      await stage.seal();
      // Only a and c were acknowledged by the remote side; b's batch failed; d was never sent.
      expect(await stage.commit(['a', 'c', 'not-staged'])).toBe(2);
      // The diff of a sealed stage is fixed: committing does not change it.
      expect((await collect(stage.diff(['new', 'changed']))).map((r) => r.key)).toEqual(['a', 'b', 'c', 'd']);
      await stage.discard();

      expect(await store.getSnapshotEntry('acks', 'a')).toEqual({ key: 'a', hash: 'a2', ordering: null, sentAt: clock.now().toISOString(), payload: 'A2' });
      expect(await store.getSnapshotEntry('acks', 'b')).toMatchObject({ hash: 'b1', payload: null });
      expect(await store.getSnapshotEntry('acks', 'd')).toBeUndefined();
      expect(await store.countSnapshot('acks')).toBe(3);

      // The next run resends exactly what was not acknowledged.
      const again = await store.openStage('acks');
      await again.add([
        { key: 'a', hash: 'a2' },
        { key: 'b', hash: 'b2' },
        { key: 'c', hash: 'c1' },
        { key: 'd', hash: 'd1' },
      ]);
      expect(await again.seal()).toMatchObject({ new: 1, changed: 1, unchanged: 2 });
      expect((await collect(again.diff(['new', 'changed']))).map((r) => [r.key, r.class])).toEqual([
        ['b', 'changed'],
        ['d', 'new'],
      ]);
      // Committing a row staged without payload forgets the old mirror payload.
      await again.commit(['a']);
      await again.discard();
      expect(await store.getSnapshotEntry('acks', 'a')).toMatchObject({ hash: 'a2', payload: null });
    });

    it('keeps acknowledgements made before a crash and applies them when the next stage opens', async () => {
      await syncOnce(store, 'crash', [{ key: 'a', hash: 'a1' }]);
      const stage = await store.openStage('crash');
      await stage.add([
        { key: 'a', hash: 'a2' },
        { key: 'b', hash: 'b1' },
      ]);
      await stage.seal();
      expect(await stage.commit(['b'])).toBe(1);
      // The process dies here: no discard. The next run opens a new stage for the source.
      const next = await store.openStage('crash');
      await next.add([
        { key: 'a', hash: 'a2' },
        { key: 'b', hash: 'b1' },
      ]);
      expect(await next.seal()).toMatchObject({ new: 0, changed: 1, unchanged: 1 });
      expect((await collect(next.diff(['changed']))).map((r) => r.key)).toEqual(['a']);
      await next.discard();
      expect(await store.getSnapshotEntry('crash', 'b')).toMatchObject({ hash: 'b1' });
    });

    it('keeps one row per key: the most recent ordering wins, ties go to the row staged last', async () => {
      const stage = await store.openStage('dups');
      await stage.add([
        { key: 'k1', hash: 'old', ordering: 5 },
        { key: 'k1', hash: 'newest', ordering: 9 },
        { key: 'k1', hash: 'middle', ordering: 7 },
        { key: 'k2', hash: 'first' },
        { key: 'k2', hash: 'last' },
        { key: 'k3', hash: 'dated', ordering: 1 },
        { key: 'k3', hash: 'undated' },
        { key: 'k4', hash: 'x', ordering: 3 },
        { key: 'k4', hash: 'y', ordering: 3 },
      ]);
      expect(await stage.seal()).toMatchObject({ staged: 4, duplicates: 5, new: 4 });
      expect((await collect(stage.diff(['new']))).map((r) => [r.seq, r.key, r.hash])).toEqual([
        [2, 'k1', 'newest'],
        [5, 'k2', 'last'],
        [6, 'k3', 'dated'],
        [9, 'k4', 'y'],
      ]);
      await stage.discard();
    });

    it('finds removed keys on request, and deletes them from the snapshot once acknowledged', async () => {
      await syncOnce(store, 'removal', [
        { key: 'stay', hash: 's', payload: 'S' },
        { key: 'gone1', hash: 'g', payload: 'G' },
        { key: 'gone2', hash: 'g' },
      ]);
      const stage = await store.openStage('removal');
      await stage.add([{ key: 'stay', hash: 's' }]);
      expect(await stage.seal({ detectRemoved: true })).toMatchObject({ staged: 1, unchanged: 1, removed: 2 });
      const removed = await collect(stage.diff(['removed']));
      expect(removed.map((r) => [r.seq, r.key, r.class, r.hash, r.previous?.hash])).toEqual([
        [2, 'gone1', 'removed', null, 'g'],
        [3, 'gone2', 'removed', null, 'g'],
      ]);
      expect(await stage.commit(['gone1'])).toBe(1);
      await stage.discard();
      expect(await store.getSnapshotEntry('removal', 'gone1')).toBeUndefined();
      expect(await store.getSnapshotEntry('removal', 'gone2')).toMatchObject({ hash: 'g' });
      expect(await store.getSnapshotEntry('removal', 'stay')).toMatchObject({ payload: 'S' });
    });

    it('refuses to iterate classes it did not keep', async () => {
      const stage = await store.openStage('refuse');
      await stage.add([{ key: 'a', hash: 'h' }]);
      await stage.seal();
      await expect(collect(stage.diff(['unchanged']))).rejects.toThrow(/keepUnchanged/);
      await expect(collect(stage.diff(['removed']))).rejects.toThrow(/detectRemoved/);
      await expect(stage.add([{ key: 'b', hash: 'h' }])).rejects.toBeInstanceOf(StateError);
      await expect(stage.seal()).rejects.toBeInstanceOf(StateError);
      await stage.discard();
      await stage.discard();
    });

    it('streams rows from async sources and pages through the diff in staging order', async () => {
      async function* rows() {
        for (let i = 0; i < 25; i++) yield { key: `key-${String(24 - i).padStart(2, '0')}`, hash: `h${i}`, ordering: i };
      }
      const stage = await store.openStage('paging');
      expect(await stage.add(rows())).toBe(25);
      expect(await stage.add([{ key: 'extra', hash: 'e' }])).toBe(1);
      await stage.seal();
      const seen = await collect(stage.diff(['new'], { pageSize: 4 }));
      expect(seen.map((r) => r.seq)).toEqual(Array.from({ length: 26 }, (_, i) => i + 1));
      expect(seen[0]!.key).toBe('key-24');
      expect(await stage.commit(seen.map((r) => r.key))).toBe(26);
      await stage.discard();

      const mirror: string[] = [];
      for await (const e of store.iterateSnapshot('paging', { pageSize: 7 })) mirror.push(e.key);
      expect(mirror).toHaveLength(26);
      expect(new Set(mirror).size).toBe(26);
      expect(await store.countSnapshot('paging')).toBe(26);
      await store.dropSnapshot('paging');
      expect(await store.countSnapshot('paging')).toBe(0);
    });

    it('lets a newer staging session of the same source supersede an older one', async () => {
      const old = await store.openStage('superseded');
      await old.add([{ key: 'a', hash: 'old' }]);
      const current = await store.openStage('superseded');
      await current.add([{ key: 'a', hash: 'new' }]);
      await expect(old.add([{ key: 'b', hash: 'x' }])).rejects.toMatchObject({ code: 'STATE007' });
      // Discarding the superseded session must not destroy its successor's tables.
      await old.discard();
      expect(await current.seal()).toMatchObject({ staged: 1, new: 1 });
      expect((await collect(current.diff(['new'])))[0]).toMatchObject({ key: 'a', hash: 'new' });
      await current.discard();
    });

    it('agrees with a naive in-memory diff on arbitrary snapshots, batches and acknowledgements', async () => {
      const key = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h');
      const row = fc.record({
        key,
        hash: fc.constantFrom('h1', 'h2', 'h3'),
        ordering: fc.option(fc.integer({ min: -3, max: 3 }), { nil: null }),
        payload: fc.option(fc.constantFrom('p1', 'p2'), { nil: null }),
      });
      let run = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(row, { maxLength: 12 }), fc.array(row, { maxLength: 16 }), fc.array(key, { maxLength: 10 }), async (initial, incoming, ack) => {
          const source = `prop_${run++}`;
          await syncOnce(store, source, initial);
          const entries = new Map<string, ModelEntry>();
          for (const [k, w] of naiveDiff(new Map(), initial).winners) entries.set(k, { hash: w.row.hash, ordering: w.ordering, payload: w.row.payload ?? null });

          const model = naiveDiff(entries, incoming);
          const stage = await store.openStage(source);
          await stage.add(incoming);
          const counts = await stage.seal({ detectRemoved: true, keepUnchanged: true });
          const count = (c: SnapshotDiffClass) => [...model.classes.values()].filter((x) => x === c).length;
          expect(counts).toEqual({
            staged: model.winners.size,
            duplicates: model.duplicates,
            new: count('new'),
            changed: count('changed'),
            unchanged: count('unchanged'),
            outOfOrder: count('out_of_order'),
            removed: count('removed'),
          });

          const rows = await collect(stage.diff(['new', 'changed', 'unchanged', 'out_of_order', 'removed'], { pageSize: 3 }));
          expect(rows.map((r) => r.seq)).toEqual([...rows.map((r) => r.seq)].sort((x, y) => x - y));
          expect(Object.fromEntries(rows.map((r) => [r.key, r.class]))).toEqual(Object.fromEntries(model.classes));
          for (const r of rows) {
            const w = model.winners.get(r.key);
            if (w) expect([r.seq, r.hash, r.ordering, r.payload]).toEqual([w.seq, w.row.hash, w.ordering, w.row.payload ?? null]);
            const e = entries.get(r.key);
            expect(r.previous && { hash: r.previous.hash, ordering: r.previous.ordering }).toEqual(e ? { hash: e.hash, ordering: e.ordering } : null);
          }

          await stage.commit(ack);
          await stage.discard();
          for (const k of new Set(ack)) {
            const w = model.winners.get(k);
            if (w) entries.set(k, { hash: w.row.hash, ordering: w.ordering, payload: w.row.payload ?? null });
            else entries.delete(k);
          }
          const stored = new Map<string, ModelEntry>();
          for await (const e of store.iterateSnapshot(source)) stored.set(e.key, { hash: e.hash, ordering: e.ordering, payload: e.payload });
          expect(stored).toEqual(entries);
          await store.dropSnapshot(source);
        }),
        { numRuns: b.name === 'sqlite' ? 150 : 40 },
      );
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
