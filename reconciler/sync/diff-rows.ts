/**
 * What the engine does with each chunk of normalised rows, in source order: count and record rejects,
 * look up the previous payloads rows with blanks depend on, let waiting entries go first, classify each
 * row against the snapshot, and hand the rows to send to the sender (a plan: to the per-field sample).
 *
 * Every rule that depends on the order of the rows lives here, once, on the engine's thread: the latest
 * ordering wins, a duplicate read later wins a tie, rejects are written in source order. Where the rows
 * come from is a `DiffRows`: normalised and prepared on this thread (`SerialRows`), or by workers
 * (parallel/), which hand back keys, hashes and orderings and prepare a row's payload again here only when
 * it is sent or sampled. Either way the same values reach the same calls in the same order.
 */
import type { FieldDef, SourceSpec } from '../spec/schema/index.ts';
import type { StateStore } from '../state/index.ts';
import { prepareRow, readPayload, type Payload, type PreparedRow } from './prepare.ts';
import { isPrint } from './record-prints.ts';
import type { PendingBook, RunDiff } from './run-diff.ts';
import type { Sender } from './sender.ts';
import type { NormalizedRow, NormalizeResult, RejectedRow } from './types.ts';

/** One chunk of rows in source order, normalised and hashed. */
export interface DiffRows {
  readonly size: number;
  /** The reject, when row `i` was rejected; then nothing else is asked about it. */
  rejected(i: number): RejectedRow | undefined;
  key(i: number): string;
  /** Whether the row has blank or absent fields: its payload and hash then depend on what was sent before. */
  hasBlanks(i: number): boolean;
  /** The row prepared with the payload last sent for its key (undefined: none), as `prepareRow` does. */
  prepare(i: number, previous: Payload | undefined): PreparedRow;
  /**
   * The parts of `prepare(i, undefined)` the diff needs, without its payload (which a worker may not
   * have handed over).
   */
  light(i: number): Pick<PreparedRow, 'key' | 'hash' | 'ordering' | 'nullBlocked' | 'heldBack' | 'erased'>;
  location(i: number): string;
  /** Notes of the chunk's accepted rows (a set: their order does not matter). */
  notes(): Iterable<string>;
  /**
   * The snapshot slot row `i` is known to be exactly the entry of (its record's print matched), or -1.
   * Such a row has no key, hash or ordering of its own here: the snapshot's are its.
   */
  hit?(i: number): number;
  /** Per row, four words: the print a row may teach when it reads unchanged (zero: none). */
  readonly prints?: Uint32Array | undefined;
}

/** Per-field change counts of a plan (run.ts's FieldChangeSample). */
export interface ChangeSample {
  wants(slot: number): boolean;
  add(slot: number, key: string, cls: 'new' | 'changed', payload: Payload): void;
  withdraw(slot: number): void;
}

export interface DiffRowsCounts {
  read: number;
  rejected: number;
  rejected_by_code: Record<string, number>;
  behind_pending: number;
  null_blocked: Record<string, number>;
  held_back: Record<string, number>;
  erased: Record<string, number>;
}

export interface DiffRowsInput {
  store: Pick<StateStore, 'getSnapshotPayloads'>;
  source: SourceSpec;
  diff: RunDiff;
  counts: DiffRowsCounts;
  rejects: { write(record: Record<string, unknown>): void };
  notes: Set<string>;
  book: PendingBook;
  /** Set on a run: changed rows go out while the read goes on. */
  sender: Sender | undefined;
  /** Set on a plan: the per-field change counts. */
  sample: ChangeSample | undefined;
}

const NONE: string[] = [];

const bump = (m: Record<string, number>, k: string) => {
  m[k] = (m[k] ?? 0) + 1;
};

/** Diffs one chunk; resolves once its rows to send are handed to the sender. */
export async function diffRows(rows: DiffRows, input: DiffRowsInput): Promise<void> {
  const { store, source, diff, counts, rejects, notes, book, sender, sample } = input;
  const events = source.records === 'event';
  const ok: number[] = [];
  // Only rows with blanks need what was sent before (a blocked blank keeps the previous value), and
  // only when something was sent: one lookup for the whole chunk.
  const lookups: string[] = [];
  const asSent = new Set<number>();
  for (let i = 0; i < rows.size; i++) {
    counts.read++;
    const r = rows.rejected(i);
    if (r) {
      counts.rejected++;
      bump(counts.rejected_by_code, r.code);
      rejects.write({ location: r.location, code: r.code, reason: r.reason, ...(r.column ? { column: r.column } : {}), ...(r.field ? { field: r.field } : {}) });
      continue;
    }
    if (rows.hasBlanks(i) && !events && diff.inSnapshot(rows.key(i))) {
      // A row whose hash without the previous payload is the snapshot's needs no lookup (most rows with
      // blanks in a re-sync): that hash says the payload last sent holds exactly this row's attributes,
      // so a blocked blank has nothing to keep, and every erased field is already erased there.
      if (diff.holds(rows.key(i), rows.light(i).hash)) asSent.add(i);
      else lookups.push(rows.key(i));
    }
    ok.push(i);
  }
  for (const note of rows.notes()) notes.add(note);
  const previous = lookups.length > 0 ? await store.getSnapshotPayloads(source.name, lookups) : undefined;
  const prints = rows.prints;
  // With no entry waiting, a matched row read first for its key needs nothing but the diff's own
  // bookkeeping (most rows of a re-sync): taken without an offer per row, its effects tallied per chunk.
  const quick = book.waiting.size === 0 && book.superseded.size === 0;
  const effects: number[] = [];
  for (const i of ok) {
    const matched = rows.hit?.(i) ?? -1;
    if (matched >= 0) {
      if (!(quick && diff.takeMatched(matched, effects))) await diffMatched(rows, i, matched, input);
      continue;
    }
    const before = previous?.get(rows.key(i));
    const full = before === undefined ? undefined : rows.prepare(i, readPayload(before));
    const p = full ?? (asSent.has(i) ? { ...rows.light(i), erased: NONE } : rows.light(i));
    if (!book.admit(p.key, p.ordering)) {
      counts.behind_pending++;
      continue;
    }
    for (const f of p.nullBlocked) bump(counts.null_blocked, f);
    for (const f of p.heldBack) bump(counts.held_back, f);
    for (const f of p.erased) bump(counts.erased, f);
    const offer = diff.offer(p.key, p.hash, p.ordering);
    if (offer.verdict === 'duplicate') continue;
    // Only a row whose own hash (without what was sent before) is the snapshot's may teach its print: then
    // reading it again always ends here, whatever was sent before.
    if (prints && offer.verdict === 'unchanged' && full === undefined) diff.learn(offer.slot, prints, i * 4, p.ordering, p.nullBlocked, p.heldBack);
    // Events are immutable and sent once: a "changed" event row is the same event id again. A row that
    // superseded a waiting entry goes out even when the snapshot already holds it: its acknowledgement
    // settles that entry in the same transaction, so a kill can never leave the older entry to go later.
    const wanted = offer.verdict === 'new' || (offer.verdict === 'changed' && !events) || (offer.verdict === 'unchanged' && book.superseded.has(p.key));
    if (sender) {
      if (offer.displaced) sender.withdraw(offer.slot);
      // A row sent as read (not over what was sent before) carries its print: acknowledged, it stands for the entry.
      const print = prints && full === undefined && isPrint(prints, i * 4) ? { words: prints, at: i * 4, nullBlocked: p.nullBlocked, heldBack: p.heldBack } : undefined;
      if (wanted) await sender.add(offer.slot, full ?? rows.prepare(i, undefined), rows.location(i), print);
    } else if (sample) {
      if (offer.displaced) sample.withdraw(offer.slot);
      if ((offer.verdict === 'new' || offer.verdict === 'changed') && sample.wants(offer.slot)) {
        sample.add(offer.slot, p.key, offer.verdict, (full ?? rows.prepare(i, undefined)).payload);
      }
    }
  }
  effects.forEach((n, id) => {
    const [nullBlocked, heldBack] = diff.effectsOf(id);
    for (const f of nullBlocked) counts.null_blocked[f] = (counts.null_blocked[f] ?? 0) + n;
    for (const f of heldBack) counts.held_back[f] = (counts.held_back[f] ?? 0) + n;
  });
}

/**
 * A row known to be exactly the snapshot's entry of `slot` (diffRows, as for any row): its key is looked up
 * only when a pending entry may care, and it is prepared only when it goes out (superseding a pending entry).
 */
async function diffMatched(rows: DiffRows, i: number, slot: number, input: DiffRowsInput): Promise<void> {
  const { diff, counts, book, sender, sample } = input;
  const key = book.waiting.size > 0 || book.superseded.size > 0 ? diff.keyAt(slot) : undefined;
  if (key !== undefined && !book.admit(key, diff.snapshotOrderingAt(slot))) {
    counts.behind_pending++;
    return;
  }
  // As a row read unchanged with blanks counts them (its erased fields are already erased there).
  const [nullBlocked, heldBack] = diff.effectsAt(slot);
  for (const f of nullBlocked) bump(counts.null_blocked, f);
  for (const f of heldBack) bump(counts.held_back, f);
  const offer = diff.offerAsSnapshot(slot);
  if (offer.verdict === 'duplicate') return;
  const wanted = key !== undefined && book.superseded.has(key);
  if (sender) {
    if (offer.displaced) sender.withdraw(offer.slot);
    if (wanted) await sender.add(offer.slot, rows.prepare(i, undefined), rows.location(i));
  } else if (sample) {
    if (offer.displaced) sample.withdraw(offer.slot);
  }
}

/** Rows normalised on the engine's thread: each accepted row prepared once without a previous payload, when asked. */
export class SerialRows implements DiffRows {
  private readonly prepared: (PreparedRow | undefined)[];
  private readonly noted = new Set<string>();

  constructor(
    private readonly results: readonly NormalizeResult[],
    private readonly source: SourceSpec,
    private readonly fields: ReadonlyMap<string, FieldDef>,
  ) {
    this.prepared = new Array<PreparedRow | undefined>(results.length);
    for (const n of results) if (n.ok && n.notes) for (const note of n.notes) this.noted.add(note);
  }

  get size(): number {
    return this.results.length;
  }

  rejected(i: number): RejectedRow | undefined {
    const n = this.results[i]!;
    return n.ok ? undefined : n;
  }

  private row(i: number): NormalizedRow {
    return this.results[i] as NormalizedRow;
  }

  key(i: number): string {
    return this.row(i).key;
  }

  hasBlanks(i: number): boolean {
    const n = this.row(i);
    return n.blanks.length > 0 || n.absent !== undefined;
  }

  prepare(i: number, previous: Payload | undefined): PreparedRow {
    if (previous !== undefined) return prepareRow(this.row(i), this.source, this.fields, previous);
    return (this.prepared[i] ??= prepareRow(this.row(i), this.source, this.fields, undefined));
  }

  light(i: number): PreparedRow {
    return this.prepare(i, undefined);
  }

  location(i: number): string {
    return this.row(i).location;
  }

  notes(): Iterable<string> {
    return this.noted;
  }
}
