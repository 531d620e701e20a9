/**
 * Spec loading never crashes or hangs (issue 8, point 6): files that cannot be read as specs are located
 * errors with a stable code, `tidemark validate` exits 1, and no stack trace is printed.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, symlink, writeFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli-run.ts';

const repo = path.resolve(import.meta.dirname, '../..');
/** The temp projects made, removed when the file is done. */
const made: string[] = [];
afterAll(() => Promise.all(made.map((d) => rm(d, { recursive: true, force: true }))));
const STACK = /\bat .*\.(ts|js):\d+|RangeError|ENOENT|ELOOP|EISDIR/;

const valid = `kind: Workspace
name: loading
identity: { primary: id }
environments:
  staging: { customerio: { region: us } }
`;

/** A temp project with one valid spec plus whatever `extra` adds inside specs/. */
async function project(extra: (specs: string, dir: string) => Promise<void>): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tidemark-loading-'));
  made.push(dir);
  const specs = path.join(dir, 'specs');
  await mkdir(specs);
  await writeFile(path.join(specs, 'workspace.yaml'), valid);
  await extra(specs, dir);
  return dir;
}

async function validate(dir: string, ...args: string[]) {
  const r = await runCli(['validate', ...args], { cwd: dir });
  expect(r.stdout + r.stderr).not.toMatch(STACK);
  return r;
}

describe('spec loading', () => {
  it('the project without the bad file is valid (so each case below fails because of its file)', async () => {
    const r = await validate(await project(async () => undefined));
    expect(r.code).toBe(0);
  });

  it('a self-referencing YAML alias is a located SPEC001, not a RangeError', async () => {
    const dir = await project((specs) =>
      writeFile(path.join(specs, 'loop.yaml'), 'kind: Segment\nname: loop\nconditions: &c\n  all:\n    - *c\n'),
    );
    const r = await validate(dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('specs/loop.yaml:5:7: error SPEC001 YAML: the alias *c refers to a node that contains it');
  });

  it('a dangling symlink is a located SPEC008', async () => {
    const dir = await project((specs) => symlink('nowhere.yaml', path.join(specs, 'dangling.yaml')));
    const r = await validate(dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('specs/dangling.yaml:1:1: error SPEC008 specs/dangling.yaml is a symbolic link to a file that does not exist.');
  });

  it('a symlink loop is a located SPEC008', async () => {
    const dir = await project(async (specs) => {
      await symlink('b.yaml', path.join(specs, 'a.yaml'));
      await symlink('a.yaml', path.join(specs, 'b.yaml'));
    });
    const r = await validate(dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('specs/a.yaml:1:1: error SPEC008 specs/a.yaml is a symbolic link that loops back on itself.');
    expect(r.stdout).toContain('specs/b.yaml:1:1: error SPEC008');
  });

  it('a symlink to a folder is a located SPEC008, whatever its name (its specs would silently be missing)', async () => {
    const dir = await project(async (specs, root) => {
      await mkdir(path.join(root, 'elsewhere'));
      await writeFile(path.join(root, 'elsewhere', 'segment.yaml'), 'kind: Segment\nname: x\n');
      await symlink(path.join(root, 'elsewhere'), path.join(specs, 'shared'));
      await symlink(path.join(root, 'elsewhere'), path.join(specs, 'folder.yaml'));
    });
    const r = await validate(dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('specs/shared:1:1: error SPEC008 specs/shared is a symbolic link to a folder');
    expect(r.stdout).toContain('specs/folder.yaml:1:1: error SPEC008 specs/folder.yaml is a symbolic link to a folder');
  });

  it('a FIFO named like a spec is reported without being opened, so validate never hangs', async () => {
    const dir = await project((specs) => promisify(execFile)('mkfifo', [path.join(specs, 'pipe.yaml')]).then(() => undefined));
    const r = await validate(dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('specs/pipe.yaml:1:1: error SPEC008 specs/pipe.yaml is a named pipe (FIFO), not a file.');
    // Given directly as --specs too, and through a symlink.
    await symlink('pipe.yaml', path.join(dir, 'specs', 'via-link.yaml'));
    const direct = await validate(dir, '--specs', 'specs/pipe.yaml');
    expect(direct.code).toBe(1);
    expect(direct.stdout).toContain('specs/pipe.yaml:1:1: error SPEC008 specs/pipe.yaml is a named pipe (FIFO), not a file.');
    expect((await validate(dir)).stdout).toContain('specs/via-link.yaml:1:1: error SPEC008 specs/via-link.yaml is a symbolic link to a named pipe (FIFO), not a file.');
  });

  it('a socket and a device named like specs are reported, not read', async () => {
    const dir = await project(async (specs) => {
      await symlink('/dev/zero', path.join(specs, 'device.yaml'));
    });
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(path.join(dir, 'specs', 'socket.yaml'), resolve));
    try {
      const r = await validate(dir);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain('specs/device.yaml:1:1: error SPEC008 specs/device.yaml is a symbolic link to a device, not a file.');
      expect(r.stdout).toContain('specs/socket.yaml:1:1: error SPEC008 specs/socket.yaml is a socket, not a file.');
    } finally {
      server.close();
    }
  });

  it('the installed bin exits 1 on a FIFO with no stack trace', async () => {
    const dir = await project((specs) => promisify(execFile)('mkfifo', [path.join(specs, 'pipe.yaml')]).then(() => undefined));
    const run = promisify(execFile)(process.execPath, [path.join(repo, 'bin/tidemark.js'), 'validate', '--specs', 'specs'], { cwd: dir, timeout: 60_000 });
    const err = await run.then(() => undefined, (e: { code: number; stdout: string; stderr: string; killed: boolean }) => e);
    expect(err?.killed).toBe(false);
    expect(err?.code).toBe(1);
    expect(err!.stdout).toContain('SPEC008');
    expect(err!.stdout + err!.stderr).not.toMatch(STACK);
  });

  it('an unreadable spec keeps the whole set invalid: there is no model to plan from', async () => {
    const { loadSpecs } = await import('../../reconciler/spec/load.ts');
    const dir = await project((specs) => symlink('nowhere.yaml', path.join(specs, 'dangling.yaml')));
    const result = await loadSpecs('specs', dir);
    expect(result.model).toBeUndefined();
    expect(result.files).toBe(2);
  });
});
