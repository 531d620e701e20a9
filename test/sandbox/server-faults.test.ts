/**
 * Every fault kind, observed over real HTTP against the running sandbox: latency, random 5xx, 5xx bursts,
 * 429 storms, connections dropped before the request is applied vs after, 207 partial batch failures, and
 * the service/path scope. Assertions are on statuses, bodies and state, never on wall-clock time.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createSandbox, type RunningSandbox } from '../../reconciler/sandbox/index.ts';

const BASIC = `Basic ${Buffer.from('sandbox-site:sandbox-track-key').toString('base64')}`;
const BEARER = 'Bearer sandbox-app-key';
const V1Error = z.object({ meta: z.object({ errors: z.array(z.string()).min(1) }) });
const V2Error = z.object({ errors: z.array(z.object({ reason: z.string(), field: z.string(), message: z.string() })).min(1) });
const AppError = z.object({ errors: z.array(z.object({ detail: z.string(), status: z.string() })).min(1) });

let sb: RunningSandbox;
beforeAll(async () => {
  sb = await createSandbox({ seed: 2024, retryAfterSeconds: 0, appRateLimitPerSecond: 100_000 });
});
afterAll(async () => {
  await sb.close();
});
beforeEach(() => {
  sb.faults.clear();
  sb.customerio.reset();
});

const identify = (id: string, attrs: Record<string, unknown> = {}, signal?: AbortSignal) =>
  fetch(`${sb.urls.customerioTrack}/api/v1/customers/${id}`, {
    method: 'PUT',
    headers: { authorization: BASIC, 'content-type': 'application/json' },
    body: JSON.stringify(attrs),
    ...(signal ? { signal } : {}),
  });

const trackEvent = (id: string, body: Record<string, unknown>) =>
  fetch(`${sb.urls.customerioTrack}/api/v1/customers/${id}/events`, {
    method: 'POST',
    headers: { authorization: BASIC, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

const listSegments = () => fetch(`${sb.urls.customerioApp}/v1/segments`, { headers: { authorization: BEARER } });
const createSegment = (name: string) =>
  fetch(`${sb.urls.customerioApp}/v1/segments`, {
    method: 'POST',
    headers: { authorization: BEARER, 'content-type': 'application/json' },
    body: JSON.stringify({ segment: { name } }),
  });

/** Resolves to the error a fetch failed with, or fails the test if it got an answer. */
async function networkError(p: Promise<Response>): Promise<Error> {
  try {
    const res = await p;
    throw new Error(`expected the connection to fail, got HTTP ${res.status}`);
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('expected the connection')) throw err;
    return err as Error;
  }
}

describe('latency', () => {
  it('holds the answer back: a client with a short timeout gives up, the request is not lost afterwards', async () => {
    sb.faults.set({ latencyMs: 400, service: 'track', pathPattern: '^/api/v1/accounts/region$' });
    const err = await networkError(
      fetch(`${sb.urls.customerioTrack}/api/v1/accounts/region`, { headers: { authorization: BASIC }, signal: AbortSignal.timeout(20) }),
    );
    expect(err.name).toBe('TimeoutError');
    sb.faults.clear();
    expect((await fetch(`${sb.urls.customerioTrack}/api/v1/accounts/region`, { headers: { authorization: BASIC } })).status).toBe(200);
  });
});

describe('errorRate', () => {
  it('answers 500/502/503 with each API version’s error envelope and applies nothing', async () => {
    sb.faults.set({ errorRate: 1 });
    const v1 = await identify('1', { a: 1 });
    expect([500, 502, 503]).toContain(v1.status);
    V1Error.parse(await v1.json());
    const v2 = await fetch(`${sb.urls.customerioTrack}/api/v2/entity`, {
      method: 'POST',
      headers: { authorization: BASIC },
      body: JSON.stringify({ type: 'person', identifiers: { id: '2' }, action: 'identify' }),
    });
    expect([500, 502, 503]).toContain(v2.status);
    V2Error.parse(await v2.json());
    const app = await createSegment('x');
    expect([500, 502, 503]).toContain(app.status);
    const body = AppError.parse(await app.json());
    expect(body.errors[0]!.status).toBe(String(app.status));
    expect(sb.customerio.listPeople()).toEqual([]);
    expect(sb.customerio.listSegments()).toEqual([]);
  });

  it('hits roughly the configured share of requests', async () => {
    sb.faults.set({ errorRate: 0.5, service: 'app' });
    const statuses = await Promise.all(Array.from({ length: 60 }, () => listSegments().then((r) => r.status)));
    const failed = statuses.filter((s) => s >= 500).length;
    expect(failed).toBeGreaterThan(10);
    expect(failed).toBeLessThan(50);
    expect(statuses.filter((s) => s !== 200 && s < 500)).toEqual([]);
  });
});

describe('burst5xx', () => {
  it('fails exactly the next N requests with 503, then recovers', async () => {
    sb.faults.set({ burst5xx: 2 });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await identify(`b${i}`)).status);
    expect(statuses).toEqual([503, 503, 200, 200]);
    expect(sb.customerio.listPeople().map((p) => p.id)).toEqual(['b2', 'b3']);
    expect(sb.faults.get().burst5xx).toBe(0);
  });
});

describe('storm429', () => {
  it('answers 429 with Retry-After and the documented App body for the next N requests', async () => {
    sb.faults.set({ storm429: { count: 3, retryAfterSeconds: 4 }, service: 'app' });
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await listSegments());
    expect(results.map((r) => r.status)).toEqual([429, 429, 429, 200]);
    expect(results[0]!.headers.get('retry-after')).toBe('4');
    const body = AppError.parse(await results[0]!.json());
    expect(body.errors[0]).toMatchObject({ status: '429', detail: expect.stringMatching(/^rate limited to \d+ requests per 1s \(reference \w+\)$/) });
  });

  it('gives Track 429s a Retry-After too', async () => {
    sb.faults.set({ storm429: { count: 1, retryAfterSeconds: 2 }, service: 'track' });
    const r = await identify('1');
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBe('2');
    expect(sb.customerio.getPerson('1')).toBeUndefined();
  });
});

describe('dropped connections', () => {
  it('dropRate: the socket closes without an answer and the write is NOT applied', async () => {
    sb.faults.set({ dropRate: 1 });
    await networkError(identify('dropped', { a: 1 }));
    expect(sb.customerio.getPerson('dropped')).toBeUndefined();
  });

  it('dropAfterApplyRate: the socket closes without an answer but the write IS applied', async () => {
    sb.faults.set({ dropAfterApplyRate: 1 });
    await networkError(identify('applied', { a: 1 }));
    expect(sb.customerio.getPerson('applied')!.attributes).toEqual({ a: 1 });
  });

  it('a client that retries an event with the same id after a drop-after-apply does not duplicate it', async () => {
    const event = { name: 'order_placed', id: '01J0000000000000000000000A', data: { order: 9 } };
    sb.faults.set({ dropAfterApplyRate: 1, pathPattern: '/events$' });
    await networkError(trackEvent('buyer', event));
    expect(sb.customerio.eventsFor('buyer')).toHaveLength(1);
    sb.faults.clear();
    expect((await trackEvent('buyer', event)).status).toBe(200);
    expect(sb.customerio.eventsFor('buyer')).toHaveLength(1);
    // Without an id, the same retry would have stored the event twice: that is the client's risk to avoid.
    sb.faults.set({ dropAfterApplyRate: 1, pathPattern: '/events$' });
    await networkError(trackEvent('buyer', { name: 'no_id' }));
    sb.faults.clear();
    await trackEvent('buyer', { name: 'no_id' });
    expect(sb.customerio.eventsFor('buyer').filter((e) => e.name === 'no_id')).toHaveLength(2);
  });
});

describe('partialFailureRate', () => {
  it('fails a share of v2 batch entries in a 207 and applies exactly the others', async () => {
    sb.faults.set({ partialFailureRate: 0.5 });
    const batch = Array.from({ length: 40 }, (_, i) => ({ type: 'person', identifiers: { id: `p${i}` }, action: 'identify', attributes: { n: i } }));
    const r = await fetch(`${sb.urls.customerioTrack}/api/v2/batch`, {
      method: 'POST',
      headers: { authorization: BASIC, 'content-type': 'application/json' },
      body: JSON.stringify({ batch }),
    });
    expect(r.status).toBe(207);
    const errors = z
      .object({ errors: z.array(z.object({ batch_index: z.number().int(), reason: z.string(), field: z.string(), message: z.string() })) })
      .parse(await r.json()).errors;
    const failed = new Set(errors.map((e) => e.batch_index));
    expect(failed.size).toBeGreaterThan(5);
    expect(failed.size).toBeLessThan(35);
    const applied = new Set(sb.customerio.listPeople().map((p) => p.id));
    for (let i = 0; i < 40; i++) expect(applied.has(`p${i}`)).toBe(!failed.has(i));
  });

  it('leaves non-batch endpoints alone', async () => {
    sb.faults.set({ partialFailureRate: 1 });
    expect((await identify('1')).status).toBe(200);
  });
});

describe('scope', () => {
  it('limits faults to one service', async () => {
    sb.faults.set({ errorRate: 1, service: 'app' });
    expect((await identify('1')).status).toBe(200);
    expect((await listSegments()).status).toBeGreaterThanOrEqual(500);
  });

  it('limits faults to paths matching a pattern', async () => {
    sb.faults.set({ burst5xx: 5, pathPattern: '^/v1/segments$' });
    expect((await fetch(`${sb.urls.customerioApp}/v1/exports`, { headers: { authorization: BEARER } })).status).toBe(200);
    expect((await listSegments()).status).toBe(503);
    expect(sb.faults.get().burst5xx).toBe(4);
  });

  it('reaches the Qualtrics listener too', async () => {
    sb.faults.set({ burst5xx: 1, service: 'qualtrics' });
    const r = await fetch(`${sb.urls.qualtrics}/API/v3/whoami`, { headers: { 'x-api-token': 'sandbox-qualtrics-token' } });
    expect(r.status).toBe(503);
    // The Qualtrics error envelope, not a generic body.
    expect(await r.json()).toMatchObject({ meta: { httpStatus: expect.stringMatching(/^503 - /), error: { errorCode: expect.any(String), errorMessage: expect.any(String) } } });
    const again = await fetch(`${sb.urls.qualtrics}/API/v3/whoami`, { headers: { 'x-api-token': 'sandbox-qualtrics-token' } });
    expect(again.status).toBe(200);
  });
});

describe('initial faults and determinism', () => {
  it('takes faults from the options and repeats the same decisions for the same seed', async () => {
    const outcomes = async (): Promise<string> => {
      const s = await createSandbox({ seed: 99, faults: { errorRate: 0.5, service: 'track' } });
      try {
        const out: number[] = [];
        for (let i = 0; i < 12; i++) {
          const r = await fetch(`${s.urls.customerioTrack}/api/v1/accounts/region`, { headers: { authorization: BASIC } });
          out.push(r.status);
        }
        return out.join(',');
      } finally {
        await s.close();
      }
    };
    const first = await outcomes();
    expect(first).toMatch(/5\d\d/);
    expect(first).toContain('200');
    expect(await outcomes()).toBe(first);
  });
});
