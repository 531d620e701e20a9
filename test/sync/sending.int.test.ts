/**
 * Sending under faults: entries Customer.io refuses in a 207 for a transient reason are kept in the
 * state as pending, are not advanced in the snapshot and go out again next run (also from an incremental
 * source, whose next read no longer returns them); the run that left them is partial, never a success;
 * 5xx bursts and 429 storms are retried; a failure that outlasts the retries stops the run with the
 * snapshot holding exactly what was acknowledged, and an answer lost after Customer.io applied a batch
 * never turns into a duplicate event.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixedClock } from '../../reconciler/core/clock.ts';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import type { StateStore } from '../../reconciler/state/index.ts';
import type { Connector, SourceRow } from '../../reconciler/sync/types.ts';
import { batchRequests, makeProject, ndjson, open, personSource, rejectsOf, returnsSource, sync, syncOk, useSandbox } from '../support/sync-fixture.ts';

let sandbox: RunningSandbox;
let dir: string | undefined;

useSandbox(15, (s) => (sandbox = s));

const people = (n: number) => ndjson(Array.from({ length: n }, (_, i) => ({ customer_id: `p${i}`, orders: i + 1 })));
const ids = (n: number) => Array.from({ length: n }, (_, i) => `p${i}`).sort();
const present = () => sandbox.customerio.listPeople().map((p) => p.id!).sort();

/** The project's state, opened as the engine opens it. */
async function withStore<T>(dir: string, fn: (store: StateStore) => Promise<T>): Promise<T> {
  const ws = await open(dir, sandbox);
  try {
    return await fn(ws.conn.store);
  } finally {
    await ws.conn.close();
  }
}

async function snapshotKeys(dir: string, source: string): Promise<string[]> {
  return withStore(dir, async (store) => {
    const keys: string[] = [];
    for await (const e of store.iterateSnapshot(source)) keys.push(e.key);
    return keys.sort();
  });
}

describe('207 partial failures', () => {
  it('keeps entries refused for a transient reason as pending (not as rejects), out of the snapshot, and sends them next run', async () => {
    const N = 60;
    dir = await makeProject({ sources: [personSource({ fields: { order_count: 'orders' } })], data: { 'customers.ndjson': people(N) } });
    sandbox.faults.set({ partialFailureRate: 0.3, service: 'track' });
    const first = await sync(dir, sandbox, 'customers', { sendChunk: 20 });
    const refused = first.counts.retry_later;
    // Seeded: a stable share of the entries, neither none nor all.
    expect(refused).toBeGreaterThan(5);
    expect(refused).toBeLessThan(35);
    // Partial, not succeeded: "sent" is what Customer.io acknowledged, and the rest waits.
    expect(first.status).toBe('partial');
    expect(first.counts).toMatchObject({ read: N, new: N, attempted: N, sent: N - refused, acknowledged: N - refused, refused: 0, unsent: 0, pending: refused });
    expect(first.problems).toEqual([
      `${refused} entries were refused by Customer.io for a transient reason or not acknowledged (${refused} refused, 0 not acknowledged); they are kept in the state and sent on the next run.`,
    ]);
    expect(await rejectsOf(dir, first)).toEqual([]);
    const acknowledgedIds = present();
    expect(acknowledgedIds).toHaveLength(N - refused);
    expect(await snapshotKeys(dir, 'customers')).toEqual(acknowledgedIds);
    const waiting = await withStore(dir, (store) => store.readPending('customers'));
    expect(waiting.map((e) => e.key).sort()).toEqual(ids(N).filter((id) => !acknowledgedIds.includes(id)));
    expect(waiting.every((e) => e.reason === 'retryable' && /^data\/customers\.ndjson:\d+$/.test(e.location))).toBe(true);

    sandbox.faults.clear();
    const second = await syncOk(dir, sandbox, 'customers');
    // The same file again: its rows (no ordering column) supersede the waiting entries and go out instead.
    expect(second.counts).toMatchObject({ new: refused, unchanged: N - refused, sent: refused, acknowledged: refused, refused: 0, pending: 0 });
    expect(present()).toEqual(ids(N));
    expect(await snapshotKeys(dir, 'customers')).toEqual(ids(N));
    expect(await withStore(dir, (store) => store.countPending('customers'))).toBe(0);
  });

  it('sends refused rows of an incremental source from the state, though its next read no longer returns them', async () => {
    // A warehouse table read with `updated_at > :last_sync_at`: every row changed before the first run.
    const N = 40;
    const rows: SourceRow[] = Array.from({ length: N }, (_, i) => ({ location: `query row ${i + 1}`, values: { customer_id: `p${i}`, orders: i + 1, updated_at: '2026-05-01T00:00:00Z' } }));
    const reads: Array<string | null> = [];
    const incremental: Connector = {
      type: 'warehouse',
      async *read(ctx) {
        reads.push(ctx.lastSyncAt?.toISOString() ?? null);
        for (const r of rows) if (!ctx.lastSyncAt || Date.parse(String(r.values.updated_at)) > ctx.lastSyncAt.getTime()) yield r;
      },
    };
    dir = await makeProject({ sources: [personSource({ fields: { order_count: 'orders' }, ordering: 'updated_at' })], data: { 'customers.ndjson': '' } });
    sandbox.faults.set({ partialFailureRate: 0.3, service: 'track' });
    const first = await sync(dir, sandbox, 'customers', { connector: incremental, clock: fixedClock('2026-05-02T00:00:00Z') });
    expect(first.status).toBe('partial');
    expect(first.counts.retry_later).toBeGreaterThan(0);

    sandbox.faults.clear();
    // The cursor moved (every row's outcome is recorded): the second read returns nothing, and the
    // waiting entries go out from the state.
    const second = await syncOk(dir, sandbox, 'customers', { connector: incremental, clock: fixedClock('2026-05-02T01:00:00Z') });
    expect(second.counts).toMatchObject({ read: 0, retried: first.counts.retry_later, sent: first.counts.retry_later, refused: 0, pending: 0 });
    expect(present()).toEqual(ids(N));

    const third = await syncOk(dir, sandbox, 'customers', { connector: incremental, clock: fixedClock('2026-05-02T02:00:00Z') });
    expect(third.counts).toMatchObject({ read: 0, sent: 0, retried: 0 });
    expect(reads).toEqual([null, '2026-05-02T00:00:00.000Z', '2026-05-02T01:00:00.000Z']);
  });
});

describe('transient failures', () => {
  it('retries a burst of 503s and a 429 storm and acknowledges every entry', async () => {
    const N = 30;
    dir = await makeProject({ sources: [personSource({ fields: { order_count: 'orders' } })], data: { 'customers.ndjson': people(N) } });
    sandbox.faults.set({ burst5xx: 3, service: 'track' });
    const a = await syncOk(dir, sandbox, 'customers', { sendChunk: 10 });
    expect(a.counts).toMatchObject({ sent: N, acknowledged: N, refused: 0, unsent: 0 });
    // Three batches, plus one answered 503 three times.
    expect(batchRequests(sandbox)).toBe(3 + 3);
    expect(present()).toEqual(ids(N));

    await import('node:fs/promises').then((fs) => fs.writeFile(path.join(dir!, 'data', 'customers.ndjson'), ndjson(Array.from({ length: N }, (_, i) => ({ customer_id: `p${i}`, orders: 100 + i })))));
    sandbox.resetRequestCounts();
    sandbox.faults.set({ storm429: { count: 4, retryAfterSeconds: 0 }, service: 'track' });
    const b = await syncOk(dir, sandbox, 'customers', { sendChunk: 10 });
    expect(b.counts).toMatchObject({ changed: N, sent: N, acknowledged: N });
    expect(batchRequests(sandbox)).toBe(3 + 4);
    expect(sandbox.customerio.getPerson('p7')?.attributes).toMatchObject({ order_count: 107 });
  });

  it('stops when failures outlast the retries, advancing the snapshot only for acknowledged entries; the next run sends the rest', async () => {
    const N = 30;
    dir = await makeProject({ sources: [personSource({ fields: { order_count: 'orders' } })], data: { 'customers.ndjson': people(N) } });
    // The first batch goes through; then the service fails for longer than the client retries.
    let acknowledgedChunks = 0;
    const failing = await sync(dir, sandbox, 'customers', {
      sendChunk: 10,
      // One chunk at a time, so the fault lands between the first and second chunk.
      maxInFlight: 1,
      afterAcknowledge: () => {
        if (++acknowledgedChunks === 1) sandbox.faults.set({ burst5xx: 1000, service: 'track' });
      },
    });
    expect(failing.status).toBe('failed');
    expect(failing.problems).toEqual([
      'The read stopped early because sending stopped; the rows after that point were not read.',
      '20 entries were refused by Customer.io for a transient reason or not acknowledged (0 refused, 20 not acknowledged); they are kept in the state and sent on the next run.',
      expect.stringMatching(/^Sending stopped: .*HTTP 503 Service Unavailable after \d+ attempts/),
    ]);
    // Sent means acknowledged: the chunk that failed is not counted as sent.
    expect(failing.counts).toMatchObject({ sent: 10, acknowledged: 10, unsent: 20, pending: 20 });
    expect(present()).toEqual(ids(N).filter((id) => ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7', 'p8', 'p9'].includes(id)));
    expect(await snapshotKeys(dir, 'customers')).toEqual(present());
    await withStore(dir, async (store) => {
      const [run] = await store.lastRuns('customers', 1);
      expect(run?.status).toBe('failed');
      expect(await store.lastSuccess('customers')).toBeUndefined();
    });

    sandbox.faults.clear();
    const next = await syncOk(dir, sandbox, 'customers');
    expect(next.counts).toMatchObject({ new: 20, unchanged: 10, sent: 20, acknowledged: 20 });
    expect(present()).toEqual(ids(N));
  });

  it('never duplicates an event whose batch was applied but whose answer was lost', async () => {
    const returns = Array.from({ length: 12 }, (_, i) => ({ return_id: `R-${i}`, customer_id: `c${i % 3}`, created_at: `2026-11-2${i % 9} 10:00:00`, reason: 'damaged', amount: i }));
    dir = await makeProject({ sources: [returnsSource()], data: { 'returns.ndjson': ndjson(returns) } });
    sandbox.faults.set({ dropAfterApplyRate: 1, service: 'track' });
    const lost = await sync(dir, sandbox, 'returns');
    // Everything was read; nothing was acknowledged, so everything waits.
    expect(lost.status).toBe('partial');
    expect(lost.counts).toMatchObject({ acknowledged: 0, sent: 0, unsent: 12, pending: 12 });
    // Customer.io applied them all; tidemark could not know.
    expect(['c0', 'c1', 'c2'].map((c) => sandbox.customerio.eventsFor(c).length)).toEqual([4, 4, 4]);

    sandbox.faults.clear();
    const again = await syncOk(dir, sandbox, 'returns');
    expect(again.counts).toMatchObject({ new: 12, sent: 12, acknowledged: 12 });
    expect(['c0', 'c1', 'c2'].map((c) => sandbox.customerio.eventsFor(c).length)).toEqual([4, 4, 4]);
    expect(new Set(['c0', 'c1', 'c2'].flatMap((c) => sandbox.customerio.eventsFor(c).map((e) => e.id))).size).toBe(12);
  });

  it('marks a run killed earlier as interrupted when the next run takes over, and a superseded run does not overwrite that', async () => {
    dir = await makeProject({ sources: [personSource({ fields: { order_count: 'orders' } })], data: { 'customers.ndjson': people(5) } });
    // A process started a run and died: its record says running, its session holds nothing.
    const dead = await withStore(dir, async (store) => {
      const id = await store.startRun('customers');
      await store.openAckSession('customers');
      return id;
    });
    const r = await syncOk(dir, sandbox, 'customers');
    expect(r.notes).toContain('1 earlier run(s) of customers never finished (killed, or superseded); they are now marked interrupted');
    await withStore(dir, async (store) => {
      const runs = await store.lastRuns('customers', 5);
      expect(runs.map((x) => [x.id === dead ? 'dead' : 'new', x.status])).toEqual([
        ['new', 'succeeded'],
        ['dead', 'interrupted'],
      ]);
      // Had the dead process been alive, its own finish would now be refused rather than erase the mark.
      await expect(store.finishRun(dead, { status: 'succeeded', counts: {} })).rejects.toThrow(/already finished \(interrupted\)/);
    });
  });

  it('a run a newer one takes over stops, and leaves the interrupted mark and the session of the newer run alone', async () => {
    dir = await makeProject({ sources: [personSource({ fields: { order_count: 'orders' } })], data: { 'customers.ndjson': people(30) } });
    let newer: string | undefined;
    const old = await sync(dir, sandbox, 'customers', {
      sendChunk: 10,
      maxInFlight: 1,
      afterAcknowledge: async () => {
        if (newer) return;
        // Another process starts a sync of the same source right now.
        newer = await withStore(dir!, async (store) => {
          const id = await store.startRun('customers');
          await store.openAckSession('customers');
          await store.interruptRuns('customers', id, 'superseded in a test');
          return id;
        });
      },
    });
    expect(old.status).toBe('failed');
    expect(old.error).toMatch(/superseded/);
    expect(old.notes).toContain('a newer sync of this source started while this one ran, and marked this run interrupted');
    await withStore(dir, async (store) => {
      const runs = await store.lastRuns('customers', 5);
      expect(runs.map((r) => [r.id === newer ? 'newer' : 'old', r.status])).toEqual([
        ['newer', 'running'],
        ['old', 'interrupted'],
      ]);
    });
  });
});
