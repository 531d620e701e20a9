/**
 * What reaches the user when something fails: one short paragraph and exit 1, never a stack trace unless
 * TIDEMARK_DEBUG=1. A user's mistake reads as such; an unexpected error says it is likely a bug.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { commands } from '../../reconciler/cli/commands/index.ts';
import { describeFailure, main } from '../../reconciler/cli/main.ts';
import { registerSecret } from '../../reconciler/core/redact.ts';
import { UserError } from '../../reconciler/core/user-error.ts';
import { ProviderError } from '../../reconciler/providers/errors.ts';
import { StateError } from '../../reconciler/state/errors.ts';
import { localStateError, openStateStore } from '../../reconciler/state/open.ts';
import { runCli } from '../support/cli-run.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(REPO, 'bin/tidemark.js');
const STACK_LINE = /^\s+at .+\(.+:\d+:\d+\)$|^\s+at .+:\d+:\d+$/m;
const SECRET = 'tm-errors-secret-5a4b3c2d1e';
registerSecret(SECRET);

let root: string;
beforeAll(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'tidemark-errors-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function project(name: string, edit?: (workspaceYaml: string) => string): string {
  const dir = path.join(root, name);
  cpSync(path.join(REPO, 'specs'), path.join(dir, 'specs'), { recursive: true });
  if (edit) {
    const file = path.join(dir, 'specs/workspace.yaml');
    writeFileSync(file, edit(readFileSync(file, 'utf8')));
  }
  return dir;
}

const baseEnv = { PATH: process.env.PATH ?? '', NO_COLOR: '1' };

/** Replaces the `rules` command with one that throws `err`. */
function failingCommand(err: unknown): void {
  const entry = commands.find((c) => c.name === 'rules')!;
  vi.spyOn(entry, 'load').mockResolvedValue({
    name: 'rules',
    summary: '',
    usage: '',
    line: { command: 'rules', options: {} },
    run: async () => {
      throw err;
    },
  });
}

describe('the central error handler', () => {
  it('an unexpected error: likely a bug, its message redacted, how to get the stack; no stack', async () => {
    failingCommand(new TypeError(`Cannot read properties of undefined (token ${SECRET})`));
    const r = await runCli(['rules'], { env: baseEnv });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('tidemark rules: unexpected error (likely a bug in tidemark): Cannot read properties of undefined');
    expect(r.stderr).toContain('Set TIDEMARK_DEBUG=1 for the stack trace');
    expect(r.stderr).not.toContain(SECRET);
    expect(r.stderr).not.toMatch(STACK_LINE);
  });

  it('with TIDEMARK_DEBUG=1 the stack trace is printed with its causes, still redacted', async () => {
    failingCommand(new TypeError(`boom ${SECRET}`, { cause: new Error(`root cause ${SECRET}`) }));
    const r = await runCli(['rules'], { env: { ...baseEnv, TIDEMARK_DEBUG: '1' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(STACK_LINE);
    expect(r.stderr).toContain('Caused by: Error: root cause [redacted]');
    expect(r.stderr).not.toContain(SECRET);
  });

  it('a UserError is its message and hint, with no stack and no talk of bugs', async () => {
    failingCommand(new UserError('the thing is misconfigured', { hint: 'Check environments.staging.thing in specs/workspace.yaml.' }));
    const r = await runCli(['rules'], { env: baseEnv });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('tidemark rules: the thing is misconfigured\nCheck environments.staging.thing in specs/workspace.yaml.\n');
    const debug = await runCli(['rules'], { env: { ...baseEnv, TIDEMARK_DEBUG: '1' } });
    expect(debug.stderr).toMatch(STACK_LINE);
  });

  it('a provider failure that may pass is its message and a hint to retry later; a refusal is not', () => {
    const busy = new ProviderError({ provider: 'customerio', service: 'app', operation: 'segments.list', message: 'HTTP 503 Service Unavailable after 5 attempts', status: 503, retryable: true });
    expect(describeFailure('tidemark plan', busy, {})).toBe(
      'tidemark plan: customerio app API segments.list: HTTP 503 Service Unavailable after 5 attempts\n' +
        'The service failed or was busy, which is usually temporary: run the command again later.\n',
    );
    const refused = new ProviderError({ provider: 'qualtrics', service: 'qualtrics', operation: 'mailing_lists.create', message: 'HTTP 400 Bad Request: bad name', status: 400, retryable: false });
    expect(describeFailure('tidemark apply', refused, {})).toBe('tidemark apply: qualtrics mailing_lists.create: HTTP 400 Bad Request: bad name\n');
  });

  it('a file system refusal is described as one, not as a bug', () => {
    for (const code of ['EACCES', 'EROFS', 'ENOSPC']) {
      const err = Object.assign(new Error(`${code}: oops, open '/srv/project/.tidemark/x'`), { code, syscall: 'open', path: '/srv/project/.tidemark/x' });
      const text = describeFailure('tidemark plan', err, {});
      expect(text).toMatch(new RegExp(`^tidemark plan: cannot open /srv/project/.tidemark/x: .+ \\(${code}\\)\\. `));
      expect(text).toContain('state.path');
      expect(text).not.toContain('bug');
    }
  });

  it('a non-Error thrown value is still one paragraph', () => {
    expect(describeFailure('tidemark x', 'just a string', {})).toBe(
      'tidemark x: unexpected error (likely a bug in tidemark): just a string\nSet TIDEMARK_DEBUG=1 for the stack trace, and include it when you report this.\n',
    );
  });
});

describe('local errors', () => {
  it('.tidemark is a file: names the path and the state.path setting, exit 1, no stack', async () => {
    const dir = project('dot-file');
    writeFileSync(path.join(dir, '.tidemark'), 'not a folder\n');
    for (const args of [['plan'], ['sync', 'run', 'loyalty_tiers'], ['status']]) {
      const r = await runCli(args, { cwd: dir, env: baseEnv });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`${path.join(dir, '.tidemark')} is a file, not a folder`);
      expect(r.stderr).toContain('state.path');
      expect(r.stderr).not.toMatch(STACK_LINE);
    }
  });

  // Tests run as root, where chmod does not stop a write; /sys refuses new files even to root, so it
  // stands in for a read-only state folder without mounting anything.
  it('a state folder that cannot be written: names it, the cause and state.path; the process exits', async () => {
    const dir = project('read-only', (y) => y.replace(/^( {2}path:) \.tidemark$/m, '$1 /sys'));
    expect(readFileSync(path.join(dir, 'specs/workspace.yaml'), 'utf8')).toMatch(/^ {2}path: \/sys$/m);
    const run = promisify(execFile);
    // As its own process: a server left running by the failed open would keep it from exiting.
    const r = await run(process.execPath, [BIN, 'plan'], { cwd: dir, env: baseEnv, timeout: 60_000 }).then(
      (ok) => ({ code: 0, ...ok }),
      (e: { code: number; stdout: string; stderr: string; killed?: boolean }) => e,
    );
    expect((r as { killed?: boolean }).killed ?? false).toBe(false);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/The state folder \/sys cannot be written: (permission denied \(EACCES\)|operation not permitted \(EPERM\)|the file system is read-only \(EROFS\))/);
    expect(r.stderr).toContain('state.path');
    expect(r.stderr).not.toMatch(STACK_LINE);
  });

  it('opening the state where a file stands says so, naming the path and state.path', async () => {
    const file = path.join(root, 'state-is-a-file');
    writeFileSync(file, 'x');
    const err = await openStateStore({ dir: file }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StateError);
    expect((err as StateError).code).toBe('STATE009');
    expect((err as StateError).message).toMatch(new RegExp(`^The state folder ${file} is a file, not a folder\\. .*\`state\\.path\``));
  });

  // The codes a read-only or full state folder raises that a test cannot provoke here without mounts.
  it('the state maps EACCES, EROFS, ENOSPC and SQLite read-only errors to one message naming the folder', () => {
    for (const [code, words] of [
      ['EACCES', 'permission denied'],
      ['EROFS', 'the file system is read-only'],
      ['ENOSPC', 'no space left on the device'],
      ['SQLITE_READONLY', 'the database file is read-only'],
    ] as const) {
      const err = localStateError(Object.assign(new Error(`${code}: nope`), { code }), '/srv/project/.tidemark');
      expect(err).toBeInstanceOf(StateError);
      expect(err!.code).toBe('STATE009');
      expect(err!.message).toBe(
        `The state folder /srv/project/.tidemark cannot be written: ${words} (${code}). Make it writable by this user, or point the state elsewhere. ` +
          "The state folder is the Workspace's `state.path` setting (default .tidemark), relative to the project.",
      );
    }
    expect(localStateError(new Error('something else'), '/x')).toBeUndefined();
  });

  it('output that cannot be written (a full disk) is said on stderr and fails the command', async () => {
    const { Writable } = await import('node:stream');
    const full = new Writable({
      write(_chunk, _enc, cb) {
        cb(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
      },
    });
    let stderr = '';
    const sink = new Writable({
      write(chunk, _enc, cb) {
        stderr += String(chunk);
        cb();
      },
    });
    const code = await main(['rules'], { cwd: root, env: baseEnv, stdout: full, stderr: sink });
    expect(code).toBe(1);
    expect(stderr).toBe('tidemark: could not write the output: ENOSPC: no space left on device, write (ENOSPC)\n');
  });

  it('EPIPE: output piped into a reader that goes away exits quietly with the usual code', async () => {
    const run = promisify(execFile);
    const shell = (cmd: string) =>
      run('bash', ['-c', `${cmd}; echo "rc=\${PIPESTATUS[0]}"`], { cwd: root, env: baseEnv, timeout: 60_000 });
    // `true` has exited before tidemark writes its first byte, so the write certainly meets a closed pipe.
    for (const reader of ['true', 'head -1']) {
      const r = await shell(`"${process.execPath}" "${BIN}" rules 2>err.txt | ${reader}`);
      const stderr = readFileSync(path.join(root, 'err.txt'), 'utf8');
      expect(r.stdout).toMatch(/rc=0\n$/);
      expect(stderr).toBe('');
    }
  });
});
