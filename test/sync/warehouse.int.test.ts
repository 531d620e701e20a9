/**
 * A warehouse-style source in a real PostgreSQL server: naive `timestamp` columns in a non-UTC zone,
 * `:last_sync_at` incremental reads across two runs, an updated row re-sent, an unchanged row not.
 *
 * The server is `TIDEMARK_TEST_DATABASE_URL` or postgres://postgres@127.0.0.1:5432/test. This file works
 * in its own schema, dropped afterwards. When no server answers, the tests are skipped with a loud warning.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fixedClock } from '../../reconciler/core/clock.ts';
import { createSandbox, type RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { attributesOf, batchRequests, makeProject, removeProject, resetSandbox, syncOk } from '../support/sync-fixture.ts';
import { postgresSkipReason, TEST_DATABASE_URL } from '../support/postgres.ts';

const DATABASE_URL = TEST_DATABASE_URL;
const SCHEMA = `tm_sync_warehouse_${randomBytes(4).toString('hex')}`;


const unreachable = await postgresSkipReason('warehouse sync tests');

let sandbox: RunningSandbox;
let db: pg.Client;
let dir: string | undefined;

beforeAll(async () => {
  sandbox = await createSandbox({ port: 0, retryAfterSeconds: 0, seed: 18 });
  if (unreachable !== undefined) return;
  db = new pg.Client({ connectionString: DATABASE_URL });
  await db.connect();
  await db.query(`CREATE SCHEMA ${SCHEMA}`);
});
afterAll(async () => {
  await sandbox.close();
  if (unreachable !== undefined) return;
  await db.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
  await db.end();
});
beforeEach(async () => {
  resetSandbox(sandbox);
  if (unreachable !== undefined) return;
  await db.query(`DROP TABLE IF EXISTS ${SCHEMA}.vip_tiers`);
  // Naive timestamps, written by a job that runs on New York time.
  await db.query(`CREATE TABLE ${SCHEMA}.vip_tiers (customer_id bigint PRIMARY KEY, vip_tier text, tier_computed_at timestamp, updated_at timestamp NOT NULL)`);
});
afterEach(async () => {
  if (dir) await removeProject(dir);
  dir = undefined;
});

const source = () => `kind: Source
name: warehouse_vip
system: warehouse
connector:
  type: postgres
  url_env: WAREHOUSE_URL
  query: |
    select customer_id, vip_tier, tier_computed_at
    from ${SCHEMA}.vip_tiers
    where updated_at > :last_sync_at
    order by customer_id
schedule: "0 * * * *"
records: person
identity: { column: customer_id, as: id }
ordering: tier_computed_at
timezone: America/New_York
fields:
  vip_tier: vip_tier
  vip_tier_updated_at: tier_computed_at
freshness: { max_age: 2h }
latency_needed: hourly
# The tests read a few rows, some of them bad on purpose.
max_rejected: 50%
`;

const secs = (iso: string) => Date.parse(iso) / 1000;
const env = { WAREHOUSE_URL: DATABASE_URL };

describe.skipIf(unreachable !== undefined)('warehouse source (PostgreSQL)', () => {
  it('reads naive local timestamps, then only rows updated since the last run; re-sends the updated row, not the unchanged one', async () => {
    dir = await makeProject({ sources: [source()] });
    await db.query(
      `INSERT INTO ${SCHEMA}.vip_tiers VALUES
        (1001, 'gold',   '2026-03-08 02:30', '2026-05-01 07:00'),
        (1002, 'silver', '2026-11-01 01:30', '2026-05-01 07:00'),
        (1003, 'none',   '2026-04-30 23:00', '2026-05-01 07:30')`,
    );
    // 12:00Z is 08:00 in New York: every row above was written before the run started.
    const first = await syncOk(dir, sandbox, 'warehouse_vip', { env, clock: fixedClock('2026-05-01T12:00:00Z') });
    expect(first.last_sync_at).toBeNull();
    expect(first.counts).toMatchObject({ read: 3, new: 3, sent: 3, acknowledged: 3, rejected: 0 });
    // The spring-forward gap and the fall-back overlap land on their documented UTC instants.
    expect(attributesOf(sandbox, '1001')).toEqual({ vip_tier: 'gold', vip_tier_updated_at: secs('2026-03-08T07:30:00Z') });
    expect(attributesOf(sandbox, '1002')).toEqual({ vip_tier: 'silver', vip_tier_updated_at: secs('2026-11-01T05:30:00Z') });
    expect(attributesOf(sandbox, '1003')).toEqual({ vip_tier: 'none', vip_tier_updated_at: secs('2026-05-01T03:00:00Z') });

    // 09:30 in New York (13:30Z) is after the first run started: 1001 is recomputed to a new tier, 1002 is
    // touched without a change. 07:45 (11:45Z) was before the first run: 1003 is not read again.
    await db.query(`UPDATE ${SCHEMA}.vip_tiers SET vip_tier = 'platinum', tier_computed_at = '2026-05-01 09:00', updated_at = '2026-05-01 09:30' WHERE customer_id = 1001`);
    await db.query(`UPDATE ${SCHEMA}.vip_tiers SET updated_at = '2026-05-01 09:30' WHERE customer_id = 1002`);
    await db.query(`UPDATE ${SCHEMA}.vip_tiers SET updated_at = '2026-05-01 07:45' WHERE customer_id = 1003`);
    sandbox.resetRequestCounts();
    const second = await syncOk(dir, sandbox, 'warehouse_vip', { env, clock: fixedClock('2026-05-01T14:00:00Z') });
    expect(second.last_sync_at).toBe('2026-05-01T12:00:00.000Z');
    expect(second.counts).toMatchObject({ read: 2, new: 0, changed: 1, unchanged: 1, sent: 1, acknowledged: 1 });
    expect(batchRequests(sandbox)).toBe(1);
    expect(attributesOf(sandbox, '1001')).toEqual({ vip_tier: 'platinum', vip_tier_updated_at: secs('2026-05-01T13:00:00Z') });
    expect(attributesOf(sandbox, '1002')).toEqual({ vip_tier: 'silver', vip_tier_updated_at: secs('2026-11-01T05:30:00Z') });

    // Nothing written since the second run: nothing read.
    const third = await syncOk(dir, sandbox, 'warehouse_vip', { env, clock: fixedClock('2026-05-01T15:00:00Z') });
    expect(third.last_sync_at).toBe('2026-05-01T14:00:00.000Z');
    expect(third.counts).toMatchObject({ read: 0, sent: 0 });
  });

  it('rejects a warehouse row with a bad value and keeps the others, with int8 ids as exact strings', async () => {
    dir = await makeProject({ sources: [source()] });
    await db.query(
      `INSERT INTO ${SCHEMA}.vip_tiers VALUES
        (9007199254740993, 'gold', '2026-05-01 08:00', '2026-05-01 08:00'),
        (1005, 'diamond', '2026-05-01 08:00', '2026-05-01 08:00'),
        (1006, 'silver', NULL, '2026-05-01 08:00')`,
    );
    const r = await syncOk(dir, sandbox, 'warehouse_vip', { env, clock: fixedClock('2026-05-01T12:00:00Z') });
    expect(r.counts).toMatchObject({ read: 3, rejected: 1, rejected_by_code: { type_mismatch: 1 }, sent: 2 });
    // Beyond 2^53: a JS number would have rounded it to ...992, someone else's id.
    expect(attributesOf(sandbox, '9007199254740993')).toEqual({ vip_tier: 'gold', vip_tier_updated_at: secs('2026-05-01T12:00:00Z') });
    // A blank companion is never sent; the tier goes alone.
    expect(attributesOf(sandbox, '1006')).toEqual({ vip_tier: 'silver' });
  });
});
