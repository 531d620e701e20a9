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
 * Timestamp rules (offsets, naive local times, DST gaps and overlaps, epoch units) live in timezones.ts.
 *
 * Every row of a source goes through the same steps, so `createNormalizer` works out once per context
 * what does not depend on the row (the field list with each field's converter, the identity reader, one
 * timestamp reader per column, the reason texts), and per row only reads and converts values.
 * `normalize(row, ctx)` keeps one such normaliser per context object: a context is read when it is
 * first used and must not be changed afterwards. Converters return the value, or a `Failure` (allocated
 * only on failure) rather than a result object per value.
 */
import { createHash } from 'node:crypto';
import { ROW_CODE_KEY, ROW_ERROR_KEY } from './connectors/rows.ts';
import { isSupportedCountry, parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import { deterministicUlid } from '../core/ulid.ts';
import type { FieldDef, SourceSpec } from '../spec/schema/index.ts';
import { instantReader, isDate, type InstantResult } from './timezones.ts';
import type { NormalizeContext, NormalizeResult, NormalizedRow, RejectedRow, SourceRow, SyncValue } from './types.ts';

/** Customer.io's limit on a person id or object id value (Track API payload limits). */
export const MAX_ID_BYTES = 150;
/** Customer.io's limit on one attribute value. */
export const MAX_VALUE_BYTES = 1000;
/** RFC 5321's limits on an address and its local part; longer strings are not deliverable addresses. */
const MAX_EMAIL_LENGTH = 254;
const MAX_EMAIL_LOCAL_LENGTH = 64;
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

type Converted<T> = { ok: true; value: T } | { ok: false; code: string; reason: string };

const fail = (code: string, reason: string): { ok: false; code: string; reason: string } => ({ ok: false, code, reason });

/** Why a value was refused, as a converter returns it (values themselves are never objects). */
interface Failure {
  code: string;
  reason: string;
}

const failure = (code: string, reason: string): Failure => ({ code, reason });

/** A column's own value: `values` may come from JSON, so inherited names like `constructor` must not leak in. */
function readColumn(values: Record<string, unknown>, column: string): unknown {
  return Object.hasOwn(values, column) ? values[column] : undefined;
}

function isBlank(value: unknown): boolean {
  if (typeof value === 'string') {
    if (value.length === 0) return true;
    // Printable ASCII other than the space is never trimmed, so most values need no trim() to tell.
    const c = value.charCodeAt(0);
    return c > 32 && c < 127 ? false : value.trim() === '';
  }
  return value === null || value === undefined;
}

function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/**
 * Whether `text` fits in `limit` UTF-8 bytes. A UTF-16 code unit takes 1 to 3 bytes (a surrogate pair,
 * two units, takes 4), so only lengths between limit/3 and limit need counting.
 */
function fitsBytes(text: string, limit: number): boolean {
  const n = text.length;
  return n * 3 <= limit || (n <= limit && utf8Bytes(text) <= limit);
}


/**
 * An integer as plain decimal digits. `String(1e21)` is `1e+21`; BigInt prints every digit of the
 * double's exact value instead.
 */
function integerToDecimal(n: number): string {
  return Math.abs(n) < 1e21 ? String(n === 0 ? 0 : n) : BigInt(n).toString();
}

/**
 * Canonical id text: strings trimmed; integers as decimal digits (`1.0` is the number 1, so "1").
 * Numbers beyond 2^53 are refused: the driver or JSON parser has already rounded them, so the id would
 * silently point at someone else.
 */
function canonicalIdText(value: unknown): Converted<string> {
  let text: string;
  if (typeof value === 'string') text = value.trim();
  else if (typeof value === 'bigint') text = value.toString();
  else if (typeof value === 'number') {
    if (!Number.isFinite(value)) return fail('identity_invalid_id', 'is not a finite number');
    if (!Number.isInteger(value)) return fail('identity_invalid_id', 'is a number with a fractional part, not an id');
    if (!Number.isSafeInteger(value)) {
      return fail('identity_invalid_id', 'is a number larger than 2^53 that has already lost precision; export it as text');
    }
    text = integerToDecimal(value);
  } else return fail('identity_invalid_id', 'is not a string or an integer');
  if (text === '') return fail('identity_missing', 'is empty');
  return { ok: true, value: text };
}

/** A person or object id: canonical text within Customer.io's byte limit for ids. */
export function canonicalId(value: unknown): Converted<string> {
  const r = canonicalIdText(value);
  if (r.ok && !fitsBytes(r.value, MAX_ID_BYTES)) return fail('identity_too_long', `is longer than Customer.io's ${MAX_ID_BYTES}-byte limit for ids`);
  return r;
}

/** canonicalId for a value known not to be blank, without a result object for the usual string id. */
function idOf(raw: unknown): string | Failure {
  if (typeof raw === 'string') {
    const text = raw.trim();
    if (fitsBytes(text, MAX_ID_BYTES)) return text;
  }
  const r = canonicalId(raw);
  return r.ok ? r.value : failure(r.code, r.reason);
}

// A sane address: one @, no whitespace or characters that need quoting, a dotted domain whose labels do
// not start or end with a hyphen or dot, and a top-level domain of at least two characters.
const EMAIL_LOCAL = /^[^\s@"(),:;<>[\]\\]+$/;
const EMAIL_DOMAIN_LABEL = /^[^\s@"(),:;<>[\]\\.]+$/;
/**
 * The everyday address in one test: ASCII letters, digits and `_%+-` in dot-separated local parts;
 * domain labels of letters, digits and inner hyphens; a top-level domain of two or more. Every address
 * it matches (within the length limits, checked apart) passes isSaneEmail, so a match settles it and
 * only the rest needs the full check.
 */
const PLAIN_EMAIL = /^[a-z0-9_%+-]+(?:\.[a-z0-9_%+-]+)*@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9][a-z0-9-]*[a-z0-9]$/i;

function isSaneEmail(address: string): boolean {
  if (address.length > MAX_EMAIL_LENGTH) return false;
  // The length check comes first: it also bounds the regex's backtracking on long non-matches.
  if (PLAIN_EMAIL.test(address) && address.indexOf('@') <= MAX_EMAIL_LOCAL_LENGTH) return true;
  const at = address.indexOf('@');
  if (at <= 0 || at !== address.lastIndexOf('@')) return false;
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  if (local.length > MAX_EMAIL_LOCAL_LENGTH || !EMAIL_LOCAL.test(local)) return false;
  if (local.startsWith('.') || local.endsWith('.') || local.includes('..')) return false;
  const labels = domain.split('.');
  if (labels.length < 2) return false;
  const tld = labels[labels.length - 1]!;
  if (tld.length < 2) return false;
  return labels.every((l) => EMAIL_DOMAIN_LABEL.test(l) && !l.startsWith('-') && !l.endsWith('-'));
}

const NOT_EMAIL_TEXT = failure('invalid_email', 'is not text, so not an email address');
const NOT_EMAIL = failure('invalid_email', 'is not a valid email address');

/** The workspace's email rules, read once. */
function emailReader(rules: NormalizeContext['normalization']): (value: unknown) => string | Failure {
  const trim = rules?.email?.trim ?? true;
  const lowercase = rules?.email?.lowercase ?? true;
  return (value) => {
    if (typeof value !== 'string') return NOT_EMAIL_TEXT;
    let text = value;
    if (trim) text = text.trim();
    if (lowercase) text = text.toLowerCase();
    return isSaneEmail(text) ? text : NOT_EMAIL;
  };
}

/** Email normalisation per the workspace (trim and lowercase both default to on), then a shape check. */
export function normalizeEmail(value: unknown, rules: NormalizeContext['normalization']): Converted<string> {
  const r = emailReader(rules)(value);
  return typeof r === 'string' ? { ok: true, value: r } : fail(r.code, r.reason);
}

/**
 * The workspace's phone rules, read once: the default country and the hint given when a number does
 * not parse.
 */
function phoneReader(rules: NormalizeContext['normalization']): (value: unknown) => string | Failure {
  const configured = rules?.phone?.default_country;
  const country = configured && isSupportedCountry(configured) ? (configured as CountryCode) : undefined;
  const hint =
    configured && !country
      ? ` (the workspace default_country ${configured} is not a known country, so only numbers starting with + can be read)`
      : !configured
        ? ' (no normalization.phone.default_country is declared, so only numbers starting with + can be read)'
        : '';
  const notText = failure('invalid_phone', 'is not text or a whole number, so not a phone number');
  const notValid = failure('invalid_phone', `is not a valid phone number${hint}`);
  return (value) => {
    let text: string;
    if (typeof value === 'string') text = value.trim();
    else if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) text = String(value);
    else return notText;
    const parsed = country ? parsePhoneNumberFromString(text, country) : parsePhoneNumberFromString(text);
    return parsed && parsed.isValid() ? parsed.number : notValid;
  };
}

/**
 * E.164 via libphonenumber-js with full metadata (the "max" set checks the digits of each numbering plan,
 * not only the length). National numbers need the workspace's `normalization.phone.default_country`;
 * numbers written with a leading + parse without it.
 */
export function normalizePhone(value: unknown, rules: NormalizeContext['normalization']): Converted<string> {
  const r = phoneReader(rules)(value);
  return typeof r === 'string' ? { ok: true, value: r } : fail(r.code, r.reason);
}

/**
 * The reader of a person identity column, declared `as` id, email or phone: the normalised identity,
 * or a failure whose reason is a whole sentence naming the column.
 */
function identityReader(
  column: string,
  as: SourceSpec['identity']['as'],
  rules: NormalizeContext['normalization'],
): (values: Record<string, unknown>) => string | Failure {
  const where = `Identity column "${column}" (as ${as})`;
  const missing = failure('identity_missing', `${where} is empty.`);
  const sentence = (code: string, reason: string): Failure => failure(code, `${where} ${reason}.`);
  switch (as) {
    case 'id':
      return (values) => {
        const raw = readColumn(values, column);
        if (isBlank(raw)) return missing;
        const r = idOf(raw);
        return typeof r === 'string' ? r : sentence(r.code, r.reason);
      };
    case 'email': {
      const email = emailReader(rules);
      return (values) => {
        const raw = readColumn(values, column);
        if (isBlank(raw)) return missing;
        const r = email(raw);
        return typeof r === 'string' ? r : sentence('identity_invalid_email', r.reason);
      };
    }
    case 'phone': {
      const phone = phoneReader(rules);
      return (values) => {
        const raw = readColumn(values, column);
        if (isBlank(raw)) return missing;
        const r = phone(raw);
        return typeof r === 'string' ? r : sentence('identity_invalid_phone', r.reason);
      };
    }
    default: {
      const unknown = failure('source_misconfigured', `${where}: unknown identifier kind.`);
      return (values) => (isBlank(readColumn(values, column)) ? missing : unknown);
    }
  }
}

const NUMERIC_TEXT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * Whether `text` is exactly NUMERIC_TEXT's syntax with nothing around it, scanned by hand. False sends
 * the value through trim() and the regex, which decide everything this does not accept.
 */
function isPlainNumber(text: string): boolean {
  const n = text.length;
  let i = 0;
  let c = text.charCodeAt(0);
  if (c === 43 || c === 45) c = text.charCodeAt(++i);
  let digits = 0;
  while (c >= 48 && c <= 57) {
    digits++;
    c = text.charCodeAt(++i);
  }
  if (c === 46) {
    c = text.charCodeAt(++i);
    while (c >= 48 && c <= 57) {
      digits++;
      c = text.charCodeAt(++i);
    }
  }
  if (digits === 0) return false;
  if (c === 101 || c === 69) {
    c = text.charCodeAt(++i);
    if (c === 43 || c === 45) c = text.charCodeAt(++i);
    let exponent = 0;
    while (c >= 48 && c <= 57) {
      exponent++;
      c = text.charCodeAt(++i);
    }
    if (exponent === 0) return false;
  }
  return i === n;
}

/** true/false, 1/0, yes/no as written (after trimming and lowercasing); undefined for anything else. */
function booleanWord(key: string): boolean | undefined {
  switch (key) {
    case 'true':
    case '1':
    case 'yes':
      return true;
    case 'false':
    case '0':
    case 'no':
      return false;
    default:
      return undefined;
  }
}

function scalarText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? (Number.isInteger(value) ? integerToDecimal(value) : String(value)) : undefined;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (isDate(value)) {
    const ms = Date.prototype.getTime.call(value);
    return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
  }
  return undefined;
}

const TOO_LONG = failure('value_too_long', `is longer than Customer.io's ${MAX_VALUE_BYTES}-byte limit for attribute values`);

function withinValueLimit(text: string): string | Failure {
  return fitsBytes(text, MAX_VALUE_BYTES) ? text : TOO_LONG;
}

const EXPECTS_TEXT = failure('type_mismatch', 'expects text');
const EXPECTS_NUMBER = failure('type_mismatch', 'expects a finite number');
const EXPECTS_BOOLEAN = failure('type_mismatch', 'expects a boolean (true/false, 1/0 or yes/no)');
const EXPECTS_ENUM_TEXT = failure('type_mismatch', 'expects one of the enum values as text');
const UNKNOWN_TYPE = failure('type_mismatch', 'has a field type this version of tidemark does not know');

type Value = string | number | boolean;
/** Converts one present (non-blank) value of a field; failure reasons are phrased to follow "Field x (column y)". */
type Converter = (raw: unknown, state: RowState) => Value | Failure;

/**
 * What the steps of one row hand on besides their value, in a record each normaliser reuses from row to
 * row (normalising is synchronous and calls nothing that could normalise another row meanwhile).
 */
interface RowState {
  /** The row's notes, without duplicates, in the order first given (created on the first note). */
  notes: string[] | undefined;
  event: NormalizedRow['event'];
  object: NormalizedRow['object'];
}

function addNote(state: RowState, note: string): void {
  if (state.notes === undefined) state.notes = [note];
  else if (!state.notes.includes(note)) state.notes.push(note);
}

/**
 * A column's timestamp reader: the instant, with its note (if any) naming the column. As from
 * `instantReader`, a plain number is an instant without a note.
 */
type ColumnInstant = (raw: unknown) => number | InstantResult;

/**
 * One reader per column, remembering the last two strings it read: exports repeat timestamps (a batch's
 * load time, dates without a time), and a column that is both a field and the ordering is read twice per
 * row. Only strings are remembered: the same string always reads the same, a mutable Date need not.
 */
function columnInstant(column: string, timezone: string | undefined): ColumnInstant {
  const read = instantReader(timezone);
  let lastText: string | undefined;
  let lastResult: number | InstantResult = 0;
  let priorText: string | undefined;
  let priorResult: number | InstantResult = 0;
  return (raw) => {
    if (typeof raw === 'string') {
      if (raw === lastText) return lastResult;
      if (raw === priorText) return priorResult;
    }
    let r = read(raw);
    if (typeof r === 'object' && r.ok && r.note) r = { ...r, note: `Column "${column}" ${r.note}.` };
    if (typeof raw === 'string') {
      priorText = lastText;
      priorResult = lastResult;
      lastText = raw;
      lastResult = r;
    }
    return r;
  };
}

/** The converter of a registry definition: chosen by format, then type, once per source. */
function converterFor(def: FieldDef, rules: NormalizeContext['normalization'], instant: () => ColumnInstant): Converter {
  if (def.format === 'email') {
    const email = emailReader(rules);
    return (raw) => {
      const r = email(raw);
      return typeof r === 'string' ? withinValueLimit(r) : failure('value_invalid_email', r.reason);
    };
  }
  if (def.format === 'phone') {
    const phone = phoneReader(rules);
    return (raw) => {
      const r = phone(raw);
      return typeof r === 'string' ? r : failure('value_invalid_phone', r.reason);
    };
  }
  switch (def.type) {
    case 'string':
      return (raw) => {
        const text = scalarText(raw);
        return text === undefined ? EXPECTS_TEXT : withinValueLimit(text);
      };
    case 'number':
      return (raw) => {
        let n: number | undefined;
        if (typeof raw === 'number') n = raw;
        else if (typeof raw === 'string') {
          if (isPlainNumber(raw)) n = Number(raw);
          else {
            const text = raw.trim();
            if (NUMERIC_TEXT.test(text)) n = Number(text);
          }
        } else if (typeof raw === 'bigint') n = Number(raw);
        if (n === undefined || !Number.isFinite(n)) return EXPECTS_NUMBER;
        return n === 0 ? 0 : n;
      };
    case 'boolean':
      return (raw) => {
        if (typeof raw === 'boolean') return raw;
        let b: boolean | undefined;
        if (typeof raw === 'string') b = booleanWord(raw) ?? booleanWord(raw.trim().toLowerCase());
        else if (typeof raw === 'number' || typeof raw === 'bigint') b = booleanWord(raw.toString());
        return b === undefined ? EXPECTS_BOOLEAN : b;
      };
    case 'enum': {
      const allowed = def.values;
      const listed = allowed?.join(', ');
      return (raw) => {
        const text = typeof raw === 'string' ? raw.trim() : typeof raw === 'number' || typeof raw === 'bigint' || typeof raw === 'boolean' ? scalarText(raw) : undefined;
        if (text === undefined) return EXPECTS_ENUM_TEXT;
        // A registry enum without declared values constrains nothing beyond being text.
        if (allowed && !allowed.includes(text)) {
          const shown = text.length > 60 ? `${text.slice(0, 60)}…` : text;
          return failure('type_mismatch', `has ${JSON.stringify(shown)}, which is not one of: ${listed}`);
        }
        return withinValueLimit(text);
      };
    }
    case 'timestamp': {
      const read = instant();
      return (raw, state) => {
        const r = read(raw);
        if (typeof r === 'number') return Math.floor(r / 1000);
        if (!r.ok) return failure(r.code, r.reason);
        if (r.note) addNote(state, r.note);
        return Math.floor(r.ms / 1000);
      };
    }
    default:
      return () => UNKNOWN_TYPE;
  }
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
 * Compiles the per-source work of `normalize` once; the returned function normalises one row with the
 * same result as `normalize(row, ctx)`. The context (source, registry, rules) is read here, once.
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

const compiled = new WeakMap<NormalizeContext, (row: SourceRow) => NormalizeResult>();
// The context of the previous call: rows come a source at a time, so this spares the WeakMap lookup.
let lastContext: NormalizeContext | undefined;
let lastNormalizer: ((row: SourceRow) => NormalizeResult) | undefined;

/**
 * Normalises one source row. Never throws on row values; every problem becomes a `RejectedRow`. The
 * context's compiled normaliser is kept for its next rows (see the module comment).
 */
export function normalize(row: SourceRow, ctx: NormalizeContext): NormalizeResult {
  if (ctx !== lastContext || lastNormalizer === undefined) {
    let normalizer = compiled.get(ctx);
    if (!normalizer) compiled.set(ctx, (normalizer = createNormalizer(ctx)));
    lastContext = ctx;
    lastNormalizer = normalizer;
  }
  return lastNormalizer(row);
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
