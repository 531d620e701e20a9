import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError } from '../errors.ts';
import { LimiterRegistry } from '../http/rate-limiter.ts';
import { ManualTimer } from '../http/timer.ts';
import { checkAudienceFilter } from './app-api.ts';
import { CustomerioClient, customerioConfigFromEnv, type V2Entry } from './client.ts';
import { describeCustomerioError } from './errors.ts';
import { isIdempotentEntry, serialiseEntry, V2_BATCH_LIMIT_BYTES } from './v2-batch.ts';

interface Seen {
  method: string;
  url: string;
  body: unknown;
  authorization: string | undefined;
}

type Handler = (req: IncomingMessage, body: unknown, res: ServerResponse) => void;

let server: Server;
let base: string;
let seen: Seen[] = [];
/** Each request's body as it came, for comparing bodies byte for byte. */
let rawBodies: string[] = [];
let handler: Handler = (_req, _body, res) => reply(res, 200, {});

function reply(res: ServerResponse, status: number, body?: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(body === undefined ? '' : JSON.stringify(body));
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const body: unknown = text ? JSON.parse(text) : undefined;
      seen.push({ method: req.method!, url: req.url!, body, authorization: req.headers.authorization });
      rawBodies.push(text);
      handler(req, body, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

afterEach(() => {
  seen = [];
  handler = (_req, _body, res) => reply(res, 200, {});
});

function client(): CustomerioClient {
  const timer = new ManualTimer(Date.parse('2030-01-01T00:00:00Z'));
  return new CustomerioClient({
    region: 'us',
    siteId: 'site-1',
    trackApiKey: 'track-key-abcdef',
    appApiKey: 'app-key-abcdef',
    trackUrl: base,
    appUrl: base,
    timer,
    random: () => 0,
    limiters: new LimiterRegistry(timer),
    trackRatePerSecond: 1000,
    appRatePerSecond: 1000,
  });
}

const person = (id: string, extra: Record<string, unknown> = {}): V2Entry => ({
  type: 'person',
  identifiers: { id },
  action: 'identify',
  attributes: extra,
});

describe('Track v1', () => {
  it('identifies with Basic auth on the encoded path and appends /api/v1 to the host base', async () => {
    await client().identify('a@b.com', { plan: 'pro' });
    expect(seen).toEqual([
      {
        method: 'PUT',
        url: '/api/v1/customers/a%40b.com',
        body: { plan: 'pro' },
        authorization: `Basic ${Buffer.from('site-1:track-key-abcdef').toString('base64')}`,
      },
    ]);
  });

  it('refuses an event without an id unless asked to generate one', async () => {
    const c = client();
    await expect(c.trackEvent('42', { name: 'order_placed' })).rejects.toMatchObject({ code: 'invalid_request', attempts: 0 });
    expect(seen).toHaveLength(0);
    const { id } = await c.trackEvent('42', { name: 'order_placed', data: { n: 1 } }, { generateId: true });
    expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(seen[0]!.body).toEqual({ name: 'order_placed', data: { n: 1 }, id });
    const given = await c.trackEvent('42', { name: 'x', id: '01HZZZZZZZZZZZZZZZZZZZZZZZ' });
    expect(given.id).toBe('01HZZZZZZZZZZZZZZZZZZZZZZZ');
    await expect(c.trackEvent('42', { name: 'x', id: 'order-17' })).rejects.toMatchObject({ code: 'invalid_request' });
  });

  it('retries an event after a dropped connection, because it carries a dedupe id', async () => {
    let n = 0;
    handler = (req, _body, res) => (++n === 1 ? req.socket.destroy() : reply(res, 200, {}));
    await client().trackEvent('42', { name: 'x', id: '01HZZZZZZZZZZZZZZZZZZZZZZ1' });
    expect(seen).toHaveLength(2);
    expect(seen.map((s) => (s.body as { id: string }).id)).toEqual(['01HZZZZZZZZZZZZZZZZZZZZZZ1', '01HZZZZZZZZZZZZZZZZZZZZZZ1']);
  });

  it('adds segment members in chunks of 1000, deduplicated, with id_type only when given', async () => {
    const ids = Array.from({ length: 2500 }, (_, i) => `p${i}`);
    const out = await client().addToSegment(7, [...ids, 'p1', 'p2'], 'id');
    expect(out.requests).toBe(3);
    expect(seen.map((s) => s.url)).toEqual(Array(3).fill('/api/v1/segments/7/add_customers?id_type=id'));
    expect(seen.map((s) => (s.body as { ids: string[] }).ids.length)).toEqual([1000, 1000, 500]);
    seen = [];
    await client().removeFromSegment(7, ['p1']);
    expect(seen[0]!.url).toBe('/api/v1/segments/7/remove_customers');
  });

  it('maps a v1 400 body into the error', async () => {
    handler = (_req, _body, res) => reply(res, 400, { meta: { errors: ['attribute name too long'] } });
    const err = (await client().identify('1', { x: 1 }).catch((e: unknown) => e)) as ProviderError;
    expect(err.status).toBe(400);
    expect(err.message).toContain('attribute name too long');
    expect(err.operation).toBe('track.identify');
  });
});

describe('Track v2 batches', () => {
  it('rejects an oversize entry locally and maps 207 failures to the caller indexes', async () => {
    handler = (_req, body, res) => {
      const batch = (body as { batch: V2Entry[] }).batch;
      const bad = batch.findIndex((e) => (e.identifiers as { id?: string }).id === 'bad');
      if (bad < 0) reply(res, 200, {});
      else reply(res, 207, { errors: [{ batch_index: bad, reason: 'invalid', field: 'identifiers', message: 'nope' }] });
    };
    const entries = [person('a'), person('huge', { blob: 'x'.repeat(40_000) }), person('bad'), person('c')];
    const out = await client().batch(entries);
    expect(seen).toHaveLength(1);
    expect((seen[0]!.body as { batch: unknown[] }).batch).toHaveLength(3);
    expect(out.results).toEqual([
      { index: 0, ok: true },
      expect.objectContaining({ index: 1, ok: false, reason: 'entry_too_large', retryable: false }),
      { index: 2, ok: false, reason: 'invalid', field: 'identifiers', message: 'nope', retryable: false },
      { index: 3, ok: true },
    ]);
    expect(out.accepted).toBe(2);
    expect(out.rejected).toBe(2);
  });

  it('packs entries greedily under the 500 kb limit, in order', async () => {
    const entries = Array.from({ length: 40 }, (_, i) => person(`p${i}`, { blob: 'y'.repeat(30_000) }));
    const out = await client().sendBatches(entries);
    expect(out.accepted).toBe(40);
    const sizes = seen.map((s) => Buffer.byteLength(JSON.stringify(s.body)));
    expect(sizes.every((s) => s <= V2_BATCH_LIMIT_BYTES)).toBe(true);
    // Each entry is ~30 kb, so 16 fit into 500 kb: 16 + 16 + 8.
    expect(seen.map((s) => (s.body as { batch: unknown[] }).batch.length)).toEqual([16, 16, 8]);
    const order = seen.flatMap((s) => (s.body as { batch: V2Entry[] }).batch.map((e) => (e.identifiers as { id: string }).id));
    expect(order).toEqual(entries.map((e) => (e.identifiers as { id: string }).id));
  });

  it('isolates an entry that makes the whole batch fail with 400 by bisecting', async () => {
    handler = (_req, body, res) => {
      const batch = (body as { batch: V2Entry[] }).batch;
      if (batch.some((e) => (e.identifiers as { id?: string }).id === 'poison')) reply(res, 400, { errors: [{ reason: 'malformed', message: 'bad request' }] });
      else reply(res, 200, {});
    };
    const entries = ['a', 'b', 'c', 'poison', 'd', 'e', 'f', 'g'].map((id) => person(id));
    const out = await client().sendBatches(entries);
    expect(out.results.filter((r) => !r.ok).map((r) => r.index)).toEqual([3]);
    expect(out.results[3]).toMatchObject({ reason: 'batch_rejected', retryable: false });
    expect(out.accepted).toBe(7);
  });

  it('stops at a transport failure and reports what is unknown and what was not sent', async () => {
    let n = 0;
    handler = (req, _body, res) => (++n === 1 ? reply(res, 200, {}) : req.socket.destroy());
    const entries: V2Entry[] = [
      ...Array.from({ length: 20 }, (_, i) => person(`p${i}`, { blob: 'z'.repeat(30_000) })),
      { type: 'person', identifiers: { id: 'q' }, action: 'event', name: 'no_id_event' },
    ];
    const out = await client().sendBatches(entries, { maxEntriesPerBatch: 10 });
    // batch 1 ok; batch 2 dropped every attempt (idempotent, so retried) and gave up; batch 3 not sent.
    expect(out.results.slice(0, 10).every((r) => r.ok)).toBe(true);
    expect(out.results.slice(10, 20).every((r) => r.reason === 'unknown_outcome' && r.retryable === true)).toBe(true);
    expect(out.results[20]).toMatchObject({ ok: false, reason: 'not_sent', retryable: true });
  });

  it('sends entries serialised beforehand (sendSerialised) exactly as sendBatches sends the entries: same requests, same results', async () => {
    let n = 0;
    // A batch refused as a whole and one answered 207: bisection and the mapping of results back use the serialised entries.
    handler = (_req, body, res) => {
      n++;
      const batch = (body as { batch: V2Entry[] }).batch;
      if (batch.some((e) => (e.identifiers as { id?: string }).id === 'poison')) return reply(res, 400, { errors: [{ reason: 'malformed', message: 'bad' }] });
      if (batch.some((e) => (e.identifiers as { id?: string }).id === 'q7')) return reply(res, 207, { errors: [{ batch_index: 0, reason: 'internal', message: 'try later' }] });
      reply(res, 200, {});
    };
    const entries: V2Entry[] = [
      ...['a', 'poison', 'b', 'é🙂'].map((id) => person(id, { note: 'z'.repeat(20_000), quote: '"\\\u2028' })),
      { type: 'person', identifiers: { id: 'q7' }, action: 'event', name: 'ordered', id: 'evt-1' },
      ...Array.from({ length: 6 }, (_, i) => person(`p${i}`, { blob: 'y'.repeat(30_000) })),
      { type: 'person', identifiers: { id: 'q' }, action: 'event', name: 'no_id_event' },
    ];
    rawBodies = [];
    const viaEntries = await client().sendBatches(entries, { maxEntriesPerBatch: 3 });
    const requestsA = rawBodies;
    // As text, as UTF-8 bytes (what the sync's workers hand over), and mixed: byte for byte the same bodies.
    const bytes = (e: ReturnType<typeof serialiseEntry>) => ({ ...e, text: new Uint8Array(Buffer.from(e.text as string, 'utf8')) });
    const forms = {
      texts: entries.map(serialiseEntry),
      bytes: entries.map(serialiseEntry).map(bytes),
      mixed: entries.map(serialiseEntry).map((e, i) => (i % 2 === 0 ? bytes(e) : e)),
    };
    for (const [form, serialised] of Object.entries(forms)) {
      rawBodies = [];
      n = 0;
      const via = await client().sendSerialised(serialised, { maxEntriesPerBatch: 3 });
      expect(rawBodies, form).toEqual(requestsA);
      expect(via, form).toEqual(viaEntries);
      expect(via.results.filter((r) => !r.ok).map((r) => [r.index, r.reason, r.retryable])).toEqual([
        [1, 'batch_rejected', false],
        [3, 'internal', true],
      ]);
    }
  });

  it('classifies entry idempotency', () => {
    expect(isIdempotentEntry(person('a'))).toBe(true);
    expect(isIdempotentEntry({ type: 'person', action: 'event', identifiers: { id: 'a' }, name: 'n', id: 'ulid' })).toBe(true);
    expect(isIdempotentEntry({ type: 'person', action: 'event', identifiers: { id: 'a' }, name: 'n' })).toBe(false);
    expect(isIdempotentEntry({ type: 'person', action: 'merge', primary: { id: 'a' }, secondary: { id: 'b' } })).toBe(false);
  });
});

describe('App API', () => {
  it('uses Bearer auth, appends /v1, and treats 404 as absent', async () => {
    handler = (_req, _body, res) => reply(res, 404, { errors: [{ detail: 'not found', status: '404' }] });
    expect(await client().getSegment(5)).toBeUndefined();
    expect(seen[0]).toMatchObject({ method: 'GET', url: '/v1/segments/5', authorization: 'Bearer app-key-abcdef' });
  });

  it('follows membership cursors until next is empty', async () => {
    handler = (req, _body, res) => {
      const start = new URL(req.url!, base).searchParams.get('start');
      if (!start) reply(res, 200, { identifiers: [{ id: '1', email: null, cio_id: 'c1' }], ids: ['1'], next: 'abc' });
      else if (start === 'abc') reply(res, 200, { identifiers: [{ id: '2', email: 'x@y.z', cio_id: 'c2' }], ids: ['2'], next: 7 });
      else reply(res, 200, { identifiers: [], ids: [], next: '' });
    };
    const pages = [];
    for await (const page of client().segmentMembership(3, { pageSize: 2 })) pages.push(page);
    expect(pages.map((p) => p.ids)).toEqual([['1'], ['2'], []]);
    expect(pages[1]!.identifiers[0]).toEqual({ id: '2', email: 'x@y.z', cio_id: 'c2' });
    expect(seen.map((s) => s.url)).toEqual([
      '/v1/segments/3/membership?limit=2',
      '/v1/segments/3/membership?start=abc&limit=2',
      '/v1/segments/3/membership?start=7&limit=2',
    ]);
  });

  it('segmentMembers yields identifiers per page, and names the members of a page that carries only ids', async () => {
    handler = (req, _body, res) => {
      const start = new URL(req.url!, base).searchParams.get('start');
      if (!start) reply(res, 200, { identifiers: [{ id: '1', email: 'a@b.c', cio_id: 'c1' }, { email: 'n@b.c', cio_id: 'c9' }], ids: ['1', ''], next: 'p2' });
      else reply(res, 200, { ids: ['2', ''], next: '' });
    };
    const pages = [];
    for await (const page of client().segmentMembers(3)) pages.push(page);
    expect(pages).toEqual([
      [
        { id: '1', email: 'a@b.c', cio_id: 'c1' },
        { id: null, email: 'n@b.c', cio_id: 'c9' },
      ],
      [
        { id: '2', email: null, cio_id: null },
        { id: null, email: null, cio_id: null },
      ],
    ]);
    expect(seen.map((s) => s.url)).toEqual(['/v1/segments/3/membership?limit=1000', '/v1/segments/3/membership?start=p2&limit=1000']);
  });

  it('refuses a cursor that repeats', async () => {
    handler = (_req, _body, res) => reply(res, 200, { identifiers: [], ids: [], next: 'same' });
    const iterate = async (): Promise<void> => {
      for await (const _ of client().segmentMembership(3)) void _;
    };
    await expect(iterate()).rejects.toMatchObject({ code: 'invalid_response' });
  });

  it('does not retry createSegment after a dropped connection', async () => {
    handler = (req) => req.socket.destroy();
    const err = (await client().createSegment({ name: 'VIP' }).catch((e: unknown) => e)) as ProviderError;
    expect(seen).toHaveLength(1);
    expect(err.outcome).toBe('unknown');
    expect(err.retryable).toBe(false);
  });

  it('reports a response that breaks the documented shape with its path', async () => {
    handler = (_req, _body, res) => reply(res, 200, { segments: [{ id: 'not-a-number', name: 'x' }] });
    await expect(client().listSegments()).rejects.toMatchObject({ code: 'invalid_response', message: expect.stringContaining('0.id') });
  });

  it('reads {"exports": null} as no exports and downloads without credentials', async () => {
    handler = (req, _body, res) => {
      if (req.url === '/v1/exports') reply(res, 200, { exports: null });
      else if (req.url === '/v1/exports/9/download') reply(res, 200, { url: `${base}/signed/file.csv?sig=1` });
      else {
        res.writeHead(200, { 'content-type': 'text/csv' });
        res.end('id,email\n1,a@b.c\n');
      }
    };
    const c = client();
    expect(await c.listExports()).toEqual([]);
    expect(await c.downloadExportText(9)).toBe('id,email\n1,a@b.c\n');
    expect(seen[2]).toMatchObject({ url: '/signed/file.csv?sig=1', authorization: undefined });
  });

  it('fails clearly without an App API key', async () => {
    const c = new CustomerioClient({ region: 'us', siteId: 's', trackApiKey: 'track-key-xyz', trackUrl: base });
    await expect(c.listSegments()).rejects.toMatchObject({ code: 'invalid_config' });
  });
});

describe('configuration', () => {
  it('reads the environment, with host overrides and region hosts', () => {
    const cfg = customerioConfigFromEnv({
      CUSTOMERIO_REGION: 'eu',
      CUSTOMERIO_SITE_ID: 's',
      CUSTOMERIO_TRACK_API_KEY: 'tk-123456',
      CUSTOMERIO_APP_API_KEY: 'ak-123456',
    });
    const c = new CustomerioClient(cfg);
    expect(c.track.baseUrl).toBe('https://track-eu.customer.io');
    expect(c.app?.baseUrl).toBe('https://api-eu.customer.io');
    const local = new CustomerioClient(
      customerioConfigFromEnv({
        CUSTOMERIO_SITE_ID: 's',
        CUSTOMERIO_TRACK_API_KEY: 'tk-123456',
        CUSTOMERIO_TRACK_URL: 'http://127.0.0.1:4010/api/v1',
        CUSTOMERIO_APP_URL: 'http://127.0.0.1:4010/',
      }),
    );
    expect(local.track.baseUrl).toBe('http://127.0.0.1:4010');
    expect(local.app).toBeUndefined();
  });

  it('names missing variables without echoing values', () => {
    expect(() => customerioConfigFromEnv({ CUSTOMERIO_SITE_ID: 's' })).toThrow(/CUSTOMERIO_TRACK_API_KEY/);
    expect(() => customerioConfigFromEnv({ CUSTOMERIO_SITE_ID: 's', CUSTOMERIO_TRACK_API_KEY: 'k-1234', CUSTOMERIO_REGION: 'mars' })).toThrow(/us" or "eu/);
  });
});

describe('helpers', () => {
  it('describes every Customer.io error body shape', () => {
    expect(describeCustomerioError(400, { meta: { error: 'cannot have multiple identifiers' } }, '')).toEqual({ message: 'cannot have multiple identifiers' });
    expect(describeCustomerioError(429, { errors: [{ detail: 'rate limited to 10 requests per 1s (reference a1b2c3)', status: '429', code: 'rate_limited' }] }, '')).toEqual({
      message: 'rate limited to 10 requests per 1s (reference a1b2c3)',
      requestId: 'a1b2c3',
      code: 'rate_limited',
    });
    expect(describeCustomerioError(400, { errors: [{ reason: 'required', field: 'identifiers', message: 'missing' }] }, '')).toEqual({
      message: 'identifiers: missing (required)',
    });
    expect(describeCustomerioError(404, 'Segment not found', '')).toEqual({ message: 'Segment not found' });
  });

  it('checks audience filters locally', () => {
    expect(checkAudienceFilter({ and: [{ segment: { id: 1 } }, { not: { attribute: { field: 'x', operator: 'exists' } } }] }, 'filter')).toBeUndefined();
    expect(checkAudienceFilter({ segment: { id: 1 }, attribute: { field: 'x', operator: 'exists' } }, 'filter')).toMatch(/exactly one/);
    expect(checkAudienceFilter({ attribute: { field: 'x', operator: 'eq' } }, 'filter')).toMatch(/value is required/);
    expect(checkAudienceFilter({ attribute: { field: 'x', operator: 'gt', value: '1' } }, 'filter')).toMatch(/operator/);
  });
});
