/**
 * Track API v2 (REFERENCE.md §5): `POST /api/v2/entity` (one operation) and `POST /api/v2/batch`
 * (`{"batch":[op…]}`). Operation types person, object and delivery, per the Track OpenAPI schemas.
 *
 * Batch semantics: a malformed or oversized body is refused whole (400). Otherwise each entry is checked
 * and, if valid, applied in order; invalid entries are reported in a 207
 * `{"errors":[{batch_index, reason, field, message}]}` while "all other requests are accepted". All valid → 200 `{}`.
 */
import type { Prng } from '../../core/prng.ts';
import type { Route } from '../common/router.ts';
import type { SandboxRequest, SandboxResponse, ServiceFaults } from '../common/types.ts';
import { LIMITS, byteLength } from './limits.ts';
import { isPlainObject, trackOk, v2Error } from './http.ts';
import { parseObjectIdentifiers, parseObjectRelationships, parsePeopleRelationships, parseV2PersonIdentifiers } from './relationships.ts';
import type { TrackContext } from './track-v1.ts';
import { parseMergeSide } from './track-v1.ts';
import { checkEvent, checkIdentifyAttributes, checkObjectAttributes, checkTimestamp, type Issue } from './validate.ts';
import type { PersonRef } from './workspace.ts';

export interface TrackV2Context extends TrackContext {
  prng: Prng;
}

export type TrackV2Handler = (ctx: TrackV2Context, req: SandboxRequest, faults: ServiceFaults) => SandboxResponse;

type Checked = { ok: true; apply: () => void } | { ok: false; issues: Issue[] };

const bad = (field: string, message: string, reason = 'invalid'): Checked => ({ ok: false, issues: [{ reason, field, message }] });

function checkPersonOp(ctx: TrackV2Context, op: Record<string, unknown>): Checked {
  const ws = ctx.ws;
  const action = op.action;
  if (action === 'merge') {
    const primary = parseMergeSide(op.primary, 'primary');
    const secondary = parseMergeSide(op.secondary, 'secondary');
    const issues = [primary, secondary].flatMap((s) => (s.ok ? [] : [{ reason: 'invalid', field: s.message.split(' ')[0]!, message: s.message }]));
    if (!primary.ok || !secondary.ok) return { ok: false, issues };
    return { ok: true, apply: () => void ws.merge(primary.ref, secondary.ref) };
  }
  const ids = parseV2PersonIdentifiers(op.identifiers, 'identifiers');
  if (!ids.ok) return { ok: false, issues: ids.issues };
  const ref: PersonRef = ids.value;

  switch (action) {
    case 'identify': {
      const attrs = op.attributes ?? {};
      if (!isPlainObject(attrs)) return bad('attributes', 'attributes must be an object');
      const issues = [...checkIdentifyAttributes(attrs, 'attributes'), ...checkTimestamp(op.timestamp, 'timestamp')];
      const rels = op.cio_relationships === undefined ? undefined : parseObjectRelationships(op.cio_relationships, 'cio_relationships');
      if (rels && !rels.ok) issues.push(...rels.issues);
      if (issues.length > 0) return { ok: false, issues };
      // Looked up once for the check and the identify: both handlers apply an operation right after its
      // check (a million-entry map costs a cache miss or two per probe).
      const found = ws.findPerson(ref) ?? null;
      if (ws.projectedAttributeCountOf(found, attrs) > LIMITS.attributesPerPerson) {
        return { ok: false, issues: [{ reason: 'too_many', field: 'attributes', message: `a person can have at most ${LIMITS.attributesPerPerson} attributes` }] };
      }
      return {
        ok: true,
        apply: () => {
          const out = ws.identify(ref, attrs, {
            ...(typeof op.timestamp === 'number' ? { timestamp: op.timestamp } : {}),
            updateOnly: attrs._update === true,
            found,
          });
          if (out.applied && rels?.ok) ws.relatePerson({ type: 'cio_id', value: out.person.cioId }, rels.value, 'add');
        },
      };
    }
    case 'delete':
      return { ok: true, apply: () => void ws.deletePerson(ref) };
    case 'suppress':
      return { ok: true, apply: () => ws.suppress(ref) };
    case 'unsuppress':
      return { ok: true, apply: () => ws.unsuppress(ref) };
    case 'event':
    case 'screen':
    case 'page': {
      const issues = checkEvent(
        { name: op.name, id: op.id, timestamp: op.timestamp, data: op.attributes },
        { name: 'name', id: 'id', timestamp: 'timestamp', data: 'attributes' },
      );
      if (issues.length > 0) return { ok: false, issues };
      return {
        ok: true,
        apply: () =>
          void ws.trackEvent(ref, {
            ...(typeof op.id === 'string' ? { dedupeId: op.id } : {}),
            name: op.name as string,
            type: action,
            ...(typeof op.timestamp === 'number' ? { timestamp: op.timestamp } : {}),
            data: isPlainObject(op.attributes) ? op.attributes : {},
          }),
      };
    }
    case 'add_relationships':
    case 'delete_relationships': {
      if (op.cio_relationships === undefined) return bad('cio_relationships', 'cio_relationships is required', 'required');
      const rels = parseObjectRelationships(op.cio_relationships, 'cio_relationships');
      if (!rels.ok) return { ok: false, issues: rels.issues };
      return { ok: true, apply: () => void ws.relatePerson(ref, rels.value, action === 'add_relationships' ? 'add' : 'delete') };
    }
    case 'add_device':
    case 'delete_device': {
      const d = op.device;
      if (!isPlainObject(d)) return bad('device', 'device is required', 'required');
      if (typeof d.token !== 'string' || d.token === '') return bad('device.token', 'device.token is required', 'required');
      if (action === 'delete_device') return { ok: true, apply: () => ws.deleteDevice(ref, d.token as string) };
      if (d.platform !== 'ios' && d.platform !== 'android') return bad('device.platform', 'device.platform must be "ios" or "android"');
      if (d.last_used !== undefined && (typeof d.last_used !== 'number' || !Number.isInteger(d.last_used))) {
        return bad('device.last_used', 'device.last_used must be a Unix timestamp');
      }
      if (d.attributes !== undefined && !isPlainObject(d.attributes)) return bad('device.attributes', 'device.attributes must be an object');
      return {
        ok: true,
        apply: () =>
          void ws.addDevice(ref, {
            id: d.token as string,
            platform: d.platform as string,
            ...(typeof d.last_used === 'number' ? { last_used: d.last_used } : {}),
            ...(isPlainObject(d.attributes) ? { attributes: Object.fromEntries(Object.entries(d.attributes).map(([k, v]) => [k, String(v)])) } : {}),
          }),
      };
    }
    default:
      return bad('action', `unknown person action ${JSON.stringify(action)}`);
  }
}

function checkObjectOp(ctx: TrackV2Context, op: Record<string, unknown>): Checked {
  const ws = ctx.ws;
  const ids = parseObjectIdentifiers(op.identifiers, 'identifiers');
  if (!ids.ok) return { ok: false, issues: ids.issues };
  const ref = ids.value;
  const action = op.action;
  switch (action) {
    case 'identify':
    case 'identify_anonymous': {
      const attrs = op.attributes ?? {};
      const issues = checkObjectAttributes(attrs, 'attributes');
      if (action === 'identify') {
        const people = op.cio_relationships === undefined ? undefined : parsePeopleRelationships(op.cio_relationships, 'cio_relationships');
        if (people && !people.ok) issues.push(...people.issues);
        if (issues.length > 0 || (people && !people.ok)) return { ok: false, issues };
        return {
          ok: true,
          apply: () => void ws.identifyObject(ref, attrs as Record<string, unknown>, people?.ok ? people.value : [], typeof op.timestamp === 'number' ? op.timestamp : undefined),
        };
      }
      // identify_anonymous: the example puts `anonymous_id` at the top level, the schema in cio_relationships.
      const anon: Array<{ anonymousId: string; attributes?: Record<string, unknown> }> = [];
      if (typeof op.anonymous_id === 'string' && op.anonymous_id !== '') anon.push({ anonymousId: op.anonymous_id });
      if (op.cio_relationships !== undefined) {
        if (!Array.isArray(op.cio_relationships)) issues.push({ reason: 'invalid', field: 'cio_relationships', message: 'cio_relationships must be an array' });
        else
          op.cio_relationships.forEach((r, i) => {
            const a = isPlainObject(r) && isPlainObject(r.identifiers) ? r.identifiers.anonymous_id : undefined;
            if (typeof a !== 'string' || a === '') {
              issues.push({ reason: 'required', field: `cio_relationships[${i}].identifiers.anonymous_id`, message: 'anonymous_id is required' });
            } else anon.push({ anonymousId: a, ...(isPlainObject(r) && isPlainObject(r.relationship_attributes) ? { attributes: r.relationship_attributes } : {}) });
          });
      }
      if (anon.length === 0 && issues.length === 0) issues.push({ reason: 'required', field: 'anonymous_id', message: 'identify_anonymous needs an anonymous_id' });
      if (issues.length > 0) return { ok: false, issues };
      return {
        ok: true,
        apply: () => {
          ws.identifyObject(ref, attrs as Record<string, unknown>, []);
          ws.relateAnonymous(ref, anon);
        },
      };
    }
    case 'delete':
      return { ok: true, apply: () => ws.deleteObject(ref) };
    case 'add_relationships':
    case 'delete_relationships': {
      if (op.cio_relationships === undefined) return bad('cio_relationships', 'cio_relationships is required', 'required');
      const people = parsePeopleRelationships(op.cio_relationships, 'cio_relationships');
      if (!people.ok) return { ok: false, issues: people.issues };
      return { ok: true, apply: () => ws.relateObject(ref, people.value, action === 'add_relationships' ? 'add' : 'delete') };
    }
    default:
      return bad('action', `unknown object action ${JSON.stringify(action)}`);
  }
}

const DELIVERY_METRICS = new Set(['opened', 'converted', 'delivered']);

function checkDeliveryOp(ctx: TrackV2Context, op: Record<string, unknown>): Checked {
  if (op.action !== 'event') return bad('action', 'delivery operations support only action "event"');
  const id = isPlainObject(op.identifiers) ? op.identifiers.id : undefined;
  if (typeof id !== 'string' || id === '') return bad('identifiers.id', 'identifiers.id (the delivery id) is required', 'required');
  if (typeof op.name !== 'string' || !DELIVERY_METRICS.has(op.name)) return bad('name', 'name must be one of opened, converted, delivered');
  const token = isPlainObject(op.attributes) ? op.attributes.device_token : undefined;
  if (typeof token !== 'string' || token === '') return bad('attributes.device_token', 'attributes.device_token is required', 'required');
  const issues = checkTimestamp(op.timestamp, 'timestamp');
  if (issues.length > 0) return { ok: false, issues };
  return {
    ok: true,
    apply: () =>
      ctx.ws.recordDelivery({
        deliveryId: id,
        name: op.name as string,
        deviceToken: token,
        timestamp: typeof op.timestamp === 'number' ? op.timestamp : ctx.ws.nowSeconds(),
      }),
  };
}

function checkOperation(ctx: TrackV2Context, op: unknown): Checked {
  if (!isPlainObject(op)) return bad('', 'each operation must be a JSON object');
  const size = byteLength(JSON.stringify(op));
  if (size > LIMITS.v2BatchEntryBytes) {
    return bad('', `operation is ${size} bytes; each request must be ${LIMITS.v2BatchEntryBytes} bytes or smaller`, 'too_large');
  }
  switch (op.type) {
    case 'person':
      return checkPersonOp(ctx, op);
    case 'object':
      return checkObjectOp(ctx, op);
    case 'delivery':
      return checkDeliveryOp(ctx, op);
    case undefined:
      return bad('type', 'type is required (person, object or delivery)', 'required');
    default:
      return bad('type', `unknown type ${JSON.stringify(op.type)} (expected person, object or delivery)`);
  }
}

function parseBody(req: SandboxRequest): { ok: true; value: unknown } | { ok: false; res: SandboxResponse } {
  try {
    return { ok: true, value: JSON.parse(req.body.toString('utf8')) as unknown };
  } catch {
    return { ok: false, res: v2Error(400, [{ reason: 'invalid', field: '', message: 'The entire request was malformed or invalid: body is not valid JSON.' }]) };
  }
}

const entity: TrackV2Handler = (ctx, req) => {
  if (req.body.length > LIMITS.v2EntityBytes) {
    return v2Error(400, [{ reason: 'too_large', field: '', message: `request is ${req.body.length} bytes; /entity accepts ${LIMITS.v2EntityBytes} bytes or smaller` }]);
  }
  const body = parseBody(req);
  if (!body.ok) return body.res;
  const checked = checkOperation(ctx, body.value);
  if (!checked.ok) return v2Error(400, checked.issues);
  checked.apply();
  return trackOk();
};

const batch: TrackV2Handler = (ctx, req, faults) => {
  if (req.body.length > LIMITS.v2BatchBytes) {
    return v2Error(400, [{ reason: 'too_large', field: 'batch', message: `request is ${req.body.length} bytes; /batch accepts ${LIMITS.v2BatchBytes} bytes or smaller` }]);
  }
  const body = parseBody(req);
  if (!body.ok) return body.res;
  const ops = isPlainObject(body.value) ? body.value.batch : undefined;
  if (!Array.isArray(ops)) {
    return v2Error(400, [{ reason: 'required', field: 'batch', message: 'The entire request was malformed or invalid: body must be {"batch": [...]}.' }]);
  }
  if (ops.length === 0) {
    // ⚠ No documented answer for an empty batch (there is no documented entry cap either); refusing it is the
    // safest reading, and customerio-node itself refuses to send one.
    return v2Error(400, [{ reason: 'required', field: 'batch', message: 'batch must contain at least one operation' }]);
  }
  const errors: Array<Issue & { batch_index: number }> = [];
  const failRate = faults.partialFailureRate ?? 0;
  ops.forEach((op, index) => {
    const checked = checkOperation(ctx, op);
    if (!checked.ok) {
      for (const issue of checked.issues) errors.push({ batch_index: index, ...issue });
      return;
    }
    if (ctx.prng.chance(failRate)) {
      errors.push({ batch_index: index, reason: 'internal', field: '', message: 'operation could not be processed (sandbox fault injection); retry it' });
      return;
    }
    checked.apply();
  });
  if (errors.length === 0) return trackOk();
  return { status: 207, json: { errors: errors.map((e) => ({ batch_index: e.batch_index, reason: e.reason, field: e.field, message: e.message })) } };
};

export const trackV2Routes: Route<TrackV2Handler>[] = [
  { method: 'POST', template: '/api/v2/entity', handler: entity },
  { method: 'POST', template: '/api/v2/batch', handler: batch },
];
