/**
 * Row fingerprints: for the diff in the warehouse (reconciler/sync/warehouse-diff.ts), per source and
 * snapshot key, the md5 of the raw source row (its text as PostgreSQL writes the row) that last read as
 * unchanged against the key's entry, with what that row normalised to (hash, ordering) and what it
 * counted for the null policy. A source row whose md5 is here is known to normalise to exactly that, so
 * it need not leave the database.
 *
 * A cache, not state: losing it costs one run that reads every row again, never a wrong send. So it is
 * kept outside the migrated schema, like the ack log, in a per-source table `tm_fp_<sid>` created on first
 * use (Postgres only: the diff in the warehouse needs the state in the source's database), and:
 * - a row is only trusted while the snapshot entry of its key still has the hash recorded with it (the
 *   warehouse's query joins `snapshot_entries` on the hash), so an entry that moved for any reason retires
 *   its fingerprint;
 * - the table is tied to a context digest (the source spec, the fields it maps, the normalisation rules,
 *   the result columns and their types, tidemark's version), kept in the row with the empty key: a run
 *   with another context empties the table first, so a spec change never lets an old fingerprint stand.
 */
import { InternalError } from '../core/diagnostics.ts';
import { findSourceId } from './snapshot.ts';
import type { Clock } from '../core/clock.ts';
import type { SqlDriver } from './sql/executor.ts';
import { ADVISORY_CLASS } from './sql/postgres-driver.ts';

/** One row that read as unchanged: what its raw text (`fp`) normalised to. */
export interface FingerprintRow {
  key: string;
  /** md5 of the raw row's text, 32 hex digits. */
  fp: string;
  hash: string;
  ordering: number | null;
  /** The row's null-policy counts (`[null_blocked, held_back, erased]` field lists) as JSON, or null when all are empty. */
  effects: string | null;
}

/** What tells two connections apart: equal on both only when they reach the same database of the same server. */
export interface DatabaseIdentity {
  database: string;
  databaseOid: string;
  serverStarted: string;
  /** The oid of the state's `snapshot_entries` as that connection sees it (empty when it cannot see it). */
  entriesOid: string;
}

/** The fingerprint cache of one environment's state (Postgres only; see the module comment). */
export interface FingerprintStore {
  /** The schema of the state's tables, for SQL run on another connection to the same database. */
  readonly schema: string;
  readonly env: string;
  /** This state's database, as its own connection sees it (compare with `identityQuery` run elsewhere). */
  identity(): Promise<DatabaseIdentity>;
  /** The source's snapshot id, undefined before anything was recorded for it. */
  sourceId(source: string): Promise<number | undefined>;
  /**
   * The table holding the source's fingerprints when it holds them for `context` (schema-qualified), else
   * undefined. Reads only (for `sync plan`).
   */
  usable(source: string, context: string): Promise<{ sid: number; table: string } | undefined>;
  /** Makes the source's table hold fingerprints of `context` (creating it, or emptying it when the context differs). */
  prepare(source: string, context: string): Promise<{ sid: number; table: string }>;
  /** Records rows (the last one per key wins). */
  record(source: string, rows: readonly FingerprintRow[]): Promise<void>;
  /** Drops the source's table (with its snapshot). */
  drop(source: string): Promise<void>;
}

/** Run on any connection: the values of `DatabaseIdentity` (bind the schema as $1). Epoch seconds: no session's zone or date style shows. */
export const IDENTITY_SQL = `SELECT current_database() AS database,
  (SELECT oid::text FROM pg_database WHERE datname = current_database()) AS "databaseOid",
  extract(epoch FROM pg_postmaster_start_time())::text AS "serverStarted",
  COALESCE(to_regclass(quote_ident($1) || '.snapshot_entries')::oid::text, '') AS "entriesOid"`;

const ROWS_PER_STATEMENT = 5000;

/** One element of a Postgres array literal: NULL, or the value double-quoted with `"` and `\` escaped. */
function arrayItem(v: string | number | null): string {
  if (v === null) return 'NULL';
  return `"${String(v).replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

export function fingerprintTable(sid: number): string {
  if (!Number.isSafeInteger(sid) || sid <= 0) throw new InternalError(`bad snapshot source id ${sid}`);
  return `tm_fp_${sid}`;
}

const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;

interface Ctx {
  db: SqlDriver;
  env: string;
  clock: Clock;
}

export class PostgresFingerprints implements FingerprintStore {
  readonly env: string;
  constructor(
    private readonly ctx: Ctx,
    readonly schema: string,
  ) {
    this.env = ctx.env;
  }

  private qualified(sid: number): string {
    return `${quoteIdent(this.schema)}.${fingerprintTable(sid)}`;
  }

  async identity(): Promise<DatabaseIdentity> {
    const row = await this.ctx.db.get<DatabaseIdentity>(IDENTITY_SQL, [this.schema]);
    if (!row) throw new InternalError('the identity query returned nothing');
    return row;
  }

  sourceId(source: string): Promise<number | undefined> {
    return findSourceId(this.ctx, source);
  }

  async usable(source: string, context: string): Promise<{ sid: number; table: string } | undefined> {
    const sid = await findSourceId(this.ctx, source);
    if (sid === undefined) return undefined;
    const table = this.qualified(sid);
    const exists = await this.ctx.db.get<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [table]);
    if (!exists?.t) return undefined;
    const held = await this.ctx.db.get<{ fp: string }>(`SELECT fp FROM ${table} WHERE row_key = ''`);
    return held?.fp === context ? { sid, table } : undefined;
  }

  async prepare(source: string, context: string): Promise<{ sid: number; table: string }> {
    const sid = await findSourceId(this.ctx, source);
    // A source nothing was acknowledged for yet has no snapshot id: the snapshot's first session allocates it.
    if (sid === undefined) throw new InternalError(`source ${source} has no snapshot yet`);
    const table = this.qualified(sid);
    await this.ctx.db.transaction(async () => {
      // Serialised per table: two runs creating it at once would collide in the catalog.
      await this.ctx.db.run('SELECT pg_advisory_xact_lock($1, hashtext($2))', [ADVISORY_CLASS, table]);
      // No index on fp: the warehouse reads the whole table in one hash join, and every write would pay for it.
      await this.ctx.db.exec(`CREATE TABLE IF NOT EXISTS ${table} (row_key TEXT NOT NULL PRIMARY KEY, fp TEXT NOT NULL, hash TEXT NOT NULL, ordering BIGINT, effects TEXT)`);
      const held = await this.ctx.db.get<{ fp: string }>(`SELECT fp FROM ${table} WHERE row_key = ''`);
      if (held?.fp === context) return;
      await this.ctx.db.exec(`TRUNCATE ${table}`);
      await this.ctx.db.run(`INSERT INTO ${table} (row_key, fp, hash) VALUES ('', $1, '')`, [context]);
    });
    return { sid, table };
  }

  async record(source: string, rows: readonly FingerprintRow[]): Promise<void> {
    if (rows.length === 0) return;
    const sid = await findSourceId(this.ctx, source);
    if (sid === undefined) return;
    const table = this.qualified(sid);
    // One row per key and statement (Postgres refuses an upsert that touches a row twice): the last wins.
    const unique = [...new Map(rows.map((r) => [r.key, r])).values()];
    for (const r of unique) if (r.key === '') throw new InternalError('a fingerprint without a key');
    for (let i = 0; i < unique.length; i += ROWS_PER_STATEMENT) {
      const chunk = unique.slice(i, i + ROWS_PER_STATEMENT);
      // Five arrays, not five parameters a row: one short statement to parse and bind for thousands of rows.
      const column = (pick: (r: FingerprintRow) => string | number | null) => `{${chunk.map((r) => arrayItem(pick(r))).join(',')}}`;
      await this.ctx.db.run(
        `INSERT INTO ${table} (row_key, fp, hash, ordering, effects)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[])
         ON CONFLICT (row_key) DO UPDATE SET fp = excluded.fp, hash = excluded.hash, ordering = excluded.ordering, effects = excluded.effects`,
        [column((r) => r.key), column((r) => r.fp), column((r) => r.hash), column((r) => r.ordering), column((r) => r.effects)],
      );
    }
  }

  async drop(source: string): Promise<void> {
    const sid = await findSourceId(this.ctx, source);
    if (sid !== undefined) await this.ctx.db.exec(`DROP TABLE IF EXISTS ${this.qualified(sid)}`);
  }
}
