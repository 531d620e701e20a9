/**
 * Which path a Postgres source's diff takes, and what the report says about it (issue 15 point 5): in the
 * warehouse when the state is in the source's database, through the CLI as its own process; and each
 * fallback with its reason: the state embedded, the state in another database, turned off, nothing sent
 * yet. A changed spec retires every fingerprint: the next run reads every row again, as the engine would.
 * The server is TIDEMARK_TEST_DATABASE_URL or postgres://postgres@127.0.0.1:5432/test; without one the
 * file skips with a banner (fails in CI).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../reconciler/core/clock.ts';
import { createSandbox, type RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { postgresSkipReason, TEST_DATABASE_URL } from '../support/postgres.ts';
import { makeProject, open, REPO, removeProject, sandboxEnv, sync, syncOk } from '../support/sync-fixture.ts';

const unreachable = await postgresSkipReason('diff in the warehouse path tests (test/sync/warehouse-diff-paths.int.test.ts)');
const TAG = `tm_whdp_${randomBytes(4).toString('hex')}`;
const OTHER_DB = `${TAG}_db`;
const run = promisify(execFile);

let db: pg.Client;
let sandbox: RunningSandbox;
const dirs: string[] = [];

beforeAll(async () => {
  sandbox = await createSandbox({ port: 0, retryAfterSeconds: 0, seed: 43 });
  if (unreachable !== undefined) return;
  db = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await db.connect();
  await db.query(`CREATE SCHEMA ${TAG}`);
  await db.query(`CREATE TABLE ${TAG}.vip (customer_id bigint PRIMARY KEY, tier text, computed_at timestamp)`);
  await db.query(
    `INSERT INTO ${TAG}.vip SELECT g, (ARRAY['none','silver','gold','platinum'])[1 + g % 4], timestamp '2026-04-01 08:00' + g * interval '1 hour' FROM generate_series(1, 50) g`,
  );
});
afterAll(async () => {
  for (const d of dirs) await removeProject(d);
  await sandbox.close();
  if (unreachable !== undefined) return;
  await db.query(`DROP SCHEMA IF EXISTS ${TAG} CASCADE`);
  for (const s of ['a', 'b', 'c', 'd', 'e']) await db.query(`DROP SCHEMA IF EXISTS ${TAG}_${s} CASCADE`);
  await db.query(`DROP DATABASE IF EXISTS ${OTHER_DB}`);
  await db.end();
});

const source = (timezone = 'UTC', where = '', table = 'vip') => `kind: Source
name: vip
system: warehouse
connector:
  type: postgres
  url_env: WAREHOUSE_URL
  query: |
    select customer_id, tier, computed_at from ${TAG}.${table} ${where} order by customer_id
schedule: "0 * * * *"
records: person
identity: { column: customer_id, as: id }
ordering: computed_at
timezone: ${timezone}
fields:
  vip_tier: tier
  vip_tier_updated_at: computed_at
freshness: { max_age: 2h }
latency_needed: hourly
`;

async function project(schema: string | undefined, database = TEST_DATABASE_URL): Promise<{ dir: string; env: NodeJS.ProcessEnv }> {
  const dir = await makeProject({ state: schema ? 'postgres' : 'embedded', sources: [source()] });
  dirs.push(dir);
  if (!schema) return { dir, env: { WAREHOUSE_URL: TEST_DATABASE_URL } };
  const url = new URL(database);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return { dir, env: { TIDEMARK_DATABASE_URL: url.toString(), WAREHOUSE_URL: TEST_DATABASE_URL } };
}

const clock = fixedClock('2026-05-01T12:00:00Z');

describe.skipIf(unreachable !== undefined)('where the diff of a Postgres source runs', () => {
  it('runs in the warehouse through the CLI: the first run reads every row, the next only the changed one, and the text and JSON reports say so', async () => {
    await db.query(`CREATE SCHEMA ${TAG}_a`);
    const { dir, env } = await project(`${TAG}_a`);
    const tidemark = (args: string[]) =>
      run(process.execPath, [path.join(REPO, 'bin/tidemark.js'), ...args], { cwd: dir, env: { ...process.env, ...sandboxEnv(sandbox), ...env, NO_COLOR: '1' } });

    const plan0 = JSON.parse((await tidemark(['sync', 'plan', 'vip', '--format', 'json'])).stdout) as { diff: unknown; counts: { new: number } };
    expect(plan0.counts.new).toBe(50);
    expect(plan0.diff).toEqual({ in: 'client', rows_read: 50, rows_transferred: 50, reason: 'nothing was sent for this source yet' });

    const first = await tidemark(['sync', 'run', 'vip']);
    expect(first.stdout).toContain('note: the diff ran in the warehouse: 50 of 50 rows crossed the wire');

    await db.query(`UPDATE ${TAG}.vip SET tier = 'platinum', computed_at = computed_at + interval '1 day' WHERE customer_id = 7`);
    const plan1 = JSON.parse((await tidemark(['sync', 'plan', 'vip', '--format', 'json'])).stdout) as { diff: unknown; counts: Record<string, number> };
    expect(plan1.diff).toEqual({ in: 'warehouse', rows_read: 50, rows_transferred: 1 });
    expect(plan1.counts).toMatchObject({ read: 50, changed: 1, unchanged: 49 });

    const second = await tidemark(['sync', 'run', 'vip']);
    expect(second.stdout).toMatch(/new 0, changed 1, unchanged 49/);
    expect(second.stdout).toContain('note: the diff ran in the warehouse: 1 of 50 rows crossed the wire');
    const third = JSON.parse((await tidemark(['sync', 'run', 'vip', '--format', 'json'])).stdout) as { runs: Array<{ diff: unknown; counts: Record<string, number> }> };
    expect(third.runs[0]!.diff).toEqual({ in: 'warehouse', rows_read: 50, rows_transferred: 0 });
    expect(third.runs[0]!.counts).toMatchObject({ read: 50, unchanged: 50, sent: 0 });
  });

  it('reads every row again after the spec changed (another timezone changes what every naive timestamp means), then only what changes', async () => {
    await db.query(`CREATE SCHEMA ${TAG}_b`);
    const { dir, env } = await project(`${TAG}_b`);
    await syncOk(dir, sandbox, 'vip', { env, clock });
    expect((await syncOk(dir, sandbox, 'vip', { env, clock })).diff).toEqual({ in: 'warehouse', rows_read: 50, rows_transferred: 0 });
    await writeFile(path.join(dir, 'specs', 'sources', 'sources.yaml'), source('America/New_York'));
    const moved = await syncOk(dir, sandbox, 'vip', { env, clock });
    expect(moved.diff).toEqual({ in: 'warehouse', rows_read: 50, rows_transferred: 50 });
    expect(moved.counts).toMatchObject({ changed: 50, sent: 50 });
    expect((await syncOk(dir, sandbox, 'vip', { env, clock })).diff).toEqual({ in: 'warehouse', rows_read: 50, rows_transferred: 0 });
  });

  it('binds :last_sync_at in the warehouse as the connector does: the next run reads only the rows computed since', async () => {
    await db.query(`CREATE SCHEMA ${TAG}_e`);
    const { dir, env } = await project(`${TAG}_e`);
    // A table of its own: the first test moves a row of the shared one.
    await db.query(
      `CREATE TABLE ${TAG}.vip_since AS SELECT g AS customer_id, 'gold' AS tier, timestamp '2026-04-01 08:00' + g * interval '1 hour' AS computed_at FROM generate_series(1, 50) g`,
    );
    await writeFile(path.join(dir, 'specs', 'sources', 'sources.yaml'), source('UTC', 'where computed_at > :last_sync_at', 'vip_since'));
    const first = await syncOk(dir, sandbox, 'vip', { env, clock: fixedClock('2026-04-02T00:00:00Z') });
    expect(first.diff).toEqual({ in: 'warehouse', rows_read: 50, rows_transferred: 50 });
    // Row n was computed at 08:00 + n hours on April 1st: rows 1..16 before the first run started, 17..50 after.
    const second = await syncOk(dir, sandbox, 'vip', { env, clock: fixedClock('2026-04-04T00:00:00Z') });
    expect(second.diff).toEqual({ in: 'warehouse', rows_read: 34, rows_transferred: 0 });
    expect(second.counts).toMatchObject({ read: 34, unchanged: 34 });
  });

  it('stays in tidemark, saying why, when the state is embedded, in another database, or the diff in the warehouse is turned off', async () => {
    const embedded = await project(undefined);
    const e = await syncOk(embedded.dir, sandbox, 'vip', { env: embedded.env, clock });
    expect(e.diff).toEqual({ in: 'client', rows_read: 50, rows_transferred: 50, reason: 'the state is not in PostgreSQL' });
    expect(e.notes.filter((n) => n.startsWith('the diff'))).toEqual([]);

    await db.query(`CREATE DATABASE ${OTHER_DB}`);
    const otherUrl = new URL(TEST_DATABASE_URL);
    otherUrl.pathname = `/${OTHER_DB}`;
    const elsewhere = await project(`${TAG}_c`, otherUrl.toString());
    const other = new pg.Client({ connectionString: otherUrl.toString() });
    await other.connect();
    await other.query(`CREATE SCHEMA ${TAG}_c`);
    await other.end();
    await syncOk(elsewhere.dir, sandbox, 'vip', { env: elsewhere.env, clock });
    const o = await syncOk(elsewhere.dir, sandbox, 'vip', { env: elsewhere.env, clock, mode: 'plan' });
    const why = 'the source and the state are in different databases, and a query cannot join across databases';
    expect(o.diff).toEqual({ in: 'client', rows_read: 50, rows_transferred: 50, reason: why });
    expect(o.notes).toContain(`the diff ran in tidemark, not in the warehouse (all 50 rows crossed the wire): ${why}`);
    expect(o.counts).toMatchObject({ unchanged: 50 });

    await db.query(`CREATE SCHEMA ${TAG}_d`);
    const off = await project(`${TAG}_d`);
    const r = await sync(off.dir, sandbox, 'vip', { env: { ...off.env, TIDEMARK_WAREHOUSE_DIFF: 'off' }, clock });
    expect(r.diff).toEqual({ in: 'client', rows_read: 50, rows_transferred: 50, reason: 'TIDEMARK_WAREHOUSE_DIFF=off' });

    // A plan beside a sync that has acknowledged rows it has not merged yet (running, or killed): the
    // engine's index shows those rows, the snapshot in the warehouse would not.
    await syncOk(off.dir, sandbox, 'vip', { env: off.env, clock });
    const ws = await open(off.dir, sandbox, { env: off.env, clock });
    try {
      const acks = await ws.conn.store.openAckSession('vip');
      await acks.append([{ key: '3', hash: 'f'.repeat(32), ordering: 0, payload: '{}' }]);
      const beside = await syncOk(off.dir, sandbox, 'vip', { env: off.env, clock, mode: 'plan' });
      expect(beside.diff).toMatchObject({ in: 'client', reason: 'another sync of this source is running (or died) with acknowledgements not merged yet' });
      expect(beside.counts).toMatchObject({ changed: 1, unchanged: 49 });
    } finally {
      await ws.conn.close();
    }
  });
});
