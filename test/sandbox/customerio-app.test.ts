/**
 * The Customer.io App API as served over real HTTP by the sandbox: segments, membership pagination, people
 * lookup and search, exports with a real CSV download, auth and the 10/s rate limit. Response shapes are
 * checked against zod schemas of what clients rely on.
 */
import { parse as parseCsv } from 'csv-parse/sync';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createCustomerioEmulator } from '../../reconciler/sandbox/customerio/index.ts';
import { createSandbox, type RunningSandbox } from '../../reconciler/sandbox/index.ts';

const Segment = z.object({
  id: z.number().int(),
  deduplicate_id: z.string().regex(/^\d+:\d+$/),
  name: z.string(),
  description: z.string(),
  state: z.enum(['events', 'build', 'events_queued', 'build_queued', 'finished']),
  progress: z.number().int().nullable(),
  type: z.enum(['dynamic', 'manual']),
  tags: z.array(z.string()).nullable(),
  created_at: z.number().int(),
  updated_at: z.number().int(),
});
const Identifiers = z.object({ email: z.string().nullable(), id: z.string().nullable(), cio_id: z.string().min(1) }).strict();
const Page = z.object({ identifiers: z.array(Identifiers), ids: z.array(z.string()), next: z.string() });
const CustomerAttrs = z.object({
  id: z.string(),
  identifiers: Identifiers,
  attributes: z.record(z.string(), z.string()),
  timestamps: z.record(z.string(), z.number().int()),
  unsubscribed: z.boolean(),
  devices: z.array(z.object({ id: z.string(), platform: z.string() }).passthrough()),
});
const Export = z.object({
  id: z.number().int(),
  user_id: z.number().int(),
  user_email: z.string(),
  total: z.number().int(),
  deduplicate_id: z.string(),
  type: z.enum(['customers', 'deliveries']),
  failed: z.boolean(),
  status: z.enum(['done', 'pending', 'failed']),
  description: z.string(),
  downloads: z.number().int(),
  created_at: z.number().int(),
  updated_at: z.number().int(),
});
const AppError = z.object({ errors: z.array(z.object({ detail: z.string(), status: z.string().regex(/^\d{3}$/) }).passthrough()).min(1) });

const BEARER = 'Bearer sandbox-app-key';
const TRACK_BASIC = `Basic ${Buffer.from('sandbox-site:sandbox-track-key').toString('base64')}`;

let sb: RunningSandbox;
beforeAll(async () => {
  sb = await createSandbox({ retryAfterSeconds: 0, trackRateLimitPerSecond: 100_000, appRateLimitPerSecond: 100_000, seed: 3 });
});
afterAll(async () => {
  await sb.close();
});
beforeEach(() => {
  sb.customerio.reset();
});

interface Res {
  status: number;
  body: unknown;
  text: string;
  headers: Headers;
}

async function app(method: string, path: string, body?: unknown, auth: string | null = BEARER): Promise<Res> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (auth !== null) headers.authorization = auth;
  const res = await fetch(`${sb.urls.customerioApp}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed, text, headers: res.headers };
}

async function identify(id: string, attrs: Record<string, unknown> = {}): Promise<void> {
  const res = await fetch(`${sb.urls.customerioTrack}/api/v1/customers/${encodeURIComponent(id)}`, {
    method: 'PUT',
    headers: { authorization: TRACK_BASIC, 'content-type': 'application/json' },
    body: JSON.stringify(attrs),
  });
  expect(res.status).toBe(200);
}

function expectAppError(r: Res, status: number): z.infer<typeof AppError> {
  expect(r.status).toBe(status);
  const e = AppError.parse(r.body);
  expect(e.errors[0]!.status).toBe(String(status));
  return e;
}

/** Every App route answers 401 without the right bearer token and changes nothing. */
describe.each([
  ['GET', '/v1/segments'],
  ['POST', '/v1/segments'],
  ['GET', '/v1/segments/1'],
  ['DELETE', '/v1/segments/1'],
  ['GET', '/v1/segments/1/customer_count'],
  ['GET', '/v1/segments/1/membership'],
  ['GET', '/v1/customers?email=a@b.com'],
  ['POST', '/v1/customers'],
  ['POST', '/v1/customers/attributes'],
  ['GET', '/v1/customers/1/attributes'],
  ['GET', '/v1/customers/1/segments'],
  ['POST', '/v1/exports/customers'],
  ['GET', '/v1/exports'],
  ['GET', '/v1/exports/1'],
  ['GET', '/v1/exports/1/download'],
])('%s %s auth', (method, path) => {
  it.each([
    ['no credentials', null],
    ['a wrong token', 'Bearer nope'],
    ['the Track Basic credentials', TRACK_BASIC],
  ])('answers 401 to %s', async (_name, auth) => {
    const seg = sb.customerio.seedSegment({ name: 'keep', type: 'manual' });
    const r = await app(method, path.replace('/1', `/${seg.id}`), method === 'GET' || method === 'DELETE' ? undefined : { segment: { name: 'x' } }, auth);
    expectAppError(r, 401);
    expect(sb.customerio.listSegments().map((s) => s.name)).toEqual(['keep']);
  });
});

describe('segments', () => {
  it('creates an empty manual segment with the documented shape', async () => {
    const r = await app('POST', '/v1/segments', { segment: { name: 'VIP', description: 'High value' } });
    expect(r.status).toBe(200);
    const s = z.object({ segment: Segment }).parse(r.body).segment;
    expect(s).toMatchObject({ name: 'VIP', description: 'High value', type: 'manual', state: 'finished', progress: null, tags: null });
    const count = await app('GET', `/v1/segments/${s.id}/customer_count`);
    expect(z.object({ count: z.number().int(), segment_id: z.number().int() }).parse(count.body)).toEqual({ count: 0, segment_id: s.id });
  });

  it.each([
    ['a missing name', { segment: { description: 'x' } }],
    ['an empty name', { segment: { name: '  ' } }],
    ['no segment wrapper', { name: 'VIP' }],
    ['a non-object body', '[]'],
    ['malformed JSON', '{"segment":'],
  ])('refuses %s with 400', async (_name, body) => {
    expectAppError(await app('POST', '/v1/segments', body), 400);
    expect(sb.customerio.listSegments()).toEqual([]);
  });

  it('lists manual and data-driven segments and gets one by id', async () => {
    await identify('1');
    const dyn = sb.customerio.seedSegment({ name: 'Engaged', description: 'built in the UI', memberIds: ['1'], tags: ['ops'] });
    const man = z.object({ segment: Segment }).parse((await app('POST', '/v1/segments', { segment: { name: 'Manual' } })).body).segment;
    const list = z.object({ segments: z.array(Segment) }).parse((await app('GET', '/v1/segments')).body).segments;
    expect(list.map((s) => [s.id, s.type])).toEqual([
      [dyn.id, 'dynamic'],
      [man.id, 'manual'],
    ]);
    const got = z.object({ segment: Segment }).parse((await app('GET', `/v1/segments/${dyn.id}`)).body).segment;
    expect(got).toMatchObject({ name: 'Engaged', type: 'dynamic', tags: ['ops'] });
    expectAppError(await app('GET', '/v1/segments/999'), 404);
    expectAppError(await app('GET', '/v1/segments/abc'), 400);
  });

  it('deletes manual segments with 204 and no body, refuses data-driven ones', async () => {
    const man = z.object({ segment: Segment }).parse((await app('POST', '/v1/segments', { segment: { name: 'Manual' } })).body).segment;
    const dyn = sb.customerio.seedSegment({ name: 'Engaged' });
    const del = await app('DELETE', `/v1/segments/${man.id}`);
    expect(del.status).toBe(204);
    expect(del.text).toBe('');
    expectAppError(await app('GET', `/v1/segments/${man.id}`), 404);
    expectAppError(await app('DELETE', `/v1/segments/${man.id}`), 404);
    expectAppError(await app('DELETE', `/v1/segments/${dyn.id}`), 400);
    expect(sb.customerio.listSegments().map((s) => s.id)).toEqual([dyn.id]);
  });

  it('counts members and answers 404 for a missing segment', async () => {
    await identify('1');
    await identify('2');
    const dyn = sb.customerio.seedSegment({ name: 'Engaged', memberIds: ['1', '2'] });
    expect((await app('GET', `/v1/segments/${dyn.id}/customer_count`)).body).toEqual({ count: 2, segment_id: dyn.id });
    expectAppError(await app('GET', '/v1/segments/999/customer_count'), 404);
  });
});

describe('GET /v1/segments/{id}/membership', () => {
  it('pages through every member exactly once with an opaque cursor, ending with an empty next', async () => {
    for (let i = 0; i < 25; i++) await identify(`p${String(i).padStart(2, '0')}`, { email: `p${i}@x.com` });
    const members = Array.from({ length: 25 }, (_, i) => `p${String(i).padStart(2, '0')}`);
    const seg = sb.customerio.seedSegment({ name: 'All', memberIds: members });
    const seen: string[] = [];
    let start = '';
    let pages = 0;
    do {
      const r = await app('GET', `/v1/segments/${seg.id}/membership?limit=10${start ? `&start=${encodeURIComponent(start)}` : ''}`);
      expect(r.status).toBe(200);
      const page = Page.extend({ segment_id: z.number().int() }).parse(r.body);
      expect(page.ids).toEqual(page.identifiers.map((i) => i.id));
      seen.push(...page.ids);
      start = page.next;
      pages++;
    } while (start !== '' && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual(members);
  });

  it('does not skip or repeat members removed or added between pages', async () => {
    for (let i = 0; i < 6; i++) await identify(`m${i}`);
    const seg = sb.customerio.seedSegment({ name: 'Moving', memberIds: ['m0', 'm1', 'm2', 'm3', 'm4'] });
    const first = Page.parse((await app('GET', `/v1/segments/${seg.id}/membership?limit=2`)).body);
    expect(first.ids).toEqual(['m0', 'm1']);
    sb.customerio.setSegmentMembers(seg.id, ['m1', 'm2', 'm3', 'm4', 'm5']);
    const second = Page.parse((await app('GET', `/v1/segments/${seg.id}/membership?limit=10&start=${first.next}`)).body);
    expect(second.ids).toEqual(['m2', 'm3', 'm4', 'm5']);
    expect(second.next).toBe('');
  });

  it('shows email-only people with an empty string in ids and null id in identifiers', async () => {
    await identify('only@x.com');
    const seg = sb.customerio.seedSegment({ name: 'E', memberIds: ['only@x.com'], idType: 'email' });
    const page = Page.parse((await app('GET', `/v1/segments/${seg.id}/membership`)).body);
    expect(page.ids).toEqual(['']);
    expect(page.identifiers).toEqual([{ email: 'only@x.com', id: null, cio_id: expect.any(String) }]);
  });

  it('defaults to 1000 per page and allows up to 30000', async () => {
    const ids = Array.from({ length: 1001 }, (_, i) => `u${String(i).padStart(4, '0')}`);
    await fetch(`${sb.urls.customerioTrack}/api/v2/batch`, {
      method: 'POST',
      headers: { authorization: TRACK_BASIC, 'content-type': 'application/json' },
      body: JSON.stringify({ batch: ids.map((id) => ({ type: 'person', identifiers: { id }, action: 'identify' })) }),
    });
    const seg = sb.customerio.seedSegment({ name: 'Big', memberIds: ids });
    const def = Page.parse((await app('GET', `/v1/segments/${seg.id}/membership`)).body);
    expect(def.ids).toHaveLength(1000);
    expect(def.next).not.toBe('');
    const max = Page.parse((await app('GET', `/v1/segments/${seg.id}/membership?limit=30000`)).body);
    expect(max.ids).toHaveLength(1001);
    expect(max.next).toBe('');
  });

  it.each([
    ['a limit over 30000', '?limit=30001'],
    ['a zero limit', '?limit=0'],
    ['a non-numeric limit', '?limit=ten'],
    ['a forged cursor', '?start=not-a-cursor'],
  ])('refuses %s with 400', async (_name, query) => {
    const seg = sb.customerio.seedSegment({ name: 'S' });
    expectAppError(await app('GET', `/v1/segments/${seg.id}/membership${query}`), 400);
  });

  it('answers 404 for a missing segment', async () => {
    expectAppError(await app('GET', '/v1/segments/77/membership'), 404);
  });
});

describe('people', () => {
  it('finds people by email, case-insensitively, and answers an empty list otherwise', async () => {
    await identify('1', { email: 'Ann@Example.com' });
    const found = await app('GET', `/v1/customers?email=${encodeURIComponent('ann@example.com')}`);
    expect(z.object({ results: z.array(Identifiers) }).parse(found.body).results).toEqual([
      { email: 'Ann@Example.com', id: '1', cio_id: sb.customerio.getPerson('1')!.cio_id },
    ]);
    expect((await app('GET', '/v1/customers?email=nobody@example.com')).body).toEqual({ results: [] });
    expectAppError(await app('GET', '/v1/customers'), 400);
  });

  it('searches with and/or/not over attributes and segments, paginated', async () => {
    for (let i = 0; i < 7; i++) await identify(`s${i}`, { plan: i % 2 === 0 ? 'pro' : 'free', ...(i < 3 ? { vip: true } : {}) });
    const seg = sb.customerio.seedSegment({ name: 'Seg', memberIds: ['s0', 's1', 's2', 's3', 's4', 's5'] });
    const filter = { and: [{ segment: { id: seg.id } }, { attribute: { field: 'plan', operator: 'eq', value: 'pro' } }, { not: { attribute: { field: 'vip', operator: 'exists' } } }] };
    const first = Page.parse((await app('POST', '/v1/customers?limit=1', { filter })).body);
    expect(first.ids).toEqual(['s4']);
    expect(first.next).toBe('');
    const all = Page.parse((await app('POST', '/v1/customers?limit=2', { filter: { attribute: { field: 'plan', operator: 'eq', value: 'pro' } } })).body);
    expect(all.ids).toEqual(['s0', 's2']);
    const rest = Page.parse((await app('POST', `/v1/customers?limit=2&start=${all.next}`, { filter: { attribute: { field: 'plan', operator: 'eq', value: 'pro' } } })).body);
    expect(rest.ids).toEqual(['s4', 's6']);
  });

  it.each([
    ['no filter', {}, ''],
    ['a filter with two top-level keys', { filter: { and: [{ segment: { id: 1 } }], or: [{ segment: { id: 1 } }] } }, ''],
    ['eq without a value', { filter: { attribute: { field: 'plan', operator: 'eq' } } }, ''],
    ['a limit over 1000', { filter: { segment: { id: 1 } } }, '?limit=1001'],
  ])('refuses a search with %s', async (_name, body, query) => {
    expectAppError(await app('POST', `/v1/customers${query}`, body), 400);
  });

  it('returns attributes as strings with timestamps, for up to 100 ids, omitting unknown ones', async () => {
    await identify('1', { email: 'a@x.com', seats: 3, vip: true, unsubscribed: true });
    await identify('2', {});
    const r = await app('POST', '/v1/customers/attributes', { ids: ['1', 'ghost', '2'] });
    expect(r.status).toBe(200);
    const customers = z.object({ customers: z.array(z.object({ customer: CustomerAttrs })) }).parse(r.body).customers;
    expect(customers.map((c) => c.customer.id)).toEqual(['1', '2']);
    expect(customers[0]!.customer).toMatchObject({
      attributes: { seats: '3', vip: 'true', unsubscribed: 'true', id: '1', email: 'a@x.com' },
      unsubscribed: true,
    });
    expectAppError(await app('POST', '/v1/customers/attributes', { ids: Array.from({ length: 101 }, (_, i) => `${i}`) }), 400);
    expectAppError(await app('POST', '/v1/customers/attributes', { ids: [] }), 400);
  });

  it('looks up one customer by id, email or cio_id', async () => {
    await identify('1', { email: 'a@x.com', plan: 'pro' });
    const cio = sb.customerio.getPerson('1')!.cio_id;
    for (const path of ['/v1/customers/1/attributes', `/v1/customers/${encodeURIComponent('a@x.com')}/attributes?id_type=email`, `/v1/customers/${cio}/attributes?id_type=cio_id`]) {
      const r = await app('GET', path);
      expect(r.status).toBe(200);
      const c = z.object({ customer: CustomerAttrs }).parse(r.body).customer;
      expect(c.attributes).toMatchObject({ plan: 'pro', cio_id: cio });
      expect(Object.keys(c.timestamps)).toEqual(expect.arrayContaining(['plan', 'id', 'email', 'cio_id']));
    }
    expectAppError(await app('GET', '/v1/customers/404/attributes'), 404);
    expectAppError(await app('GET', '/v1/customers/1/attributes?id_type=phone'), 400);
    expectAppError(await app('GET', '/v1/customers/1/attributes?id_type=nickname'), 400);
  });

  it("lists a customer's segments", async () => {
    await identify('1');
    const a = sb.customerio.seedSegment({ name: 'A', memberIds: ['1'] });
    sb.customerio.seedSegment({ name: 'B' });
    const r = await app('GET', '/v1/customers/1/segments');
    expect(z.object({ segments: z.array(Segment) }).parse(r.body).segments.map((s) => s.id)).toEqual([a.id]);
    expectAppError(await app('GET', '/v1/customers/nobody/segments'), 404);
    expectAppError(await app('GET', '/v1/customers/1/segments?id_type=phone'), 400);
  });
});

describe('exports', () => {
  it('answers {"exports": null} before any export exists', async () => {
    expect((await app('GET', '/v1/exports')).body).toEqual({ exports: null });
  });

  it('exports the people a filter matches as a downloadable CSV', async () => {
    await identify('1', { email: 'a@x.com', plan: 'pro', note: 'has, comma' });
    await identify('2', { plan: 'free' });
    await identify('3', { plan: 'pro', city: 'Oslo' });
    const created = await app('POST', '/v1/exports/customers', { filters: { attribute: { field: 'plan', operator: 'eq', value: 'pro' } } });
    expect(created.status).toBe(200);
    const e = z.object({ export: Export }).parse(created.body).export;
    expect(e).toMatchObject({ type: 'customers', status: 'pending', total: 0, failed: false });

    const done = z.object({ export: Export }).parse((await app('GET', `/v1/exports/${e.id}`)).body).export;
    expect(done).toMatchObject({ status: 'done', total: 2 });
    expect(z.object({ exports: z.array(Export) }).parse((await app('GET', '/v1/exports')).body).exports.map((x) => x.id)).toEqual([e.id]);

    const link = z.object({ url: z.string().url() }).parse((await app('GET', `/v1/exports/${e.id}/download`)).body).url;
    expect(link.startsWith(sb.urls.customerioApp)).toBe(true);
    const file = await fetch(link);
    expect(file.status).toBe(200);
    expect(file.headers.get('content-type')).toContain('text/csv');
    const rows = parseCsv(await file.text(), { columns: true }) as Array<Record<string, string>>;
    expect(rows).toEqual([
      { cio_id: sb.customerio.getPerson('1')!.cio_id, id: '1', email: 'a@x.com', city: '', note: 'has, comma', plan: 'pro' },
      { cio_id: sb.customerio.getPerson('3')!.cio_id, id: '3', email: '', city: 'Oslo', note: '', plan: 'pro' },
    ]);
    expect(z.object({ export: Export }).parse((await app('GET', `/v1/exports/${e.id}`)).body).export.downloads).toBe(1);
  });

  it('is point-in-time: later changes do not alter an export', async () => {
    await identify('1', { plan: 'pro' });
    const e = z.object({ export: Export }).parse((await app('POST', '/v1/exports/customers', { filters: { attribute: { field: 'plan', operator: 'exists' } } })).body).export;
    await identify('2', { plan: 'pro' });
    const link = z.object({ url: z.string() }).parse((await app('GET', `/v1/exports/${e.id}/download`)).body).url;
    const rows = parseCsv(await (await fetch(link)).text(), { columns: true }) as unknown[];
    expect(rows).toHaveLength(1);
  });

  it.each([
    ['the singular "filter" key', { filter: { segment: { id: 1 } } }, 'filters'],
    ['no filters', {}, 'filters'],
    ['an invalid filter', { filters: { attribute: { field: 'x', operator: 'gt', value: '1' } } }, 'operator'],
  ])('refuses an export with %s', async (_name, body, message) => {
    const err = expectAppError(await app('POST', '/v1/exports/customers', body), 400);
    expect(err.errors[0]!.detail).toContain(message);
    expect((await app('GET', '/v1/exports')).body).toEqual({ exports: null });
  });

  it('answers 404 for unknown exports and download tokens', async () => {
    expectAppError(await app('GET', '/v1/exports/5'), 404);
    expectAppError(await app('GET', '/v1/exports/5/download'), 404);
    expect((await fetch(`${sb.urls.customerioApp}/sandbox-files/exports/0123456789abcdef`)).status).toBe(404);
  });
});

describe('segments seeded from sandbox options', () => {
  it('starts with the configured data-driven segments and their members', async () => {
    const seeded = await createSandbox({
      customerioSegments: [{ name: 'Engaged 30d', description: 'built in the UI', memberIds: ['u1', 'u2'] }, { name: 'Churn risk', type: 'dynamic' }],
    });
    try {
      const res = await fetch(`${seeded.urls.customerioApp}/v1/segments`, { headers: { authorization: BEARER } });
      const list = z.object({ segments: z.array(Segment) }).parse(await res.json()).segments;
      expect(list.map((s) => [s.name, s.type])).toEqual([
        ['Engaged 30d', 'dynamic'],
        ['Churn risk', 'dynamic'],
      ]);
      const members = await fetch(`${seeded.urls.customerioApp}/v1/segments/${list[0]!.id}/membership`, { headers: { authorization: BEARER } });
      expect(Page.parse(await members.json()).ids).toEqual(['u1', 'u2']);
    } finally {
      await seeded.close();
    }
  });
});

describe('App rate limit over HTTP', () => {
  it('answers 429 with Retry-After and the documented body beyond 10 requests per second', async () => {
    const limited = await createSandbox({ retryAfterSeconds: 0 });
    try {
      // Concurrent, so they all land inside one second even on a slow machine.
      const results = await Promise.all(
        Array.from({ length: 30 }, () => fetch(`${limited.urls.customerioApp}/v1/segments`, { headers: { authorization: BEARER } })),
      );
      const ok = results.filter((r) => r.status === 200);
      const limitedOnes = results.filter((r) => r.status === 429);
      expect(ok.length).toBeGreaterThanOrEqual(10);
      expect(limitedOnes.length).toBeGreaterThan(0);
      for (const r of limitedOnes) {
        expect(r.headers.get('retry-after')).toBe('0');
        const body = AppError.parse(await r.json());
        expect(body.errors[0]).toMatchObject({ status: '429', detail: expect.stringMatching(/^rate limited to 10 requests per 1s \(reference [0-9a-f]+\)$/) });
      }
    } finally {
      await limited.close();
    }
  });
});

describe('App behaviour driven by a controlled clock (in process)', () => {
  const req = (method: string, path: string, body?: unknown) => ({
    method,
    url: new URL(`http://127.0.0.1:9${path}`),
    headers: { authorization: BEARER, 'content-type': 'application/json' },
    body: Buffer.from(body === undefined ? '' : JSON.stringify(body)),
  });

  it('admits exactly 10 requests per second and says when to come back', async () => {
    let now = Date.UTC(2026, 0, 1);
    const emu = createCustomerioEmulator({ siteId: 's', trackApiKey: 't', appApiKey: 'sandbox-app-key', retryAfterSeconds: 1, clock: { now: () => new Date(now) } });
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) statuses.push((await emu.app.handle(req('GET', '/v1/segments'), {})).status);
    expect(statuses).toEqual([...Array(10).fill(200), 429]);
    const limited = await emu.app.handle(req('GET', '/v1/segments'), {});
    expect(limited.headers?.['retry-after']).toBe('1');
    now += 1000;
    expect((await emu.app.handle(req('GET', '/v1/segments'), {})).status).toBe(200);
  });

  it('expires export download links after 15 minutes and keeps exports pending until ready', async () => {
    let now = Date.UTC(2026, 0, 1);
    const emu = createCustomerioEmulator({
      siteId: 's',
      trackApiKey: 't',
      appApiKey: 'sandbox-app-key',
      appRateLimitPerSecond: 1000,
      exportReadyAfterMs: 5000,
      clock: { now: () => new Date(now) },
    });
    const created = (await emu.app.handle(req('POST', '/v1/exports/customers', { filters: { segment: { id: 1 } } }), {})).json as { export: { id: number } };
    expect((await emu.app.handle(req('GET', `/v1/exports/${created.export.id}/download`), {})).status).toBe(400);
    expect(((await emu.app.handle(req('GET', `/v1/exports/${created.export.id}`), {})).json as { export: { status: string } }).export.status).toBe('pending');
    now += 5000;
    const link = (await emu.app.handle(req('GET', `/v1/exports/${created.export.id}/download`), {})).json as { url: string };
    const path = new URL(link.url).pathname;
    expect((await emu.app.handle(req('GET', path), {})).status).toBe(200);
    now += 15 * 60 * 1000;
    expect((await emu.app.handle(req('GET', path), {})).status).toBe(403);
  });
});
