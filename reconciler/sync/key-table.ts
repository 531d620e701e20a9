/**
 * Keys to dense slot numbers (0, 1, 2, … in first-seen order), held as bytes. Pure: no I/O.
 *
 * Why bytes: a table holding one JS string per key cost about 40 bytes of V8 heap per key (header,
 * characters, the array's pointer) on top of the table itself, and every one of them was another object
 * for the garbage collector to walk; ten million keys did not fit the 1.5 GB a re-sync may use. Here the
 * keys live in one growable byte arena, one after another, with their end offsets in a Uint32Array, and a
 * key is compared byte by byte against the UTF-8 of the key looked up. A JS string is made only when one
 * is asked for (`keyAt`). The arena and its offsets are exactly the index file's key sections, so a file
 * is loaded by reading them into place and building the buckets in one pass (`fromSections`).
 *
 * Keys are stored as WTF-8: UTF-8, except that a lone surrogate (a JS string need not be well-formed
 * UTF-16) gets the three bytes UTF-8 would give its code point. The encoding is then one-to-one on every
 * JS string, so two distinct keys can never share bytes, and text that is valid UTF-8 (what an index file
 * written before held) reads the same.
 */

/** Open addressing with linear probing: the table is grown before it is more than this full. */
const MAX_LOAD = 0.75;
/** The arena's offsets are 32-bit. */
const MAX_ARENA = 0xffff_ffff;

export class KeyTable {
  private arena: Buffer;
  private used = 0;
  /** Per slot, where its key ends in the arena; it starts where the previous slot's ends. */
  private ends: Uint32Array;
  private count = 0;
  /**
   * Per bucket, two words: the key's hash and slot + 1 (0 = empty). The hash beside the slot settles most
   * probes within one cache line, without touching the arena.
   */
  private buckets: Int32Array;
  private mask: number;
  /** The UTF-8 of the key being looked up (3 bytes per UTF-16 unit at most). */
  private scratch = new Uint8Array(256);

  constructor(expectedKeys = 0, expectedBytes = 0) {
    this.ends = new Uint32Array(Math.max(1024, expectedKeys));
    this.arena = Buffer.allocUnsafe(Math.max(16 * 1024, expectedBytes));
    const capacity = bucketsFor(expectedKeys);
    this.buckets = new Int32Array(2 * capacity);
    this.mask = capacity - 1;
  }

  /**
   * A table over keys already laid out as an index file holds them: `arena` holds `count` keys back to
   * back, `ends[i]` where key i ends. Both are taken as they are (they may have spare room past `count`
   * for keys added later). `buckets`, when given, are the buckets a table over the same keys wrote
   * (`bucketSection`): taken as they are when they place every slot exactly once, else built again.
   * Undefined when the sections are not a valid key list: offsets out of order or past the arena, or (found
   * only when the buckets are built) a key held twice.
   */
  static fromSections(arena: Buffer, ends: Uint32Array, count: number, buckets?: Int32Array): KeyTable | undefined {
    if (count > ends.length) return undefined;
    let start = 0;
    for (let i = 0; i < count; i++) {
      const end = ends[i]!;
      if (end < start || end > arena.length) return undefined;
      start = end;
    }
    const t = new KeyTable();
    t.arena = arena;
    t.ends = ends;
    t.used = start;
    t.count = count;
    if (buckets && placesEachSlotOnce(buckets, count)) {
      // Building them is a hash and a random probe per key: 160-220 ms per million keys, on every load.
      t.buckets = buckets;
      t.mask = buckets.length / 2 - 1;
      return t;
    }
    const capacity = bucketsFor(count);
    const built = new Int32Array(2 * capacity);
    const mask = capacity - 1;
    start = 0;
    for (let s = 0; s < count; s++) {
      const end = ends[s]!;
      const h = hashBytes(arena, start, end) | 0;
      let b = h & mask;
      for (; ; b = (b + 1) & mask) {
        const other = built[2 * b + 1]! - 1;
        if (other < 0) break;
        if (built[2 * b] === h && t.sameBytes(other, arena, start, end)) return undefined;
      }
      built[2 * b] = h;
      built[2 * b + 1] = s + 1;
      start = end;
    }
    t.buckets = built;
    t.mask = mask;
    return t;
  }

  /**
   * The buckets, for an index file that holds exactly this table's keys in slot order (`fromSections`
   * takes them back). They hold each key's `hashBytes`, so a file keeps them only under `KEY_HASH`.
   */
  bucketSection(): Int32Array {
    return this.buckets;
  }

  get size(): number {
    return this.count;
  }

  /** Bytes the keys take in the arena. */
  get byteLength(): number {
    return this.used;
  }

  /** Where a slot's key starts in the arena (`keyEnd(slot - 1)`). */
  keyStart(slot: number): number {
    return slot === 0 ? 0 : this.ends[slot - 1]!;
  }

  keyEnd(slot: number): number {
    return this.ends[slot]!;
  }

  /** The arena's bytes from `start` to `end` (a view, valid until the next key is added). */
  bytes(start: number, end: number): Buffer {
    return this.arena.subarray(start, end);
  }

  /** The end offsets of slots `from` to `to` (a view, valid until the next key is added). */
  endsView(from: number, to: number): Uint32Array {
    return this.ends.subarray(from, to);
  }

  /** The key of a slot, made into a string now. */
  keyAt(slot: number): string {
    return decodeKey(this.arena, this.keyStart(slot), this.ends[slot]!);
  }

  /** The key's slot, or -1. */
  find(key: string): number {
    const n = this.encode(key);
    const h = hashBytes(this.scratch, 0, n) | 0;
    const buckets = this.buckets;
    for (let b = h & this.mask; ; b = (b + 1) & this.mask) {
      const s = buckets[2 * b + 1]! - 1;
      if (s < 0) return -1;
      if (buckets[2 * b] === h && this.sameBytes(s, this.scratch, 0, n)) return s;
    }
  }

  /** The key's slot, adding the key with the next slot number when it is new. */
  intern(key: string): number {
    const n = this.encode(key);
    const scratch = this.scratch;
    const h = hashBytes(scratch, 0, n) | 0;
    const buckets = this.buckets;
    let b = h & this.mask;
    for (; ; b = (b + 1) & this.mask) {
      const s = buckets[2 * b + 1]! - 1;
      if (s < 0) break;
      if (buckets[2 * b] === h && this.sameBytes(s, scratch, 0, n)) return s;
    }
    const slot = this.count;
    if (this.used + n > this.arena.length) this.growArena(this.used + n);
    if (slot === this.ends.length) this.ends = grownTo(this.ends, new Uint32Array(grow(this.ends.length)));
    this.arena.set(scratch.subarray(0, n), this.used);
    this.used += n;
    this.ends[slot] = this.used;
    this.count++;
    buckets[2 * b] = h;
    buckets[2 * b + 1] = slot + 1;
    if (this.count > MAX_LOAD * (this.mask + 1)) this.rehash();
    return slot;
  }

  /** Whether slot `s`'s key is exactly `bytes[start, end)`. */
  private sameBytes(s: number, bytes: Uint8Array, start: number, end: number): boolean {
    const arena = this.arena;
    const from = s === 0 ? 0 : this.ends[s - 1]!;
    if (this.ends[s]! - from !== end - start) return false;
    for (let i = 0; i < end - start; i++) if (arena[from + i] !== bytes[start + i]) return false;
    return true;
  }

  /** Writes the key's WTF-8 into `scratch`; returns its length. */
  private encode(key: string): number {
    if (this.scratch.length < 3 * key.length) this.scratch = new Uint8Array(3 * key.length + 64);
    return encodeKey(key, this.scratch);
  }

  private growArena(need: number): void {
    if (need > MAX_ARENA) throw new Error('the keys of one source exceed 4 GB');
    const bigger = Buffer.allocUnsafe(Math.min(MAX_ARENA, Math.max(need, grow(this.arena.length))));
    this.arena.copy(bigger, 0, 0, this.used);
    this.arena = bigger;
  }

  /** Doubles the buckets; the hashes kept in the old ones spare hashing the keys again. */
  private rehash(): void {
    const old = this.buckets;
    const capacity = (this.mask + 1) * 2;
    const buckets = new Int32Array(2 * capacity);
    const mask = capacity - 1;
    for (let i = 0; i < old.length; i += 2) {
      const slot1 = old[i + 1]!;
      if (slot1 === 0) continue;
      const h = old[i]!;
      let b = h & mask;
      while (buckets[2 * b + 1] !== 0) b = (b + 1) & mask;
      buckets[2 * b] = h;
      buckets[2 * b + 1] = slot1;
    }
    this.buckets = buckets;
    this.mask = mask;
  }
}

/** Names `hashBytes` and the bucket layout in index files: change it with either. */
export const KEY_HASH = 1;

/**
 * Whether `buckets` can be a table's over `count` slots: a power of two of them (2,048 at least) within
 * the load limit, and every slot placed exactly once. What it cannot tell is whether each key sits where
 * its hash leads; a key that does not is only not found (read as new), never taken for another.
 */
function placesEachSlotOnce(buckets: Int32Array, count: number): boolean {
  const capacity = buckets.length / 2;
  if (!Number.isInteger(capacity) || capacity < 2048 || (capacity & (capacity - 1)) !== 0 || count > MAX_LOAD * capacity) return false;
  const seen = new Uint8Array(count);
  let placed = 0;
  for (let i = 1; i < buckets.length; i += 2) {
    const slot1 = buckets[i]!;
    if (slot1 === 0) continue;
    if (slot1 < 0 || slot1 > count || seen[slot1 - 1] === 1) return false;
    seen[slot1 - 1] = 1;
    placed++;
  }
  return placed === count;
}

/** The smallest power of two of buckets that holds `keys` within the load limit. */
function bucketsFor(keys: number): number {
  let capacity = 2048;
  while (keys > MAX_LOAD * capacity) capacity *= 2;
  return capacity;
}

/** Growth by half: a table that outgrows its arrays copies them, and half wastes less than double at ten million keys. */
export function grow(length: number): number {
  return Math.max(1024, Math.ceil(length * 1.5));
}

export function grownTo<T extends Uint8Array | Uint16Array | Int32Array | Uint32Array | Float64Array>(from: T, to: T): T {
  to.set(from.subarray(0, Math.min(from.length, to.length)) as never);
  return to;
}

/** FNV-1a over bytes, with a final avalanche so sequential ids spread over the buckets. */
export function hashBytes(bytes: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

/** A string's WTF-8 into `out` (at least 3 bytes per UTF-16 unit); returns the length. */
export function encodeKey(key: string, out: Uint8Array): number {
  let j = 0;
  const n = key.length;
  for (let i = 0; i < n; i++) {
    let c = key.charCodeAt(i);
    if (c < 0x80) {
      out[j++] = c;
    } else if (c < 0x800) {
      out[j++] = 0xc0 | (c >> 6);
      out[j++] = 0x80 | (c & 63);
    } else {
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
        const d = key.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
          out[j++] = 0xf0 | (c >> 18);
          out[j++] = 0x80 | ((c >> 12) & 63);
          out[j++] = 0x80 | ((c >> 6) & 63);
          out[j++] = 0x80 | (c & 63);
          continue;
        }
      }
      // Any other unit of the BMP, a lone surrogate included.
      out[j++] = 0xe0 | (c >> 12);
      out[j++] = 0x80 | ((c >> 6) & 63);
      out[j++] = 0x80 | (c & 63);
    }
  }
  return j;
}

/** The string whose WTF-8 is `bytes[start, end)`. */
export function decodeKey(bytes: Buffer, start: number, end: number): string {
  // A lone surrogate is 0xED followed by 0xA0–0xBF: without one, the bytes are UTF-8 and the native decoder reads them.
  let lone = false;
  for (let i = start; i + 1 < end; i++) {
    if (bytes[i] === 0xed && bytes[i + 1]! >= 0xa0) {
      lone = true;
      break;
    }
  }
  if (!lone) return bytes.toString('utf8', start, end);
  let s = '';
  for (let i = start; i < end; ) {
    const b = bytes[i]!;
    let c: number;
    if (b < 0x80) {
      c = b;
      i += 1;
    } else if (b < 0xe0) {
      c = ((b & 31) << 6) | (bytes[i + 1]! & 63);
      i += 2;
    } else if (b < 0xf0) {
      c = ((b & 15) << 12) | ((bytes[i + 1]! & 63) << 6) | (bytes[i + 2]! & 63);
      i += 3;
    } else {
      c = ((b & 7) << 18) | ((bytes[i + 1]! & 63) << 12) | ((bytes[i + 2]! & 63) << 6) | (bytes[i + 3]! & 63);
      i += 4;
    }
    // Only a damaged file holds more than 21 bits: read as the replacement character, as the decoder would.
    s += String.fromCodePoint(c > 0x10ffff ? 0xfffd : c);
  }
  return s;
}
