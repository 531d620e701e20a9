/**
 * Customer.io App API audience filters (`POST /v1/customers`, `POST /v1/exports/customers`), REFERENCE.md §6.2:
 * leaves `{"segment":{"id":n}}` and `{"attribute":{"field","operator":"eq"|"exists","value"?}}`, groups
 * `{"and":[…]}`, `{"or":[…]}`, `{"not":{…one filter…}}`. Every filter object holds exactly one property.
 */

/** `op` is the filter's one property: a group (`and`, `or`, `not`) or a leaf (`segment`, `attribute`). */
export type AudienceFilter =
  | { op: 'and'; items: AudienceFilter[] }
  | { op: 'or'; items: AudienceFilter[] }
  | { op: 'not'; item: AudienceFilter }
  | { op: 'segment'; id: number }
  | { op: 'attribute'; field: string; operator: 'eq' | 'exists'; value?: string };

export type FilterParse = { ok: true; filter: AudienceFilter } | { ok: false; message: string };

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function parseAudienceFilter(input: unknown, path = 'filter'): FilterParse {
  if (!isPlainObject(input)) return { ok: false, message: `${path} must be an object` };
  const keys = Object.keys(input);
  if (keys.length !== 1) {
    // "The top-level object accepts one property; nest groups for complex filters." [S2]
    return { ok: false, message: `${path} must have exactly one property (and, or, not, segment, attribute); got ${keys.length}` };
  }
  const key = keys[0]!;
  const value = input[key];
  switch (key) {
    case 'and':
    case 'or': {
      if (!Array.isArray(value) || value.length === 0) return { ok: false, message: `${path}.${key} must be a non-empty array` };
      const items: AudienceFilter[] = [];
      for (let i = 0; i < value.length; i++) {
        const r = parseAudienceFilter(value[i], `${path}.${key}[${i}]`);
        if (!r.ok) return r;
        items.push(r.filter);
      }
      return { ok: true, filter: { op: key, items } };
    }
    case 'not': {
      // `not` takes one filter object, not an array [S2].
      if (Array.isArray(value)) return { ok: false, message: `${path}.not must be a single filter object, not an array` };
      const r = parseAudienceFilter(value, `${path}.not`);
      if (!r.ok) return r;
      return { ok: true, filter: { op: 'not', item: r.filter } };
    }
    case 'segment': {
      if (!isPlainObject(value)) return { ok: false, message: `${path}.segment must be an object with an integer id` };
      const id = value.id;
      if (typeof id !== 'number' || !Number.isInteger(id)) return { ok: false, message: `${path}.segment.id must be an integer` };
      return { ok: true, filter: { op: 'segment', id } };
    }
    case 'attribute': {
      if (!isPlainObject(value)) return { ok: false, message: `${path}.attribute must be an object` };
      const { field, operator } = value;
      if (typeof field !== 'string' || field === '') return { ok: false, message: `${path}.attribute.field is required` };
      if (operator !== 'eq' && operator !== 'exists') {
        return { ok: false, message: `${path}.attribute.operator must be "eq" or "exists"` };
      }
      if (operator === 'eq') {
        // `value` is required for eq [S2]. It is typed string; S3's own example sends `true`, so scalars are
        // accepted and compared in their string form, the way attributes come back from the App API.
        const v = value.value;
        if (v === undefined || v === null) return { ok: false, message: `${path}.attribute.value is required for operator "eq"` };
        if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
          return { ok: false, message: `${path}.attribute.value must be a string` };
        }
        return { ok: true, filter: { op: 'attribute', field, operator, value: String(v) } };
      }
      return { ok: true, filter: { op: 'attribute', field, operator } };
    }
    default:
      return { ok: false, message: `${path} has unknown property "${key}" (expected and, or, not, segment, attribute)` };
  }
}

/** What a filter needs to know about one person. */
export interface FilterSubject {
  /** Attribute values in the App API's string form, identifiers (id, email, cio_id) included. */
  attribute(field: string): string | undefined;
  inSegment(segmentId: number): boolean;
}

/**
 * ⚠ Comparison semantics beyond "has the value" are undocumented: `eq` here is an exact, case-sensitive match on
 * the attribute's string form, except `email`, which Customer.io treats case-insensitively as an identifier.
 */
export function matchesFilter(filter: AudienceFilter, subject: FilterSubject): boolean {
  switch (filter.op) {
    case 'and':
      return filter.items.every((f) => matchesFilter(f, subject));
    case 'or':
      return filter.items.some((f) => matchesFilter(f, subject));
    case 'not':
      return !matchesFilter(filter.item, subject);
    case 'segment':
      return subject.inSegment(filter.id);
    case 'attribute': {
      const actual = subject.attribute(filter.field);
      if (actual === undefined) return false;
      if (filter.operator === 'exists') return true;
      if (filter.field === 'email') return actual.toLowerCase() === filter.value!.toLowerCase();
      return actual === filter.value;
    }
  }
}
