/**
 * Hearth & Harvest's warehouse: the schemas the example Postgres sources query, loaded with the seeded
 * world, on any PostgreSQL a `pg` client reaches: the embedded one (PGlite behind its wire-protocol socket
 * server, see embedded-warehouse.ts) or a real server (the comparison test, `tidemark world load`).
 *
 * Column types are the guide's traps as a warehouse really has them: Shopify's figures are `timestamptz`;
 * the carrier's delivery times and Recharge's times are naive `timestamp` in their local zones (the
 * Sources declare those zones); ids are `bigint`, so they come back as text and never lose digits.
 */
import type pg from 'pg';
import { worldChunks, type WorldOptions, type WorldTables } from './hearth-and-harvest.ts';

interface TableDef {
  /** Qualified table name. */
  name: string;
  /** Which rows of a world chunk go into it. */
  rows: keyof WorldTables;
  /** Column → SQL type, in order. */
  columns: Array<[string, string]>;
  primaryKey: string;
  indexes?: string[];
}

/** Every warehouse table, in load order. The files (loyalty CSV, returns NDJSON) are not in the warehouse. */
export const WAREHOUSE_TABLES: readonly TableDef[] = [
  {
    name: 'analytics.customers',
    rows: 'customers',
    columns: [['customer_id', 'bigint'], ['email', 'text'], ['phone', 'text'], ['first_name', 'text'], ['created_at', 'timestamptz'], ['updated_at', 'timestamptz']],
    primaryKey: 'customer_id',
  },
  {
    name: 'analytics.orders',
    rows: 'orders',
    columns: [['order_id', 'text'], ['customer_id', 'bigint'], ['placed_at', 'timestamptz'], ['category', 'text'], ['total', 'numeric(10,2)']],
    primaryKey: 'order_id',
    indexes: ['customer_id'],
  },
  {
    name: 'analytics.fulfillments',
    rows: 'fulfillments',
    columns: [['fulfillment_id', 'text'], ['order_id', 'text'], ['customer_id', 'bigint'], ['delivered_at', 'timestamp']],
    primaryKey: 'fulfillment_id',
    indexes: ['delivered_at'],
  },
  {
    name: 'analytics.customer_order_stats',
    rows: 'order_stats',
    columns: [['customer_id', 'bigint'], ['email', 'text'], ['phone', 'text'], ['last_order_at', 'timestamptz'], ['order_count', 'integer'], ['last_category', 'text'], ['updated_at', 'timestamptz']],
    primaryKey: 'customer_id',
    indexes: ['updated_at'],
  },
  {
    name: 'recharge.subscriptions',
    rows: 'subscriptions',
    columns: [['subscription_id', 'text'], ['customer_id', 'bigint'], ['status', 'text'], ['status_changed_at', 'timestamp'], ['updated_at', 'timestamp']],
    primaryKey: 'subscription_id',
    indexes: ['updated_at'],
  },
  {
    name: 'recharge.cancel_requests',
    rows: 'cancel_requests',
    columns: [['request_id', 'text'], ['customer_id', 'bigint'], ['requested_at', 'timestamp'], ['reason', 'text']],
    primaryKey: 'request_id',
    indexes: ['requested_at'],
  },
  {
    name: 'marts.vip_tiers',
    rows: 'vip_tiers',
    columns: [['customer_id', 'bigint'], ['vip_tier', 'text'], ['tier_computed_at', 'timestamp']],
    primaryKey: 'customer_id',
    indexes: ['tier_computed_at'],
  },
];

/** A `pg` client or pool: anything with `query(text, values)`. */
export type Queryable = Pick<pg.ClientBase, 'query'>;

const ROWS_PER_INSERT = 5000;

/**
 * Creates the schemas and tables (dropping what was there) and loads the world at `o.now`.
 * Rows go in as one `INSERT … SELECT FROM unnest($1::type[], …)` per batch: one round trip per 5,000 rows
 * on either engine, and no COPY, which PGlite's socket server does not carry.
 */
export async function loadWarehouse(db: Queryable, o: WorldOptions): Promise<Record<string, number>> {
  const schemas = [...new Set(WAREHOUSE_TABLES.map((t) => t.name.split('.')[0]!))];
  await db.query(`${schemas.map((s) => `DROP SCHEMA IF EXISTS ${s} CASCADE; CREATE SCHEMA ${s};`).join(' ')}`);
  for (const t of WAREHOUSE_TABLES) {
    await db.query(`CREATE TABLE ${t.name} (${t.columns.map(([c, ty]) => `${c} ${ty}`).join(', ')}, PRIMARY KEY (${t.primaryKey}))`);
  }
  const counts: Record<string, number> = Object.fromEntries(WAREHOUSE_TABLES.map((t) => [t.name, 0]));
  for (const chunk of worldChunks(o, 20_000)) {
    for (const t of WAREHOUSE_TABLES) {
      const rows = chunk[t.rows] as unknown as Array<Record<string, unknown>>;
      for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
        const batch = rows.slice(i, i + ROWS_PER_INSERT);
        const arrays = t.columns.map(([c]) => batch.map((r) => r[c] ?? null));
        const casts = t.columns.map(([, ty], k) => `$${k + 1}::${arrayType(ty)}`).join(', ');
        await db.query(`INSERT INTO ${t.name} (${t.columns.map(([c]) => c).join(', ')}) SELECT * FROM unnest(${casts})`, arrays);
      }
      counts[t.name]! += rows.length;
    }
  }
  for (const t of WAREHOUSE_TABLES) for (const ix of t.indexes ?? []) await db.query(`CREATE INDEX ON ${t.name} (${ix})`);
  await db.query(`ANALYZE`);
  return counts;
}

function arrayType(sqlType: string): string {
  return `${sqlType.replace(/\(.*\)$/, '')}[]`;
}
