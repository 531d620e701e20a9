/**
 * The diff in the warehouse against the engine's own diff (issue 15 point 5): the same random Postgres
 * source, synced round after round by two projects whose states live in the same database, one with the
 * diff in the warehouse, one with it turned off (TIDEMARK_WAREHOUSE_DIFF=off). Every outcome must be the
 * same: plan and run counts (rejects by code, null policy per field, duplicates, out-of-order rows,
 * pending entries), notes, rejected rows, what Customer.io holds, and every snapshot entry.
 *
 * The rounds change the source the ways that matter: values change and change back, rows get older or
 * newer orderings, keys are read twice (the same row twice, or two versions, or the id padded with
 * spaces, which normalises to the same key), rows go bad, blanks appear for blocked, clearable and state
 * fields, naive timestamps fall in a daylight-saving gap (rows with notes), rows are deleted and added,
 * and one round's sends all fail (entries wait as pending). The server is TIDEMARK_TEST_DATABASE_URL or
 * postgres://postgres@127.0.0.1:5432/test; without one the file skips with a banner (fails in CI).
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../reconciler/core/clock.ts';
import { createSandbox, type RunningSandbox } from '../../reconciler/sandbox/index.ts';
import type { SyncReport } from '../../reconciler/sync/run.ts';
import { postgresSkipReason, TEST_DATABASE_URL } from '../support/postgres.ts';
import { attributesOf, makeProject, open, removeProject, sync } from '../support/sync-fixture.ts';

const unreachable = await postgresSkipReason('diff in the warehouse tests (test/sync/warehouse-diff.int.test.ts)');
const TAG = `tm_whd_${randomBytes(4).toString('hex')}`;
const SRC = `${TAG}_src`;

let db: pg.Client;
const dirs: string[] = [];
const sandboxes: RunningSandbox[] = [];

beforeAll(async () => {
  if (unreachable !== undefined) return;
  db = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await db.connect();
  await db.query(`CREATE SCHEMA ${SRC}`);
});
afterAll(async () => {
  for (const d of dirs) await removeProject(d);
  for (const s of sandboxes) await s.close();
  if (unreachable !== undefined) return;
  for (const schema of [SRC, ...['person', 'event'].flatMap((k) => [`${TAG}_client_${k}`, `${TAG}_warehouse_${k}`])]) await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await db.end();
});

type Kind = 'person' | 'event';

const sourceYaml = (table: string, kind: Kind) => (kind === 'event' ? eventYaml(table) : personYaml(table));

/** The same table read as events: one return per customer (so a key read twice is the same event). */
const eventYaml = (table: string) => `kind: Source
name: people
system: returns
connector:
  type: postgres
  url_env: WAREHOUSE_URL
  query: |
    select customer_id, orders, blurb, updated_at
    from ${SRC}.${table}
    order by seq
schedule: "0 * * * *"
records: event
identity: { column: customer_id, as: id }
event:
  name: return_created
  timestamp_column: updated_at
  id_columns: [customer_id]
timezone: America/New_York
fields:
  return_reason: blurb
  return_value: orders
freshness: { max_age: 2h }
latency_needed: hourly
max_rejected: 90%
`;

const personYaml = (table: string) => `kind: Source
name: people
system: crm
connector:
  type: postgres
  url_env: WAREHOUSE_URL
  query: |
    select customer_id, orders, store, blurb, tier, tier_at, updated_at
    from ${SRC}.${table}
    order by seq
schedule: "0 * * * *"
records: person
identity: { column: customer_id, as: id }
ordering: updated_at
timezone: America/New_York
fields:
  order_count: orders
  preferred_store: store
  profile_blurb: blurb
  vip_tier: tier
  vip_tier_updated_at: tier_at
freshness: { max_age: 2h }
latency_needed: hourly
max_rejected: 90%
`;

/** A small deterministic generator (mulberry32), so a failing seed can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Row {
  customer_id: string | null;
  orders: string | null;
  store: string | null;
  blurb: string | null;
  tier: string | null;
  tier_at: string | null;
  updated_at: string | null;
}

const TIERS = ['none', 'silver', 'gold', 'platinum'];

function freshRow(id: number, r: () => number, day: number): Row {
  const pick = <T,>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  return {
    customer_id: String(id),
    orders: String(Math.floor(r() * 50)),
    store: r() < 0.1 ? null : pick(['north', 'south', 'east']),
    blurb: r() < 0.1 ? null : pick(['tea', 'coffee', 'both']),
    tier: r() < 0.08 ? null : pick(TIERS),
    tier_at: `2026-0${1 + Math.floor(r() * 9)}-1${Math.floor(r() * 9)} 1${Math.floor(r() * 9)}:00:00`,
    updated_at: `2026-10-${String(day).padStart(2, '0')}T${String(Math.floor(r() * 24)).padStart(2, '0')}:00:00Z`,
  };
}

/** One round of changes to the source, all drawn from `r`. */
function mutate(rows: Row[], r: () => number, round: number, nextId: { n: number }): Row[] {
  const out: Row[] = [];
  const day = 10 + round;
  for (const row of rows) {
    const x = r();
    if (x < 0.03) continue; // deleted
    if (x < 0.1) {
      // changed, newer
      out.push({ ...row, orders: String(Math.floor(r() * 90)), tier: r() < 0.5 ? row.tier : TIERS[Math.floor(r() * 4)]!, updated_at: `2026-10-${day}T0${Math.floor(r() * 9)}:00:00Z` });
    } else if (x < 0.13) {
      // changed, but older than what was sent
      out.push({ ...row, orders: String(1000 + Math.floor(r() * 9)), updated_at: '2026-01-01T00:00:00Z' });
    } else if (x < 0.16) {
      // blanks: a blocked field, a clearable one, a state field (its companion held back)
      out.push({ ...row, blurb: r() < 0.5 ? null : row.blurb, store: r() < 0.5 ? '' : row.store, tier: r() < 0.5 ? null : row.tier, updated_at: `2026-10-${day}T10:00:00Z` });
    } else if (x < 0.18) {
      // read twice: the same row, or an older version before it, or the id padded (the same key)
      const twice = r();
      if (twice < 0.33) out.push(row, row);
      else if (twice < 0.66) out.push({ ...row, orders: '777', updated_at: '2026-02-02T00:00:00Z' }, row);
      else out.push(row, { ...row, customer_id: ` ${row.customer_id}`, orders: String(Math.floor(r() * 5)) });
    } else if (x < 0.19) {
      // bad values: rejected rows
      out.push({ ...row, orders: r() < 0.5 ? 'many' : row.orders, tier: r() < 0.5 ? 'diamond' : row.tier });
    } else if (x < 0.195) {
      // a naive time in New York's spring-forward gap: a row with a note
      out.push({ ...row, tier_at: '2026-03-08 02:30:00' });
    } else out.push(row);
  }
  const added = 3 + Math.floor(r() * 6);
  for (let i = 0; i < added; i++) out.splice(Math.floor(r() * out.length), 0, freshRow(nextId.n++, r, day));
  // A row without a key, now and then.
  if (r() < 0.5) out.push({ ...freshRow(0, r, day), customer_id: null });
  return out;
}

async function load(table: string, rows: readonly Row[]): Promise<void> {
  await db.query(`TRUNCATE ${SRC}.${table}`);
  for (let i = 0; i < rows.length; i += 500) {
    const chunk = rows.slice(i, i + 500);
    const values: string[] = [];
    const params: unknown[] = [];
    chunk.forEach((row, j) => {
      const b = params.length;
      values.push(`($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}, $${b + 6}, $${b + 7}::timestamp, $${b + 8}::timestamptz)`);
      params.push(i + j, row.customer_id, row.orders, row.store, row.blurb, row.tier, row.tier_at, row.updated_at);
    });
    await db.query(`INSERT INTO ${SRC}.${table} (seq, customer_id, orders, store, blurb, tier, tier_at, updated_at) VALUES ${values.join(', ')}`, params);
  }
}

interface Side {
  name: 'client' | 'warehouse';
  dir: string;
  sandbox: RunningSandbox;
  env: NodeJS.ProcessEnv;
}

async function side(name: Side['name'], table: string, kind: Kind, schema: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<Side> {
  await db.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  const url = new URL(TEST_DATABASE_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  // One source writes fields of two owners (crm and warehouse): every kind of null policy in one query.
  const dir = await makeProject({ state: 'postgres', sources: [sourceYaml(table, kind)], policy: { OWN002: 'off' } });
  dirs.push(dir);
  const sandbox = await createSandbox({ port: 0, retryAfterSeconds: 0, seed: 41 });
  sandboxes.push(sandbox);
  return { name, dir, sandbox, env: { TIDEMARK_DATABASE_URL: url.toString(), WAREHOUSE_URL: TEST_DATABASE_URL, ...extraEnv } };
}

/** A report without what legitimately differs between the two sides: ids, times, where the rejects file is, the diff's own note. */
function comparable(r: SyncReport): Record<string, unknown> {
  const { run_id: _id, started_at: _s, finished_at: _f, rejects_file: _rf, diff: _d, notes, ...rest } = r;
  return { ...rest, notes: notes.filter((n) => !n.startsWith('the diff ran in')) };
}

async function rejectsOf(s: Side, r: SyncReport): Promise<unknown[]> {
  if (!r.rejects_file) return [];
  const text = await readFile(path.join(s.dir, r.rejects_file), 'utf8');
  return text.trim().split('\n').map((l) => JSON.parse(l) as unknown);
}

async function snapshotOf(s: Side): Promise<unknown[]> {
  const ws = await open(s.dir, s.sandbox, { env: s.env });
  try {
    const out: unknown[] = [];
    for await (const e of ws.conn.store.iterateSnapshot('people')) out.push({ key: e.key, hash: e.hash, ordering: e.ordering, payload: e.payload });
    const pending = (await ws.conn.store.readPending('people')).map((p) => ({ key: p.key, hash: p.hash, ordering: p.ordering, payload: p.payload, location: p.location, reason: p.reason }));
    return [out, pending];
  } finally {
    await ws.conn.close();
  }
}

describe.skipIf(unreachable !== undefined)('the diff in the warehouse', () => {
  it.each<Kind>(['person', 'event'])("gives every outcome of the engine's own diff for a %s source, round after round of random changes, while only changed rows cross the wire", async (kind) => {
    const table = `people_${kind}`;
    await db.query(
      `CREATE TABLE ${SRC}.${table} (seq int PRIMARY KEY, customer_id text, orders text, store text, blurb text, tier text, tier_at timestamp, updated_at timestamptz)`,
    );
    const client = await side('client', table, kind, `${TAG}_client_${kind}`, { TIDEMARK_WAREHOUSE_DIFF: 'off' });
    const warehouse = await side('warehouse', table, kind, `${TAG}_warehouse_${kind}`);
    const r = rng(Number(process.env.TIDEMARK_ORACLE_SEED ?? 15_005) + (kind === 'event' ? 1 : 0));
    const nextId = { n: 1 };
    let rows = Array.from({ length: 400 }, () => freshRow(nextId.n++, r, 1));
    const rounds = 7;
    const transferred: Array<{ read: number; transferred: number }> = [];
    for (let round = 0; round < rounds; round++) {
      if (round > 0) rows = mutate(rows, r, round, nextId);
      await load(table, rows);
      const clock = fixedClock(`2026-11-${String(round + 1).padStart(2, '0')}T12:00:00Z`);
      const failing = round === 4;
      const reports: Record<string, { plan: SyncReport; run: SyncReport; rejects: unknown[] }> = {};
      for (const s of [client, warehouse]) {
        const plan = await sync(s.dir, s.sandbox, 'people', { env: s.env, clock, mode: 'plan' });
        if (failing) s.sandbox.faults.set({ service: 'track', burst5xx: 1_000_000 });
        const run = await sync(s.dir, s.sandbox, 'people', { env: s.env, clock, sendChunk: 40 });
        s.sandbox.faults.clear();
        reports[s.name] = { plan, run, rejects: await rejectsOf(s, run) };
      }
      const c = reports.client!;
      const w = reports.warehouse!;
      const where = `round ${round}`;
      expect(c.run.diff, where).toMatchObject({ in: 'client', reason: 'TIDEMARK_WAREHOUSE_DIFF=off' });
      expect(w.run.diff?.in, where).toBe('warehouse');
      expect(comparable(w.plan), `${where}: plan`).toEqual(comparable(c.plan));
      expect(comparable(w.run), `${where}: run`).toEqual(comparable(c.run));
      expect(w.rejects, `${where}: rejected rows`).toEqual(c.rejects);
      expect(await snapshotOf(warehouse), `${where}: snapshot and pending entries`).toEqual(await snapshotOf(client));
      for (let id = 1; id < nextId.n; id++) expect(attributesOf(warehouse.sandbox, String(id)), `${where}: person ${id}`).toEqual(attributesOf(client.sandbox, String(id)));
      transferred.push({ read: w.run.diff!.rows_read!, transferred: w.run.diff!.rows_transferred! });
      if (round >= 2) {
        // The plan found the fingerprints the runs recorded: it ran in the warehouse too.
        expect(w.plan.diff?.in, where).toBe('warehouse');
      }
      if (failing && kind === 'person') expect(c.run.status, where).toBe('partial');
    }
    // The first run reads everything; from the second on, only what changed (and rows with notes, rejects, pending keys) crosses.
    expect(transferred[0]!.transferred).toBe(transferred[0]!.read);
    // A changed event is never sent (events are immutable), so its entry keeps the old hash and the row
    // crosses on every run, as the engine counts it changed on every run: changes pile up over the rounds.
    for (const t of transferred.slice(2)) expect(t.transferred).toBeLessThan(t.read * (kind === 'event' ? 0.75 : 0.5));
    expect(transferred.slice(2).some((t) => t.transferred > 0)).toBe(true);
  }, 240_000);
});
