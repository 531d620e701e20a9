/**
 * The webhook receiver as a Node request handler: `tidemark responses serve` mounts it, and a team can
 * mount it on its own endpoint (plain `http`, Express, anything that hands over Node's request and
 * response). It bounds the body while reading, verifies (webhook.ts), hands the delivery to the sink and
 * answers. Contract: WEBHOOK.md.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../core/clock.ts';
import { verifyWebhook, WEBHOOK_MAX_BODY_BYTES, type WebhookDelivery, type WebhookRefusalReason, type WebhookVerifyOptions } from './webhook.ts';

/**
 * Where verified deliveries go: the response ledger's `ingestOne` in the product. It answers whether the
 * response is new or was already received (by webhook or by pull), and must answer within seconds:
 * Qualtrics gives up on a delivery after about 16 s and retries it.
 */
export interface WebhookSink {
  receive(delivery: WebhookDelivery): Promise<'new' | 'duplicate'>;
}

/** One delivery's outcome, for the caller's log line: no ids, no payload. */
export interface WebhookOutcome {
  status: number;
  outcome: 'accepted' | 'duplicate' | 'refused' | 'failed';
  reason?: WebhookRefusalReason | 'method_not_allowed' | 'sink_failed' | 'sink_timeout' | 'body_error';
  /** Bytes of body read (never more than the bound plus one chunk). */
  bytes: number;
}

export interface WebhookHandlerOptions extends Omit<WebhookVerifyOptions, 'now'> {
  sink: WebhookSink;
  /** Default: the system clock. */
  clock?: Clock;
  /** Give up on the sink after this long and answer 503, so Qualtrics retries (default 10 s, under its 16 s). */
  sinkTimeoutMs?: number;
  /** Called once per request with its outcome. */
  onOutcome?(outcome: WebhookOutcome): void;
}

export const WEBHOOK_SINK_TIMEOUT_MS = 10_000;

type BodyResult = { ok: true; body: Buffer } | { ok: false; reason: 'too_large' | 'body_error'; bytes: number };

/**
 * Reads at most `max` bytes: a declared Content-Length over the bound is refused before a byte is read,
 * and a body that grows past it (chunked, or a lying length) is refused as soon as it does, never
 * buffered whole.
 */
export function readBoundedBody(req: IncomingMessage, max: number): Promise<BodyResult> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) return Promise.resolve({ ok: false, reason: 'too_large', bytes: 0 });
  // A framework's body parser may have read it already (express.raw / express.text): use that.
  const pre = (req as IncomingMessage & { body?: unknown }).body;
  if (Buffer.isBuffer(pre) || typeof pre === 'string') {
    const buf = Buffer.isBuffer(pre) ? pre : Buffer.from(pre, 'utf8');
    return Promise.resolve(buf.length > max ? { ok: false, reason: 'too_large', bytes: buf.length } : { ok: true, body: buf });
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let done = false;
    const finish = (r: BodyResult) => {
      if (done) return;
      done = true;
      req.off('data', onData);
      resolve(r);
    };
    const onData = (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > max) {
        // Stop reading: what is left is never taken in; the connection is closed after the answer.
        req.pause();
        finish({ ok: false, reason: 'too_large', bytes });
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => finish({ ok: true, body: Buffer.concat(chunks, bytes) }));
    req.once('error', () => finish({ ok: false, reason: 'body_error', bytes }));
    req.once('aborted', () => finish({ ok: false, reason: 'body_error', bytes }));
  });
}

function answer(res: ServerResponse, status: number, json: Record<string, unknown>, close = false): void {
  if (res.headersSent) return;
  const body = `${JSON.stringify(json)}\n`;
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.setHeader('Cache-Control', 'no-store');
  if (close) res.setHeader('Connection', 'close');
  res.end(body);
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
    timer.unref?.();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Handles one request: POST only. Answers, in JSON without ids: 200 `accepted` (handed to the sink), 200
 * `duplicate` (the sink had it: a 2xx so Qualtrics stops retrying a delivery it already made), 4xx
 * `refused` with the reason, 503 when the sink failed or was too slow (Qualtrics retries; the sink's
 * dedupe makes the retry safe). Never throws.
 */
export async function handleQualtricsWebhook(req: IncomingMessage, res: ServerResponse, opts: WebhookHandlerOptions): Promise<WebhookOutcome> {
  const report = (o: WebhookOutcome): WebhookOutcome => {
    try {
      opts.onOutcome?.(o);
    } catch {
      // A failing logger must not turn an answered delivery into a crash.
    }
    return o;
  };
  if (req.method !== 'POST') {
    res.setHeader('Allow', 'POST');
    answer(res, 405, { outcome: 'refused', reason: 'method_not_allowed' });
    req.resume();
    return report({ status: 405, outcome: 'refused', reason: 'method_not_allowed', bytes: 0 });
  }
  const max = opts.maxBodyBytes ?? WEBHOOK_MAX_BODY_BYTES;
  const read = await readBoundedBody(req, max);
  if (!read.ok) {
    const status = read.reason === 'too_large' ? 413 : 400;
    answer(res, status, { outcome: 'refused', reason: read.reason }, true);
    // The rest of the body is never read: drop the connection once the answer is out.
    res.once('finish', () => req.socket?.destroySoon?.());
    return report({ status, outcome: read.reason === 'too_large' ? 'refused' : 'failed', reason: read.reason, bytes: read.bytes });
  }
  const bytes = read.body.length;
  const now = (opts.clock ?? { now: () => new Date() }).now();
  const v = verifyWebhook({ contentType: req.headers['content-type'], body: read.body }, { ...opts, now });
  if (!v.ok) {
    answer(res, v.status, { outcome: 'refused', reason: v.reason });
    return report({ status: v.status, outcome: 'refused', reason: v.reason, bytes });
  }
  let received: 'new' | 'duplicate' | 'timeout';
  try {
    received = await withTimeout(opts.sink.receive(v.delivery), opts.sinkTimeoutMs ?? WEBHOOK_SINK_TIMEOUT_MS);
  } catch {
    answer(res, 503, { outcome: 'failed', reason: 'sink_failed' });
    return report({ status: 503, outcome: 'failed', reason: 'sink_failed', bytes });
  }
  if (received === 'timeout') {
    answer(res, 503, { outcome: 'failed', reason: 'sink_timeout' });
    return report({ status: 503, outcome: 'failed', reason: 'sink_timeout', bytes });
  }
  const outcome = received === 'new' ? 'accepted' : 'duplicate';
  answer(res, 200, { outcome });
  return report({ status: 200, outcome, bytes });
}
