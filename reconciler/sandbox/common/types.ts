/**
 * The contract between the generic sandbox server plumbing (listening, fault injection, admin endpoint,
 * persistence) and each service emulator. An emulator is a function from a request to a response plus
 * its own state; it knows nothing about sockets, so it can be exercised directly and wrapped uniformly.
 *
 * The emulators share NO code with tidemark's API clients (reconciler/providers): an emulator built from
 * the client's own understanding of the API would share its misreadings, and tests would prove nothing.
 */

export interface SandboxRequest {
  method: string;
  /** Full URL as received, e.g. http://127.0.0.1:4010/api/v1/customers/42?x=1 */
  url: URL;
  /** Header names lowercased. */
  headers: Record<string, string | undefined>;
  body: Buffer;
}

export interface SandboxResponse {
  status: number;
  headers?: Record<string, string>;
  /** Serialised as JSON with `application/json; charset=utf-8` unless `raw` is given. */
  json?: unknown;
  /** Raw bytes (downloads, zip files); set a content-type header yourself. */
  raw?: Buffer;
}

/** Faults an emulator applies itself because they need service knowledge (e.g. 207 partial batches). */
export interface ServiceFaults {
  /** Share (0..1) of entries in a Customer.io v2 batch to fail with a per-entry error in a 207. */
  partialFailureRate?: number;
}

export interface Emulator {
  readonly service: string;
  handle(req: SandboxRequest, faults: ServiceFaults): Promise<SandboxResponse>;
  /** Plain JSON-serialisable copy of all state, for persistence to a file. */
  snapshot(): unknown;
  restore(snapshot: unknown): void;
  reset(): void;
  /**
   * Route template a request matches (`/api/v1/customers/{identifier}`), used to count requests per route for
   * benchmarks without one key per customer. Undefined when nothing matches; the server then counts the request
   * under `<unmatched>`. Optional so an emulator can start without it.
   */
  routeTemplate?(method: string, pathname: string): string | undefined;
  /**
   * The response this service would send for an injected fault status (429, 500, 502, 503), so injected faults
   * carry the service's own error envelope and headers. `retryAfterSeconds` is set for 429s. When absent, the
   * server sends a generic JSON error.
   */
  faultResponse?(status: number, req: SandboxRequest, retryAfterSeconds?: number): SandboxResponse;
}

/**
 * Service-specific admin routes, mounted under `/__sandbox/<prefix>/…` on every listener (e.g. seeding a
 * data-driven Customer.io segment). `subpath` is what follows the prefix, starting with `/`. Returning
 * undefined means "no such admin route" (404).
 */
export interface AdminExtension {
  prefix: string;
  handle(req: SandboxRequest, subpath: string): Promise<SandboxResponse | undefined>;
}
