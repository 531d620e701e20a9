/**
 * Retry policy pieces: which failures are transient, how long to wait (exponential backoff with full
 * jitter, or what Retry-After says), and how a network failure is classified. The decision of *whether*
 * a given request may be repeated lives in http-client.ts, because it depends on idempotency.
 */

export interface RetryPolicy {
  /** Total attempts including the first. 1 disables retries. */
  maxAttempts: number;
  /** First backoff ceiling; doubles per attempt. */
  baseDelayMs: number;
  /** Largest backoff ceiling. */
  maxDelayMs: number;
  /** Longest Retry-After we honour; a longer one is waited for only this long. */
  maxRetryAfterMs: number;
  /** Give up once the waits of one request would add up to more than this. */
  maxTotalDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 5,
  baseDelayMs: 250,
  maxDelayMs: 20_000,
  maxRetryAfterMs: 120_000,
  maxTotalDelayMs: 300_000,
};

/**
 * Statuses worth another try: request timeout, rate limited, and server-side failures (including the
 * Cloudflare-style 522/524 that customerio-node also retries).
 */
export const TRANSIENT_STATUSES: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504, 522, 524]);

/** Full jitter: a uniform wait in [0, min(max, base * 2^(attempt-1))). */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

/**
 * Retry-After as milliseconds: either delay-seconds ("120", "0") or an HTTP-date. Returns undefined when
 * absent or unparseable; a date in the past gives 0.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (text === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

/**
 * - `not-connected`: no connection was made (refused, DNS failure); nothing reached the service.
 * - `timeout`: our deadline passed; the request may have been processed.
 * - `dropped`: the connection failed after it was established; the request may have been processed.
 * - `aborted`: the caller cancelled.
 */
export type NetworkFailure = 'not-connected' | 'timeout' | 'dropped' | 'aborted';

const NOT_CONNECTED_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

export function classifyNetworkError(err: unknown, callerSignal: AbortSignal | undefined, timedOut: boolean): NetworkFailure {
  if (callerSignal?.aborted) return 'aborted';
  if (timedOut) return 'timeout';
  let current: unknown = err;
  for (let depth = 0; depth < 6 && current; depth++) {
    if (current instanceof Error) {
      if (current.name === 'TimeoutError') return 'timeout';
      const code = (current as { code?: unknown }).code;
      if (typeof code === 'string' && NOT_CONNECTED_CODES.has(code)) return 'not-connected';
      if (current instanceof AggregateError) {
        // Happy-eyeballs connects raise one error per address; all refused still means not connected.
        const inner = current.errors;
        if (inner.length > 0 && inner.every((e) => NOT_CONNECTED_CODES.has(String((e as { code?: unknown }).code)))) {
          return 'not-connected';
        }
      }
      current = current.cause;
    } else {
      break;
    }
  }
  return 'dropped';
}
