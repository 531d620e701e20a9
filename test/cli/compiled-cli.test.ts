/**
 * bin/compiled.js, the cache of the CLI compiled from its sources: on a small project laid out like this
 * repository (bin/, reconciler/cli/main.ts, the sync worker, esbuild in node_modules), each case in its
 * own processes, as `bin/tidemark.js` uses it. What must hold: a build is reused only while every source is
 * byte for byte what it was compiled from; an edit, a broken file or a moved checkout is never served from
 * the cache; processes that start together on an empty cache all run.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const repo = path.resolve(import.meta.dirname, '../..');
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const PROBE = `import { compiledCli } from './bin/compiled.js';
const c = await compiledCli();
const worker = globalThis[Symbol.for('tidemark.compiled')]?.syncWorker;
console.log(JSON.stringify({ reason: c.reason, dir: c.dir, built: c.built, value: c.main ? await c.main.main([]) : undefined, here: c.main?.here, worker }));
`;

function project(): string {
  const parent = mkdtempSync(path.join(os.tmpdir(), 'tidemark-compiled-'));
  dirs.push(parent);
  const dir = path.join(parent, 'checkout');
  mkdirSync(path.join(dir, 'bin'), { recursive: true });
  cpSync(path.join(repo, 'bin/compiled.js'), path.join(dir, 'bin/compiled.js'));
  mkdirSync(path.join(dir, 'node_modules'));
  symlinkSync(path.join(repo, 'node_modules/esbuild'), path.join(dir, 'node_modules/esbuild'));
  mkdirSync(path.join(dir, 'reconciler/cli'), { recursive: true });
  mkdirSync(path.join(dir, 'reconciler/sync/parallel'), { recursive: true });
  writeFileSync(
    path.join(dir, 'reconciler/cli/main.ts'),
    `import { helper } from './helper.ts';\nexport const here: string = import.meta.url;\nexport async function main(_args: string[]): Promise<string> {\n  const { later } = await import('./later.ts');\n  return helper() + later();\n}\nexport const describeFailure = (): string => 'failed';\n`,
  );
  writeFileSync(path.join(dir, 'reconciler/cli/helper.ts'), `export const helper = (): string => 'one';\n`);
  writeFileSync(path.join(dir, 'reconciler/cli/later.ts'), `export const later = (): string => '+lazy';\n`);
  writeFileSync(path.join(dir, 'reconciler/sync/parallel/worker.ts'), `export const worker: number = 1;\n`);
  writeFileSync(path.join(dir, 'probe.mjs'), PROBE);
  return dir;
}

interface Probe {
  reason?: string;
  dir?: string;
  built?: boolean;
  value?: string;
  here?: string;
  worker?: string;
}

function probe(dir: string, env: NodeJS.ProcessEnv = {}): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['probe.mjs'], { cwd: dir, env: { ...process.env, TIDEMARK_COMPILE: '', ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.stderr.on('data', (d) => (err += String(d)));
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as Probe) : reject(new Error(`probe exited ${code}: ${err}`))));
  });
}

const cacheEntries = (dir: string) => readdirSync(path.join(dir, 'node_modules/.cache/tidemark'));

describe('the compiled CLI cache (bin/compiled.js)', () => {
  it('compiles once, then starts from the build while the sources are unchanged; import.meta still means the source file', async () => {
    const dir = project();
    const first = await probe(dir);
    expect(first).toMatchObject({ built: true, value: 'one+lazy', here: pathToFileURL(path.join(dir, 'reconciler/cli/main.ts')).href });
    expect(existsSync(first.worker!)).toBe(true);
    const second = await probe(dir);
    expect(second).toMatchObject({ built: false, dir: first.dir, value: 'one+lazy' });
  }, 60_000);

  it('never serves an edited source from the cache, even an edit that keeps its size, nor a module loaded later', async () => {
    const dir = project();
    const first = await probe(dir);
    writeFileSync(path.join(dir, 'reconciler/cli/helper.ts'), `export const helper = (): string => 'two';\n`);
    const edited = await probe(dir);
    expect(edited).toMatchObject({ built: true, value: 'two+lazy' });
    expect(edited.dir).not.toBe(first.dir);
    writeFileSync(path.join(dir, 'reconciler/cli/later.ts'), `export const later = (): string => '+LAZY';\n`);
    expect(await probe(dir)).toMatchObject({ built: true, value: 'two+LAZY' });
    expect(await probe(dir)).toMatchObject({ built: false, value: 'two+LAZY' });
  }, 60_000);

  it('a source that does not compile is not run from an older build: the caller is told why, and falls back', async () => {
    const dir = project();
    await probe(dir);
    writeFileSync(path.join(dir, 'reconciler/cli/helper.ts'), `export const helper = (): string => 'two' +;\n`);
    const broken = await probe(dir);
    expect(broken.value).toBeUndefined();
    expect(broken.reason).toMatch(/helper\.ts/);
    writeFileSync(path.join(dir, 'reconciler/cli/helper.ts'), `export const helper = (): string => 'three';\n`);
    expect(await probe(dir)).toMatchObject({ built: true, value: 'three+lazy' });
    expect(cacheEntries(dir).filter((e) => e.startsWith('.build-'))).toEqual([]);
  }, 60_000);

  it('a build missing a module (even one loaded later) is made again, never half used', async () => {
    const dir = project();
    const first = await probe(dir);
    const chunks = path.join(first.dir!, 'chunks');
    const lazy = readdirSync(chunks).filter((f) => f.startsWith('later-') && f.endsWith('.js'));
    expect(lazy).toHaveLength(1);
    rmSync(path.join(chunks, lazy[0]!));
    expect(await probe(dir)).toMatchObject({ built: true, dir: first.dir, value: 'one+lazy' });
    expect(await probe(dir)).toMatchObject({ built: false, value: 'one+lazy' });
  }, 60_000);

  it('a checkout moved elsewhere with its node_modules is compiled again for its new place', async () => {
    const dir = project();
    await probe(dir);
    const moved = path.join(path.dirname(dir), 'moved');
    cpSync(dir, moved, { recursive: true, verbatimSymlinks: true });
    const there = await probe(moved);
    expect(there).toMatchObject({ built: true, value: 'one+lazy', here: pathToFileURL(path.join(moved, 'reconciler/cli/main.ts')).href });
    // Each checkout keeps its own pointer: going back to the first one needs no build.
    expect(await probe(dir)).toMatchObject({ built: false });
  }, 60_000);

  it('processes starting together on an empty cache all run, from one build, and leave no partial build behind', async () => {
    const dir = project();
    const all = await Promise.all([1, 2, 3, 4].map(() => probe(dir)));
    for (const p of all) expect(p.value).toBe('one+lazy');
    expect(new Set(all.map((p) => p.dir)).size).toBe(1);
    expect(cacheEntries(dir).filter((e) => e.startsWith('.build-'))).toEqual([]);
    expect(await probe(dir)).toMatchObject({ built: false });
  }, 60_000);

  it('keeps the builds in use: those unused for a day go, and past the newest eight those unused for an hour', async () => {
    const dir = project();
    const cache = path.join(dir, 'node_modules/.cache/tidemark');
    mkdirSync(cache, { recursive: true });
    const at = (name: string, hoursAgo: number) => {
      mkdirSync(path.join(cache, name));
      const t = new Date(Date.now() - hoursAgo * 3_600_000);
      utimesSync(path.join(cache, name), t, t);
    };
    at('recent-1', 0.1);
    at('recent-2', 0.5);
    for (let i = 0; i < 10; i++) at(`hours-${i}`, 2 + i);
    at('days-old', 30);
    at('.build-123-dead', 3.5);
    const built = await probe(dir);
    const left = cacheEntries(dir).filter((e) => !e.startsWith('current-'));
    // The new build and the seven most recently used others (a stale partial build counts as one).
    expect(left.sort()).toEqual([path.basename(built.dir!), '.build-123-dead', 'hours-0', 'hours-1', 'hours-2', 'hours-3', 'recent-1', 'recent-2'].sort());
  }, 60_000);

  it('TIDEMARK_COMPILE=0 runs the sources (bin/tidemark.js then registers tsx)', async () => {
    const dir = project();
    expect(await probe(dir, { TIDEMARK_COMPILE: '0' })).toEqual({ reason: 'TIDEMARK_COMPILE=0' });
    expect(existsSync(path.join(dir, 'node_modules/.cache'))).toBe(false);
  }, 60_000);

  it('bin/tidemark.js runs the same commands either way', async () => {
    const run = (env: NodeJS.ProcessEnv) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, [path.join(repo, 'bin/tidemark.js'), 'rules', '--format', 'json'], { env: { ...process.env, NO_COLOR: '1', ...env } });
        let out = '';
        child.stdout.on('data', (d) => (out += String(d)));
        child.on('close', (code) => resolve({ code, out }));
      });
    const compiled = await run({ TIDEMARK_COMPILE: '' });
    const sources = await run({ TIDEMARK_COMPILE: '0' });
    expect(compiled.code).toBe(0);
    expect(sources.code).toBe(0);
    expect(compiled.out).toBe(sources.out);
    expect(JSON.parse(compiled.out)).toBeTruthy();
  }, 60_000);
});
