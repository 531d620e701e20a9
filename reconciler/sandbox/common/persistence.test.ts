import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createPersistence, readJsonFile, writeFileAtomic } from './persistence.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tidemark-persist-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('replaces the file whole and leaves no temp files behind', async () => {
    const file = join(dir, 'nested', 'state.json');
    await writeFileAtomic(file, '{"a":1}');
    await writeFileAtomic(file, '{"a":2}');
    expect(await readFile(file, 'utf8')).toBe('{"a":2}');
    expect(await readdir(join(dir, 'nested'))).toEqual(['state.json']);
  });
});

describe('readJsonFile', () => {
  it('returns undefined for a missing file', async () => {
    expect(await readJsonFile(join(dir, 'missing.json'))).toBeUndefined();
  });

  it('throws on a corrupt file instead of starting empty', async () => {
    const file = join(dir, 'bad.json');
    await writeFile(file, '{"half":');
    await expect(readJsonFile(file)).rejects.toThrow(/not valid JSON/);
  });
});

describe('createPersistence', () => {
  it('saves after the debounce period following mutations, then on close', async () => {
    const file = join(dir, 'state.json');
    let value = 1;
    const p = createPersistence({ file, debounceMs: 5, collect: () => ({ value }) });
    p.markDirty();
    await vi.waitFor(async () => expect(await readJsonFile(file)).toEqual({ value: 1 }), { timeout: 5000, interval: 10 });
    value = 2;
    await p.close();
    expect(await readJsonFile(file)).toEqual({ value: 2 });
    // After close, mutations are no longer tracked: a flush has nothing to write.
    value = 3;
    p.markDirty();
    await p.flush();
    expect(await readJsonFile(file)).toEqual({ value: 2 });
  });

  it('flush writes only when something changed unless forced', async () => {
    const file = join(dir, 'state.json');
    const collect = vi.fn(() => ({ n: collect.mock.calls.length }));
    const p = createPersistence({ file, debounceMs: 60_000, collect });
    await p.flush();
    expect(collect).not.toHaveBeenCalled();
    p.markDirty();
    await p.flush();
    expect(collect).toHaveBeenCalledTimes(1);
    await p.flush(true);
    expect(collect).toHaveBeenCalledTimes(2);
    await p.close();
  });
});
