/**
 * Per-source snapshots: what was last sent (and acknowledged) for each key, and the ack sessions that
 * advance them.
 *
 * Built for a million rows within a small memory budget, every step is set-oriented SQL; no step holds
 * more than one batch or page in JS:
 * - the sync engine diffs in memory against `readSnapshotIndex` (keys, hashes and orderings in keyset
 *   pages; no payloads) and fetches the few payloads it needs with `getSnapshotPayloads`;
 * - an ack session appends acknowledged keys, with their values, to the session's ack log: durable at
 *   once, and cheap because it is an append. Applying acks one batch at a time to the snapshot would
 *   rewrite random pages of a million-row B-tree on every batch (measured: ~170 s for a first sync of 1M
 *   rows acknowledged 1,000 at a time); the ack log is merged into the snapshot in one sorted pass when
 *   the session closes, or, after a crash, when the source's next session opens. A writer with few
 *   acknowledgements against a large snapshot may ask `record` to merge each batch in its own transaction
 *   instead (`apply`): the batches share few pages, so that writes no more, and it happens while the run
 *   still reads rather than after.
 *
 * The ack log is a per-source table (`tm_stage_<sid>_ack`), created by the session and dropped by its
 * `close` or by the next session of the same source; it is never part of the migrated schema. It is
 * logged on Postgres too: it is the only record of what the remote side acknowledged until it is merged.
 * (The staging session that once diffed in SQL is gone; its table names, and the `snapshot_sources`
 * columns it used, stay as they were so that states written by earlier versions open as before.)
 */
import type { Clock } from '../core/clock.ts';
import { InternalError } from '../core/diagnostics.ts';
import { StateError } from './errors.ts';
import { newId } from './ids.ts';
import { forgetMirrorOf, lockSourceForWrite, logChangedKeys } from './snapshot-changes.ts';
import type { SqlDriver, SqlValue } from './sql/executor.ts';
import type { AckedRow, PendingEntry, SnapshotAckSession, SnapshotEntry, SnapshotIndexEntry } from './types.ts';

/** Rows per INSERT statement (at most 7 parameters each; far below both engines' parameter limits). */
const ROWS_PER_STATEMENT = 500;
/** Keys per commit statement. */
const KEYS_PER_COMMIT = 500;
const DEFAULT_PAGE_SIZE = 1_000;

interface SnapshotContext {
  db: SqlDriver;
  env: string;
  clock: Clock;
}

interface SourceRow {
  sid: number;
  stage_token: string | null;
  stage_state: string | null;
}

export async function findSourceId(ctx: SnapshotContext, source: string): Promise<number | undefined> {
  const row = await ctx.db.get<{ sid: number }>('SELECT sid FROM snapshot_sources WHERE env = $1 AND source = $2', [ctx.env, source]);
  return row?.sid;
}

/**
 * The source's numeric id, allocating one if needed. Ids are small integers (they name the session's
 * tables); two processes allocating at once collide on the primary key, and the loser retries.
 */
async function ensureSourceId(ctx: SnapshotContext, source: string): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const existing = await findSourceId(ctx, source);
    if (existing !== undefined) return existing;
    try {
      // Its own (sub)transaction: on Postgres a failed statement poisons the enclosing transaction.
      await ctx.db.transaction(() =>
        ctx.db.run(
          `INSERT INTO snapshot_sources (sid, env, source)
           SELECT COALESCE(MAX(sid), 0) + 1, CAST($1 AS TEXT), CAST($2 AS TEXT) FROM snapshot_sources`,
          [ctx.env, source],
        ),
      );
    } catch (e) {
      if (!ctx.db.isUniqueViolation(e)) throw e;
    }
  }
  throw new InternalError(`could not allocate a snapshot id for source ${source}`);
}

/** `stage` and `diff` are only ever dropped: a staging session of an earlier version may have left them. */
interface SessionTables {
  stage: string;
  diff: string;
  ack: string;
}

function sessionTables(sid: number): SessionTables {
  if (!Number.isSafeInteger(sid) || sid <= 0) throw new InternalError(`bad snapshot source id ${sid}`);
  return { stage: `tm_stage_${sid}`, diff: `tm_stage_${sid}_diff`, ack: `tm_stage_${sid}_ack` };
}

async function dropSessionTables(db: SqlDriver, t: SessionTables): Promise<void> {
  await db.exec(`DROP TABLE IF EXISTS ${t.ack}; DROP TABLE IF EXISTS ${t.diff}; DROP TABLE IF EXISTS ${t.stage};`);
}

/**
 * The snapshot's generation: an opaque token in the `cursors` table, replaced in the same transaction as
 * every change this module makes to a source's snapshot entries (a merge that applied at least one
 * acknowledgement), and deleted with the snapshot. A copy of the snapshot's index kept outside the store
 * (the sync engine's index file) is valid exactly while the generation it was taken at is current. Tokens
 * are fresh ids, never counters, so a state rebuilt from scratch can never meet an old copy's token.
 */
export function generationCursor(source: string): string {
  return `sync.${source}.snapshot_generation`;
}

async function setGeneration(ctx: SnapshotContext, source: string): Promise<string> {
  const token = newId(ctx.clock);
  const at = ctx.clock.now().toISOString();
  await ctx.db.run(
    `INSERT INTO cursors (env, name, value, updated_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (env, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
    [ctx.env, generationCursor(source), token, at],
  );
  return token;
}

/** The current generation of the source's snapshot; undefined when none was recorded yet. */
export async function snapshotGeneration(ctx: SnapshotContext, source: string): Promise<string | undefined> {
  const row = await ctx.db.get<{ value: string }>('SELECT value FROM cursors WHERE env = $1 AND name = $2', [ctx.env, generationCursor(source)]);
  return row?.value;
}

/**
 * Applies a session's ack log to the snapshot, in key order so each snapshot page is written once.
 * Per key the latest acknowledgement wins (highest `seq`; the log of an earlier version's staging session
 * carries none, and removals, and only ever acknowledges a key's one staged value). Idempotent: merging
 * the same log twice leaves the same snapshot. `eachKeyOnce` (the session's writer vouches that no key is
 * in the log twice): the log already is each key's latest, and is read as it is.
 */
async function mergeAcks(ctx: SnapshotContext, source: string, sid: number, t: SessionTables, eachKeyOnce = false, known?: LogCounts): Promise<void> {
  const db = ctx.db;
  const picked = `${t.ack}_latest`;
  const latest = eachKeyOnce ? t.ack : picked;
  await lockSourceForWrite(db, sid);
  await db.exec(`DROP TABLE IF EXISTS ${picked}`);
  if (!eachKeyOnce) {
    await db.exec(
      `CREATE TABLE ${picked} AS SELECT row_key, hash, ordering, payload, removed, sent_at FROM (
         SELECT row_key, hash, ordering, payload, removed, sent_at,
           ROW_NUMBER() OVER (PARTITION BY row_key ORDER BY COALESCE(seq, 0) DESC, sent_at DESC) AS rn FROM ${t.ack}) l
       WHERE rn = 1`,
    );
  }
  // Logged before the payloads are replaced: the log keeps the payload the mirror was built from.
  await logChangedKeys(db, ctx.env, sid, `SELECT row_key FROM ${latest}`);
  await db.run(
    `INSERT INTO snapshot_entries (sid, row_key, hash, ordering, sent_at)
     SELECT CAST($1 AS INTEGER), row_key, hash, ordering, sent_at FROM ${latest}
     WHERE removed = 0 ORDER BY row_key
     ON CONFLICT (sid, row_key) DO UPDATE SET hash = excluded.hash, ordering = excluded.ordering, sent_at = excluded.sent_at`,
    [sid],
  );
  await db.run(
    `INSERT INTO snapshot_payloads (sid, row_key, payload)
     SELECT CAST($1 AS INTEGER), row_key, payload FROM ${latest}
     WHERE removed = 0 AND payload IS NOT NULL ORDER BY row_key
     ON CONFLICT (sid, row_key) DO UPDATE SET payload = excluded.payload`,
    [sid],
  );
  // One pass counts what the two deletes look for: a first run has none, and each delete read every
  // acknowledgement to find that out (1,000,000: 0.27 s and 0.25 s, besides 0.2 s for the count). The
  // session that wrote the log knows the counts (at most), and a first run is spared the pass too.
  const found =
    known ??
    (await db.get<LogCounts>(
      `SELECT COUNT(*) AS n, COALESCE(SUM(CASE WHEN removed = 1 THEN 1 ELSE 0 END), 0) AS removed,
         COALESCE(SUM(CASE WHEN removed = 1 OR payload IS NULL THEN 1 ELSE 0 END), 0) AS bare FROM ${latest}`,
    ));
  // A row sent without a payload leaves no mirror: drop the previous one rather than keep stale data.
  if (Number(found?.bare ?? 0) > 0) {
    await db.run(
      `DELETE FROM snapshot_payloads WHERE sid = $1 AND row_key IN (SELECT row_key FROM ${latest} WHERE removed = 1 OR payload IS NULL)`,
      [sid],
    );
  }
  if (Number(found?.removed ?? 0) > 0) {
    await db.run(`DELETE FROM snapshot_entries WHERE sid = $1 AND row_key IN (SELECT row_key FROM ${latest} WHERE removed = 1)`, [sid]);
  }
  if (!eachKeyOnce) await db.exec(`DROP TABLE ${picked}`);
  if (Number(found?.n ?? 0) > 0) await setGeneration(ctx, source);
}

/**
 * What a merge needs to know of the log: its rows, its removals, and its rows without a payload (removals
 * included). Upper bounds will do: a count too high costs a delete that finds nothing, or a new generation.
 */
interface LogCounts {
  n: number;
  removed: number;
  bare: number;
}

/** The ack log: every acknowledgement with the values it acknowledged, so the log alone can rebuild entries. */
function ackTableSql(t: SessionTables): string {
  return `CREATE TABLE ${t.ack} (row_key TEXT NOT NULL, hash TEXT, ordering BIGINT, payload TEXT, removed INTEGER NOT NULL, sent_at TEXT NOT NULL, seq BIGINT)`;
}

/**
 * Makes a new ack session the source's current one: applies what an unfinished earlier session
 * acknowledged (a crash, a kill), drops its tables, and records the new session's token. A session whose
 * ack log may hold acknowledgements is recorded as `sealed`, the state earlier versions gave it too.
 */
async function beginSession(ctx: SnapshotContext, source: string, sid: number, token: string): Promise<void> {
  const t = sessionTables(sid);
  await ctx.db.transaction(async () => {
    const previous = await ctx.db.get<SourceRow>('SELECT sid, stage_token, stage_state FROM snapshot_sources WHERE sid = $1', [sid]);
    // A session that never closed may hold acknowledgements: keep them.
    if (previous?.stage_state === 'sealed') await mergeAcks(ctx, source, sid, t);
    // A snapshot written before generations existed gets one, so copies of its index can be kept too.
    if ((await snapshotGeneration(ctx, source)) === undefined) await setGeneration(ctx, source);
    await dropSessionTables(ctx.db, t);
    await ctx.db.run(
      `UPDATE snapshot_sources SET stage_token = $2, stage_state = 'sealed', stage_counts = NULL, staged_at = $3 WHERE sid = $1`,
      [sid, token, ctx.clock.now().toISOString()],
    );
    await ctx.db.exec(ackTableSql(t));
  });
}

/** Fails unless the session holding `token` is still the source's current one. */
async function assertCurrentSession(ctx: SnapshotContext, sid: number, source: string, token: string): Promise<void> {
  const row = await ctx.db.get<{ stage_token: string | null }>('SELECT stage_token FROM snapshot_sources WHERE sid = $1 AND env = $2 AND source = $3', [
    sid,
    ctx.env,
    source,
  ]);
  if (row?.stage_token !== token) {
    throw new StateError('STATE007', `The sending session for source ${source} was superseded by a newer one (another sync of the same source?).`);
  }
}

/**
 * Applies a session's acknowledgements and drops its tables, unless a newer session took over (it merged
 * them). Returns the snapshot's generation after the merge, or undefined when another session took over.
 */
async function endSession(ctx: SnapshotContext, source: string, sid: number, token: string, eachKeyOnce: boolean, known: LogCounts): Promise<string | undefined> {
  const t = sessionTables(sid);
  return ctx.db.transaction(async () => {
    const row = await ctx.db.get<{ stage_token: string | null }>('SELECT stage_token FROM snapshot_sources WHERE sid = $1', [sid]);
    if (row?.stage_token !== token) return undefined;
    await mergeAcks(ctx, source, sid, t, eachKeyOnce, known);
    await dropSessionTables(ctx.db, t);
    await ctx.db.run('UPDATE snapshot_sources SET stage_token = NULL, stage_state = NULL, stage_counts = NULL WHERE sid = $1', [sid]);
    return snapshotGeneration(ctx, source);
  });
}

function checkRow(row: AckedRow): void {
  if (typeof row.key !== 'string' || row.key.length === 0) throw new InternalError('acknowledged row without a key');
  if (typeof row.hash !== 'string' || row.hash.length === 0) throw new InternalError(`acknowledged row ${row.key} without a hash`);
  if (row.ordering !== undefined && row.ordering !== null && !Number.isSafeInteger(row.ordering)) {
    throw new InternalError(`acknowledged row ${row.key} has ordering ${row.ordering}; orderings are integers (epoch ms for timestamps)`);
  }
  if (row.payload !== undefined && row.payload !== null && typeof row.payload !== 'string') {
    throw new InternalError(`acknowledged row ${row.key} has a non-text payload`);
  }
}

const insertCache = new Map<string, string>();

/** `INSERT INTO table (columns) VALUES (…), …` for `rows` rows of one placeholder per column, cached. */
function insertSql(table: string, columns: readonly string[], rows: number): string {
  const cacheKey = `${table}(${columns.join(',')})${rows}`;
  let sql = insertCache.get(cacheKey);
  if (!sql) {
    const w = columns.length;
    const values: string[] = [];
    for (let i = 0; i < rows; i++) values.push(`(${columns.map((_, c) => `$${i * w + c + 1}`).join(', ')})`);
    sql = `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${values.join(', ')}`;
    insertCache.set(cacheKey, sql);
  }
  return sql;
}

/** Inserts rows `ROWS_PER_STATEMENT` at a time; `toValues` gives one row's values in column order. */
async function insertRows<T>(db: SqlDriver, table: string, columns: readonly string[], rows: readonly T[], toValues: (row: T) => SqlValue[]): Promise<void> {
  const w = columns.length;
  for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
    const n = Math.min(ROWS_PER_STATEMENT, rows.length - i);
    const params: SqlValue[] = new Array<SqlValue>(n * w);
    for (let j = 0; j < n; j++) {
      const values = toValues(rows[i + j]!);
      for (let c = 0; c < w; c++) params[j * w + c] = values[c]!;
    }
    await db.run(insertSql(table, columns, n), params);
  }
}

const ACK_COLUMNS = ['row_key', 'hash', 'ordering', 'payload', 'removed', 'sent_at', 'seq'] as const;

function placeholders(from: number, count: number): string {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(`$${from + i}`);
  return out.join(', ');
}

/** See SnapshotAckSession. The token says whether the session is still the source's current one. */
export class AckSession implements SnapshotAckSession {
  private closed = false;
  private seq = 0;
  /**
   * Acknowledgements this session may have left in its log (not applied by `record`), and those of them
   * without a payload: upper bounds (a commit that failed counts). This writer logs no removals.
   */
  private logged = 0;
  private bare = 0;
  private readonly t: SessionTables;

  private constructor(
    private readonly ctx: SnapshotContext,
    readonly source: string,
    private readonly sid: number,
    private readonly token: string,
  ) {
    this.t = sessionTables(sid);
  }

  static async open(ctx: SnapshotContext, source: string): Promise<AckSession> {
    const sid = await ensureSourceId(ctx, source);
    const token = newId(ctx.clock);
    await beginSession(ctx, source, sid, token);
    return new AckSession(ctx, source, sid, token);
  }

  private assertCurrent(): Promise<void> {
    return assertCurrentSession(this.ctx, this.sid, this.source, this.token);
  }

  async append(rows: readonly AckedRow[]): Promise<number> {
    if (this.closed) throw new StateError('STATE007', `Cannot append to the ack session of ${this.source}: it is closed.`);
    for (const r of rows) checkRow(r);
    if (rows.length === 0) return 0;
    this.count(rows);
    const sentAt = this.ctx.clock.now().toISOString();
    await this.ctx.db.transaction(async () => {
      await this.assertCurrent();
      await insertRows(this.ctx.db, this.t.ack, ACK_COLUMNS, rows, (r) => [r.key, r.hash, r.ordering ?? null, r.payload ?? null, 0, sentAt, ++this.seq]);
    });
    return rows.length;
  }

  async record(outcome: { acknowledged: readonly AckedRow[]; pending?: readonly PendingEntry[]; settled?: readonly string[] }, opts: { apply?: boolean } = {}): Promise<void> {
    if (this.closed) throw new StateError('STATE007', `Cannot record outcomes in the ack session of ${this.source}: it is closed.`);
    const acked = outcome.acknowledged;
    const apply = opts.apply === true && acked.length > 0;
    // Each key once in the log about to be merged: nothing logged before by this session (what a failed
    // commit may have left counts), and no key twice in the batch.
    const once = apply && this.logged === 0 && new Set(acked.map((r) => r.key)).size === acked.length;
    this.count(acked);
    for (const r of acked) checkRow(r);
    // One row per key and statement (Postgres refuses an upsert that touches a row twice): the last wins.
    const pending = [...new Map((outcome.pending ?? []).map((p) => [p.key, p])).values()];
    for (const p of pending) checkPending(p);
    const settled = [...new Set(outcome.settled ?? [])];
    if (acked.length === 0 && pending.length === 0 && settled.length === 0) return;
    const { db, clock } = this.ctx;
    const at = clock.now().toISOString();
    await db.transaction(async () => {
      await this.assertCurrent();
      if (acked.length > 0) await insertRows(db, this.t.ack, ACK_COLUMNS, acked, (r) => [r.key, r.hash, r.ordering ?? null, r.payload ?? null, 0, at, ++this.seq]);
      for (let i = 0; i < settled.length; i += KEYS_PER_COMMIT) {
        const chunk = settled.slice(i, i + KEYS_PER_COMMIT);
        await db.run(`DELETE FROM sync_pending WHERE sid = $1 AND row_key IN (${placeholders(2, chunk.length)})`, [this.sid, ...chunk]);
      }
      for (let i = 0; i < pending.length; i += ROWS_PER_STATEMENT) {
        const chunk = pending.slice(i, i + ROWS_PER_STATEMENT);
        const params: SqlValue[] = [];
        for (const p of chunk) params.push(this.sid, p.key, p.hash, p.ordering, p.payload, p.location, p.reason, at);
        await db.run(
          `${insertSql('sync_pending', PENDING_COLUMNS, chunk.length)}
           ON CONFLICT (sid, row_key) DO UPDATE SET hash = excluded.hash, ordering = excluded.ordering, payload = excluded.payload,
             location = excluded.location, reason = excluded.reason, queued_at = excluded.queued_at`,
          params,
        );
      }
      if (apply) {
        await mergeAcks(this.ctx, this.source, this.sid, this.t, once, this.counts());
        await db.run(`DELETE FROM ${this.t.ack}`);
      }
    });
    if (apply) this.logged = this.bare = 0;
  }

  private count(rows: readonly AckedRow[]): void {
    this.logged += rows.length;
    for (const r of rows) if (r.payload === undefined || r.payload === null) this.bare++;
  }

  private counts(): LogCounts {
    return { n: this.logged, removed: 0, bare: this.bare };
  }

  generation: string | undefined;

  async close(opts: { eachKeyOnce?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.generation = await endSession(this.ctx, this.source, this.sid, this.token, opts.eachKeyOnce === true, this.counts());
  }
}

const PENDING_COLUMNS = ['sid', 'row_key', 'hash', 'ordering', 'payload', 'location', 'reason', 'queued_at'] as const;

function checkPending(p: PendingEntry): void {
  checkRow(p);
  if (typeof p.payload !== 'string') throw new InternalError(`pending entry ${p.key} without a payload`);
  if (typeof p.location !== 'string' || typeof p.reason !== 'string' || p.reason === '') throw new InternalError(`pending entry ${p.key} without a location or reason`);
}

interface PendingDbRow {
  row_key: string;
  hash: string;
  ordering: number | null;
  payload: string;
  location: string;
  reason: string;
}

export async function readPending(ctx: SnapshotContext, source: string): Promise<PendingEntry[]> {
  const sid = await findSourceId(ctx, source);
  if (sid === undefined) return [];
  const rows = await ctx.db.all<PendingDbRow>(
    'SELECT row_key, hash, ordering, payload, location, reason FROM sync_pending WHERE sid = $1 ORDER BY row_key',
    [sid],
  );
  return rows.map((r) => ({ key: r.row_key, hash: r.hash, ordering: r.ordering, payload: r.payload, location: r.location, reason: r.reason }));
}

export async function countPending(ctx: SnapshotContext, source: string): Promise<number> {
  const sid = await findSourceId(ctx, source);
  if (sid === undefined) return 0;
  return (await ctx.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM sync_pending WHERE sid = $1', [sid]))?.n ?? 0;
}

interface EntryDbRow {
  row_key: string;
  hash: string;
  ordering: number | null;
  sent_at: string;
  payload: string | null;
}

function snapshotEntryOf(r: EntryDbRow): SnapshotEntry {
  return { key: r.row_key, hash: r.hash, ordering: r.ordering, sentAt: r.sent_at, payload: r.payload };
}

const ENTRY_SELECT = `SELECT e.row_key, e.hash, e.ordering, e.sent_at, p.payload
  FROM snapshot_entries e LEFT JOIN snapshot_payloads p ON p.sid = e.sid AND p.row_key = e.row_key`;

export async function getSnapshotEntry(ctx: SnapshotContext, source: string, key: string): Promise<SnapshotEntry | undefined> {
  const sid = await findSourceId(ctx, source);
  if (sid === undefined) return undefined;
  const row = await ctx.db.get<EntryDbRow>(`${ENTRY_SELECT} WHERE e.sid = $1 AND e.row_key = $2`, [sid, key]);
  return row ? snapshotEntryOf(row) : undefined;
}

export async function countSnapshot(ctx: SnapshotContext, source: string): Promise<number> {
  const sid = await findSourceId(ctx, source);
  if (sid === undefined) return 0;
  return (await ctx.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM snapshot_entries WHERE sid = $1', [sid]))?.n ?? 0;
}

export async function* iterateSnapshot(
  ctx: SnapshotContext,
  source: string,
  opts: { pageSize?: number } = {},
): AsyncIterableIterator<SnapshotEntry> {
  const pageSize = opts.pageSize ?? DEFAULT_PAGE_SIZE;
  if (!Number.isSafeInteger(pageSize) || pageSize <= 0) throw new RangeError(`pageSize must be a positive integer, got ${pageSize}`);
  const sid = await findSourceId(ctx, source);
  if (sid === undefined) return;
  let after: string | undefined;
  for (;;) {
    const rows =
      after === undefined
        ? await ctx.db.all<EntryDbRow>(`${ENTRY_SELECT} WHERE e.sid = $1 ORDER BY e.row_key LIMIT $2`, [sid, pageSize])
        : await ctx.db.all<EntryDbRow>(`${ENTRY_SELECT} WHERE e.sid = $1 AND e.row_key > $3 ORDER BY e.row_key LIMIT $2`, [
            sid,
            pageSize,
            after,
          ]);
    for (const r of rows) yield snapshotEntryOf(r);
    if (rows.length < pageSize) return;
    after = rows[rows.length - 1]!.row_key;
  }
}

export async function dropSnapshot(ctx: SnapshotContext, source: string): Promise<void> {
  const sid = await findSourceId(ctx, source);
  if (sid === undefined) return;
  await ctx.db.transaction(async () => {
    await lockSourceForWrite(ctx.db, sid);
    await dropSessionTables(ctx.db, sessionTables(sid));
    await forgetMirrorOf(ctx.db, ctx.env, sid);
    await ctx.db.run('DELETE FROM sync_pending WHERE sid = $1', [sid]);
    await ctx.db.run('DELETE FROM snapshot_payloads WHERE sid = $1', [sid]);
    await ctx.db.run('DELETE FROM snapshot_entries WHERE sid = $1', [sid]);
    await ctx.db.run('DELETE FROM snapshot_sources WHERE sid = $1', [sid]);
    await ctx.db.run('DELETE FROM cursors WHERE env = $1 AND name = $2', [ctx.env, generationCursor(source)]);
  });
}

/**
 * Keys, hashes and orderings in pages (keyset pagination over the primary key), then the acknowledgements
 * of a session not yet applied, latest last, so a reader that lets later entries win sees what the
 * snapshot will hold once they are merged. `part` reads only the pages (`entries`: what the current
 * generation holds) or only the acknowledgements (`unmerged`: for a reader that holds a copy of the
 * current generation's entries).
 */
export async function* readSnapshotIndex(
  ctx: SnapshotContext,
  source: string,
  opts: { pageSize?: number; part?: 'all' | 'entries' | 'unmerged' } = {},
): AsyncIterableIterator<SnapshotIndexEntry[]> {
  const pageSize = opts.pageSize ?? 20_000;
  if (!Number.isSafeInteger(pageSize) || pageSize <= 0) throw new RangeError(`pageSize must be a positive integer, got ${pageSize}`);
  const sid = await findSourceId(ctx, source);
  if (sid === undefined) return;
  let after: string | undefined;
  const part = opts.part ?? 'all';
  while (part !== 'unmerged') {
    const rows =
      after === undefined
        ? await ctx.db.all<SnapshotIndexEntry>(`${INDEX_SELECT} WHERE sid = $1 ORDER BY row_key LIMIT $2`, [sid, pageSize])
        : await ctx.db.all<SnapshotIndexEntry>(`${INDEX_SELECT} WHERE sid = $1 AND row_key > $3 ORDER BY row_key LIMIT $2`, [
            sid,
            pageSize,
            after,
          ]);
    // Rows come back in the shape the caller wants: no second object per entry for a million entries.
    if (rows.length > 0) yield rows;
    if (rows.length < pageSize) break;
    after = rows[rows.length - 1]!.key;
  }
  if (part === 'entries') return;
  const state = await ctx.db.get<{ stage_state: string | null }>('SELECT stage_state FROM snapshot_sources WHERE sid = $1', [sid]);
  if (state?.stage_state !== 'sealed') return;
  let acks: Array<SnapshotIndexEntry & { removed: number }>;
  try {
    acks = await ctx.db.all(
      `SELECT row_key AS ${'"key"'}, hash, ordering, removed FROM ${sessionTables(sid).ack} ORDER BY COALESCE(seq, 0), sent_at`,
    );
  } catch {
    // The session ended (and merged its acks) between the two reads: the pages above may have missed
    // them, which only makes a plan count a few rows as still to send.
    return;
  }
  const live = acks.filter((a) => a.removed === 0 && a.hash !== null).map(({ key, hash, ordering }) => ({ key, hash, ordering }));
  for (let i = 0; i < live.length; i += pageSize) yield live.slice(i, i + pageSize);
}

// `key` is quoted: it is a keyword in some SQL dialects.
const INDEX_SELECT = 'SELECT row_key AS "key", hash, ordering FROM snapshot_entries';

export async function getSnapshotPayloads(ctx: SnapshotContext, source: string, keys: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (keys.length === 0) return out;
  const sid = await findSourceId(ctx, source);
  if (sid === undefined) return out;
  const unique = [...new Set(keys)];
  for (let i = 0; i < unique.length; i += KEYS_PER_COMMIT) {
    const chunk = unique.slice(i, i + KEYS_PER_COMMIT);
    const rows = await ctx.db.all<{ row_key: string; payload: string }>(
      `SELECT row_key, payload FROM snapshot_payloads WHERE sid = $1 AND row_key IN (${placeholders(2, chunk.length)})`,
      [sid, ...chunk],
    );
    for (const r of rows) out.set(r.row_key, r.payload);
  }
  return out;
}
