/**
 * The Postgres backend through `pg`: a small pool for statements, a pinned client per transaction, and
 * dedicated connections for locks (advisory locks belong to a session, so a lock needs a connection that
 * lives exactly as long as the lock).
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { InternalError } from '../../core/diagnostics.ts';
import type { SqlDriver, SqlValue } from './executor.ts';
import { TransactionContext } from './transaction-context.ts';
import { pgLibrary } from '../../core/pg-library.ts';

interface TxContext {
  client: pg.PoolClient;
  open: boolean;
  savepoints: number;
}

const INT8_OID = 20;

// BIGINT (and COUNT(*)) arrive as strings by default because they can exceed 2^53. Every BIGINT we store
// (orderings, counts) is a safe integer, so convert per connection: setting the global parser would
// change the behaviour of every other pg user in the process (e.g. a warehouse connector).
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID && format !== 'binary') {
      return (value: string) => {
        const n = Number(value);
        if (!Number.isSafeInteger(n)) throw new InternalError(`BIGINT ${value} does not fit a JS number`);
        return n;
      };
    }
    return pgLibrary().types.getTypeParser(oid, format);
  },
} as unknown as pg.CustomTypesConfig;

/** The first key of every tidemark advisory lock ("tmk1"): keeps them apart from other applications' advisory locks. */
export const ADVISORY_CLASS = 0x746d6b31;

/** A stable 31-bit key for an advisory lock, derived from its purpose (schema and environment). */
export function advisoryKey(...parts: string[]): number {
  const digest = createHash('sha256').update(parts.join('\u0000')).digest();
  return digest.readUInt32BE(0) & 0x7fffffff;
}

export interface PostgresDriverOptions {
  connectionString: string;
  /** Schema to put first on the search_path of every connection (validated by the caller). */
  schema?: string;
}

export class PostgresDriver implements SqlDriver {
  readonly dialect = 'postgres' as const;
  private readonly pool: pg.Pool;
  private readonly ambient = new TransactionContext<TxContext>();
  private readonly config: pg.ClientConfig;
  /** The schema the tables live in, known after `init`. */
  schema = '';

  constructor(opts: PostgresDriverOptions) {
    this.config = {
      connectionString: opts.connectionString,
      types,
      application_name: 'tidemark',
      connectionTimeoutMillis: 15_000,
      ...(opts.schema ? { options: `-c search_path=${opts.schema}` } : {}),
    };
    this.pool = new (pgLibrary().Pool)({ ...this.config, max: 4, idleTimeoutMillis: 10_000 });
    // An idle client that dies (server restart, admin termination) is dropped by the pool; the next
    // statement reports the real problem. Without a listener the error would crash the process.
    this.pool.on('error', () => {});
  }

  /** Creates the configured schema if needed and learns which schema the tables live in. */
  async init(schema: string | undefined): Promise<void> {
    if (schema) {
      try {
        await this.pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      } catch (e) {
        // Two processes creating the schema at once: the loser sees a duplicate, which is fine.
        if (!this.isUniqueViolation(e) && (e as { code?: string }).code !== '42P06') throw e;
      }
    }
    const row = await this.get<{ schema: string | null }>('SELECT current_schema() AS schema');
    if (!row?.schema) throw new InternalError('the Postgres connection has no schema to create tables in (empty search_path)');
    this.schema = row.schema;
  }

  private async query(sql: string, params: readonly SqlValue[]): Promise<pg.QueryResult> {
    const tx = this.ambient.current();
    if (tx) {
      if (!tx.open) throw new InternalError('statement issued after its transaction finished');
      return tx.client.query(sql, params as SqlValue[]);
    }
    return this.pool.query(sql, params as SqlValue[]);
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return (await this.query(sql, params)).rowCount ?? 0;
  }

  async all<T>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return (await this.query(sql, params)).rows as T[];
  }

  async get<T>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    return (await this.query(sql, params)).rows[0] as T | undefined;
  }

  async exec(script: string): Promise<void> {
    await this.query(script, []);
  }

  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    const outer = this.ambient.current();
    if (outer) {
      if (!outer.open) throw new InternalError('transaction started after its parent finished');
      const name = `sp_${++outer.savepoints}`;
      await outer.client.query(`SAVEPOINT ${name}`);
      try {
        const result = await fn();
        await outer.client.query(`RELEASE SAVEPOINT ${name}`);
        return result;
      } catch (e) {
        await outer.client.query(`ROLLBACK TO SAVEPOINT ${name}`);
        await outer.client.query(`RELEASE SAVEPOINT ${name}`);
        throw e;
      }
    }
    const client = await this.pool.connect();
    const ctx: TxContext = { client, open: true, savepoints: 0 };
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await this.ambient.run(ctx, fn);
      ctx.open = false;
      await client.query('COMMIT');
      return result;
    } catch (e) {
      ctx.open = false;
      try {
        await client.query('ROLLBACK');
      } catch (rollbackError) {
        // The connection itself failed; make the pool discard it instead of reusing it.
        broken = rollbackError as Error;
      }
      throw e;
    } finally {
      client.release(broken);
    }
  }

  inTransaction(): boolean {
    return this.ambient.current()?.open === true;
  }

  isUniqueViolation(err: unknown): boolean {
    return (err as { code?: unknown } | null)?.code === '23505';
  }

  async lockForMigrations(): Promise<void> {
    await this.run('SELECT pg_advisory_xact_lock($1, $2)', [ADVISORY_CLASS, advisoryKey(this.schema, 'migrations')]);
  }

  /** A fresh connection outside the pool, for a session-scoped advisory lock. The caller ends it. */
  async connectDedicated(): Promise<pg.Client> {
    const client = new (pgLibrary().Client)(this.config);
    await client.connect();
    return client;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
