/**
 * Track API v1 routes (REFERENCE.md §4): identify, delete, events, anonymous events, devices, suppress,
 * merge, manual segment membership, region. Validation failures answer 400 `{"meta":{"errors":[…]}}`; writes
 * answer 200 `{}`, including the ones Customer.io accepts and then fails asynchronously (see Workspace).
 */
import type { Route } from '../common/router.ts';
import type { SandboxRequest, SandboxResponse } from '../common/types.ts';
import { LIMITS } from './limits.ts';
import { isPlainObject, ok, parseIntStrict, readJson, trackOk, v1Error } from './http.ts';
import { parseObjectRelationships } from './relationships.ts';
import { checkEmail, checkEvent, checkIdentifyAttributes, checkPersonId, type Issue } from './validate.ts';
import { parsePathIdentifier, type IdentifierType, type PersonRef, type Workspace } from './workspace.ts';

export interface TrackContext {
  ws: Workspace;
  region: 'us' | 'eu';
  environmentId: number;
}

export type TrackHandler = (ctx: TrackContext, req: SandboxRequest, params: Record<string, string>) => SandboxResponse;

const messages = (issues: Issue[]): string[] => issues.map((i) => i.message);

function pathRef(raw: string): { ok: true; ref: PersonRef } | { ok: false; res: SandboxResponse } {
  const ref = parsePathIdentifier(raw);
  const issues =
    ref.type === 'email' ? checkEmail(ref.value, 'identifier') : ref.type === 'id' ? checkPersonId(ref.value, 'identifier') : ref.value === '' ? [{ reason: 'required', field: 'identifier', message: 'cio_ identifier is empty' }] : [];
  if (issues.length > 0) return { ok: false, res: v1Error(400, messages(issues)) };
  return { ok: true, ref };
}

/** Body as a JSON object; `allowEmpty` treats no body as `{}`. */
function objectBody(req: SandboxRequest, allowEmpty: boolean): { ok: true; body: Record<string, unknown> } | { ok: false; res: SandboxResponse } {
  const parsed = readJson(req);
  if (!parsed.ok) return { ok: false, res: v1Error(400, [parsed.message]) };
  if (parsed.value === undefined && allowEmpty) return { ok: true, body: {} };
  if (!isPlainObject(parsed.value)) return { ok: false, res: v1Error(400, ['request body must be a JSON object']) };
  return { ok: true, body: parsed.value };
}

const identify: TrackHandler = (ctx, req, params) => {
  const target = pathRef(params.identifier!);
  if (!target.ok) return target.res;
  const body = objectBody(req, true);
  if (!body.ok) return body.res;
  const attrs = body.body;
  const issues = checkIdentifyAttributes(attrs, '');

  let rels: ReturnType<typeof parseObjectRelationships> | undefined;
  let relAction: 'add' | 'delete' = 'add';
  const cr = attrs.cio_relationships;
  if (cr !== undefined && cr !== null) {
    if (!isPlainObject(cr) || (cr.action !== 'add_relationships' && cr.action !== 'delete_relationships')) {
      issues.push({ reason: 'invalid', field: 'cio_relationships', message: 'cio_relationships must be {"action": "add_relationships"|"delete_relationships", "relationships": [...]}' });
    } else {
      relAction = cr.action === 'add_relationships' ? 'add' : 'delete';
      rels = parseObjectRelationships(cr.relationships, 'cio_relationships.relationships');
      if (!rels.ok) issues.push(...rels.issues);
    }
  }
  if (issues.length === 0 && ctx.ws.projectedAttributeCount(target.ref, attrs) > LIMITS.attributesPerPerson) {
    issues.push({ reason: 'too_many', field: '', message: `a person can have at most ${LIMITS.attributesPerPerson} attributes` });
  }
  if (issues.length > 0) return v1Error(400, messages(issues));

  const outcome = ctx.ws.identify(target.ref, attrs, {
    ...(typeof attrs._timestamp === 'number' ? { timestamp: attrs._timestamp } : {}),
    updateOnly: attrs._update === true,
  });
  if (outcome.applied && rels?.ok) {
    ctx.ws.relatePerson({ type: 'cio_id', value: outcome.person.cioId }, rels.value, relAction);
  }
  return trackOk();
};

const destroy: TrackHandler = (ctx, _req, params) => {
  const target = pathRef(params.identifier!);
  if (!target.ok) return target.res;
  ctx.ws.deletePerson(target.ref);
  return trackOk();
};

const EVENT_TYPES = new Set(['event', 'page', 'screen']);

function eventIssues(body: Record<string, unknown>): Issue[] {
  const issues = checkEvent(
    { name: body.name, id: body.id, timestamp: body.timestamp, data: body.data },
    { name: 'name', id: 'id', timestamp: 'timestamp', data: 'data' },
  );
  if (body.type !== undefined && (typeof body.type !== 'string' || !EVENT_TYPES.has(body.type))) {
    issues.push({ reason: 'invalid', field: 'type', message: 'type must be one of event, page, screen' });
  }
  return issues;
}

const track: TrackHandler = (ctx, req, params) => {
  const target = pathRef(params.identifier!);
  if (!target.ok) return target.res;
  const body = objectBody(req, false);
  if (!body.ok) return body.res;
  const issues = eventIssues(body.body);
  if (issues.length > 0) return v1Error(400, messages(issues));
  const b = body.body;
  ctx.ws.trackEvent(target.ref, {
    ...(typeof b.id === 'string' ? { dedupeId: b.id } : {}),
    name: b.name as string,
    type: (b.type as 'event' | 'page' | 'screen' | undefined) ?? 'event',
    ...(typeof b.timestamp === 'number' ? { timestamp: b.timestamp } : {}),
    data: isPlainObject(b.data) ? b.data : {},
  });
  return trackOk();
};

const trackAnonymous: TrackHandler = (ctx, req) => {
  const body = objectBody(req, false);
  if (!body.ok) return body.res;
  const b = body.body;
  const issues = eventIssues(b);
  const anonymousId = typeof b.anonymous_id === 'string' && b.anonymous_id !== '' ? b.anonymous_id : undefined;
  if (b.anonymous_id !== undefined && typeof b.anonymous_id !== 'string') {
    issues.push({ reason: 'invalid', field: 'anonymous_id', message: 'anonymous_id must be a string' });
  }
  // Without an anonymous_id the event is an "invite" event, which needs a recipient to go anywhere.
  if (anonymousId === undefined && !(isPlainObject(b.data) && typeof b.data.recipient === 'string' && b.data.recipient !== '')) {
    issues.push({ reason: 'required', field: 'anonymous_id', message: 'anonymous_id is required unless data.recipient is set' });
  }
  if (issues.length > 0) return v1Error(400, messages(issues));
  ctx.ws.trackEvent(null, {
    ...(typeof b.id === 'string' ? { dedupeId: b.id } : {}),
    name: b.name as string,
    type: (b.type as 'event' | 'page' | 'screen' | undefined) ?? 'event',
    ...(typeof b.timestamp === 'number' ? { timestamp: b.timestamp } : {}),
    data: isPlainObject(b.data) ? b.data : {},
    ...(anonymousId !== undefined ? { anonymousId } : {}),
  });
  return trackOk();
};

const suppress: TrackHandler = (ctx, _req, params) => {
  const target = pathRef(params.identifier!);
  if (!target.ok) return target.res;
  ctx.ws.suppress(target.ref);
  return trackOk();
};

const unsuppress: TrackHandler = (ctx, _req, params) => {
  const target = pathRef(params.identifier!);
  if (!target.ok) return target.res;
  ctx.ws.unsuppress(target.ref);
  return trackOk();
};

const addDevice: TrackHandler = (ctx, req, params) => {
  const target = pathRef(params.identifier!);
  if (!target.ok) return target.res;
  const body = objectBody(req, false);
  if (!body.ok) return body.res;
  const d = body.body.device;
  const issues: string[] = [];
  if (!isPlainObject(d)) issues.push('device is required');
  else {
    if (typeof d.id !== 'string' || d.id === '') issues.push('device.id is required');
    if (d.platform !== 'ios' && d.platform !== 'android') issues.push('device.platform must be "ios" or "android"');
    if (d.last_used !== undefined && (typeof d.last_used !== 'number' || !Number.isInteger(d.last_used))) issues.push('device.last_used must be a Unix timestamp');
    if (d.attributes !== undefined && !isPlainObject(d.attributes)) issues.push('device.attributes must be an object');
  }
  if (issues.length > 0 || !isPlainObject(d)) return v1Error(400, issues);
  ctx.ws.addDevice(target.ref, {
    id: d.id as string,
    platform: d.platform as string,
    ...(typeof d.last_used === 'number' ? { last_used: d.last_used } : {}),
    ...(isPlainObject(d.attributes) ? { attributes: Object.fromEntries(Object.entries(d.attributes).map(([k, v]) => [k, String(v)])) } : {}),
  });
  return trackOk();
};

const deleteDevice: TrackHandler = (ctx, _req, params) => {
  const target = pathRef(params.identifier!);
  if (!target.ok) return target.res;
  ctx.ws.deleteDevice(target.ref, params.device_id!);
  return trackOk();
};

/** `{"primary":{one of id|email|cio_id},"secondary":{one}}`, each `maxProperties: 1`. */
export function parseMergeSide(v: unknown, field: string): { ok: true; ref: PersonRef } | { ok: false; message: string } {
  if (!isPlainObject(v)) return { ok: false, message: `${field} is required` };
  const keys = Object.keys(v);
  if (keys.length !== 1) return { ok: false, message: `${field} cannot have multiple identifiers` };
  const key = keys[0]!;
  const value = v[key];
  if (key !== 'id' && key !== 'email' && key !== 'cio_id') return { ok: false, message: `${field} must use id, email or cio_id` };
  if (typeof value !== 'string' || value === '') return { ok: false, message: `${field}.${key} must be a non-empty string` };
  return { ok: true, ref: { type: key, value: key === 'cio_id' && value.startsWith('cio_') ? value.slice(4) : value } };
}

const merge: TrackHandler = (ctx, req) => {
  const body = objectBody(req, false);
  if (!body.ok) return body.res;
  const primary = parseMergeSide(body.body.primary, 'primary');
  const secondary = parseMergeSide(body.body.secondary, 'secondary');
  const errs = [primary, secondary].flatMap((s) => (s.ok ? [] : [s.message]));
  if (errs.length > 0 || !primary.ok || !secondary.ok) return v1Error(400, errs);
  ctx.ws.merge(primary.ref, secondary.ref);
  return trackOk();
};

const ID_TYPES = new Set<IdentifierType>(['id', 'email', 'cio_id']);

function segmentMembership(action: 'add' | 'remove'): TrackHandler {
  return (ctx, req, params) => {
    const segmentId = parseIntStrict(params.segment_id);
    if (segmentId === undefined) return v1Error(400, ['segment_id must be an integer']);
    const idTypeRaw = req.url.searchParams.get('id_type') ?? 'id';
    if (!ID_TYPES.has(idTypeRaw as IdentifierType)) return v1Error(400, ['id_type must be one of id, email, cio_id']);
    const idType = idTypeRaw as IdentifierType;
    const body = objectBody(req, false);
    if (!body.ok) return body.res;
    const ids = body.body.ids;
    if (!Array.isArray(ids) || ids.length === 0) return v1Error(400, ['ids must be a non-empty array of strings']);
    if (ids.length > LIMITS.segmentIdsPerRequest) {
      return v1Error(400, [`ids has ${ids.length} entries; the limit is ${LIMITS.segmentIdsPerRequest} per request`]);
    }
    if (!ids.every((x) => typeof x === 'string')) return v1Error(400, ['ids must contain only strings']);
    const segment = ctx.ws.segments.get(segmentId);
    // ⚠ The current spec documents only 200/400/401 here; the 2022 spec answered a missing segment with 404 and
    // the JSON string "Segment not found". We keep that: it is the only documented answer.
    if (!segment) return { status: 404, json: 'Segment not found' };
    if (segment.type !== 'manual') {
      // ⚠ "You cannot add [or remove] people to data-driven segments using the API"; the status is undocumented.
      // A 400 is the safest answer: a non-retryable client error the caller must surface, never a silent 200.
      return v1Error(400, [`You cannot ${action} people ${action === 'add' ? 'to' : 'from'} data-driven segments using the API.`]);
    }
    // Unknown people and values that don't match id_type are ignored. ⚠ remove_customers' description says it
    // needs `id`s, yet the spec declares id_type on it; we honour id_type for both.
    const people = ctx.ws.resolveIds(ids as string[], idType);
    for (const p of people) {
      if (action === 'add') segment.members.add(p.cioId);
      else segment.members.delete(p.cioId);
    }
    if (people.length > 0) segment.updatedAt = ctx.ws.nowSeconds();
    return trackOk();
  };
}

const region: TrackHandler = (ctx, req) =>
  // The live answer names the regional Track host. The sandbox names itself, so a client that follows region
  // detection stays on the sandbox instead of leaving for the real service.
  ok({ url: req.url.origin, region: ctx.region, environment_id: ctx.environmentId });

export const trackV1Routes: Route<TrackHandler>[] = [
  { method: 'PUT', template: '/api/v1/customers/{identifier}', handler: identify },
  { method: 'DELETE', template: '/api/v1/customers/{identifier}', handler: destroy },
  { method: 'POST', template: '/api/v1/customers/{identifier}/events', handler: track },
  { method: 'POST', template: '/api/v1/events', handler: trackAnonymous },
  { method: 'POST', template: '/api/v1/customers/{identifier}/suppress', handler: suppress },
  { method: 'POST', template: '/api/v1/customers/{identifier}/unsuppress', handler: unsuppress },
  { method: 'PUT', template: '/api/v1/customers/{identifier}/devices', handler: addDevice },
  { method: 'DELETE', template: '/api/v1/customers/{identifier}/devices/{device_id}', handler: deleteDevice },
  { method: 'POST', template: '/api/v1/merge_customers', handler: merge },
  { method: 'POST', template: '/api/v1/segments/{segment_id}/add_customers', handler: segmentMembership('add') },
  { method: 'POST', template: '/api/v1/segments/{segment_id}/remove_customers', handler: segmentMembership('remove') },
  { method: 'GET', template: '/api/v1/accounts/region', handler: region },
];
