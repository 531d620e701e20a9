/**
 * The sync engine with its state in PostgreSQL (the real server of the test machine): the snapshot index,
 * the bulk payload reads and the ack log behave as on the embedded store. Skipped with a loud banner when
 * no server answers (see test/support/state-backends.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, type RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { stateBackends, TEST_DATABASE_URL } from '../support/state-backends.ts';
import { attributesOf, makeProject, ndjson, open, personSource, removeProject, sync, syncOk, writeData } from '../support/sync-fixture.ts';

const postgres = (await stateBackends('sync_engine')).find((b) => b.name === 'postgres')!;

let sandbox: RunningSandbox;
let env: NodeJS.ProcessEnv;
let location: { schema?: string };
let dir: string | undefined;

beforeAll(async () => {
  sandbox = await createSandbox({ port: 0, retryAfterSeconds: 0, seed: 31 });
  if (!postgres.available) return;
  location = await postgres.newLocation();
  const schema = location.schema!;
  const url = new URL(TEST_DATABASE_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  env = { TIDEMARK_DATABASE_URL: url.toString() };
});
afterAll(async () => {
  await sandbox.close();
  if (dir) await removeProject(dir);
  await postgres.cleanup();
});

const row = (i: number, o: { orders?: number | null; store?: string | null; at?: string } = {}) => ({
  customer_id: `pg${i}`,
  orders: o.orders === undefined ? i : o.orders,
  store: o.store === undefined ? `store-${i % 3}` : o.store,
  updated_at: o.at ?? '2026-05-01T00:00:00Z',
});

describe.skipIf(!postgres.available)('sync with the state in PostgreSQL', () => {
  it('sends only what changed, keeps blocked blanks, erases clearable ones, skips older rows, and resends what a failed run did not deliver', async () => {
    const N = 300;
    dir = await makeProject({
      state: 'postgres',
      sources: [personSource({ fields: { order_count: 'orders', preferred_store: 'store' }, ordering: 'updated_at', timezone: 'UTC' })],
      data: { 'customers.ndjson': ndjson(Array.from({ length: N }, (_, i) => row(i))) },
    });
    const first = await syncOk(dir, sandbox, 'customers', { env, sendChunk: 50 });
    expect(first.counts).toMatchObject({ read: N, new: N, sent: N, acknowledged: N });

    const later = '2026-05-02T00:00:00Z';
    const earlier = '2026-04-01T00:00:00Z';
    const next = Array.from({ length: N }, (_, i) => row(i));
    next[1] = row(1, { orders: 1001, at: later }); // changed
    next[2] = row(2, { orders: null, at: later }); // a blank for a field that is not clearable: no change
    next[3] = row(3, { orders: 3003, at: earlier }); // older than what was sent
    next[4] = row(4, { store: null, at: later }); // a blank for a clearable field: erased
    next.push(row(N, { at: later })); // new
    await writeData(dir, 'customers.ndjson', ndjson(next));

    const plan = await syncOk(dir, sandbox, 'customers', { env, mode: 'plan' });
    expect(plan.counts).toMatchObject({ new: 1, changed: 2, out_of_order: 1, unchanged: N - 3, null_blocked: { order_count: 1 }, erased: { preferred_store: 1 } });
    expect(plan.counts.changed_fields).toEqual({ order_count: 2, preferred_store: 2 });

    const second = await syncOk(dir, sandbox, 'customers', { env });
    expect(second.counts).toMatchObject({ sent: 3, acknowledged: 3, out_of_order: 1 });
    expect(attributesOf(sandbox, 'pg1')).toMatchObject({ order_count: 1001 });
    expect(attributesOf(sandbox, 'pg2')).toMatchObject({ order_count: 2 });
    expect(attributesOf(sandbox, 'pg4')?.preferred_store ?? null).toBeNull();
    expect(attributesOf(sandbox, 'pg3')).toMatchObject({ order_count: 3 });

    // The service fails for longer than the retries: what was acknowledged stays, the rest goes next run.
    next[10] = row(10, { orders: 1010, at: later });
    next[20] = row(20, { orders: 1020, at: later });
    await writeData(dir, 'customers.ndjson', ndjson(next));
    sandbox.faults.set({ service: 'track', errorRate: 1 });
    const failed = await sync(dir, sandbox, 'customers', { env });
    // Everything was read; the two entries wait in the Postgres state.
    expect(failed.status).toBe('partial');
    expect(failed.counts).toMatchObject({ sent: 0, unsent: 2, pending: 2 });
    sandbox.faults.clear();
    const third = await syncOk(dir, sandbox, 'customers', { env });
    // The same rows again are not newer than the waiting entries: those go out instead, once.
    expect(third.counts).toMatchObject({ behind_pending: 2, retried: 2, sent: 2, acknowledged: 2, pending: 0 });
    expect((await syncOk(dir, sandbox, 'customers', { env })).counts).toMatchObject({ sent: 0, unchanged: N, out_of_order: 1 });

    // It was the Postgres store all along.
    const ws = await open(dir, sandbox, { env });
    const store = ws.conn.store;
    try {
      expect(store.backend).toBe('postgres');
      expect(await store.countSnapshot('customers')).toBe(N + 1);
      expect((await store.lastRuns('customers', 10)).map((r) => r.status)).toEqual(['succeeded', 'succeeded', 'partial', 'succeeded', 'succeeded']);
    } finally {
      await ws.conn.close();
    }
  });
});
