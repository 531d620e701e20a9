/**
 * Opening a workspace for one environment: which environment, which credentials, which state store, and
 * the resource kinds wired to real clients. With no credentials configured at all, tidemark runs against
 * the embedded sandbox, whose state is kept next to the state store so plan → apply → plan works across
 * invocations.
 */
import path from 'node:path';
import { registerSecret } from '../core/redact.ts';
import { customerioSegmentKind } from '../providers/customerio/kinds/segment.ts';
import { CustomerioClient, customerioConfigFromEnv } from '../providers/customerio/client.ts';
import { RequestCounter } from '../providers/http/http-client.ts';
import type { RetryPolicy } from '../providers/http/retry.ts';
import type { ResourceKind } from '../providers/provider.ts';
import { QualtricsClient, qualtricsConfigFromEnv } from '../providers/qualtrics/client.ts';
import { qualtricsEventSubscriptionKind } from '../providers/qualtrics/kinds/event-subscription.ts';
import { qualtricsMailingListKind } from '../providers/qualtrics/kinds/mailing-list.ts';
import { createSandbox, type RunningSandbox } from '../sandbox/index.ts';
import type { SpecModel } from '../spec/model.ts';
import { openStateStore, type StateStore } from '../state/index.ts';
import type { Clock } from '../core/clock.ts';

export class WorkspaceError extends Error {
  override name = 'WorkspaceError';
}

export interface Connection {
  environment: string;
  mode: 'live' | 'sandbox';
  kinds: Record<string, ResourceKind>;
  customerio: CustomerioClient;
  qualtrics?: QualtricsClient;
  store: StateStore;
  /** API requests made through this connection, by operation. */
  requests: RequestCounter;
  /** Present in sandbox mode. */
  sandbox?: RunningSandbox;
  /** Human notes to show once (e.g. "using the embedded sandbox"). */
  notes: string[];
  close(): Promise<void>;
}

/** Client-side rate limits can be raised for accounts with higher limits (and for the sandbox). */
function rateOverrides(env: NodeJS.ProcessEnv): Record<string, string | undefined> {
  return {
    CUSTOMERIO_TRACK_RATE_PER_SECOND: env.CUSTOMERIO_TRACK_RATE_PER_SECOND,
    CUSTOMERIO_APP_RATE_PER_SECOND: env.CUSTOMERIO_APP_RATE_PER_SECOND,
    QUALTRICS_RATE_PER_MINUTE: env.QUALTRICS_RATE_PER_MINUTE,
  };
}

export function pickEnvironment(model: SpecModel, requested: string | undefined): string {
  const envs = Object.keys(model.workspace?.spec.environments ?? {});
  const env = requested ?? model.workspace?.spec.default_environment ?? (envs.length === 1 ? envs[0] : undefined);
  if (!env) throw new WorkspaceError(`choose an environment with --env (one of: ${envs.join(', ')}), or set default_environment in the Workspace`);
  if (!envs.includes(env)) throw new WorkspaceError(`environment "${env}" is not declared in the Workspace (declared: ${envs.join(', ')})`);
  return env;
}

export interface ConnectOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  environment?: string;
  clock?: Clock;
  /** Force the embedded sandbox even when credentials are set (tests, demos). */
  sandbox?: boolean;
  /** Connect to an already running sandbox instead of starting one. */
  attachSandbox?: RunningSandbox;
  /** Retry policy for both clients (tests shorten the backoff; the defaults suit the real services). */
  retry?: Partial<RetryPolicy>;
}

export async function connect(model: SpecModel, opts: ConnectOptions): Promise<Connection> {
  const ws = model.workspace!.spec;
  const environment = pickEnvironment(model, opts.environment);
  const envCfg = ws.environments[environment]!;
  const stateDir = path.resolve(opts.cwd, ws.state?.backend === 'embedded' ? ws.state.path : '.tidemark');
  const notes: string[] = [];

  const cio = envCfg.customerio;
  const names = [cio.site_id_env, cio.track_api_key_env, cio.app_api_key_env];
  const qNames = envCfg.qualtrics ? [envCfg.qualtrics.api_token_env] : [];
  const present = [...names, ...qNames].filter((n) => opts.env[n]);
  let sandbox = opts.attachSandbox;
  let vars: Record<string, string | undefined>;
  if (opts.sandbox || opts.attachSandbox || present.length === 0) {
    if (!sandbox) {
      const dataFile = path.join(stateDir, 'sandbox', `${environment}.json`);
      sandbox = await createSandbox({ port: 0, dataFile, retryAfterSeconds: 0 });
      notes.push(`No credentials for environment "${environment}": using the embedded sandbox (state in ${path.relative(opts.cwd, dataFile)}).`);
    }
    vars = { ...sandbox.env, ...rateOverrides(opts.env) };
  } else {
    const missing = [...names, ...qNames].filter((n) => !opts.env[n]);
    if (missing.length) {
      throw new WorkspaceError(`environment "${environment}" is missing credentials: set ${missing.join(', ')} (or unset all of them to use the embedded sandbox)`);
    }
    for (const n of [...names, ...qNames]) registerSecret(opts.env[n]);
    vars = {
      CUSTOMERIO_REGION: cio.region,
      CUSTOMERIO_SITE_ID: opts.env[cio.site_id_env],
      CUSTOMERIO_TRACK_API_KEY: opts.env[cio.track_api_key_env],
      CUSTOMERIO_APP_API_KEY: opts.env[cio.app_api_key_env],
      CUSTOMERIO_TRACK_URL: opts.env.CUSTOMERIO_TRACK_URL,
      CUSTOMERIO_APP_URL: opts.env.CUSTOMERIO_APP_URL,
      QUALTRICS_API_TOKEN: envCfg.qualtrics ? opts.env[envCfg.qualtrics.api_token_env] : undefined,
      QUALTRICS_DATACENTER: envCfg.qualtrics?.datacenter,
      QUALTRICS_BASE_URL: opts.env.QUALTRICS_BASE_URL,
      ...rateOverrides(opts.env),
    };
  }

  const requests = new RequestCounter();
  const customerio = new CustomerioClient(
    customerioConfigFromEnv(vars, {
      onRequest: requests.hook,
      ...(opts.retry ? { retry: opts.retry } : {}),
      ...(cio.track_requests_per_second ? { trackRatePerSecond: cio.track_requests_per_second } : {}),
    }),
  );
  const kinds: Record<string, ResourceKind> = { 'customerio.segment': customerioSegmentKind(customerio) };
  let qualtrics: QualtricsClient | undefined;
  if (envCfg.qualtrics) {
    qualtrics = new QualtricsClient(qualtricsConfigFromEnv(vars, { onRequest: requests.hook, ...(opts.retry ? { retry: opts.retry } : {}) }));
    const directory = envCfg.qualtrics.directory_id;
    if (sandbox) {
      // The real brand has this directory already; give the sandbox the same one.
      try {
        sandbox.qualtrics.seedDirectory({ directoryId: directory, name: `${environment} directory` });
      } catch (err) {
        if (!(err instanceof Error && /already exists/.test(err.message))) throw err;
      }
    }
    kinds['qualtrics.mailing_list'] = qualtricsMailingListKind(qualtrics, directory);
    kinds['qualtrics.event_subscription'] = qualtricsEventSubscriptionKind(qualtrics);
  }

  const databaseUrl = ws.state?.backend === 'postgres' ? opts.env[ws.state.url_env] : opts.env.TIDEMARK_DATABASE_URL;
  if (ws.state?.backend === 'postgres' && !databaseUrl) throw new WorkspaceError(`the Workspace keeps state in Postgres: set ${ws.state.url_env}`);
  registerSecret(databaseUrl);
  const store = await openStateStore({ dir: stateDir, env: environment, ...(databaseUrl ? { databaseUrl } : {}), ...(opts.clock ? { clock: opts.clock } : {}) });

  const ownsSandbox = sandbox && !opts.attachSandbox;
  return {
    environment,
    mode: sandbox ? 'sandbox' : 'live',
    kinds,
    customerio,
    qualtrics,
    store,
    requests,
    sandbox,
    notes,
    async close() {
      await store.close();
      if (ownsSandbox) await sandbox!.close();
    },
  };
}
