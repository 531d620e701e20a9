/**
 * App API routes (REFERENCE.md §6): segments, people lookup and search, exports. Bearer auth, the 10/s
 * limit, `{"errors":[{detail,status}]}` error bodies, cursor pagination with an opaque `next`.
 */
import type { Route } from '../common/router.ts';
import type { SandboxRequest, SandboxResponse } from '../common/types.ts';
import { peopleCsv } from './csv.ts';
import { parseAudienceFilter } from './filter.ts';
import { appError, isPlainObject, ok, parseIntStrict, readJson } from './http.ts';
import { LIMITS } from './limits.ts';
import {
  appAttributes,
  isUnsubscribedValue,
  refForIdType,
  type ExportRecord,
  type IdentifierType,
  type Person,
  type Segment,
  type Workspace,
} from './workspace.ts';

export interface AppContext {
  ws: Workspace;
  /** Unix milliseconds. */
  now(): number;
  /** One-time tokens for export download links, valid for 15 minutes. Not persisted: links are short-lived. */
  downloadTokens: Map<string, { exportId: number; expiresAtMs: number }>;
  newToken(): string;
}

export type AppHandler = (ctx: AppContext, req: SandboxRequest, params: Record<string, string>) => SandboxResponse;

export interface AppRoute extends Route<AppHandler> {
  /** False for the signed download link, which (like the live S3 link) needs no credentials. */
  auth?: boolean;
}

/** The documented Segment object [S2]: created_at/updated_at are S2 additions. */
export function segmentJson(s: Segment): Record<string, unknown> {
  return {
    id: s.id,
    deduplicate_id: `${s.id}:${s.updatedAt}`,
    name: s.name,
    description: s.description,
    state: s.state,
    progress: s.progress,
    type: s.type,
    tags: s.tags,
    created_at: s.createdAt,
    updated_at: s.updatedAt,
  };
}

/** `{email, id, cio_id}`, null when unset ("email or id" workspaces). */
export function identifiersJson(p: Person): { email: string | null; id: string | null; cio_id: string } {
  return { email: p.email, id: p.id, cio_id: p.cioId };
}

/** CustomerAttrs [S3]: attributes as strings with per-attribute timestamps. */
export function customerJson(p: Person, requestedId: string): Record<string, unknown> {
  return {
    id: requestedId,
    identifiers: identifiersJson(p),
    attributes: appAttributes(p),
    timestamps: { ...p.timestamps },
    unsubscribed: isUnsubscribedValue(p.attributes.unsubscribed),
    devices: p.devices.map((d) => ({ ...d })),
  };
}

function exportJson(e: ExportRecord, nowMs: number, forcePending = false): Record<string, unknown> {
  const done = !forcePending && nowMs >= e.readyAtMs;
  return {
    id: e.id,
    user_id: 0,
    user_email: 'sandbox@tidemark.invalid',
    // "The number of entries in the export. Exports report 0 until done."
    total: done ? e.rowCount : 0,
    deduplicate_id: `${e.id}:${e.createdAt}`,
    type: e.type,
    failed: false,
    status: done ? 'done' : 'pending',
    description: e.description,
    downloads: e.downloads,
    created_at: e.createdAt,
    updated_at: e.updatedAt,
  };
}

// Cursors are opaque to clients but carry the last cio_id seen (keyset), so pages stay consistent when people are
// added or removed between calls: nobody is skipped or repeated because of an offset shift.
function encodeCursor(lastCioId: string): string {
  return Buffer.from(`c1:${lastCioId}`, 'utf8').toString('base64url');
}

function decodeCursor(s: string): string | undefined {
  const text = Buffer.from(s, 'base64url').toString('utf8');
  return text.startsWith('c1:') && text.length > 3 ? text.slice(3) : undefined;
}

type PageParams = { ok: true; after: string | undefined; limit: number } | { ok: false; res: SandboxResponse };

function pageParams(req: SandboxRequest, def: number, max: number): PageParams {
  const limitRaw = req.url.searchParams.get('limit');
  let limit = def;
  if (limitRaw !== null && limitRaw !== '') {
    const n = parseIntStrict(limitRaw);
    // ⚠ Out-of-range limits are refused rather than clamped: a client asking for more than the documented maximum
    // has a bug it should hear about.
    if (n === undefined || n < 1 || n > max) return { ok: false, res: appError(400, `limit must be an integer between 1 and ${max}`) };
    limit = n;
  }
  const start = req.url.searchParams.get('start');
  let after: string | undefined;
  if (start !== null && start !== '') {
    after = decodeCursor(start);
    if (after === undefined) return { ok: false, res: appError(400, 'start is not a valid cursor; pass the `next` value of the previous page') };
  }
  return { ok: true, after, limit };
}

/**
 * One page of people (sorted by cio_id). ⚠ The end-of-list form of `next` is undocumented; we send `""` on the
 * last page (it keeps the documented string type, and clients treat an empty `next` as the end).
 */
function page(people: Person[], after: string | undefined, limit: number): { identifiers: unknown[]; ids: string[]; next: string } {
  const rest = after === undefined ? people : people.filter((p) => p.cioId > after);
  const slice = rest.slice(0, limit);
  return {
    identifiers: slice.map(identifiersJson),
    // "Entries without an id are empty strings in this array."
    ids: slice.map((p) => p.id ?? ''),
    next: rest.length > limit ? encodeCursor(slice[slice.length - 1]!.cioId) : '',
  };
}

function segmentParam(ctx: AppContext, raw: string): { ok: true; segment: Segment } | { ok: false; res: SandboxResponse } {
  const id = parseIntStrict(raw);
  if (id === undefined) return { ok: false, res: appError(400, 'segment_id must be an integer') };
  const segment = ctx.ws.segments.get(id);
  if (!segment) return { ok: false, res: appError(404, 'The segment_id does not exist.') };
  return { ok: true, segment };
}

function objectBody(req: SandboxRequest): { ok: true; body: Record<string, unknown> } | { ok: false; res: SandboxResponse } {
  const parsed = readJson(req);
  if (!parsed.ok) return { ok: false, res: appError(400, parsed.message) };
  if (!isPlainObject(parsed.value)) return { ok: false, res: appError(400, 'The request was malformed: body must be a JSON object.') };
  return { ok: true, body: parsed.value };
}

/**
 * `id_type` for customer lookups: id (default), email, cio_id. Phone is valid in the spec only when enabled as an
 * identifier, "otherwise the request returns 400"; the sandbox workspace does not enable it.
 */
function customerRef(req: SandboxRequest, raw: string): { ok: true; type: IdentifierType } | { ok: false; res: SandboxResponse } {
  const t = req.url.searchParams.get('id_type') ?? 'id';
  if (t === 'phone') return { ok: false, res: appError(400, 'phone is not enabled as an identifier in this workspace') };
  if (t !== 'id' && t !== 'email' && t !== 'cio_id') return { ok: false, res: appError(400, 'id_type must be one of id, email, phone, cio_id') };
  if (raw === '') return { ok: false, res: appError(400, 'customer_id is required') };
  return { ok: true, type: t };
}

function findCustomer(ctx: AppContext, req: SandboxRequest, raw: string): { ok: true; person: Person } | { ok: false; res: SandboxResponse } {
  const t = customerRef(req, raw);
  if (!t.ok) return t;
  // ⚠ Whether id_type=cio_id in the path needs the `cio_` prefix is undocumented; both forms are accepted.
  const ref = refForIdType(raw, t.type);
  const person = ref ? ctx.ws.findPerson(ref) : undefined;
  if (!person) return { ok: false, res: appError(404, 'The customer_id does not exist.') };
  return { ok: true, person };
}

const listSegments: AppHandler = (ctx) =>
  ok({ segments: [...ctx.ws.segments.values()].sort((a, b) => a.id - b.id).map(segmentJson) });

const createSegment: AppHandler = (ctx, req) => {
  const body = objectBody(req);
  if (!body.ok) return body.res;
  const seg = body.body.segment;
  if (!isPlainObject(seg)) return appError(400, 'The request was malformed: body must be {"segment": {"name": …, "description": …}}.');
  if (typeof seg.name !== 'string' || seg.name.trim() === '') return appError(400, 'segment.name is required');
  if (seg.description !== undefined && seg.description !== null && typeof seg.description !== 'string') {
    return appError(400, 'segment.description must be a string');
  }
  // "This request creates an empty segment": always manual, whatever else the body says.
  const s = ctx.ws.createSegment({
    name: seg.name,
    ...(typeof seg.description === 'string' ? { description: seg.description } : {}),
    type: 'manual',
  });
  return ok({ segment: segmentJson(s) });
};

const getSegment: AppHandler = (ctx, _req, params) => {
  const s = segmentParam(ctx, params.segment_id!);
  return s.ok ? ok({ segment: segmentJson(s.segment) }) : s.res;
};

const deleteSegment: AppHandler = (ctx, _req, params) => {
  const s = segmentParam(ctx, params.segment_id!);
  if (!s.ok) return s.res;
  if (s.segment.type !== 'manual') {
    // ⚠ The operation is `deleteManSegment`; what it does to a data-driven segment is undocumented. Refusing is
    // the safest answer: tidemark must never delete a segment it cannot recreate.
    return appError(400, 'Only manual segments can be deleted through the API.');
  }
  ctx.ws.deleteSegment(s.segment.id);
  return { status: 204 };
};

const segmentCount: AppHandler = (ctx, _req, params) => {
  const s = segmentParam(ctx, params.segment_id!);
  return s.ok ? ok({ count: s.segment.members.size, segment_id: s.segment.id }) : s.res;
};

const segmentUsedBy: AppHandler = (ctx, _req, params) => {
  const s = segmentParam(ctx, params.segment_id!);
  return s.ok ? ok({ segment_id: s.segment.id, used_by: { campaigns: [], sent_newsletters: [], draft_newsletters: [] } }) : s.res;
};

const segmentMembership: AppHandler = (ctx, req, params) => {
  const s = segmentParam(ctx, params.segment_id!);
  if (!s.ok) return s.res;
  const p = pageParams(req, LIMITS.membershipLimitDefault, LIMITS.membershipLimitMax);
  if (!p.ok) return p.res;
  const members = [...s.segment.members]
    .sort()
    .map((cio) => ctx.ws.people.get(cio))
    .filter((x): x is Person => x !== undefined);
  return ok({ ...page(members, p.after, p.limit), segment_id: s.segment.id });
};

const customersByEmail: AppHandler = (ctx, req) => {
  const email = req.url.searchParams.get('email');
  if (email === null || email === '') return appError(400, 'email is required');
  const p = ctx.ws.findPerson({ type: 'email', value: email });
  return ok({ results: p ? [identifiersJson(p)] : [] });
};

const searchCustomers: AppHandler = (ctx, req) => {
  const p = pageParams(req, LIMITS.searchLimitDefault, LIMITS.searchLimitMax);
  if (!p.ok) return p.res;
  const body = objectBody(req);
  if (!body.ok) return body.res;
  if (body.body.filter === undefined) return appError(400, 'filter is required');
  const f = parseAudienceFilter(body.body.filter);
  if (!f.ok) return appError(400, f.message);
  return ok(page(ctx.ws.filterPeople(f.filter), p.after, p.limit));
};

const customersAttributes: AppHandler = (ctx, req) => {
  const body = objectBody(req);
  if (!body.ok) return body.res;
  const ids = body.body.ids;
  if (!Array.isArray(ids) || ids.length === 0 || !ids.every((x) => typeof x === 'string')) {
    return appError(400, 'ids must be a non-empty array of strings');
  }
  if (ids.length > LIMITS.attributesLookupIds) return appError(400, `ids has ${ids.length} entries; the limit is ${LIMITS.attributesLookupIds}`);
  const customers: unknown[] = [];
  for (const id of ids as string[]) {
    const person = ctx.ws.findPerson({ type: 'id', value: id });
    // "If an ID in the request does not exist, the response omits it." Each item wraps the profile in
    // `customer`, as the first-party spec [S3] types it.
    if (person) customers.push({ customer: customerJson(person, id) });
  }
  return ok({ customers });
};

const customerAttributes: AppHandler = (ctx, req, params) => {
  const c = findCustomer(ctx, req, params.customer_id!);
  return c.ok ? ok({ customer: customerJson(c.person, params.customer_id!) }) : c.res;
};

const customerSegments: AppHandler = (ctx, req, params) => {
  const c = findCustomer(ctx, req, params.customer_id!);
  if (!c.ok) return c.res;
  // ⚠ S3 types this `id` as a string; S2's Segment object has an integer id. We send the full Segment object
  // (integer id), consistent with every other segment response.
  const segments = [...ctx.ws.segments.values()].filter((s) => s.members.has(c.person.cioId)).sort((a, b) => a.id - b.id);
  return ok({ segments: segments.map(segmentJson) });
};

const createExport: AppHandler = (ctx, req) => {
  const body = objectBody(req);
  if (!body.ok) return body.res;
  if (body.body.filters === undefined) {
    const hint = body.body.filter !== undefined ? ' (the key is "filters", plural)' : '';
    return appError(400, `filters is required${hint}`);
  }
  const f = parseAudienceFilter(body.body.filters, 'filters');
  if (!f.ok) return appError(400, f.message);
  const people = ctx.ws.filterPeople(f.filter);
  const e = ctx.ws.createExport(people, 'Customers export (sandbox)', peopleCsv(people));
  // A new export is always reported pending: the live service builds it asynchronously, so clients must poll.
  return ok({ export: exportJson(e, ctx.now(), true) });
};

const listExports: AppHandler = (ctx) => {
  const all = [...ctx.ws.exports.values()].sort((a, b) => a.id - b.id);
  // Live, with no exports: `{"exports": null}` [S6].
  return ok({ exports: all.length === 0 ? null : all.map((e) => exportJson(e, ctx.now())) });
};

function exportParam(ctx: AppContext, raw: string): { ok: true; e: ExportRecord } | { ok: false; res: SandboxResponse } {
  const id = parseIntStrict(raw);
  if (id === undefined) return { ok: false, res: appError(400, 'export_id must be an integer') };
  const e = ctx.ws.exports.get(id);
  if (!e) return { ok: false, res: appError(404, 'The export ID does not exist.') };
  return { ok: true, e };
}

const getExport: AppHandler = (ctx, _req, params) => {
  const e = exportParam(ctx, params.export_id!);
  return e.ok ? ok({ export: exportJson(e.e, ctx.now()) }) : e.res;
};

export const DOWNLOAD_PATH = '/sandbox-files/exports';

const downloadExport: AppHandler = (ctx, req, params) => {
  const e = exportParam(ctx, params.export_id!);
  if (!e.ok) return e.res;
  // ⚠ What downloading a pending export answers is undocumented; a 400 tells the client to poll first.
  if (ctx.now() < e.e.readyAtMs) return appError(400, 'The export is not ready to download yet (status pending).');
  const token = ctx.newToken();
  const now = ctx.now();
  for (const [t, v] of ctx.downloadTokens) if (v.expiresAtMs <= now) ctx.downloadTokens.delete(t);
  ctx.downloadTokens.set(token, { exportId: e.e.id, expiresAtMs: now + LIMITS.exportLinkTtlMs });
  e.e.downloads += 1;
  return ok({ url: `${req.url.origin}${DOWNLOAD_PATH}/${token}` });
};

const exportFile: AppHandler = (ctx, _req, params): SandboxResponse => {
  const entry = ctx.downloadTokens.get(params.token!);
  const e = entry ? ctx.ws.exports.get(entry.exportId) : undefined;
  if (!entry || !e) return { status: 404, headers: { 'content-type': 'text/plain; charset=utf-8' }, raw: Buffer.from('Not Found\n') };
  if (ctx.now() >= entry.expiresAtMs) {
    return { status: 403, headers: { 'content-type': 'text/plain; charset=utf-8' }, raw: Buffer.from('Request has expired\n') };
  }
  return {
    status: 200,
    headers: { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': `attachment; filename="export-${e.id}.csv"` },
    raw: Buffer.from(e.content, 'utf8'),
  };
};

export const appRoutes: AppRoute[] = [
  { method: 'GET', template: '/v1/segments', handler: listSegments },
  { method: 'POST', template: '/v1/segments', handler: createSegment },
  { method: 'GET', template: '/v1/segments/{segment_id}', handler: getSegment },
  { method: 'DELETE', template: '/v1/segments/{segment_id}', handler: deleteSegment },
  { method: 'GET', template: '/v1/segments/{segment_id}/customer_count', handler: segmentCount },
  { method: 'GET', template: '/v1/segments/{segment_id}/membership', handler: segmentMembership },
  { method: 'GET', template: '/v1/segments/{segment_id}/used_by', handler: segmentUsedBy },
  { method: 'GET', template: '/v1/customers', handler: customersByEmail },
  { method: 'POST', template: '/v1/customers', handler: searchCustomers },
  { method: 'POST', template: '/v1/customers/attributes', handler: customersAttributes },
  { method: 'GET', template: '/v1/customers/{customer_id}/attributes', handler: customerAttributes },
  { method: 'GET', template: '/v1/customers/{customer_id}/segments', handler: customerSegments },
  { method: 'POST', template: '/v1/exports/customers', handler: createExport },
  { method: 'GET', template: '/v1/exports', handler: listExports },
  { method: 'GET', template: '/v1/exports/{export_id}', handler: getExport },
  { method: 'GET', template: '/v1/exports/{export_id}/download', handler: downloadExport },
  { method: 'GET', template: `${DOWNLOAD_PATH}/{token}`, handler: exportFile, auth: false },
];
