/**
 * `tidemark sandbox`: flag parsing, the printed environment, running until stopped, and the real process
 * lifecycle (SIGTERM → state flushed, exit 0).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UsageError, type CommandContext } from '../../reconciler/cli/command.ts';
import { formatEnv, parseSandboxArgs, runSandbox, DEFAULT_SANDBOX_PORT } from '../../reconciler/cli/commands/sandbox.ts';
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
  return { ctx: { cwd: REPO, env: {}, stdout, stderr }, out: () => o, err: () => e };
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
  it('defaults to port 4010 and resolves --data against the working directory', () => {
    expect(parseSandboxArgs([], '/work')).toEqual({ port: DEFAULT_SANDBOX_PORT });
    expect(parseSandboxArgs(['--port', '0', '--data', 'state/sb.json', '--seed', '3'], '/work')).toEqual({ port: 0, dataFile: '/work/state/sb.json', seed: 3 });
    expect(parseSandboxArgs(['--faults', '{"errorRate":0.2}'], '/w').faults).toEqual({ errorRate: 0.2 });
  });

  it.each([
    [['--port', 'http']],
    [['--port', '65534']],
    [['--faults', '{"errorRate":7}']],
    [['--faults', 'nope']],
    [['extra']],
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
    const running = runSandbox({ port: 0, dataFile }, ctx, stop.signal);
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
      expect(await runSandbox({ port }, ctx, AbortSignal.abort())).toBe(1);
      expect(err()).toContain('already in use');
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
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
      expect(saved.services.customerio.segments.map((s) => s.name)).toEqual(['From a real client']);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
