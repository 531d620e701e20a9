/**
 * The embedded backend: one SQLite file per environment through better-sqlite3.
 *
 * better-sqlite3 is synchronous and one connection serves the whole process, so an async transaction
 * (one that awaits between statements) would otherwise swallow statements issued meanwhile by unrelated
 * code. A promise mutex serialises top-level work; statements issued from inside a transaction's async
 * context (transaction-context.ts) bypass it and join the transaction.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import { InternalError } from '../../core/diagnostics.ts';
import type { SqlDriver, SqlValue } from './executor.ts';
import { translatePlaceholders } from './placeholders.ts';
import { checkpointThread, type CheckpointThread } from './sqlite-checkpointer.ts';
import { TransactionContext } from './transaction-context.ts';

interface Prepared {
  stmt: Database.Statement;
  argIndex: number[];
}

interface TxContext {
  open: boolean;
  savepoints: number;
}

/** Serialises async critical sections in submission order. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  run<T>(fn: () => Promise<T> | T): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

// Statements are cached by SQL text; the store issues a bounded set of shapes (multi-row inserts come
// in a few sizes), so the cap only guards against a caller that builds unbounded distinct SQL.
const STATEMENT_CACHE_LIMIT = 500;

export class SqliteDriver implements SqlDriver {
  readonly dialect = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Prepared>();
  private readonly mutex = new Mutex();
  private readonly ambient = new TransactionContext<TxContext>();
  /** Where this connection's WAL is checkpointed, when not in its own commits (sqlite-checkpointer.ts). */
  private readonly checkpoints: { thread: CheckpointThread; file: string; takeBack: () => void } | undefined;

  constructor(file: string) {
    this.db = new Database(file);
    // WAL lets `tidemark unlock` or a status command read while a sync writes; NORMAL sync is durable
    // against process crashes (the failure we design for) and much faster than FULL.
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    // Another tidemark process may be mid-write; wait for it rather than fail.
    this.db.pragma('busy_timeout = 10000');
    this.db.pragma('foreign_keys = ON');
    // 64 MB page cache: the snapshot diff probes a 1M-row index; beyond this the OS page cache serves it.
    this.db.pragma('cache_size = -65536');
    const thread = checkpointThread();
    if (file !== ':memory:' && file !== '' && thread.available()) {
      this.db.pragma('wal_autocheckpoint = 0');
      const takeBack = () => {
        if (this.db.open) this.db.pragma('wal_autocheckpoint = 1000');
      };
      thread.onFailure.add(takeBack);
      this.checkpoints = { thread, file: path.resolve(file), takeBack };
      thread.open(this.checkpoints.file, takeBack);
    }
  }

  private wrote(): void {
    this.checkpoints?.thread.poke();
  }

  private prepare(sql: string): Prepared {
    let p = this.statements.get(sql);
    if (!p) {
      const t = translatePlaceholders(sql);
      p = { stmt: this.db.prepare(t.sql), argIndex: t.argIndex };
      if (this.statements.size >= STATEMENT_CACHE_LIMIT) this.statements.clear();
      this.statements.set(sql, p);
    }
    return p;
  }

  private args(p: Prepared, params: readonly SqlValue[]): SqlValue[] {
    return p.argIndex.map((i) => {
      if (i < 0 || i >= params.length) throw new InternalError(`SQL placeholder $${i + 1} has no argument (${params.length} given)`);
      return params[i]!;
    });
  }

  /** Runs now if inside this driver's transaction context, else after any transaction in progress. */
  private schedule<T>(fn: () => T): Promise<T> {
    const tx = this.ambient.current();
    if (tx) {
      if (!tx.open) return Promise.reject(new InternalError('statement issued after its transaction finished'));
      try {
        return Promise.resolve(fn());
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return this.mutex.run(fn);
  }

  run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return this.schedule(() => {
      const p = this.prepare(sql);
      if (p.stmt.reader) return p.stmt.all(...this.args(p, params)).length;
      const changes = p.stmt.run(...this.args(p, params)).changes;
      if (!this.db.inTransaction) this.wrote();
      return changes;
    });
  }

  all<T>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return this.schedule(() => {
      const p = this.prepare(sql);
      return p.stmt.all(...this.args(p, params)) as T[];
    });
  }

  async get<T>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    return this.schedule(() => {
      const p = this.prepare(sql);
      return p.stmt.get(...this.args(p, params)) as T | undefined;
    });
  }

  exec(script: string): Promise<void> {
    return this.schedule(() => {
      this.db.exec(script);
      if (!this.db.inTransaction) this.wrote();
    });
  }

  inTransaction(): boolean {
    return this.ambient.current()?.open === true;
  }

  transaction<T>(fn: () => Promise<T>): Promise<T> {
    const outer = this.ambient.current();
    if (outer) {
      if (!outer.open) return Promise.reject(new InternalError('transaction started after its parent finished'));
      return this.savepoint(outer, fn);
    }
    return this.mutex.run(async () => {
      const ctx: TxContext = { open: true, savepoints: 0 };
      // IMMEDIATE takes the write lock up front, so two processes never both read "free" and then
      // collide on upgrade (which SQLite reports as SQLITE_BUSY without waiting).
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const result = await this.ambient.run(ctx, fn);
        ctx.open = false;
        this.db.exec('COMMIT');
        this.wrote();
        return result;
      } catch (e) {
        ctx.open = false;
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw e;
      }
    });
  }

  private async savepoint<T>(ctx: TxContext, fn: () => Promise<T>): Promise<T> {
    const name = `sp_${++ctx.savepoints}`;
    this.db.exec(`SAVEPOINT ${name}`);
    try {
      const result = await fn();
      this.db.exec(`RELEASE SAVEPOINT ${name}`);
      return result;
    } catch (e) {
      this.db.exec(`ROLLBACK TO SAVEPOINT ${name}`);
      this.db.exec(`RELEASE SAVEPOINT ${name}`);
      throw e;
    }
  }

  isUniqueViolation(err: unknown): boolean {
    const code = (err as { code?: unknown } | null)?.code;
    return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
  }

  async lockForMigrations(): Promise<void> {
    // BEGIN IMMEDIATE already excludes every other writer for the rest of the transaction.
  }

  close(): Promise<void> {
    return this.mutex.run(async () => {
      this.statements.clear();
      // The thread's connection goes first, so this one is the file's last: its close checkpoints what is
      // left and removes the WAL.
      if (this.checkpoints) {
        this.checkpoints.thread.onFailure.delete(this.checkpoints.takeBack);
        await this.checkpoints.thread.forget(this.checkpoints.file);
      }
      if (this.db.open) this.db.close();
    });
  }
}
