/**
 * The Customer.io emulator: one workspace served by two Emulators, `track` (Track API v1 + v2, Basic auth) and
 * `app` (App API, Bearer auth), plus an in-process API for tests and an admin extension for seeding.
 */
import type { Clock } from '../../core/clock.ts';
import { sha256 } from '../../core/digest.ts';
import { createPrng, type Prng } from '../../core/prng.ts';
import { randomSeed } from '../common/random-seed.ts';
import { SlidingWindowLimiter } from '../common/rate-limit.ts';
import { compileRoutes, matchRoute, templateFor } from '../common/router.ts';
import type { AdminExtension, Emulator, SandboxRequest, SandboxResponse, ServiceFaults } from '../common/types.ts';
import { handleCustomerioAdmin } from './admin.ts';
import { appRoutes, identifiersJson, segmentJson, type AppContext } from './app-api.ts';
import { appError, appUnauthorized, checkBasic, checkBearer, trackUnauthorized, v1Error, v2Error } from './http.ts';
import { trackV1Routes, type TrackContext } from './track-v1.ts';
import { trackV2Routes, type TrackV2Context } from './track-v2.ts';
import {
  parsePathIdentifier,
  refForIdType,
  Workspace,
  isUnsubscribedValue,
  type ActivityEntry,
  type AttrValue,
  type DeliveryMetric,
  type Device,
  type IdentifierType,
  type Person,
  type StoredEvent,
} from './workspace.ts';

export interface CustomerioEmulatorOptions {
  siteId: string;
  trackApiKey: string;
  appApiKey: string;
  /** Soft Track limit enforced with 429 + Retry-After. Default 1000/s (REFERENCE.md §2). */
  trackRateLimitPerSecond?: number;
  /** App limit. Default 10/s ("Most endpoints … are limited to 10 requests per second"). */
  appRateLimitPerSecond?: number;
  /** Retry-After on rate-limit 429s. Default 1 (the documented minimum); tests use 0. */
  retryAfterSeconds?: number;
  seed?: number;
  clock?: Clock;
  region?: 'us' | 'eu';
  /** Answered by `GET /api/v1/accounts/region` as `environment_id`. */
  environmentId?: number;
  /** How long event dedupe ids are remembered. Default 7 days (⚠ the live window is undocumented). */
  eventDedupeWindowMs?: number;
  /** Workspace setting "Allow updates to email using ID". Default true. */
  allowEmailUpdateById?: boolean;
  /** Time from export creation to `done`. Default 0 (done on the next read; creation still reports pending). */
  exportReadyAfterMs?: number;
}

/** A person as the in-process API and admin endpoint show it: typed attribute values, not App API strings. */
export interface PersonView {
  cio_id: string;
  id: string | null;
  email: string | null;
  attributes: Record<string, AttrValue>;
  timestamps: Record<string, number>;
  unsubscribed: boolean;
  subscription_topics: Record<string, boolean>;
  devices: Device[];
  anonymous_id: string | null;
  /** Unix seconds the profile was created in the workspace. */
  created: number;
  segments: number[];
  relationships: Array<{ object_type_id: string; object_id: string; cio_object_id: string; attributes: Record<string, AttrValue> }>;
}

export type EventView = StoredEvent;

export interface SegmentView {
  id: number;
  name: string;
  description: string;
  type: 'manual' | 'dynamic';
  state: string;
  progress: number | null;
  tags: string[] | null;
  created_at: number;
  updated_at: number;
  deduplicate_id: string;
  count: number;
}

export interface ObjectView {
  cio_object_id: string;
  object_type_id: string;
  object_id: string;
  attributes: Record<string, AttrValue>;
  people: string[];
}

export interface SeedSegmentInput {
  /**
   * The segment's id, for a segment the real workspace has under a known id (a Workspace references it by
   * id). Refused when taken. Default: the next free id.
   */
  id?: number;
  name: string;
  description?: string;
  /** Default `dynamic`: the point of seeding is the segment type the public API cannot create. */
  type?: 'dynamic' | 'manual';
  /** Members by `idType` (default id). Every one must exist. */
  memberIds?: string[];
  idType?: IdentifierType;
  tags?: string[];
  /** Create members that do not exist yet (by id or email) instead of refusing them. */
  createMissingPeople?: boolean;
}

export interface CustomerioEmulator {
  readonly track: Emulator;
  readonly app: Emulator;
  readonly admin: AdminExtension;
  /** By id, email, or `cio_<cio_id>` (the Track v1 path forms). */
  getPerson(identifier: string): PersonView | undefined;
  listPeople(): PersonView[];
  eventsFor(identifier: string): EventView[];
  anonymousEvents(): EventView[];
  seedSegment(input: SeedSegmentInput): SegmentView;
  /**
   * Seeds, as data-driven segments, the referenced segments whose ids do not exist yet; existing ids are left
   * as they are. Members are drawn deterministically from the people present now (about one in three, by id or
   * email), none when there are none. Returns the segments it created.
   */
  seedReferencedSegments(refs: ReadonlyArray<{ id: number; name: string; description?: string }>): SegmentView[];
  /** Replaces the members of any segment (manual or dynamic). Throws on an unknown segment or person. */
  setSegmentMembers(segmentId: number, ids: string[], idType?: IdentifierType): void;
  segmentMembers(segmentId: number): Array<{ id: string | null; email: string | null; cio_id: string }>;
  listSegments(): SegmentView[];
  getObject(objectTypeId: string, objectId: string): ObjectView | undefined;
  activity(): ActivityEntry[];
  deliveryMetrics(): DeliveryMetric[];
  snapshot(): unknown;
  restore(snapshot: unknown): void;
  reset(): void;
}

type Handler = (req: SandboxRequest, params: Record<string, string>, faults: ServiceFaults) => SandboxResponse;

/**
 * Whether a seeded stand-in for a UI segment counts this person in: keyed on the segment id and the person's id
 * (or email), never on cio_id, which differs between sandboxes, so the same people give the same members.
 */
function drawnInto(segmentId: number, p: Person): boolean {
  const key = p.id ?? p.email;
  if (key === null) return false;
  return Number.parseInt(sha256(`${segmentId}:${key}`).slice(0, 8), 16) % 3 === 0;
}

const isV2 = (req: SandboxRequest): boolean => req.url.pathname.startsWith('/api/v2/');

export function createCustomerioEmulator(options: CustomerioEmulatorOptions): CustomerioEmulator {
  const nowMs = (): number => (options.clock ? options.clock.now().getTime() : Date.now());
  const prng: Prng = createPrng(options.seed ?? randomSeed());
  const retryAfter = options.retryAfterSeconds ?? 1;
  const trackLimit = options.trackRateLimitPerSecond ?? 1000;
  const appLimit = options.appRateLimitPerSecond ?? 10;
  const trackLimiter = new SlidingWindowLimiter(trackLimit, 1000, nowMs);
  const appLimiter = new SlidingWindowLimiter(appLimit, 1000, nowMs);

  const ws = new Workspace({
    prng,
    now: nowMs,
    eventDedupeWindowMs: options.eventDedupeWindowMs ?? 7 * 24 * 3600 * 1000,
    allowEmailUpdateById: options.allowEmailUpdateById ?? true,
    exportReadyAfterMs: options.exportReadyAfterMs ?? 0,
  });
  const trackCtx: TrackV2Context & TrackContext = { ws, region: options.region ?? 'us', environmentId: options.environmentId ?? 1, prng };
  const appCtx: AppContext = { ws, now: nowMs, downloadTokens: new Map(), newToken: () => prng.hex(32) };

  const trackRoutes = compileRoutes<Handler>([
    ...trackV1Routes.map((r) => ({ ...r, handler: ((req, params) => r.handler(trackCtx, req, params)) as Handler })),
    ...trackV2Routes.map((r) => ({ ...r, handler: ((req, _params, faults) => r.handler(trackCtx, req, faults)) as Handler })),
  ]);
  const compiledApp = compileRoutes<Handler>(appRoutes.map((r) => ({ ...r, handler: ((req, params) => r.handler(appCtx, req, params)) as Handler })));
  const appNoAuth = new Set(appRoutes.filter((r) => r.auth === false).map((r) => `${r.method} ${r.template}`));

  // ⚠ Track documents no 429 and no error body for it; we send the envelope of the API version the path
  // belongs to, plus Retry-After (customerio-node honours it).
  const trackFault = (status: number, req: SandboxRequest, retryAfterSeconds?: number): SandboxResponse => {
    const message =
      status === 429
        ? `rate limited to ${trackLimit} requests per 1s`
        : status === 502
          ? 'Bad Gateway'
          : status === 503
            ? 'Service Unavailable'
            : 'Internal Server Error';
    const res = isV2(req) ? v2Error(status, [{ reason: status === 429 ? 'rate_limited' : 'internal', field: '', message }]) : v1Error(status, [message]);
    if (retryAfterSeconds !== undefined) res.headers = { ...res.headers, 'retry-after': String(retryAfterSeconds) };
    return res;
  };

  const appFault = (status: number, _req: SandboxRequest, retryAfterSeconds?: number): SandboxResponse => {
    const detail =
      status === 429
        ? `rate limited to ${appLimit} requests per 1s (reference ${prng.hex(6)})`
        : `${status === 502 ? 'bad gateway' : status === 503 ? 'service unavailable' : 'internal server error'} (reference ${prng.hex(6)})`;
    const res = appError(status, detail);
    if (retryAfterSeconds !== undefined) res.headers = { 'retry-after': String(retryAfterSeconds) };
    return res;
  };

  const snapshot = (): unknown => ws.snapshot();
  const restore = (s: unknown): void => {
    ws.restore(s);
    appCtx.downloadTokens.clear();
  };
  const reset = (): void => {
    ws.reset();
    appCtx.downloadTokens.clear();
    trackLimiter.reset();
    appLimiter.reset();
  };

  const track: Emulator = {
    service: 'track',
    async handle(req, faults) {
      const m = matchRoute(trackRoutes, req.method, req.url.pathname);
      if (m.outcome === 'none') return isV2(req) ? v2Error(404, [{ reason: 'not_found', field: '', message: 'Not Found' }]) : v1Error(404, ['Not Found']);
      if (m.outcome === 'method') {
        const res = isV2(req) ? v2Error(405, [{ reason: 'method_not_allowed', field: '', message: 'Method Not Allowed' }]) : v1Error(405, ['Method Not Allowed']);
        res.headers = { allow: m.allowed.join(', ') };
        return res;
      }
      if (!checkBasic(req, options.siteId, options.trackApiKey)) return trackUnauthorized();
      const admitted = trackLimiter.tryAcquire();
      if (!admitted.ok) return trackFault(429, req, retryAfter);
      return m.route.handler(req, m.params, faults);
    },
    routeTemplate: (method, pathname) => templateFor(trackRoutes, method, pathname),
    faultResponse: trackFault,
    snapshot,
    restore,
    reset,
  };

  const app: Emulator = {
    service: 'app',
    async handle(req, faults) {
      const m = matchRoute(compiledApp, req.method, req.url.pathname);
      if (m.outcome === 'none') return appError(404, 'Not Found');
      if (m.outcome === 'method') {
        const res = appError(405, 'Method Not Allowed');
        res.headers = { allow: m.allowed.join(', ') };
        return res;
      }
      if (!appNoAuth.has(`${m.route.method} ${m.route.template}`)) {
        // Live App keys are region-bound and a wrong one is a 401 [S3 info].
        if (!checkBearer(req, options.appApiKey)) return appUnauthorized();
        const admitted = appLimiter.tryAcquire();
        if (!admitted.ok) return appFault(429, req, retryAfter);
      }
      return m.route.handler(req, m.params, faults);
    },
    routeTemplate: (method, pathname) => templateFor(compiledApp, method, pathname),
    faultResponse: appFault,
    snapshot,
    restore,
    reset,
  };

  const personView = (p: Person): PersonView => ({
    cio_id: p.cioId,
    id: p.id,
    email: p.email,
    attributes: structuredClone(p.attributes),
    timestamps: { ...p.timestamps },
    unsubscribed: isUnsubscribedValue(p.attributes.unsubscribed),
    subscription_topics: { ...p.subscriptionTopics },
    devices: structuredClone(p.devices),
    anonymous_id: p.anonymousId,
    created: p.createdAt,
    segments: [...ws.segments.values()].filter((s) => s.members.has(p.cioId)).map((s) => s.id).sort((a, b) => a - b),
    relationships: [...ws.relationships.values()]
      .filter((r) => r.personCioId === p.cioId)
      .flatMap((r) => {
        const o = ws.objects.get(r.cioObjectId);
        return o ? [{ object_type_id: o.objectTypeId, object_id: o.objectId, cio_object_id: o.cioObjectId, attributes: structuredClone(r.attributes) }] : [];
      }),
  });

  const segmentView = (id: number): SegmentView => {
    const s = ws.segments.get(id);
    if (!s) throw new RangeError(`segment ${id} does not exist`);
    return { ...(segmentJson(s) as Omit<SegmentView, 'count'>), tags: s.tags ? [...s.tags] : null, count: s.members.size };
  };

  const lookup = (identifier: string): Person | undefined => ws.findPerson(parsePathIdentifier(identifier));

  const resolveMembers = (ids: string[], idType: IdentifierType, createMissing = false): string[] => {
    const out: string[] = [];
    const missing: string[] = [];
    for (const raw of ids) {
      const ref = refForIdType(raw, idType);
      let p = ref ? ws.findPerson(ref) : undefined;
      if (!p && ref && createMissing && ref.type !== 'cio_id') {
        const created = ws.identify(ref, {});
        if (created.applied) p = created.person;
      }
      if (p) out.push(p.cioId);
      else missing.push(raw);
    }
    if (missing.length > 0) throw new RangeError(`unknown people (${idType}): ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', …' : ''}`);
    return out;
  };

  const emulator: CustomerioEmulator = {
    track,
    app,
    admin: { prefix: 'customerio', handle: (req, subpath) => handleCustomerioAdmin(emulator, req, subpath) },
    getPerson(identifier) {
      const p = lookup(identifier);
      return p ? personView(p) : undefined;
    },
    listPeople() {
      return ws.sortedPeople().map(personView);
    },
    eventsFor(identifier) {
      const p = lookup(identifier);
      return p ? structuredClone(ws.events.get(p.cioId) ?? []) : [];
    },
    anonymousEvents() {
      return structuredClone(ws.anonymousEvents);
    },
    seedSegment(input) {
      // Before the members: resolving them may create people, which a refused id must not leave behind.
      const idProblem = input.id === undefined ? undefined : ws.segmentIdProblem(input.id);
      if (idProblem) throw new RangeError(idProblem);
      const members = resolveMembers(input.memberIds ?? [], input.idType ?? 'id', input.createMissingPeople ?? false);
      const s = ws.createSegment({
        ...(input.id !== undefined ? { id: input.id } : {}),
        name: input.name,
        ...(input.description !== undefined ? { description: input.description } : {}),
        type: input.type ?? 'dynamic',
        ...(input.tags !== undefined ? { tags: input.tags } : {}),
      });
      for (const m of members) s.members.add(m);
      return segmentView(s.id);
    },
    seedReferencedSegments(refs) {
      const created: SegmentView[] = [];
      for (const ref of refs) {
        if (ws.segments.has(ref.id)) continue;
        const s = ws.createSegment({ id: ref.id, name: ref.name, type: 'dynamic', ...(ref.description !== undefined ? { description: ref.description } : {}) });
        for (const p of ws.sortedPeople()) if (drawnInto(ref.id, p)) s.members.add(p.cioId);
        created.push(segmentView(s.id));
      }
      return created;
    },
    setSegmentMembers(segmentId, ids, idType = 'id') {
      const s = ws.segments.get(segmentId);
      if (!s) throw new RangeError(`segment ${segmentId} does not exist`);
      s.members = new Set(resolveMembers(ids, idType));
      s.updatedAt = ws.nowSeconds();
    },
    segmentMembers(segmentId) {
      const s = ws.segments.get(segmentId);
      if (!s) throw new RangeError(`segment ${segmentId} does not exist`);
      return [...s.members]
        .sort()
        .map((cio) => ws.people.get(cio))
        .filter((p): p is Person => p !== undefined)
        .map(identifiersJson);
    },
    listSegments() {
      return [...ws.segments.keys()].sort((a, b) => a - b).map(segmentView);
    },
    getObject(objectTypeId, objectId) {
      const o = ws.findObject({ objectTypeId, objectId });
      if (!o) return undefined;
      const people = [...ws.relationships.values()].filter((r) => r.cioObjectId === o.cioObjectId).map((r) => r.personCioId).sort();
      return { cio_object_id: o.cioObjectId, object_type_id: o.objectTypeId, object_id: o.objectId, attributes: structuredClone(o.attributes), people };
    },
    activity() {
      return structuredClone(ws.activity);
    },
    deliveryMetrics() {
      return structuredClone(ws.deliveryMetrics);
    },
    snapshot,
    restore,
    reset,
  };
  return emulator;
}
