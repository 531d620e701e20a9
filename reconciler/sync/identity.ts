/**
 * Identities: person ids, emails and phone numbers (and object ids) as Customer.io keys them, normalised
 * the way the workspace declares. Pure.
 *
 * Reasons name the column, never the value: identifiers, emails and phone numbers are PII and reasons
 * end up in reports. Each reader works out once what does not depend on the value (the workspace's
 * rules, the default country, the hint given when a number does not parse).
 */
import { createRequire } from 'node:module';
import type { CountryCode } from 'libphonenumber-js/max';
import type { SourceSpec } from '../spec/schema/index.ts';
import { fail, failure, fitsBytes, integerToDecimal, isBlank, readColumn, type Converted, type Failure } from './raw-values.ts';
import type { NormalizeContext } from './types.ts';

type PhoneLibrary = typeof import('libphonenumber-js/max');
let phoneLibrary: PhoneLibrary | undefined;

/**
 * libphonenumber-js with its full metadata, loaded when a phone reader is first made: importing it took
 * 135-150 ms of every command that reads a source (91 modules through the TypeScript loader), phone
 * column or not. Required rather than imported so the readers stay synchronous.
 */
function phones(): PhoneLibrary {
  return (phoneLibrary ??= createRequire(import.meta.url)('libphonenumber-js/max') as PhoneLibrary);
}

/** Customer.io's limit on a person id or object id value (Track API payload limits). */
export const MAX_ID_BYTES = 150;
/** RFC 5321's limits on an address and its local part; longer strings are not deliverable addresses. */
const MAX_EMAIL_LENGTH = 254;
const MAX_EMAIL_LOCAL_LENGTH = 64;

/**
 * Canonical id text: strings trimmed; integers as decimal digits (`1.0` is the number 1, so "1").
 * Numbers beyond 2^53 are refused: the driver or JSON parser has already rounded them, so the id would
 * silently point at someone else.
 */
export function canonicalIdText(value: unknown): Converted<string> {
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
function canonicalId(value: unknown): Converted<string> {
  const r = canonicalIdText(value);
  if (r.ok && !fitsBytes(r.value, MAX_ID_BYTES)) return fail('identity_too_long', `is longer than Customer.io's ${MAX_ID_BYTES}-byte limit for ids`);
  return r;
}

/** canonicalId for a value known not to be blank, without a result object for the usual string id. */
export function idOf(raw: unknown): string | Failure {
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
export function emailReader(rules: NormalizeContext['normalization']): (value: unknown) => string | Failure {
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

/**
 * The workspace's phone rules, read once: the default country and the hint given when a number does
 * not parse.
 */
export function phoneReader(rules: NormalizeContext['normalization']): (value: unknown) => string | Failure {
  const { isSupportedCountry, parsePhoneNumberFromString } = phones();
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
 * The reader of a person identity column, declared `as` id, email or phone: the normalised identity,
 * or a failure whose reason is a whole sentence naming the column.
 */
export function identityReader(
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
