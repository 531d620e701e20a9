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

const PASSED_THROUGH = ['timeoutMs', 'retry', 'concurrency', 'onRequest', 'fetch', 'random'] as const;
type PassedThrough = Pick<HttpClientOptions, (typeof PASSED_THROUGH)[number]>;

/** The pass-through settings that were set; an unset one is left out so the HttpClient default applies. */
export function passThroughSettings(settings: HttpSettings): PassedThrough {
  return Object.fromEntries(PASSED_THROUGH.filter((key) => settings[key] !== undefined).map((key) => [key, settings[key]])) as PassedThrough;
}
