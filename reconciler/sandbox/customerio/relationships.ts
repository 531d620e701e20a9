/**
 * Parsing of relationship lists, which appear in four places with two shapes: person → objects (v1 identify
 * `cio_relationships.relationships`, v2 person `cio_relationships`) and object → people (v2 object
 * `cio_relationships`).
 */
import { refForIdType, type ObjectRef, type PersonRef } from './workspace.ts';
import { checkObjectAttributes, checkObjectId, checkObjectTypeId, checkPersonId, type Issue } from './validate.ts';

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; issues: Issue[] };

/** `{object_type_id, object_id}` (create and update) or `{cio_object_id}` (update only). */
export function parseObjectIdentifiers(v: unknown, field: string): Parsed<ObjectRef> {
  if (!isPlainObject(v)) return { ok: false, issues: [{ reason: 'required', field, message: `${field} is required` }] };
  if ('cio_object_id' in v && !('object_id' in v)) {
    if (typeof v.cio_object_id !== 'string' || v.cio_object_id === '') {
      return { ok: false, issues: [{ reason: 'invalid', field: `${field}.cio_object_id`, message: 'cio_object_id must be a non-empty string' }] };
    }
    return { ok: true, value: { cioObjectId: v.cio_object_id } };
  }
  const issues = [...checkObjectTypeId(v.object_type_id, `${field}.object_type_id`), ...checkObjectId(v.object_id, `${field}.object_id`)];
  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, value: { objectTypeId: v.object_type_id as string, objectId: v.object_id as string } };
}

/**
 * v2 person identifiers: exactly one of `id`, `email`, `phone`, `cio_id` ("You cannot pass multiple
 * identifiers"). `cio_id` carries no `cio_` prefix here. Phone is refused: it is not enabled as an identifier in
 * the sandbox workspace, and the spec allows it "only when phone is enabled".
 */
export function parseV2PersonIdentifiers(v: unknown, field: string): Parsed<PersonRef> {
  if (!isPlainObject(v)) return { ok: false, issues: [{ reason: 'required', field, message: `${field} is required` }] };
  const keys = Object.keys(v);
  if (keys.length !== 1) {
    return { ok: false, issues: [{ reason: 'invalid', field, message: `${field} must hold exactly one of id, email, cio_id; got ${keys.length}` }] };
  }
  const key = keys[0]!;
  const value = v[key];
  if (key === 'phone') {
    return { ok: false, issues: [{ reason: 'invalid', field: `${field}.phone`, message: 'phone is not enabled as an identifier in this workspace' }] };
  }
  if (key !== 'id' && key !== 'email' && key !== 'cio_id') {
    return { ok: false, issues: [{ reason: 'invalid', field: `${field}.${key}`, message: `unknown identifier "${key}" (expected id, email or cio_id)` }] };
  }
  if (typeof value !== 'string' || value === '') {
    return { ok: false, issues: [{ reason: 'invalid', field: `${field}.${key}`, message: `${field}.${key} must be a non-empty string` }] };
  }
  if (key === 'email' && !value.includes('@')) {
    return { ok: false, issues: [{ reason: 'invalid', field: `${field}.email`, message: 'email is not a valid email address' }] };
  }
  const idIssues = key === 'cio_id' ? [] : checkPersonId(value, `${field}.${key}`);
  if (idIssues.length > 0) return { ok: false, issues: idIssues };
  const ref = refForIdType(value, key);
  return ref ? { ok: true, value: ref } : { ok: false, issues: [{ reason: 'invalid', field: `${field}.${key}`, message: 'identifier does not match its type' }] };
}

/**
 * A relationship list, `[{identifiers, relationship_attributes?}]`: every item is checked, and its
 * identifiers read by `parseIds`, whichever side of the relationship they name.
 */
function parseRelationshipList<R>(v: unknown, field: string, parseIds: (ids: unknown, field: string) => Parsed<R>): Parsed<Array<{ ref: R; attributes?: Record<string, unknown> }>> {
  if (!Array.isArray(v)) return { ok: false, issues: [{ reason: 'invalid', field, message: `${field} must be an array` }] };
  const out: Array<{ ref: R; attributes?: Record<string, unknown> }> = [];
  const issues: Issue[] = [];
  v.forEach((item, i) => {
    const f = `${field}[${i}]`;
    if (!isPlainObject(item)) {
      issues.push({ reason: 'invalid', field: f, message: `${f} must be an object` });
      return;
    }
    const ids = parseIds(item.identifiers, `${f}.identifiers`);
    const attrIssues = checkObjectAttributes(item.relationship_attributes, `${f}.relationship_attributes`);
    if (!ids.ok) issues.push(...ids.issues);
    issues.push(...attrIssues);
    if (ids.ok && attrIssues.length === 0) {
      out.push({ ref: ids.value, ...(isPlainObject(item.relationship_attributes) ? { attributes: item.relationship_attributes } : {}) });
    }
  });
  return issues.length > 0 ? { ok: false, issues } : { ok: true, value: out };
}

/** Person → objects: `[{identifiers: ObjectIdentifiers, relationship_attributes?}]`. */
export function parseObjectRelationships(
  v: unknown,
  field: string,
): Parsed<Array<{ object: ObjectRef; attributes?: Record<string, unknown> }>> {
  const r = parseRelationshipList(v, field, parseObjectIdentifiers);
  return r.ok ? { ok: true, value: r.value.map(({ ref, ...rest }) => ({ object: ref, ...rest })) } : r;
}

/** Object → people: `[{identifiers: {id}|{email}|{cio_id}, relationship_attributes?}]`. */
export function parsePeopleRelationships(
  v: unknown,
  field: string,
): Parsed<Array<{ person: PersonRef; attributes?: Record<string, unknown> }>> {
  const r = parseRelationshipList(v, field, parseV2PersonIdentifiers);
  return r.ok ? { ok: true, value: r.value.map(({ ref, ...rest }) => ({ person: ref, ...rest })) } : r;
}
