/**
 * From a normalised row to what the snapshot stores and what would be sent. Pure.
 *
 * - Nulls: a blank erases a Customer.io attribute only when the field is declared `clearable` (or the
 *   source says `null_policy: overwrite`, which validation flags). Otherwise the field is never sent and
 *   is counted as "null-blocked": the nightly export that blanks VIP tiers changes nothing.
 * - A blocked blank is not a change. Customer.io still holds the value last sent, so the row is compared
 *   as if it carried that value: the previous payload's value is kept in the payload (and so in the hash
 *   and in the mirror of what was sent), listed in `kept` so that it is never sent again (someone may have
 *   changed it in Customer.io since, and the source said nothing new about it).
 * - Only mapped fields are compared: the hash covers exactly the values Customer.io should hold after the
 *   row is sent, so a column tidemark does not map can change without a resend.
 * - A state field travels with its updated_at companion: when the state's blank is blocked, the companion
 *   is held back too, since "updated at T" next to a value the source did not confirm at T would tell
 *   journeys a stale state is fresh. The companion is not a blank: it is reported apart, as held back
 *   (`heldBack`), so that the counts say what happened to each of the two fields.
 * - A field the row does not have at all (`absent`: a key missing from an NDJSON object) is not provided:
 *   never sent, never an erase, never counted as a blank. Like a blocked blank, the value last sent stays
 *   in the mirror, and a state field left out this way holds back its companion too.
 */
import { hash } from 'node:crypto';
import { canonicalJson } from '../core/digest.ts';
import type { FieldDef, SourceSpec } from '../spec/schema/index.ts';
import type { NormalizedRow, SyncValue } from './types.ts';
import type { SerialisedEntry } from '../providers/customerio/v2-batch.ts';

/**
 * What is kept per key in the snapshot (as JSON: the mirror of what was sent, and the pending entries),
 * and sent when the key is new or changed. Read stored text with `readPayload`: states written before
 * issue 9 hold the same payload under one-letter keys (`r`, `a`, `e`, `o`, `k`).
 */
export interface Payload {
  /** person | event | object */
  records: SourceSpec['records'];
  /** Attributes (person, object) or event data. */
  attributes: Record<string, SyncValue>;
  event?: { name: string; id: string; timestamp: number; person: string };
  object?: { type: string; id: string; person?: string };
  /**
   * Fields of `attributes` carried over from the previous payload because this row's blank was blocked.
   * They are part of the hash and the mirror (Customer.io still holds them) but are never sent.
   */
  kept?: string[];
}

/** The payload stored before issue 9, under one-letter keys. */
interface ShortKeyPayload {
  r: Payload['records'];
  a: Payload['attributes'];
  e?: Payload['event'];
  o?: Payload['object'];
  k?: string[];
}

/**
 * A stored payload (snapshot mirror or pending entry), whichever version wrote it: the one-letter keys of
 * states written before issue 9 are read as their names, so an upgrade neither loses a blocked value
 * kept in the mirror nor a pending entry.
 */
export function readPayload(text: string): Payload {
  const stored = JSON.parse(text) as Payload | ShortKeyPayload;
  if (!('r' in stored) || 'records' in stored) return stored as Payload;
  const payload: Payload = { records: stored.r, attributes: stored.a };
  if (stored.e !== undefined) payload.event = stored.e;
  if (stored.o !== undefined) payload.object = stored.o;
  if (stored.k !== undefined) payload.kept = stored.k;
  return payload;
}

export interface PreparedRow {
  key: string;
  hash: string;
  ordering: number | null;
  payload: Payload;
  /** Blank fields kept from erasing a value because they are not clearable. None of these is sent. */
  nullBlocked: string[];
  /**
   * updated_at companions that had a value but are not sent, because their state field was a blocked
   * blank (or absent) in the same row. Not blanks: counted apart from `nullBlocked`.
   */
  heldBack: string[];
  /** Blank fields that will erase a value (clearable, or null_policy overwrite), unless it is already erased. */
  erased: string[];
  /** `JSON.stringify(payload)`, when it was made already (by a worker thread). */
  payloadJson?: string;
  /** The row's Track entry serialised, when it was made already (by a worker thread, with the run's entry options). */
  entry?: SerialisedEntry;
}

/**
 * Prepares one row. `previous` is the payload last sent for the row's key, when there is one; the
 * engine looks it up only for rows with blanks, the only rows whose outcome depends on it.
 *
 * A row without blanks needs no copy: its payload's `attributes` is `row.values` itself (neither is changed
 * afterwards). A row with blanks gets its own copy, since blanks add, replace or remove attributes.
 */
export function prepareRow(
  row: NormalizedRow,
  source: SourceSpec,
  fields: ReadonlyMap<string, FieldDef>,
  previous?: Payload,
): PreparedRow {
  const blanks = row.blanks;
  const absent = source.records === 'event' ? undefined : row.absent;
  let attributes: Record<string, SyncValue> = row.values;
  const nullBlocked: string[] = [];
  const heldBack: string[] = [];
  const erased: string[] = [];
  let kept: string[] | undefined;
  if (blanks.length > 0 || absent !== undefined) {
    attributes = { ...row.values };
    const holdBack = (f: string): void => {
      const before = previous?.attributes[f];
      if (before !== undefined && before !== null) {
        attributes[f] = before;
        (kept ??= []).push(f);
      } else {
        delete attributes[f];
      }
    };
    for (const f of blanks) {
      if (source.null_policy === 'overwrite' || fields.get(f)?.clearable) {
        attributes[f] = null;
        // Erasing what is already erased is no erase (and the unchanged row is not sent anyway).
        if (previous?.attributes[f] !== null) erased.push(f);
      } else {
        nullBlocked.push(f);
        holdBack(f);
      }
    }
    if (absent !== undefined) for (const f of absent) holdBack(f);
    if (source.records !== 'event') {
      // A companion held back is one the row has a value for (so it is neither blank nor absent).
      const withheld = absent === undefined ? nullBlocked : [...nullBlocked, ...absent];
      for (const f of withheld) {
        const companion = fields.get(f)?.updated_at;
        if (companion === undefined || !Object.hasOwn(row.values, companion) || heldBack.includes(companion)) continue;
        heldBack.push(companion);
        holdBack(companion);
      }
    }
  }
  const payload: Payload = { records: source.records, attributes };
  if (row.event) payload.event = row.event;
  if (row.object) payload.object = row.object;
  // Events are immutable: their identity is the event id, whatever the data says later. `kept` is not hashed.
  const canonical = source.records === 'event' ? eventCanonicalJson(row.event) : payloadCanonicalJson(payload);
  if (kept) payload.kept = kept.sort();
  // The one-shot hash() gives the same digest as core's sha256() without a Hash object per row, which
  // made up about a third of this function's time on a million-row source (see docs/BENCHMARKS.md).
  return { key: row.key, hash: hash('sha256', canonical).slice(0, 32), ordering: row.ordering, payload, nullBlocked, heldBack, erased };
}

/*
 * The hashed text is canonicalJson() of `{ r, a, e?, o? }` (of `{ e }` for events), byte for byte, so that
 * stored snapshot hashes stay valid. Those one-letter keys are the hash's format, frozen: they were the
 * payload's own keys until issue 9 named them, and a hash of other text would make every unchanged row
 * of every source look changed, and be re-sent, after an upgrade. `hashedForm` gives that object. Written out here for what a payload holds (flat records of strings,
 * numbers, booleans and nulls) because the general serialiser, recursing and sorting keys on every row,
 * cost several times the hash itself. Anything else in a payload goes to canonicalJson() unchanged.
 */

/** The sorted members of one key order, with the text before each member's value. */
interface Shape {
  keys: string[];
  /** The keys in canonical (sorted) order. */
  sorted: string[];
  /** `\n    "key": ` or `,\n    "key": ` per sorted member (the indent of a record nested one level). */
  heads: string[];
  /** The same with the opening quote of a string value. */
  quoted: string[];
}

// Rows of one source share a handful of key orders (a blank field drops a key), so the sort of each order
// is remembered: a row then costs a comparison of its keys with a remembered order, not a sort.
const SHAPES = 8;
const shapes: (Shape | undefined)[] = new Array<Shape | undefined>(SHAPES).fill(undefined);
let nextShape = 0;

const compareKeys = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function shapeOf(keys: string[]): Shape {
  for (let s = 0; s < SHAPES; s++) {
    const shape = shapes[s];
    if (shape === undefined || shape.keys.length !== keys.length) continue;
    const known = shape.keys;
    let i = 0;
    while (i < keys.length && known[i] === keys[i]) i++;
    if (i === keys.length) return shape;
  }
  const sorted = [...keys].sort(compareKeys);
  const heads = sorted.map((k, i) => `${i === 0 ? '\n    ' : ',\n    '}${JSON.stringify(k)}: `);
  const shape: Shape = { keys, sorted, heads, quoted: heads.map((h) => `${h}"`) };
  shapes[nextShape] = shape;
  nextShape = (nextShape + 1) % SHAPES;
  return shape;
}

// What JSON.stringify escapes in a string (quote, backslash, control characters, lone surrogates; paired
// surrogates are matched too, and simply left to JSON.stringify). Any other string is quoted as it is.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * A record of scalars nested one level deep, as canonicalJson writes it (strings as JSON.stringify
 * writes them, non-finite numbers as null); undefined when the record holds anything else (or has a
 * toJSON), which the caller then leaves to canonicalJson.
 */
function flatRecordJson(record: unknown): string | undefined {
  if (record === null || typeof record !== 'object' || Array.isArray(record)) return undefined;
  if (typeof (record as { toJSON?: unknown }).toJSON === 'function') return undefined;
  const keys = Object.keys(record);
  if (keys.length === 0) return '{}';
  const shape = shapeOf(keys);
  const sorted = shape.sorted;
  const values = record as Record<string, unknown>;
  let out = '{';
  for (let i = 0; i < sorted.length; i++) {
    const v = values[sorted[i]!];
    switch (typeof v) {
      case 'string':
        if (NEEDS_ESCAPE.test(v)) out += shape.heads[i]! + JSON.stringify(v);
        else out += `${shape.quoted[i]!}${v}"`;
        break;
      case 'number':
        out += shape.heads[i]! + (Number.isFinite(v) ? String(v) : 'null');
        break;
      case 'boolean':
        out += shape.heads[i]! + (v ? 'true' : 'false');
        break;
      default:
        if (v !== null) return undefined;
        out += `${shape.heads[i]!}null`;
    }
  }
  return `${out}\n  }`;
}

let lastRecords: unknown;
let lastRecordsJson = '';

/** What a person or object payload's hash is taken of: its content under the hash's one-letter keys, `kept` left out. */
function hashedForm(payload: Payload): Omit<ShortKeyPayload, 'k'> {
  const out: Omit<ShortKeyPayload, 'k'> = { r: payload.records, a: payload.attributes };
  if (payload.event !== undefined) out.e = payload.event;
  if (payload.object !== undefined) out.o = payload.object;
  return out;
}

/** canonicalJson(hashedForm(payload)) for a person or object payload (keys in sorted order: a, e, o, r). */
function payloadCanonicalJson(payload: Payload): string {
  const a = flatRecordJson(payload.attributes);
  const e = payload.event === undefined ? '' : flatRecordJson(payload.event);
  const o = payload.object === undefined ? '' : flatRecordJson(payload.object);
  if (a === undefined || e === undefined || o === undefined || typeof payload.records !== 'string') {
    return canonicalJson(hashedForm(payload));
  }
  if (payload.records !== lastRecords) {
    lastRecords = payload.records;
    lastRecordsJson = JSON.stringify(payload.records);
  }
  let out = `{\n  "a": ${a}`;
  if (payload.event !== undefined) out += `,\n  "e": ${e}`;
  if (payload.object !== undefined) out += `,\n  "o": ${o}`;
  return `${out},\n  "r": ${lastRecordsJson}\n}`;
}

/**
 * The hash `prepareRow` gives a person or object row without an event or object part whose attributes
 * are among `fields`, each a string, number, boolean or null (undefined: not in the attributes): its
 * canonical text written straight from the values, in `fields`' order, without a payload, a key list or
 * a shape lookup per row. Undefined when no field is mapped; the hasher answers undefined for a row with
 * no attribute at all (prepareRow writes those as it always has). The text is the one
 * `payloadCanonicalJson` writes for the same attributes, byte for byte (row-hash-stability.test.ts pins
 * both).
 */
export function attributesHasher(records: SourceSpec['records'], fields: readonly string[]): ((values: readonly (SyncValue | undefined)[]) => string | undefined) | undefined {
  const n = fields.length;
  if (n === 0 || new Set(fields).size !== n) return undefined;
  const order = fields.map((_, i) => i).sort((a, b) => compareKeys(fields[a]!, fields[b]!));
  // The text before a member's value, first member or not, and the same with a string's opening quote.
  const firstHeads = order.map((f) => `\n    ${JSON.stringify(fields[f]!)}: `);
  const heads = firstHeads.map((h) => `,${h}`);
  const firstQuoted = firstHeads.map((h) => `${h}"`);
  const quoted = heads.map((h) => `${h}"`);
  const tail = `\n  },\n  "r": ${JSON.stringify(records)}\n}`;
  return (values) => {
    let out = '{\n  "a": {';
    let first = true;
    for (let i = 0; i < n; i++) {
      const v = values[order[i]!];
      if (v === undefined) continue;
      const head = first ? firstHeads[i]! : heads[i]!;
      switch (typeof v) {
        case 'string':
          if (NEEDS_ESCAPE.test(v)) out += head + JSON.stringify(v);
          else out += `${first ? firstQuoted[i]! : quoted[i]!}${v}"`;
          break;
        case 'number':
          out += head + (Number.isFinite(v) ? String(v) : 'null');
          break;
        case 'boolean':
          out += head + (v ? 'true' : 'false');
          break;
        default:
          out += `${head}null`;
      }
      first = false;
    }
    if (first) return undefined;
    return hash('sha256', out + tail).slice(0, 32);
  };
}

/** canonicalJson({ e: event }). */
function eventCanonicalJson(event: NormalizedRow['event']): string {
  if (event === undefined) return '{}';
  const e = flatRecordJson(event);
  return e === undefined ? canonicalJson({ e: event }) : `{\n  "e": ${e}\n}`;
}

/** The fields of a payload that differ from a previous payload (for per-field counts in sync plans). */
export function changedFields(previous: Payload | undefined, next: Payload): string[] {
  if (!previous) return Object.keys(next.attributes).sort();
  const before = previous.attributes;
  const after = next.attributes;
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((k) => k in after && JSON.stringify(before[k] ?? null) !== JSON.stringify(after[k] ?? null)).sort();
}
