/**
 * The HTTP settings a provider client takes in its config and hands to its `HttpClient`s as given, and
 * the options each call takes, so both clients accept the same ones with the same defaults.
 */
import type { HttpClientOptions, RequestHook } from './http-client.ts';
import type { LimiterRegistry } from './rate-limiter.ts';
import type { RetryPolicy } from './retry.ts';
import type { Timer } from './timer.ts';

export interface HttpSettings {
  /** Per-attempt timeout. Default 30 s. */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** Requests in flight at once, per API host (Customer.io has two: Track and App). Default 8. */
  concurrency?: number;
  onRequest?: RequestHook;
  fetch?: typeof fetch;
  timer?: Timer;
  random?: () => number;
  /** Defaults to the process-wide registry, so clients for one account share one budget. */
  limiters?: LimiterRegistry;
}

/** Options every call of either client accepts. */
export interface CallOptions {
  signal?: AbortSignal;
}

/** The call's abort signal as request fields, left out when there is none. */
export function withSignal(options: CallOptions): { signal?: AbortSignal } {
  return options.signal ? { signal: options.signal } : {};
}

type PassedThrough = Pick<HttpClientOptions, 'timeoutMs' | 'retry' | 'concurrency' | 'onRequest' | 'fetch' | 'random'>;

/** The pass-through settings that were set; an unset one is left out so the HttpClient default applies. */
export function passThroughSettings(settings: HttpSettings): PassedThrough {
  const out: PassedThrough = {};
  if (settings.timeoutMs !== undefined) out.timeoutMs = settings.timeoutMs;
  if (settings.retry !== undefined) out.retry = settings.retry;
  if (settings.concurrency !== undefined) out.concurrency = settings.concurrency;
  if (settings.onRequest !== undefined) out.onRequest = settings.onRequest;
  if (settings.fetch !== undefined) out.fetch = settings.fetch;
  if (settings.random !== undefined) out.random = settings.random;
  return out;
}
