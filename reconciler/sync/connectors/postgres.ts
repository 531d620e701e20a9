/**
 * PostgreSQL: the spec's query, read through a server-side cursor so memory holds one page, never the
 * result set.
 *
 * Cursor: plain `DECLARE … NO SCROLL CURSOR` and `FETCH FORWARD n` inside a `READ ONLY` transaction,
 * rather than the pg-cursor package: it needs no extra dependency, works through any pooler that keeps a
 * transaction on one connection, and the read-only transaction means a source query can never write to
 * the warehouse. When the consumer stops early, the transaction is rolled back and the connection is
 * released (or ended) before `return()` resolves.
 *
 * `:last_sync_at`: every occurrence outside string literals, quoted identifiers and comments becomes the
 * bound parameter `$1::timestamptz`. On the first run (no previous sync) it is bound to `-infinity`, so
 * `updated_at > :last_sync_at` selects every row, including rows before 1970 that an epoch default would
 * silently skip.
 *
 * Session: the transaction's TimeZone is set to the source's declared timezone (when the caller passes
 * it), so comparing a naive `timestamp` column with `:last_sync_at` reads the column as the local time it
 * is; DateStyle is pinned to ISO so values parse the same on every server.
 *
 * Batches: one FETCH page is one batch (`readBatches`); `read` yields the same rows one by one.
 *
 * Errors: a database error can quote a row's value (`invalid input syntax for type bigint: "alice@…"`),
 * and connector errors reach the run history, reports and GitHub annotations. So every database error is
 * reported through `describeDatabaseError`: quoted values replaced by a placeholder, names kept, SQLSTATE
 * and position added; the original error is kept only as the `cause`.
 *
 * Abort: `ctx.signal` is checked before each page, so an abort takes effect within one FETCH; the
 * transaction is then rolled back like any early stop.
 *
 * Values (parsed per query; the global pg type parsers other modules rely on are left alone):
 * - `timestamp` (without time zone) and `date`: the raw text, e.g. `2026-03-08 02:30:00`. They are naive
 *   local times in the source's timezone; the normaliser converts them. (pg's default would build a Date
 *   in the machine's timezone, silently wrong.)
 * - `timestamptz`: an ISO-8601 string with the offset, e.g. `2026-03-08T02:30:00.123456-05:00`
 *   (microseconds kept). `infinity` and BC dates stay raw and are refused by the normaliser.
 * - `int8` and `numeric`: decimal strings, exactly as stored (JS numbers would round them); `int2`,
 *   `int4`, `float4`, `float8`: numbers. Everything else: pg's defaults.
 */
import type pg from 'pg';
import { redact, registerSecret } from '../../core/redact.ts';
import type { SourceSpec } from '../../spec/schema/index.ts';
import type { Connector, ConnectorContext, SourceRow } from '../types.ts';
import { checkColumns } from './columns.ts';
import { ConnectorError } from './errors.ts';
import { rowsOf } from './files.ts';
import { pgLibrary } from '../../core/pg-library.ts';

type PostgresSpec = Extract<SourceSpec['connector'], { type: 'postgres' }>;

export interface PostgresOptions {
  /** IANA timezone of the source's naive timestamps; becomes the session TimeZone (default UTC). */
  timezone?: string;
  /** Rows per FETCH (default 1000): the most rows held in memory at once. */
  pageSize?: number;
  /** Borrow connections from this pool instead of opening one per read from `url_env`. */
  pool?: pg.Pool;
  /** Shown in pg_stat_activity (default `tidemark`). */
  applicationName?: string;
  /** Connection timeout in milliseconds (default 30 s). */
  connectTimeoutMs?: number;
}

const OID = { int8: 20, date: 1082, timestamp: 1114, timestamptz: 1184, numeric: 1700 } as const;
const CURSOR = 'tidemark_source_cursor';

/** `2026-03-08 02:30:00.123456-05` or `…+05:30` or `…-04:56:02` (historic local mean time). */
const PG_TIMESTAMPTZ = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?)([+-]\d{2})(?::(\d{2}))?(?::(\d{2}))?$/;

/** Postgres' ISO text for timestamptz as ISO-8601 (`T` separator, `±HH:MM` offset); other forms stay raw. */
export function timestamptzToIso(text: string): string {
  const m = PG_TIMESTAMPTZ.exec(text);
  if (!m) return text;
  const [, date, time, hours, minutes, seconds] = m;
  return `${date}T${time}${hours}:${minutes ?? '00'}${seconds ? `:${seconds}` : ''}`;
}

const identity = (v: string): string => v;

/** The values the connector reads, per type (exported for the diff in the warehouse, which must read them alike). */
export const typeParsers: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) => {
    if (format === undefined || format === 'text') {
      if (oid === OID.timestamp || oid === OID.date) return identity;
      if (oid === OID.timestamptz) return timestamptzToIso;
      if (oid === OID.int8 || oid === OID.numeric) return identity;
    }
    return pgLibrary().types.getTypeParser(oid, format as 'text');
  }) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * Replaces each `:last_sync_at` outside literals and comments with `$1::timestamptz`. Returns the rewritten
 * SQL and whether the parameter occurs. A query that already uses positional parameters (`$1`) is refused:
 * it would collide with the bound value.
 */
export function bindLastSyncAt(sql: string): { text: string; usesParameter: boolean } {
  const name = ':last_sync_at';
  let out = '';
  let uses = false;
  let i = 0;
  const n = sql.length;
  const isIdent = (c: string | undefined) => c !== undefined && /[A-Za-z0-9_$\u0080-\uffff]/.test(c);
  while (i < n) {
    const c = sql[i]!;
    const next = sql[i + 1];
    // -- line comment
    if (c === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      const stop = end === -1 ? n : end;
      out += sql.slice(i, stop);
      i = stop;
      continue;
    }
    // /* block comment */, which nests in Postgres
    if (c === '/' && next === '*') {
      let depth = 1;
      let j = i + 2;
      while (j < n && depth > 0) {
        if (sql[j] === '/' && sql[j + 1] === '*') {
          depth++;
          j += 2;
        } else if (sql[j] === '*' && sql[j + 1] === '/') {
          depth--;
          j += 2;
        } else j++;
      }
      out += sql.slice(i, j);
      i = j;
      continue;
    }
    // 'string', E'string' with backslash escapes, "identifier"; a doubled quote continues the token
    if (c === "'" || c === '"') {
      const escapes = c === "'" && (sql[i - 1] === 'E' || sql[i - 1] === 'e') && !isIdent(sql[i - 2]);
      let j = i + 1;
      while (j < n) {
        if (escapes && sql[j] === '\\') j += 2;
        else if (sql[j] === c) {
          if (sql[j + 1] === c) j += 2;
          else break;
        } else j++;
      }
      out += sql.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    if (c === '$' && !isIdent(sql[i - 1])) {
      // $1 positional parameter, or a $tag$ … $tag$ dollar-quoted string
      if (next !== undefined && /[0-9]/.test(next)) {
        throw new ConnectorError('postgres', 'config', 'The source query uses a positional parameter ($1 …); use :last_sync_at instead.');
      }
      const tag = /^\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(sql.slice(i));
      if (tag) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        const stop = close === -1 ? n : close + tag[0].length;
        out += sql.slice(i, stop);
        i = stop;
        continue;
      }
    }
    if (c === ':' && sql.startsWith(name, i) && sql[i - 1] !== ':' && !isIdent(sql[i + name.length])) {
      out += '$1::timestamptz';
      uses = true;
      i += name.length;
      continue;
    }
    out += c;
    i++;
  }
  return { text: out, usesParameter: uses };
}

/** Reads a Postgres query through a cursor; see the module comment for parameters, session and values. */
export function createPostgresConnector(spec: PostgresSpec, options: PostgresOptions = {}): Connector {
  const pageSize = options.pageSize ?? 1000;
  if (!Number.isInteger(pageSize) || pageSize < 1) throw new RangeError('pageSize must be a positive integer');
  // Rewrite once, up front: a query with $1 fails at createConnector time, before anything connects.
  const { text, usesParameter } = bindLastSyncAt(spec.query);
  const readBatches = (ctx: ConnectorContext) => readPostgres(spec, text, usesParameter, pageSize, options, ctx);
  return {
    type: 'postgres',
    readBatches,
    // No per-row abort check: the documented contract is that a page already fetched is delivered.
    read: (ctx: ConnectorContext) => rowsOf(readBatches(ctx), undefined),
  };
}

type Lease = { client: pg.ClientBase; release(broken: boolean): Promise<void> };

async function lease(spec: PostgresSpec, options: PostgresOptions, ctx: ConnectorContext): Promise<Lease> {
  if (options.pool) {
    let client: pg.PoolClient;
    try {
      client = await options.pool.connect();
    } catch (e) {
      throw new ConnectorError('postgres', 'io', `Connecting to the source database failed: ${describeDatabaseError(e)}`, { cause: e });
    }
    return { client, release: async (broken) => client.release(broken) };
  }
  const url = ctx.env[spec.url_env];
  if (!url) {
    throw new ConnectorError('postgres', 'config', `The environment variable ${spec.url_env} is not set; it must hold the source database's connection URL.`);
  }
  registerSecret(url);
  try {
    const password = new URL(url).password;
    if (password) registerSecret(decodeURIComponent(password));
  } catch {
    // Not a URL (a libpq key=value string): the whole value is registered already.
  }
  const client = new (pgLibrary().Client)({
    connectionString: url,
    application_name: options.applicationName ?? 'tidemark',
    connectionTimeoutMillis: options.connectTimeoutMs ?? 30_000,
  });
  // An idle connection dropped by the server emits 'error'; the next query reports it instead.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (e) {
    await client.end().catch(() => {});
    throw new ConnectorError('postgres', 'io', `Connecting to the database in ${spec.url_env} failed: ${describeDatabaseError(e)}`, { cause: e });
  }
  return { client, release: async () => void (await client.end().catch(() => {})) };
}

/** Rows are objects keyed by column name, so `select a.id, b.id` would silently keep only one of them. */
function assertDistinctColumns(fields: readonly pg.FieldDef[]): void {
  const seen = new Set<string>();
  for (const f of fields) {
    if (seen.has(f.name)) {
      throw new ConnectorError('postgres', 'format', `The source query returns more than one column named "${f.name}"; give each column a distinct alias.`);
    }
    seen.add(f.name);
  }
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message || e.name : String(e);
}

/** Words after which PostgreSQL quotes a name from the query or the catalog, never a row's value. */
const NAMED_BEFORE_QUOTE =
  /(?:^|\s)(?:column|relation|table|view|schema|database|role|user|constraint|index|sequence|function|procedure|type|domain|operator|cursor|extension|collation|trigger|parameter|near|tablespace|server|publication|subscription)\s*$/i;
export const VALUE_PLACEHOLDER = '<value>';

/**
 * A database error as users may see it (run history, reports, GitHub annotations): the message with every
 * quoted string that is not a name replaced by a placeholder, plus the SQLSTATE, the column and the position
 * when the server gave them. Errors about a value quote it (`invalid input syntax for type bigint:
 * "alice@example.com"`), and that value is a customer's data; names (`column "nope" does not exist`) are
 * the query's and stay, since they are what the person fixing it needs. The original stays in `cause`.
 */
export function describeDatabaseError(e: unknown): string {
  const message = messageOf(e).replace(/"((?:[^"]|"")*)"/g, (quoted, _inner: string, offset: number, whole: string) =>
    NAMED_BEFORE_QUOTE.test(whole.slice(Math.max(0, offset - 40), offset)) ? quoted : `"${VALUE_PLACEHOLDER}"`,
  );
  const fields = (e ?? {}) as { code?: unknown; column?: unknown; position?: unknown; dataType?: unknown };
  const facts: string[] = [];
  if (typeof fields.code === 'string' && /^[0-9A-Z]{5}$/.test(fields.code)) facts.push(`SQLSTATE ${fields.code}`);
  if (typeof fields.column === 'string' && fields.column !== '') facts.push(`column ${fields.column}`);
  if (typeof fields.dataType === 'string' && fields.dataType !== '') facts.push(`type ${fields.dataType}`);
  if (typeof fields.position === 'string' && /^\d+$/.test(fields.position)) facts.push(`at character ${fields.position} of the query`);
  return redact(facts.length ? `${message} (${facts.join(', ')})` : message);
}

async function* readPostgres(
  spec: PostgresSpec,
  text: string,
  usesParameter: boolean,
  pageSize: number,
  options: PostgresOptions,
  ctx: ConnectorContext,
): AsyncGenerator<SourceRow[]> {
  ctx.signal?.throwIfAborted();
  const { client, release } = await lease(spec, options, ctx);
  let broken = false;
  let inTransaction = false;
  let row = 0;
  try {
    try {
      await client.query('BEGIN READ ONLY');
      inTransaction = true;
      await client.query("SELECT set_config('TimeZone', $1, true), set_config('DateStyle', 'ISO, YMD', true)", [options.timezone ?? 'UTC']);
      const since = ctx.lastSyncAt ? ctx.lastSyncAt.toISOString() : '-infinity';
      await client.query({ text: `DECLARE ${CURSOR} NO SCROLL CURSOR FOR ${text}`, values: usesParameter ? [since] : [] });
    } catch (e) {
      throw new ConnectorError('postgres', 'query', `The source query failed: ${describeDatabaseError(e)}`, { cause: e });
    }
    for (;;) {
      ctx.signal?.throwIfAborted();
      let page: pg.QueryResult;
      try {
        page = await client.query({ text: `FETCH FORWARD ${pageSize} FROM ${CURSOR}`, types: typeParsers });
      } catch (e) {
        throw new ConnectorError('postgres', 'query', `Reading the source query's rows failed: ${describeDatabaseError(e)}`, { cause: e });
      }
      if (row === 0) {
        assertDistinctColumns(page.fields);
        checkColumns('postgres', 'The result of the source query', page.fields.map((f) => f.name), ctx.columns);
      }
      const batch = (page.rows as Record<string, unknown>[]).map((values): SourceRow => ({ location: `query row ${++row}`, values }));
      if (batch.length > 0) yield batch;
      if (page.rows.length < pageSize) break;
    }
    try {
      await client.query(`CLOSE ${CURSOR}; COMMIT`);
    } catch (e) {
      throw new ConnectorError('postgres', 'query', `Finishing the source query failed: ${describeDatabaseError(e)}`, { cause: e });
    }
    inTransaction = false;
  } finally {
    if (inTransaction) {
      // Early stop, abort or failure: end the transaction so a pooled connection goes back clean.
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
    }
    await release(broken);
  }
}
