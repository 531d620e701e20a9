/**
 * The sandbox: emulated Customer.io (Track and App listeners) and Qualtrics on 127.0.0.1, with shared fault
 * injection, request counting, an admin endpoint on every listener, and optional file persistence. tidemark
 * runs against it by default when no credentials are configured; `tidemark sandbox` starts it standalone.
 */
import { createAdminHandler } from './common/admin.ts';
import { createFaultController, type FaultConfig, type FaultController } from './common/faults.ts';
import { startEmulatorServer, type EmulatorServer } from './common/http-server.ts';
import { createPersistence, readJsonFile, type Persistence } from './common/persistence.ts';
import { createRequestCounter } from './common/request-counter.ts';
import { randomUUID } from 'node:crypto';
import type { AdminExtension, Emulator, SandboxResponse } from './common/types.ts';
import { createCustomerioEmulator, type CustomerioEmulator, type SeedSegmentInput } from './customerio/index.ts';
import { ErrorCode, errorEnvelope, QualtricsApiError } from './qualtrics/envelope.ts';
import { createQualtricsEmulator, type QualtricsEmulator } from './qualtrics/index.ts';

export type { FaultConfig, FaultController } from './common/faults.ts';
export type { CustomerioEmulator, SeedSegmentInput } from './customerio/index.ts';
export type { QualtricsEmulator } from './qualtrics/index.ts';

export interface SandboxOptions {
  /** Base port: Track = port, App = port+1, Qualtrics = port+2; 0 or undefined = a random free port for each. */
  port?: number;
  /** Persist all emulator state here; restored on start. */
  dataFile?: string;
  /** Initial faults. */
  faults?: FaultConfig;
  /** PRNG seed for fault injection and emulator randomness (deterministic tests). */
  seed?: number;
  /** Soft Track limit the emulator enforces with 429 + Retry-After (default 1000, per the reference). */
  trackRateLimitPerSecond?: number;
  /** Default 10 (documented App limit). */
  appRateLimitPerSecond?: number;
  /** Default 3000 (passed on to the Qualtrics emulator). */
  qualtricsRateLimitPerMinute?: number;
  /**
   * Retry-After value on rate-limit 429s (default 1; tests use 0). Qualtrics gets it only when set explicitly;
   * otherwise it answers with the time until its bucket has room, as the real service does.
   */
  retryAfterSeconds?: number;
  /** Quiet period before a debounced save of `dataFile`. Default 250 ms. */
  persistDebounceMs?: number;
  /**
   * Customer.io segments to seed on a fresh start (ignored when `dataFile` restored state): typically the
   * data-driven segments a workspace has and the public API cannot create. Members that do not exist are created.
   * An `id` seeds the segment under that id (a Workspace references UI segments by id); a taken id fails the start.
   */
  customerioSegments?: SeedSegmentInput[];
  /**
   * XM directories the brand already has (a Workspace names them; the API cannot create one). Each is added
   * when missing: on start, after a restore, and after a reset, so clients never meet a 404 for them.
   */
  qualtricsDirectories?: Array<{ directoryId: string; name?: string }>;
  /**
   * The emulated services' clock (default: the system's). A run at an injected time (`tidemark start
   * --now`) gives the sandbox the same time, moving on from it, so a survey link that expires after that
   * time is not refused as already expired.
   */
  now?: () => Date;
}

export interface RunningSandbox {
  /** e.g. http://127.0.0.1:4010 (no path). */
  urls: { customerioTrack: string; customerioApp: string; qualtrics: string };
  /** Everything a client needs to point at the sandbox (see SANDBOX_CREDENTIALS). */
  env: Record<string, string>;
  /** Direct, in-process inspection and seeding. */
  customerio: CustomerioEmulator;
  qualtrics: QualtricsEmulator;
  /** Set/merge/clear/get faults in process (same as the admin endpoint). */
  faults: FaultController;
  /** "POST /api/v2/batch" -> n, across all listeners (route templates, not raw paths). */
  requestCounts(): Record<string, number>;
  resetRequestCounts(): void;
  /** Stops the listeners and flushes persistence. */
  close(): Promise<void>;
}

/** The fixed credentials the sandbox accepts; anything else gets the services' documented 401s. */
export const SANDBOX_CREDENTIALS = {
  CUSTOMERIO_SITE_ID: 'sandbox-site',
  CUSTOMERIO_TRACK_API_KEY: 'sandbox-track-key',
  CUSTOMERIO_APP_API_KEY: 'sandbox-app-key',
  CUSTOMERIO_REGION: 'us',
  QUALTRICS_API_TOKEN: 'sandbox-qualtrics-token',
  QUALTRICS_DATACENTER: 'iad1', // what the emulator's whoami reports
} as const;

const SNAPSHOT_FORMAT = 'tidemark-sandbox';

interface SandboxSnapshot {
  format: typeof SNAPSHOT_FORMAT;
  version: 1;
  savedAt: string;
  services: { customerio?: unknown; qualtrics?: unknown };
}

function isSnapshot(v: unknown): v is SandboxSnapshot {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as Record<string, unknown>;
  return s.format === SNAPSHOT_FORMAT && s.version === 1 && typeof s.services === 'object' && s.services !== null;
}

// Distinct, fixed offsets so each consumer of the seed gets its own reproducible sequence.
const deriveSeed = (seed: number | undefined, salt: number): number | undefined =>
  seed === undefined ? undefined : (Math.imul(seed ^ salt, 0x9e3779b1) >>> 0);

export async function createSandbox(options: SandboxOptions = {}): Promise<RunningSandbox> {
  const customerio = createCustomerioEmulator({
    siteId: SANDBOX_CREDENTIALS.CUSTOMERIO_SITE_ID,
    trackApiKey: SANDBOX_CREDENTIALS.CUSTOMERIO_TRACK_API_KEY,
    appApiKey: SANDBOX_CREDENTIALS.CUSTOMERIO_APP_API_KEY,
    trackRateLimitPerSecond: options.trackRateLimitPerSecond ?? 1000,
    appRateLimitPerSecond: options.appRateLimitPerSecond ?? 10,
    retryAfterSeconds: options.retryAfterSeconds ?? 1,
    ...(options.seed !== undefined ? { seed: deriveSeed(options.seed, 0x0c10) } : {}),
  });
  const qualtrics = createQualtricsEmulator({
    apiToken: SANDBOX_CREDENTIALS.QUALTRICS_API_TOKEN,
    rateLimitPerMinute: options.qualtricsRateLimitPerMinute ?? 3000,
    ...(options.retryAfterSeconds !== undefined ? { retryAfterSeconds: options.retryAfterSeconds } : {}),
    ...(options.seed !== undefined ? { seed: deriveSeed(options.seed, 0x0a17) } : {}),
    ...(options.now ? { now: options.now } : {}),
  });

  let restored = false;
  if (options.dataFile !== undefined) {
    const doc = await readJsonFile(options.dataFile);
    if (doc !== undefined) {
      restored = true;
      if (!isSnapshot(doc)) {
        throw new Error(`sandbox data file ${options.dataFile} is not a tidemark sandbox snapshot (format "${SNAPSHOT_FORMAT}", version 1)`);
      }
      if (doc.services.customerio !== undefined) customerio.restore(doc.services.customerio);
      if (doc.services.qualtrics !== undefined) qualtrics.restore(doc.services.qualtrics);
    }
  }

  if (!restored) {
    for (const seg of options.customerioSegments ?? []) customerio.seedSegment({ createMissingPeople: true, ...seg });
  }
  const seedDirectories = (): void => {
    for (const d of options.qualtricsDirectories ?? []) {
      if (!qualtrics.hasDirectory(d.directoryId)) qualtrics.seedDirectory({ directoryId: d.directoryId, name: d.name ?? null });
    }
  };
  seedDirectories();

  const faults = createFaultController({
    ...(options.seed !== undefined ? { seed: deriveSeed(options.seed, 0x0fa1) } : {}),
    ...(options.faults ? { initial: options.faults } : {}),
  });
  const counter = createRequestCounter();
  const persistence: Persistence | undefined =
    options.dataFile === undefined
      ? undefined
      : createPersistence({
          file: options.dataFile,
          ...(options.persistDebounceMs !== undefined ? { debounceMs: options.persistDebounceMs } : {}),
          collect: (): SandboxSnapshot => ({
            format: SNAPSHOT_FORMAT,
            version: 1,
            savedAt: new Date().toISOString(),
            services: { customerio: customerio.snapshot(), qualtrics: qualtrics.snapshot() },
          }),
        });
  const onMutation = (): void => persistence?.markDirty();

  // The Qualtrics emulator serves its own admin routes from handle(); mounting it as an extension makes them
  // reachable on every listener like the rest of the admin endpoint.
  const qualtricsAdmin: AdminExtension = { prefix: 'qualtrics', handle: (req) => qualtrics.handle(req, {}) };
  const admin = createAdminHandler({
    faults,
    counter,
    extensions: [customerio.admin, qualtricsAdmin],
    resetAll: () => {
      customerio.reset();
      qualtrics.reset();
      counter.reset();
      seedDirectories();
    },
    onMutation,
  });

  const base = options.port ?? 0;
  const portFor = (offset: number): number => (base === 0 ? 0 : base + offset);
  const servers: EmulatorServer[] = [];
  try {
    for (const [emulator, scope, offset] of [
      [customerio.track, 'track', 0],
      [customerio.app, 'app', 1],
      [withQualtricsFaultBodies(qualtrics), 'qualtrics', 2],
    ] as const) {
      servers.push(await startEmulatorServer({ emulator, scope, faults, counter, admin, port: portFor(offset), onMutation }));
    }
  } catch (err) {
    await Promise.all(servers.map((s) => s.close()));
    throw err;
  }
  const [track, app, qualtricsServer] = servers as [EmulatorServer, EmulatorServer, EmulatorServer];

  const env: Record<string, string> = {
    CUSTOMERIO_TRACK_URL: track.url,
    CUSTOMERIO_APP_URL: app.url,
    QUALTRICS_BASE_URL: qualtricsServer.url,
    ...SANDBOX_CREDENTIALS,
  };

  let closing: Promise<void> | undefined;
  return {
    urls: { customerioTrack: track.url, customerioApp: app.url, qualtrics: qualtricsServer.url },
    env,
    customerio,
    qualtrics,
    faults,
    requestCounts: () => counter.snapshot(),
    resetRequestCounts: () => counter.reset(),
    close() {
      closing ??= (async () => {
        await Promise.all(servers.map((s) => s.close()));
        await persistence?.close();
      })();
      return closing;
    },
  };
}

/**
 * Injected faults on the Qualtrics listener carry the Qualtrics error envelope (`meta.httpStatus`,
 * `meta.error.errorCode`), built with the Qualtrics emulator's own helpers, unless that emulator answers
 * injected faults itself.
 */
function withQualtricsFaultBodies(qualtrics: QualtricsEmulator): Emulator {
  if (qualtrics.faultResponse) return qualtrics;
  const faultResponse = (status: number, _req: unknown, retryAfterSeconds?: number): SandboxResponse => {
    const headers: Record<string, string> = retryAfterSeconds !== undefined ? { 'retry-after': String(retryAfterSeconds) } : {};
    // Codes other than rate limiting are chosen (Qualtrics documents none for these); each error carries one.
    const [code, message] =
      status === 429
        ? [ErrorCode.rateLimited, 'Too many requests. Please slow down and retry later.']
        : status === 503
          ? ['SVC_503', 'Service temporarily unavailable. Please retry later.']
          : status === 502
            ? ['SVC_502', 'Bad gateway. Please retry later.']
            : ['SVC_500', 'Internal server error.'];
    return errorEnvelope(new QualtricsApiError(status, code, message, headers), randomUUID(), undefined);
  };
  return {
    service: qualtrics.service,
    handle: (req, f) => qualtrics.handle(req, f),
    snapshot: () => qualtrics.snapshot(),
    restore: (s) => qualtrics.restore(s),
    reset: () => qualtrics.reset(),
    ...(qualtrics.routeTemplate ? { routeTemplate: (m: string, p: string) => qualtrics.routeTemplate!(m, p) } : {}),
    faultResponse,
  };
}
