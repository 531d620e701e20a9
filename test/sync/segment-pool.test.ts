/**
 * SegmentPool (reconciler/sync/parallel/pool.ts): a segment's bytes are moved to the worker, not copied,
 * and come back with its answer, so the engine's thread can still prepare a row again from them.
 */
import { describe, expect, it } from 'vitest';
import { SegmentPool } from '../../reconciler/sync/parallel/pool.ts';
import { createSegmentWorker, MATCHED, packedEntry } from '../../reconciler/sync/parallel/segment.ts';
import { toTrackEntry } from '../../reconciler/sync/entries.ts';
import type { SegmentContext } from '../../reconciler/sync/parallel/segment.ts';

const header = ['id', 'orders'];
const context: SegmentContext = {
  source: {
    kind: 'Source',
    name: 'people',
    system: 'shop',
    connector: { type: 'csv', path: 'p.csv' },
    schedule: '0 3 * * *',
    records: 'person',
    identity: { column: 'id', as: 'id' },
    null_policy: 'protect',
    fields: { orders: 'orders' },
  },
  fields: [['orders', { type: 'number', owner: 'shop' }]],
  normalization: undefined,
  primary: 'id',
};

describe('SegmentPool', () => {
  it('moves a segment that is a buffer of its own to the worker and gets it back with the answer', async () => {
    const pool = new SegmentPool(1, context);
    try {
      const text = 'c1,3\nc2,4\n';
      const bytes = new Uint8Array(Buffer.from(text));
      const result = await pool.run({ seq: 0, csv: { path: 'p.csv', delimiter: ',', maxRecord: 1 << 20, header }, segment: { bytes, line: 2, mayHoldInvalid: false }, payloads: false, prints: 'learn' });
      expect(bytes.byteLength).toBe(0);
      expect(Buffer.from(result.bytes!).toString()).toBe(text);
      expect(result.count).toBe(2);
      expect([...result.kinds]).not.toContain(MATCHED);
      expect(result.keys).toEqual(['c1', 'c2']);
      expect([...result.refs]).toEqual([0, 1]);
      // A view of a larger buffer is copied: moving it would take the rest of that buffer away.
      const big = new Uint8Array(Buffer.from(`${text}tail`));
      const part = big.subarray(0, text.length);
      const copied = await pool.run({ seq: 1, csv: { path: 'p.csv', delimiter: ',', maxRecord: 1 << 20, header }, segment: { bytes: part, line: 2, mayHoldInvalid: false }, payloads: false, prints: 'learn' });
      expect(big.byteLength).toBe(text.length + 4);
      expect(copied.bytes).toBeUndefined();
      expect(copied.count).toBe(2);
    } finally {
      await pool.close();
    }
  }, 30_000);

  it('hands back, on a run, each row\'s payload text and its Track entry serialised with the run\'s options', () => {
    const entryOptions = { identifier: 'id' as const, stamp: { field: 'last_synced', at: 1_767_225_600 } };
    const work = createSegmentWorker({ ...context, entryOptions });
    const text = 'c1,3\nc2,\nc3,x\n';
    const r = work({ seq: 0, csv: { path: 'p.csv', delimiter: ',', maxRecord: 1 << 20, header }, segment: { text, line: 2, mayHoldInvalid: false }, payloads: true });
    expect(r.keys).toEqual(['c1', 'c2']);
    const entry = (k: number) => packedEntry(r.entries!, k);
    const wire = (k: number) => Buffer.from(entry(k).text as Uint8Array).toString('utf8');
    for (let k = 0; k < r.keys.length; k++) {
      const payload = JSON.parse(r.payloads![k]!);
      expect(wire(k)).toBe(JSON.stringify(toTrackEntry(r.keys[k]!, payload, entryOptions)));
      expect(entry(k).action).toBe('identify');
    }
    expect(JSON.parse(wire(0))).toMatchObject({ identifiers: { id: 'c1' }, attributes: { orders: 3, last_synced: 1_767_225_600 } });
    // The packed bytes are all of their buffer, so the worker can move them.
    expect(r.entries!.bytes.byteLength).toBe(r.entries!.bytes.buffer.byteLength);
    // Without entry options (a plan), payload texts only.
    const plan = createSegmentWorker(context)({ seq: 1, csv: { path: 'p.csv', delimiter: ',', maxRecord: 1 << 20, header }, segment: { text, line: 2, mayHoldInvalid: false }, payloads: true });
    expect(plan.payloads).toEqual(r.payloads);
    expect(plan.entries).toBeUndefined();
  });
});
