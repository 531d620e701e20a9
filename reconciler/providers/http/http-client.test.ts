import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerSecret } from '../../core/redact.ts';
import { ProviderError } from '../errors.ts';
import { HttpClient, RequestCounter, type HttpClientOptions } from './http-client.ts';
import { LimiterRegistry, TokenBucket } from './rate-limiter.ts';
import { ManualTimer } from './timer.ts';

type Handler = (req: IncomingMessage, res: ServerResponse, body: string, hit: number) => void;

interface TestServer {
  server: Server;
  url: string;
  hits: number;
  bodies: string[];
  headers: IncomingMessage['headers'][];
  handler: Handler;
}

async function startServer(): Promise<TestServer> {
  const state = { hits: 0, bodies: [] as string[], headers: [] as IncomingMessage['headers'][] } as TestServer;
  state.handler = (_req, res) => json(res, 200, {});
  state.server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      state.hits++;
      const body = Buffer.concat(chunks).toString('utf8');
      state.bodies.push(body);
      state.headers.push(req.headers);
      state.handler(req, res, body, state.hits);
    });
  });
  await new Promise<void>((resolve) => state.server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(state.server.address() as AddressInfo).port}`;
  return state;
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function drop(res: ServerResponse): void {
  res.socket?.destroy();
}

const SECRET = 'tm-test-secret-9f8e7d6c';
registerSecret(SECRET);

let srv: TestServer;
let other: TestServer;
let timer: ManualTimer;

beforeAll(async () => {
  srv = await startServer();
  other = await startServer();
});

afterAll(async () => {
  srv.server.closeAllConnections();
  other.server.closeAllConnections();
  await new Promise((r) => srv.server.close(r));
  await new Promise((r) => other.server.close(r));
});

afterEach(() => {
  srv.hits = 0;
  srv.bodies = [];
  srv.headers = [];
  srv.handler = (_req, res) => json(res, 200, {});
  other.hits = 0;
  other.handler = (_req, res) => json(res, 200, {});
});

function client(overrides: Partial<HttpClientOptions> = {}): HttpClient {
  timer = new ManualTimer(Date.parse('2030-01-01T00:00:00Z'));
  return new HttpClient({
    provider: 'customerio',
    service: 'test',
    baseUrl: `${srv.url}/api`,
    authHeaders: () => ({ authorization: `Bearer ${SECRET}` }),
    describeError: (_status, body) => {
      const errors = (body as { meta?: { errors?: string[] } } | undefined)?.meta?.errors;
      return errors ? { message: errors.join('; '), code: 'svc_code' } : {};
    },
    timer,
    random: () => 0.5,
    ...overrides,
  });
}

describe('HttpClient retries', () => {
  it('retries 5xx with jittered exponential backoff and then succeeds', async () => {
    srv.handler = (_req, res, _body, hit) => (hit < 3 ? json(res, hit === 1 ? 500 : 502, {}) : json(res, 200, { ok: true }));
    const res = await client().request({ operation: 'thing.get', method: 'GET', path: '/thing' });
    expect(res.data).toEqual({ ok: true });
    expect(res.attempts).toBe(3);
    expect(srv.hits).toBe(3);
    // base 250 ms, full jitter with random()=0.5: 0.5*250, then 0.5*500.
    expect(timer.sleeps).toEqual([125, 250]);
    expect(srv.headers[2]?.['x-retry-count']).toBe('2');
  });

  it('honours Retry-After in seconds on 429, waiting exactly what was asked', async () => {
    srv.handler = (_req, res, _body, hit) =>
      hit === 1 ? json(res, 429, { errors: [{ detail: 'slow down' }] }, { 'retry-after': '7' }) : json(res, 200, {});
    const res = await client().request({ operation: 'thing.get', method: 'GET', path: '/thing' });
    expect(res.attempts).toBe(2);
    expect(timer.sleeps).toEqual([7000]);
  });

  it('honours Retry-After given as an HTTP-date', async () => {
    srv.handler = (_req, res, _body, hit) =>
      hit === 1 ? json(res, 503, {}, { 'retry-after': 'Tue, 01 Jan 2030 00:00:30 GMT' }) : json(res, 200, {});
    await client().request({ operation: 'thing.get', method: 'GET', path: '/thing' });
    expect(timer.sleeps).toEqual([30_000]);
  });

  it('caps a very long Retry-After', async () => {
    srv.handler = (_req, res, _body, hit) => (hit === 1 ? json(res, 429, {}, { 'retry-after': '86400' }) : json(res, 200, {}));
    await client({ retry: { maxRetryAfterMs: 60_000 } }).request({ operation: 'thing.get', method: 'GET', path: '/thing' });
    expect(timer.sleeps).toEqual([60_000]);
  });

  it('parks the shared limiter for the Retry-After period', async () => {
    srv.handler = (_req, res, _body, hit) => (hit === 1 ? json(res, 429, {}, { 'retry-after': '3' }) : json(res, 200, {}));
    // The bucket runs on its own clock, which the client's retry sleep does not advance, so the block
    // placed on the bucket is observable by the next caller.
    const bucketTimer = new ManualTimer(0);
    const bucket = new TokenBucket({ ratePerSecond: 1000, burst: 10, timer: bucketTimer });
    await client().request({ operation: 'a', method: 'GET', path: '/a', limiters: [bucket] });
    expect(timer.sleeps).toEqual([3000]);
    await bucket.acquire();
    expect(bucketTimer.now()).toBe(3000);
  });

  it('gives up after maxAttempts and reports the last status as retryable', async () => {
    srv.handler = (_req, res) => json(res, 500, { meta: { errors: ['boom'] } });
    const err = await client({ retry: { maxAttempts: 3 } })
      .request({ operation: 'thing.get', method: 'GET', path: '/thing' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    const pe = err as ProviderError;
    expect(srv.hits).toBe(3);
    expect(pe.status).toBe(500);
    expect(pe.retryable).toBe(true);
    expect(pe.attempts).toBe(3);
    expect(pe.code).toBe('svc_code');
    expect(pe.message).toContain('boom');
    expect(pe.message).toContain('HTTP 500 Internal Server Error after 3 attempts');
  });

  it('does not retry a 4xx and maps the service error text', async () => {
    srv.handler = (_req, res) => json(res, 400, { meta: { errors: ['name is required', 'id too long'] } });
    const err = (await client()
      .request({ operation: 'thing.put', method: 'PUT', path: '/thing', body: {} })
      .catch((e: unknown) => e)) as ProviderError;
    expect(srv.hits).toBe(1);
    expect(err.status).toBe(400);
    expect(err.retryable).toBe(false);
    expect(err.outcome).toBe('not-applied');
    expect(err.message).toBe('customerio test API thing.put: HTTP 400 Bad Request: name is required; id too long');
  });

  it('returns accepted non-2xx statuses instead of throwing', async () => {
    srv.handler = (_req, res) => json(res, 404, { errors: [{ detail: 'gone' }] });
    const res = await client().request({ operation: 'thing.get', method: 'GET', path: '/thing', acceptStatuses: [404] });
    expect(res.status).toBe(404);
    expect(res.data).toEqual({ errors: [{ detail: 'gone' }] });
    srv.handler = (_req, res) => {
      res.writeHead(404, { 'content-type': 'text/html' });
      res.end('<h1>Not Found</h1>');
    };
    const html = await client().request({ operation: 'thing.get', method: 'GET', path: '/thing', acceptStatuses: [404] });
    expect(html).toMatchObject({ status: 404, data: undefined, attempts: 1 });
  });
});

describe('HttpClient and non-idempotent writes', () => {
  it('does not retry a POST after the connection drops, and says the outcome is unknown', async () => {
    srv.handler = (_req, res) => drop(res);
    const err = (await client()
      .request({ operation: 'segments.create', method: 'POST', path: '/segments', body: { name: 'x' } })
      .catch((e: unknown) => e)) as ProviderError;
    expect(err).toBeInstanceOf(ProviderError);
    expect(srv.hits).toBe(1);
    expect(err.retryable).toBe(false);
    expect(err.outcome).toBe('unknown');
    expect(err.message).toMatch(/may or may not have been applied/);
    expect(err.message).toMatch(/refresh live state/);
  });

  it('does not retry a POST after a 500', async () => {
    srv.handler = (_req, res) => json(res, 500, {});
    const err = (await client()
      .request({ operation: 'segments.create', method: 'POST', path: '/segments', body: {} })
      .catch((e: unknown) => e)) as ProviderError;
    expect(srv.hits).toBe(1);
    expect(err.outcome).toBe('unknown');
    expect(err.retryable).toBe(false);
  });

  it('retries a POST on 429 and on 503 with Retry-After, which prove it was not processed', async () => {
    srv.handler = (_req, res, _body, hit) => {
      if (hit === 1) json(res, 429, {}, { 'retry-after': '0' });
      else if (hit === 2) json(res, 503, {}, { 'retry-after': '1' });
      else json(res, 200, { segment: { id: 1 } });
    };
    const res = await client().request({ operation: 'segments.create', method: 'POST', path: '/segments', body: { n: 1 } });
    expect(res.data).toEqual({ segment: { id: 1 } });
    expect(srv.hits).toBe(3);
    expect(timer.sleeps).toEqual([0, 1000]);
    expect(new Set(srv.bodies)).toEqual(new Set(['{"n":1}']));
  });

  it('retries an idempotent PUT after the connection drops', async () => {
    srv.handler = (_req, res, _body, hit) => (hit === 1 ? drop(res) : json(res, 200, {}));
    const res = await client().request({ operation: 'customers.identify', method: 'PUT', path: '/customers/1', body: { a: 1 } });
    expect(res.attempts).toBe(2);
    expect(srv.hits).toBe(2);
  });

  it('retries a POST declared idempotent after the connection drops', async () => {
    srv.handler = (_req, res, _body, hit) => (hit === 1 ? drop(res) : json(res, 200, {}));
    const res = await client().request({ operation: 'events.track', method: 'POST', path: '/events', body: { id: 'x' }, idempotent: true });
    expect(res.attempts).toBe(2);
  });

  it('retries a POST when the connection is refused, since nothing was sent', async () => {
    const closed = await startServer();
    const port = (closed.server.address() as AddressInfo).port;
    await new Promise((r) => closed.server.close(r));
    const counter = new RequestCounter();
    const c = client({ baseUrl: `http://127.0.0.1:${port}`, retry: { maxAttempts: 3 }, onRequest: counter.hook });
    const err = (await c.request({ operation: 'segments.create', method: 'POST', path: '/x', body: {} }).catch((e: unknown) => e)) as ProviderError;
    expect(counter.total).toBe(3);
    expect(counter.byStatus.get('not-connected')).toBe(3);
    expect(err.code).toBe('not_connected');
    expect(err.outcome).toBe('not-applied');
    expect(err.retryable).toBe(true);
  });
});

describe('HttpClient timeouts, redirects, aborts', () => {
  it('times out a request the server never answers; retries it only when idempotent', async () => {
    // The per-attempt timeout fires when the server has the request, not after a wall-clock 50 ms: on a busy
    // machine a real 50 ms could pass before the request even arrived, or a late arrival could count
    // towards the next assertion.
    const timeouts: AbortController[] = [];
    const timeoutSpy = vi.spyOn(AbortSignal, 'timeout').mockImplementation(() => {
      const c = new AbortController();
      timeouts.push(c);
      return c.signal;
    });
    srv.handler = () => timeouts.at(-1)!.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
    const get = (await client({ timeoutMs: 50, retry: { maxAttempts: 2 } })
      .request({ operation: 'slow.get', method: 'GET', path: '/slow' })
      .catch((e: unknown) => e)) as ProviderError;
    expect(timeoutSpy.mock.calls).toEqual([[50], [50]]);
    expect(get.code).toBe('timeout');
    expect(get.attempts).toBe(2);
    expect(get.retryable).toBe(true);
    expect(srv.hits).toBe(2);

    srv.hits = 0;
    const post = (await client({ timeoutMs: 50, retry: { maxAttempts: 2 } })
      .request({ operation: 'slow.create', method: 'POST', path: '/slow', body: {} })
      .catch((e: unknown) => e)) as ProviderError;
    expect(post.code).toBe('timeout');
    expect(post.attempts).toBe(1);
    expect(post.outcome).toBe('unknown');
    expect(post.retryable).toBe(false);
    expect(srv.hits).toBe(1);
    expect(timeouts).toHaveLength(3);
  });

  it('follows a same-origin redirect and refuses to carry credentials to another host', async () => {
    srv.handler = (req, res) => {
      if (req.url === '/api/old') {
        res.writeHead(307, { location: '/api/new' });
        res.end();
      } else if (req.url === '/api/away') {
        res.writeHead(307, { location: `${other.url}/steal` });
        res.end();
      } else json(res, 200, { at: req.url });
    };
    const c = client();
    expect((await c.request({ operation: 'r', method: 'GET', path: '/old' })).data).toEqual({ at: '/api/new' });
    const err = (await c.request({ operation: 'r', method: 'GET', path: '/away' }).catch((e: unknown) => e)) as ProviderError;
    expect(err.code).toBe('redirect_refused');
    expect(other.hits).toBe(0);
  });

  it('refuses an absolute URL on another origin before sending anything', async () => {
    const err = (await client()
      .request({ operation: 'page', method: 'GET', url: `${other.url}/next` })
      .catch((e: unknown) => e)) as ProviderError;
    expect(err.code).toBe('untrusted_url');
    expect(other.hits).toBe(0);
    // Without auth (a pre-signed download link) the same URL is fine.
    await client().request({ operation: 'download', method: 'GET', url: `${other.url}/file`, auth: false });
    expect(other.hits).toBe(1);
  });

  it('stops when the caller aborts', async () => {
    srv.handler = () => undefined;
    const controller = new AbortController();
    const pending = client().request({ operation: 'x', method: 'GET', path: '/x', signal: controller.signal });
    while (srv.hits === 0) await new Promise((r) => setImmediate(r));
    controller.abort();
    const err = (await pending.catch((e: unknown) => e)) as ProviderError;
    expect(err.code).toBe('aborted');
    expect(srv.hits).toBe(1);
  });

  it('rejects a 2xx body that is not JSON', async () => {
    srv.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>oops</html>');
    };
    const err = (await client()
      .request({ operation: 'x.create', method: 'POST', path: '/x', body: {} })
      .catch((e: unknown) => e)) as ProviderError;
    expect(err.code).toBe('invalid_response');
    expect(err.outcome).toBe('applied');
    expect(srv.hits).toBe(1);
  });
});

describe('HttpClient concurrency and counting', () => {
  it('keeps at most `concurrency` requests in flight', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    srv.handler = (_req, res) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      setTimeout(() => {
        inFlight--;
        json(res, 200, {});
      }, 15);
    };
    const counter = new RequestCounter();
    const c = client({ concurrency: 2, onRequest: counter.hook });
    await Promise.all(Array.from({ length: 6 }, (_, i) => c.request({ operation: 'c.get', method: 'GET', path: `/c/${i}` })));
    expect(maxInFlight).toBeLessThanOrEqual(2);
    expect(srv.hits).toBe(6);
    expect(counter.count('c.get')).toBe(6);
  });

  it('passes every request through the rate limiter', async () => {
    const registry = new LimiterRegistry((timer = new ManualTimer(0)));
    const bucket = registry.get('svc', { ratePerSecond: 10 });
    const c = new HttpClient({ provider: 'qualtrics', service: 'q', baseUrl: srv.url, timer, limiters: [bucket] });
    await Promise.all(Array.from({ length: 5 }, (_, i) => c.request({ operation: 'q', method: 'GET', path: `/${i}` })));
    expect(srv.hits).toBe(5);
    // burst 1 at 10/s: the first goes at t=0, the next four 100 ms apart.
    expect(timer.now()).toBe(400);
  });
});

describe('secrets never leak', () => {
  const leakCheck = (err: unknown): void => {
    expect(err).toBeInstanceOf(ProviderError);
    const e = err as ProviderError;
    for (const text of [e.message, String(e), JSON.stringify(e), e.stack ?? '', String((e.cause as Error | undefined)?.message)]) {
      expect(text).not.toContain(SECRET);
    }
  };

  it('redacts a secret the service echoes back in an error body', async () => {
    srv.handler = (req, res) => json(res, 401, { meta: { errors: [`bad credentials: ${String(req.headers.authorization)}`] } });
    const err = await client().request({ operation: 'x', method: 'GET', path: '/x' }).catch((e: unknown) => e);
    leakCheck(err);
    expect((err as ProviderError).message).toContain('[redacted]');
    expect((err as ProviderError).code).toBe('svc_code');
  });

  it('keeps secrets out of non-JSON error text and network failures', async () => {
    srv.handler = (_req, res) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`internal error for token ${SECRET}`);
    };
    leakCheck(await client({ retry: { maxAttempts: 1 } }).request({ operation: 'x', method: 'GET', path: '/x' }).catch((e: unknown) => e));
    srv.handler = (_req, res) => drop(res);
    leakCheck(await client({ retry: { maxAttempts: 1 } }).request({ operation: 'x', method: 'POST', path: '/x', body: {} }).catch((e: unknown) => e));
    srv.handler = () => undefined;
    leakCheck(await client({ timeoutMs: 30, retry: { maxAttempts: 1 } }).request({ operation: 'x', method: 'GET', path: '/x' }).catch((e: unknown) => e));
  });

  it('never sends credentials on unauthenticated requests', async () => {
    await client().request({ operation: 'download', method: 'GET', path: '/file', auth: false });
    expect(srv.headers[0]?.authorization).toBeUndefined();
    await client().request({ operation: 'get', method: 'GET', path: '/file' });
    expect(srv.headers[1]?.authorization).toBe(`Bearer ${SECRET}`);
  });
});
