/**
 * The snapshot's index file (reconciler/sync/snapshot-index-file.ts): a run loads the index from the file
 * of the snapshot's current generation, and a file of any other generation, a damaged one, or one left by
 * a state that was rebuilt is never taken for the truth.
 */
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { generationCursor } from '../../reconciler/state/snapshot.ts';
import { RunDiff } from '../../reconciler/sync/run-diff.ts';
import { makeProject, ndjson, open, personSource, syncOk, useSandbox, writeData } from '../support/sync-fixture.ts';

let sandbox: RunningSandbox;

useSandbox(15, (s) => (sandbox = s));

const N = 300;
const customers = (version: number) =>
  ndjson(Array.from({ length: N }, (_, i) => ({ customer_id: `c${i}`, orders: i % 10 === 3 ? i + version : i, store: `store ${i % 7}` })));

async function state(dir: string): Promise<{ stateDir: string; generation: string | undefined }> {
  const ws = await open(dir, sandbox);
  try {
    return { stateDir: ws.conn.stateDir, generation: await ws.conn.store.snapshotGeneration('customers') };
  } finally {
    await ws.conn.close();
  }
}

async function indexFiles(stateDir: string): Promise<string[]> {
  return (await readdir(path.join(stateDir, 'snapshot-index')).catch(() => [] as string[])).sort();
}

describe('the snapshot index file', () => {
  it('is written for the generation each run leaves, read by the next run, and replaced when the snapshot changes', async () => {
    const dir = await makeProject({ sources: [personSource({ fields: { order_count: 'orders', preferred_store: 'store' } })], data: { 'customers.ndjson': customers(0) } });
    await syncOk(dir, sandbox, 'customers');
    const first = await state(dir);
    expect(first.generation).toBeDefined();
    expect(await indexFiles(first.stateDir)).toEqual([`customers.${first.generation}.idx`]);

    // The next run reads that file, not the store: an empty index under the current generation's name
    // makes every row look new to a plan (a test of where the index comes from, never done by tidemark).
    const file = path.join(first.stateDir, 'snapshot-index', `customers.${first.generation}.idx`);
    const real = await readFile(file);
    await writeFile(file, Buffer.concat(new RunDiff().encodeSnapshot(first.generation!)));
    expect((await syncOk(dir, sandbox, 'customers', { mode: 'plan' })).counts).toMatchObject({ new: N, unchanged: 0 });
    await writeFile(file, real);
    expect((await syncOk(dir, sandbox, 'customers', { mode: 'plan' })).counts).toMatchObject({ new: 0, unchanged: N });

    // A run that changes rows leaves a new generation, its file, and only its file; the run after it
    // finds nothing left to send.
    await writeData(dir, 'customers.ndjson', customers(1));
    const changed = await syncOk(dir, sandbox, 'customers');
    expect(changed.counts).toMatchObject({ changed: N / 10, sent: N / 10 });
    const second = await state(dir);
    expect(second.generation).not.toBe(first.generation);
    expect(await indexFiles(second.stateDir)).toEqual([`customers.${second.generation}.idx`]);
    expect((await syncOk(dir, sandbox, 'customers')).counts).toMatchObject({ changed: 0, unchanged: N, sent: 0 });
    // A run that sent nothing leaves the generation, and its file, as they were.
    expect((await state(dir)).generation).toBe(second.generation);
  });

  it('reads the store when the file is damaged, and never reads a file a rebuilt state did not write', async () => {
    const dir = await makeProject({ sources: [personSource({ fields: { order_count: 'orders' } })], data: { 'customers.ndjson': customers(0) } });
    await syncOk(dir, sandbox, 'customers');
    const { stateDir, generation } = await state(dir);
    const file = path.join(stateDir, 'snapshot-index', `customers.${generation}.idx`);
    await writeFile(file, 'not an index file');
    expect((await syncOk(dir, sandbox, 'customers', { mode: 'plan' })).counts).toMatchObject({ new: 0, unchanged: N });

    // The state is rebuilt from scratch (its file removed): the index file of the old state stays on disk,
    // but the new snapshot's generation is a fresh token, so the old file is never read.
    const ws = await open(dir, sandbox);
    try {
      await ws.conn.store.dropSnapshot('customers');
      expect(await ws.conn.store.getCursor(generationCursor('customers'))).toBeUndefined();
    } finally {
      await ws.conn.close();
    }
    await writeFile(file, Buffer.concat(seeded(generation!)));
    const again = await syncOk(dir, sandbox, 'customers');
    expect(again.counts).toMatchObject({ new: N, sent: N });
    expect((await state(dir)).generation).not.toBe(generation);
    await rm(path.join(stateDir, 'snapshot-index'), { recursive: true, force: true });
    expect((await syncOk(dir, sandbox, 'customers', { mode: 'plan' })).counts).toMatchObject({ new: 0, unchanged: N });
  });
});

/** An index claiming every customer is already sent, under a given generation. */
function seeded(generation: string): Buffer[] {
  const d = new RunDiff();
  for (let i = 0; i < N; i++) d.load(`c${i}`, 'f'.repeat(32), null);
  return d.encodeSnapshot(generation);
}
