/**
 * The parts of the diff in the warehouse that need no database: how skipped rows are counted with the
 * rows the diff saw, how a row's null-policy counts are kept, and what the report says about the path.
 * The database half is in warehouse-diff.int.test.ts (the oracle) and warehouse-diff-paths.int.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { describeDiff, effectsOf, WarehouseRunDiff } from '../../reconciler/sync/warehouse-diff.ts';

const H1 = 'a'.repeat(32);
const H2 = 'b'.repeat(32);

describe('WarehouseRunDiff', () => {
  it('counts each skipped key once as unchanged and its further skipped rows as duplicates, on top of what it was offered', () => {
    const d = new WarehouseRunDiff();
    d.load('k1', H1, 10);
    expect(d.offer('k1', H2, 20).verdict).toBe('changed');
    // 1,000 rows skipped in the database, over 990 keys (ten keys read twice).
    d.skippedRows = 1000;
    d.skippedKeys = 990;
    expect(d.counts()).toMatchObject({ changed: 1, unchanged: 990, duplicates: 10 });
  });

  it('leaves out of the bulk counts the skipped rows of keys it was offered at their positions', () => {
    const d = new WarehouseRunDiff();
    d.load('k1', H1, 10);
    d.skippedRows = 5;
    d.skippedKeys = 4;
    // k1 had one skipped row and one row that crossed the wire: both offered, in position order.
    d.replayedRows = 1;
    d.replayedKeys = 1;
    expect(d.offer('k1', H1, 10).verdict).toBe('unchanged');
    const later = d.offer('k1', H2, 5);
    expect(later.verdict).toBe('duplicate');
    // 3 keys left in bulk (4 rows): 3 unchanged, 1 duplicate; plus k1: unchanged, 1 duplicate.
    expect(d.counts()).toMatchObject({ unchanged: 4, duplicates: 2, changed: 0, outOfOrder: 0 });
  });
});

describe('effectsOf', () => {
  it('is null for a row without null-policy counts, else the three field lists', () => {
    expect(effectsOf({ nullBlocked: [], heldBack: [], erased: [] })).toBeNull();
    expect(effectsOf({ nullBlocked: ['vip_tier'], heldBack: ['vip_tier_updated_at'], erased: [] })).toBe('[["vip_tier"],["vip_tier_updated_at"],[]]');
  });
});

describe('describeDiff', () => {
  it('says nothing for a source that is not read from Postgres', () => {
    expect(describeDiff({ path: 'client' }, { read: 10 })).toEqual({});
    expect(describeDiff(undefined, { read: 10 })).toEqual({});
  });

  it('reports every row across the wire and why when the diff stayed in tidemark, with a note only when asked', () => {
    expect(describeDiff({ path: 'client', reason: 'the state is not in PostgreSQL', noted: false }, { read: 7 })).toEqual({
      report: { in: 'client', rows_read: 7, rows_transferred: 7, reason: 'the state is not in PostgreSQL' },
    });
    expect(describeDiff({ path: 'client', reason: 'TIDEMARK_WAREHOUSE_DIFF=off', noted: true }, { read: 7 }).note).toBe(
      'the diff ran in tidemark, not in the warehouse (all 7 rows crossed the wire): TIDEMARK_WAREHOUSE_DIFF=off',
    );
  });
});
