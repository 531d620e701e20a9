/**
 * The in-memory diff of one sync run against the source's snapshot. Pure: no I/O.
 *
 * The snapshot's keys, hashes and orderings are loaded once (about 70 bytes per key, none of it on the JS
 * heap: the keys as bytes in a KeyTable, the engine's 128-bit hex hashes packed into 16 bytes each; the
 * payloads, which make the snapshot large, stay in the store), then every row of the read is classified
 * as it streams by, so changed rows can be sent while the rest of the source is still being read:
 * - `new`: the key was never acknowledged;
 * - `unchanged`: same hash as last acknowledged;
 * - `out_of_order`: different hash, but its ordering is older than what was acknowledged (latest wins);
 * - `changed`: otherwise.
 * A key read twice in one run keeps one row: the highest ordering wins (a missing ordering counts as
 * lowest), ties go to the row read last, and the other is counted as a duplicate.
 */

import type { PendingEntry } from '../state/index.ts';
import { grow, grownTo, KEY_HASH, KeyTable } from './key-table.ts';
import { buildPrintShare, isPrint, type PrintShare, type RowPrint } from './record-prints.ts';

export { KeyTable } from './key-table.ts';

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
const UNCHANGED_CODE = CLASS_CODES.indexOf('unchanged') + 1;

export class RunDiff {
  private slots = new KeyTable();
  /** Per slot, the snapshot hash packed as four 32-bit words (see `pack`). */
  private words: Uint32Array = new Uint32Array(4 * 1024);
  /** 0 = not in the snapshot, 1 = packed in `words`, 2 = kept as text in `odd` (not a 32-digit hex hash). */
  private hashStorage: Uint8Array = new Uint8Array(1024);
  private readonly odd = new Map<number, string>();
  private readonly scratch = new Uint32Array(4);
  /** Snapshot ordering per slot; NaN when absent. */
  private orderings: Float64Array = new Float64Array(1024);
  /** This run's winning ordering per slot; NaN when absent. */
  private runOrderings: Float64Array = new Float64Array(1024);
  /** 0 = not read in this run, else 1 + index into CLASS_CODES. */
  private runClass: Uint8Array = new Uint8Array(1024);
  private size = 0;
  private readonly tally: RunDiffCounts = { staged: 0, duplicates: 0, new: 0, changed: 0, unchanged: 0, outOfOrder: 0 };
  /**
   * What Customer.io acknowledged during the run, in the order it was recorded: kept apart from the
   * snapshot's values, which classify every row of the run, and laid over them only by `encodeSnapshot`.
   */
  private acks = emptyAcks(1024);
  /** Per slot, 1 once a key was acknowledged in this run. */
  private acked: Uint8Array = new Uint8Array(1024);
  /** Whether some key was acknowledged more than once in this run (the store's merge must then pick). */
  ackedTwice = false;
  /**
   * Per slot, a record print (four words; zero: none) of bytes known to read as exactly this slot's key,
   * snapshot hash and ordering (record-prints.ts). Any change to the slot's hash or ordering clears it.
   */
  private prints: Uint32Array = new Uint32Array(4 * 1024);
  /** The context digest the prints were made under; undefined: no prints. */
  printContext: string | undefined;
  /**
   * Per slot with a print, the fields a row read as its entry counts as null-blocked and held back (an
   * index into `effects`; 0: none), which a matched row must count as reading it would.
   */
  private effectIds: Uint16Array = new Uint16Array(1024);
  /** Distinct `[nullBlocked, heldBack]` lists; entry 0 is the empty one. */
  private effects: [string[], string[]][] = [[[], []]];
  private readonly effectIndex = new Map<string, number>([[JSON.stringify([[], []]), 0]]);
  /** Prints learned in this run (then a plan writes its index file again). */
  learnedPrints = 0;
  /** Rows of this run answered from their record's print. */
  matchedPrints = 0;
  /** Whether this run's read made prints (`usePrintsUnder` was called). */
  printsRead = false;

  /** Records what the snapshot holds for a key. Later calls for the same key win (unmerged acks come last). */
  load(key: string, hash: string, ordering: number | null): void {
    const slot = this.slotOf(key);
    this.prints.fill(0, slot * 4, slot * 4 + 4);
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
    return this.offerAt(this.slotOf(key), hash, ordering);
  }

  /**
   * Classifies a row known to be exactly the snapshot's entry of a slot (a record whose print matched):
   * `offer(key, snapshot hash, snapshot ordering)` without the key or the hash.
   */
  offerAsSnapshot(slot: number): Offer {
    if (slot < 0 || slot >= this.size || this.hashStorage[slot] === 0) throw new Error(`slot ${slot} holds no snapshot entry`);
    const o = this.orderings[slot]!;
    this.matchedPrints++;
    return this.offerAt(slot, undefined, Number.isNaN(o) ? null : o);
  }

  /**
   * `offerAsSnapshot` for the common case, without an offer or a list per row: a row whose print matched
   * `slot`, when it is the first row of its key this run, is taken as the snapshot's entry (true). Its
   * effects are tallied by id in `effects` (`effectsOf` names them), none for id 0. False, and nothing
   * done: the key was read before this run (a duplicate), so the caller offers the row the general way.
   */
  takeMatched(slot: number, effects: number[]): boolean {
    if (this.runClass[slot] !== 0) return false;
    if (slot < 0 || slot >= this.size || this.hashStorage[slot] === 0) throw new Error(`slot ${slot} holds no snapshot entry`);
    this.matchedPrints++;
    this.tally.staged++;
    this.tally.unchanged++;
    this.runClass[slot] = UNCHANGED_CODE;
    this.runOrderings[slot] = this.orderings[slot]!;
    const effect = this.effectIds[slot]!;
    if (effect !== 0) effects[effect] = (effects[effect] ?? 0) + 1;
    return true;
  }

  /** The null-blocked and held-back fields of an effect id (`takeMatched`). */
  effectsOf(id: number): readonly [readonly string[], readonly string[]] {
    return this.effects[id]!;
  }

  /** Acknowledgements recorded and not yet laid over the loaded entries (`snapshotFile` lays them over). */
  get acknowledgements(): number {
    return this.acks.count;
  }

  /** The key of a slot. */
  keyAt(slot: number): string {
    return this.slots.keyAt(slot);
  }

  /** The snapshot's ordering of a slot that holds an entry (null: none). */
  snapshotOrderingAt(slot: number): number | null {
    const o = this.orderings[slot]!;
    return Number.isNaN(o) ? null : o;
  }

  /** `hash` undefined: the snapshot's own. */
  private offerAt(slot: number, hash: string | undefined, ordering: number | null): Offer {
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
    const verdict = hash === undefined ? 'unchanged' : this.classify(slot, hash, ordering);
    this.runClass[slot] = CLASS_CODES.indexOf(verdict) + 1;
    this.runOrderings[slot] = ordering ?? Number.NaN;
    this.count(verdict, 1);
    return displaced ? { verdict, slot, displaced } : { verdict, slot };
  }

  counts(): RunDiffCounts {
    return { ...this.tally };
  }

  /**
   * Keeps `print[at .. at + 4)` for a slot, after its row was offered and found `unchanged`: the row read
   * as the snapshot's hash; it is kept only when its ordering is the snapshot's too (see record-prints.ts).
   */
  learn(slot: number, print: Uint32Array, at: number, ordering: number | null, nullBlocked: readonly string[], heldBack: readonly string[]): void {
    if (!isPrint(print, at) || this.hashStorage[slot] === 0) return;
    const o = this.orderings[slot]!;
    if (ordering === null ? !Number.isNaN(o) : ordering !== o) return;
    const effect = this.effectOf(nullBlocked, heldBack);
    if (effect < 0) return;
    const p = this.prints;
    const b = slot * 4;
    if (p[b] === print[at] && p[b + 1] === print[at + 1] && p[b + 2] === print[at + 2] && p[b + 3] === print[at + 3] && this.effectIds[slot] === effect) return;
    p.set(print.subarray(at, at + 4), b);
    this.effectIds[slot] = effect;
    this.learnedPrints++;
  }

  /** The id of a `[nullBlocked, heldBack]` pair (added when new); -1 when the table is full. */
  private effectOf(nullBlocked: readonly string[], heldBack: readonly string[]): number {
    if (nullBlocked.length === 0 && heldBack.length === 0) return 0;
    const text = JSON.stringify([nullBlocked, heldBack]);
    const known = this.effectIndex.get(text);
    if (known !== undefined) return known;
    if (this.effects.length > 0xffff) return -1;
    this.effects.push([[...nullBlocked], [...heldBack]]);
    this.effectIndex.set(text, this.effects.length - 1);
    return this.effects.length - 1;
  }

  /** The null-blocked and held-back fields of the row a slot's print stands for. */
  effectsAt(slot: number): readonly [readonly string[], readonly string[]] {
    return this.effects[this.effectIds[slot]!]!;
  }

  /**
   * Sets the context this run's reads make prints under: when it is not the one the loaded prints were
   * made under, they are all dropped. Returns whether the loaded prints may be used.
   */
  usePrintsUnder(context: string): boolean {
    this.printsRead = true;
    if (this.printContext === context) return true;
    this.prints.fill(0);
    this.effectIds.fill(0);
    this.effects = [[[], []]];
    this.effectIndex.clear();
    this.effectIndex.set(JSON.stringify([[], []]), 0);
    this.printContext = context;
    return false;
  }

  /** The snapshot's prints in shared memory with a table over them, for the workers; undefined when there are none. */
  printShare(): PrintShare | undefined {
    return this.printContext === undefined ? undefined : buildPrintShare(this.prints, this.size);
  }

  /**
   * Records an acknowledgement the state store committed (last one of a key wins, as the store's merge
   * does). It changes no classification in this run; `encodeSnapshot` lays it over the snapshot.
   */
  acknowledge(key: string, hash: string, ordering: number | null, print?: RowPrint): void {
    const slot = this.slotOf(key);
    if (this.acked[slot] === 1) this.ackedTwice = true;
    this.acked[slot] = 1;
    const a = this.acks;
    if (a.count === a.slots.length) {
      const n = Math.max(1024, a.slots.length * 2);
      a.slots = grownTo(a.slots, new Int32Array(n));
      a.words = grownTo(a.words, new Uint32Array(4 * n));
      a.orderings = grownTo(a.orderings, new Float64Array(n));
      a.prints = grownTo(a.prints, new Uint32Array(4 * n));
      a.effects = grownTo(a.effects, new Uint16Array(n));
    }
    const i = a.count++;
    a.slots[i] = slot;
    // The entry this acknowledgement leaves is exactly what the row's print stands for (record-prints.ts).
    const effect = print ? this.effectOf(print.nullBlocked, print.heldBack) : -1;
    if (print && effect >= 0 && isPrint(print.words, print.at)) {
      a.prints.set(print.words.subarray(print.at, print.at + 4), i * 4);
      a.effects[i] = effect;
      this.learnedPrints++;
    } else {
      a.prints.fill(0, i * 4, i * 4 + 4);
    }
    a.orderings[i] = ordering ?? Number.NaN;
    if (pack(hash, this.scratch)) a.words.set(this.scratch, i * 4);
    else a.odd.set(i, hash);
  }

  /**
   * The snapshot as the store holds it once this run's acknowledgements are merged: the loaded entries
   * with `acknowledge`d ones laid over them, in the index file format (see `decodeSnapshot`). The
   * acknowledgements are laid over in place, so this ends the diff's use for classifying rows. The
   * chunks are mostly views of the diff's own arrays: use them before the diff changes.
   */
  encodeSnapshot(generation: string): Buffer[] {
    return [...this.snapshotChunks(generation)];
  }

  /**
   * `encodeSnapshot`, made as it is consumed: a block of slots that all stay is a view of the diff's
   * arrays, any other block a compacted copy of at most BLOCK entries, so writing ten million keys costs
   * no second copy of the index.
   */
  snapshotChunks(generation: string): Iterable<Buffer> {
    const { prefix, body } = this.snapshotFile();
    return (function* () {
      yield prefix(generation);
      yield* body;
    })();
  }

  /**
   * `snapshotChunks` in two parts: the file's body, which does not depend on the generation, and its
   * prefix (magic, header) for a generation. `reserve` pads the header with spaces to a length fixed now,
   * so the body can be written before the generation is known (SnapshotIndexCache.writeAhead); `prefix`
   * then throws for a generation too long for it. `viewsOnly`: every slot stays, so the body is views of
   * the diff's arrays, no part of it a copy (consumed all at once, a body with copies would hold a second
   * copy of the index).
   */
  snapshotFile(reserve = false): { prefix: (generation: string) => Buffer; prefixLength: number | undefined; body: Iterable<Buffer>; viewsOnly: boolean } {
    this.layOverAcks();
    const plan = this.survey();
    const oddJson = Buffer.from(JSON.stringify(plan.odd), 'utf8');
    const effectsJson = Buffer.from(JSON.stringify(this.effects), 'utf8');
    // The buckets are kept only when the file holds every slot of this table in its order (nothing dropped).
    const buckets = plan.count === this.size ? this.slots.bucketSection() : undefined;
    const headerOf = (generation: string) =>
      Buffer.from(
        JSON.stringify({
          format: INDEX_FORMAT,
          generation,
          count: plan.count,
          keyBytes: plan.keyBytes,
          oddBytes: oddJson.length,
          context: this.printContext ?? null,
          effectsBytes: effectsJson.length,
          ...(buckets ? { bucketCount: buckets.length / 2, keyHash: KEY_HASH } : {}),
        }),
        'utf8',
      );
    // Room for a generation token of up to RESERVED_GENERATION characters (the store's are about 25).
    const prefixLength = reserve ? align8(INDEX_MAGIC.length + 4 + headerOf('').length + RESERVED_GENERATION) : undefined;
    const prefix = (generation: string): Buffer => {
      const header = headerOf(generation);
      // The header is padded so the Float64Array that follows starts 8-aligned; a reserved one with spaces
      // to its full length (JSON allows them after the value).
      const length = prefixLength ?? align8(INDEX_MAGIC.length + 4 + header.length);
      const headerLength = prefixLength === undefined ? header.length : length - INDEX_MAGIC.length - 4;
      if (header.length > headerLength) throw new Error(`the generation ${JSON.stringify(generation)} does not fit the reserved header`);
      const out = Buffer.alloc(length, prefixLength === undefined ? 0 : 0x20);
      out.write(INDEX_MAGIC, 0, 'latin1');
      out.writeUInt32LE(headerLength, INDEX_MAGIC.length);
      header.copy(out, INDEX_MAGIC.length + 4);
      return out;
    };
    return { prefix, prefixLength, body: this.bodyOf(plan, oddJson, effectsJson, buckets), viewsOnly: plan.count === this.size };
  }

  private layOverAcks(): void {
    const storage = this.hashStorage;
    const a = this.acks;
    // Laid over now: a diff encoded after its load (from the store) goes on recording the run's.
    this.acks = emptyAcks(0);
    for (let i = 0; i < a.count; i++) {
      const slot = a.slots[i]!;
      this.prints.set(a.prints.subarray(i * 4, i * 4 + 4), slot * 4);
      this.effectIds[slot] = a.effects[i]!;
      this.orderings[slot] = a.orderings[i]!;
      const text = a.odd.get(i);
      if (text === undefined) {
        storage[slot] = 1;
        this.words.set(a.words.subarray(i * 4, i * 4 + 4), slot * 4);
        this.odd.delete(slot);
      } else {
        storage[slot] = 2;
        this.odd.set(slot, text);
      }
    }
  }

  /** Which slots the file holds: their number, their keys' bytes, per block whether all stay and the key bytes dropped before it. */
  private survey(): { count: number; keyBytes: number; full: Uint8Array; droppedBefore: Float64Array; odd: [number, string][] } {
    const storage = this.hashStorage;
    const blocks = Math.ceil(this.size / BLOCK);
    const full = new Uint8Array(blocks);
    const droppedBefore = new Float64Array(blocks);
    const odd: [number, string][] = [];
    let count = 0;
    let dropped = 0;
    for (let block = 0; block < blocks; block++) {
      droppedBefore[block] = dropped;
      const to = Math.min(this.size, (block + 1) * BLOCK);
      let all = 1;
      for (let s = block * BLOCK; s < to; s++) {
        const st = storage[s]!;
        if (st === 0) {
          all = 0;
          dropped += this.slots.keyEnd(s) - this.slots.keyStart(s);
          continue;
        }
        if (st === 2) odd.push([count, this.odd.get(s)!]);
        count++;
      }
      full[block] = all;
    }
    return { count, keyBytes: this.slots.byteLength - dropped, full, droppedBefore, odd };
  }

  private *bodyOf(plan: ReturnType<RunDiff['survey']>, oddJson: Buffer, effectsJson: Buffer, buckets: Int32Array | undefined): Generator<Buffer> {
    const { full, droppedBefore } = plan;
    const storage = this.hashStorage;
    const keys = this.slots;
    const blocks = full.length;
    /** Each section, block by block: a view when every slot of the block stays, else the staying slots copied. */
    const section = function* <T extends Float64Array | Uint32Array | Uint16Array | Uint8Array>(values: T, per: number, make: (n: number) => T): Generator<Buffer> {
      for (let block = 0; block < blocks; block++) {
        const from = block * BLOCK;
        const end = Math.min(keys.size, from + BLOCK);
        if (full[block]) {
          yield bytesOf(values.subarray(from * per, end * per));
          continue;
        }
        let n = 0;
        for (let s = from; s < end; s++) if (storage[s] !== 0) n++;
        const out = make(n * per);
        let j = 0;
        for (let s = from; s < end; s++) {
          if (storage[s] === 0) continue;
          for (let k = 0; k < per; k++) out[j++] = values[s * per + k]!;
        }
        if (n > 0) yield bytesOf(out);
      }
    };
    yield* section(this.orderings, 1, (n) => new Float64Array(n));
    yield* section(this.words, 4, (n) => new Uint32Array(n));
    yield* section(this.prints, 4, (n) => new Uint32Array(n));
    for (let block = 0; block < blocks; block++) {
      const from = block * BLOCK;
      const end = Math.min(keys.size, from + BLOCK);
      if (full[block] && droppedBefore[block] === 0) {
        yield bytesOf(keys.endsView(from, end));
        continue;
      }
      const out = new Uint32Array(end - from);
      let dropped = droppedBefore[block]!;
      let j = 0;
      for (let s = from; s < end; s++) {
        if (storage[s] === 0) dropped += keys.keyEnd(s) - keys.keyStart(s);
        else out[j++] = keys.keyEnd(s) - dropped;
      }
      if (j > 0) yield bytesOf(out.subarray(0, j));
    }
    yield* section(storage, 1, (n) => new Uint8Array(n));
    yield* section(this.effectIds, 1, (n) => new Uint16Array(n));
    for (let block = 0; block < blocks; block++) {
      const from = block * BLOCK;
      const end = Math.min(keys.size, from + BLOCK);
      if (full[block]) {
        yield keys.bytes(keys.keyStart(from), keys.keyEnd(end - 1));
        continue;
      }
      for (let s = from; s < end; s++) if (storage[s] !== 0 && keys.keyEnd(s) > keys.keyStart(s)) yield Buffer.from(keys.bytes(keys.keyStart(s), keys.keyEnd(s)));
    }
    yield oddJson;
    yield effectsJson;
    if (buckets) yield Buffer.from(buckets.buffer, buckets.byteOffset, buckets.byteLength);
  }

  /**
   * Loads a snapshot written by `encodeSnapshot` (instead of `load` per entry) into an empty diff. Returns
   * false, loading nothing, when the bytes are not an index file of that generation.
   */
  decodeSnapshot(bytes: Buffer, generation: string): boolean {
    const parsed = parseIndexHeader(bytes);
    if (!parsed || parsed.header.generation !== generation) return false;
    const sections = SnapshotSections.plan(parsed.header, parsed.bodyStart, bytes.length);
    if (!sections) return false;
    for (const { position, target } of sections.parts) target.set(bytes.subarray(position, position + target.length));
    return this.adopt(sections);
  }

  /**
   * Takes an index file's sections once their bytes are read into place (`SnapshotSections.parts`): the
   * arrays become the diff's own, and the keys' buckets are built in one pass. False, loading nothing,
   * when they do not hold a valid index (a key twice, offsets out of order, unreadable odd hashes).
   */
  adopt(sections: SnapshotSections): boolean {
    if (this.size !== 0) throw new Error('an index file is loaded only into an empty diff');
    const { count } = sections.header;
    const keys = KeyTable.fromSections(sections.arena, sections.ends, count, sections.buckets);
    if (!keys) return false;
    let odd: [number, string][];
    try {
      odd = JSON.parse(Buffer.from(sections.odd.buffer, sections.odd.byteOffset, sections.odd.byteLength).toString('utf8')) as [number, string][];
      if (!Array.isArray(odd) || !odd.every((e) => Array.isArray(e) && Number.isInteger(e[0]) && e[0] >= 0 && e[0] < count && typeof e[1] === 'string')) return false;
    } catch {
      return false;
    }
    let effects: [string[], string[]][];
    try {
      effects = sections.effects.length === 0 ? [[[], []]] : (JSON.parse(Buffer.from(sections.effects.buffer, sections.effects.byteOffset, sections.effects.byteLength).toString('utf8')) as [string[], string[]][]);
      const lists = (l: unknown) => Array.isArray(l) && l.every((f) => typeof f === 'string');
      if (!Array.isArray(effects) || effects.length === 0 || !effects.every((e) => Array.isArray(e) && e.length === 2 && lists(e[0]) && lists(e[1]))) return false;
      // Id 0 is "none" for every print: a file whose first entry lists fields is not one this wrote.
      if (effects[0]![0].length > 0 || effects[0]![1].length > 0) return false;
      for (let s = 0; s < count; s++) if (sections.effectIds[s]! >= effects.length) return false;
    } catch {
      return false;
    }
    const capacity = sections.orderings.length;
    this.slots = keys;
    this.size = count;
    this.orderings = sections.orderings;
    this.words = sections.words;
    this.prints = sections.prints;
    this.effectIds = sections.effectIds;
    this.effects = effects;
    this.effectIndex.clear();
    effects.forEach((e, i) => this.effectIndex.set(JSON.stringify(e), i));
    this.printContext = sections.header.context ?? undefined;
    this.hashStorage = sections.storage;
    this.runOrderings = new Float64Array(capacity).fill(Number.NaN, 0, count);
    this.runClass = new Uint8Array(capacity);
    this.acked = new Uint8Array(capacity);
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
    const n = grow(this.orderings.length);
    this.orderings = grownTo(this.orderings, new Float64Array(n));
    this.runOrderings = grownTo(this.runOrderings, new Float64Array(n));
    this.runClass = grownTo(this.runClass, new Uint8Array(n));
    this.acked = grownTo(this.acked, new Uint8Array(n));
    this.hashStorage = grownTo(this.hashStorage, new Uint8Array(n));
    this.words = grownTo(this.words, new Uint32Array(4 * n));
    this.prints = grownTo(this.prints, new Uint32Array(4 * n));
    this.effectIds = grownTo(this.effectIds, new Uint16Array(n));
  }
}

/** The log of a run's acknowledgements, with room for `n`. */
function emptyAcks(n: number) {
  return {
    count: 0,
    slots: new Int32Array(n),
    words: new Uint32Array(4 * n),
    orderings: new Float64Array(n),
    /** Per acknowledgement, the print of the row it acknowledged (zero: none) and its effects' id. */
    prints: new Uint32Array(4 * n),
    effects: new Uint16Array(n),
    odd: new Map<number, string>(),
  };
}

/** Characters of a generation token a reserved header has room for (`RunDiff.snapshotFile`). */
const RESERVED_GENERATION = 160;

/** Slots per block of `RunDiff.snapshotChunks`. */
const BLOCK = 65536;

/**
 * An index file's sections, allocated at their final size (with room for the keys a run adds) so the
 * file is read straight into the arrays the diff keeps: `parts` says which bytes of the file go where,
 * then `RunDiff.adopt` takes them.
 */
export class SnapshotSections {
  readonly orderings: Float64Array;
  readonly words: Uint32Array;
  /** In shared memory: the workers read the prints where the diff keeps them. */
  readonly prints: Uint32Array;
  readonly ends: Uint32Array;
  readonly storage: Uint8Array;
  readonly effectIds: Uint16Array;
  readonly arena: Buffer;
  readonly odd: Uint8Array;
  readonly effects: Uint8Array;
  /** The key table's buckets, when the file keeps them under this code's `KEY_HASH`. */
  readonly buckets: Int32Array | undefined;
  /** Where each section is in the file; read `target.length` bytes from `position` into `target`. */
  readonly parts: readonly { position: number; target: Uint8Array }[];

  private constructor(
    readonly header: IndexHeader,
    bodyStart: number,
  ) {
    const { count, keyBytes, oddBytes } = header;
    const effectsBytes = header.effectsBytes ?? 0;
    const capacity = count + Math.max(1024, Math.ceil(count / 16));
    this.orderings = new Float64Array(capacity);
    this.words = new Uint32Array(4 * capacity);
    this.prints = new Uint32Array(new SharedArrayBuffer(16 * capacity));
    this.ends = new Uint32Array(capacity);
    this.storage = new Uint8Array(capacity);
    this.effectIds = new Uint16Array(capacity);
    this.arena = Buffer.allocUnsafe(keyBytes + Math.max(16 * 1024, Math.ceil(keyBytes / 16)));
    this.odd = new Uint8Array(oddBytes);
    this.effects = new Uint8Array(effectsBytes);
    const bucketCount = header.bucketCount ?? 0;
    this.buckets = bucketCount > 0 && header.keyHash === KEY_HASH ? new Int32Array(2 * bucketCount) : undefined;
    const parts: { position: number; target: Uint8Array }[] = [];
    let at = bodyStart;
    for (const [target, length] of [
      [bytesOf(this.orderings), 8 * count],
      [bytesOf(this.words), 16 * count],
      [bytesOf(this.prints), 16 * count],
      [bytesOf(this.ends), 4 * count],
      [this.storage, count],
      [bytesOf(this.effectIds), 2 * count],
      [this.arena, keyBytes],
      [this.odd, oddBytes],
      [this.effects, effectsBytes],
    ] as const) {
      parts.push({ position: at, target: target.subarray(0, length) });
      at += length;
    }
    if (this.buckets) parts.push({ position: at, target: new Uint8Array(this.buckets.buffer) });
    this.parts = parts;
  }

  /** The sections of a file of `fileLength` bytes with this header; undefined when the length does not match it. */
  static plan(header: IndexHeader, bodyStart: number, fileLength: number): SnapshotSections | undefined {
    const { count, keyBytes, oddBytes } = header;
    if (fileLength !== bodyStart + 47 * count + keyBytes + oddBytes + (header.effectsBytes ?? 0) + 8 * (header.bucketCount ?? 0) || keyBytes > 0xffff_ffff) return undefined;
    return new SnapshotSections(header, bodyStart);
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
const INDEX_MAGIC = 'TMSIDX02';
/** 2: record prints (a section of 16 bytes per key, and the header's `context`). A file of format 1 is not read. */
const INDEX_FORMAT = 2;

export interface IndexHeader {
  format: number;
  generation: string;
  count: number;
  keyBytes: number;
  oddBytes: number;
  /** The digest the prints were made under (record-prints.ts); null: none. */
  context?: string | null;
  /** Length of the JSON list of distinct `[nullBlocked, heldBack]` the prints' rows count. */
  effectsBytes?: number;
  /**
   * Buckets of the key table, when the file keeps them (a section of 8 bytes per bucket after the
   * effects); 0 or absent: none, they are built on load. `keyHash` is the `KEY_HASH` they were made under.
   */
  bucketCount?: number;
  keyHash?: number;
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
    for (const n of [header.count, header.keyBytes, header.oddBytes, header.effectsBytes ?? 0, header.bucketCount ?? 0]) if (!Number.isSafeInteger(n) || n < 0) return undefined;
    if (header.context !== undefined && header.context !== null && typeof header.context !== 'string') return undefined;
    return { header, bodyStart: align8(start + length) };
  } catch {
    return undefined;
  }
}

const align8 = (n: number): number => Math.ceil(n / 8) * 8;

function bytesOf(a: Float64Array | Uint32Array | Uint16Array | Uint8Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
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
