/**
 * A state the version before issue 9 wrote: its payloads (the snapshot's mirror, pending entries) use
 * one-letter keys (`r`, `a`, `k`, …). The engine reads them as they are: an entry that version left
 * waiting still reaches Customer.io with its attributes, and a blocked blank still keeps the value the old
 * mirror holds, so the row is unchanged and nothing is re-sent.
 */
import { describe, expect, it } from 'vitest';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import type { SnapshotAckSession } from '../../reconciler/state/index.ts';
import { attributesOf, makeProject, ndjson, open, personSource, syncOk, useSandbox, writeData } from '../support/sync-fixture.ts';

let sandbox: RunningSandbox;

useSandbox(29, (s) => (sandbox = s));

/** Writes into the source's state through an ack session, as a run of the previous version would have. */
async function writeState(dir: string, write: (acks: SnapshotAckSession) => Promise<unknown>): Promise<void> {
  const ws = await open(dir, sandbox);
  try {
    const acks = await ws.conn.store.openAckSession('customers');
    await write(acks);
    await acks.close();
  } finally {
    await ws.conn.close();
  }
}

describe('a state written before the payload keys got names', () => {
  it('sends an entry that version left waiting, with the attributes it recorded', async () => {
    const dir = await makeProject({ sources: [personSource({ fields: { order_count: 'orders' } })], data: { 'customers.ndjson': ndjson([{ customer_id: 'other', orders: 1 }]) } });
    await writeState(dir, (acks) =>
      acks.record({
        acknowledged: [],
        pending: [{ key: 'waiting', hash: '0'.repeat(32), ordering: null, payload: '{"r":"person","a":{"order_count":7}}', location: 'data/customers.ndjson:1', reason: 'retryable' }],
      }),
    );
    const r = await syncOk(dir, sandbox, 'customers');
    expect(r.counts).toMatchObject({ retried: 1, pending: 0 });
    expect(attributesOf(sandbox, 'waiting')).toMatchObject({ order_count: 7 });
    expect(attributesOf(sandbox, 'other')).toMatchObject({ order_count: 1 });
  });

  it('keeps the value an old mirror holds for a blocked blank: the row is unchanged and not sent again', async () => {
    const source = personSource({ system: 'warehouse', fields: { vip_tier: 'tier' } });
    const dir = await makeProject({ sources: [source], data: { 'customers.ndjson': ndjson([{ customer_id: 'c1', tier: 'gold' }]) } });
    await syncOk(dir, sandbox, 'customers');
    // The same acknowledgement again, its mirror as the previous version wrote it.
    const ws = await open(dir, sandbox);
    const entry = await ws.conn.store.getSnapshotEntry('customers', 'c1');
    await ws.conn.close();
    await writeState(dir, (acks) => acks.append([{ key: 'c1', hash: entry!.hash, ordering: entry!.ordering, payload: '{"r":"person","a":{"vip_tier":"gold"}}' }]));

    await writeData(dir, 'customers.ndjson', ndjson([{ customer_id: 'c1', tier: null }]));
    const r = await syncOk(dir, sandbox, 'customers');
    expect(r.counts).toMatchObject({ read: 1, unchanged: 1, changed: 0, sent: 0, null_blocked: { vip_tier: 1 } });
    expect(attributesOf(sandbox, 'c1')).toMatchObject({ vip_tier: 'gold' });
  });
});
