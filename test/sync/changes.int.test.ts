/**
 * Only changes are sent: an unchanged re-read sends nothing, one changed row sends one entry, a change in
 * a column tidemark does not map sends nothing; events go out exactly once under deterministic ids (a
 * re-read after the snapshot was lost is deduplicated by Customer.io); objects and their relationships use
 * the v2 object operations.
 */
import { describe, expect, it } from 'vitest';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import type { Connector, SourceRow } from '../../reconciler/sync/types.ts';
import { attributesOf, batchRequests, makeProject, ndjson, open, personSource, returnsSource, storesSource, sync, syncOk, trackRequests, useSandbox, writeData } from '../support/sync-fixture.ts';

let sandbox: RunningSandbox;
let dir: string | undefined;

useSandbox(14, (s) => (sandbox = s));

const customers = (n: number, change: (i: number) => Record<string, unknown> = () => ({})) =>
  ndjson(Array.from({ length: n }, (_, i) => ({ customer_id: `c${i}`, orders: i, store: `store ${i % 7}`, internal_note: 'x', ...change(i) })));

async function dropSnapshot(dir: string, source: string): Promise<void> {
  // The state the engine uses, opened as the engine opens it.
  const ws = await open(dir, sandbox);
  try {
    await ws.conn.store.dropSnapshot(source);
  } finally {
    await ws.conn.close();
  }
}

describe('only changes are sent', () => {
  it('sends nothing for an unchanged re-read, one entry for one changed row, nothing for an unmapped column', async () => {
    const N = 250;
    dir = await makeProject({ sources: [personSource({ fields: { order_count: 'orders', preferred_store: 'store' } })], data: { 'customers.ndjson': customers(N) } });
    const first = await syncOk(dir, sandbox, 'customers');
    expect(first.counts).toMatchObject({ read: N, new: N, sent: N, acknowledged: N });
    expect(sandbox.customerio.listPeople()).toHaveLength(N);

    sandbox.resetRequestCounts();
    const second = await syncOk(dir, sandbox, 'customers');
    expect(second.counts).toMatchObject({ read: N, new: 0, changed: 0, unchanged: N, sent: 0 });
    expect(trackRequests(sandbox)).toBe(0);

    await writeData(dir, 'customers.ndjson', customers(N, (i) => (i === 137 ? { orders: 1000 } : {})));
    const third = await syncOk(dir, sandbox, 'customers');
    expect(third.counts).toMatchObject({ changed: 1, unchanged: N - 1, sent: 1, acknowledged: 1 });
    expect(batchRequests(sandbox)).toBe(1);
    expect(attributesOf(sandbox, 'c137')).toMatchObject({ order_count: 1000 });

    // internal_note is read from the file but mapped to no field.
    sandbox.resetRequestCounts();
    await writeData(dir, 'customers.ndjson', customers(N, (i) => ({ internal_note: `edited ${i}`, ...(i === 137 ? { orders: 1000 } : {}) })));
    const fourth = await syncOk(dir, sandbox, 'customers');
    expect(fourth.counts).toMatchObject({ changed: 0, unchanged: N, sent: 0 });
    expect(trackRequests(sandbox)).toBe(0);
  });

  it('treats a value that normalises to the same thing as unchanged', async () => {
    dir = await makeProject({
      sources: [personSource({ fields: { email: 'email', phone: 'phone', order_count: 'orders' } })],
      data: { 'customers.ndjson': ndjson([{ customer_id: 1, email: 'ana@example.com', phone: '+14155550132', orders: 3 }]) },
    });
    await syncOk(dir, sandbox, 'customers');
    await writeData(dir, 'customers.ndjson', ndjson([{ customer_id: '1', email: ' ANA@example.com', phone: '(415) 555-0132', orders: '3.0' }]));
    const r = await syncOk(dir, sandbox, 'customers');
    expect(r.counts).toMatchObject({ unchanged: 1, sent: 0 });
  });
});

describe('events', () => {
  const returns = [
    { return_id: 'R-1', customer_id: 'c1', created_at: '2026-11-21 14:03:00', reason: 'too_strong', amount: 18.5 },
    { return_id: 'R-2', customer_id: 'c1', created_at: '2026-11-22 09:41:00', reason: 'damaged', amount: 32 },
    { return_id: 'R-3', customer_id: 'c2', created_at: '2026-07-01 09:00:00', reason: 'wrong_size', amount: 12 },
  ];

  it('sends each event once under a deterministic id, also when the snapshot is lost and the rows are read again', async () => {
    dir = await makeProject({ sources: [returnsSource()], data: { 'returns.ndjson': ndjson(returns) } });
    const first = await syncOk(dir, sandbox, 'returns');
    expect(first.counts).toMatchObject({ read: 3, new: 3, sent: 3, acknowledged: 3 });
    const c1 = sandbox.customerio.eventsFor('c1');
    expect(c1.map((e) => [e.name, e.data.return_reason, e.timestamp])).toEqual([
      // Europe/London: GMT in November, BST in July.
      ['return_created', 'too_strong', Date.parse('2026-11-21T14:03:00Z') / 1000],
      ['return_created', 'damaged', Date.parse('2026-11-22T09:41:00Z') / 1000],
    ]);
    expect(sandbox.customerio.eventsFor('c2').map((e) => e.timestamp)).toEqual([Date.parse('2026-07-01T08:00:00Z') / 1000]);
    const ids = new Map([...c1, ...sandbox.customerio.eventsFor('c2')].map((e) => [e.data.return_reason, e.id]));
    for (const id of ids.values()) expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);

    // Re-reading the same rows sends nothing.
    sandbox.resetRequestCounts();
    expect((await syncOk(dir, sandbox, 'returns')).counts).toMatchObject({ unchanged: 3, sent: 0 });
    expect(trackRequests(sandbox)).toBe(0);

    // The state is lost: every row is new again and sent again, under the same ids, and deduplicated.
    await dropSnapshot(dir, 'returns');
    const replay = await syncOk(dir, sandbox, 'returns');
    expect(replay.counts).toMatchObject({ new: 3, sent: 3, acknowledged: 3 });
    expect(sandbox.customerio.eventsFor('c1')).toHaveLength(2);
    expect(sandbox.customerio.eventsFor('c2')).toHaveLength(1);
    expect(new Map([...sandbox.customerio.eventsFor('c1'), ...sandbox.customerio.eventsFor('c2')].map((e) => [e.data.return_reason, e.id]))).toEqual(ids);
  });

  it('sends a new event in a growing file, and never re-sends an event whose data was edited later', async () => {
    dir = await makeProject({ sources: [returnsSource()], data: { 'returns.ndjson': ndjson(returns.slice(0, 2)) } });
    await syncOk(dir, sandbox, 'returns');
    await writeData(dir, 'returns.ndjson', ndjson([{ ...returns[0]!, reason: 'edited afterwards' }, returns[1]!, returns[2]!]));
    const r = await syncOk(dir, sandbox, 'returns');
    expect(r.counts).toMatchObject({ new: 1, unchanged: 2, sent: 1 });
    expect(sandbox.customerio.eventsFor('c1').map((e) => e.data.return_reason)).toEqual(['too_strong', 'damaged']);
    expect(sandbox.customerio.eventsFor('c2')).toHaveLength(1);
  });

  it('gives two rows with the same id columns one event', async () => {
    dir = await makeProject({ sources: [returnsSource()], data: { 'returns.ndjson': ndjson([returns[0]!, returns[0]!]) } });
    const r = await syncOk(dir, sandbox, 'returns');
    expect(r.counts).toMatchObject({ read: 2, new: 1, duplicates: 1, sent: 1 });
    expect(sandbox.customerio.eventsFor('c1')).toHaveLength(1);
  });
});

describe('objects', () => {
  it('identifies objects with the v2 object operation and relates them to their person', async () => {
    dir = await makeProject({
      sources: [storesSource()],
      data: {
        'stores.ndjson': ndjson([
          { store_id: 'berlin-1', name: 'Mitte', city: 'Berlin', customer_id: 'c1' },
          { store_id: 'lyon-1', name: 'Presqu’île', city: 'Lyon' },
        ]),
      },
    });
    const r = await syncOk(dir, sandbox, 'stores');
    expect(r.counts).toMatchObject({ new: 2, sent: 2, acknowledged: 2 });
    const berlin = sandbox.customerio.getObject('1', 'berlin-1');
    expect(berlin?.attributes).toEqual({ store_name: 'Mitte', store_city: 'Berlin' });
    const c1 = sandbox.customerio.getPerson('c1')!;
    expect(berlin?.people).toEqual([c1.cio_id]);
    expect(c1.relationships.map((x) => [x.object_type_id, x.object_id])).toEqual([['1', 'berlin-1']]);
    expect(sandbox.customerio.getObject('1', 'lyon-1')?.people).toEqual([]);
    // Only the related person exists: objects do not create people of their own.
    expect(sandbox.customerio.listPeople().map((p) => p.id)).toEqual(['c1']);

    // A changed object attribute is sent again; an unchanged one is not.
    await writeData(
      dir,
      'stores.ndjson',
      ndjson([
        { store_id: 'berlin-1', name: 'Mitte', city: 'Berlin', customer_id: 'c1' },
        { store_id: 'lyon-1', name: 'Confluence', city: 'Lyon' },
      ]),
    );
    const again = await syncOk(dir, sandbox, 'stores');
    expect(again.counts).toMatchObject({ changed: 1, unchanged: 1, sent: 1 });
    expect(sandbox.customerio.getObject('1', 'lyon-1')?.attributes).toEqual({ store_name: 'Confluence', store_city: 'Lyon' });
  });

  it('relates an object by email when the source identifies people by email', async () => {
    const source = storesSource().replace('identity: { column: customer_id, as: id }', 'identity: { column: email, as: email }');
    dir = await makeProject({
      sources: [source],
      data: { 'stores.ndjson': ndjson([{ store_id: 'berlin-1', name: 'Mitte', city: 'Berlin', email: ' Ana@Example.com' }]) },
    });
    await syncOk(dir, sandbox, 'stores');
    const ana = sandbox.customerio.getPerson('ana@example.com');
    expect(ana).toBeDefined();
    // The person is found by email, not created with the email as their id.
    expect(ana!.id).toBeNull();
    expect(sandbox.customerio.getObject('1', 'berlin-1')?.people).toEqual([ana!.cio_id]);
  });
});

describe('streaming', () => {
  it('sends large reads in several chunks and acknowledges every one', async () => {
    const N = 1200;
    const rows: SourceRow[] = Array.from({ length: N }, (_, i) => ({ location: `gen:${i + 1}`, values: { customer_id: `p${i}`, orders: i } }));
    const connector: Connector = {
      type: 'generated',
      async *read() {
        yield* rows;
      },
    };
    dir = await makeProject({ sources: [personSource({ fields: { order_count: 'orders' } })], data: { 'customers.ndjson': '' } });
    const acknowledgedChunks: number[] = [];
    const r = await syncOk(dir, sandbox, 'customers', { connector, sendChunk: 500, afterAcknowledge: (keys) => void acknowledgedChunks.push(keys.length) });
    expect(r.counts).toMatchObject({ read: N, new: N, sent: N, acknowledged: N });
    expect(acknowledgedChunks).toEqual([500, 500, 200]);
    expect(sandbox.customerio.listPeople()).toHaveLength(N);
    expect((await syncOk(dir, sandbox, 'customers', { connector })).counts).toMatchObject({ unchanged: N, sent: 0 });
  });

  it('a read that fails midway keeps what was acknowledged so far; the next run sends only the rest', async () => {
    const rows: SourceRow[] = Array.from({ length: 60 }, (_, i) => ({ location: `gen:${i + 1}`, values: { customer_id: `p${i}`, orders: i } }));
    let failAt = 40;
    const connector: Connector = {
      type: 'generated',
      async *readBatches() {
        for (let i = 0; i < rows.length; i += 10) {
          if (i >= failAt) throw new Error('the warehouse connection dropped');
          yield rows.slice(i, i + 10);
        }
      },
      async *read() {
        yield* rows;
      },
    };
    dir = await makeProject({ sources: [personSource({ fields: { order_count: 'orders' } })], data: { 'customers.ndjson': '' } });
    const failed = await sync(dir, sandbox, 'customers', { connector, sendChunk: 10 });
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatch(/warehouse connection dropped/);
    // Every chunk read before the failure went out and was recorded, even those still on the wire when the read failed.
    expect(failed.counts).toMatchObject({ read: 40, sent: 40, acknowledged: 40, unsent: 0 });
    expect(sandbox.customerio.listPeople()).toHaveLength(40);
    failAt = Number.POSITIVE_INFINITY;
    sandbox.resetRequestCounts();
    const next = await syncOk(dir, sandbox, 'customers', { connector });
    expect(next.counts).toMatchObject({ read: 60, unchanged: 40, new: 20, sent: 20 });
    expect(sandbox.customerio.listPeople()).toHaveLength(60);
  });
});
