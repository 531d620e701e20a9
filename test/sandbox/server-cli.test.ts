/**
 * `tidemark sandbox`: flag parsing, the printed environment, running until stopped, and the real process
 * lifecycle (SIGTERM → state flushed, exit 0).
 */
import { spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UsageError, type CommandContext } from '../../reconciler/cli/command.ts';
import { formatEnv, parseSandboxArgs, runSandbox, stopSandbox, DEFAULT_SANDBOX_PORT } from '../../reconciler/cli/commands/sandbox.ts';
import { main } from '../../reconciler/cli/main.ts';

const REPO = resolve(import.meta.dirname, '../..');
const ENV_NAMES = [
  'CUSTOMERIO_TRACK_URL',
  'CUSTOMERIO_APP_URL',
  'QUALTRICS_BASE_URL',
  'CUSTOMERIO_SITE_ID',
  'CUSTOMERIO_TRACK_API_KEY',
  'CUSTOMERIO_APP_API_KEY',
  'CUSTOMERIO_REGION',
  'QUALTRICS_API_TOKEN',
  'QUALTRICS_DATACENTER',
];

function capture(): { ctx: CommandContext; out: () => string; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let o = '';
  let e = '';
  stdout.on('data', (c: Buffer) => (o += c.toString()));
  stderr.on('data', (c: Buffer) => (e += c.toString()));
  return { ctx: { cwd: dir, env: {}, stdout, stderr }, out: () => o, err: () => e };
}

function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^export ([A-Z_]+)=(.*)$/.exec(line);
    if (m) env[m[1]!] = m[2]!.replace(/^'(.*)'$/, '$1');
  }
  return env;
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tidemark-cli-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('parseSandboxArgs', () => {
  it('defaults to port 4010 in the foreground and resolves --data against the working directory', () => {
    expect(parseSandboxArgs([], '/work')).toEqual({ mode: 'foreground', sandbox: { port: DEFAULT_SANDBOX_PORT }, specs: 'specs', specsGiven: false });
    expect(parseSandboxArgs(['--port', '0', '--data', 'state/sb.json', '--seed', '3'], '/work').sandbox).toEqual({ port: 0, dataFile: '/work/state/sb.json', seed: 3 });
    expect(parseSandboxArgs(['--faults', '{"errorRate":0.2}'], '/w').sandbox.faults).toEqual({ errorRate: 0.2 });
    expect(parseSandboxArgs(['--specs', 'other', '--env', 'production'], '/w')).toMatchObject({ specs: 'other', specsGiven: true, environment: 'production' });
  });

  it('keeps a detached sandbox\'s state in a file under .tidemark/sandbox unless --data says otherwise', () => {
    expect(parseSandboxArgs(['--detach'], '/w')).toMatchObject({ mode: 'detach', sandbox: { dataFile: '/w/.tidemark/sandbox/standalone.state.json' } });
    expect(parseSandboxArgs(['--detach', '--data', 'x.json'], '/w').sandbox.dataFile).toBe('/w/x.json');
    expect(parseSandboxArgs(['--stop'], '/w').mode).toBe('stop');
  });

  it.each([
    [['--port', 'http']],
    [['--port', '65534']],
    [['--faults', '{"errorRate":7}']],
    [['--faults', 'nope']],
    [['extra']],
    [['--stop', '--detach']],
    [['--stop', '--port', '1']],
  ])('refuses %j with a usage error', (args) => {
    expect(() => parseSandboxArgs(args, '/w')).toThrow(UsageError);
  });

  it('refuses unknown flags (strict parsing)', () => {
    expect(() => parseSandboxArgs(['--prot', '1'], '/w')).toThrow(/Unknown option/);
  });
});

describe('formatEnv', () => {
  it('prints shell-safe export lines', () => {
    expect(formatEnv({ A: 'http://127.0.0.1:4010', B: "it's odd" })).toBe("export A=http://127.0.0.1:4010\nexport B='it'\\''s odd'\n");
  });
});

describe('runSandbox', () => {
  it('prints the environment, serves until stopped, then saves state and exits 0', async () => {
    const { ctx, out, err } = capture();
    const stop = new AbortController();
    const dataFile = join(dir, 'sb.json');
    const running = runSandbox(parseSandboxArgs(['--port', '0', '--data', dataFile], dir), ctx, stop.signal);
    await new Promise<void>((r) => {
      const check = () => (out().split('\n').length > ENV_NAMES.length ? r() : setTimeout(check, 10));
      check();
    });
    const env = parseEnv(out());
    expect(Object.keys(env).sort()).toEqual([...ENV_NAMES].sort());
    expect(env).toMatchObject({ CUSTOMERIO_SITE_ID: 'sandbox-site', CUSTOMERIO_REGION: 'us', QUALTRICS_DATACENTER: 'iad1' });
    const auth = `Basic ${Buffer.from(`${env.CUSTOMERIO_SITE_ID}:${env.CUSTOMERIO_TRACK_API_KEY}`).toString('base64')}`;
    const res = await fetch(`${env.CUSTOMERIO_TRACK_URL}/api/v1/customers/1`, { method: 'PUT', headers: { authorization: auth }, body: '{"a":1}' });
    expect(res.status).toBe(200);
    stop.abort();
    expect(await running).toBe(0);
    expect(err()).toContain('stopped');
    await expect(fetch(`${env.CUSTOMERIO_TRACK_URL}/api/v1/accounts/region`)).rejects.toThrow();
    const saved = JSON.parse(await readFile(dataFile, 'utf8')) as { services: { customerio: { people: Array<{ id: string }> } } };
    expect(saved.services.customerio.people.map((p) => p.id)).toEqual(['1']);
  });

  it('explains a busy port and exits 1', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const { ctx, err } = capture();
      expect(await runSandbox(parseSandboxArgs(['--port', String(port)], dir), ctx, AbortSignal.abort())).toBe(1);
      expect(err()).toContain('already in use');
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });
});

/** Runs the sandbox in `dir` until the exports are out, hands them to `fn`, then stops it. */
async function withRunning(args: string[], fn: (env: Record<string, string>, err: string) => Promise<void>): Promise<number> {
  const { ctx, out, err } = capture();
  const stop = new AbortController();
  const running = runSandbox(parseSandboxArgs(['--port', '0', ...args], dir), ctx, stop.signal);
  let done = false;
  void running.finally(() => (done = true));
  // The human note on stderr comes after every export line.
  while (!done && !/Ctrl-C/.test(err())) await new Promise((r) => setTimeout(r, 10));
  try {
    if (!done) await fn(parseEnv(out()), err());
  } finally {
    stop.abort();
  }
  return running;
}

const qualtricsLists = (env: Record<string, string>, directory: string, token: string) =>
  fetch(`${env.QUALTRICS_BASE_URL}/API/v3/directories/${directory}/mailinglists`, { headers: { 'x-api-token': token } });

describe('runSandbox in a project', () => {
  beforeEach(async () => {
    await cp(join(REPO, 'specs'), join(dir, 'specs'), { recursive: true });
  });

  it('seeds every directory the Workspace names and prints the environment\'s own variable names besides the defaults', async () => {
    const code = await withRunning([], async (env, err) => {
      expect(Object.keys(env).sort()).toEqual(
        [...ENV_NAMES, 'CIO_STAGING_SITE_ID', 'CIO_STAGING_TRACK_API_KEY', 'CIO_STAGING_APP_API_KEY', 'QUALTRICS_STAGING_API_TOKEN'].sort(),
      );
      expect(err).toContain('"staging"');
      // The printed values are the ones the emulators accept.
      const auth = `Basic ${Buffer.from(`${env.CIO_STAGING_SITE_ID}:${env.CIO_STAGING_TRACK_API_KEY}`).toString('base64')}`;
      const track = await fetch(`${env.CUSTOMERIO_TRACK_URL}/api/v1/customers/1`, { method: 'PUT', headers: { authorization: auth }, body: '{"a":1}' });
      expect(track.status).toBe(200);
      const app = await fetch(`${env.CUSTOMERIO_APP_URL}/v1/segments`, { headers: { authorization: `Bearer ${env.CIO_STAGING_APP_API_KEY}` } });
      expect(app.status).toBe(200);
      for (const directory of ['POOL_2kXbQ9v1RzT0aLs', 'POOL_7hNcW3p5YqE2dVu']) {
        expect((await qualtricsLists(env, directory, env.QUALTRICS_STAGING_API_TOKEN!)).status).toBe(200);
      }
      // A reset forgets what clients made, not the directories the brand has.
      const reset = await fetch(`${env.CUSTOMERIO_TRACK_URL}/__sandbox/reset`, { method: 'POST' });
      expect(reset.status).toBeLessThan(300);
      expect((await qualtricsLists(env, 'POOL_2kXbQ9v1RzT0aLs', env.QUALTRICS_API_TOKEN!)).status).toBe(200);
    });
    expect(code).toBe(0);
  });

  it('prints the default names for an environment that declares none (--env production)', async () => {
    const code = await withRunning(['--env', 'production'], async (env) => {
      expect(Object.keys(env).sort()).toEqual([...ENV_NAMES].sort());
    });
    expect(code).toBe(0);
  });

  it('refuses an unknown environment, a missing --specs folder and specs that do not validate, before listening', async () => {
    const unknown = capture();
    expect(await runSandbox(parseSandboxArgs(['--port', '0', '--env', 'prod'], dir), unknown.ctx, AbortSignal.abort())).toBe(1);
    expect(unknown.err()).toContain('"prod" is not declared');
    const missing = capture();
    expect(await runSandbox(parseSandboxArgs(['--port', '0', '--specs', 'nowhere'], dir), missing.ctx, AbortSignal.abort())).toBe(1);
    expect(missing.err()).toContain('tidemark validate --specs nowhere');
    await writeFile(join(dir, 'specs', 'workspace.yaml'), 'kind: Workspace\nname: [\n');
    const broken = capture();
    expect(await runSandbox(parseSandboxArgs(['--port', '0'], dir), broken.ctx, AbortSignal.abort())).toBe(1);
    expect(broken.err()).toContain('do not validate');
    expect(broken.out()).toBe('');
  });
});

describe('stopSandbox', () => {
  const pidFile = () => join(dir, '.tidemark', 'sandbox', 'standalone.pid');
  const record = (pid: number) =>
    JSON.stringify({ pid, urls: { customerioTrack: 'http://127.0.0.1:1', customerioApp: 'http://127.0.0.1:1', qualtrics: 'http://127.0.0.1:1' }, exports: {} });

  it('refuses clearly when no detached sandbox was started here', async () => {
    const { ctx, err } = capture();
    expect(await stopSandbox(ctx)).toBe(1);
    expect(err()).toContain('no detached sandbox runs here');
  });

  it('removes a stale pid file and never signals a process that does not answer as a sandbox (a reused pid)', async () => {
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    try {
      await mkdir(join(dir, '.tidemark', 'sandbox'), { recursive: true });
      await writeFile(pidFile(), record(other.pid!));
      const { ctx, err } = capture();
      expect(await stopSandbox(ctx)).toBe(1);
      expect(err()).toContain('stale pid file');
      expect(other.exitCode).toBeNull();
      expect(other.signalCode).toBeNull();
      await expect(readFile(pidFile())).rejects.toThrow(/ENOENT/);
    } finally {
      other.kill('SIGKILL');
    }
  });
});

describe('tidemark sandbox through the CLI entry', () => {
  it('reports a bad flag as a usage error', async () => {
    const { ctx, err } = capture();
    expect(await main(['sandbox', '--port', 'abc'], ctx)).toBe(1);
    expect(err()).toContain('--port must be an integer');
  });

  it('runs as a real process and stops cleanly on SIGTERM', async () => {
    const dataFile = join(dir, 'proc.json');
    const child = spawn(process.execPath, ['bin/tidemark.js', 'sandbox', '--port', '0', '--data', dataFile], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      await new Promise<void>((r, reject) => {
        const check = () => {
          if (child.exitCode !== null) reject(new Error(`sandbox exited early: ${err}`));
          else if (/QUALTRICS_DATACENTER/.test(out)) r();
          else setTimeout(check, 20);
        };
        check();
      });
      const env = parseEnv(out);
      const res = await fetch(`${env.CUSTOMERIO_APP_URL}/v1/segments`, {
        method: 'POST',
        headers: { authorization: `Bearer ${env.CUSTOMERIO_APP_API_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ segment: { name: 'From a real client' } }),
      });
      expect(res.status).toBe(200);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      const saved = JSON.parse(await readFile(dataFile, 'utf8')) as { services: { customerio: { segments: Array<{ name: string }> } } };
      // Beside the stand-in for the UI-built segment the example specs reference by id.
      expect(saved.services.customerio.segments.map((s) => s.name).sort()).toEqual(['From a real client', 'newsletter_engaged']);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
