/**
 * The diff's key table over bytes (reconciler/sync/key-table.ts) and the index file it is loaded from
 * and written to (run-diff.ts, snapshot-index-file.ts): every key found again, as the string it was,
 * whatever it holds, and a file of many blocks of slots read back to exactly what was written.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeKey, hashBytes, KEY_HASH, KeyTable } from '../../reconciler/sync/key-table.ts';
import { parseIndexHeader, RunDiff } from '../../reconciler/sync/run-diff.ts';
import { SnapshotIndexFiles } from '../../reconciler/sync/snapshot-index-file.ts';

const bytesOf = (key: string): Buffer => {
  const out = new Uint8Array(3 * key.length);
  return Buffer.from(out.buffer, 0, encodeKey(key, out));
};

describe('KeyTable over bytes', () => {
  it('agrees with a Map on any keys: lone surrogates, astral characters, the empty key (property)', () => {
    const key = fc.oneof(fc.string({ unit: 'binary', maxLength: 8 }), fc.constantFrom('', 'a', 'é', '🙂', '\uD800', '\uDC00', '\uFFFD', 'a\uD83D', '\uDE42b'));
    fc.assert(
      fc.property(fc.array(key, { maxLength: 400 }), fc.array(key, { maxLength: 50 }), (keys, probes) => {
        const t = new KeyTable();
        const expected = new Map<string, number>();
        for (const k of keys) {
          if (!expected.has(k)) expected.set(k, expected.size);
          expect(t.intern(k)).toBe(expected.get(k));
        }
        expect(t.size).toBe(expected.size);
        for (const [k, slot] of expected) {
          expect(t.find(k)).toBe(slot);
          expect(t.keyAt(slot)).toBe(k);
        }
        for (const p of probes) expect(t.find(p)).toBe(expected.get(p) ?? -1);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps a lone surrogate apart from the replacement character, and stores well-formed text as UTF-8', () => {
    const t = new KeyTable();
    const lone = t.intern('x\uD800');
    const replaced = t.intern('x\uFFFD');
    expect(lone).not.toBe(replaced);
    expect(t.keyAt(lone)).toBe('x\uD800');
    expect(t.keyAt(replaced)).toBe('x\uFFFD');
    for (const s of ['plain', 'é', '日本語', '🙂 smile', '']) expect(bytesOf(s).equals(Buffer.from(s, 'utf8'))).toBe(true);
  });

  it('tells apart keys whose 32-bit hashes are equal', () => {
    // Found, not assumed: a pair of generated keys with the same hash (a birthday search over 2^18 keys,
    // sorted as hash * 2^20 + index, which a double holds exactly; ~8 pairs expected).
    const name = (i: number) => (Math.imul(i, 0x9e3779b1) >>> 0).toString(36);
    const n = 1 << 18;
    const tagged = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const b = bytesOf(name(i));
      tagged[i] = hashBytes(b, 0, b.length) * 2 ** 20 + i;
    }
    tagged.sort();
    let pair: [string, string] | undefined;
    for (let i = 1; i < n && !pair; i++) {
      if (Math.floor(tagged[i]! / 2 ** 20) === Math.floor(tagged[i - 1]! / 2 ** 20)) pair = [name(tagged[i - 1]! % 2 ** 20), name(tagged[i]! % 2 ** 20)];
    }
    expect(pair).toBeDefined();
    if (!pair) return;
    const [a, b] = pair;
    const t = new KeyTable();
    expect(t.intern(a)).toBe(0);
    expect(t.find(b)).toBe(-1);
    expect(t.intern(b)).toBe(1);
    expect(t.find(a)).toBe(0);
    expect(t.find(b)).toBe(1);
    expect([t.keyAt(0), t.keyAt(1)]).toEqual([a, b]);
  });

  it('finds every key, and interns a known one to its slot, after growing its buckets, offsets and arena many times', () => {
    const t = new KeyTable();
    const n = 120_000;
    // Keys of growing length, so the arena grows by more than one key at a time too.
    const key = (i: number) => `${i}:${'é'.repeat(i % 40)}`;
    const wrong: number[] = [];
    for (let i = 0; i < n; i++) {
      if (t.intern(key(i)) !== i) wrong.push(i);
      // An earlier key interned again at every size the table passes through: intern probes on its own, not through find.
      if (t.intern(key(i >> 1)) !== i >> 1) wrong.push(-i);
    }
    for (let i = 0; i < n; i++) if (t.find(key(i)) !== i || t.keyAt(i) !== key(i)) wrong.push(i);
    expect(wrong.slice(0, 10)).toEqual([]);
    expect(t.find(`${n}:`)).toBe(-1);
    expect(t.size).toBe(n);
  });

  it('is built from an index file’s sections, and refuses a key held twice or offsets out of order', () => {
    const keys = ['a', '', 'é', 'a\uD800', 'bb'];
    const parts = keys.map(bytesOf);
    const arena = Buffer.concat(parts);
    const ends = new Uint32Array(keys.length + 10);
    let end = 0;
    parts.forEach((p, i) => (ends[i] = end += p.length));
    const t = KeyTable.fromSections(arena, ends, keys.length)!;
    expect(t).toBeDefined();
    keys.forEach((k, i) => {
      expect(t.find(k)).toBe(i);
      expect(t.keyAt(i)).toBe(k);
    });
    // Room past `count` is used for keys added later.
    expect(t.intern('new')).toBe(keys.length);
    expect(t.find('a')).toBe(0);

    const twice = Buffer.concat([bytesOf('ab'), bytesOf('ab')]);
    expect(KeyTable.fromSections(twice, new Uint32Array([2, 4]), 2)).toBeUndefined();
    expect(KeyTable.fromSections(Buffer.from('abc'), new Uint32Array([2, 1]), 2)).toBeUndefined();
    expect(KeyTable.fromSections(Buffer.from('abc'), new Uint32Array([2, 9]), 2)).toBeUndefined();
  });

  it('takes the buckets an index file kept, and builds them again when they cannot be a table over its keys', () => {
    const source = new KeyTable();
    const keys = Array.from({ length: 5000 }, (_, i) => (i % 7 === 0 ? `é-${i}` : `c${i}`));
    for (const k of keys) source.intern(k);
    const arena = Buffer.concat(keys.map(bytesOf));
    const ends = new Uint32Array(keys.length);
    for (let i = 0, end = 0; i < keys.length; i++) ends[i] = end += bytesOf(keys[i]!).length;
    const kept = source.bucketSection();
    const every = (t: KeyTable) => keys.every((k, i) => t.find(k) === i);

    const taken = KeyTable.fromSections(arena, ends, keys.length, kept.slice())!;
    expect(every(taken)).toBe(true);
    expect(taken.bucketSection()).toEqual(kept);
    // Taken as they are: with every hash word wiped the slots are still placed once, and keys are not found.
    const wiped = kept.slice();
    for (let i = 0; i < wiped.length; i += 2) wiped[i] = 0;
    const blind = KeyTable.fromSections(arena, ends, keys.length, wiped)!;
    expect(keys.filter((k) => blind.find(k) >= 0).length).toBeLessThan(keys.length / 10);

    /** The bucket holding slot + 1 = `slot1`, set to `to`. */
    const moved = (b: Int32Array, slot1: number, to: number) => {
      for (let i = 1; i < b.length; i += 2) if (b[i] === slot1) b[i] = to;
      return b;
    };
    const broken: [string, (b: Int32Array) => Int32Array][] = [
      ['a slot placed twice', (b) => moved(b, 2, 1)],
      ['a slot missing', (b) => moved(b, 3, 0)],
      ['a slot past the keys', (b) => moved(b, 4, keys.length + 1)],
      ['not a power of two of buckets', (b) => Int32Array.from([...b, 0, 0])],
      ['too full', () => new Int32Array(2 * 2048)],
    ];
    for (const [why, breakIt] of broken) {
      const t = KeyTable.fromSections(arena, ends, keys.length, breakIt(kept.slice()));
      expect(t && every(t), why).toBe(true);
    }
  });
});

describe('index files of many blocks of slots', () => {
  const hex = (i: number) => (Math.imul(i, 0x9e3779b1) >>> 0).toString(16).padStart(8, '0').repeat(4);
  /** A diff of n keys where some never reach the snapshot (read, not acknowledged) and some are acknowledged in the run. */
  const build = (n: number, absent: (i: number) => boolean) => {
    const d = new RunDiff();
    const want = new Map<string, { hash: string; ordering: number | null }>();
    for (let i = 0; i < n; i++) {
      const key = i % 1000 === 5 ? `ü-${i}-\uD800` : `k${i}`;
      if (absent(i)) {
        d.offer(key, hex(i), i);
        continue;
      }
      const e = { hash: i % 997 === 1 ? `odd-${i}` : hex(i), ordering: i % 13 === 0 ? null : i * 1.5 };
      d.load(key, e.hash, e.ordering);
      want.set(key, e);
    }
    // Acknowledged during the run: one key that was absent, one that was loaded, with new values.
    const late = { hash: hex(-1), ordering: 7 };
    for (const i of [n - 3, 2]) {
      const key = `k${i}`;
      d.acknowledge(key, late.hash, late.ordering);
      want.set(key, late);
    }
    return { d, want };
  };

  /** The keys that do not read back as expected (plain comparisons: a few hundred thousand expects are slow). */
  const mismatches = (loaded: RunDiff, want: Map<string, { hash: string; ordering: number | null }>, n: number): string[] => {
    const wrong: string[] = [];
    if (loaded.snapshotSize !== want.size) wrong.push(`size ${loaded.snapshotSize}`);
    for (const [key, e] of want) if (!loaded.holds(key, e.hash) || loaded.snapshotOrdering(key) !== e.ordering) wrong.push(key);
    for (let i = 0; i < n; i += 1) {
      const key = i % 1000 === 5 ? `ü-${i}-\uD800` : `k${i}`;
      if (!want.has(key) && loaded.inSnapshot(key)) wrong.push(key);
    }
    return wrong.slice(0, 10);
  };
  const check = (loaded: RunDiff, want: Map<string, { hash: string; ordering: number | null }>, n: number) => expect(mismatches(loaded, want, n)).toEqual([]);

  it('writes only the keys the snapshot holds, block by block, and reads them back (file on disk)', async () => {
    const n = 3 * 65536 + 123;
    // Absent keys in the second block only, and one in the last: views and compacted copies both.
    const { d, want } = build(n, (i) => (i >= 65536 && i < 2 * 65536 && i % 3 === 0) || i === n - 3 || i === n - 1);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tidemark-key-table-'));
    try {
      const files = new SnapshotIndexFiles(dir, 'people');
      expect(await files.save('g1', d.snapshotChunks('g1'))).toBe(true);
      const loaded = new RunDiff();
      expect(await files.load('g1', loaded)).toBe(true);
      check(loaded, want, n);
      // The same bytes as the in-memory encoding of a diff holding exactly the merged entries.
      const direct = new RunDiff();
      for (const [key, e] of want) direct.load(key, e.hash, e.ordering);
      const a = new RunDiff();
      expect(a.decodeSnapshot(Buffer.concat(direct.encodeSnapshot('g1')), 'g1')).toBe(true);
      check(a, want, n);
      expect(await files.load('g2', new RunDiff())).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reads back a diff where every slot stays (the chunks are views of its arrays)', () => {
    const n = 2 * 65536 + 5;
    const { d, want } = build(n, () => false);
    const bytes = Buffer.concat(d.encodeSnapshot('g'));
    // Every slot stays, so the file keeps the key table's buckets (loading builds none).
    expect(parseIndexHeader(bytes)?.header).toMatchObject({ bucketCount: expect.any(Number), keyHash: KEY_HASH });
    const loaded = new RunDiff();
    expect(loaded.decodeSnapshot(bytes, 'g')).toBe(true);
    check(loaded, want, n);
    // A key the run adds after the load lands past the file's keys and is found with them.
    expect(loaded.offer('brand new', hex(1), 1).verdict).toBe('new');
    expect(loaded.offer('k10', hex(10), 15).verdict).toBe('unchanged');
  });
});
