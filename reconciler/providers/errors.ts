/**
 * The one error type every provider client throws for a failed remote call (or a request refused locally
 * before it was sent). The apply executor and the sync engine turn it into a `PROV…` diagnostic; they
 * branch on `retryable` and `outcome`, never on the message text.
 *
 * Secrets: the message (and the message of any wrapped cause) is passed through `redact` when the error
 * is built, request headers are never copied in, and `toJSON` lists only the fields below. So
 * `String(err)`, `err.stack` and `JSON.stringify(err)` are safe to log as long as credentials were
 * registered with `registerSecret` before the request (the clients do this when they are configured).
 */
import { redact } from '../core/redact.ts';
import { UserError } from '../core/user-error.ts';

export type ProviderName = 'customerio' | 'qualtrics';

/**
 * What is known about whether the failed request took effect on the remote side.
 * - `not-applied`: the service refused it (4xx, 429) or it never left this process (connection refused,
 *   local validation). Repeating it cannot duplicate anything.
 * - `unknown`: it may or may not have been applied (timeout, connection dropped mid-flight, 5xx). For a
 *   non-idempotent write the caller must refresh live state before deciding to send it again.
 * - `applied`: the service acknowledged it (2xx) but its answer could not be read or understood.
 */
export type RequestOutcome = 'not-applied' | 'unknown' | 'applied';

export interface ProviderErrorInit {
  provider: ProviderName;
  /** Which API of the provider (`track`, `app`, …), shown in the message when it differs from the provider. */
  service?: string;
  /** Stable operation name, e.g. `segments.create`; never contains identifiers or emails. */
  operation: string;
  message: string;
  status?: number;
  /** True when sending the same request again later is safe and may succeed. */
  retryable: boolean;
  /** The service's error code when it gave one, otherwise one of tidemark's generic codes. */
  code?: string;
  requestId?: string;
  outcome?: RequestOutcome;
  /** How long the service asked us to wait (Retry-After), when it said so. */
  retryAfterMs?: number;
  /** Number of HTTP attempts made before giving up (0 when refused locally). */
  attempts?: number;
  cause?: unknown;
}

// A UserError: a refused or failed call is shown as its message (service, operation, root cause), not as a bug.
export class ProviderError extends UserError {
  override name = 'ProviderError';
  readonly provider: ProviderName;
  readonly service?: string;
  readonly operation: string;
  /** The message without the "provider service API operation: " prefix (redacted), for callers that name those themselves. */
  readonly reason: string;
  readonly status?: number;
  readonly retryable: boolean;
  readonly code?: string;
  readonly requestId?: string;
  readonly outcome: RequestOutcome;
  readonly retryAfterMs?: number;
  readonly attempts?: number;

  constructor(init: ProviderErrorInit) {
    const api = init.service && init.service !== init.provider ? ` ${init.service} API` : '';
    const text = redact(`${init.provider}${api} ${init.operation}: ${init.message}`);
    super(text, init.cause === undefined ? {} : { cause: sanitizeCause(init.cause) });
    this.provider = init.provider;
    if (init.service !== undefined) this.service = init.service;
    this.operation = init.operation;
    this.reason = redact(init.message);
    if (init.status !== undefined) this.status = init.status;
    this.retryable = init.retryable;
    if (init.code !== undefined) this.code = redact(init.code);
    if (init.requestId !== undefined) this.requestId = redact(init.requestId);
    this.outcome = init.outcome ?? 'not-applied';
    if (init.retryAfterMs !== undefined) this.retryAfterMs = init.retryAfterMs;
    if (init.attempts !== undefined) this.attempts = init.attempts;
  }

  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = {
      name: this.name,
      provider: this.provider,
      ...(this.service !== undefined ? { service: this.service } : {}),
      operation: this.operation,
      message: this.message,
      retryable: this.retryable,
      outcome: this.outcome,
    };
    if (this.status !== undefined) out.status = this.status;
    if (this.code !== undefined) out.code = this.code;
    if (this.requestId !== undefined) out.requestId = this.requestId;
    if (this.retryAfterMs !== undefined) out.retryAfterMs = this.retryAfterMs;
    if (this.attempts !== undefined) out.attempts = this.attempts;
    return out;
  }
}

export function isProviderError(e: unknown): e is ProviderError {
  return e instanceof ProviderError;
}

/**
 * Causes come from fetch/undici or from our own code; their messages are redacted too, and the chain is
 * rebuilt from plain Errors so no foreign object (which might hold a request with headers) is retained.
 */
function sanitizeCause(cause: unknown, depth = 0): Error {
  if (cause instanceof ProviderError) return cause;
  const source = cause instanceof Error ? cause : undefined;
  const message = source ? source.message : String(cause);
  const nested = source && source.cause !== undefined && depth < 4 ? sanitizeCause(source.cause, depth + 1) : undefined;
  const copy = new Error(redact(message), nested ? { cause: nested } : undefined);
  if (source) {
    copy.name = source.name;
    const code = (source as { code?: unknown }).code;
    if (typeof code === 'string') (copy as Error & { code?: string }).code = code;
  }
  copy.stack = `${copy.name}: ${copy.message}`;
  return copy;
}
