/**
 * Payload checks shared by Track v1 and v2: the documented size limits (§2) and value types. Each check
 * returns issues in a neutral form; v1 renders them as `meta.errors` strings, v2 as `{reason, field, message}`.
 */
import { LIMITS, byteLength, valueBytes, valueWithinBytes, withinBytes } from './limits.ts';
import { isUlid } from './ulid.ts';

export interface Issue {
  /** Short machine reason, e.g. `too_long`, `required`, `invalid`. */
  reason: string;
  /** Dotted path of the offending field. */
  field: string;
  message: string;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `key` under `base` as issues name fields (a function, not a closure per call: see `Workspace.refuse`). */
function fieldPath(base: string, key: string): string {
  return base === '' ? key : `${base}.${key}`;
}

/** Person identifiers (`id` values, path identifiers): at most 150 bytes, not empty. */
export function checkPersonId(value: string, field: string): Issue[] {
  if (value === '') return [{ reason: 'required', field, message: `${field} must not be empty` }];
  if (!withinBytes(value, LIMITS.personIdBytes)) {
    return [{ reason: 'too_long', field, message: `${field} is ${byteLength(value)} bytes; the limit is ${LIMITS.personIdBytes} bytes` }];
  }
  return [];
}

/** Loose email shape: the identifier type is inferred from the value, and anything with `@` reads as an email. */
export function checkEmail(value: unknown, field: string): Issue[] {
  if (typeof value !== 'string') return [{ reason: 'invalid', field, message: `${field} must be a string` }];
  if (value === '') return [];
  // ⚠ The schema says `format: email`; we refuse values without an `@` (safest: a client must not send them).
  if (!/^[^@\s]+@[^@\s]+$/.test(value)) return [{ reason: 'invalid', field, message: `${field} is not a valid email address` }];
  return checkPersonId(value, field);
}

/**
 * Person attributes: names ≤ 150 bytes, values ≤ 1000 bytes, at most 300 per call. Values may be strings,
 * numbers, booleans, JSON objects/arrays, or null/"" (removal). `reserved` keys are checked by their own rules.
 */
export function checkAttributes(
  attrs: Record<string, unknown>,
  base: string,
  reserved: ReadonlySet<string> = new Set(),
): Issue[] {
  const issues: Issue[] = [];
  const keys = Object.keys(attrs).filter((k) => !reserved.has(k));
  if (keys.length > LIMITS.attributesPerPerson) {
    issues.push({
      reason: 'too_many',
      field: base,
      message: `${keys.length} attributes in one call; the limit is ${LIMITS.attributesPerPerson}`,
    });
  }
  // The field's name is only spelled out for an issue: most calls have none, and a sandbox answering a
  // million identifies built one per attribute.
  for (const key of keys) {
    if (key === '') issues.push({ reason: 'invalid', field: base, message: 'attribute names must not be empty' });
    if (!withinBytes(key, LIMITS.attributeNameBytes)) {
      issues.push({ reason: 'too_long', field: fieldPath(base, key), message: `attribute name is ${byteLength(key)} bytes; the limit is ${LIMITS.attributeNameBytes} bytes` });
    }
    const v = attrs[key];
    if (v === null || v === undefined) continue;
    if (typeof v === 'number' && !Number.isFinite(v)) {
      issues.push({ reason: 'invalid', field: fieldPath(base, key), message: `attribute value must be a finite number` });
      continue;
    }
    if (!valueWithinBytes(v, LIMITS.attributeValueBytes)) {
      issues.push({ reason: 'too_long', field: fieldPath(base, key), message: `attribute value is ${valueBytes(v)} bytes; the limit is ${LIMITS.attributeValueBytes} bytes` });
    }
  }
  return issues;
}

export function checkTimestamp(v: unknown, field: string): Issue[] {
  if (v === undefined) return [];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    return [{ reason: 'invalid', field, message: `${field} must be a Unix timestamp in seconds (a non-negative integer)` }];
  }
  return [];
}

/** Event name (required, ≤ 100 bytes after trimming), dedupe id (a ULID), timestamp, data (≤ 100 000 bytes). */
export function checkEvent(
  e: { name: unknown; id: unknown; timestamp: unknown; data: unknown },
  fields: { name: string; id: string; timestamp: string; data: string },
): Issue[] {
  const issues: Issue[] = [];
  if (typeof e.name !== 'string' || e.name.trim() === '') {
    issues.push({ reason: 'required', field: fields.name, message: `${fields.name} is required` });
  } else if (byteLength(e.name.trim()) > LIMITS.eventNameBytes) {
    issues.push({ reason: 'too_long', field: fields.name, message: `event name is ${byteLength(e.name.trim())} bytes; the limit is ${LIMITS.eventNameBytes} bytes` });
  }
  if (e.id !== undefined) {
    // ⚠ "A valid ULID used to deduplicate events". We refuse other strings: if live silently ignored them,
    // the client would lose dedupe without noticing, so the safest emulator makes that loud.
    if (typeof e.id !== 'string' || !isUlid(e.id)) {
      issues.push({ reason: 'invalid', field: fields.id, message: `${fields.id} must be a ULID (26 Crockford base32 characters)` });
    }
  }
  issues.push(...checkTimestamp(e.timestamp, fields.timestamp));
  if (e.data !== undefined && e.data !== null) {
    if (!isPlainObject(e.data)) issues.push({ reason: 'invalid', field: fields.data, message: `${fields.data} must be an object` });
    else {
      const size = byteLength(JSON.stringify(e.data));
      if (size > LIMITS.eventDataBytes) {
        issues.push({ reason: 'too_long', field: fields.data, message: `event data is ${size} bytes; the limit is ${LIMITS.eventDataBytes} bytes` });
      }
    }
  }
  return issues;
}

/** Object/relationship attributes: the person limits plus 100 KB in total. */
export function checkObjectAttributes(attrs: unknown, field: string): Issue[] {
  if (attrs === undefined || attrs === null) return [];
  if (!isPlainObject(attrs)) return [{ reason: 'invalid', field, message: `${field} must be an object` }];
  const issues = checkAttributes(attrs, field);
  const total = byteLength(JSON.stringify(attrs));
  if (total > LIMITS.objectTotalAttributeBytes) {
    issues.push({ reason: 'too_long', field, message: `attributes total ${total} bytes; the limit is ${LIMITS.objectTotalAttributeBytes} bytes` });
  }
  return issues;
}

export function checkObjectId(value: unknown, field: string): Issue[] {
  if (typeof value !== 'string' || value === '') return [{ reason: 'required', field, message: `${field} is required` }];
  if (byteLength(value) > LIMITS.objectIdBytes) {
    return [{ reason: 'too_long', field, message: `${field} is ${byteLength(value)} bytes; the limit is ${LIMITS.objectIdBytes} bytes` }];
  }
  return [];
}

/** `object_type_id` is "a string-formatted integer". */
export function checkObjectTypeId(value: unknown, field: string): Issue[] {
  if (typeof value !== 'string' || !/^\d+$/.test(value)) {
    return [{ reason: 'invalid', field, message: `${field} must be a string holding an integer, e.g. "1"` }];
  }
  return [];
}

/** Identify keys with their own meaning; they are not stored as custom attributes. */
export const IDENTIFY_RESERVED_KEYS: ReadonlySet<string> = new Set([
  'id',
  'email',
  'cio_id',
  '_timestamp',
  '_update',
  'anonymous_id',
  'cio_relationships',
  'cio_subscription_preferences',
]);

/** An identify payload's attributes (v1 body, v2 `attributes`), reserved keys included. */
export function checkIdentifyAttributes(attrs: Record<string, unknown>, base: string): Issue[] {
  const issues = checkAttributes(attrs, base, IDENTIFY_RESERVED_KEYS);
  const id = attrs.id;
  if (id !== undefined && id !== null && id !== '') {
    if (typeof id === 'string') issues.push(...checkPersonId(id, fieldPath(base, 'id')));
    else if (typeof id === 'number' && Number.isInteger(id)) issues.push(...checkPersonId(String(id), fieldPath(base, 'id')));
    else issues.push({ reason: 'invalid', field: fieldPath(base, 'id'), message: `${fieldPath(base, 'id')} must be a string` });
  }
  if (attrs.email !== undefined && attrs.email !== null) issues.push(...checkEmail(attrs.email, fieldPath(base, 'email')));
  const createdAt = attrs.created_at;
  if (createdAt !== undefined && createdAt !== null && createdAt !== '') {
    if (typeof createdAt !== 'number' || !Number.isInteger(createdAt) || createdAt < 0) {
      issues.push({ reason: 'invalid', field: fieldPath(base, 'created_at'), message: `${fieldPath(base, 'created_at')} must be a Unix timestamp in seconds (an integer)` });
    }
  }
  if (attrs._timestamp !== undefined) issues.push(...checkTimestamp(attrs._timestamp, fieldPath(base, '_timestamp')));
  if (attrs._update !== undefined && typeof attrs._update !== 'boolean') {
    issues.push({ reason: 'invalid', field: fieldPath(base, '_update'), message: `${fieldPath(base, '_update')} must be a boolean` });
  }
  if (attrs.anonymous_id !== undefined && attrs.anonymous_id !== null && typeof attrs.anonymous_id !== 'string') {
    issues.push({ reason: 'invalid', field: fieldPath(base, 'anonymous_id'), message: `${fieldPath(base, 'anonymous_id')} must be a string` });
  }
  const prefs = attrs.cio_subscription_preferences;
  if (prefs !== undefined && prefs !== null) {
    const topics = isPlainObject(prefs) ? prefs.topics : undefined;
    if (!isPlainObject(prefs) || (topics !== undefined && !isPlainObject(topics))) {
      issues.push({ reason: 'invalid', field: fieldPath(base, 'cio_subscription_preferences'), message: 'cio_subscription_preferences must be {"topics": {"topic_<id>": boolean}}' });
    } else if (isPlainObject(topics)) {
      for (const [k, v] of Object.entries(topics)) {
        if (!/^topic_\d+$/.test(k) || (typeof v !== 'boolean' && v !== null && v !== '')) {
          issues.push({ reason: 'invalid', field: fieldPath(base, `cio_subscription_preferences.topics.${k}`), message: 'topics are named topic_<id> and take booleans' });
        }
      }
    }
  }
  return issues;
}
