/**
 * A failed call says which service and operation failed and why, and the "why" survives the retries:
 * each case runs against a real HTTP server on 127.0.0.1 (or a port nothing listens on).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerSecret } from '../../reconciler/core/redact.ts';
import { ProviderError } from '../../reconciler/providers/errors.ts';
import { HttpClient, type HttpClientOptions } from '../../reconciler/providers/http/http-client.ts';
import { ManualTimer } from '../../reconciler/providers/http/timer.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

let server: Server;
let base: string;
let host: string;
let handler: Handler = (_req, res) => res.end('{}');

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => handler(req, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  base = `http://${host}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function client(overrides: Partial<HttpClientOptions> = {}): HttpClient {
  return new HttpClient({
    provider: 'customerio',
    service: 'app',
    baseUrl: base,
    describeError: (_status, body) => {
      const errors = (body as { errors?: { detail?: string }[] } | undefined)?.errors;
      return errors ? { message: errors.map((e) => e.detail).join('; ') } : {};
    },
    timer: new ManualTimer(Date.parse('2030-01-01T00:00:00Z')),
    random: () => 0.5,
    ...overrides,
  });
}

async function failure(p: Promise<unknown>): Promise<ProviderError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

describe('failure messages keep their root cause', () => {
  it('401: names the service, the operation and the status, without retrying', async () => {
    handler = (_req, res) => json(res, 401, { errors: [{ detail: 'invalid credentials' }] });
    const err = await failure(client().request({ operation: 'segments.list', method: 'GET', path: '/v1/segments' }));
    expect(err.message).toBe('customerio app API segments.list: HTTP 401 Unauthorized: invalid credentials');
    expect(err.attempts).toBe(1);
  });

  it('429: the status, the Retry-After asked for and the attempts made', async () => {
    handler = (_req, res) => json(res, 429, { errors: [{ detail: 'slow down' }] }, { 'retry-after': '30' });
    const err = await failure(client({ retry: { maxAttempts: 3 } }).request({ operation: 'segments.list', method: 'GET', path: '/v1/segments' }));
    expect(err.message).toBe('customerio app API segments.list: HTTP 429 Too Many Requests (Retry-After 30 s) after 3 attempts: slow down');
    expect(err.retryAfterMs).toBe(30_000);
  });

  it('429 whose retry budget runs out says so and keeps the status', async () => {
    handler = (_req, res) => json(res, 429, {}, { 'retry-after': '100' });
    const err = await failure(
      client({ retry: { maxAttempts: 10, maxTotalDelayMs: 150_000 } }).request({ operation: 'segments.list', method: 'GET', path: '/v1/segments' }),
    );
    expect(err.message).toBe('customerio app API segments.list: HTTP 429 Too Many Requests (Retry-After 100 s) after 2 attempts (the retry time budget of 150 s is spent)');
  });

  it('5xx: the status and the service text after the retries', async () => {
    handler = (_req, res) => json(res, 503, { errors: [{ detail: 'down for maintenance' }] });
    const err = await failure(client({ retry: { maxAttempts: 4 } }).request({ operation: 'segments.list', method: 'GET', path: '/v1/segments' }));
    expect(err.message).toBe('customerio app API segments.list: HTTP 503 Service Unavailable after 4 attempts: down for maintenance');
    expect(err.status).toBe(503);
  });

  it('a timeout says how long was waited, and where', async () => {
    // The server never answers, so the outcome does not depend on how fast the machine is.
    handler = () => undefined;
    const err = await failure(
      client({ timeoutMs: 50, retry: { maxAttempts: 2 } }).request({ operation: 'segments.list', method: 'GET', path: '/v1/segments' }),
    );
    expect(err.message).toBe(`customerio app API segments.list: timed out after 50 ms waiting for ${host} after 2 attempts`);
    expect(err.code).toBe('timeout');
  });

  it('a connection reset names ECONNRESET', async () => {
    handler = (_req, res) => res.socket?.resetAndDestroy();
    const err = await failure(client({ retry: { maxAttempts: 2 } }).request({ operation: 'segments.list', method: 'GET', path: '/v1/segments' }));
    expect(err.message).toBe(`customerio app API segments.list: connection reset (ECONNRESET) at ${host} after 2 attempts`);
  });

  it('a reset non-idempotent write keeps the cause and the advice', async () => {
    handler = (_req, res) => res.socket?.resetAndDestroy();
    const err = await failure(client().request({ operation: 'segments.create', method: 'POST', path: '/v1/segments', body: {} }));
    expect(err.message).toMatch(new RegExp(`^customerio app API segments.create: connection reset \\(ECONNRESET\\) at ${host}; this write is not idempotent`));
  });

  it('a connection refused names ECONNREFUSED and the host and port', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const err = await failure(
      client({ baseUrl: `http://127.0.0.1:${port}`, retry: { maxAttempts: 2 } }).request({ operation: 'segments.list', method: 'GET', path: '/v1/segments' }),
    );
    expect(err.message).toBe(`customerio app API segments.list: could not connect: connection refused (ECONNREFUSED) at 127.0.0.1:${port} after 2 attempts`);
  });

  it('a cancel while waiting to retry still says what was being retried', async () => {
    handler = (_req, res) => json(res, 503, {}, { 'retry-after': '5' });
    const controller = new AbortController();
    const timer = new ManualTimer(0);
    timer.sleep = async () => {
      controller.abort(new Error('stop'));
      throw new Error('stop');
    };
    const err = await failure(client({ timer }).request({ operation: 'segments.list', method: 'GET', path: '/v1/segments', signal: controller.signal }));
    expect(err.message).toBe('customerio app API segments.list: cancelled while waiting to retry after HTTP 503 Service Unavailable (Retry-After 5 s)');
  });

  it('a long error body is redacted before it is cut, so no piece of a secret shows', async () => {
    const secret = 'sk_live_0123456789abcdefghijklmnop'; // 34 characters, cut 23 characters in below
    registerSecret(secret);
    handler = (_req, res) => {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`${'e'.repeat(477)} ${secret} ${'f'.repeat(200)}`);
    };
    const err = await failure(client().request({ operation: 'segments.list', method: 'GET', path: '/v1/segments' }));
    expect(err.message).not.toContain(secret.slice(0, 6));
    expect(err.message).toContain('[redacted]');
  });
});
