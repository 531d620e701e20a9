/**
 * The diff in the warehouse: for a Postgres source whose state lives in the same database, the rows known
 * to be unchanged never leave the database; only the others cross the wire and go through the engine.
 *
 * How a row is known to be unchanged without normalising it. Normalising and hashing are TypeScript
 * (normalize.ts, prepare.ts) and cannot be reproduced in SQL for every type, zone and identity rule, so the
 * database does not compute the row hash. It computes a cheap fingerprint instead: `md5` of the raw row's
 * text as PostgreSQL writes the row (`md5(q::text)`). That text is made of each column's text output, the
 * very text the wire protocol would carry for the column, so two rows with the same fingerprint arrive as
 * the same values and normalise to the same result. Each row that went through the engine is recorded in
 * the state's fingerprint cache (reconciler/state/fingerprints.ts) with what it normalised to: its key,
 * hash, ordering and null-policy counts. A later source row with a recorded fingerprint is skipped in the
 * database when the key's snapshot entry still has that hash and the key has no pending entry; everything
 * else (new or changed rows, rejects, rows with notes, keys waiting to be resent) crosses the wire.
 *
 * Why the outcome is exactly the engine's (the oracle test in test/sync/warehouse-diff.int.test.ts runs
 * both paths on the same random sources and compares every count, send, reject and snapshot entry):
 * - the cache is tied to a context digest (source spec, field registry, normalisation rules, the query's
 *   result columns and types, tidemark's version); another context empties it;
 * - a skipped row is counted as the engine would count it: read, unchanged (it has the entry's hash), and
 *   its recorded null-policy counts, which are those of the row against its own acknowledged payload
 *   (what the engine compares it with); rows with notes are never recorded;
 * - a key read more than once keeps one row by ordering and position. The source is materialised once in
 *   a temporary table, with each row's position (`row_number()` over the query's own order) and, for
 *   skipped rows, their key; when a row that crossed the wire has the key of skipped rows, those are
 *   offered to the in-memory diff at their positions (with their recorded hash and ordering), so the
 *   duplicate rule sees the same sequence as the engine's, and among the rows that crossed, so the sender
 *   is handed and withdrawn the same entries in the same order (its batches are cut by that sequence);
 * - pending entries are settled by the same PendingBook: their keys are never skipped.
 * When no fingerprint can match (a first run, a new context), the query is read straight through a
 * cursor, like the connector's, with each row's position and fingerprint, and nothing is materialised.
 *
 * Falls back to the engine's own diff, saying why in the report, when: the state is not in PostgreSQL, the
 * source's connection reaches another database than the state's (a query cannot join across databases;
 * the check compares the database, its oid, the server's start time and the oid of the state's snapshot
 * table as each connection sees them), that connection may not read the state's tables, a plan finds no
 * fingerprints for the current context (only a run records them), a plan runs while another sync of the
 * source holds unmerged acknowledgements, or TIDEMARK_WAREHOUSE_DIFF=off.
 */
import type pg from 'pg';
import { canonicalJson, sha256 } from '../core/digest.ts';
import { registerSecret } from '../core/redact.ts';
import { TIDEMARK_VERSION } from '../core/version.ts';
import type { FieldDef, SourceSpec } from '../spec/schema/index.ts';
import { IDENTITY_SQL, type DatabaseIdentity, type FingerprintRow, type FingerprintStore } from '../state/fingerprints.ts';
import type { StateStore } from '../state/index.ts';
import { bindLastSyncAt, checkColumns, ConnectorError, mappedColumns } from './connectors/index.ts';
import { describeDatabaseError, typeParsers } from './connectors/postgres.ts';
import type { HeapGovernor } from './memory.ts';
import { createNormalizer } from './normalize.ts';
import { prepareRow, readPayload, type Payload, type PreparedRow } from './prepare.ts';
import { RunDiff, type PendingBook, type RunDiffCounts } from './run-diff.ts';
import type { SyncCounts, SyncDeps, SyncOptions } from './run.ts';
import type { Sender } from './sender.ts';
import type { NormalizeContext, NormalizedRow, SourceRow } from './types.ts';
import { pgLibrary } from '../core/pg-library.ts';

/** Set to `off` to keep every sync on the engine's own diff. */
export const WAREHOUSE_DIFF_VARIABLE = 'TIDEMARK_WAREHOUSE_DIFF';
/** Bump when what a fingerprint stands for changes in a way the context digest cannot see. */
const FINGERPRINT_FORMAT = 1;
/** Rows per FETCH: straight reads stream like the connector; a materialised read's pages are few, and each costs a lookup. */
const PAGE_SIZE = { direct: 2000, materialised: 10_000 };
const CURSOR = 'tidemark_warehouse_diff';
const TEMP = 'tidemark_warehouse_rows';
const COL_RN = 'tidemark_rn';
const COL_FP = 'tidemark_fp';
const COL_KEY = 'tidemark_key';
const COL_EFFECTS = 'tidemark_effects';

/** What a sync report says about where its diff ran (Postgres sources only). */
export interface DiffPathReport {
  in: 'warehouse' | 'client';
  /** Rows the query returned, in the database. */
  rows_read?: number;
  /** Rows that crossed the wire to tidemark. */
  rows_transferred?: number;
  /** Why the diff did not run in the warehouse. */
  reason?: string;
}

/** Where a sync's diff runs: `reason` is set for a Postgres source that stays in tidemark (`noted`: say so in the notes too). */
export type DiffChoice = { path: 'client'; reason?: string; noted?: boolean } | { path: 'warehouse'; session: WarehouseDiffSession };

/** What the report says about the diff's path: the `diff` field, and the note the text output shows. */
export function describeDiff(where: DiffChoice | undefined, counts: Pick<SyncCounts, 'read'>): { report?: DiffPathReport; note?: string } {
  if (where?.path === 'warehouse') {
    const report = where.session.report();
    return { report, note: `the diff ran in the warehouse: ${report.rows_transferred} of ${report.rows_read} rows crossed the wire` };
  }
  if (where?.reason === undefined) return {};
  const report: DiffPathReport = { in: 'client', rows_read: counts.read, rows_transferred: counts.read, reason: where.reason };
  return where.noted ? { report, note: `the diff ran in tidemark, not in the warehouse (all ${counts.read} rows crossed the wire): ${where.reason}` } : { report };
}

export interface ChooseInput {
  deps: Pick<SyncDeps, 'store' | 'env' | 'connector'>;
  source: SourceSpec;
  fields: ReadonlyMap<string, FieldDef>;
  ctx: NormalizeContext;
  mode: 'plan' | 'run';
  lastSyncAt: Date | null;
}

const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;

/**
 * Where this sync's diff runs. Called after a run opened its ack session (so the source has a snapshot id
 * and a dead session's acknowledgements are merged). A warehouse session holds a connection: close it.
 */
export async function chooseDiffPath(input: ChooseInput): Promise<DiffChoice> {
  const { deps, source, mode } = input;
  const spec = source.connector;
  if (spec.type !== 'postgres' || deps.connector) return { path: 'client' };
  const client = (reason: string, noted: boolean): DiffChoice => ({ path: 'client', reason, noted });
  if ((deps.env[WAREHOUSE_DIFF_VARIABLE] ?? '').trim().toLowerCase() === 'off') return client(`${WAREHOUSE_DIFF_VARIABLE}=off`, false);
  const fingerprints = deps.store.fingerprints;
  if (!fingerprints) return client('the state is not in PostgreSQL', false);
  const url = deps.env[spec.url_env];
  // The engine's read reports a missing variable the usual way.
  if (!url) return client(`${spec.url_env} is not set`, true);
  const { text, usesParameter } = bindLastSyncAt(spec.query);
  const conn = await connect(url, spec.url_env).catch(() => undefined);
  if (!conn) return client(`the source database in ${spec.url_env} could not be reached to compare it with the state's`, true);
  let keep = false;
  try {
    const why = await sameDatabase(conn, fingerprints);
    if (why) return client(why, true);
    const sid = await fingerprints.sourceId(source.name);
    if (sid === undefined) return client('nothing was sent for this source yet', true);
    if (mode === 'plan' && (await unmergedAcks(conn, fingerprints.schema, sid))) {
      return client('another sync of this source is running (or died) with acknowledgements not merged yet', true);
    }
    const columns = await describeColumns(conn, text, usesParameter, input.lastSyncAt, source.timezone);
    const names = columns.map((c) => c.name);
    // Duplicate or missing columns: the engine's read reports them the usual way.
    if (new Set(names).size !== names.length) return client('the query returns two columns with the same name', true);
    try {
      checkColumns('postgres', 'The result of the source query', names, mappedColumns(source));
    } catch {
      return client('the query lacks a mapped column', true);
    }
    if (names.some((n) => n === COL_RN || n === COL_FP || n === COL_KEY || n === COL_EFFECTS)) {
      return client(`the query returns a column named ${COL_RN}, ${COL_FP}, ${COL_KEY} or ${COL_EFFECTS}, which it needs for itself`, true);
    }
    if (columns.some((c) => c.type === 'record' || c.type === 'unknown')) {
      return client('a column of the query has no storable type', true);
    }
    const context = contextDigest(input, columns);
    const cache = mode === 'run' ? await fingerprints.prepare(source.name, context) : await fingerprints.usable(source.name, context);
    if (!cache) return client('no fingerprints are recorded for this source and spec yet; the next sync run records them', true);
    const schema = quoteIdent(fingerprints.schema);
    const allowed = await conn.query<{ ok: boolean }>(
      `SELECT has_table_privilege(${lit(`${schema}.snapshot_entries`)}, 'SELECT') AND has_table_privilege(${lit(`${schema}.sync_pending`)}, 'SELECT')
         AND has_table_privilege(${lit(cache.table)}, 'SELECT') AS ok`,
    );
    if (!allowed.rows[0]?.ok) return client("the source's connection may not read the state's tables", true);
    keep = true;
    return {
      path: 'warehouse',
      session: new WarehouseDiffSession(conn, fingerprints, { sid, table: cache.table, schema, text, usesParameter, columns, mode, input }),
    };
  } catch (e) {
    return client(`the warehouse could not be prepared for the diff: ${describeDatabaseError(e)}`, true);
  } finally {
    if (!keep) await conn.end().catch(() => {});
  }
}

const lit = (s: string): string => `'${s.replaceAll("'", "''")}'`;

async function connect(url: string, variable: string): Promise<pg.Client> {
  registerSecret(url);
  try {
    const password = new URL(url).password;
    if (password) registerSecret(decodeURIComponent(password));
  } catch {
    // Not a URL (a libpq key=value string): the whole value is registered already.
  }
  const conn = new (pgLibrary().Client)({ connectionString: url, application_name: 'tidemark', connectionTimeoutMillis: 30_000 });
  conn.on('error', () => {});
  try {
    await conn.connect();
  } catch (e) {
    await conn.end().catch(() => {});
    throw new ConnectorError('postgres', 'io', `Connecting to the database in ${variable} failed: ${describeDatabaseError(e)}`, { cause: e });
  }
  return conn;
}

/** Why the source's connection is not the state's database, or undefined when it is. */
async function sameDatabase(conn: pg.Client, fingerprints: FingerprintStore): Promise<string | undefined> {
  const theirs = (await conn.query<DatabaseIdentity>(IDENTITY_SQL, [fingerprints.schema])).rows[0];
  const ours = await fingerprints.identity();
  if (!theirs) return 'the source database could not be identified';
  if (theirs.database !== ours.database || theirs.databaseOid !== ours.databaseOid || theirs.serverStarted !== ours.serverStarted) {
    return 'the source and the state are in different databases, and a query cannot join across databases';
  }
  if (theirs.entriesOid === '' || theirs.entriesOid !== ours.entriesOid) return "the source's connection cannot see the state's tables";
  return undefined;
}

async function unmergedAcks(conn: pg.Client, schema: string, sid: number): Promise<boolean> {
  const s = quoteIdent(schema);
  const state = await conn.query<{ stage_state: string | null }>(`SELECT stage_state FROM ${s}.snapshot_sources WHERE sid = $1`, [sid]);
  if (state.rows[0]?.stage_state !== 'sealed') return false;
  const ack = `${s}.tm_stage_${sid}_ack`;
  const exists = await conn.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [ack]);
  if (!exists.rows[0]?.t) return false;
  return (await conn.query(`SELECT 1 FROM ${ack} LIMIT 1`)).rows.length > 0;
}

interface Column {
  name: string;
  oid: number;
  typmod: number;
  /** As `format_type` writes it, for the temporary table. */
  type: string;
}

/** The query's result columns and their types, from a run that returns no row. */
async function describeColumns(conn: pg.Client, text: string, usesParameter: boolean, lastSyncAt: Date | null, timezone: string | undefined): Promise<Column[]> {
  await conn.query('BEGIN READ ONLY');
  try {
    await session(conn, timezone);
    const result = await conn.query({ text: `SELECT * FROM (\n${text}\n) q LIMIT 0`, values: usesParameter ? [since(lastSyncAt)] : [] });
    const fields = result.fields;
    const types = await conn.query<{ t: string }>(
      'SELECT format_type(o, NULLIF(m, -1)) AS t FROM unnest($1::oid[], $2::int[]) WITH ORDINALITY AS c(o, m, i) ORDER BY i',
      [fields.map((f) => f.dataTypeID), fields.map((f) => f.dataTypeModifier)],
    );
    return fields.map((f, i) => ({ name: f.name, oid: f.dataTypeID, typmod: f.dataTypeModifier, type: types.rows[i]!.t }));
  } finally {
    await conn.query('ROLLBACK').catch(() => {});
  }
}

const since = (lastSyncAt: Date | null): string => (lastSyncAt ? lastSyncAt.toISOString() : '-infinity');

/** The connector's session (zone, date style), and no parallel plan, whose row order a cursor never sees. */
async function session(conn: pg.Client, timezone: string | undefined): Promise<void> {
  await conn.query(
    "SELECT set_config('TimeZone', $1, true), set_config('DateStyle', 'ISO, YMD', true), set_config('max_parallel_workers_per_gather', '0', true), set_config('work_mem', '256MB', true)",
    [timezone ?? 'UTC'],
  );
}

/** Everything a fingerprint's meaning depends on besides the row: another digest retires every fingerprint. */
function contextDigest(input: ChooseInput, columns: readonly Column[]): string {
  return sha256(
    canonicalJson({
      format: FINGERPRINT_FORMAT,
      tidemark: TIDEMARK_VERSION,
      source: input.source,
      fields: [...input.fields].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
      normalization: input.ctx.normalization,
      primary: input.ctx.primary,
      columns: columns.map((c) => [c.name, c.oid, c.typmod]),
    }),
  );
}

/** `[null_blocked, held_back, erased]` of a prepared row, as the cache keeps them; null when all are empty. */
export function effectsOf(p: Pick<PreparedRow, 'nullBlocked' | 'heldBack' | 'erased'>): string | null {
  return p.nullBlocked.length === 0 && p.heldBack.length === 0 && p.erased.length === 0 ? null : JSON.stringify([p.nullBlocked, p.heldBack, p.erased]);
}

/**
 * The run's in-memory diff, plus the rows the database skipped: each skipped key counts as one unchanged
 * row, and every further skipped row of it as a duplicate, unless it was offered to the diff itself.
 */
export class WarehouseRunDiff extends RunDiff {
  skippedRows = 0;
  skippedKeys = 0;
  replayedRows = 0;
  replayedKeys = 0;
  override counts(): RunDiffCounts {
    const c = super.counts();
    const keys = this.skippedKeys - this.replayedKeys;
    const rows = this.skippedRows - this.replayedRows;
    return { ...c, staged: c.staged + keys, unchanged: c.unchanged + keys, duplicates: c.duplicates + rows - keys };
  }
}

/** What the read needs from the run (the same parts the engine's own read gets). */
export interface WarehouseReadInput {
  deps: Pick<SyncDeps, 'store'>;
  source: SourceSpec;
  ctx: NormalizeContext;
  fields: ReadonlyMap<string, FieldDef>;
  heap: HeapGovernor;
  counts: SyncCounts;
  rejects: { write(record: Record<string, unknown>): void; check(): void };
  notes: Set<string>;
  opts: SyncOptions;
  sender: Sender | undefined;
  sample: { add(slot: number, key: string, cls: 'new' | 'changed', payload: Payload): void; withdraw(slot: number): void } | undefined;
  book: PendingBook;
}

interface SessionSetup {
  sid: number;
  table: string;
  schema: string;
  text: string;
  usesParameter: boolean;
  columns: Column[];
  mode: 'plan' | 'run';
  input: ChooseInput;
}

/** What the skipped rows of one key normalised to (they are offered to the diff at their positions). */
interface Skipped {
  hash: string;
  ordering: number | null;
}

/**
 * Positions of skipped rows still to offer, smallest first. Offered in position order among the rows that
 * cross the wire, not only among their own key's: the sender's batches are cut by the sequence of rows it
 * is given and withdrawn, so a displacement must come exactly where the engine's read would make it.
 */
class PositionQueue {
  private readonly rns: number[] = [];
  private readonly keys: string[] = [];
  get size(): number {
    return this.rns.length;
  }
  peek(): number {
    return this.rns[0] ?? Number.POSITIVE_INFINITY;
  }
  push(rn: number, key: string): void {
    let i = this.rns.length;
    this.rns.push(rn);
    this.keys.push(key);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.rns[parent]! <= rn) break;
      this.swap(i, parent);
      i = parent;
    }
  }
  pop(): string {
    const key = this.keys[0]!;
    const lastRn = this.rns.pop()!;
    const lastKey = this.keys.pop()!;
    if (this.rns.length > 0) {
      this.rns[0] = lastRn;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.rns.length && this.rns[l]! < this.rns[m]!) m = l;
        if (r < this.rns.length && this.rns[r]! < this.rns[m]!) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return key;
  }
  private swap(a: number, b: number): void {
    [this.rns[a], this.rns[b]] = [this.rns[b]!, this.rns[a]!];
    [this.keys[a], this.keys[b]] = [this.keys[b]!, this.keys[a]!];
  }
}

const bump = (m: Record<string, number>, k: string, n = 1) => {
  m[k] = (m[k] ?? 0) + n;
};

export class WarehouseDiffSession {
  readonly diff = new WarehouseRunDiff();
  private transferred = 0;
  private inTransaction = false;
  private readonly looked = new Set<string>();
  private readonly skipped = new Map<string, Skipped>();
  private readonly queue = new PositionQueue();
  private effects: Array<{ effects: string; n: number }> = [];
  /** No fingerprint to match (a first run, or a new context): the query is read straight, not materialised. */
  private direct = false;

  constructor(
    private readonly conn: pg.Client,
    private readonly fingerprints: FingerprintStore,
    private readonly setup: SessionSetup,
  ) {}

  /**
   * Materialises the source in the database, marking the rows it can skip, and loads what the diff needs
   * for the pending entries' keys (the PendingBook compares them with the snapshot's orderings).
   */
  async start(pendingKeys: readonly string[]): Promise<void> {
    const { conn, setup } = this;
    const { table, columns, usesParameter } = setup;
    try {
      // One snapshot for every statement of the read: the skipped rows, the lookups and the rows sent agree.
      await conn.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      this.inTransaction = true;
      await session(conn, setup.input.source.timezone);
      this.direct = !(await conn.query<{ any: boolean }>(`SELECT EXISTS (SELECT 1 FROM ${table} WHERE row_key <> '') AS any`)).rows[0]?.any;
      if (this.direct) {
        await conn.query('SET TRANSACTION READ ONLY');
        await this.lookup(pendingKeys);
        return;
      }
      const defs = columns.map((c) => `${quoteIdent(c.name)} ${c.type}`);
      // No index: building one over every skipped row cost more than the few lookups a run makes (hash joins).
      await conn.query(
        `CREATE TEMPORARY TABLE ${TEMP} (${COL_RN} bigint NOT NULL, ${COL_FP} text, ${COL_KEY} text, ${COL_EFFECTS} text${defs.length ? `, ${defs.join(', ')}` : ''}) ON COMMIT DROP`,
      );
      // From here on the source query runs as the connector runs it: it can write nothing but this table.
      await conn.query('SET TRANSACTION READ ONLY');
      const values = usesParameter ? [since(setup.input.lastSyncAt)] : [];
      await conn.query({ text: this.materialise(false), values });
      // A fingerprint recorded under two keys (which one normalisation cannot give) would have doubled rows
      // in the join: positions then repeat. Should it ever happen, the read is made again without such ones.
      const check = await conn.query<{ ok: boolean }>(`SELECT count(*) = COALESCE(max(${COL_RN}), 0) AS ok FROM ${TEMP}`);
      if (!check.rows[0]?.ok) {
        await conn.query(`DELETE FROM ${TEMP}`);
        await conn.query({ text: this.materialise(true), values });
      }
      // Per null-policy outcome: the skipped rows, and their keys (a key's rows are one raw row, repeated).
      const groups = await conn.query<{ effects: string | null; n: number; k: number }>(
        `SELECT effects, sum(c)::float8 AS n, count(*)::float8 AS k FROM (
           SELECT min(${COL_EFFECTS}) AS effects, count(*) AS c FROM ${TEMP} WHERE ${COL_KEY} IS NOT NULL GROUP BY ${COL_KEY}) g
         GROUP BY effects`,
      );
      for (const g of groups.rows) {
        this.diff.skippedRows += g.n;
        this.diff.skippedKeys += g.k;
        if (g.effects !== null) this.effects.push({ effects: g.effects, n: g.n });
      }
      await this.lookup(pendingKeys);
    } catch (e) {
      throw new ConnectorError('postgres', 'query', `The source query failed: ${describeDatabaseError(e)}`, { cause: e });
    }
  }

  /**
   * The statement that materialises the query: each row's position and fingerprint, and for a row known
   * unchanged its key and null-policy counts instead of its columns. `guarded` leaves out fingerprints
   * recorded under more than one key.
   */
  private materialise(guarded: boolean): string {
    const { schema, sid, table, columns, text } = this.setup;
    const valid = `SELECT p.fp, p.row_key, p.effects FROM ${table} p
      JOIN ${schema}.snapshot_entries e ON e.sid = ${sid} AND e.row_key = p.row_key AND e.hash = p.hash
      WHERE p.row_key <> '' AND p.row_key NOT IN (SELECT w.row_key FROM ${schema}.sync_pending w WHERE w.sid = ${sid})`;
    const skip = guarded ? `SELECT fp, min(row_key) AS row_key, min(effects) AS effects FROM (${valid}) v GROUP BY fp HAVING count(*) = 1` : valid;
    const sourceColumns = columns.map((c) => `CASE WHEN f.row_key IS NULL THEN s.${quoteIdent(c.name)} END`);
    return `INSERT INTO ${TEMP}
      SELECT s.${COL_RN}, CASE WHEN f.row_key IS NULL THEN s.${COL_FP} END, f.row_key, f.effects${sourceColumns.length ? `, ${sourceColumns.join(', ')}` : ''}
      FROM (SELECT row_number() OVER () AS ${COL_RN}, md5(q::text) AS ${COL_FP}, q.* FROM (\n${text}\n) q) s
      LEFT JOIN (${skip}) f ON f.fp = s.${COL_FP}`;
  }

  /** Loads the snapshot entries of keys not looked up yet into the diff, and the skipped rows sharing them. */
  private async lookup(keys: readonly string[]): Promise<void> {
    const fresh = [...new Set(keys)].filter((k) => !this.looked.has(k));
    if (fresh.length === 0) return;
    for (const k of fresh) this.looked.add(k);
    const { schema, sid, table } = this.setup;
    // The entries by their primary key; what the skipped rows of these keys normalised to, by the cache's.
    const found = await this.conn.query<{ key: string; hash: string | null; ordering: number | null; fp_hash: string | null; fp_ordering: number | null }>(
      `SELECT k.key, e.hash, e.ordering::float8 AS ordering, p.hash AS fp_hash, p.ordering::float8 AS fp_ordering
       FROM unnest($1::text[]) AS k(key)
       LEFT JOIN ${schema}.snapshot_entries e ON e.sid = ${sid} AND e.row_key = k.key
       LEFT JOIN ${table} p ON p.row_key = k.key
       WHERE e.hash IS NOT NULL`,
      [fresh],
    );
    for (const r of found.rows) this.diff.load(r.key, r.hash!, r.ordering);
    if (this.direct) return;
    // The skipped rows sharing these keys: one pass over the table (`= ANY` of a long array is hashed).
    const siblings = await this.conn.query<{ key: string; rns: number[] }>(
      `SELECT ${COL_KEY} AS key, array_agg(${COL_RN}::float8 ORDER BY ${COL_RN}) AS rns FROM ${TEMP} WHERE ${COL_KEY} = ANY($1::text[]) GROUP BY ${COL_KEY}`,
      [fresh],
    );
    if (siblings.rows.length === 0) return;
    const recorded = new Map(found.rows.map((r) => [r.key, r]));
    for (const { key, rns } of siblings.rows) {
      const r = recorded.get(key);
      // A skipped row had a valid fingerprint, so its key has an entry and a cache row.
      if (!r || r.fp_hash === null) throw new ConnectorError('postgres', 'query', 'The warehouse skipped a row whose fingerprint it no longer finds.');
      this.skipped.set(key, { hash: r.fp_hash, ordering: r.fp_ordering });
      for (const rn of rns) this.queue.push(rn, key);
      this.diff.replayedRows += rns.length;
      this.diff.replayedKeys++;
    }
  }


  /** Reads the rows that cross the wire and diffs them with the skipped ones; false when sending stopped the read early. */
  async read(input: WarehouseReadInput): Promise<boolean> {
    const { source, ctx, fields, heap, counts, rejects, notes, opts, sender, sample, book } = input;
    const { conn } = this;
    const pageSize = this.direct ? PAGE_SIZE.direct : PAGE_SIZE.materialised;
    const normalizeRow = createNormalizer(ctx);
    const events = source.records === 'event';
    const record = this.setup.mode === 'run';
    counts.read += this.diff.skippedRows;
    for (const { effects, n } of this.effects) {
      const [blocked, held, erased] = JSON.parse(effects) as [string[], string[], string[]];
      for (const f of blocked) bump(counts.null_blocked, f, n);
      for (const f of held) bump(counts.held_back, f, n);
      for (const f of erased) bump(counts.erased, f, n);
    }
    const offerSkipped = (upTo: number) => {
      while (this.queue.size > 0 && this.queue.peek() < upTo) {
        const key = this.queue.pop();
        const s = this.skipped.get(key)!;
        // A skipped row has its key's snapshot hash: unchanged, never sent; it may still displace a row read before it.
        const offer = this.diff.offer(key, s.hash, s.ordering);
        if (offer.verdict === 'duplicate' || !offer.displaced) continue;
        if (sender) sender.withdraw(offer.slot);
        else sample?.withdraw(offer.slot);
      }
    };
    const { text, usesParameter } = this.setup;
    try {
      await conn.query(
        this.direct
          ? {
              text: `DECLARE ${CURSOR} NO SCROLL CURSOR FOR
                SELECT row_number() OVER () AS ${COL_RN}, md5(q::text) AS ${COL_FP}, NULL::text AS ${COL_KEY}, NULL::text AS ${COL_EFFECTS}, q.* FROM (\n${text}\n) q`,
              values: usesParameter ? [since(this.setup.input.lastSyncAt)] : [],
            }
          : { text: `DECLARE ${CURSOR} NO SCROLL CURSOR FOR SELECT * FROM ${TEMP} WHERE ${COL_KEY} IS NULL ORDER BY ${COL_RN}` },
      );
    } catch (e) {
      throw new ConnectorError('postgres', 'query', `The source query failed: ${describeDatabaseError(e)}`, { cause: e });
    }
    for (;;) {
      opts.signal?.throwIfAborted();
      let page: pg.QueryResult;
      try {
        page = await conn.query({ text: `FETCH FORWARD ${pageSize} FROM ${CURSOR}`, types: typeParsers });
      } catch (e) {
        throw new ConnectorError('postgres', 'query', `Reading the source query's rows failed: ${describeDatabaseError(e)}`, { cause: e });
      }
      if (page.rows.length === 0) break;
      this.transferred += page.rows.length;
      heap.check();
      const rows: Array<{ rn: number; fp: string; row: SourceRow }> = (page.rows as Record<string, unknown>[]).map((r) => {
        const { [COL_RN]: rn, [COL_FP]: fp, [COL_KEY]: _key, [COL_EFFECTS]: _effects, ...values } = r;
        return { rn: Number(rn), fp: String(fp), row: { location: `query row ${rn}`, values } };
      });
      const ok: Array<{ n: NormalizedRow; rn: number; fp: string }> = [];
      for (const { rn, fp, row } of rows) {
        counts.read++;
        const n = normalizeRow(row);
        if (!n.ok) {
          counts.rejected++;
          bump(counts.rejected_by_code, n.code);
          rejects.write({ location: n.location, code: n.code, reason: n.reason, ...(n.column ? { column: n.column } : {}), ...(n.field ? { field: n.field } : {}) });
          continue;
        }
        if (n.notes) for (const note of n.notes) notes.add(note);
        ok.push({ n, rn, fp });
      }
      await this.lookup(ok.map((o) => o.n.key));
      const lookups: string[] = [];
      for (const { n } of ok) if ((n.blanks.length > 0 || n.absent !== undefined) && !events && this.diff.inSnapshot(n.key)) lookups.push(n.key);
      const previous = lookups.length > 0 ? await input.deps.store.getSnapshotPayloads(source.name, lookups) : undefined;
      const remember: FingerprintRow[] = [];
      for (const { n, rn, fp } of ok) {
        const before = previous?.get(n.key);
        const p = prepareRow(n, source, fields, before === undefined ? undefined : readPayload(before));
        // A row with blanks whose key has an entry without a payload would count its blanks differently once acknowledged.
        const unsure = before === undefined && (n.blanks.length > 0 || n.absent !== undefined) && !events && this.diff.inSnapshot(n.key);
        if (record && !n.notes && !unsure) remember.push(fingerprintOf(n, p, fp, source, fields, events));
        offerSkipped(rn);
        if (!book.admit(p.key, p.ordering)) {
          counts.behind_pending++;
          continue;
        }
        for (const f of p.nullBlocked) bump(counts.null_blocked, f);
        for (const f of p.heldBack) bump(counts.held_back, f);
        for (const f of p.erased) bump(counts.erased, f);
        const offer = this.diff.offer(p.key, p.hash, p.ordering);
        if (offer.verdict === 'duplicate') continue;
        const wanted = offer.verdict === 'new' || (offer.verdict === 'changed' && !events) || (offer.verdict === 'unchanged' && book.superseded.has(p.key));
        if (sender) {
          if (offer.displaced) sender.withdraw(offer.slot);
          if (wanted) await sender.add(offer.slot, p, n.location);
        } else if (sample) {
          if (offer.displaced) sample.withdraw(offer.slot);
          if (offer.verdict === 'new' || offer.verdict === 'changed') sample.add(offer.slot, p.key, offer.verdict, p.payload);
        }
      }
      if (remember.length > 0) await this.remember(source.name, remember, notes);
      opts.onProgress?.({ phase: 'reading', done: counts.read });
      if (sender?.stopped) {
        sender.stoppedEarly = true;
        return false;
      }
      rejects.check();
      if (page.rows.length < pageSize) break;
    }
    // Skipped rows after the last row that crossed the wire.
    offerSkipped(Number.POSITIVE_INFINITY);
    await this.recording;
    // Nothing more is read: end the snapshot now rather than hold it open while the run sends and merges.
    await this.endTransaction();
    return true;
  }

  report(): DiffPathReport {
    return { in: 'warehouse', rows_read: this.diff.skippedRows + this.transferred, rows_transferred: this.transferred };
  }

  private recording: Promise<void> = Promise.resolve();
  private recordFailed = false;

  /**
   * Records a chunk's fingerprints while the next chunk is read (one write in flight). A cache write that
   * fails costs only later runs a read of those rows: the run goes on, says so, and records no more.
   */
  private async remember(source: string, rows: FingerprintRow[], notes: Set<string>): Promise<void> {
    await this.recording;
    if (this.recordFailed) return;
    this.recording = this.fingerprints.record(source, rows).catch((e: unknown) => {
      this.recordFailed = true;
      notes.add(`row fingerprints could not be recorded (${describeDatabaseError(e)}); the next run reads those rows again`);
    });
  }

  private async endTransaction(): Promise<void> {
    if (!this.inTransaction) return;
    this.inTransaction = false;
    // Read only but for the temporary table, which the end of the transaction drops.
    await this.conn.query('ROLLBACK').catch(() => {});
  }

  async close(): Promise<void> {
    await this.endTransaction();
    await this.conn.end().catch(() => {});
  }
}

/**
 * What a row that crossed the wire is recorded as: its key, hash and ordering, and its null-policy counts
 * as the engine will count them next time, against the payload this row's acknowledgement leaves in the
 * snapshot (the engine reads no previous payload for events, so theirs are this run's).
 */
function fingerprintOf(n: NormalizedRow, p: PreparedRow, fp: string, source: SourceSpec, fields: ReadonlyMap<string, FieldDef>, events: boolean): FingerprintRow {
  const blanks = n.blanks.length > 0 || n.absent !== undefined;
  const steady = !blanks || events ? p : prepareRow(n, source, fields, p.payload);
  return { key: p.key, fp, hash: p.hash, ordering: p.ordering, effects: blanks ? effectsOf(steady) : null };
}
