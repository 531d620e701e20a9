/**
 * The standalone sandbox as a user meets it, every step its own process: the README's two-terminal flow
 * (commands read from the README itself, so the text cannot drift from what works), and
 * `eval "$(tidemark sandbox --detach)"` returning, then `--stop`. Only `npx tidemark` becomes this
 * checkout's bin (the temporary project has no node_modules) and the sandbox gets `--port 0`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(REPO, 'bin', 'tidemark.js');
const STAGING_DIRECTORY = 'POOL_2kXbQ9v1RzT0aLs';
const STAGING_NAMES = ['CIO_STAGING_SITE_ID', 'CIO_STAGING_TRACK_API_KEY', 'CIO_STAGING_APP_API_KEY', 'QUALTRICS_STAGING_API_TOKEN'];

/** Every process this file starts, and the pids of detached sandboxes: all are killed in afterAll, pass or fail. */
const children = new Set<ChildProcess>();
const detachedPids = new Set<number>();
const projects: string[] = [];

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const pid of detachedPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await Promise.all(projects.map((p) => rm(p, { recursive: true, force: true })));
});

async function makeProject(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tidemark-standalone-'));
  projects.push(dir);
  await cp(path.join(REPO, 'specs'), path.join(dir, 'specs'), { recursive: true });
  return dir;
}

/** What a shell started from a clean login would have, plus what the user exported. */
function shellEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME ?? os.tmpdir(), NO_COLOR: '1', ...extra };
}

function parseExports(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^export ([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m) env[m[1]!] = m[2]!.replace(/^'(.*)'$/, '$1');
  }
  return env;
}

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a process to its end (its stdout closed, as `$(…)` waits for); killed and failed after `timeoutMs`. */
function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs = 90_000): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${[cmd, ...args].join(' ')} did not finish within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

/** `npx tidemark …` as this checkout's bin. */
function tidemarkArgv(command: string): string[] {
  const words = command.trim().split(/\s+/);
  expect(words.slice(0, 2), `a README command: ${command}`).toEqual(['npx', 'tidemark']);
  return [BIN, ...words.slice(2)];
}

const readme = await readFile(path.join(REPO, 'README.md'), 'utf8');

/** The commands of each ```sh block between the README's sandbox-flow markers (comment lines dropped). */
function readmeFlow(): string[][] {
  const section = /<!-- sandbox-flow:start -->([\s\S]*?)<!-- sandbox-flow:end -->/.exec(readme);
  expect(section, 'README.md marks the two-terminal flow with sandbox-flow markers').not.toBeNull();
  return [...section![1]!.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) =>
    m[1]!.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')),
  );
}

const appSegments = async (env: Record<string, string>): Promise<string[]> => {
  const res = await fetch(`${env.CUSTOMERIO_APP_URL}/v1/segments`, { headers: { authorization: `Bearer ${env.CUSTOMERIO_APP_API_KEY}` } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { segments: Array<{ name: string }> }).segments.map((s) => s.name).sort();
};

describe('the README two-terminal flow', () => {
  let project: string;
  let sandbox: ChildProcess;
  let exports: Record<string, string>;
  let sandboxErr = '';

  beforeAll(async () => {
    const [terminal1, terminal2] = readmeFlow();
    expect(terminal1).toHaveLength(1);
    expect(terminal2!.length).toBeGreaterThan(0);
    project = await makeProject();
    sandbox = spawn(process.execPath, [...tidemarkArgv(terminal1![0]!), '--port', '0'], { cwd: project, env: shellEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(sandbox);
    let out = '';
    sandbox.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    sandbox.stderr!.on('data', (c: Buffer) => (sandboxErr += c.toString()));
    const deadline = Date.now() + 60_000;
    // The note that it serves is written to stderr after the last export line.
    while (!/Ctrl-C/.test(sandboxErr) || !out.endsWith('\n')) {
      if (sandbox.exitCode !== null) throw new Error(`tidemark sandbox exited early (${sandbox.exitCode}): ${sandboxErr}`);
      if (Date.now() > deadline) throw new Error(`tidemark sandbox printed no exports within 60 s: ${sandboxErr}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    exports = parseExports(out);
    expect(out.trim().split('\n').every((l) => l.startsWith('export '))).toBe(true);
  }, 90_000);

  it('prints exports for the names the example staging environment declares', () => {
    for (const name of STAGING_NAMES) expect(exports[name], name).toBeTruthy();
    expect(exports.CUSTOMERIO_TRACK_URL).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('plan, apply and sync, each its own process with only those exports, succeed against it and create the objects', async () => {
    const [, terminal2] = readmeFlow();
    for (const command of terminal2!) {
      const r = await run(process.execPath, tidemarkArgv(command), project, shellEnv(exports));
      expect(r.code, `${command}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(0);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
    // The objects are in the standalone sandbox (not in an embedded one the CLI started itself).
    // Beside the UI-built segment the specs reference by id, which the sandbox stands in for from the start.
    expect(await appSegments(exports)).toEqual(['newsletter_engaged', 'tidemark: vip_customers', 'tidemark: winback_eligible']);
    const lists = await fetch(`${exports.QUALTRICS_BASE_URL}/API/v3/directories/${STAGING_DIRECTORY}/mailinglists`, {
      headers: { 'x-api-token': exports.QUALTRICS_STAGING_API_TOKEN! },
    });
    expect(lists.status).toBe(200);
    const body = (await lists.json()) as { result: { elements: Array<{ name: string }> } };
    expect(body.result.elements.map((l) => l.name).sort()).toEqual(['tidemark: cancel intent', 'tidemark: lapsed diagnosis', 'tidemark: post-purchase fit']);
    // The file sources read the sandbox world's exports (written into the project by the sync): a loyalty
    // row and a return each reached the person they name.
    const loyalty = (await readFile(path.join(project, 'specs/data/loyalty_export.csv'), 'utf8')).trim().split('\n').slice(1).map((l) => l.split(','));
    const once = loyalty.filter((r) => r[1] !== '' && r[2] !== '' && loyalty.filter((o) => o[0] === r[0]).length === 1)[0]!;
    const fetchPerson = async (id: string) =>
      (await (await fetch(`${exports.CUSTOMERIO_TRACK_URL}/__sandbox/customerio/people/${id}`)).json()) as { person: { attributes: Record<string, unknown> }; events: Array<{ name: string }> };
    expect((await fetchPerson(once[0]!)).person.attributes).toMatchObject({ loyalty_tier: once[2], loyalty_points: Number(once[1]) });
    const firstReturn = JSON.parse((await readFile(path.join(project, 'specs/data/returns.ndjson'), 'utf8')).split('\n')[0]!) as { customer_id: string };
    expect((await fetchPerson(firstReturn.customer_id)).events.map((e) => e.name)).toContain('return_created');
    // And the next plan sees exactly what was applied.
    const again = await run(process.execPath, [BIN, 'plan', '--detailed-exitcode'], project, shellEnv(exports));
    expect(again.code, again.stdout + again.stderr).toBe(0);
  }, 240_000);

  it('stops on SIGTERM and exits 0', async () => {
    const exited = new Promise<number | null>((r) => sandbox.once('exit', (code) => r(code)));
    sandbox.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 30_000);
});

describe('eval "$(tidemark sandbox --detach)"', () => {
  it('returns with the variables set, serves in the background with state that survives a restart, and --stop stops it', async () => {
    expect(readme).toContain('eval "$(npx tidemark sandbox --detach)"');
    const project = await makeProject();
    const detach = `eval "$('${process.execPath}' '${BIN}' sandbox --detach --port 0)"`;
    // What the shell has after the eval, printed so the test can use it.
    const script = `${detach} && env | grep -E '^(CUSTOMERIO|QUALTRICS|CIO)_'`;
    const started = await run('bash', ['-c', script], project, shellEnv(), 90_000);
    const pidFile = path.join(project, '.tidemark', 'sandbox', 'standalone.pid');
    const pid = (JSON.parse(await readFile(pidFile, 'utf8').catch(() => '{}')) as { pid?: number }).pid;
    if (pid) detachedPids.add(pid);
    expect(started.code, started.stderr).toBe(0);
    expect(started.stderr).toContain('tidemark sandbox --stop');
    const env = Object.fromEntries(started.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    for (const name of STAGING_NAMES) expect(env[name], name).toBeTruthy();

    // Still serving after the shell returned: a client writes to it.
    const made = await fetch(`${env.CUSTOMERIO_APP_URL}/v1/segments`, {
      method: 'POST',
      headers: { authorization: `Bearer ${env.CUSTOMERIO_APP_API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ segment: { name: 'kept across restarts' } }),
    });
    expect(made.status).toBe(200);

    const twice = await run(process.execPath, [BIN, 'sandbox', '--detach', '--port', '0'], project, shellEnv());
    expect(twice.code).toBe(1);
    expect(twice.stderr).toContain('already runs here');

    const stopped = await run(process.execPath, [BIN, 'sandbox', '--stop'], project, shellEnv());
    expect(stopped.code, stopped.stderr).toBe(0);
    await expect(fetch(`${env.CUSTOMERIO_APP_URL}/v1/segments`)).rejects.toThrow();

    // Started again: what the client made is still there.
    const restarted = await run('bash', ['-c', `${detach} && echo "$CUSTOMERIO_APP_URL"`], project, shellEnv());
    const pid2 = (JSON.parse(await readFile(pidFile, 'utf8').catch(() => '{}')) as { pid?: number }).pid;
    if (pid2) detachedPids.add(pid2);
    expect(restarted.code, restarted.stderr).toBe(0);
    expect(await appSegments({ CUSTOMERIO_APP_URL: restarted.stdout.trim(), CUSTOMERIO_APP_API_KEY: env.CUSTOMERIO_APP_API_KEY! })).toEqual(['kept across restarts', 'newsletter_engaged']);
    expect((await run(process.execPath, [BIN, 'sandbox', '--stop'], project, shellEnv())).code).toBe(0);

    const none = await run(process.execPath, [BIN, 'sandbox', '--stop'], project, shellEnv());
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no detached sandbox runs here');
  }, 240_000);

  it('reports a background sandbox that could not start, with its log, and leaves nothing running', async () => {
    const project = await makeProject();
    const failed = await run(process.execPath, [BIN, 'sandbox', '--detach', '--port', '0', '--env', 'nope'], project, shellEnv());
    expect(failed.code).toBe(1);
    expect(failed.stdout).toBe('');
    expect(failed.stderr).toContain('did not start');
    expect(failed.stderr).toContain('"nope" is not declared');
    await expect(readFile(path.join(project, '.tidemark', 'sandbox', 'standalone.pid'))).rejects.toThrow(/ENOENT/);
  }, 120_000);
});
