/**
 * Opening a workspace for one environment: which environment, which credentials, which state store, and
 * the resource kinds wired to real clients. With no credentials configured at all, tidemark runs against
 * the embedded sandbox, whose state is kept next to the state store so plan → apply → plan works across
 * invocations.
 */
import path from 'node:path';
import { redact, registerSecret } from '../core/redact.ts';
import { UserError } from '../core/user-error.ts';
import { CustomerioClient, customerioConfigFromEnv } from '../providers/customerio/client.ts';
import { RequestCounter } from '../providers/http/http-client.ts';
import type { RetryPolicy } from '../providers/http/retry.ts';
import type { ResourceKind } from '../kinds/kind.ts';
import { QualtricsClient, qualtricsConfigFromEnv } from '../providers/qualtrics/client.ts';
import type { RunningSandbox } from '../sandbox/index.ts';
import type { SpecModel } from '../spec/model.ts';
import { locate } from '../spec/parse.ts';
import { openStateStore, type StateStore } from '../state/index.ts';
import { systemClock, type Clock } from '../core/clock.ts';
import { configKinds } from '../kinds/index.ts';
import { resolveWebhookSecret } from '../responses/webhook-secret.ts';
import { explainServiceError, type ServiceErrorContext } from './service-errors.ts';
import { referencedUiSegments } from './ui-segments.ts';
import { sandboxSurveys } from './survey-mapping.ts';
import {
  checkStateInCi,
  checkStateTarget,
  chooseTarget,
  credentialNames,
  credentialValue,
  liveTarget,
  sandboxTarget,
  type RecordedTarget,
  type TargetIdentity,
} from './target.ts';

/** A setup the user can fix: the environment, its credentials, the target or the state's owner. */
export class SetupError extends UserError {
  override name = 'SetupError';
}

export interface Connection {
  environment: string;
  mode: 'live' | 'sandbox';
  /** The state folder (embedded store, rejects files, the embedded sandbox's data). */
  stateDir: string;
  /** What this connection talks to; every output names it. */
  target: TargetIdentity;
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
  if (!env) throw new SetupError(`choose an environment with --env (one of: ${envs.join(', ')}), or set default_environment in the Workspace`);
  if (!envs.includes(env)) throw new SetupError(`environment "${env}" is not declared in the Workspace (declared: ${envs.join(', ')})`);
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
  const choice = opts.attachSandbox ? ({ outcome: 'sandbox', reason: 'chosen' } as const) : chooseTarget(environment, envCfg, opts.env, !!opts.sandbox);
  if (choice.outcome === 'refused') throw new SetupError(choice.message);
  let sandbox = opts.attachSandbox;
  let vars: Record<string, string | undefined>;
  let target: TargetIdentity;
  if (choice.outcome === 'sandbox') {
    const dataFile = path.join(stateDir, 'sandbox', `${environment}.json`);
    if (!sandbox) {
      // Loaded only when chosen: the emulators are a third of what a command against a live workspace would
      // load for nothing (~0.3 s; docs/BENCHMARKS.md, issue 15).
      const { createSandbox } = await import('../sandbox/index.ts');
      // The sandbox lives at the run's time (an injected `--now`), moving on from it as real time does.
      const offset = opts.clock && opts.clock !== systemClock ? opts.clock.now().getTime() - Date.now() : undefined;
      sandbox = await createSandbox({ port: 0, dataFile, retryAfterSeconds: 0, ...(offset !== undefined ? { now: () => new Date(Date.now() + offset) } : {}) });
      // The real workspace has the segments built in its UI; stand in for those the sandbox lacks.
      sandbox.customerio.seedReferencedSegments(referencedUiSegments(model, environment));
      notes.push(
        choice.reason === 'chosen'
          ? `Using the embedded sandbox for environment "${environment}" (--sandbox); its data is in ${path.relative(opts.cwd, dataFile)}.`
          : `No credentials for environment "${environment}" (${credentialNames(envCfg).join(', ')}): using the embedded sandbox (data in ${path.relative(opts.cwd, dataFile)}).`,
      );
    }
    target = sandboxTarget(environment, opts.attachSandbox ? undefined : path.relative(opts.cwd, dataFile));
    vars = { ...sandbox.env, ...rateOverrides(opts.env) };
  } else {
    // The site id is not a secret (it is in every storefront's tracking snippet) and outputs name it.
    for (const n of credentialNames(envCfg)) if (n !== cio.site_id_env) registerSecret(credentialValue(opts.env, n));
    target = liveTarget(envCfg, opts.env);
    vars = {
      CUSTOMERIO_REGION: cio.region,
      CUSTOMERIO_SITE_ID: credentialValue(opts.env, cio.site_id_env),
      CUSTOMERIO_TRACK_API_KEY: credentialValue(opts.env, cio.track_api_key_env),
      CUSTOMERIO_APP_API_KEY: credentialValue(opts.env, cio.app_api_key_env),
      CUSTOMERIO_TRACK_URL: checkedUrl(opts.env, 'CUSTOMERIO_TRACK_URL'),
      CUSTOMERIO_APP_URL: checkedUrl(opts.env, 'CUSTOMERIO_APP_URL'),
      QUALTRICS_API_TOKEN: envCfg.qualtrics ? credentialValue(opts.env, envCfg.qualtrics.api_token_env) : undefined,
      QUALTRICS_DATACENTER: envCfg.qualtrics?.datacenter,
      QUALTRICS_BASE_URL: checkedUrl(opts.env, 'QUALTRICS_BASE_URL'),
      ...rateOverrides(opts.env),
    };
  }

  const databaseUrl = ws.state?.backend === 'postgres' ? opts.env[ws.state.url_env]?.trim() : opts.env.TIDEMARK_DATABASE_URL?.trim();
  if (ws.state?.backend === 'postgres' && !databaseUrl) throw new SetupError(`the Workspace keeps state in Postgres: set ${ws.state.url_env}`);
  registerSecret(databaseUrl);
  if (databaseUrl) checkDatabaseUrl(databaseUrl, ws.state?.backend === 'postgres' ? ws.state.url_env : 'TIDEMARK_DATABASE_URL');
  // The sandbox keeps its own state beside the live one, so trying something on the sandbox never
  // mixes its ids into the state of the real workspace (nor blocks it: see checkStateTarget).
  // So does a run against services on this machine (a standalone `tidemark sandbox`): its ids would
  // otherwise claim the state the real credentials need.
  const stateEnv = target.mode === 'sandbox' ? `${environment}.sandbox` : target.loopback ? `${environment}.local` : environment;
  // Decided before any service is called: a CI run that would lose its state stops here.
  const ciState = checkStateInCi(target, opts.env, {
    environment,
    embedded: !databaseUrl,
    stateLocation: path.relative(opts.cwd, path.join(stateDir, `state-${stateEnv}.sqlite`)),
    workspaceStateAt: `${model.workspace!.pd.file}:${locate(model.workspace!.pd, ws.state ? ['state'] : []).start.line}`,
  });
  if (!ciState.ok) throw new SetupError(ciState.message);

  const requests = new RequestCounter();
  const customerio = new CustomerioClient(
    customerioConfigFromEnv(vars, {
      onRequest: requests.hook,
      ...(opts.retry ? { retry: opts.retry } : {}),
      ...(cio.track_requests_per_second ? { trackRatePerSecond: cio.track_requests_per_second } : {}),
    }),
  );
  const explainCtx = { environment, envCfg, keyAt: workspaceKeyAt(model, environment), target };
  if (target.mode === 'live') await checkRegion(customerio, explainCtx);
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
      // So does it have the surveys the targets name (those the sandbox has are kept as they are, edits included).
      sandbox.qualtrics.seedReferencedSurveys(sandboxSurveys(model));
    }
  }
  const ownsSandbox = sandbox && !opts.attachSandbox;
  let store: StateStore;
  let kinds: ReturnType<typeof configKinds>;
  try {
    store = await openStateStore({ dir: stateDir, env: stateEnv, ...(databaseUrl ? { databaseUrl } : {}), ...(opts.clock ? { clock: opts.clock } : {}) });
  } catch (err) {
    // A state folder that cannot be used must not leave the sandbox's server running (the CLI would hang).
    if (ownsSandbox) await sandbox!.close().catch(() => undefined);
    throw err;
  }
  const closeAll = async () => {
    await store.close();
    if (ownsSandbox) await sandbox!.close();
  };
  try {
    // Subscriptions are created with the key the receiver verifies against; the sandbox keeps a generated
    // one in the state folder, read once the store has proven the folder usable.
    const webhookSecret = resolveWebhookSecret({
      environment,
      envCfg,
      env: opts.env,
      mode: target.mode === 'sandbox' || target.loopback ? 'sandbox' : 'live',
      stateDir,
      location: workspaceKeyAt(model, environment)(['qualtrics', 'responses_webhook_secret_env']),
    });
    kinds = configKinds(envCfg, { customerio, ...(qualtrics ? { qualtrics } : {}), ...(webhookSecret ? { webhookSecret } : {}) });
    await claimState(store, target, model, environment, opts.clock?.now() ?? new Date());
  } catch (err) {
    await closeAll();
    throw err;
  }

  return {
    environment,
    mode: sandbox ? 'sandbox' : 'live',
    stateDir,
    target,
    kinds,
    customerio,
    qualtrics,
    store,
    requests,
    sandbox,
    notes,
    close: closeAll,
  };
}

/** Points at an environment's key in the Workspace file, with its line, for messages about the setup. */
export function workspaceKeyAt(model: SpecModel, environment: string): (path: readonly string[]) => string {
  const ws = model.workspace!;
  return (p) => {
    const at = locate(ws.pd, ['environments', environment, ...p]);
    return `environments.${environment}.${p.join('.')} (${at.file}:${at.start.line})`;
  };
}

/**
 * One cheap call before anything else: it proves the Track credentials, and it catches a Workspace whose
 * region is not the account's, which otherwise shows up as puzzling 401s or, worse, data sent nowhere.
 */
async function checkRegion(client: CustomerioClient, c: ServiceErrorContext): Promise<void> {
  let info;
  try {
    info = await client.getRegion();
  } catch (err) {
    const why = explainServiceError(err, c);
    if (why) throw new SetupError(why, { cause: err });
    throw err;
  }
  const declared = c.envCfg.customerio.region;
  if (info.region.toLowerCase() !== declared) {
    throw new SetupError(
      `the Customer.io workspace of environment "${c.environment}" (site ${c.target.customerio?.site_id}) is in region ${info.region}, but ` +
        `${c.keyAt(['customerio', 'region'])} says ${declared}. Set it to ${info.region.toLowerCase()}, or check ${c.envCfg.customerio.site_id_env}.`,
    );
  }
}

const TARGET_CURSOR = 'tidemark.target';

/** Refuses a state made against other services; records the target in a state that has none yet. */
async function claimState(store: StateStore, target: TargetIdentity, model: SpecModel, environment: string, now: Date): Promise<void> {
  const raw = await store.getCursor(TARGET_CURSOR);
  let recorded: RecordedTarget | undefined;
  if (raw !== undefined) {
    try {
      recorded = JSON.parse(raw) as RecordedTarget;
    } catch {
      recorded = { id: raw, label: raw, recorded_at: 'at an unknown time' };
    }
  }
  const empty = recorded !== undefined || (await stateIsEmpty(store, model));
  const check = checkStateTarget(recorded, target, empty, { environment, stateLocation: store.location, now });
  if (!check.ok) throw new SetupError(check.message);
  if (check.record) await store.setCursor(TARGET_CURSOR, JSON.stringify(check.record));
}

async function stateIsEmpty(store: StateStore, model: SpecModel): Promise<boolean> {
  if ((await store.listManaged()).length > 0) return false;
  if ((await store.listApplies(1)).length > 0) return false;
  for (const name of model.sources.keys()) if ((await store.lastRuns(name, 1)).length > 0) return false;
  return true;
}

/** Says what is wrong with a state database URL without printing it: it holds a password. */
function checkDatabaseUrl(url: string, name: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new SetupError(`${name} is not a valid URL: expected postgres://user:password@host:5432/database`);
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new SetupError(`${name} must start with postgres:// or postgresql://, not ${u.protocol}//`);
  }
  for (const [part, value] of [['user name', u.username], ['password', u.password]] as const) {
    try {
      decodeURIComponent(value);
    } catch {
      throw new SetupError(
        `the ${part} in ${name} has a "%" that does not start a valid escape (like %zz): percent-encode special characters in it (% is %25, @ is %40, / is %2F)`,
      );
    }
  }
}

/** An override URL that is not http(s) is a mistake to name now, not a fetch error later. */
function checkedUrl(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name]?.trim();
  if (!v) return undefined;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new SetupError(`${name} is not a URL (got "${redact(v)}"): expected something like https://host or http://127.0.0.1:4010`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new SetupError(`${name} must be an http:// or https:// URL, not ${u.protocol}//: check the variable's value`);
  }
  return v;
}
