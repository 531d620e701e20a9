/**
 * Latest timestamp wins: with an ordering column, a row older than what was last sent for its identity is
 * skipped and counted (`out_of_order`), within a read the most recent row per identity wins, and a state
 * field always lands together with its updated_at companion.
 */
import { describe, expect, it } from 'vitest';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { attributesOf, batchRequests, makeProject, ndjson, personSource, syncOk, useSandbox, writeData } from '../support/sync-fixture.ts';

let sandbox: RunningSandbox;
let dir: string | undefined;

useSandbox(13, (s) => (sandbox = s));

const secs = (iso: string) => Date.parse(iso) / 1000;
const vipSource = (timezone = 'UTC') =>
  personSource({ name: 'vip', system: 'warehouse', fields: { vip_tier: 'tier', vip_tier_updated_at: 'tier_at' }, ordering: 'tier_at', timezone });

describe('latest timestamp wins', () => {
  it('skips and counts a row older than what was sent for that person; Customer.io keeps the newer value', async () => {
    dir = await makeProject({
      sources: [vipSource()],
      data: { 'vip.ndjson': ndjson([{ customer_id: 'v1', tier: 'gold', tier_at: '2026-05-02T10:00:00Z' }, { customer_id: 'v2', tier: 'none', tier_at: '2026-05-01T10:00:00Z' }]) },
    });
    await syncOk(dir, sandbox, 'vip');
    expect(attributesOf(sandbox, 'v1')).toMatchObject({ vip_tier: 'gold', vip_tier_updated_at: secs('2026-05-02T10:00:00Z') });

    // A late replica delivers yesterday's computation for v1, and a real update for v2.
    await writeData(
      dir,
      'vip.ndjson',
      ndjson([{ customer_id: 'v1', tier: 'silver', tier_at: '2026-05-01T10:00:00Z' }, { customer_id: 'v2', tier: 'silver', tier_at: '2026-05-02T11:00:00Z' }]),
    );
    const plan = await syncOk(dir, sandbox, 'vip', { mode: 'plan' });
    expect(plan.counts).toMatchObject({ new: 0, changed: 1, unchanged: 0, out_of_order: 1, duplicates: 0 });
    sandbox.resetRequestCounts();
    const r = await syncOk(dir, sandbox, 'vip');
    expect(r.counts).toMatchObject({ read: 2, changed: 1, out_of_order: 1, sent: 1, acknowledged: 1 });
    expect(batchRequests(sandbox)).toBe(1);
    expect(attributesOf(sandbox, 'v1')).toMatchObject({ vip_tier: 'gold', vip_tier_updated_at: secs('2026-05-02T10:00:00Z') });
    expect(attributesOf(sandbox, 'v2')).toMatchObject({ vip_tier: 'silver', vip_tier_updated_at: secs('2026-05-02T11:00:00Z') });

    // The stale row keeps being stale: it is never sent, however often it is read.
    const again = await syncOk(dir, sandbox, 'vip');
    expect(again.counts).toMatchObject({ out_of_order: 1, unchanged: 1, sent: 0 });
    expect(attributesOf(sandbox, 'v1')).toMatchObject({ vip_tier: 'gold' });
  });

  it('compares instants, not local wall clocks: a DST-ambiguous time loses to the later reading', async () => {
    // 01:10 EST (06:10Z) was sent; the replica then delivers 01:50, which is ambiguous and read as
    // 01:50 EDT (05:50Z): earlier, so it must not replace the value.
    dir = await makeProject({
      sources: [vipSource('America/New_York')],
      data: { 'vip.ndjson': ndjson([{ customer_id: 'v1', tier: 'gold', tier_at: '2026-11-01T01:10:00-05:00' }]) },
    });
    await syncOk(dir, sandbox, 'vip');
    await writeData(dir, 'vip.ndjson', ndjson([{ customer_id: 'v1', tier: 'silver', tier_at: '2026-11-01 01:50' }]));
    const r = await syncOk(dir, sandbox, 'vip');
    expect(r.counts).toMatchObject({ out_of_order: 1, sent: 0 });
    expect(attributesOf(sandbox, 'v1')).toMatchObject({ vip_tier: 'gold', vip_tier_updated_at: secs('2026-11-01T06:10:00Z') });
  });

  it('within one read, sends the most recent row per person whatever the order of the file', async () => {
    dir = await makeProject({
      sources: [vipSource()],
      data: {
        'vip.ndjson': ndjson([
          { customer_id: 'v1', tier: 'platinum', tier_at: '2026-05-03T00:00:00Z' },
          { customer_id: 'v1', tier: 'gold', tier_at: '2026-05-01T00:00:00Z' },
          { customer_id: 'v2', tier: 'none', tier_at: '2026-05-01T00:00:00Z' },
          { customer_id: 'v2', tier: 'silver', tier_at: '2026-05-02T00:00:00Z' },
        ]),
      },
    });
    const r = await syncOk(dir, sandbox, 'vip');
    expect(r.counts).toMatchObject({ read: 4, new: 2, duplicates: 2, sent: 2 });
    expect(attributesOf(sandbox, 'v1')).toMatchObject({ vip_tier: 'platinum', vip_tier_updated_at: secs('2026-05-03T00:00:00Z') });
    expect(attributesOf(sandbox, 'v2')).toMatchObject({ vip_tier: 'silver', vip_tier_updated_at: secs('2026-05-02T00:00:00Z') });
  });

  it('without an ordering column, the last row of the read wins', async () => {
    dir = await makeProject({
      sources: [personSource({ fields: { order_count: 'orders' } })],
      data: { 'customers.ndjson': ndjson([{ customer_id: 'c1', orders: 5 }, { customer_id: 'c1', orders: 2 }]) },
    });
    const r = await syncOk(dir, sandbox, 'customers');
    expect(r.counts).toMatchObject({ new: 1, duplicates: 1, sent: 1 });
    expect(attributesOf(sandbox, 'c1')).toMatchObject({ order_count: 2 });
  });
});

describe('state and updated_at', () => {
  it('sends a state field with its updated_at companion: both land, and both move together', async () => {
    dir = await makeProject({
      sources: [vipSource()],
      data: { 'vip.ndjson': ndjson([{ customer_id: 'v1', tier: 'gold', tier_at: '2026-05-01T03:00:00Z' }]) },
    });
    await syncOk(dir, sandbox, 'vip');
    const person = sandbox.customerio.getPerson('v1')!;
    expect(person.attributes).toEqual({ vip_tier: 'gold', vip_tier_updated_at: secs('2026-05-01T03:00:00Z') });

    // The tier is recomputed to the same value: only the companion moves, and it is sent with the state.
    await writeData(dir, 'vip.ndjson', ndjson([{ customer_id: 'v1', tier: 'gold', tier_at: '2026-05-02T03:00:00Z' }]));
    const r = await syncOk(dir, sandbox, 'vip', { mode: 'plan' });
    expect(r.counts).toMatchObject({ changed: 1, changed_fields: { vip_tier_updated_at: 1 } });
    await syncOk(dir, sandbox, 'vip');
    expect(sandbox.customerio.getPerson('v1')!.attributes).toEqual({ vip_tier: 'gold', vip_tier_updated_at: secs('2026-05-02T03:00:00Z') });
  });

  it('a newer row of a person already sent earlier in the same run is sent after it, so the newer value stays', async () => {
    // Rows stream out while the read goes on: with one-row chunks, v1's first row is on its way (or
    // acknowledged) before its newer row is read. The newer row waits until everything in flight has
    // settled, then goes out; the snapshot ends on it, so the next run sends nothing.
    const filler = Array.from({ length: 20 }, (_, i) => ({ customer_id: `f${i}`, tier: 'none', tier_at: '2026-05-01T00:00:00Z' }));
    dir = await makeProject({
      sources: [vipSource()],
      data: {
        'vip.ndjson': ndjson([
          { customer_id: 'v1', tier: 'gold', tier_at: '2026-05-01T00:00:00Z' },
          ...filler,
          { customer_id: 'v1', tier: 'platinum', tier_at: '2026-05-03T00:00:00Z' },
          { customer_id: 'v1', tier: 'silver', tier_at: '2026-05-02T00:00:00Z' },
        ]),
      },
    });
    const r = await syncOk(dir, sandbox, 'vip', { sendChunk: 1, maxInFlight: 3 });
    expect(r.counts).toMatchObject({ read: 23, new: 21, duplicates: 2, sent: 22, acknowledged: 22, unsent: 0 });
    expect(attributesOf(sandbox, 'v1')).toMatchObject({ vip_tier: 'platinum', vip_tier_updated_at: secs('2026-05-03T00:00:00Z') });
    const again = await syncOk(dir, sandbox, 'vip');
    expect(again.counts).toMatchObject({ unchanged: 21, sent: 0 });
  });
});
