/**
 * The embedded warehouse is PostgreSQL for every example source: each Postgres Source's own query, read
 * through the same connector (pg driver, cursor, `:last_sync_at` binding, session TimeZone), returns the
 * same rows from PGlite as from the real server on 127.0.0.1:5432, loaded with the same world. Both on a
 * first run (`-infinity`) and on an incremental one.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSpecs } from '../../reconciler/spec/load.ts';
import type { SourceSpec } from '../../reconciler/spec/schema/index.ts';
import { createConnector, readBatches } from '../../reconciler/sync/connectors/index.ts';
import { startEmbeddedWarehouse, type EmbeddedWarehouse } from '../../reconciler/world/embedded-warehouse.ts';
import { loadWarehouse } from '../../reconciler/world/warehouse.ts';
import { postgresSkipReason, TEST_DATABASE_URL } from '../support/postgres.ts';
import path from 'node:path';

const REPO = path.resolve(import.meta.dirname, '../..');
const skip = await postgresSkipReason('PGlite vs PostgreSQL on the example sources');
const WORLD = { seed: 424242, people: 1500, now: new Date('2026-12-02T12:00:00Z') };
const DB = `tidemark_world_${process.pid}`;

let embedded: EmbeddedWarehouse;
let realUrl: string;
let sources: SourceSpec[];

beforeAll(async () => {
  if (skip) return;
  const load = await loadSpecs('specs', REPO);
  sources = [...load.model!.sources.values()].map((s) => s.spec).filter((s) => s.connector.type === 'postgres');
  embedded = await startEmbeddedWarehouse(WORLD);
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${DB}`);
  await admin.query(`CREATE DATABASE ${DB}`);
  await admin.end();
  const u = new URL(TEST_DATABASE_URL);
  u.pathname = `/${DB}`;
  realUrl = u.toString();
  const real = new pg.Client({ connectionString: realUrl });
  await real.connect();
  try {
    await loadWarehouse(real, WORLD);
  } finally {
    await real.end();
  }
}, 120_000);

afterAll(async () => {
  if (skip) return;
  await embedded?.close();
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${DB}`);
  await admin.end();
});

async function rowsOf(source: SourceSpec, url: string, lastSyncAt: Date | null): Promise<string[]> {
  const connector = createConnector(source.connector, { timezone: source.timezone });
  const out: string[] = [];
  const env = { [(source.connector as { url_env: string }).url_env]: url };
  for await (const batch of readBatches(connector, { lastSyncAt, cwd: REPO, env })) for (const r of batch) out.push(JSON.stringify(r.values));
  return out.sort();
}

describe.skipIf(!!skip)('the embedded warehouse answers every example query as PostgreSQL does', () => {
  it('covers the example Postgres sources', () => {
    expect(sources.map((s) => s.name).sort()).toEqual(['recharge_cancel_requests', 'recharge_subscriptions', 'shopify_deliveries', 'shopify_orders', 'warehouse_vip']);
  });

  for (const lastSyncAt of [null, new Date('2026-11-30T08:00:00Z')]) {
    it(`same rows on PGlite and on the server, ${lastSyncAt ? 'incremental (since 2026-11-30 08:00Z)' : 'first run (-infinity)'}`, async () => {
      for (const s of sources) {
        const onPglite = await rowsOf(s, embedded.url, lastSyncAt);
        const onServer = await rowsOf(s, realUrl, lastSyncAt);
        expect(onPglite.length, s.name).toBeGreaterThan(0);
        expect(onPglite.length, s.name).toBe(onServer.length);
        expect(onPglite, s.name).toEqual(onServer);
        if (lastSyncAt) expect(onPglite.length, `${s.name} is incremental`).toBeLessThan((await rowsOf(s, embedded.url, null)).length);
      }
    }, 120_000);
  }
});
