/**
 * The in-memory diff of one sync run against the source's snapshot. Pure: no I/O.
 *
 * The snapshot's keys, hashes and orderings are loaded once (a million keys take about 100 MB: the
 * engine's 128-bit hex hashes are packed into 16 bytes each; the payloads, which make the snapshot large,
 * stay in the store), then every row of the read is classified
 * as it streams by, so changed rows can be sent while the rest of the source is still being read:
 * - `new`: the key was never acknowledged;
 * - `unchanged`: same hash as last acknowledged;
 * - `out_of_order`: different hash, but its ordering is older than what was acknowledged (latest wins);
 * - `changed`: otherwise.
 * A key read twice in one run keeps one row: the highest ordering wins (a missing ordering counts as
 * lowest), ties go to the row read last, and the other is counted as a duplicate.
 */

import type { PendingEntry } from '../state/index.ts';

export type RowClass = 'new' | 'changed' | 'unchanged' | 'out_of_order';

export interface Offer {
  /** The class of the row, or `duplicate` when an earlier row of the same key in this run wins over it. */
  verdict: RowClass | 'duplicate';
  /** The run-wide slot of the key (stable for the run). */
  slot: number;
  /** Set when this row displaced an earlier row of the same key read in this run: that row's class. */
  displaced?: RowClass;
}

/** What one run's diff found. A streamed read cannot know which keys are absent, so there is no `removed`. */
export interface RunDiffCounts {
  /** Distinct keys read. */
  staged: number;
  /** Rows dropped because a later or more recent row had the same key. */
  duplicates: number;
  new: number;
  changed: number;
  unchanged: number;
  outOfOrder: number;
}

const CLASS_CODES: readonly RowClass[] = ['new', 'changed', 'unchanged', 'out_of_order'];

export class RunDiff {
  private readonly slots = new KeyTable();
  /** Per slot, the snapshot hash packed as four 32-bit words (see `pack`). */
  private words = new Uint32Array(4 * 1024);
  /** 0 = not in the snapshot, 1 = packed in `words`, 2 = kept as text in `odd` (not a 32-digit hex hash). */
  private hashStorage = new Uint8Array(1024);
  private readonly odd = new Map<number, string>();
  private readonly scratch = new Uint32Array(4);
  /** Snapshot ordering per slot; NaN when absent. */
  private orderings = new Float64Array(1024);
  /** This run's winning ordering per slot; NaN when absent. */
  private runOrderings = new Float64Array(1024);
  /** 0 = not read in this run, else 1 + index into CLASS_CODES. */
  private runClass = new Uint8Array(1024);
  private size = 0;
  private readonly tally: RunDiffCounts = { staged: 0, duplicates: 0, new: 0, changed: 0, unchanged: 0, outOfOrder: 0 };
  /**
   * What Customer.io acknowledged during the run, in the order it was recorded: kept apart from the
   * snapshot's values, which classify every row of the run, and laid over them only by `encodeSnapshot`.
   */
  private acks = { count: 0, slots: new Int32Array(1024), words: new Uint32Array(4 * 1024), orderings: new Float64Array(1024), odd: new Map<number, string>() };

  /** Records what the snapshot holds for a key. Later calls for the same key win (unmerged acks come last). */
  load(key: string, hash: string, ordering: number | null): void {
    const slot = this.slotOf(key);
    if (pack(hash, this.scratch)) {
      this.words.set(this.scratch, slot * 4);
      this.hashStorage[slot] = 1;
      this.odd.delete(slot);
    } else {
      this.hashStorage[slot] = 2;
      this.odd.set(slot, hash);
    }
    this.orderings[slot] = ordering ?? Number.NaN;
  }

  /** Number of keys the snapshot holds. */
  get snapshotSize(): number {
    let n = 0;
    for (let i = 0; i < this.size; i++) if (this.hashStorage[i] !== 0) n++;
    return n;
  }

  /** Classifies one row of the run. */
  offer(key: string, hash: string, ordering: number | null): Offer {
    const slot = this.slotOf(key);
    const seen = this.runClass[slot]!;
    let displaced: RowClass | undefined;
    if (seen !== 0) {
      this.tally.duplicates++;
      const before = this.runOrderings[slot]!;
      const wins = ordering === null ? Number.isNaN(before) : Number.isNaN(before) || ordering >= before;
      if (!wins) return { verdict: 'duplicate', slot };
      displaced = CLASS_CODES[seen - 1]!;
      this.count(displaced, -1);
    } else {
      this.tally.staged++;
    }
    const verdict = this.classify(slot, hash, ordering);
    this.runClass[slot] = CLASS_CODES.indexOf(verdict) + 1;
    this.runOrderings[slot] = ordering ?? Number.NaN;
    this.count(verdict, 1);
    return displaced ? { verdict, slot, displaced } : { verdict, slot };
  }

  counts(): RunDiffCounts {
    return { ...this.tally };
  }

  /**
   * Records an acknowledgement the state store committed (last one of a key wins, as the store's merge
   * does). It changes no classification in this run; `encodeSnapshot` lays it over the snapshot.
   */
  acknowledge(key: string, hash: string, ordering: number | null): void {
    const slot = this.slotOf(key);
    const a = this.acks;
    if (a.count === a.slots.length) {
      const n = Math.max(1024, a.slots.length * 2);
      a.slots = grown(a.slots, new Int32Array(n));
      a.words = grown(a.words, new Uint32Array(4 * n));
      a.orderings = grown(a.orderings, new Float64Array(n));
    }
    const i = a.count++;
    a.slots[i] = slot;
    a.orderings[i] = ordering ?? Number.NaN;
    if (pack(hash, this.scratch)) a.words.set(this.scratch, i * 4);
    else a.odd.set(i, hash);
  }

  /**
   * The snapshot as the store holds it once this run's acknowledgements are merged: the loaded entries
   * with `acknowledge`d ones laid over them, in the index file format (see `decodeSnapshot`). The
   * acknowledgements are laid over in place, so this ends the diff's use for classifying rows.
   */
  encodeSnapshot(generation: string): Buffer[] {
    const storage = this.hashStorage;
    const words = this.words;
    const orderings = this.orderings;
    const odd = this.odd;
    const a = this.acks;
    // Laid over now: a diff encoded after its load (from the store) goes on recording the run's.
    this.acks = { count: 0, slots: new Int32Array(0), words: new Uint32Array(0), orderings: new Float64Array(0), odd: new Map() };
    for (let i = 0; i < a.count; i++) {
      const slot = a.slots[i]!;
      orderings[slot] = a.orderings[i]!;
      const text = a.odd.get(i);
      if (text === undefined) {
        storage[slot] = 1;
        words.set(a.words.subarray(i * 4, i * 4 + 4), slot * 4);
        odd.delete(slot);
      } else {
        storage[slot] = 2;
        odd.set(slot, text);
      }
    }
    let count = 0;
    for (let s = 0; s < this.size; s++) if (storage[s] !== 0) count++;
    const outOrderings = new Float64Array(count);
    const outWords = new Uint32Array(4 * count);
    const outStorage = new Uint8Array(count);
    const keyEnds = new Uint32Array(count);
    const oddOut: [number, string][] = [];
    let keys = Buffer.allocUnsafe(Math.max(1024, count * 16));
    let used = 0;
    let j = 0;
    for (let s = 0; s < this.size; s++) {
      const st = storage[s]!;
      if (st === 0) continue;
      const key = this.slots.keyAt(s);
      const need = Buffer.byteLength(key, 'utf8');
      if (used + need > keys.length) {
        const bigger = Buffer.allocUnsafe(Math.max(keys.length * 2, used + need));
        keys.copy(bigger, 0, 0, used);
        keys = bigger;
      }
      used += keys.write(key, used, 'utf8');
      keyEnds[j] = used;
      outStorage[j] = st;
      outOrderings[j] = orderings[s]!;
      if (st === 1) outWords.set(words.subarray(s * 4, s * 4 + 4), j * 4);
      else oddOut.push([j, odd.get(s)!]);
      j++;
    }
    const oddJson = Buffer.from(JSON.stringify(oddOut), 'utf8');
    const header = Buffer.from(JSON.stringify({ format: INDEX_FORMAT, generation, count, keyBytes: used, oddBytes: oddJson.length }), 'utf8');
    // The header is padded so the Float64Array that follows starts 8-aligned.
    const prefix = Buffer.alloc(align8(INDEX_MAGIC.length + 4 + header.length));
    prefix.write(INDEX_MAGIC, 0, 'latin1');
    prefix.writeUInt32LE(header.length, INDEX_MAGIC.length);
    header.copy(prefix, INDEX_MAGIC.length + 4);
    return [prefix, bytesOf(outOrderings), bytesOf(outWords), bytesOf(keyEnds), bytesOf(outStorage), keys.subarray(0, used), oddJson];
  }

  /**
   * Loads a snapshot written by `encodeSnapshot` (instead of `load` per entry) into an empty diff. Returns
   * false, loading nothing, when the bytes are not an index file of that generation.
   */
  decodeSnapshot(bytes: Buffer, generation: string): boolean {
    if (this.size !== 0) throw new Error('decodeSnapshot needs an empty diff');
    const parsed = parseIndexHeader(bytes);
    if (!parsed || parsed.header.generation !== generation) return false;
    const { count, keyBytes, oddBytes } = parsed.header;
    let at = parsed.bodyStart;
    const expected = at + 8 * count + 16 * count + 4 * count + count + keyBytes + oddBytes;
    if (bytes.length !== expected) return false;
    const orderings = new Float64Array(count);
    bytesOf(orderings).set(bytes.subarray(at, (at += 8 * count)));
    const words = new Uint32Array(4 * count);
    bytesOf(words).set(bytes.subarray(at, (at += 16 * count)));
    const keyEnds = new Uint32Array(count);
    bytesOf(keyEnds).set(bytes.subarray(at, (at += 4 * count)));
    const storage = bytes.subarray(at, (at += count));
    const keys = bytes.subarray(at, (at += keyBytes));
    const odd = JSON.parse(bytes.toString('utf8', at, at + oddBytes)) as [number, string][];
    let start = 0;
    for (let i = 0; i < count; i++) {
      const end = keyEnds[i]!;
      if (this.slots.intern(keys.toString('utf8', start, end)) !== i) throw new Error('an index file holds a key twice');
      start = end;
    }
    this.size = count;
    while (this.orderings.length < count) this.grow();
    this.orderings.set(orderings);
    this.runOrderings.fill(Number.NaN, 0, count);
    this.words.set(words);
    this.hashStorage.set(storage);
    for (const [slot, text] of odd) this.odd.set(slot, text);
    return true;
  }

  /** The ordering the snapshot holds for a key: undefined when the key is not in it, null when it has none. */
  snapshotOrdering(key: string): number | null | undefined {
    const slot = this.slots.find(key);
    if (slot < 0 || this.hashStorage[slot] === 0) return undefined;
    const o = this.orderings[slot]!;
    return Number.isNaN(o) ? null : o;
  }

  /** Whether the snapshot holds the key with exactly this hash. */
  holds(key: string, hash: string): boolean {
    const slot = this.slots.find(key);
    if (slot < 0) return false;
    const storage = this.hashStorage[slot]!;
    return storage !== 0 && this.sameHash(slot, storage, hash);
  }

  /** Whether the snapshot holds the key (its previous payload may matter). */
  inSnapshot(key: string): boolean {
    const slot = this.slots.find(key);
    return slot >= 0 && this.hashStorage[slot] !== 0;
  }

  private classify(slot: number, hash: string, ordering: number | null): RowClass {
    const storage = this.hashStorage[slot];
    if (storage === 0) return 'new';
    if (this.sameHash(slot, storage!, hash)) return 'unchanged';
    const prevOrdering = this.orderings[slot]!;
    if (ordering !== null && !Number.isNaN(prevOrdering) && ordering < prevOrdering) return 'out_of_order';
    return 'changed';
  }

  private sameHash(slot: number, storage: number, hash: string): boolean {
    if (storage === 2) return this.odd.get(slot) === hash;
    if (!pack(hash, this.scratch)) return false;
    const w = this.words;
    const b = slot * 4;
    const x = this.scratch;
    return w[b] === x[0] && w[b + 1] === x[1] && w[b + 2] === x[2] && w[b + 3] === x[3];
  }

  private count(c: RowClass, by: number): void {
    if (c === 'out_of_order') this.tally.outOfOrder += by;
    else this.tally[c] += by;
  }

  private slotOf(key: string): number {
    const before = this.size;
    const slot = this.slots.intern(key);
    if (slot === before) {
      this.size++;
      if (slot >= this.orderings.length) this.grow();
      this.orderings[slot] = Number.NaN;
      this.runOrderings[slot] = Number.NaN;
    }
    return slot;
  }

  private grow(): void {
    const n = this.orderings.length * 2;
    const o = new Float64Array(n);
    o.set(this.orderings);
    this.orderings = o;
    const r = new Float64Array(n);
    r.set(this.runOrderings);
    this.runOrderings = r;
    const c = new Uint8Array(n);
    c.set(this.runClass);
    this.runClass = c;
    const k = new Uint8Array(n);
    k.set(this.hashStorage);
    this.hashStorage = k;
    const w = new Uint32Array(4 * n);
    w.set(this.words);
    this.words = w;
  }
}

/**
 * The entries earlier runs of the source meant to send and Customer.io did not take (see the state's
 * PendingEntry), as one run sees them. Pure: the run loads them, offers each row it reads (`admit`), and
 * tells it which keys have a row on its way (`onTheWay`, `withdrawn`).
 *
 * Only a newer row of the same key supersedes a waiting entry: a higher ordering, or a missing one on
 * either side (a row without an ordering counts as newer, so a source without an ordering column sends
 * what it reads now). An older or equal row does not: it is skipped and the waiting entry goes out
 * instead, so a re-read of the same row never sends the same key twice and a late export never
 * overwrites a newer value that is still on its way.
 */
export class PendingBook {
  /** Entries still to send this run (not superseded), by key. */
  readonly waiting = new Map<string, PendingEntry>();
  /** Keys with a pending entry in the state: the outcome of any entry of such a key must settle it. */
  readonly stored = new Set<string>();
  /** Keys whose waiting entry a row of this run superseded. */
  readonly superseded = new Set<string>();
  /**
   * Keys whose pending entry is to be deleted at the end of the run without a send: superseded with no
   * newer row on its way, or older than what the snapshot already holds (a stale leftover).
   */
  readonly dropped = new Set<string>();

  constructor(entries: Iterable<PendingEntry>, snapshotOrdering: (key: string) => number | null | undefined) {
    for (const e of entries) {
      this.stored.add(e.key);
      const acknowledged = snapshotOrdering(e.key);
      if (e.ordering !== null && acknowledged !== undefined && acknowledged !== null && e.ordering < acknowledged) this.dropped.add(e.key);
      else this.waiting.set(e.key, e);
    }
  }

  /** Whether a row read now may go ahead: true unless a waiting entry of its key is newer or as new. */
  admit(key: string, ordering: number | null): boolean {
    const held = this.waiting.get(key);
    if (!held) return true;
    if (ordering !== null && held.ordering !== null && ordering <= held.ordering) return false;
    this.waiting.delete(key);
    this.superseded.add(key);
    this.dropped.add(key);
    return true;
  }

  /** A row of the key is on its way: its outcome settles the key's pending entry. */
  onTheWay(key: string): void {
    this.dropped.delete(key);
  }

  /** The key's row was withdrawn (a later row of the key won); unless that one goes, the superseded entry is dropped. */
  withdrawn(key: string): void {
    if (this.superseded.has(key)) this.dropped.add(key);
  }
}

/** The first bytes of an index file (`RunDiff.encodeSnapshot`); the digit is the format's version. */
const INDEX_MAGIC = 'TMSIDX01';
const INDEX_FORMAT = 1;

interface IndexHeader {
  format: number;
  generation: string;
  count: number;
  keyBytes: number;
  oddBytes: number;
}

/** The header of an index file, or undefined when the bytes are not one. */
export function parseIndexHeader(bytes: Buffer): { header: IndexHeader; bodyStart: number } | undefined {
  if (bytes.length < INDEX_MAGIC.length + 4 || bytes.toString('latin1', 0, INDEX_MAGIC.length) !== INDEX_MAGIC) return undefined;
  const length = bytes.readUInt32LE(INDEX_MAGIC.length);
  const start = INDEX_MAGIC.length + 4;
  if (start + length > bytes.length) return undefined;
  try {
    const header = JSON.parse(bytes.toString('utf8', start, start + length)) as IndexHeader;
    if (header.format !== INDEX_FORMAT || typeof header.generation !== 'string') return undefined;
    for (const n of [header.count, header.keyBytes, header.oddBytes]) if (!Number.isSafeInteger(n) || n < 0) return undefined;
    return { header, bodyStart: align8(start + length) };
  } catch {
    return undefined;
  }
}

const align8 = (n: number): number => Math.ceil(n / 8) * 8;

function bytesOf(a: Float64Array | Uint32Array | Uint8Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function grown<T extends Int32Array | Uint32Array | Float64Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

/** Nibble value per char code, -1 for anything but 0-9 and a-f. */
const NIBBLE = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) NIBBLE[48 + i] = i;
for (let i = 0; i < 6; i++) NIBBLE[97 + i] = 10 + i;

/** A 32-digit lowercase hex hash as four 32-bit words; false for any other text. One pass, no substrings. */
function pack(hash: string, out: Uint32Array): boolean {
  if (hash.length !== 32) return false;
  for (let w = 0; w < 4; w++) {
    let v = 0;
    for (let i = w * 8; i < w * 8 + 8; i++) {
      const c = hash.charCodeAt(i);
      const n = c < 128 ? NIBBLE[c]! : -1;
      if (n < 0) return false;
      v = v * 16 + n;
    }
    out[w] = v;
  }
  return true;
}

/**
 * Keys to dense slot numbers (0, 1, 2, … in first-seen order): an open-addressing table over typed arrays.
 * A Map with a million string keys spent about 0.75 µs per operation in a re-sync profile, most of it
 * chasing memory; this keeps the probe sequence in one Int32Array and compares few strings.
 */
export class KeyTable {
  private keys: string[] = [];
  /** Per slot, its key's hash (to rehash without hashing the keys again). */
  private hashes = new Uint32Array(1024);
  /**
   * Per bucket, two words: the key's hash and slot + 1 (0 = empty). Never more than half full. The hash
   * beside the slot settles most probes within one cache line, without touching the key.
   */
  private buckets = new Int32Array(2 * 2048);
  private mask = 2047;

  get size(): number {
    return this.keys.length;
  }

  /** The key of a slot. */
  keyAt(slot: number): string {
    return this.keys[slot]!;
  }

  /** The key's slot, or -1. */
  find(key: string): number {
    const h = hashKey(key) | 0;
    const buckets = this.buckets;
    for (let b = h & this.mask; ; b = (b + 1) & this.mask) {
      const s = buckets[2 * b + 1]! - 1;
      if (s < 0) return -1;
      if (buckets[2 * b] === h && this.keys[s] === key) return s;
    }
  }

  /** The key's slot, adding the key with the next slot number when it is new. */
  intern(key: string): number {
    const h = hashKey(key) | 0;
    const buckets = this.buckets;
    let b = h & this.mask;
    for (; ; b = (b + 1) & this.mask) {
      const s = buckets[2 * b + 1]! - 1;
      if (s < 0) break;
      if (buckets[2 * b] === h && this.keys[s] === key) return s;
    }
    const slot = this.keys.length;
    this.keys.push(key);
    if (slot >= this.hashes.length) {
      const grown = new Uint32Array(this.hashes.length * 2);
      grown.set(this.hashes);
      this.hashes = grown;
    }
    this.hashes[slot] = h;
    buckets[2 * b] = h;
    buckets[2 * b + 1] = slot + 1;
    if (this.keys.length * 2 > this.mask + 1) this.rehash();
    return slot;
  }

  private rehash(): void {
    const capacity = (this.mask + 1) * 2;
    const buckets = new Int32Array(2 * capacity);
    const mask = capacity - 1;
    for (let s = 0; s < this.keys.length; s++) {
      const h = this.hashes[s]! | 0;
      let b = h & mask;
      while (buckets[2 * b + 1] !== 0) b = (b + 1) & mask;
      buckets[2 * b] = h;
      buckets[2 * b + 1] = s + 1;
    }
    this.buckets = buckets;
    this.mask = mask;
  }
}

/** FNV-1a over UTF-16 code units, with a final avalanche so sequential ids spread over the buckets. */
function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}
