/**
 * Row normalisation: one raw source row in, one typed, identity-resolved row (or a reject with a reason)
 * out. Pure: no I/O, no clock, never throws on row values, so one bad row can never stop a run.
 *
 * Rules, in the order they are applied (the first failure rejects the row):
 * 1. A row a connector could not parse carries `__error` and is rejected as `row_malformed`, or as the
 *    code the connector gave in `__code` (`invalid_encoding`). A read that cannot go on is not a row: the
 *    connector throws, and the run fails.
 * 2. The key. Person sources: the identity column, normalised as declared (`as: id|email|phone`).
 *    Event sources: the same person identity is required, plus the event timestamp and id columns; the
 *    key is the event's deterministic id. Object sources: the object id column; a person identity is
 *    optional there (kept when valid, noted when not).
 * 3. Mapped fields, converted by the field registry's type; blanks (null, empty or whitespace) are
 *    listed in `blanks` for the engine's null policy rather than converted. A column the row does not have
 *    at all (a key missing from an NDJSON object) is not a blank: the field is listed in `absent`, as not
 *    provided, and never erases anything. (CSV and Postgres inputs are checked for every mapped column
 *    before the first row, so only NDJSON rows can lack one.)
 * 4. The ordering column, as epoch milliseconds (missing → null, not a reject).
 *
 * Reasons name columns and fields, never the values: identifiers, emails and phone numbers are PII and
 * reasons end up in reports. Enum mismatches are the exception (enum values are declared vocabulary).
 *
 * This file is the per-source pipeline; the key's identity rules are in identity.ts, the per-type value
 * rules in converters.ts (timestamps in timezones.ts). Every row of a source goes through the same
 * steps, so `createNormalizer` works out once per context what does not depend on the row (the field
 * list with each field's converter, the identity reader, one timestamp reader per column, the reason
 * texts), and per row only reads and converts values. The context is read when the normaliser is
 * created and must not be changed afterwards.
 */
import { createHash } from 'node:crypto';
import { deterministicUlid } from '../core/ulid.ts';
import type { SourceSpec } from '../spec/schema/index.ts';
import { ROW_CODE_KEY, ROW_ERROR_KEY } from './connectors/rows.ts';
import { addNote, columnInstant, converterFor, type ColumnInstant, type Converter, type NoteSink } from './converters.ts';
import { canonicalIdText, idOf, identityReader } from './identity.ts';
import { attributesHasher, type Payload } from './prepare.ts';
import { failure, isBlank, readColumn } from './raw-values.ts';
import type { NormalizeContext, NormalizeResult, NormalizedRow, RejectedRow, SourceRow, SyncValue } from './types.ts';

/** Latest event time accepted (the largest 48-bit millisecond time a ULID can carry, year 10889). */
const MAX_EVENT_TIME_MS = 2 ** 48 - 1;
/**
 * Base of the time part of event ids, 2024-01-01T00:00:00Z. ⚠ Customer.io documents the id only as "a
 * valid ULID used to deduplicate events"; whether it reads the time part is undocumented. The safest
 * reading is a time that looks like a recent one (not 1970, not the far future), so the time part is this
 * base plus 32 bits of the key's hash (at most about 50 days later): a fixed function of the key.
 */
const EVENT_ID_TIME_BASE_MS = Date.UTC(2024, 0, 1);

/** The ULID of an event key: time part and random part both from the key's SHA-256, never from the clock. */
export function eventUlid(key: string): string {
  const digest = createHash('sha256').update(key, 'utf8').digest();
  // Bytes 10..13: the random part (deterministicUlid) uses the first ten of the same digest.
  return deterministicUlid(key, EVENT_ID_TIME_BASE_MS + digest.readUInt32BE(10));
}

/**
 * What the steps of one row hand on besides their value, in a record each normaliser reuses from row to
 * row (normalising is synchronous and calls nothing that could normalise another row meanwhile).
 */
interface RowState extends NoteSink {
  event: NormalizedRow['event'];
  object: NormalizedRow['object'];
}

interface FieldStep {
  field: string;
  column: string;
  /** Undefined for a field missing from the registry: the row is rejected when it gets there. */
  convert: Converter | undefined;
  /** `Field x (column "y")`, the start of every reason about this field. */
  where: string;
}

function reject(row: SourceRow, code: string, reason: string, column?: string, field?: string): RejectedRow {
  const out: RejectedRow = { ok: false, location: row.location, code, reason };
  if (column !== undefined) out.column = column;
  if (field !== undefined) out.field = field;
  return out;
}

/**
 * The key step for the source's record type: a function from a row's values to its key, or the reject.
 * The event or object the row describes, and notes (an object's unusable person, an event time's DST
 * note), go to `state`.
 */
type KeyStep = (row: SourceRow, values: Record<string, unknown>, state: RowState) => string | RejectedRow;

function keyStep(ctx: NormalizeContext, instantOf: (column: string) => ColumnInstant): KeyStep {
  const { source } = ctx;
  switch (source.records) {
    case 'person': {
      const identity = identityReader(source.identity.column, source.identity.as, ctx.normalization);
      const column = source.identity.column;
      return (row, values) => {
        const id = identity(values);
        return typeof id === 'string' ? id : reject(row, id.code, id.reason, column);
      };
    }
    case 'event': {
      const identity = identityReader(source.identity.column, source.identity.as, ctx.normalization);
      const column = source.identity.column;
      const event = eventStep(source, instantOf);
      return (row, values, state) => {
        const id = identity(values);
        if (typeof id !== 'string') return reject(row, id.code, id.reason, column);
        const built = event(values, id);
        if (!built.ok) return reject(row, built.code, built.reason, built.column);
        if (built.note) addNote(state, built.note);
        state.event = built.event;
        return built.event.id;
      };
    }
    case 'object': {
      if (!source.object) {
        const reason = `Source "${source.name}" has records: object but no object block.`;
        return (row) => reject(row, 'source_misconfigured', reason);
      }
      const { id_column: column, type_id: type } = source.object;
      const personColumn = source.identity.column;
      const person = identityReader(personColumn, source.identity.as, ctx.normalization);
      return (row, values, state) => {
        const raw = readColumn(values, column);
        const id = isBlank(raw) ? failure('identity_missing', 'is empty') : idOf(raw);
        if (typeof id !== 'string') return reject(row, id.code, `Object id column "${column}" ${id.reason}.`, column);
        // Customer.io addresses object types by their numeric type id (object_type_id), not by our name.
        const object: NonNullable<NormalizedRow['object']> = { type, id };
        // The related person is optional for objects: kept when valid, otherwise noted and left out.
        if (!isBlank(readColumn(values, personColumn))) {
          const p = person(values);
          if (typeof p === 'string') object.person = p;
          else addNote(state, `${p.reason} The object is synced without a related person.`);
        }
        state.object = object;
        return id;
      };
    }
    default: {
      const reason = `Source "${source.name}" has an unknown record type.`;
      return (row) => reject(row, 'source_misconfigured', reason);
    }
  }
}

/**
 * Compiles the per-source work once; the returned function normalises one row. It never throws on row
 * values: every problem becomes a `RejectedRow`. The context (source, registry, rules) is read here, once.
 */
export function createNormalizer(ctx: NormalizeContext): (row: SourceRow) => NormalizeResult {
  const { source } = ctx;
  const instants = new Map<string, ColumnInstant>();
  // One reader per column, shared by every use of the column (a field and the ordering, say).
  const instantOf = (column: string): ColumnInstant => {
    let r = instants.get(column);
    if (!r) instants.set(column, (r = columnInstant(column, source.timezone)));
    return r;
  };
  const key = keyStep(ctx, instantOf);
  const steps: FieldStep[] = Object.entries(source.fields).map(([field, column]) => {
    const def = ctx.fields.get(field);
    return { field, column, convert: def ? converterFor(def, ctx.normalization, () => instantOf(column)) : undefined, where: `Field ${field} (column "${column}")` };
  });
  const orderingColumn = source.ordering;
  const ordering = orderingColumn !== undefined ? instantOf(orderingColumn) : undefined;
  const state: RowState = { notes: undefined, event: undefined, object: undefined };

  return (row) => {
    const values = row.values !== null && typeof row.values === 'object' ? row.values : {};
    if (Object.hasOwn(values, ROW_ERROR_KEY)) {
      const why = values[ROW_ERROR_KEY];
      const code = values[ROW_CODE_KEY];
      return reject(row, typeof code === 'string' && code !== '' ? code : 'row_malformed', typeof why === 'string' && why !== '' ? why : 'The connector could not read this row.');
    }

    state.notes = undefined;
    state.event = undefined;
    state.object = undefined;
    const keyed = key(row, values, state);
    if (typeof keyed !== 'string') return keyed;

    const out: Record<string, SyncValue> = {};
    const blanks: string[] = [];
    let absent: string[] | undefined;
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i]!;
      if (step.convert === undefined) {
        return reject(row, 'field_unknown', `${step.where} is not declared in the field registry.`, step.column, step.field);
      }
      const raw = readColumn(values, step.column);
      if (isBlank(raw)) {
        // A key the row does not have says nothing about the field; only an explicit null or "" is a blank.
        if (raw === undefined) (absent ??= []).push(step.field);
        else blanks.push(step.field);
        continue;
      }
      const v = step.convert(raw, state);
      if (typeof v === 'object') return reject(row, v.code, `${step.where} ${v.reason}.`, step.column, step.field);
      out[step.field] = v;
    }

    let at: number | null = null;
    if (ordering !== undefined) {
      const raw = readColumn(values, orderingColumn!);
      if (!isBlank(raw)) {
        const r = ordering(raw);
        if (typeof r === 'number') at = r;
        else if (!r.ok) return reject(row, r.code, `Ordering column "${orderingColumn}" ${r.reason}.`, orderingColumn);
        else {
          if (r.note) addNote(state, r.note);
          at = r.ms;
        }
      }
    }

    const result: NormalizedRow = { ok: true, location: row.location, key: keyed, ordering: at, values: out, blanks };
    if (absent !== undefined) result.absent = absent;
    if (state.event) result.event = state.event;
    if (state.object) result.object = state.object;
    if (state.notes !== undefined) result.notes = state.notes;
    return result;
  };
}

/** What `createRecordHasher` gives for a row it handles: what `prepareRow` would give (without a previous payload). */
export interface HashedRecord {
  key: string;
  hash: string;
  ordering: number | null;
  /** Whether the row has blank fields (its lists below are then set, and its outcome may depend on what was sent before). */
  blanks: boolean;
  nullBlocked: string[];
  heldBack: string[];
  erased: string[];
  /** The row's notes (as NormalizedRow.notes), or undefined. */
  notes: string[] | undefined;
  /** Set only when asked for. */
  payload: Payload | undefined;
}

const NO_FIELDS: string[] = [];

/**
 * The per-row fast lane of the parallel read (issue 15): a person row read as a record of strings by
 * column position (a CSV record, the header's order), normalised, prepared without a previous payload
 * and hashed without the objects the general path makes per row (the row's value record, the normalised
 * row, the prepared row, the payload unless asked for). For a row whose key, values and ordering are all
 * accepted, `prepareRow(normalize(row))` is a pure function of the values, written out here with the same
 * identity reader, converters and timestamp readers, and the same null policy (a blank erases a clearable
 * field, is blocked otherwise and holds back its updated_at companion). A row that is rejected, or has
 * no attribute left, answers false and takes the general path, which decides it as always.
 *
 * Undefined when the source or header is one it does not handle (records other than person, a mapped
 * column missing from the header, a header with `__error` or `__proto__`, a field missing from the
 * registry): then every row takes the general path.
 */
export function createRecordHasher(
  ctx: NormalizeContext,
  header: readonly string[],
): ((fields: readonly string[], out: HashedRecord, payload: boolean) => boolean) | undefined {
  const { source } = ctx;
  if (source.records !== 'person' || header.includes(ROW_ERROR_KEY) || header.includes('__proto__')) return undefined;
  const idColumn = source.identity.column;
  const idIndex = header.indexOf(idColumn);
  if (idIndex < 0) return undefined;
  const identity = identityReader(idColumn, source.identity.as, ctx.normalization);
  // The identity reader reads a value record: one, reused, holding only the identity column.
  const idValues: Record<string, unknown> = {};
  const names: string[] = [];
  const indexes: number[] = [];
  const converters: Converter[] = [];
  const clearable: boolean[] = [];
  const instants = new Map<string, ColumnInstant>();
  const instantOf = (column: string): ColumnInstant => {
    let r = instants.get(column);
    if (!r) instants.set(column, (r = columnInstant(column, source.timezone)));
    return r;
  };
  for (const [field, column] of Object.entries(source.fields)) {
    const def = ctx.fields.get(field);
    const index = header.indexOf(column);
    if (!def || index < 0 || field === '__proto__') return undefined;
    names.push(field);
    indexes.push(index);
    converters.push(converterFor(def, ctx.normalization, () => instantOf(column)));
    clearable.push(source.null_policy === 'overwrite' || def.clearable === true);
  }
  // Per field: the position of its updated_at companion among the fields, or -1.
  const companions = names.map((f) => {
    const companion = ctx.fields.get(f)?.updated_at;
    return companion === undefined ? -1 : names.indexOf(companion);
  });
  const hashOf = attributesHasher(source.records, names);
  if (!hashOf) return undefined;
  const orderingColumn = source.ordering;
  const orderingIndex = orderingColumn === undefined ? -1 : header.indexOf(orderingColumn);
  if (orderingColumn !== undefined && orderingIndex < 0) return undefined;
  const ordering = orderingColumn === undefined ? undefined : instantOf(orderingColumn);
  const n = names.length;
  // Per field, the row's value: undefined when blank (or held back), null when a blank erases it.
  const values: (SyncValue | undefined)[] = new Array<SyncValue | undefined>(n);
  const blank: boolean[] = new Array<boolean>(n).fill(false);
  const state: NoteSink = { notes: undefined };

  return (fields, out, payload) => {
    state.notes = undefined;
    idValues[idColumn] = fields[idIndex];
    const key = identity(idValues);
    if (typeof key !== 'string') return false;
    let blanks = 0;
    for (let i = 0; i < n; i++) {
      const raw = fields[indexes[i]!];
      if (isBlank(raw)) {
        blank[i] = true;
        values[i] = undefined;
        blanks++;
        continue;
      }
      blank[i] = false;
      const v = converters[i]!(raw, state);
      if (typeof v === 'object') return false;
      values[i] = v;
    }
    let at: number | null = null;
    if (ordering !== undefined) {
      const raw = fields[orderingIndex];
      if (!isBlank(raw)) {
        const r = ordering(raw);
        if (typeof r === 'number') at = r;
        else if (!r.ok) return false;
        else {
          if (r.note) addNote(state, r.note);
          at = r.ms;
        }
      }
    }
    out.blanks = blanks > 0;
    if (blanks === 0) {
      out.nullBlocked = NO_FIELDS;
      out.heldBack = NO_FIELDS;
      out.erased = NO_FIELDS;
    } else {
      // prepareRow's null policy without a previous payload: nothing is kept, so a blocked blank and a
      // held-back companion are simply left out.
      const nullBlocked: string[] = [];
      const heldBack: string[] = [];
      const erased: string[] = [];
      for (let i = 0; i < n; i++) {
        if (!blank[i]) continue;
        if (clearable[i]) {
          values[i] = null;
          erased.push(names[i]!);
        } else nullBlocked.push(names[i]!);
      }
      for (let i = 0; i < n; i++) {
        if (!blank[i] || clearable[i]) continue;
        const c = companions[i]!;
        if (c < 0 || blank[c] || heldBack.includes(names[c]!)) continue;
        heldBack.push(names[c]!);
        values[c] = undefined;
      }
      out.nullBlocked = nullBlocked;
      out.heldBack = heldBack;
      out.erased = erased;
    }
    const hash = hashOf(values);
    if (hash === undefined) return false;
    out.key = key;
    out.hash = hash;
    out.ordering = at;
    out.notes = state.notes;
    if (payload) {
      // In prepareRow's order: the row's values in the fields' order, then the erased blanks.
      const attributes: Record<string, SyncValue> = {};
      for (let i = 0; i < n; i++) if (!blank[i] && values[i] !== undefined) attributes[names[i]!] = values[i]!;
      for (let i = 0; i < n; i++) if (blank[i] && clearable[i]) attributes[names[i]!] = null;
      out.payload = { records: source.records, attributes };
    } else out.payload = undefined;
    return true;
  };
}

type BuiltEvent =
  | { ok: true; event: NonNullable<NormalizedRow['event']>; note?: string | undefined }
  | { ok: false; code: string; reason: string; column?: string };

/**
 * The event and its dedupe id. The id is a ULID made only from the source name and the canonical
 * id-column values (JSON-encoded, so no two different tuples share a key): re-reading the same row always
 * yields the same id, so a re-run is ignored by Customer.io's dedupe. The event time is deliberately not
 * part of it (see `eventUlid`): correcting a timestamp, or the source's timezone, must not turn every
 * event already delivered into a new one. The timestamp feeds the id only when the spec lists its column
 * in `id_columns`, and then as the raw text the source holds, never as the instant read from it.
 */
function eventStep(source: SourceSpec, instantOf: (column: string) => ColumnInstant): (values: Record<string, unknown>, person: string) => BuiltEvent {
  if (!source.event) {
    const missing: BuiltEvent = { ok: false, code: 'source_misconfigured', reason: `Source "${source.name}" has records: event but no event block.` };
    return () => missing;
  }
  const { name, timestamp_column: tsColumn, id_columns: idColumns } = source.event;
  const instant = instantOf(tsColumn);
  // JSON.stringify([source.name, ...parts]), written as it goes.
  const keyStart = `[${JSON.stringify(source.name)}`;
  return (values, person) => {
    if (isBlank(readColumn(values, tsColumn))) {
      return { ok: false, code: 'timestamp_missing', reason: `Event timestamp column "${tsColumn}" is empty.`, column: tsColumn };
    }
    const read = instant(readColumn(values, tsColumn));
    const ts = typeof read === 'number' ? { ok: true as const, ms: read, note: undefined } : read;
    if (!ts.ok) return { ok: false, code: ts.code, reason: `Event timestamp column "${tsColumn}" ${ts.reason}.`, column: tsColumn };
    if (ts.ms < 0 || ts.ms > MAX_EVENT_TIME_MS) {
      return { ok: false, code: 'timestamp_invalid', reason: `Event timestamp column "${tsColumn}" is before 1970 or too far in the future for an event.`, column: tsColumn };
    }
    let key = keyStart;
    for (const column of idColumns) {
      const raw = readColumn(values, column);
      if (isBlank(raw)) return { ok: false, code: 'event_id_missing', reason: `Event id column "${column}" is empty, so the event cannot be deduplicated.`, column };
      // The id columns only feed a hash, so Customer.io's id length limit does not apply to them.
      const id = canonicalIdText(raw);
      if (!id.ok) {
        const code = id.code === 'identity_missing' ? 'event_id_missing' : 'event_id_invalid';
        return { ok: false, code, reason: `Event id column "${column}" ${id.reason}.`, column };
      }
      key += `,${JSON.stringify(id.value)}`;
    }
    const id = eventUlid(`${key}]`);
    return { ok: true, event: { name, id, timestamp: Math.floor(ts.ms / 1000), person }, note: ts.note };
  };
}
