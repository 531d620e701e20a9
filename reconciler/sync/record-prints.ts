/**
 * Record fingerprints: a 128-bit print of one CSV record's bytes, kept per key in the snapshot's index
 * file, so a re-read of a byte-identical record is answered "unchanged" without being decoded, parsed,
 * normalised, prepared or hashed (issue 15; BENCHMARKS.md "record fingerprints").
 *
 * What a print claims, and why it stays true: a print at a key's slot says "these bytes, read under this
 * context, are a row of exactly this key, with exactly the snapshot's hash and ordering for it, with no
 * blank field and no note". Normalising is a pure function of the record and the context, so the claim
 * holds as long as the context and the slot's hash and ordering do. So:
 * - the context (everything else normalising depends on: the source's spec, the field registry, the
 *   workspace's normalisation, the file's header and delimiter, tidemark's version, the time-zone data) is
 *   a digest kept in the file's header; under another digest every print is dropped;
 * - a print is learned only from a row whose verdict was `unchanged` with the snapshot's own ordering, and
 *   every slot whose hash or ordering moves (an acknowledgement, an unmerged entry loaded over the file)
 *   loses its print (run-diff.ts);
 * - a worker answers from a print only after comparing all 128 bits with the slot's.
 * Prints are sha256 (its first 16 bytes) of the record's bytes: a changed record answered "unchanged"
 * would need a sha256 prefix collision. Pure: no I/O.
 */
import { hash } from 'node:crypto';
import { canonicalJson, sha256 } from '../core/digest.ts';
import { TIDEMARK_VERSION } from '../core/version.ts';

/** Part of every context digest: a change to what a print means (or to normalising itself) bumps it. */
export const PRINT_FORMAT = 1;

/**
 * The print of `bytes[start, end)` into `out[at .. at + 4)`. A print of four zero words means "none", so
 * one that comes out so (a 2^-128 chance) is stored as none and never matched.
 */
export function printOf(bytes: Uint8Array, start: number, end: number, out: Uint32Array, at: number): void {
  // The one-shot hash, read back as 'binary' (latin1: a char per byte): a third of the cost of a Hash object per
  // record, and no Buffer per call (measured 0.35 against 2.2 µs per 100-byte record; BENCHMARKS.md).
  const d = hash('sha256', bytes.subarray(start, end), 'binary');
  for (let w = 0; w < 4; w++) {
    const i = w * 4;
    out[at + w] = ((d.charCodeAt(i) << 24) | (d.charCodeAt(i + 1) << 16) | (d.charCodeAt(i + 2) << 8) | d.charCodeAt(i + 3)) >>> 0;
  }
}

/** Whether `words[at .. at + 4)` holds a print (not four zero words). */
export function isPrint(words: Uint32Array, at: number): boolean {
  return (words[at]! | words[at + 1]! | words[at + 2]! | words[at + 3]!) !== 0;
}

/**
 * The print a row was read with, carried with it to the sender: once Customer.io acknowledged the row,
 * its print stands for the entry the acknowledgement leaves (run-diff.ts `acknowledge`). Only a row whose
 * hash did not depend on what was sent before carries one.
 */
export interface RowPrint {
  words: Uint32Array;
  at: number;
  nullBlocked: readonly string[];
  heldBack: readonly string[];
}

/** What the print's meaning depends on besides the record's bytes. */
export interface PrintContextInput {
  source: unknown;
  fields: readonly (readonly [string, unknown])[];
  normalization: unknown;
  primary: string;
  header: readonly string[];
  delimiter: string;
  maxRecord: number;
}

/** The context digest: two reads under different digests share no print. */
export function printContext(input: PrintContextInput, versions: { node: string; tz?: string; icu?: string }): string {
  return sha256(
    canonicalJson({
      format: PRINT_FORMAT,
      tidemark: TIDEMARK_VERSION,
      // Dates and time zones are read by the runtime's own code and data.
      runtime: [versions.node, versions.tz ?? null, versions.icu ?? null],
      source: input.source,
      fields: [...input.fields].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
      normalization: input.normalization ?? null,
      primary: input.primary,
      header: input.header,
      delimiter: input.delimiter,
      maxRecord: input.maxRecord,
    }),
  );
}

/**
 * The prints of a snapshot's slots and an open-addressed table over them, both in shared memory so every
 * worker reads the same copy: `table` holds slot + 1 (0: empty), placed by the print's first word.
 */
export interface PrintShare {
  words: Uint32Array;
  table: Int32Array;
  /** Slots [0, count) are the table's. */
  count: number;
}

/** The table over `words` for slots [0, count) that hold a print; undefined when none does. */
export function buildPrintShare(words: Uint32Array, count: number): PrintShare | undefined {
  let n = 0;
  for (let s = 0; s < count; s++) if (isPrint(words, s * 4)) n++;
  if (n === 0) return undefined;
  // At most 3/4 full (linear probing stays short), in a power of two: 64 MB for ten million prints.
  let capacity = 1024;
  while (capacity * 3 < n * 4) capacity *= 2;
  const shared = words.buffer instanceof SharedArrayBuffer ? words : copyShared(words, count);
  const table = new Int32Array(new SharedArrayBuffer(4 * capacity));
  const mask = capacity - 1;
  for (let s = 0; s < count; s++) {
    if (!isPrint(shared, s * 4)) continue;
    let i = mix(shared[s * 4]!) & mask;
    while (table[i] !== 0) i = (i + 1) & mask;
    table[i] = s + 1;
  }
  return { words: shared, table, count };
}

function copyShared(words: Uint32Array, count: number): Uint32Array {
  const out = new Uint32Array(new SharedArrayBuffer(16 * Math.max(1, count)));
  out.set(words.subarray(0, 4 * count));
  return out;
}

/** The slot whose print is `print[at .. at + 4)`, or -1. All four words are compared. */
export function findPrint(share: PrintShare, print: Uint32Array, at: number): number {
  const { words, table } = share;
  const mask = table.length - 1;
  const w0 = print[at]!;
  for (let i = mix(w0) & mask; ; i = (i + 1) & mask) {
    const e = table[i]!;
    if (e === 0) return -1;
    const b = (e - 1) * 4;
    if (words[b] === w0 && words[b + 1] === print[at + 1] && words[b + 2] === print[at + 2] && words[b + 3] === print[at + 3]) return e - 1;
  }
}

/**
 * `findPrint`, trying `slot` first: the slot after the last one matched, which a file read in the order its
 * rows were first sent holds (most re-syncs), so most lookups touch memory next to the last one instead of
 * two random places. The same answer as `findPrint`: no two slots hold one print (a print is only learned
 * from a row of its slot's key, and the key is read from the record).
 */
export function findPrintNear(share: PrintShare, slot: number, print: Uint32Array, at: number): number {
  if (slot >= 0 && slot < share.count) {
    const w = share.words;
    const b = slot * 4;
    if (w[b] === print[at] && w[b + 1] === print[at + 1] && w[b + 2] === print[at + 2] && w[b + 3] === print[at + 3]) return slot;
  }
  return findPrint(share, print, at);
}

/** The print's first word is already uniform (a sha256's bytes); mixed anyway so a table never depends on that. */
function mix(w: number): number {
  let h = Math.imul(w ^ (w >>> 16), 0x45d9f3b);
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
  return (h ^ (h >>> 16)) >>> 0;
}
