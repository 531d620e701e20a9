/**
 * The null policy against the emulator: a blank never erases a Customer.io attribute unless the field is
 * declared clearable, the sync plan counts per field what would be erased and what was blocked, and a
 * blocked blank is not a change (nothing is re-sent for it, and the mirror of what was sent keeps the value).
 */
import { describe, expect, it } from 'vitest';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { readPayload } from '../../reconciler/sync/prepare.ts';
import { attributesOf, batchRequests, cli, makeProject, ndjson, open, personSource, syncOk, useSandbox, writeData } from '../support/sync-fixture.ts';

let sandbox: RunningSandbox;
let dir: string | undefined;

useSandbox(12, (s) => (sandbox = s));

const T1 = '2026-05-01T03:00:00Z';
const T2 = '2026-05-02T03:00:00Z';
const T3 = '2026-05-03T03:00:00Z';
const secs = (iso: string) => Date.parse(iso) / 1000;

const vipSource = () => personSource({ name: 'vip', system: 'warehouse', fields: { vip_tier: 'tier', vip_tier_updated_at: 'tier_at' }, ordering: 'tier_at' });
const storeSource = () => personSource({ fields: { preferred_store: 'store', order_count: 'orders' }, ordering: 'updated_at' });

/** A Track v1 identify outside tidemark: what a person editing the profile in Customer.io does. */
async function identifyByHand(sandbox: RunningSandbox, id: string, attributes: Record<string, unknown>): Promise<void> {
  const auth = Buffer.from(`${sandbox.env.CUSTOMERIO_SITE_ID}:${sandbox.env.CUSTOMERIO_TRACK_API_KEY}`).toString('base64');
  const res = await fetch(`${sandbox.urls.customerioTrack}/api/v1/customers/${id}`, {
    method: 'PUT',
    headers: { authorization: `Basic ${auth}`, 'content-type': 'application/json' },
    body: JSON.stringify(attributes),
  });
  expect(res.status).toBe(200);
}

async function mirrorOf(dir: string, source: string, key: string): Promise<unknown> {
  // The state the CLI runs above used: opened the way they opened it.
  const ws = await open(dir, sandbox, { live: true });
  try {
    const entry = await ws.conn.store.getSnapshotEntry(source, key);
    return entry?.payload ? readPayload(entry.payload).attributes : undefined;
  } finally {
    await ws.conn.close();
  }
}

describe('null policy', () => {
  it('keeps a VIP tier the nightly export blanks, together with its updated_at, and does not count the blank as a change', async () => {
    dir = await makeProject({
      sources: [vipSource()],
      data: { 'vip.ndjson': ndjson([{ customer_id: 'v1', tier: 'gold', tier_at: T1 }, { customer_id: 'v2', tier: 'silver', tier_at: T1 }]) },
    });
    // Through the CLI from the start: the plans and runs below share its state.
    expect((await cli(dir, sandbox, ['sync', 'run', 'vip'])).code).toBe(0);
    expect(attributesOf(sandbox, 'v1')).toMatchObject({ vip_tier: 'gold', vip_tier_updated_at: secs(T1) });

    // The export breaks: every tier is blank, stamped with tonight's computation time.
    await writeData(dir, 'vip.ndjson', ndjson([{ customer_id: 'v1', tier: null, tier_at: T2 }, { customer_id: 'v2', tier: '', tier_at: T2 }]));
    const plan = await cli(dir, sandbox, ['sync', 'plan', 'vip', '--format', 'json']);
    expect(plan.code, plan.stderr).toBe(0);
    const planned = JSON.parse(plan.stdout) as { status: string; counts: Record<string, unknown> };
    expect(planned.status).toBe('planned');
    // Both blanks were blocked; the companion moved and is held back with its state, so nothing changes.
    // Each field is counted for what happened to it: the companion was not a blank.
    expect(planned.counts).toMatchObject({ read: 2, changed: 0, unchanged: 2, null_blocked: { vip_tier: 2 }, held_back: { vip_tier_updated_at: 2 }, erased: {} });
    const text = await cli(dir, sandbox, ['sync', 'plan', 'vip']);
    expect(text.stdout).toContain('  blanks kept from erasing values: vip_tier 2\n  updated_at companions held back with their blank state: vip_tier_updated_at 2\n');

    sandbox.resetRequestCounts();
    const runJson = await cli(dir, sandbox, ['sync', 'run', 'vip', '--format', 'json']);
    expect(runJson.code, runJson.stderr).toBe(0);
    const run = (JSON.parse(runJson.stdout) as { runs: Array<{ counts: Record<string, unknown> }> }).runs[0]!;
    expect(run.counts).toEqual(expect.objectContaining({ changed: 0, unchanged: 2, sent: 0, null_blocked: { vip_tier: 2 }, held_back: { vip_tier_updated_at: 2 } }));
    const runText = await cli(dir, sandbox, ['sync', 'run', 'vip']);
    expect(runText.stdout).toContain('  updated_at companions held back with their blank state: vip_tier_updated_at 2\n');
    expect(batchRequests(sandbox)).toBe(0);
    expect(attributesOf(sandbox, 'v1')).toMatchObject({ vip_tier: 'gold', vip_tier_updated_at: secs(T1) });
    expect(attributesOf(sandbox, 'v2')).toMatchObject({ vip_tier: 'silver', vip_tier_updated_at: secs(T1) });
    // The mirror of what was sent still says what Customer.io holds.
    expect(await mirrorOf(dir, 'vip', 'v1')).toEqual({ vip_tier: 'gold', vip_tier_updated_at: secs(T1) });

    // The export recovers with a new tier: sent with its new updated_at.
    await writeData(dir, 'vip.ndjson', ndjson([{ customer_id: 'v1', tier: 'platinum', tier_at: T3 }, { customer_id: 'v2', tier: 'silver', tier_at: T1 }]));
    const fixedJson = await cli(dir, sandbox, ['sync', 'run', 'vip', '--format', 'json']);
    const fixed = (JSON.parse(fixedJson.stdout) as { runs: Array<{ counts: Record<string, unknown> }> }).runs[0]!;
    expect(fixed.counts).toMatchObject({ changed: 1, unchanged: 1, sent: 1, null_blocked: {} });
    expect(attributesOf(sandbox, 'v1')).toMatchObject({ vip_tier: 'platinum', vip_tier_updated_at: secs(T3) });
  });

  it('sends the other changes of a row whose blank was blocked, without re-sending the blocked field', async () => {
    dir = await makeProject({
      sources: [storeSource()],
      data: { 'customers.ndjson': ndjson([{ customer_id: 'c1', store: 'Berlin', orders: 2, updated_at: T1 }]) },
    });
    await syncOk(dir, sandbox, 'customers');
    // Someone corrects the order count in Customer.io by hand.
    await identifyByHand(sandbox, 'c1', { order_count: 3 });
    expect(attributesOf(sandbox, 'c1')).toMatchObject({ order_count: 3 });
    // The next export moves the store and has a blank order count.
    await writeData(dir, 'customers.ndjson', ndjson([{ customer_id: 'c1', store: 'Paris', orders: '', updated_at: T2 }]));
    const r = await syncOk(dir, sandbox, 'customers');
    expect(r.counts).toMatchObject({ changed: 1, sent: 1, null_blocked: { order_count: 1 } });
    // The store moved; the blank neither erased the count nor put back the value tidemark sent earlier.
    expect(attributesOf(sandbox, 'c1')).toMatchObject({ preferred_store: 'Paris', order_count: 3 });
  });

  it('erases a clearable field, and counts the erase only when the value was still there', async () => {
    dir = await makeProject({
      sources: [storeSource()],
      data: {
        'customers.ndjson': ndjson([
          { customer_id: 'c1', store: 'Berlin', orders: 2, updated_at: T1 },
          { customer_id: 'c2', store: 'Lyon', orders: 5, updated_at: T1 },
        ]),
      },
    });
    await syncOk(dir, sandbox, 'customers');
    expect(attributesOf(sandbox, 'c1')).toMatchObject({ preferred_store: 'Berlin', order_count: 2 });

    // c1 unsets the store; c2 has a blank order count (not clearable) and an unchanged store.
    await writeData(
      dir,
      'customers.ndjson',
      ndjson([
        { customer_id: 'c1', store: '', orders: 2, updated_at: T2 },
        { customer_id: 'c2', store: 'Lyon', orders: null, updated_at: T2 },
      ]),
    );
    const plan = await syncOk(dir, sandbox, 'customers', { mode: 'plan' });
    expect(plan.counts).toMatchObject({ changed: 1, unchanged: 1, erased: { preferred_store: 1 }, null_blocked: { order_count: 1 }, changed_fields: { preferred_store: 1 } });
    const run = await syncOk(dir, sandbox, 'customers');
    expect(run.counts).toMatchObject({ changed: 1, unchanged: 1, sent: 1, erased: { preferred_store: 1 }, null_blocked: { order_count: 1 } });
    expect(attributesOf(sandbox, 'c1')).not.toHaveProperty('preferred_store');
    expect(attributesOf(sandbox, 'c1')).toMatchObject({ order_count: 2 });
    expect(attributesOf(sandbox, 'c2')).toMatchObject({ preferred_store: 'Lyon', order_count: 5 });

    // The same file again: the store is already erased, so nothing would be erased and nothing is sent.
    const again = await syncOk(dir, sandbox, 'customers');
    expect(again.counts).toMatchObject({ changed: 0, unchanged: 2, sent: 0, erased: {}, null_blocked: { order_count: 1 } });
  });
});
