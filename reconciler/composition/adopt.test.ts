import { lstat, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { replaceFiles } from './adopt.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tidemark-adopt-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const at = (f: string) => path.join(dir, f);

describe('replaceFiles', () => {
  it('replaces every file, keeping its mode, and a symbolic link to a spec stays a link', async () => {
    await writeFile(at('a.yaml'), 'a: 1\n');
    await chmod(at('a.yaml'), 0o640);
    await writeFile(at('real.yaml'), 'b: 1\n');
    await symlink('real.yaml', at('b.yaml'));
    const r = await replaceFiles([
      { path: at('a.yaml'), expected: 'a: 1\n', text: 'a: 2\n' },
      { path: at('b.yaml'), expected: 'b: 1\n', text: 'b: 2\n' },
    ]);
    expect(r).toEqual({ ok: true });
    expect(await readFile(at('a.yaml'), 'utf8')).toBe('a: 2\n');
    expect((await stat(at('a.yaml'))).mode & 0o777).toBe(0o640);
    expect((await lstat(at('b.yaml'))).isSymbolicLink()).toBe(true);
    expect(await readFile(at('real.yaml'), 'utf8')).toBe('b: 2\n');
    expect((await readdir(dir)).sort()).toEqual(['a.yaml', 'b.yaml', 'real.yaml']);
  });

  it('writes nothing when any file changed on disk since it was read', async () => {
    await writeFile(at('a.yaml'), 'a: 1\n');
    await writeFile(at('b.yaml'), 'b: 1 # edited by someone meanwhile\n');
    const r = await replaceFiles([
      { path: at('a.yaml'), expected: 'a: 1\n', text: 'a: 2\n' },
      { path: at('b.yaml'), expected: 'b: 1\n', text: 'b: 2\n' },
    ]);
    expect(r).toEqual({ ok: false, problem: `${at('b.yaml')} changed on disk since tidemark read it: nothing was written; run \`tidemark drift --adopt\` again` });
    expect(await readFile(at('a.yaml'), 'utf8')).toBe('a: 1\n');
    expect(await readFile(at('b.yaml'), 'utf8')).toBe('b: 1 # edited by someone meanwhile\n');
    expect((await readdir(dir)).sort()).toEqual(['a.yaml', 'b.yaml']);
  });

  it('writes nothing when a file cannot be staged (it disappeared), and leaves no temporary file', async () => {
    await writeFile(at('a.yaml'), 'a: 1\n');
    const r = await replaceFiles([
      { path: at('a.yaml'), expected: 'a: 1\n', text: 'a: 2\n' },
      { path: at('gone.yaml'), expected: 'b: 1\n', text: 'b: 2\n' },
    ]);
    expect(r).toEqual({ ok: false, problem: 'the rewritten specs could not be written (ENOENT): nothing was changed' });
    expect(await readFile(at('a.yaml'), 'utf8')).toBe('a: 1\n');
    expect(await readdir(dir)).toEqual(['a.yaml']);
  });
});
