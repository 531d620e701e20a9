/**
 * Shared plumbing for the sync engine's sandbox-backed tests: a throwaway project (its own Workspace,
 * field registry and sources, data files next to them, embedded state in its `.tidemark/`), workspaces
 * attached to the test file's sandbox, the CLI run in-process or as a real child process against that
 * sandbox, and readers for the rejects files the engine writes.
 *
 * The fixture's registry is small and deliberate: a state field with its updated_at companion
 * (`vip_tier`), a clearable field (`preferred_store`), one field of every type, email and phone
 * attributes, a long text (`profile_blurb`, to make batches large), a stamp field owned by tidemark, an
 * event (`return_created`) and an object type (stores).
 */
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { openEnvironment, type OpenEnvironment } from '../../reconciler/composition/use-cases.ts';
import { main } from '../../reconciler/cli/main.ts';
import type { Clock } from '../../reconciler/core/clock.ts';
import { createSandbox, type RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { syncSource, type SyncOptions, type SyncReport } from '../../reconciler/sync/run.ts';
import type { Connector } from '../../reconciler/sync/types.ts';
import { Writable } from 'node:stream';

export const REPO = path.resolve(import.meta.dirname, '../..');

/** Backoff in milliseconds instead of seconds: injected faults are retried without real waiting. */
export const FAST_RETRY = { maxAttempts: 10, baseDelayMs: 1, maxDelayMs: 4, maxRetryAfterMs: 5, maxTotalDelayMs: 2_000 };

/** The names of the credential variables the fixture Workspace declares. */
export const CREDENTIAL_VARS = { site: 'SYNC_TEST_CIO_SITE_ID', track: 'SYNC_TEST_CIO_TRACK_API_KEY', app: 'SYNC_TEST_CIO_APP_API_KEY' } as const;

export function workspaceYaml(
  primary: 'id' | 'email' = 'id',
  policy: Record<string, 'error' | 'warning' | 'off'> = {},
  stateBackend: 'embedded' | 'postgres' = 'embedded',
): string {
  const policies = Object.entries(policy);
  return `kind: Workspace
name: sync_tests
identity:
  primary: ${primary}
normalization:
  email: { trim: true, lowercase: true }
  phone: { format: e164, default_country: US }
# Every system that owns a fixture field, so a project may declare any subset of the sources.
systems:
  crm: {}
  warehouse: {}
  returns: {}
  stores: {}
environments:
  test:
    customerio:
      region: us
      site_id_env: ${CREDENTIAL_VARS.site}
      track_api_key_env: ${CREDENTIAL_VARS.track}
      app_api_key_env: ${CREDENTIAL_VARS.app}
default_environment: test
state:
${stateBackend === 'postgres' ? '  backend: postgres\n  url_env: TIDEMARK_DATABASE_URL' : '  backend: embedded\n  path: .tidemark'}
${policies.length ? `policy:\n${policies.map(([code, level]) => `  ${code}: ${level}`).join('\n')}\n` : ''}`;
}

export const FIELDS_YAML = `kind: Fields
name: sync_tests
fields:
  email:
    type: string
    format: email
    owner: crm
    pii: true
  phone:
    type: string
    format: phone
    owner: crm
    pii: true
  order_count:
    type: number
    nature: measure
    owner: crm
  accepts_marketing:
    type: boolean
    owner: crm
  last_seen_at:
    type: timestamp
    owner: crm
  preferred_store:
    type: string
    owner: crm
    clearable: true
  profile_blurb:
    type: string
    owner: crm
  vip_tier:
    type: enum
    values: [none, silver, gold, platinum]
    nature: state
    owner: warehouse
    updated_at: vip_tier_updated_at
  vip_tier_updated_at:
    type: timestamp
    owner: warehouse
  last_synced_by_tidemark:
    type: timestamp
    owner: tidemark
  return_reason:
    type: string
    nature: action
    owner: returns
  return_value:
    type: number
    nature: measure
    owner: returns
  store_name:
    type: string
    owner: stores
  store_city:
    type: string
    owner: stores
events:
  return_created:
    owner: returns
    stage: post_delivery
`;

/** A person source over an NDJSON file, keyed by customer id (edit fields and options per test). */
export function personSource(o: {
  name?: string;
  system?: string;
  file?: string;
  connector?: string;
  fields: Record<string, string>;
  ordering?: string;
  timezone?: string;
  schedule?: string;
  freshness?: string;
  latency?: string;
  identity?: { column: string; as: 'id' | 'email' | 'phone' };
  extra?: string;
}): string {
  const name = o.name ?? 'customers';
  const connector = o.connector ?? `{ type: ndjson, path: data/${o.file ?? `${name}.ndjson`} }`;
  const identity = o.identity ?? { column: 'customer_id', as: 'id' };
  return `kind: Source
name: ${name}
system: ${o.system ?? 'crm'}
connector: ${connector}
schedule: "${o.schedule ?? '0 * * * *'}"
records: person
identity: { column: ${identity.column}, as: ${identity.as} }
${o.ordering ? `ordering: ${o.ordering}\n` : ''}timezone: ${o.timezone ?? 'UTC'}
fields:
${Object.entries(o.fields).map(([f, c]) => `  ${f}: ${c}`).join('\n') || '  {}'}
freshness: { max_age: ${o.freshness ?? '2h'} }
latency_needed: ${o.latency ?? 'daily'}
${o.extra ?? ''}`;
}

/** Returns as events, deduplicated by return id. */
export function returnsSource(o: { file?: string; timezone?: string } = {}): string {
  return `kind: Source
name: returns
system: returns
connector: { type: ndjson, path: data/${o.file ?? 'returns.ndjson'} }
schedule: "*/30 * * * *"
records: event
identity: { column: customer_id, as: id }
event:
  name: return_created
  timestamp_column: created_at
  id_columns: [return_id]
timezone: ${o.timezone ?? 'Europe/London'}
fields:
  return_reason: reason
  return_value: amount
freshness: { max_age: 2h }
latency_needed: hourly
`;
}

/** Stores as Customer.io objects (type id 1), related to the person in `customer_id` when present. */
export function storesSource(): string {
  return `kind: Source
name: stores
system: stores
connector: { type: ndjson, path: data/stores.ndjson }
schedule: "0 * * * *"
records: object
object: { type: store, type_id: "1", id_column: store_id }
identity: { column: customer_id, as: id }
timezone: UTC
fields:
  store_name: name
  store_city: city
freshness: { max_age: 2h }
latency_needed: daily
`;
}

export interface ProjectOptions {
  sources: string[];
  primary?: 'id' | 'email';
  /** Files under `data/`, by name. */
  data?: Record<string, string>;
  /** Rule severities, e.g. `{ OWN001: 'off' }` for several sources of one field (scheduling tests). */
  policy?: Record<string, 'error' | 'warning' | 'off'>;
  /** Where the state lives (Postgres needs TIDEMARK_DATABASE_URL in the sync call's env). */
  state?: 'embedded' | 'postgres';
}

/** A throwaway project: `specs/` (workspace, fields, one file per source) and `data/`. */
/** Projects made since the last cleanup of `useSandbox` (removed after each test). */
const made: string[] = [];

export async function makeProject(o: ProjectOptions): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tidemark-sync-'));
  made.push(dir);
  await mkdir(path.join(dir, 'specs', 'sources'), { recursive: true });
  await mkdir(path.join(dir, 'data'), { recursive: true });
  await writeFile(path.join(dir, 'specs', 'workspace.yaml'), workspaceYaml(o.primary, o.policy, o.state));
  await writeFile(path.join(dir, 'specs', 'fields.yaml'), FIELDS_YAML);
  await writeFile(path.join(dir, 'specs', 'sources', 'sources.yaml'), o.sources.join('---\n'));
  for (const [name, text] of Object.entries(o.data ?? {})) await writeData(dir, name, text);
  return dir;
}

export async function removeProject(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export async function writeData(dir: string, name: string, text: string): Promise<void> {
  await writeFile(path.join(dir, 'data', name), text);
}

/** One JSON object per line. */
export function ndjson(rows: ReadonlyArray<Record<string, unknown>>): string {
  return rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
}

/**
 * Opens the project against the test file's sandbox, with fast retries and an optional clock. `live`
 * reaches it the way `cli` below does (credentials and URL overrides, as a standalone sandbox), so runs in
 * process share their state with runs through the CLI: the state of a chosen sandbox is kept apart.
 */
export function open(dir: string, sandbox: RunningSandbox, o: { clock?: Clock; env?: NodeJS.ProcessEnv; live?: boolean } = {}): Promise<OpenEnvironment> {
  return openEnvironment({
    cwd: dir,
    env: o.live ? { ...sandboxEnv(sandbox), ...(o.env ?? {}) } : (o.env ?? {}),
    specs: 'specs',
    ...(o.live ? {} : { attachSandbox: sandbox }),
    retry: FAST_RETRY,
    ...(o.clock ? { clock: o.clock } : {}),
  });
}

export interface SyncCall extends Partial<SyncOptions> {
  clock?: Clock;
  /** Through credentials, as the CLI reaches the sandbox (see `open`). */
  live?: boolean;
  connector?: Connector;
  env?: NodeJS.ProcessEnv;
}

/** Runs (or plans) one source through the engine, in-process, against the sandbox. */
export async function sync(dir: string, sandbox: RunningSandbox, source: string, o: SyncCall = {}): Promise<SyncReport> {
  const { clock, connector, env, live, ...opts } = o;
  const ws = await open(dir, sandbox, { ...(clock ? { clock } : {}), ...(env ? { env } : {}), ...(live ? { live } : {}) });
  try {
    return await syncSource(
      {
        model: ws.model,
        store: ws.conn.store,
        client: ws.conn.customerio,
        cwd: dir,
        env: env ?? {},
        clock: ws.clock,
        stateDir: ws.conn.stateDir,
        ...(connector ? { connector } : {}),
      },
      source,
      { mode: 'run', ...opts },
    );
  } finally {
    await ws.conn.close();
  }
}

/** Like `sync`, but fails the test with the report when the run did not succeed. */
export async function syncOk(dir: string, sandbox: RunningSandbox, source: string, o: SyncCall = {}): Promise<SyncReport> {
  const r = await sync(dir, sandbox, source, o);
  const expected = (o.mode ?? 'run') === 'plan' ? 'planned' : 'succeeded';
  if (r.status !== expected) throw new Error(`sync of ${source} ended ${r.status}: ${JSON.stringify(r, null, 2)}`);
  return r;
}

/**
 * The environment that points tidemark at the test's sandbox as if it were the live service: the
 * Workspace's credential variables hold the sandbox credentials and the base URLs are overridden.
 */
export function sandboxEnv(sandbox: RunningSandbox): NodeJS.ProcessEnv {
  return {
    NO_COLOR: '1',
    [CREDENTIAL_VARS.site]: sandbox.env.CUSTOMERIO_SITE_ID,
    [CREDENTIAL_VARS.track]: sandbox.env.CUSTOMERIO_TRACK_API_KEY,
    [CREDENTIAL_VARS.app]: sandbox.env.CUSTOMERIO_APP_API_KEY,
    CUSTOMERIO_TRACK_URL: sandbox.env.CUSTOMERIO_TRACK_URL,
    CUSTOMERIO_APP_URL: sandbox.env.CUSTOMERIO_APP_URL,
    // The client's own Track limit (100/s by default) would only slow the tests down.
    CUSTOMERIO_TRACK_RATE_PER_SECOND: '1000',
  };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in-process in the project, pointed at the sandbox through `sandboxEnv`. */
export async function cli(dir: string, sandbox: RunningSandbox, args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const sink = (onData: (s: string) => void) => {
    const w = new Writable({ write(chunk, _enc, cb) { onData(String(chunk)); cb(); } }) as Writable & { isTTY?: boolean };
    w.isTTY = false;
    return w;
  };
  const code = await main(args, {
    cwd: dir,
    env: { ...sandboxEnv(sandbox), ...extraEnv },
    stdout: sink((s) => (stdout += s)),
    stderr: sink((s) => (stderr += s)),
  });
  return { code, stdout, stderr };
}

/** Every rejects file the engine wrote for a source, oldest first, parsed. */
export async function readRejects(dir: string, source: string): Promise<Array<{ file: string; rows: Array<Record<string, unknown>> }>> {
  const folder = path.join(dir, '.tidemark', 'rejects', source);
  let names: string[];
  try {
    names = (await readdir(folder)).sort();
  } catch {
    return [];
  }
  const out: Array<{ file: string; rows: Array<Record<string, unknown>> }> = [];
  for (const name of names) {
    const text = await readFile(path.join(folder, name), 'utf8');
    out.push({ file: path.join(folder, name), rows: text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>) });
  }
  return out;
}

/** The rejected rows of one run, found through the path its report names. */
export async function rejectsOf(dir: string, report: SyncReport): Promise<Array<Record<string, unknown>>> {
  if (!report.rejects_file) return [];
  const text = await readFile(path.resolve(dir, report.rejects_file), 'utf8');
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Track v2 batch requests the sandbox answered (retries included). */
export function batchRequests(sandbox: RunningSandbox): number {
  return sandbox.requestCounts()['POST /api/v2/batch'] ?? 0;
}

/** Every request the Track listener answered. */
export function trackRequests(sandbox: RunningSandbox): number {
  // Every live run first asks Track for the account's region (a read that checks the credentials); the
  // requests counted here are the ones that carry data.
  return Object.entries(sandbox.requestCounts())
    .filter(([route]) => route.includes('/api/') && !route.includes('/api/v1/accounts/region'))
    .reduce((n, [, c]) => n + c, 0);
}

/** A person's custom attributes as the emulator holds them (undefined when the person does not exist). */
export function attributesOf(sandbox: RunningSandbox, id: string): Record<string, unknown> | undefined {
  return sandbox.customerio.getPerson(id)?.attributes;
}

export function resetSandbox(sandbox: RunningSandbox): void {
  sandbox.faults.clear();
  sandbox.customerio.reset();
  sandbox.resetRequestCounts();
}

/**
 * The fixture of the sync test files: one sandbox per file, reset before each test; the projects a test
 * made with `makeProject` are removed after it. Hooks the file registers after this call run after these.
 */
export function useSandbox(seed: number, bind: (sandbox: RunningSandbox) => void): void {
  let sandbox: RunningSandbox | undefined;
  beforeAll(async () => {
    sandbox = await createSandbox({ port: 0, retryAfterSeconds: 0, seed });
    bind(sandbox);
  });
  afterAll(async () => {
    await sandbox?.close();
  });
  beforeEach(() => resetSandbox(sandbox!));
  afterEach(async () => {
    for (const dir of made.splice(0)) await removeProject(dir);
  });
}
