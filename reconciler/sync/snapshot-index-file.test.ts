import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AckedRow, SnapshotAckSession } from '../state/index.ts';
import { RunDiff } from './run-diff.ts';
import { SnapshotIndexFiles, TrackedAckSession } from './snapshot-index-file.ts';

/** An ack session that only remembers how it was closed, and fails a commit when told to. */
function fakeSession(failNext = { value: false }): SnapshotAckSession & { closedWith: unknown[]; applied: boolean[] } {
  const closedWith: unknown[] = [];
  const applied: boolean[] = [];
  return {
    source: 'people',
    generation: undefined,
    closedWith,
    applied,
    async append(rows: readonly AckedRow[]) {
      if (failNext.value) throw new Error('disk full');
      return rows.length;
    },
    async record(_outcome, opts?: { apply?: boolean }) {
      if (failNext.value) throw new Error('disk full');
      applied.push(opts?.apply === true);
    },
    async close(opts?: { eachKeyOnce?: boolean }) {
      closedWith.push(opts);
    },
  };
}

const row = (key: string, hash = 'a'.repeat(32)): AckedRow => ({ key, hash, ordering: null, payload: '{}' });

describe('TrackedAckSession', () => {
  it('vouches for one acknowledgement per key only when it saw every commit and no key twice', async () => {
    const once = fakeSession();
    const tracked = new TrackedAckSession(once, new RunDiff());
    await tracked.append([row('a'), row('b')]);
    await tracked.record({ acknowledged: [row('c')] });
    await tracked.close();
    expect(once.closedWith).toEqual([{ eachKeyOnce: true }]);

    const twice = fakeSession();
    const again = new TrackedAckSession(twice, new RunDiff());
    await again.append([row('a')]);
    await again.record({ acknowledged: [row('a', 'b'.repeat(32))] });
    await again.close();
    expect(twice.closedWith).toEqual([{ eachKeyOnce: false }]);

    // A commit that failed may still have written its rows: nothing is promised then.
    const fail = { value: true };
    const uncertain = fakeSession(fail);
    const doubt = new TrackedAckSession(uncertain, new RunDiff());
    await expect(doubt.append([row('a')])).rejects.toThrow('disk full');
    fail.value = false;
    await doubt.append([row('b')]);
    await doubt.close();
    expect(uncertain.closedWith).toEqual([{ eachKeyOnce: false }]);
  });
});

describe('TrackedAckSession: batches applied as they are recorded', () => {
  /** A diff holding `n` snapshot keys. */
  const snapshotOf = (n: number) => {
    const diff = new RunDiff();
    for (let i = 0; i < n; i++) diff.load(`k${i}`, 'a'.repeat(32), null);
    return diff;
  };
  const batch = (n: number, from = 0) => ({ acknowledged: Array.from({ length: n }, (_, i) => row(`n${from + i}`)) });

  it('while the run acknowledged at most a 64th of the snapshot, and never again after the first batch beyond', async () => {
    const inner = fakeSession();
    const tracked = new TrackedAckSession(inner, snapshotOf(6400));
    await tracked.record(batch(60));
    await tracked.record(batch(40, 60));
    await tracked.record(batch(1, 100));
    // Back under the share would be possible only if acknowledgements were forgotten: they are not.
    await tracked.record({ acknowledged: [] });
    expect(inner.applied).toEqual([true, true, false, false]);
  });

  it('never on a first run (an empty snapshot), where the close merges everything in one sorted pass', async () => {
    const inner = fakeSession();
    const tracked = new TrackedAckSession(inner, new RunDiff());
    await tracked.record(batch(1));
    await tracked.record(batch(1, 1));
    expect(inner.applied).toEqual([false, false]);
  });
});

describe('SnapshotIndexFiles.writeAhead', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const stateDir = () => {
    const d = mkdtempSync(path.join(os.tmpdir(), 'tidemark-ahead-'));
    dirs.push(d);
    return d;
  };
  const diffWith = (n: number) => {
    const d = new RunDiff();
    for (let i = 0; i < n; i++) d.load(`k${i}`, i.toString(16).padStart(32, '0'), i);
    d.acknowledge('k0', 'f'.repeat(32), 99);
    return d;
  };

  it('writes the body while the caller is busy, then names the file for the generation: the next load reads it', async () => {
    const dir = stateDir();
    const files = new SnapshotIndexFiles(dir, 'people');
    const { prefix, prefixLength, body } = diffWith(200_000).snapshotFile(true);
    const ahead = files.writeAhead(body, prefixLength!);
    // Busy without turning the event loop, as the store's merge is: the writes were handed on already, so
    // the file grows meanwhile.
    const folder = path.join(dir, 'snapshot-index');
    const size = () => readdirSync(folder).reduce((n, f) => n + statSync(path.join(folder, f)).size, 0);
    const until = Date.now() + 5_000;
    while (size() === 0 && Date.now() < until);
    expect(size()).toBeGreaterThan(0);
    expect(await ahead.finish('gen-2', prefix('gen-2'))).toBe(true);
    expect(readdirSync(path.join(dir, 'snapshot-index'))).toEqual(['people.gen-2.idx']);
    const loaded = new RunDiff();
    expect(await files.load('gen-2', loaded)).toBe(true);
    expect(loaded.snapshotSize).toBe(200_000);
    expect(loaded.snapshotOrdering('k0')).toBe(99);
    expect(loaded.snapshotOrdering('k199999')).toBe(199_999);
  });

  it('leaves nothing behind when discarded, and replaces the other generations when finished', async () => {
    const dir = stateDir();
    const files = new SnapshotIndexFiles(dir, 'people');
    expect(await files.save('gen-1', diffWith(10).snapshotChunks('gen-1'))).toBe(true);
    const first = diffWith(10).snapshotFile(true);
    await files.writeAhead(first.body, first.prefixLength!).discard();
    expect(readdirSync(path.join(dir, 'snapshot-index'))).toEqual(['people.gen-1.idx']);
    const second = diffWith(10).snapshotFile(true);
    expect(await files.writeAhead(second.body, second.prefixLength!).finish('gen-3', second.prefix('gen-3'))).toBe(true);
    expect(readdirSync(path.join(dir, 'snapshot-index'))).toEqual(['people.gen-3.idx']);
  });

  it('removes the temporary files of writers that are gone (a run killed mid-write), never a live one\'s', async () => {
    const dir = stateDir();
    const folder = path.join(dir, 'snapshot-index');
    mkdirSync(folder, { recursive: true });
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    writeFileSync(path.join(folder, `people.ahead.${gone}.tmp`), 'left by a killed run');
    writeFileSync(path.join(folder, `people.gen-0.idx.${gone}.tmp`), 'left by a killed run');
    writeFileSync(path.join(folder, `people.ahead.${process.ppid}.tmp`), 'being written by a live process');
    writeFileSync(path.join(folder, `other.ahead.${gone}.tmp`), 'another source\'s');
    const files = new SnapshotIndexFiles(dir, 'people');
    expect(await files.save('gen-1', diffWith(10).snapshotChunks('gen-1'))).toBe(true);
    expect(readdirSync(folder).sort()).toEqual([`other.ahead.${gone}.tmp`, `people.ahead.${process.ppid}.tmp`, 'people.gen-1.idx'].sort());
  });

  it('reports a failed write and leaves nothing: the caller writes the file the ordinary way', async () => {
    const dir = stateDir();
    // The folder is a file: nothing can be written under it.
    writeFileSync(path.join(dir, 'snapshot-index'), 'not a folder');
    const files = new SnapshotIndexFiles(dir, 'people');
    const { prefix, prefixLength, body } = diffWith(10).snapshotFile(true);
    expect(await files.writeAhead(body, prefixLength!).finish('gen-2', prefix('gen-2'))).toBe(false);
  });
});
