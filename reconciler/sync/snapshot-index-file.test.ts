import { describe, expect, it } from 'vitest';
import type { AckedRow, SnapshotAckSession } from '../state/index.ts';
import { RunDiff } from './run-diff.ts';
import { TrackedAckSession } from './snapshot-index-file.ts';

/** An ack session that only remembers how it was closed, and fails a commit when told to. */
function fakeSession(failNext = { value: false }): SnapshotAckSession & { closedWith: unknown[] } {
  const closedWith: unknown[] = [];
  return {
    source: 'people',
    generation: undefined,
    closedWith,
    async append(rows: readonly AckedRow[]) {
      if (failNext.value) throw new Error('disk full');
      return rows.length;
    },
    async record() {
      if (failNext.value) throw new Error('disk full');
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
