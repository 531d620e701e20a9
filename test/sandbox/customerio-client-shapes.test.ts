/**
 * Drives the sandbox exactly the way the official customerio-node 5.x SDK talks to Customer.io (REFERENCE.md
 * §8), with plain fetch: base URLs ending in /api/v1 and /v1, lowercased header names, `Content-Type:
 * application/json` on every request including GET and DELETE, a `User-Agent`, `{}` bodies on put/post without
 * data, `encodeURIComponent` path values, query strings only for set values, and its retry rule (honour
 * Retry-After on 429). An independent client must not be able to tell the sandbox from the service.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createSandbox, type RunningSandbox } from '../../reconciler/sandbox/index.ts';

let sb: RunningSandbox;
beforeAll(async () => {
  sb = await createSandbox({ retryAfterSeconds: 0, appRateLimitPerSecond: 100_000, seed: 11 });
});
afterAll(async () => {
  await sb.close();
});
beforeEach(() => {
  sb.customerio.reset();
  sb.faults.clear();
});

/** What customerio-node does in `lib/request.ts`, reduced to the wire behaviour. */
class SdkLikeClient {
  readonly sent: Array<{ method: string; url: string; headers: Record<string, string>; body: string | undefined }> = [];
  constructor(
    private readonly root: string,
    private readonly authorization: string,
  ) {}

  async request(method: 'GET' | 'PUT' | 'POST' | 'DELETE', path: string, data?: unknown): Promise<{ status: number; body: unknown }> {
    const headers: Record<string, string> = {
      authorization: this.authorization,
      'content-type': 'application/json',
      'user-agent': 'Customer.io Node Client/5.2.0',
    };
    // put/post always send JSON, `{}` when no data is given; get/destroy send none.
    const body = method === 'PUT' || method === 'POST' ? JSON.stringify(data ?? {}) : undefined;
    if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) headers['x-retry-count'] = String(attempt);
      const url = `${this.root}${path}`;
      this.sent.push({ method, url, headers: { ...headers }, body });
      const res = await fetch(url, { method, headers, ...(body !== undefined ? { body } : {}), redirect: 'manual' });
      const text = await res.text();
      if ((res.status === 429 || res.status >= 500) && attempt < 3) {
        const after = Number(res.headers.get('retry-after') ?? '0');
        await new Promise((r) => setTimeout(r, after * 1000));
        continue;
      }
      // Empty 2xx body parses as {} (the SDK does the same); non-JSON throws.
      return { status: res.status, body: text === '' ? {} : JSON.parse(text) };
    }
  }
}

/** customerio-node's buildQueryString: skips null, undefined and '' and encodes keys and values. */
function qs(params: Record<string, string | number | undefined | null>): string {
  const parts = Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  return parts.length > 0 ? `?${parts.join('&')}` : '';
}

const enc = encodeURIComponent;

describe('a client that speaks like customerio-node', () => {
  it('runs identify, track, segment membership, batch and region through the Track root', async () => {
    const T = `${sb.env.CUSTOMERIO_TRACK_URL}/api/v1`;
    const T2 = T.replace('/api/v1', '/api/v2');
    const auth = `Basic ${Buffer.from(`${sb.env.CUSTOMERIO_SITE_ID}:${sb.env.CUSTOMERIO_TRACK_API_KEY}`).toString('base64')}`;
    const track = new SdkLikeClient(T, auth);
    const v2 = new SdkLikeClient(T2, auth);
    const api = new SdkLikeClient(`${sb.env.CUSTOMERIO_APP_URL}/v1`, `Bearer ${sb.env.CUSTOMERIO_APP_API_KEY}`);

    expect(await track.request('PUT', `/customers/${enc('jane@example.com')}`, { first_name: 'Jane', created_at: 1_700_000_000 })).toEqual({ status: 200, body: {} });
    expect((await track.request('POST', `/customers/${enc('jane@example.com')}/events`, { name: 'purchase', data: { price: 10 } })).status).toBe(200);
    expect((await track.request('POST', `/customers/${enc('jane@example.com')}/events`, { type: 'page', name: '/pricing' })).status).toBe(200);
    expect((await track.request('POST', `/customers/${enc('jane@example.com')}/suppress`)).status).toBe(200);
    expect((await track.request('POST', `/customers/${enc('jane@example.com')}/unsuppress`)).status).toBe(200);
    expect(await v2.request('POST', '/batch', { batch: [{ type: 'person', identifiers: { id: '42' }, action: 'identify', attributes: { plan: 'premium' } }] })).toEqual({ status: 200, body: {} });

    const created = await api.request('POST', '/segments', { segment: { name: 'Manual', description: 'made by a client' } });
    const segId = z.object({ segment: z.object({ id: z.number() }) }).parse(created.body).segment.id;
    // addCustomersToSegment without idType sends no query string at all.
    expect((await track.request('POST', `/segments/${enc(String(segId))}/add_customers${qs({ id_type: undefined })}`, { ids: ['42'] })).status).toBe(200);
    const membership = await api.request('GET', `/segments/${enc(String(segId))}/membership${qs({ start: undefined, limit: undefined })}`);
    expect(membership.body).toMatchObject({ ids: ['42'], next: '' });

    const region = await track.request('GET', '/accounts/region');
    expect(region.body).toMatchObject({ region: 'us', url: sb.env.CUSTOMERIO_TRACK_URL });
    // getAttributes always sends id_type (default "id").
    const attrs = await api.request('GET', `/customers/${enc('42')}/attributes?id_type=id`);
    expect(attrs.body).toMatchObject({ customer: { attributes: { plan: 'premium' } } });
    const byEmail = await api.request('GET', `/customers?email=${enc('jane@example.com')}`);
    expect(byEmail.body).toEqual({ results: [] }); // suppress deleted Jane
    // deleteSegment: GET-style request with Content-Type and no body; 5.x resolves any 2xx, 204 → {}.
    expect(await api.request('DELETE', `/segments/${enc(String(segId))}`)).toEqual({ status: 204, body: {} });

    for (const s of [...track.sent, ...api.sent]) {
      expect(Object.keys(s.headers).every((h) => h === h.toLowerCase())).toBe(true);
    }
    expect(sb.customerio.getPerson('jane@example.com')).toBeUndefined();
    expect(sb.customerio.getPerson('42')!.attributes).toEqual({ plan: 'premium' });
  });

  it('retries a 429 storm by honouring Retry-After, and the write lands once', async () => {
    sb.faults.set({ storm429: { count: 2, retryAfterSeconds: 0 }, service: 'track' });
    const T = `${sb.env.CUSTOMERIO_TRACK_URL}/api/v1`;
    const auth = `Basic ${Buffer.from('sandbox-site:sandbox-track-key').toString('base64')}`;
    const client = new SdkLikeClient(T, auth);
    const res = await client.request('POST', `/customers/${enc('42')}/events`, { name: 'purchase', id: '01HZY3M5Q3W6VQ5N8KX9T4B2C7' });
    expect(res).toEqual({ status: 200, body: {} });
    expect(client.sent.map((s) => s.headers['x-retry-count'] ?? '-')).toEqual(['-', '1', '2']);
    expect(sb.customerio.eventsFor('42')).toHaveLength(1);
  });

  it('gets 401 with a readable body for a wrong key, as the SDK surfaces it', async () => {
    const client = new SdkLikeClient(`${sb.env.CUSTOMERIO_TRACK_URL}/api/v1`, `Basic ${Buffer.from('sandbox-site:wrong').toString('base64')}`);
    const res = await client.request('PUT', '/customers/1', { a: 1 });
    expect(res.status).toBe(401);
    // customerio-node builds its message from meta.error or meta.errors[].
    expect(res.body).toEqual({ meta: { errors: [expect.stringContaining('credentials')] } });
  });
});
