/**
 * The Postgres connector against a real server: naive and zoned timestamps, exact numerics,
 * `:last_sync_at` filtering, a 50k-row cursor read, and connections released on early stop and on
 * failure. Runs in its own schema, dropped afterwards. Skipped (with a loud banner) only when no server
 * answers at TIDEMARK_TEST_DATABASE_URL or postgres://postgres@127.0.0.1:5432/test.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FieldDef, SourceSpec } from '../../reconciler/spec/schema/index.ts';
import { ConnectorError, createConnector, createPostgresConnector } from '../../reconciler/sync/connectors/index.ts';
import { normalize } from './normalizer-cache.ts';
import type { ConnectorContext, SourceRow } from '../../reconciler/sync/types.ts';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { postgresSkipReason, TEST_DATABASE_URL } from '../support/postgres.ts';
import { cli, makeProject, personSource, useSandbox } from '../support/sync-fixture.ts';

const DATABASE_URL = TEST_DATABASE_URL;
const SCHEMA = `tm_conn_${process.pid}_${randomBytes(3).toString('hex')}`;
const APP = `tidemark_conn_test_${randomBytes(4).toString('hex')}`;


const skipReason = await postgresSkipReason('test/sync/connectors-postgres.test.ts');

const env = { WAREHOUSE_URL: DATABASE_URL };
const ctx = (over: Partial<ConnectorContext> = {}): ConnectorContext => ({ lastSyncAt: null, cwd: '.', env, ...over });

async function collect(rows: AsyncIterable<SourceRow>): Promise<SourceRow[]> {
  const out: SourceRow[] = [];
  for await (const r of rows) out.push(r);
  return out;
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: DATABASE_URL });
  c.on('error', () => {});
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const statsQuery = `
  select customer_id, email, naive_at, instant_at, amount, order_count, updated_at
  from ${SCHEMA}.customer_order_stats
  where updated_at > :last_sync_at
  order by customer_id`;

describe.skipIf(skipReason !== undefined)('postgres connector (real server)', () => {
  let pool: pg.Pool;

  beforeAll(async () => {
    await admin(async (c) => {
      await c.query(`CREATE SCHEMA ${SCHEMA}`);
      // A warehouse-style table: naive local timestamps (the source runs on New York time) next to a
      // timestamptz, an int8 id beyond 2^53, and an exact numeric.
      await c.query(`
        CREATE TABLE ${SCHEMA}.customer_order_stats (
          customer_id bigint PRIMARY KEY,
          email text,
          naive_at timestamp without time zone,
          instant_at timestamp with time zone,
          amount numeric(18, 2),
          order_count integer,
          updated_at timestamp without time zone NOT NULL
        )`);
      await c.query(`
        INSERT INTO ${SCHEMA}.customer_order_stats VALUES
          (9007199254740993, ' Jo@Example.COM ', '2026-03-08 02:30:00', '2026-03-08 07:30:00+00', 12.50, 3, '2026-06-01 09:00:00'),
          (2, 'b@example.com', '2026-11-01 01:30:00', NULL, NULL, 0, '2026-06-01 11:00:00'),
          (3, 'c@example.com', '2026-07-01 12:00:00.123456', '2026-07-01 12:00:00.123456-04', 1234567890123.45, 7, '2026-06-01 12:30:00')`);
      await c.query(`CREATE SEQUENCE ${SCHEMA}.counter`);
      await c.query(`CREATE TABLE ${SCHEMA}.events (id integer PRIMARY KEY, customer_id text NOT NULL, created_at timestamptz NOT NULL)`);
      await c.query(`
        INSERT INTO ${SCHEMA}.events
        SELECT g, 'cus_' || g, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute'
        FROM generate_series(1, 50000) g`);
    });
    pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1, application_name: `${APP}_pool` });
    pool.on('error', () => {});
  });

  afterAll(async () => {
    await pool?.end();
    await admin((c) => c.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`));
  });

  const spec = (query: string) => ({ type: 'postgres' as const, url_env: 'WAREHOUSE_URL', query });

  it('reads every row on the first run, with naive timestamps raw, timestamptz as ISO, and exact numerics', async () => {
    const rows = await collect(createConnector(spec(statsQuery), { timezone: 'America/New_York' }).read(ctx()));
    expect(rows.map((r) => r.location)).toEqual(['query row 1', 'query row 2', 'query row 3']);
    expect(rows[0]!.values).toEqual({
      customer_id: '2',
      email: 'b@example.com',
      naive_at: '2026-11-01 01:30:00',
      instant_at: null,
      amount: null,
      order_count: 0,
      updated_at: '2026-06-01 11:00:00',
    });
    expect(rows[1]!.values).toEqual({
      customer_id: '3',
      email: 'c@example.com',
      naive_at: '2026-07-01 12:00:00.123456',
      // Shown in the session timezone (the source's), with its offset: still one exact instant.
      instant_at: '2026-07-01T12:00:00.123456-04:00',
      amount: '1234567890123.45',
      order_count: 7,
      updated_at: '2026-06-01 12:30:00',
    });
    expect(rows[2]!.values).toMatchObject({ customer_id: '9007199254740993', instant_at: '2026-03-08T03:30:00-04:00', amount: '12.50', naive_at: '2026-03-08 02:30:00' });
  });

  it('feeds the normaliser: naive times convert from the source timezone, DST notes included', async () => {
    const source: SourceSpec = {
      kind: 'Source',
      name: 'shopify_orders',
      system: 'shopify',
      connector: spec(statsQuery),
      schedule: '5 * * * *',
      records: 'person',
      identity: { column: 'customer_id', as: 'id' },
      ordering: 'updated_at',
      timezone: 'America/New_York',
      fields: { email: 'email', last_order_at: 'naive_at', first_order_at: 'instant_at', revenue: 'amount', order_count: 'order_count' },
      null_policy: 'protect',
    };
    const fields = new Map<string, FieldDef>([
      ['email', { type: 'string', format: 'email', owner: 'shopify' }],
      ['last_order_at', { type: 'timestamp', owner: 'shopify' }],
      ['first_order_at', { type: 'timestamp', owner: 'shopify' }],
      ['revenue', { type: 'number', owner: 'shopify' }],
      ['order_count', { type: 'number', owner: 'shopify' }],
    ]);
    const rows = await collect(createConnector(source.connector, { timezone: source.timezone }).read(ctx()));
    const out = rows.map((row) => normalize(row, { source, fields, normalization: undefined, primary: 'id' }));
    const big = out.find((r) => r.ok && r.key === '9007199254740993');
    expect(big).toMatchObject({
      ok: true,
      ordering: Date.parse('2026-06-01T13:00:00Z'),
      values: {
        email: 'jo@example.com',
        last_order_at: Date.parse('2026-03-08T07:30:00Z') / 1000, // 02:30 does not exist in New York: 03:30 EDT
        first_order_at: Date.parse('2026-03-08T07:30:00Z') / 1000,
        revenue: 12.5,
        order_count: 3,
      },
    });
    expect(big!.ok && big!.notes).toEqual([expect.stringContaining('daylight-saving gap of America/New_York')]);
    const two = out.find((r) => r.ok && r.key === '2');
    expect(two).toMatchObject({ values: { last_order_at: Date.parse('2026-11-01T05:30:00Z') / 1000 }, blanks: ['first_order_at', 'revenue'] });
  });

  it('filters by :last_sync_at on the next run, reading naive columns in the source timezone', async () => {
    const lastSyncAt = new Date('2026-06-01T14:30:00Z'); // 10:30 in New York
    const rows = await collect(createConnector(spec(statsQuery), { timezone: 'America/New_York' }).read(ctx({ lastSyncAt })));
    expect(rows.map((r) => r.values.customer_id)).toEqual(['2', '3']);
    // The same naive values read as UTC would all look older than the last sync: the timezone matters.
    const asUtc = await collect(createConnector(spec(statsQuery)).read(ctx({ lastSyncAt })));
    expect(asUtc).toEqual([]);
  });

  it('leaves :last_sync_at alone inside literals and comments', async () => {
    const query = `select ':last_sync_at' as label, customer_id -- compared with :last_sync_at
      from ${SCHEMA}.customer_order_stats where updated_at > :last_sync_at /* :last_sync_at */ order by customer_id limit 1`;
    const rows = await collect(createConnector(spec(query)).read(ctx()));
    expect(rows).toEqual([{ location: 'query row 1', values: { label: ':last_sync_at', customer_id: '2' } }]);
  });

  it('reads 50k rows through the cursor in order', async () => {
    const connector = createPostgresConnector(spec(`select id, customer_id, created_at from ${SCHEMA}.events order by id`), { pool, pageSize: 1000 });
    let count = 0;
    let inOrder = true;
    for await (const row of connector.read(ctx())) {
      count++;
      if (row.values.id !== count) inOrder = false;
    }
    expect(count).toBe(50_000);
    expect(inOrder).toBe(true);
    expect(pool.idleCount).toBe(pool.totalCount);
  });

  it('returns a pooled connection clean (no transaction, no cursor) when the consumer stops early', async () => {
    const connector = createPostgresConnector(spec(`select id from ${SCHEMA}.events order by id`), { pool, pageSize: 500 });
    let count = 0;
    for await (const _row of connector.read(ctx())) {
      if (++count === 1234) break;
    }
    expect(count).toBe(1234);
    expect(pool.totalCount).toBe(1);
    expect(pool.idleCount).toBe(1);
    // The pool has one connection, so these run on the very connection the cursor used.
    const state = await pool.query<{ cursors: string; in_tx: boolean }>(
      `select (select count(*) from pg_cursors) as cursors, txid_current_if_assigned() is not null as in_tx`,
    );
    expect(state.rows[0]).toEqual({ cursors: '0', in_tx: false });
  });

  it('closes its own connection when the consumer stops early', async () => {
    const appName = `${APP}_own`;
    const backends = async () =>
      Number((await pool.query<{ n: string }>('select count(*) as n from pg_stat_activity where application_name = $1', [appName])).rows[0]!.n);
    const connector = createPostgresConnector(spec(`select id from ${SCHEMA}.events order by id`), { pageSize: 100, applicationName: appName });
    let during = -1;
    for await (const _row of connector.read(ctx())) {
      during = await backends();
      break;
    }
    expect(during).toBe(1);
    // The server drops the backend just after the client's goodbye; wait for that state (bounded).
    let after = await backends();
    for (let i = 0; i < 200 && after !== 0; i++) {
      await new Promise((r) => setTimeout(r, 25));
      after = await backends();
    }
    expect(after).toBe(0);
  });

  it('stops at the next page when aborted, and releases the connection', async () => {
    const controller = new AbortController();
    const connector = createPostgresConnector(spec(`select id from ${SCHEMA}.events order by id`), { pool, pageSize: 100 });
    let count = 0;
    const err = await (async () => {
      for await (const _row of connector.read(ctx({ signal: controller.signal }))) {
        if (++count === 150) controller.abort();
      }
    })().catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'AbortError' });
    expect(count).toBe(200);
    expect(pool.idleCount).toBe(pool.totalCount);
  });

  it('reports a failing query as a query error and still releases the connection', async () => {
    const connector = createPostgresConnector(spec(`select nope from ${SCHEMA}.events`), { pool });
    const err = await collect(connector.read(ctx())).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectorError);
    expect(err).toMatchObject({ code: 'query', message: expect.stringContaining('column "nope" does not exist') });
    expect(pool.idleCount).toBe(pool.totalCount);
    expect((await pool.query('select 1 as ok')).rows).toEqual([{ ok: 1 }]);
  });

  it('runs the query read-only: a source can never write to the warehouse', async () => {
    // DECLARE already refuses INSERT … RETURNING; a function with side effects is what read-only stops.
    const connector = createPostgresConnector(spec(`select nextval('${SCHEMA}.counter') as n`), { pool });
    await expect(collect(connector.read(ctx()))).rejects.toMatchObject({ code: 'query', message: expect.stringContaining('read-only transaction') });
    const untouched = await pool.query(`select last_value::int as v, is_called from ${SCHEMA}.counter`);
    expect(untouched.rows[0]).toEqual({ v: 1, is_called: false });
  });

  it('fails before delivering any row when the query does not return a column the spec maps', async () => {
    const connector = createPostgresConnector(spec(`select id, created_at from ${SCHEMA}.events order by id`), { pool, pageSize: 10 });
    const columns = [
      { column: 'id', key: 'identity.column' },
      { column: 'customer_id', key: 'fields.email' },
    ];
    const delivered: SourceRow[] = [];
    const err = await (async () => {
      for await (const r of connector.read(ctx({ columns }))) delivered.push(r);
    })().catch((e: unknown) => e);
    expect(delivered).toEqual([]);
    expect(err).toBeInstanceOf(ConnectorError);
    expect(err).toMatchObject({
      code: 'format',
      message: 'The result of the source query has no column "customer_id" (fields.email), which the source maps; nothing was sent. Its columns are: id, created_at.',
    });
    expect(pool.idleCount).toBe(pool.totalCount);
  });

  it('refuses a query that returns two columns with the same name', async () => {
    const connector = createPostgresConnector(spec(`select id, customer_id as id from ${SCHEMA}.events limit 1`), { pool });
    await expect(collect(connector.read(ctx()))).rejects.toMatchObject({ code: 'format', message: expect.stringContaining('"id"') });
    expect(pool.idleCount).toBe(pool.totalCount);
  });
});

describe.skipIf(skipReason !== undefined)('database errors that quote a row value (real server, through the CLI)', () => {
  let sandbox: RunningSandbox;
  useSandbox(31, (s) => (sandbox = s));
  // Planted in a row; the cast fails on it, and PostgreSQL quotes it in its error message.
  const PLANTED = 'alice.planted+tok_9f8e7d6c5b@example.com';
  const TABLE = `${SCHEMA}.contacts`;

  beforeAll(async () => {
    await admin(async (c) => {
      await c.query(`CREATE SCHEMA IF NOT EXISTS ${SCHEMA}`);
      await c.query(`CREATE TABLE ${TABLE} (customer_id text PRIMARY KEY, orders text)`);
      await c.query(`INSERT INTO ${TABLE} VALUES ('c1', '3'), ('c2', $1)`, [PLANTED]);
    });
  });
  afterAll(async () => {
    await admin((c) => c.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`));
  });

  it('keeps the value out of the stored run error, the JSON report and the status outputs, and keeps the SQLSTATE', async () => {
    const source = personSource({
      name: 'contacts',
      connector: `{ type: postgres, url_env: WAREHOUSE_URL, query: "select customer_id, orders::bigint as orders from ${TABLE} order by customer_id" }`,
      fields: { order_count: 'orders' },
    });
    const dir = await makeProject({ sources: [source] });
    const extra = { WAREHOUSE_URL: DATABASE_URL };
    const text = await cli(dir, sandbox, ['sync', 'run', 'contacts'], extra);
    const json = await cli(dir, sandbox, ['sync', 'run', 'contacts', '--format', 'json'], extra);
    expect(text.code).toBe(1);
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as { runs: Array<{ status: string; error?: string }> };
    expect(report.runs[0]!.status).toBe('failed');
    expect(report.runs[0]!.error).toContain('invalid input syntax for type bigint: "<value>" (SQLSTATE 22P02');
    const statusJson = await cli(dir, sandbox, ['status', '--format', 'json'], extra);
    const statusGithub = await cli(dir, sandbox, ['status', '--format', 'github'], extra);
    const statusText = await cli(dir, sandbox, ['status'], extra);
    // The run error as stored in the run history, which status reads.
    expect(statusJson.stdout).toContain('SQLSTATE 22P02');
    expect(statusGithub.stdout).toContain('SQLSTATE 22P02');
    for (const out of [text.stdout, text.stderr, json.stdout, json.stderr, statusJson.stdout, statusGithub.stdout, statusText.stdout, statusText.stderr]) {
      expect(out).not.toContain(PLANTED);
      expect(out).not.toContain('alice.planted');
      expect(out).not.toContain('tok_9f8e7d6c5b');
    }
  });
});
