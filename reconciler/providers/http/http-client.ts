/**
 * The one HTTP layer under the Customer.io and Qualtrics clients.
 *
 * Every request goes through, in order: the client's concurrency limit, the shared rate limiters
 * (per host and credential, see rate-limiter.ts), a per-attempt timeout, and the retry loop below.
 * Auth headers are injected here from a callback, never passed around by callers, and never copied into
 * an error. Every failure becomes a `ProviderError` whose message went through `redact`.
 *
 * ## Retries and the no-duplicate rule
 *
 * Transient failures (408, 429, 5xx, network errors) are retried with exponential backoff and full
 * jitter; when the service sends `Retry-After` (delay-seconds or HTTP-date) we wait exactly that long,
 * capped by `maxRetryAfterMs`, and park the shared limiters for that long too.
 *
 * Each request declares whether it is idempotent (by default GET/PUT/DELETE are, POST/PATCH are not;
 * the clients override this per operation, e.g. a Customer.io event POST carrying a dedupe `id` is
 * idempotent, creating a segment is not). The rule:
 *
 * - An idempotent request is retried after any transient failure, including a timeout or a connection
 *   dropped mid-flight: sending it twice has the same effect as sending it once.
 * - A non-idempotent request is retried ONLY when the failure proves it was not applied: 429 (rate
 *   limited before processing), 503 carrying Retry-After (the service refused it before processing),
 *   or a connection that was never established (refused, DNS failure). After a timeout, a dropped
 *   connection, or any other 5xx it is NOT retried: it fails at once with `retryable: false` and
 *   `outcome: 'unknown'`, and the message tells the caller to refresh live state before sending it
 *   again (the object may already exist remotely).
 *
 * Redirects are followed by hand, only to URLs the client trusts (by default the base URL's origin),
 * so auth headers never travel to a foreign host.
 */
import { STATUS_CODES } from 'node:http';
import { InternalError } from '../../core/diagnostics.ts';
import { redact, redactAndTruncate } from '../../core/redact.ts';
import { ProviderError, type ProviderName, type RequestOutcome } from '../errors.ts';
import type { TokenBucket } from './rate-limiter.ts';
import {
  backoffDelay,
  classifyNetworkError,
  DEFAULT_RETRY_POLICY,
  parseRetryAfter,
  TRANSIENT_STATUSES,
  type NetworkFailure,
  type RetryPolicy,
} from './retry.ts';
import { Semaphore } from './semaphore.ts';
import { systemTimer, type Timer } from './timer.ts';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';

export type QueryValue = string | number | boolean | null | undefined;

/** What the service said about a failure, extracted from its error body by the provider's describer. */
export interface ServiceErrorDetails {
  message?: string;
  code?: string;
  requestId?: string;
}

/** Reads a provider's error body shape. `body` is the parsed JSON, or undefined when it was not JSON. */
export type ErrorDescriber = (status: number, body: unknown, text: string) => ServiceErrorDetails;

/** Emitted once per HTTP exchange on the wire (every attempt and every redirect hop). */
export interface RequestEvent {
  provider: ProviderName;
  service: string;
  operation: string;
  method: HttpMethod;
  /** 1 for the first try, 2 for the first retry, … */
  attempt: number;
  idempotent: boolean;
  /** HTTP status when a response arrived. */
  status?: number;
  /** Why no response arrived. */
  failure?: NetworkFailure;
}

/** Must not throw; an exception from a hook is re-raised asynchronously and does not alter the request. */
export type RequestHook = (event: RequestEvent) => void;

export interface HttpClientOptions {
  provider: ProviderName;
  /** Label used in events and diagnostics, e.g. `track`, `app`, `qualtrics`. */
  service: string;
  /** Scheme, host and path prefix, e.g. `https://api.customer.io/v1`. */
  baseUrl: string;
  /** Auth headers, computed per request. */
  authHeaders?: () => Record<string, string>;
  describeError?: ErrorDescriber;
  /** Per-attempt deadline (connect, send, and read the whole body). Default 30 s. */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** Limiters every request of this client passes through (in addition to per-request ones). */
  limiters?: readonly TokenBucket[];
  /** Requests of this client in flight at once. Default 8. */
  concurrency?: number;
  onRequest?: RequestHook;
  fetch?: typeof fetch;
  timer?: Timer;
  /** Uniform in [0, 1); drives backoff jitter. */
  random?: () => number;
  /** Absolute URLs (pagination links, redirects) that may receive auth headers. Default: same origin. */
  isTrustedUrl?: (url: URL) => boolean;
  userAgent?: string;
}

export interface HttpRequest {
  /** Stable operation name for errors and events, e.g. `segments.create`. No identifiers in it. */
  operation: string;
  method: HttpMethod;
  /** Path appended to the base URL (starts with `/`). Exactly one of path/url. */
  path?: string;
  /** Absolute URL (e.g. a pagination link); must be trusted unless `auth` is false. */
  url?: string;
  query?: Record<string, QueryValue>;
  /** Serialised as JSON once, so every retry sends the same bytes. */
  body?: unknown;
  /** The body already serialised as JSON, as text or UTF-8 (instead of `body`): a caller that had to serialise its parts anyway. */
  bodyJson?: string | Uint8Array;
  /** Defaults by method: GET/PUT/DELETE true, POST/PATCH false. See the module doc. */
  idempotent?: boolean;
  /** Default `json`. */
  responseType?: 'json' | 'bytes' | 'text';
  /** Non-2xx statuses returned to the caller instead of thrown (e.g. 404 for "read or undefined"). */
  acceptStatuses?: readonly number[];
  /** Extra limiters for this endpoint (stricter per-endpoint limits). */
  limiters?: readonly TokenBucket[];
  /** Send auth headers. Default true; false for pre-signed download links. */
  auth?: boolean;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface HttpResponse<T = unknown> {
  status: number;
  headers: Headers;
  /** Parsed JSON (undefined for an empty body), a string, or bytes, per `responseType`. */
  data: T;
  /** Attempts it took, 1 when the first try succeeded. */
  attempts: number;
}

const DEFAULT_IDEMPOTENT: Record<HttpMethod, boolean> = {
  GET: true,
  PUT: true,
  DELETE: true,
  POST: false,
  PATCH: false,
};

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
const MAX_ERROR_TEXT = 500;

/** How one attempt ended (`outcome` is another thing: whether the request was applied). */
type AttemptResult =
  | { ended: 'response'; status: number; headers: Headers; bytes: Uint8Array }
  | { ended: 'network'; failure: NetworkFailure; error: unknown; status?: number; host: string; timeoutMs: number }
  | { ended: 'refused-redirect'; status: number };

interface Verdict {
  /** May this failure be retried for this request? */
  retry: boolean;
  /** Is it safe for the caller to send the request again later, if we give up now? */
  retryable: boolean;
  outcome: RequestOutcome;
  status?: number;
  code: string;
  /**
   * The root cause in a few words ("HTTP 429 Too Many Requests (Retry-After 30 s)", "timed out after
   * 30000 ms", "connection reset (ECONNRESET)"); "after N attempts" is added after it when retries ran out.
   */
  message: string;
  /** What the service said and what to do, appended after the cause. */
  detail?: string;
  requestId?: string;
  retryAfterMs?: number;
  cause?: unknown;
}

export class HttpClient {
  readonly provider: ProviderName;
  readonly service: string;
  private base: string;
  private readonly options: HttpClientOptions;
  private readonly policy: RetryPolicy;
  private readonly semaphore: Semaphore;
  private readonly timer: Timer;
  private readonly random: () => number;
  private readonly fetchImpl: typeof fetch;

  constructor(options: HttpClientOptions) {
    this.options = options;
    this.provider = options.provider;
    this.service = options.service;
    this.base = trimTrailingSlash(options.baseUrl);
    assertHttpUrl(this.base);
    this.policy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.semaphore = new Semaphore(options.concurrency ?? 8);
    this.timer = options.timer ?? systemTimer;
    this.random = options.random ?? Math.random;
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  get baseUrl(): string {
    return this.base;
  }

  /** Points later requests at another base (Qualtrics' "use this host instead" notice). */
  setBaseUrl(baseUrl: string): void {
    const next = trimTrailingSlash(baseUrl);
    assertHttpUrl(next);
    this.base = next;
  }

  /** Whether an absolute URL may receive this client's auth headers. */
  isTrusted(url: URL): boolean {
    if (this.options.isTrustedUrl) return this.options.isTrustedUrl(url);
    return url.origin === new URL(this.base).origin;
  }

  async request<T = unknown>(req: HttpRequest): Promise<HttpResponse<T>> {
    const idempotent = req.idempotent ?? DEFAULT_IDEMPOTENT[req.method];
    const url = this.resolveUrl(req);
    const bodyText = req.bodyJson ?? (req.body === undefined ? undefined : JSON.stringify(req.body));
    const accept = new Set(req.acceptStatuses ?? []);
    let waited = 0;
    for (let attempt = 1; ; attempt++) {
      const result = await this.attempt(req, url, bodyText, attempt, idempotent);
      if (result.ended === 'response' && (isSuccess(result.status) || accept.has(result.status))) {
        const parsed = this.parseBody(req, result);
        if (parsed.ok) return { status: result.status, headers: result.headers, data: parsed.value as T, attempts: attempt };
        // An expected error status (say a 404 page from a proxy) needs no body to be understood.
        if (!isSuccess(result.status)) return { status: result.status, headers: result.headers, data: undefined as T, attempts: attempt };
        const verdict: Verdict = {
          retry: idempotent,
          retryable: idempotent,
          outcome: isSuccess(result.status) ? 'applied' : 'not-applied',
          status: result.status,
          code: 'invalid_response',
          message: `${statusLine(result.status)} with a body that is not valid JSON`,
          detail: `: ${snippet(parsed.text)}`,
        };
        if (!verdict.retry || attempt >= this.policy.maxAttempts) throw this.toError(req, verdict, attempt);
        waited += await this.backoff(req, attempt, undefined, waited, verdict);
        continue;
      }
      const verdict = this.judge(result, idempotent);
      if (!verdict.retry || attempt >= this.policy.maxAttempts) throw this.toError(req, verdict, attempt);
      waited += await this.backoff(req, attempt, verdict.retryAfterMs, waited, verdict);
    }
  }

  /** Sleeps before the next attempt; throws the verdict's error when the wait budget is spent. */
  private async backoff(
    req: HttpRequest,
    attempt: number,
    retryAfterMs: number | undefined,
    waitedSoFar: number,
    verdict: Verdict,
  ): Promise<number> {
    const delay =
      retryAfterMs !== undefined ? Math.min(retryAfterMs, this.policy.maxRetryAfterMs) : backoffDelay(attempt, this.policy, this.random);
    if (waitedSoFar + delay > this.policy.maxTotalDelayMs) {
      throw this.toError(req, verdict, attempt, `the retry time budget of ${seconds(this.policy.maxTotalDelayMs)} s is spent`);
    }
    if (retryAfterMs !== undefined) {
      for (const limiter of [...(this.options.limiters ?? []), ...(req.limiters ?? [])]) limiter.blockFor(delay);
    }
    try {
      await this.timer.sleep(delay, req.signal);
    } catch (cause) {
      throw new ProviderError({
        provider: this.provider,
        service: this.service,
        operation: req.operation,
        message: `cancelled while waiting to retry after ${verdict.message}`,
        retryable: verdict.retryable,
        outcome: verdict.outcome,
        code: 'aborted',
        attempts: attempt,
        cause,
      });
    }
    return delay;
  }

  private resolveUrl(req: HttpRequest): URL {
    if ((req.path === undefined) === (req.url === undefined)) {
      throw new InternalError(`request ${req.operation} must give exactly one of path and url`);
    }
    let url: URL;
    if (req.url !== undefined) {
      url = new URL(req.url);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        throw this.localError(req, `refusing to fetch a ${url.protocol} URL`, 'untrusted_url');
      }
      if (req.auth !== false && !this.isTrusted(url)) {
        throw this.localError(req, `refusing to send credentials to ${url.origin}`, 'untrusted_url');
      }
    } else {
      if (!req.path!.startsWith('/')) throw new InternalError(`request path for ${req.operation} must start with /`);
      url = new URL(this.base + req.path);
    }
    for (const [key, value] of Object.entries(req.query ?? {})) {
      if (value === undefined || value === null || value === '') continue;
      url.searchParams.set(key, String(value));
    }
    return url;
  }

  private localError(req: HttpRequest, message: string, code: string): ProviderError {
    return new ProviderError({
      provider: this.provider,
      service: this.service,
      operation: req.operation,
      message,
      retryable: false,
      outcome: 'not-applied',
      code,
      attempts: 0,
    });
  }

  private headersFor(req: HttpRequest, attempt: number, hasBody: boolean): Record<string, string> {
    const headers: Record<string, string> = {
      accept: req.responseType === 'bytes' ? '*/*' : 'application/json',
      'user-agent': this.options.userAgent ?? 'tidemark',
    };
    if (hasBody) headers['content-type'] = 'application/json';
    if (attempt > 1) headers['x-retry-count'] = String(attempt - 1);
    if (req.auth !== false && this.options.authHeaders) Object.assign(headers, this.options.authHeaders());
    return headers;
  }

  private async attempt(
    req: HttpRequest,
    url: URL,
    bodyText: string | Uint8Array | undefined,
    attempt: number,
    idempotent: boolean,
  ): Promise<AttemptResult> {
    const release = await this.semaphore.acquire(req.signal).catch((cause: unknown) => {
      throw this.abortedError(req, attempt - 1, cause);
    });
    try {
      for (const limiter of [...(this.options.limiters ?? []), ...(req.limiters ?? [])]) {
        await limiter.acquire(req.signal).catch((cause: unknown) => {
          throw this.abortedError(req, attempt - 1, cause);
        });
      }
      const timeoutMs = req.timeoutMs ?? this.options.timeoutMs ?? 30_000;
      const timeout = AbortSignal.timeout(timeoutMs);
      const signal = req.signal ? AbortSignal.any([req.signal, timeout]) : timeout;
      let method = req.method;
      let body = bodyText;
      let target = url;
      for (let hop = 0; ; hop++) {
        let status: number | undefined;
        try {
          const res = await this.fetchImpl(target, {
            method,
            headers: this.headersFor(req, attempt, body !== undefined),
            body,
            redirect: 'manual',
            signal,
          });
          status = res.status;
          if (REDIRECT_STATUSES.has(res.status) && hop < MAX_REDIRECTS) {
            this.emit({ req, method, attempt, idempotent, status: res.status });
            const next = this.redirectTarget(req, target, res, method);
            await res.body?.cancel().catch(() => undefined);
            if (!next) return { ended: 'refused-redirect', status: res.status };
            target = next;
            if (res.status === 303) {
              method = 'GET';
              body = undefined;
            }
            continue;
          }
          const bytes = new Uint8Array(await res.arrayBuffer());
          this.emit({ req, method, attempt, idempotent, status: res.status });
          return { ended: 'response', status: res.status, headers: res.headers, bytes };
        } catch (error) {
          const failure = classifyNetworkError(error, req.signal, timeout.aborted);
          this.emit({ req, method, attempt, idempotent, failure });
          const network = { ended: 'network' as const, failure, error, host: target.host, timeoutMs };
          return status === undefined ? network : { ...network, status };
        }
      }
    } finally {
      release();
    }
  }

  private redirectTarget(req: HttpRequest, from: URL, res: Response, method: HttpMethod): URL | undefined {
    const location = res.headers.get('location');
    if (!location) return undefined;
    const next = new URL(location, from);
    if (next.protocol !== 'http:' && next.protocol !== 'https:') return undefined;
    // 301/302 historically turn writes into GETs; rather than guess, only follow them for reads.
    if ((res.status === 301 || res.status === 302) && method !== 'GET') return undefined;
    if (req.auth !== false && !this.isTrusted(next)) return undefined;
    return next;
  }

  private abortedError(req: HttpRequest, attempts: number, cause: unknown): ProviderError {
    return new ProviderError({
      provider: this.provider,
      service: this.service,
      operation: req.operation,
      message: 'cancelled before the request was sent',
      retryable: true,
      outcome: 'not-applied',
      code: 'aborted',
      attempts,
      cause,
    });
  }

  private emit(e: { req: HttpRequest; method: HttpMethod; attempt: number; idempotent: boolean; status?: number; failure?: NetworkFailure }): void {
    const hook = this.options.onRequest;
    if (!hook) return;
    const event: RequestEvent = {
      provider: this.provider,
      service: this.service,
      operation: e.req.operation,
      method: e.method,
      attempt: e.attempt,
      idempotent: e.idempotent,
    };
    if (e.status !== undefined) event.status = e.status;
    if (e.failure !== undefined) event.failure = e.failure;
    try {
      hook(event);
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
    }
  }

  private parseBody(req: HttpRequest, res: { bytes: Uint8Array }): { ok: true; value: unknown } | { ok: false; text: string } {
    const type = req.responseType ?? 'json';
    if (type === 'bytes') return { ok: true, value: res.bytes };
    const text = new TextDecoder().decode(res.bytes);
    if (type === 'text') return { ok: true, value: text };
    if (text.trim() === '') return { ok: true, value: undefined };
    try {
      return { ok: true, value: JSON.parse(text) };
    } catch {
      return { ok: false, text };
    }
  }

  private judge(result: AttemptResult, idempotent: boolean): Verdict {
    if (result.ended === 'refused-redirect') {
      return {
        retry: false,
        retryable: false,
        outcome: 'not-applied',
        status: result.status,
        code: 'redirect_refused',
        message: `${statusLine(result.status)} redirect that tidemark does not follow`,
        detail: ` (untrusted host or a write redirected with ${result.status})`,
      };
    }
    if (result.ended === 'network') return this.judgeNetwork(result, idempotent);

    const status = result.status;
    const text = new TextDecoder().decode(result.bytes);
    let body: unknown;
    try {
      body = text.trim() === '' ? undefined : JSON.parse(text);
    } catch {
      body = undefined;
    }
    const details = this.options.describeError?.(status, body, text) ?? {};
    const serviceMessage = details.message !== undefined ? snippet(details.message) : body === undefined && text.trim() !== '' ? snippet(text) : undefined;
    const requestId = details.requestId ?? result.headers.get('x-request-id') ?? undefined;
    const retryAfterMs = parseRetryAfter(result.headers.get('retry-after'), this.timer.now());
    const transient = TRANSIENT_STATUSES.has(status);
    // Only these answers prove the service did not process the request.
    const provedNotApplied = status === 429 || (status === 503 && retryAfterMs !== undefined) || (status >= 400 && status < 500 && status !== 408);
    const outcome: RequestOutcome = provedNotApplied ? 'not-applied' : 'unknown';
    const retry = transient && (idempotent || outcome === 'not-applied');
    let detail = serviceMessage ? `: ${serviceMessage}` : '';
    if (!idempotent && outcome === 'unknown') detail += UNKNOWN_OUTCOME_ADVICE;
    const verdict: Verdict = {
      retry,
      retryable: transient && (idempotent || outcome === 'not-applied'),
      outcome,
      status,
      code: details.code ?? genericCode(status),
      message: `${statusLine(status)}${retryAfterMs !== undefined ? ` (Retry-After ${seconds(retryAfterMs)} s)` : ''}`,
      detail,
    };
    if (requestId !== undefined) verdict.requestId = requestId;
    if (retryAfterMs !== undefined) verdict.retryAfterMs = retryAfterMs;
    return verdict;
  }

  private judgeNetwork(result: Extract<AttemptResult, { ended: 'network' }>, idempotent: boolean): Verdict {
    const cause = describeNetworkCause(result.error, result.host);
    const base = { cause: result.error };
    const advice = idempotent ? '' : UNKNOWN_OUTCOME_ADVICE;
    if (result.status !== undefined && isSuccess(result.status)) {
      // The service acknowledged the write; only its answer was lost.
      return {
        ...base,
        retry: idempotent,
        retryable: idempotent,
        outcome: 'applied',
        status: result.status,
        code: 'network',
        message: `${statusLine(result.status)} but the response body could not be read: ${cause}`,
      };
    }
    switch (result.failure) {
      case 'not-connected':
        return { ...base, retry: true, retryable: true, outcome: 'not-applied', code: 'not_connected', message: `could not connect: ${cause}` };
      case 'aborted':
        return { ...base, retry: false, retryable: idempotent, outcome: 'unknown', code: 'aborted', message: 'cancelled while in flight', detail: advice };
      case 'timeout':
        return {
          ...base,
          retry: idempotent,
          retryable: idempotent,
          outcome: 'unknown',
          code: 'timeout',
          message: `timed out after ${result.timeoutMs} ms waiting for ${result.host}`,
          detail: advice,
        };
      case 'dropped':
        return { ...base, retry: idempotent, retryable: idempotent, outcome: 'unknown', code: 'network', message: cause, detail: advice };
    }
  }

  private toError(req: HttpRequest, verdict: Verdict, attempts: number, note?: string): ProviderError {
    const init: ConstructorParameters<typeof ProviderError>[0] = {
      provider: this.provider,
      service: this.service,
      operation: req.operation,
      // The cause comes first and survives retries: "HTTP 429 … (Retry-After 30 s) after 5 attempts: …".
      message: `${verdict.message}${attempts > 1 ? ` after ${attempts} attempts` : ''}${note ? ` (${note})` : ''}${verdict.detail ?? ''}`,
      retryable: verdict.retryable,
      outcome: verdict.outcome,
      code: verdict.code,
      attempts,
    };
    if (verdict.status !== undefined) init.status = verdict.status;
    if (verdict.requestId !== undefined) init.requestId = verdict.requestId;
    if (verdict.retryAfterMs !== undefined) init.retryAfterMs = verdict.retryAfterMs;
    if (verdict.cause !== undefined) init.cause = verdict.cause;
    return new ProviderError(init);
  }
}

const UNKNOWN_OUTCOME_ADVICE =
  '; this write is not idempotent and may or may not have been applied, so it was not retried: refresh live state before sending it again';

function isSuccess(status: number): boolean {
  return status >= 200 && status < 300;
}

function genericCode(status: number): string {
  switch (status) {
    case 400:
      return 'bad_request';
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
      return 'not_found';
    case 408:
      return 'timeout';
    case 409:
      return 'conflict';
    case 413:
      return 'too_large';
    case 422:
      return 'unprocessable';
    case 429:
      return 'rate_limited';
    default:
      return status >= 500 ? 'server_error' : `http_${status}`;
  }
}

/** "HTTP 503 Service Unavailable": the number for searching, the words for reading. */
function statusLine(status: number): string {
  const reason = STATUS_CODES[status];
  return reason ? `HTTP ${status} ${reason}` : `HTTP ${status}`;
}

function seconds(ms: number): string {
  return String(Math.round(ms / 100) / 10);
}

const NETWORK_WORDS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed while sending',
  ETIMEDOUT: 'connection timed out',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'DNS lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  UND_ERR_SOCKET: 'connection closed by the server',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UND_ERR_HEADERS_TIMEOUT: 'timed out waiting for the response headers',
  UND_ERR_BODY_TIMEOUT: 'timed out reading the response body',
};

/**
 * "connection refused (ECONNREFUSED) at 127.0.0.1:4010": what happened in words, the system code to
 * search for, and where. fetch wraps the real error in a generic "fetch failed", so the chain is walked.
 */
function describeNetworkCause(error: unknown, host: string): string {
  let found: { code: string; message: string } | undefined;
  let innermost = '';
  let current: unknown = error;
  for (let depth = 0; depth < 6 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && !found) found = { code, message: current.message };
    innermost = current.message;
    // Happy-eyeballs connects fail with one error per address tried.
    current = current instanceof AggregateError && current.errors.length > 0 ? current.errors[0] : current.cause;
  }
  if (!found) return redact(innermost || String(error));
  const words = NETWORK_WORDS[found.code];
  return redact(words ? `${words} (${found.code}) at ${host}` : `${found.message} (${found.code}) at ${host}`);
}

/** Redacted before it is cut: a cut first can leave the head of a secret that no longer matches it. */
function snippet(text: string): string {
  return redactAndTruncate(text.replace(/\s+/g, ' ').trim(), MAX_ERROR_TEXT);
}

function trimTrailingSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

function assertHttpUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InternalError(`not a valid base URL: ${redact(url)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new InternalError(`base URL must be http(s): ${redact(url)}`);
}

/** Counts wire requests; pass `counter.hook` as `onRequest` (benchmarks and tests use it). */
export class RequestCounter {
  total = 0;
  retries = 0;
  readonly byOperation = new Map<string, number>();
  readonly byStatus = new Map<string, number>();

  readonly hook: RequestHook = (event) => {
    this.total++;
    if (event.attempt > 1) this.retries++;
    this.byOperation.set(event.operation, (this.byOperation.get(event.operation) ?? 0) + 1);
    const key = event.status !== undefined ? String(event.status) : (event.failure ?? 'unknown');
    this.byStatus.set(key, (this.byStatus.get(key) ?? 0) + 1);
  };

  count(operation: string): number {
    return this.byOperation.get(operation) ?? 0;
  }
}
