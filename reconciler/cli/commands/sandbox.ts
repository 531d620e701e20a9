/**
 * `tidemark sandbox`: starts the emulated Customer.io and Qualtrics on 127.0.0.1 for the project it is run
 * in (the XM directories its Workspace names exist from the start), prints the environment that points
 * tidemark at them, and runs until SIGINT/SIGTERM, then flushes persistence and exits 0. `--detach` runs
 * it in the background (so `eval "$(tidemark sandbox --detach)"` returns) and `--stop` stops that one.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pickEnvironment, SetupError } from '../../composition/connect.ts';
import { loadSpecs } from '../../spec/load.ts';
import type { WorkspaceSpec } from '../../spec/schema/workspace.ts';
import { parseFaultConfig } from '../../sandbox/common/faults.ts';
import { writeFileAtomic } from '../../sandbox/common/persistence.ts';
import { referencedUiSegments } from '../../composition/ui-segments.ts';
import { sandboxSurveys } from '../../composition/survey-mapping.ts';
import type { SeedSurveyInput } from '../../sandbox/qualtrics/index.ts';
import type { SpecModel } from '../../spec/model.ts';
import { createSandbox, SANDBOX_CREDENTIALS, type RunningSandbox, type SandboxOptions } from '../../sandbox/index.ts';
import { UsageError, type Command, type CommandContext } from '../command.ts';
import { parseCommandLine, renderUsage, type CommandLine } from '../options.ts';

export const DEFAULT_SANDBOX_PORT = 4010;

/** Where a detached sandbox keeps its pid file, log and (by default) its data, relative to the project. */
export const DETACHED_DIR = path.join('.tidemark', 'sandbox');
// Names with a dot cannot collide with the embedded sandbox's `<environment>.json` files in the same folder.
const PID_FILE = 'standalone.pid';
const LOG_FILE = 'standalone.log';
const DATA_FILE = 'standalone.state.json';

/** A detached sandbox has this long to start listening (tsx compiles the CLI on a cold start). */
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;

const line = {
  command: 'sandbox',
  positionals: true,
  options: {
    specs: { type: 'string', value: 'DIR', description: 'specs folder (default specs; without one, no directory is seeded and only the default names are printed)' },
    env: { type: 'string', value: 'E', description: "environment whose credential variable names are printed (default: the Workspace's default_environment)" },
    port: { type: 'string', value: 'N', description: `base port (default ${DEFAULT_SANDBOX_PORT}): Customer.io Track on N, App on N+1, Qualtrics on N+2; 0 picks free ports` },
    data: { type: 'string', value: 'FILE', description: `keep all emulator state in FILE (restored on start, saved after writes and on exit); with --detach the default is ${path.join(DETACHED_DIR, DATA_FILE)}` },
    faults: { type: 'string', value: 'JSON', description: 'initial fault injection, e.g. \'{"errorRate":0.1,"latencyMs":[20,200]}\'' },
    seed: { type: 'string', value: 'N', description: 'seed for fault injection, so a run can be replayed' },
    detach: { type: 'boolean', description: `start in the background (log in ${path.join(DETACHED_DIR, LOG_FILE)}), print the exports once it listens, and return` },
    stop: { type: 'boolean', description: 'stop the sandbox --detach started in this folder' },
    'pid-file': { type: 'string', value: 'FILE', description: 'internal: where a --detach child records its pid and exports once it listens' },
  },
} as const satisfies CommandLine;

const usage = renderUsage(line, {
  synopsis: ['sandbox [options]', 'sandbox --detach [same options]', 'sandbox --stop'],
  intro: `Start the Customer.io and Qualtrics emulators on 127.0.0.1 for this project: every Qualtrics directory
the Workspace names exists from the start. stdout gets only export lines: the URL overrides and the
sandbox's credentials under the default variable names and under the names the environment declares.
Paste them into another terminal, then run plan, apply and sync there; or run it in the background with
eval "$(tidemark sandbox --detach)".`,
  after: `Admin endpoint on every listener: GET|PUT|DELETE /__sandbox/faults, GET /__sandbox/requests,
POST /__sandbox/reset, POST /__sandbox/customerio/segments, GET /__sandbox/customerio/people/{id}.
Stops on Ctrl-C (SIGINT) or SIGTERM.`,
});

export interface SandboxInvocation {
  mode: 'foreground' | 'detach' | 'stop';
  sandbox: SandboxOptions;
  specs: string;
  /** --specs was given: a missing folder is then an error instead of "no workspace". */
  specsGiven: boolean;
  environment?: string;
  /** Internal (set by --detach on its child): write the pid and the exports here once listening. */
  pidFile?: string;
}

function parseIntFlag(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} must be an integer, got "${value}"`);
  const n = Number(value);
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** Parses the flags; throws UsageError on bad input. */
export function parseSandboxArgs(args: string[], cwd: string): SandboxInvocation {
  const { values, positionals } = parseCommandLine(line, args);
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (values.stop) {
    const extra = Object.keys(values).filter((k) => k !== 'stop');
    if (extra.length) throw new UsageError(`--stop takes no other option (got --${extra[0]})`);
    return { mode: 'stop', sandbox: {}, specs: 'specs', specsGiven: false };
  }
  // Three consecutive ports are needed, so the base must leave room for +2.
  const port = parseIntFlag('port', values.port, 0, 65533) ?? DEFAULT_SANDBOX_PORT;
  const seed = parseIntFlag('seed', values.seed, 0, 0xffff_ffff);
  let faults: SandboxOptions['faults'];
  if (values.faults !== undefined) {
    let raw: unknown;
    try {
      raw = JSON.parse(values.faults);
    } catch {
      throw new UsageError('--faults must be a JSON object');
    }
    const parsed = parseFaultConfig(raw);
    if (!parsed.ok) throw new UsageError(`--faults: ${parsed.message}`);
    faults = parsed.value;
  }
  const mode = values.detach ? 'detach' : 'foreground';
  // A detached sandbox outlives the terminal that started it, so its state goes to a file unless told otherwise.
  const data = values.data ?? (mode === 'detach' ? path.join(DETACHED_DIR, DATA_FILE) : undefined);
  return {
    mode,
    sandbox: {
      port,
      ...(data !== undefined ? { dataFile: path.resolve(cwd, data) } : {}),
      ...(faults !== undefined ? { faults } : {}),
      ...(seed !== undefined ? { seed } : {}),
    },
    specs: values.specs ?? 'specs',
    specsGiven: values.specs !== undefined,
    ...(values.env !== undefined ? { environment: values.env } : {}),
    ...(values['pid-file'] !== undefined ? { pidFile: path.resolve(cwd, values['pid-file']) } : {}),
  };
}

/** What the project's Workspace asks of the sandbox: directories to seed and the credential names to print. */
export interface ProjectSetup {
  environment: string;
  directories: Array<{ directoryId: string; name: string }>;
  /** Variable name → sandbox credential, for the selected environment's declared names. */
  credentials: Record<string, string>;
  /** Segments built in Customer.io's UI that the specs reference by id: a real workspace has them. */
  segments: Array<{ id: number; name: string }>;
  /** The Qualtrics surveys the survey targets name: a real brand has them too. */
  surveys: SeedSurveyInput[];
}

/** The sandbox credentials under the variable names one environment declares (defaults filled in by the schema). */
export function credentialsFor(env: WorkspaceSpec['environments'][string]): Record<string, string> {
  const out: Record<string, string> = {
    [env.customerio.site_id_env]: SANDBOX_CREDENTIALS.CUSTOMERIO_SITE_ID,
    [env.customerio.track_api_key_env]: SANDBOX_CREDENTIALS.CUSTOMERIO_TRACK_API_KEY,
    [env.customerio.app_api_key_env]: SANDBOX_CREDENTIALS.CUSTOMERIO_APP_API_KEY,
  };
  if (env.qualtrics) out[env.qualtrics.api_token_env] = SANDBOX_CREDENTIALS.QUALTRICS_API_TOKEN;
  return out;
}

/** Every environment's directory, so switching `--env` against the same sandbox never meets a 404. */
export function projectSetup(ws: WorkspaceSpec, environment: string, model?: SpecModel): ProjectSetup {
  const directories: ProjectSetup['directories'] = [];
  for (const [name, env] of Object.entries(ws.environments)) {
    if (env.qualtrics && !directories.some((d) => d.directoryId === env.qualtrics!.directory_id)) {
      directories.push({ directoryId: env.qualtrics.directory_id, name: `${name} directory` });
    }
  }
  const segments = model ? referencedUiSegments(model, environment).map((r) => ({ id: r.id, name: r.name })) : [];
  return { environment, directories, credentials: credentialsFor(ws.environments[environment]!), segments, surveys: model ? sandboxSurveys(model) : [] };
}

/** Loads the project's specs; undefined when there are none (and none were asked for), a message when unusable. */
async function loadProject(inv: SandboxInvocation, cwd: string): Promise<ProjectSetup | undefined | { error: string }> {
  const loaded = await loadSpecs(inv.specs, cwd);
  const missing = loaded.files === 0 && loaded.diagnostics.some((d) => d.code === 'SPEC000');
  if (missing && !inv.specsGiven) {
    if (inv.environment !== undefined) return { error: `--env ${inv.environment} needs specs, and "${inv.specs}" holds none (use --specs DIR)` };
    return undefined;
  }
  const ws = loaded.model?.workspace?.spec;
  if (!ws) {
    // A half-seeded sandbox would fail later with a 404 far from the cause; say it here.
    return { error: `the specs in "${inv.specs}" do not validate, so the sandbox cannot tell what to seed: run \`tidemark validate --specs ${inv.specs}\`` };
  }
  try {
    return projectSetup(ws, pickEnvironment(loaded.model!, inv.environment), loaded.model!);
  } catch (err) {
    if (err instanceof SetupError) return { error: err.message };
    throw err;
  }
}

/** The export lines: URL overrides and default names first, then the environment's own names. */
export function sandboxExports(sandbox: RunningSandbox, project: ProjectSetup | undefined): Record<string, string> {
  return { ...sandbox.env, ...(project?.credentials ?? {}) };
}

/** Shell-safe `export NAME=value` lines. */
export function formatEnv(env: Record<string, string>): string {
  const quote = (v: string): string => (/^[A-Za-z0-9_./:@-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`);
  return Object.entries(env)
    .map(([k, v]) => `export ${k}=${quote(v)}\n`)
    .join('');
}

/** What a running detached sandbox leaves in its pid file. */
interface PidRecord {
  pid: number;
  urls: RunningSandbox['urls'];
  exports: Record<string, string>;
  dataFile?: string;
}

function readPidRecord(file: string): PidRecord | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const rec = JSON.parse(text) as PidRecord;
    return Number.isInteger(rec.pid) && rec.pid > 0 && typeof rec.urls?.customerioTrack === 'string' ? rec : undefined;
  } catch {
    // Half-written by someone else, or not ours: treated as no sandbox, and replaced on the next start.
    return undefined;
  }
}

/** Alive and not a zombie (a detached child's new parent may never reap it). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc (macOS): kill(0) is all we know
  }
}

/** The recorded process still runs and its admin endpoint answers, so the pid was not reused by something else. */
async function answersAsSandbox(rec: PidRecord): Promise<boolean> {
  if (!isAlive(rec.pid)) return false;
  try {
    const res = await fetch(`${rec.urls.customerioTrack}/__sandbox/faults`, { signal: AbortSignal.timeout(3000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Runs the sandbox until `stop` fires. Split from the command so tests can stop it without sending signals to
 * the test runner's process.
 */
export async function runSandbox(inv: SandboxInvocation, ctx: CommandContext, stop: AbortSignal): Promise<number> {
  const project = await loadProject(inv, ctx.cwd);
  if (project && 'error' in project) {
    ctx.stderr.write(`tidemark sandbox: ${project.error}\n`);
    return 1;
  }
  let sandbox: RunningSandbox;
  try {
    sandbox = await createSandbox({ ...inv.sandbox, ...(project ? { qualtricsDirectories: project.directories } : {}) });
    // Stand-ins for the UI-built segments the specs reference (kept when they exist, e.g. restored from --data).
    if (project?.segments.length) sandbox.customerio.seedReferencedSegments(project.segments);
    if (project?.surveys.length) sandbox.qualtrics.seedReferencedSurveys(project.surveys);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      ctx.stderr.write(`tidemark sandbox: port ${inv.sandbox.port ?? DEFAULT_SANDBOX_PORT} (or the next two) is already in use; pick another with --port\n`);
      return 1;
    }
    throw err;
  }
  const exports = sandboxExports(sandbox, project);
  // stdout carries only the export lines, so scripts and `eval` can take it whole.
  ctx.stdout.write(formatEnv(exports));
  if (inv.pidFile) {
    const rec: PidRecord = { pid: process.pid, urls: sandbox.urls, exports, ...(inv.sandbox.dataFile ? { dataFile: inv.sandbox.dataFile } : {}) };
    await writeFileAtomic(inv.pidFile, `${JSON.stringify(rec, null, 2)}\n`);
  }
  const seeded = project?.directories.length ? `; Qualtrics directories ${project.directories.map((d) => d.directoryId).join(', ')}` : '';
  const forEnv = project ? ` Credentials printed for environment "${project.environment}" and under the default names.` : '';
  ctx.stderr.write(
    `tidemark sandbox: Customer.io Track ${sandbox.urls.customerioTrack}, App ${sandbox.urls.customerioApp}, ` +
      `Qualtrics ${sandbox.urls.qualtrics}${seeded}${inv.sandbox.dataFile ? `; state in ${inv.sandbox.dataFile}` : ''}.${forEnv}\n` +
      (inv.pidFile ? '' : 'tidemark sandbox: paste the export lines above into the terminal where you run tidemark. Ctrl-C to stop.\n'),
  );
  await new Promise<void>((resolveStop) => {
    if (stop.aborted) resolveStop();
    else stop.addEventListener('abort', () => resolveStop(), { once: true });
  });
  await sandbox.close();
  // Removed last: `--stop` waits for it, so by then the state is on disk.
  if (inv.pidFile && readPidRecord(inv.pidFile)?.pid === process.pid) await unlink(inv.pidFile).catch(() => undefined);
  ctx.stderr.write('tidemark sandbox: stopped\n');
  return 0;
}

/** The CLI entry a detached child runs: the same bin (and so the same tsx loader) as this process. */
const BIN = fileURLToPath(new URL('../../../bin/tidemark.js', import.meta.url));

function childArgs(inv: SandboxInvocation, pidFile: string): string[] {
  const args = ['sandbox', '--port', String(inv.sandbox.port ?? DEFAULT_SANDBOX_PORT), '--pid-file', pidFile];
  if (inv.specsGiven) args.push('--specs', inv.specs);
  if (inv.environment !== undefined) args.push('--env', inv.environment);
  if (inv.sandbox.dataFile !== undefined) args.push('--data', inv.sandbox.dataFile);
  if (inv.sandbox.faults !== undefined) args.push('--faults', JSON.stringify(inv.sandbox.faults));
  if (inv.sandbox.seed !== undefined) args.push('--seed', String(inv.sandbox.seed));
  return args;
}

function logTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).slice(-10).join('\n');
  } catch {
    return '';
  }
}

/** Starts the sandbox as a background process, waits until it listens, prints its exports and returns. */
export async function detachSandbox(inv: SandboxInvocation, ctx: CommandContext): Promise<number> {
  const dir = path.resolve(ctx.cwd, DETACHED_DIR);
  const pidFile = path.join(dir, PID_FILE);
  const logFile = path.join(dir, LOG_FILE);
  const existing = readPidRecord(pidFile);
  if (existing && (await answersAsSandbox(existing))) {
    ctx.stderr.write(
      `tidemark sandbox: a detached sandbox already runs here (pid ${existing.pid}, Track ${existing.urls.customerioTrack}); ` +
        'stop it first with `tidemark sandbox --stop`\n',
    );
    return 1;
  }
  await mkdir(dir, { recursive: true });
  await unlink(pidFile).catch(() => undefined);
  // The child must not inherit this process's stdout: `eval "$(…)"` waits until every writer has closed it.
  const log = openSync(logFile, 'w');
  let child;
  try {
    child = spawn(process.execPath, [BIN, ...childArgs(inv, pidFile)], {
      cwd: ctx.cwd,
      env: ctx.env,
      detached: true,
      stdio: ['ignore', log, log],
    });
  } finally {
    closeSync(log);
  }
  let exited: string | undefined;
  child.once('exit', (code, signal) => (exited = signal ?? `exit code ${code}`));
  child.once('error', (err) => (exited = err.message));
  const rel = path.relative(ctx.cwd, logFile);
  const deadline = Date.now() + START_TIMEOUT_MS;
  let rec: PidRecord | undefined;
  while (!rec && exited === undefined && Date.now() < deadline) {
    await sleep(50);
    const r = readPidRecord(pidFile);
    if (r?.pid === child.pid) rec = r;
  }
  if (!rec) {
    if (exited === undefined) child.kill('SIGKILL');
    const why = exited !== undefined ? `it stopped (${exited})` : `it did not listen within ${START_TIMEOUT_MS / 1000} s and was killed`;
    const tail = logTail(logFile);
    ctx.stderr.write(`tidemark sandbox: the background sandbox did not start: ${why}. Log ${rel}${tail ? `:\n${tail}` : ''}\n`);
    return 1;
  }
  child.removeAllListeners();
  child.unref();
  ctx.stdout.write(formatEnv(rec.exports));
  ctx.stderr.write(
    `tidemark sandbox: running in the background (pid ${rec.pid}); Track ${rec.urls.customerioTrack}, App ${rec.urls.customerioApp}, ` +
      `Qualtrics ${rec.urls.qualtrics}; log ${rel}${rec.dataFile ? `; state in ${path.relative(ctx.cwd, rec.dataFile)}` : ''}.\n` +
      'tidemark sandbox: stop it with `tidemark sandbox --stop`\n',
  );
  return 0;
}

/** Stops the sandbox `--detach` started in this folder, and waits until its state is saved. */
export async function stopSandbox(ctx: CommandContext): Promise<number> {
  const pidFile = path.resolve(ctx.cwd, DETACHED_DIR, PID_FILE);
  const rec = readPidRecord(pidFile);
  if (!rec) {
    ctx.stderr.write(`tidemark sandbox: no detached sandbox runs here (no ${path.join(DETACHED_DIR, PID_FILE)}); nothing stopped\n`);
    return 1;
  }
  if (!(await answersAsSandbox(rec))) {
    await unlink(pidFile).catch(() => undefined);
    ctx.stderr.write(`tidemark sandbox: no detached sandbox runs here (pid ${rec.pid} is gone or no longer answers as one); removed its stale pid file, nothing stopped\n`);
    return 1;
  }
  try {
    process.kill(rec.pid, 'SIGTERM');
  } catch (err) {
    ctx.stderr.write(`tidemark sandbox: could not signal pid ${rec.pid} (${(err as NodeJS.ErrnoException).code ?? String(err)}); nothing stopped\n`);
    return 1;
  }
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!isAlive(rec.pid) || readPidRecord(pidFile)?.pid !== rec.pid) {
      ctx.stderr.write(`tidemark sandbox: stopped (pid ${rec.pid})${rec.dataFile ? `; state kept in ${path.relative(ctx.cwd, rec.dataFile)}` : ''}\n`);
      return 0;
    }
    await sleep(50);
  }
  ctx.stderr.write(`tidemark sandbox: pid ${rec.pid} did not stop within ${STOP_TIMEOUT_MS / 1000} s of SIGTERM; see ${path.join(DETACHED_DIR, LOG_FILE)}\n`);
  return 1;
}

export const sandboxCommand: Command = {
  name: 'sandbox',
  summary: 'Start the emulated Customer.io and Qualtrics APIs on 127.0.0.1 and print their environment',
  line,
  usage,
  async run(args, ctx) {
    const inv = parseSandboxArgs(args, ctx.cwd);
    if (inv.mode === 'stop') return stopSandbox(ctx);
    if (inv.mode === 'detach') return detachSandbox(inv, ctx);
    const controller = new AbortController();
    const onSignal = (): void => controller.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      return await runSandbox(inv, ctx, controller.signal);
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};
