/**
 * Field value converters: one per registry definition, chosen by format, then type, once per source;
 * each converts one present (non-blank) value or refuses it with a reason. Pure.
 *
 * Reasons follow "Field x (column y)" and never quote a value, except enum mismatches (enum values are
 * declared vocabulary). Timestamp rules (offsets, naive local times, DST gaps and overlaps, epoch units)
 * live in timezones.ts.
 */
import type { FieldDef } from '../spec/schema/index.ts';
import { emailReader, phoneReader } from './identity.ts';
import { failure, fitsBytes, integerToDecimal, type Failure } from './raw-values.ts';
import { instantReader, isDate, type InstantResult } from './timezones.ts';
import type { NormalizeContext } from './types.ts';

/** Customer.io's limit on one attribute value. */
export const MAX_VALUE_BYTES = 1000;

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
/** Where a converter leaves a note about the value it read (a DST overlap, say). */
export interface NoteSink {
  /** The row's notes, without duplicates, in the order first given (created on the first note). */
  notes: string[] | undefined;
}

/** Converts one present (non-blank) value of a field; failure reasons are phrased to follow "Field x (column y)". */
export type Converter = (raw: unknown, state: NoteSink) => Value | Failure;

export function addNote(state: NoteSink, note: string): void {
  if (state.notes === undefined) state.notes = [note];
  else if (!state.notes.includes(note)) state.notes.push(note);
}

/**
 * A column's timestamp reader: the instant, with its note (if any) naming the column. As from
 * `instantReader`, a plain number is an instant without a note.
 */
export type ColumnInstant = (raw: unknown) => number | InstantResult;

/**
 * One reader per column, remembering the last two strings it read: exports repeat timestamps (a batch's
 * load time, dates without a time), and a column that is both a field and the ordering is read twice per
 * row. Only strings are remembered: the same string always reads the same, a mutable Date need not.
 */
export function columnInstant(column: string, timezone: string | undefined): ColumnInstant {
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
export function converterFor(def: FieldDef, rules: NormalizeContext['normalization'], instant: () => ColumnInstant): Converter {
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
