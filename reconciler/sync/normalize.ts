/**
 * Row normalisation: one raw source row in, one typed, identity-resolved row (or a reject with a reason)
 * out. Pure: no I/O, no clock, never throws on row values, so one bad row can never stop a run.
 *
 * Rules, in the order they are applied (the first failure rejects the row):
 * 1. A row a connector could not parse carries `__error` and is rejected as `row_malformed` (or
 *    `read_truncated` when the connector could not read past it: the source was not read completely).
 * 2. The key. Person sources: the identity column, normalised as declared (`as: id|email|phone`).
 *    Event sources: the same person identity is required, plus the event timestamp and id columns; the
 *    key is the event's deterministic id. Object sources: the object id column; a person identity is
 *    optional there (kept when valid, noted when not).
 * 3. Mapped fields, converted by the field registry's type; blanks (null, missing, empty or whitespace)
 *    are listed in `blanks` for the engine's null policy rather than converted.
 * 4. The ordering column, as epoch milliseconds (missing → null, not a reject).
 *
 * Reasons name columns and fields, never the values: identifiers, emails and phone numbers are PII and
 * reasons end up in reports. Enum mismatches are the exception (enum values are declared vocabulary).
 * Timestamp rules (offsets, naive local times, DST gaps and overlaps, epoch units) live in timezones.ts.
 */
import { ROW_ERROR_KEY, ROW_TRUNCATED_KEY } from './connectors/rows.ts';
import { isSupportedCountry, parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import { deterministicUlid } from '../providers/customerio/client.ts';
import type { FieldDef, SourceSpec } from '../spec/schema/index.ts';
import { toInstant, type InstantResult } from './timezones.ts';
import type { NormalizeContext, NormalizeResult, NormalizedRow, RejectedRow, SourceRow, SyncValue } from './types.ts';

/** Customer.io's limit on a person id or object id value (Track API payload limits). */
export const MAX_ID_BYTES = 150;
/** Customer.io's limit on one attribute value. */
export const MAX_VALUE_BYTES = 1000;
/** RFC 5321's limits on an address and its local part; longer strings are not deliverable addresses. */
const MAX_EMAIL_LENGTH = 254;
const MAX_EMAIL_LOCAL_LENGTH = 64;
/** ULIDs carry a 48-bit millisecond time; an event id needs the event time inside it. */
const MAX_ULID_TIME_MS = 2 ** 48 - 1;

type Converted<T> = { ok: true; value: T } | { ok: false; code: string; reason: string };

const fail = (code: string, reason: string): { ok: false; code: string; reason: string } => ({ ok: false, code, reason });

/** A column's own value: `values` may come from JSON, so inherited names like `constructor` must not leak in. */
function readColumn(values: Record<string, unknown>, column: string): unknown {
  return Object.hasOwn(values, column) ? values[column] : undefined;
}

function isBlank(value: unknown): boolean {
  return value === null || value === undefined || (typeof value === 'string' && value.trim() === '');
}

function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

function isDate(value: unknown): value is Date {
  return Object.prototype.toString.call(value) === '[object Date]';
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
  if (r.ok && utf8Bytes(r.value) > MAX_ID_BYTES) return fail('identity_too_long', `is longer than Customer.io's ${MAX_ID_BYTES}-byte limit for ids`);
  return r;
}

// A sane address: one @, no whitespace or characters that need quoting, a dotted domain whose labels do
// not start or end with a hyphen or dot, and a top-level domain of at least two characters.
const EMAIL_LOCAL = /^[^\s@"(),:;<>[\]\\]+$/;
const EMAIL_DOMAIN_LABEL = /^[^\s@"(),:;<>[\]\\.]+$/;

function isSaneEmail(address: string): boolean {
  if (address.length > MAX_EMAIL_LENGTH) return false;
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

/** Email normalisation per the workspace (trim and lowercase both default to on), then a shape check. */
export function normalizeEmail(value: unknown, rules: NormalizeContext['normalization']): Converted<string> {
  if (typeof value !== 'string') return fail('invalid_email', 'is not text, so not an email address');
  let text = value;
  if (rules?.email?.trim ?? true) text = text.trim();
  if (rules?.email?.lowercase ?? true) text = text.toLowerCase();
  if (!isSaneEmail(text)) return fail('invalid_email', 'is not a valid email address');
  return { ok: true, value: text };
}

/**
 * E.164 via libphonenumber-js with full metadata (the "max" set checks the digits of each numbering plan,
 * not only the length). National numbers need the workspace's `normalization.phone.default_country`;
 * numbers written with a leading + parse without it.
 */
export function normalizePhone(value: unknown, rules: NormalizeContext['normalization']): Converted<string> {
  let text: string;
  if (typeof value === 'string') text = value.trim();
  else if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) text = String(value);
  else return fail('invalid_phone', 'is not text or a whole number, so not a phone number');
  const configured = rules?.phone?.default_country;
  const country = configured && isSupportedCountry(configured) ? (configured as CountryCode) : undefined;
  const parsed = country ? parsePhoneNumberFromString(text, country) : parsePhoneNumberFromString(text);
  if (!parsed || !parsed.isValid()) {
    const hint =
      configured && !country
        ? ` (the workspace default_country ${configured} is not a known country, so only numbers starting with + can be read)`
        : !configured
          ? ' (no normalization.phone.default_country is declared, so only numbers starting with + can be read)'
          : '';
    return fail('invalid_phone', `is not a valid phone number${hint}`);
  }
  return { ok: true, value: parsed.number };
}

function readIdentity(
  values: Record<string, unknown>,
  column: string,
  as: SourceSpec['identity']['as'],
  ctx: NormalizeContext,
): Converted<string> {
  const raw = readColumn(values, column);
  const where = `Identity column "${column}" (as ${as})`;
  if (isBlank(raw)) return fail('identity_missing', `${where} is empty.`);
  let result: Converted<string>;
  switch (as) {
    case 'id':
      result = canonicalId(raw);
      break;
    case 'email': {
      const r = normalizeEmail(raw, ctx.normalization);
      result = r.ok ? r : fail('identity_invalid_email', r.reason);
      break;
    }
    case 'phone': {
      const r = normalizePhone(raw, ctx.normalization);
      result = r.ok ? r : fail('identity_invalid_phone', r.reason);
      break;
    }
    default:
      return fail('source_misconfigured', `${where}: unknown identifier kind.`);
  }
  return result.ok ? result : fail(result.code, `${where} ${result.reason}.`);
}

const NUMERIC_TEXT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const BOOLEAN_TEXT: Record<string, boolean> = { true: true, false: false, '1': true, '0': false, yes: true, no: false };

function scalarText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? (Number.isInteger(value) ? integerToDecimal(value) : String(value)) : undefined;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (isDate(value)) return Number.isNaN(value.getTime()) ? undefined : value.toISOString();
  return undefined;
}

function withinValueLimit(text: string): Converted<string> {
  return utf8Bytes(text) > MAX_VALUE_BYTES
    ? fail('value_too_long', `is longer than Customer.io's ${MAX_VALUE_BYTES}-byte limit for attribute values`)
    : { ok: true, value: text };
}

/** Converts one present (non-blank) value by its registry definition. Reasons are phrased to follow "Field x (column y)". */
function convertField(
  raw: unknown,
  def: FieldDef,
  rules: NormalizeContext['normalization'],
  instant: () => InstantResult,
  notes: string[],
): Converted<SyncValue> {
  if (def.format === 'email') {
    const r = normalizeEmail(raw, rules);
    return r.ok ? withinValueLimit(r.value) : fail('value_invalid_email', r.reason);
  }
  if (def.format === 'phone') {
    const r = normalizePhone(raw, rules);
    return r.ok ? r : fail('value_invalid_phone', r.reason);
  }
  switch (def.type) {
    case 'string': {
      const text = scalarText(raw);
      return text === undefined ? fail('type_mismatch', 'expects text') : withinValueLimit(text);
    }
    case 'number': {
      let n: number | undefined;
      if (typeof raw === 'number') n = raw;
      else if (typeof raw === 'bigint') n = Number(raw);
      else if (typeof raw === 'string' && NUMERIC_TEXT.test(raw.trim())) n = Number(raw.trim());
      if (n === undefined || !Number.isFinite(n)) return fail('type_mismatch', 'expects a finite number');
      return { ok: true, value: n === 0 ? 0 : n };
    }
    case 'boolean': {
      if (typeof raw === 'boolean') return { ok: true, value: raw };
      const key = typeof raw === 'string' ? raw.trim().toLowerCase() : typeof raw === 'number' || typeof raw === 'bigint' ? raw.toString() : undefined;
      const b = key === undefined ? undefined : BOOLEAN_TEXT[key];
      return b === undefined ? fail('type_mismatch', 'expects a boolean (true/false, 1/0 or yes/no)') : { ok: true, value: b };
    }
    case 'enum': {
      const text = typeof raw === 'string' ? raw.trim() : typeof raw === 'number' || typeof raw === 'bigint' || typeof raw === 'boolean' ? scalarText(raw) : undefined;
      if (text === undefined) return fail('type_mismatch', 'expects one of the enum values as text');
      // A registry enum without declared values constrains nothing beyond being text.
      if (def.values && !def.values.includes(text)) {
        const shown = text.length > 60 ? `${text.slice(0, 60)}…` : text;
        return fail('type_mismatch', `has ${JSON.stringify(shown)}, which is not one of: ${def.values.join(', ')}`);
      }
      return withinValueLimit(text);
    }
    case 'timestamp': {
      const r = instant();
      if (!r.ok) return fail(r.code, r.reason);
      if (r.note) notes.push(r.note);
      return { ok: true, value: Math.floor(r.ms / 1000) };
    }
    default:
      return fail('type_mismatch', 'has a field type this version of tidemark does not know');
  }
}

function reject(row: SourceRow, code: string, reason: string, where: { column?: string | undefined; field?: string } = {}): RejectedRow {
  const out: RejectedRow = { ok: false, location: row.location, code, reason };
  if (where.column !== undefined) out.column = where.column;
  if (where.field !== undefined) out.field = where.field;
  return out;
}

/** Normalises one source row. Never throws on row values; every problem becomes a `RejectedRow`. */
export function normalize(row: SourceRow, ctx: NormalizeContext): NormalizeResult {
  const { source } = ctx;
  const values = row.values !== null && typeof row.values === 'object' ? row.values : {};
  if (Object.hasOwn(values, ROW_ERROR_KEY)) {
    const why = values[ROW_ERROR_KEY];
    // A truncated read gets its own code: the engine must not treat rows absent from it as gone.
    const code = values[ROW_TRUNCATED_KEY] === true ? 'read_truncated' : 'row_malformed';
    return reject(row, code, typeof why === 'string' && why !== '' ? why : 'The connector could not read this row.');
  }

  const notes: string[] = [];
  const instants = new Map<string, InstantResult>();
  const instantOf = (column: string): InstantResult => {
    let r = instants.get(column);
    if (!r) {
      r = toInstant(readColumn(values, column), source.timezone);
      if (r.ok && r.note) r = { ...r, note: `Column "${column}" ${r.note}.` };
      instants.set(column, r);
    }
    return r;
  };

  let key: string;
  let event: NormalizedRow['event'];
  let object: NormalizedRow['object'];

  switch (source.records) {
    case 'person':
    case 'event': {
      const id = readIdentity(values, source.identity.column, source.identity.as, ctx);
      if (!id.ok) return reject(row, id.code, id.reason, { column: source.identity.column });
      key = id.value;
      if (source.records === 'event') {
        const built = buildEvent(source, values, id.value, instantOf);
        if (!built.ok) return reject(row, built.code, built.reason, { column: built.column });
        if (built.note) notes.push(built.note);
        event = built.event;
        key = built.event.id;
      }
      break;
    }
    case 'object': {
      if (!source.object) return reject(row, 'source_misconfigured', `Source "${source.name}" has records: object but no object block.`);
      const column = source.object.id_column;
      const raw = readColumn(values, column);
      const id = isBlank(raw) ? fail('identity_missing', 'is empty') : canonicalId(raw);
      if (!id.ok) return reject(row, id.code, `Object id column "${column}" ${id.reason}.`, { column });
      // Customer.io addresses object types by their numeric type id (object_type_id), not by our name.
      object = { type: source.object.type_id, id: id.value };
      key = id.value;
      // The related person is optional for objects: kept when valid, otherwise noted and left out.
      if (!isBlank(readColumn(values, source.identity.column))) {
        const p = readIdentity(values, source.identity.column, source.identity.as, ctx);
        if (p.ok) object.person = p.value;
        else notes.push(`${p.reason} The object is synced without a related person.`);
      }
      break;
    }
    default:
      return reject(row, 'source_misconfigured', `Source "${source.name}" has an unknown record type.`);
  }

  const out: Record<string, SyncValue> = {};
  const blanks: string[] = [];
  for (const [field, column] of Object.entries(source.fields)) {
    const def = ctx.fields.get(field);
    if (!def) return reject(row, 'field_unknown', `Field ${field} (column "${column}") is not declared in the field registry.`, { field, column });
    const raw = readColumn(values, column);
    if (isBlank(raw)) {
      blanks.push(field);
      continue;
    }
    const converted = convertField(raw, def, ctx.normalization, () => instantOf(column), notes);
    if (!converted.ok) return reject(row, converted.code, `Field ${field} (column "${column}") ${converted.reason}.`, { field, column });
    out[field] = converted.value;
  }

  let ordering: number | null = null;
  if (source.ordering !== undefined && !isBlank(readColumn(values, source.ordering))) {
    const r = instantOf(source.ordering);
    if (!r.ok) return reject(row, r.code, `Ordering column "${source.ordering}" ${r.reason}.`, { column: source.ordering });
    if (r.note) notes.push(r.note);
    ordering = r.ms;
  }

  const result: NormalizedRow = { ok: true, location: row.location, key, ordering, values: out, blanks };
  if (event) result.event = event;
  if (object) result.object = object;
  const unique = [...new Set(notes)];
  if (unique.length > 0) result.notes = unique;
  return result;
}

type BuiltEvent =
  | { ok: true; event: NonNullable<NormalizedRow['event']>; note?: string }
  | { ok: false; code: string; reason: string; column?: string };

/**
 * The event and its dedupe id. The id is a ULID whose random part is a hash of the source name and the
 * canonical id-column values (JSON-encoded, so no two different tuples share a key) and whose time part
 * is the event time: re-reading the same row always yields the same id, so a re-run is ignored by
 * Customer.io's dedupe. A row whose timestamp was later corrected yields a new id: the occurrence moved.
 */
function buildEvent(
  source: SourceSpec,
  values: Record<string, unknown>,
  person: string,
  instantOf: (column: string) => InstantResult,
): BuiltEvent {
  if (!source.event) return { ok: false, code: 'source_misconfigured', reason: `Source "${source.name}" has records: event but no event block.` };
  const tsColumn = source.event.timestamp_column;
  if (isBlank(readColumn(values, tsColumn))) {
    return { ok: false, code: 'timestamp_missing', reason: `Event timestamp column "${tsColumn}" is empty.`, column: tsColumn };
  }
  const ts = instantOf(tsColumn);
  if (!ts.ok) return { ok: false, code: ts.code, reason: `Event timestamp column "${tsColumn}" ${ts.reason}.`, column: tsColumn };
  if (ts.ms < 0 || ts.ms > MAX_ULID_TIME_MS) {
    return { ok: false, code: 'timestamp_invalid', reason: `Event timestamp column "${tsColumn}" is before 1970 or too far in the future for an event.`, column: tsColumn };
  }
  const parts: string[] = [];
  for (const column of source.event.id_columns) {
    const raw = readColumn(values, column);
    if (isBlank(raw)) return { ok: false, code: 'event_id_missing', reason: `Event id column "${column}" is empty, so the event cannot be deduplicated.`, column };
    // The id columns only feed a hash, so Customer.io's id length limit does not apply to them.
    const id = canonicalIdText(raw);
    if (!id.ok) {
      const code = id.code === 'identity_missing' ? 'event_id_missing' : 'event_id_invalid';
      return { ok: false, code, reason: `Event id column "${column}" ${id.reason}.`, column };
    }
    parts.push(id.value);
  }
  const id = deterministicUlid(JSON.stringify([source.name, ...parts]), ts.ms);
  const built: BuiltEvent & { ok: true } = { ok: true, event: { name: source.event.name, id, timestamp: Math.floor(ts.ms / 1000), person } };
  if (ts.note) built.note = ts.note;
  return built;
}
