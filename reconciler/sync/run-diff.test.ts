import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { findPrint } from './record-prints.ts';
import { PendingBook, RunDiff, type RowClass } from './run-diff.ts';

describe('RunDiff', () => {
  const snapshot = (): RunDiff => {
    const d = new RunDiff();
    d.load('same', 'h1', 100);
    d.load('edited', 'h1', 100);
    d.load('stale', 'h1', 100);
    d.load('unordered', 'h1', null);
    return d;
  };

  it('classifies rows against what was acknowledged', () => {
    const d = snapshot();
    expect(d.offer('same', 'h1', 200).verdict).toBe('unchanged');
    expect(d.offer('edited', 'h2', 200).verdict).toBe('changed');
    expect(d.offer('stale', 'h2', 50).verdict).toBe('out_of_order');
    expect(d.offer('unordered', 'h2', 1).verdict).toBe('changed');
    expect(d.offer('fresh', 'h9', null).verdict).toBe('new');
    expect(d.counts()).toEqual({ staged: 5, duplicates: 0, new: 1, changed: 2, unchanged: 1, outOfOrder: 1 });
    expect(d.snapshotSize).toBe(4);
    expect(d.inSnapshot('fresh')).toBe(false);
    expect(d.inSnapshot('same')).toBe(true);
  });

  it('keeps the most recent row of a key read twice, ties to the later one, and says which it displaced', () => {
    const d = snapshot();
    expect(d.offer('edited', 'h2', 300).verdict).toBe('changed');
    expect(d.offer('edited', 'h3', 200)).toMatchObject({ verdict: 'duplicate' });
    expect(d.offer('edited', 'h1', 300)).toMatchObject({ verdict: 'unchanged', displaced: 'changed' });
    expect(d.offer('edited', 'h4', null)).toMatchObject({ verdict: 'duplicate' });
    expect(d.offer('n', 'a', null).verdict).toBe('new');
    expect(d.offer('n', 'b', null)).toMatchObject({ verdict: 'new', displaced: 'new' });
    expect(d.offer('n', 'c', 5)).toMatchObject({ verdict: 'new', displaced: 'new' });
    expect(d.counts()).toEqual({ staged: 2, duplicates: 5, new: 1, changed: 0, unchanged: 1, outOfOrder: 0 });
  });

  it('lets a later load of a key win (unmerged acknowledgements come after the snapshot)', () => {
    const d = new RunDiff();
    d.load('k', 'old', 1);
    d.load('k', 'new', 2);
    expect(d.offer('k', 'new', 2).verdict).toBe('unchanged');
    expect(d.snapshotSize).toBe(1);
  });

  it('agrees with a direct reading of the rules on any sequence of rows (property)', () => {
    const key = fc.constantFrom('a', 'b', 'c', 'd', 'e');
    const hash = fc.constantFrom('h1', 'h2', 'h3');
    const ordering = fc.option(fc.integer({ min: 0, max: 5 }), { nil: null });
    const row = fc.record({ key, hash, ordering });
    fc.assert(
      fc.property(fc.array(row, { maxLength: 12 }), fc.array(row, { maxLength: 40 }), (acked, incoming) => {
        const d = new RunDiff();
        const snap = new Map<string, { hash: string; ordering: number | null }>();
        for (const r of acked) {
          d.load(r.key, r.hash, r.ordering);
          snap.set(r.key, r);
        }
        // The winner per key: the highest ordering (absent lowest), ties to the later row.
        const winners = new Map<string, (typeof incoming)[number]>();
        for (const r of incoming) {
          const w = winners.get(r.key);
          const rank = (o: number | null) => (o === null ? -1 : o);
          if (!w || rank(r.ordering) >= rank(w.ordering)) winners.set(r.key, r);
        }
        const expected = { staged: winners.size, duplicates: incoming.length - winners.size, new: 0, changed: 0, unchanged: 0, outOfOrder: 0 };
        for (const [k, w] of winners) {
          const s = snap.get(k);
          const c: RowClass = !s ? 'new' : s.hash === w.hash ? 'unchanged' : w.ordering !== null && s.ordering !== null && w.ordering < s.ordering ? 'out_of_order' : 'changed';
          if (c === 'out_of_order') expected.outOfOrder++;
          else expected[c]++;
        }
        // Replaying the engine's bookkeeping: the class each key ends with is the last non-duplicate verdict.
        const last = new Map<string, RowClass>();
        for (const r of incoming) {
          const o = d.offer(r.key, r.hash, r.ordering);
          if (o.verdict !== 'duplicate') {
            if (o.displaced) expect(last.get(r.key)).toBe(o.displaced);
            last.set(r.key, o.verdict);
          }
        }
        expect(d.counts()).toEqual(expected);
      }),
      { numRuns: 500 },
    );
  });
});

describe('RunDiff hash storage', () => {
  it('compares packed hex hashes by every digit, and other hashes as text', () => {
    const d = new RunDiff();
    const h = '0123456789abcdef0123456789abcdef';
    for (let i = 0; i < 3000; i++) d.load(`k${i}`, i === 7 ? 'not-hex' : h, null);
    expect(d.offer('k1', h, null).verdict).toBe('unchanged');
    // The last digit differs: every one of the 128 bits counts.
    expect(d.offer('k2', `${h.slice(0, 31)}e`, null).verdict).toBe('changed');
    expect(d.offer('k3', `f${h.slice(1)}`, null).verdict).toBe('changed');
    expect(d.offer('k7', 'not-hex', null).verdict).toBe('unchanged');
    expect(d.offer('k2999', h.toUpperCase(), null).verdict).toBe('changed');
    expect(d.snapshotSize).toBe(3000);
  });
});

describe('PendingBook', () => {
  const entry = (key: string, ordering: number | null) => ({ key, hash: `h-${key}`, ordering, payload: '{}', location: `f:${key}`, reason: 'retryable' });

  it('lets only a newer row supersede a waiting entry; a row without an ordering counts as newer', () => {
    const book = new PendingBook([entry('a', 10), entry('b', 10), entry('c', 10), entry('d', null)], () => undefined);
    expect(book.admit('a', 9)).toBe(false);
    expect(book.admit('a', 10)).toBe(false);
    expect(book.waiting.has('a')).toBe(true);
    expect(book.admit('b', 11)).toBe(true);
    expect(book.admit('c', null)).toBe(true);
    expect(book.admit('d', 1)).toBe(true);
    expect(book.admit('zz', 1)).toBe(true);
    expect([...book.waiting.keys()]).toEqual(['a']);
    expect([...book.superseded].sort()).toEqual(['b', 'c', 'd']);
    // Once superseded, later rows of the key are not held back by the old entry.
    expect(book.admit('b', 1)).toBe(true);
  });

  it('drops a superseded entry unless a row of its key is on its way, and a leftover older than the snapshot', () => {
    const snapshot = new Map<string, number | null>([['old', 50], ['kept', 5], ['noorder', null]]);
    const book = new PendingBook([entry('old', 40), entry('kept', 10), entry('noorder', 3), entry('x', 1)], (k) => snapshot.get(k));
    expect([...book.waiting.keys()].sort()).toEqual(['kept', 'noorder', 'x']);
    expect([...book.dropped]).toEqual(['old']);
    expect(book.stored.size).toBe(4);

    book.admit('x', 2);
    expect(book.dropped.has('x')).toBe(true);
    book.onTheWay('x');
    expect(book.dropped.has('x')).toBe(false);
    // The row that went out was withdrawn for a later one that is not sent: the old entry is dropped.
    book.withdrawn('x');
    expect(book.dropped.has('x')).toBe(true);
    // A key that never had a waiting entry is never dropped.
    book.withdrawn('kept');
    expect(book.dropped.has('kept')).toBe(false);
  });
});

describe('RunDiff index files (encodeSnapshot, decodeSnapshot)', () => {
  const hex = fc.stringMatching(/^[0-9a-f]{32}$/);
  const entry = fc.record({
    key: fc.oneof(fc.string({ minLength: 1, maxLength: 6 }), fc.constantFrom('a', 'b', 'é', '🙂', 'line\nend')),
    // Engine hashes are 32 hex digits; anything else is kept as text.
    hash: fc.oneof(hex, fc.constantFrom('odd', 'h1', '')),
    ordering: fc.option(fc.integer({ min: -1e12, max: 1e12 }), { nil: null }),
  });

  it('decodes to what the store holds after the merge: the loaded entries with the acknowledgements laid over, last one winning (property)', () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 30 }), fc.array(entry, { maxLength: 30 }), fc.array(entry, { maxLength: 10 }), (loaded, acked, probes) => {
        const d = new RunDiff();
        const merged = new Map<string, { hash: string; ordering: number | null }>();
        for (const e of loaded) {
          d.load(e.key, e.hash, e.ordering);
          merged.set(e.key, e);
        }
        // Rows read during the run change nothing the file holds; only acknowledgements do.
        for (const e of [...acked].reverse()) d.offer(e.key, 'f'.repeat(32), 1);
        for (const e of acked) {
          d.acknowledge(e.key, e.hash, e.ordering);
          merged.set(e.key, e);
        }
        // What the store's merge is told: whether some key was acknowledged twice (then it must pick).
        expect(d.ackedTwice).toBe(new Set(acked.map((e) => e.key)).size !== acked.length);
        const bytes = Buffer.concat(d.encodeSnapshot('gen-1'));
        const fromFile = new RunDiff();
        expect(fromFile.decodeSnapshot(bytes, 'gen-1')).toBe(true);
        const direct = new RunDiff();
        for (const [key, e] of merged) direct.load(key, e.hash, e.ordering);
        expect(fromFile.snapshotSize).toBe(merged.size);
        for (const e of [...merged.keys()].map((key) => ({ key, hash: merged.get(key)!.hash, ordering: merged.get(key)!.ordering })).concat(probes)) {
          expect(fromFile.snapshotOrdering(e.key)).toEqual(direct.snapshotOrdering(e.key));
          // Slots are numbered in the order keys were first seen, which differs: compare the verdicts.
          const { slot: _a, ...got } = fromFile.offer(e.key, e.hash, e.ordering);
          const { slot: _b, ...want } = direct.offer(e.key, e.hash, e.ordering);
          expect(got).toEqual(want);
        }
        expect(fromFile.counts()).toEqual(direct.counts());
      }),
      { numRuns: 200 },
    );
  });

  it('writes the same file with its header reserved before the generation is known (snapshotFile, property)', () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 30 }), fc.array(entry, { maxLength: 30 }), fc.stringMatching(/^[0-9a-z]{1,40}$/), (loaded, acked, generation) => {
        const build = () => {
          const d = new RunDiff();
          for (const e of loaded) d.load(e.key, e.hash, e.ordering);
          for (const e of acked) d.acknowledge(e.key, e.hash, e.ordering);
          return d;
        };
        const plain = Buffer.concat(build().encodeSnapshot(generation));
        const { prefix, prefixLength, body } = build().snapshotFile(true);
        const head = prefix(generation);
        expect(head.length).toBe(prefixLength);
        const ahead = Buffer.concat([head, ...body]);
        // The same sections after a longer header: the header is the only difference.
        expect(ahead.subarray(prefixLength!)).toEqual(plain.subarray(plain.length - (ahead.length - prefixLength!)));
        const a = new RunDiff();
        const b = new RunDiff();
        expect(a.decodeSnapshot(ahead, generation)).toBe(true);
        expect(b.decodeSnapshot(plain, generation)).toBe(true);
        expect(a.snapshotSize).toBe(b.snapshotSize);
        for (const e of [...loaded, ...acked]) expect(a.offer(e.key, e.hash, e.ordering)).toEqual(b.offer(e.key, e.hash, e.ordering));
        expect(a.decodeSnapshot(ahead, `${generation}x`)).toBe(false);
      }),
      { numRuns: 100 },
    );
  });

  it('says when its body is views of its arrays only: not when a key read was left out (never acknowledged)', () => {
    const d = new RunDiff();
    d.load('a', 'a'.repeat(32), 1);
    d.offer('b', 'b'.repeat(32), 2);
    d.acknowledge('a', 'c'.repeat(32), 3);
    expect(d.snapshotFile().viewsOnly).toBe(false);
    d.acknowledge('b', 'b'.repeat(32), 2);
    expect(d.snapshotFile().viewsOnly).toBe(true);
  });

  it('refuses a generation longer than the header it reserved', () => {
    const d = new RunDiff();
    d.load('a', 'a'.repeat(32), 1);
    const { prefix, prefixLength } = d.snapshotFile(true);
    expect(prefix('g'.repeat(160)).length).toBe(prefixLength);
    expect(() => prefix('g'.repeat(170))).toThrow(/does not fit/);
  });

  it('keeps record prints and their effects through the file: an acknowledgement lays its own print over, or none', () => {
    const d = new RunDiff();
    d.load('a', 'a'.repeat(32), 1);
    d.load('b', 'b'.repeat(32), 2);
    d.load('c', 'c'.repeat(32), null);
    d.usePrintsUnder('context-1');
    const p = Uint32Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
    d.learn(0, p, 0, 1, ['country'], []);
    d.learn(1, p, 4, 2, [], []);
    // Another ordering than the snapshot's: the print would claim the wrong one.
    d.learn(2, p, 12, 7, [], []);
    d.acknowledge('b', 'e'.repeat(32), 3);
    d.acknowledge('c', 'f'.repeat(32), null, { words: p, at: 8, nullBlocked: [], heldBack: ['plan_updated_at'] });
    const bytes = Buffer.concat(d.encodeSnapshot('gen-1'));
    const fromFile = new RunDiff();
    expect(fromFile.decodeSnapshot(bytes, 'gen-1')).toBe(true);
    expect(fromFile.printContext).toBe('context-1');
    const share = fromFile.printShare()!;
    expect(findPrint(share, p, 0)).toBe(0);
    expect(fromFile.effectsAt(0)).toEqual([['country'], []]);
    expect(findPrint(share, p, 4)).toBe(-1);
    expect(findPrint(share, p, 8)).toBe(2);
    expect(fromFile.effectsAt(2)).toEqual([[], ['plan_updated_at']]);
    expect(findPrint(share, p, 12)).toBe(-1);
    // Another context drops every print.
    expect(fromFile.usePrintsUnder('context-2')).toBe(false);
    expect(fromFile.printShare()).toBeUndefined();
    // Effect id 0 means "none": a file whose first entry lists fields (same length, entries swapped) is refused.
    const text = bytes.toString('latin1');
    const swapped = text.replace('[[[],[]],[["country"],[]]', '[[["country"],[]],[[],[]]');
    expect(swapped).not.toBe(text);
    expect(new RunDiff().decodeSnapshot(Buffer.from(swapped, 'latin1'), 'gen-1')).toBe(false);
  });

  it('refuses a file of another generation, a truncated one, and bytes that are not an index file', () => {
    const d = new RunDiff();
    d.load('a', 'a'.repeat(32), 1);
    d.load('b', 'odd', null);
    const bytes = Buffer.concat(d.encodeSnapshot('gen-1'));
    expect(new RunDiff().decodeSnapshot(bytes, 'gen-2')).toBe(false);
    expect(new RunDiff().decodeSnapshot(bytes.subarray(0, bytes.length - 1), 'gen-1')).toBe(false);
    expect(new RunDiff().decodeSnapshot(Buffer.from('not an index file at all'), 'gen-1')).toBe(false);
    const ok = new RunDiff();
    expect(ok.decodeSnapshot(bytes, 'gen-1')).toBe(true);
    expect(ok.offer('b', 'odd', null).verdict).toBe('unchanged');
    expect(ok.offer('a', 'a'.repeat(32), 0).verdict).toBe('unchanged');
  });
});
