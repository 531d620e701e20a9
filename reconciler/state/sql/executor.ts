/**
 * The small SQL surface the store is written against. Both drivers take the same SQL text: the common
 * subset of SQLite and Postgres, with `$1…` placeholders (translated for SQLite). Results come back as
 * plain rows whose integers are JS numbers on both backends.
 */

export type Dialect = 'sqlite' | 'postgres';

/** What can be bound to a placeholder. Booleans are stored as 0/1 by the caller. */
export type SqlValue = string | number | null;

export interface SqlExecutor {
  readonly dialect: Dialect;
  /** Runs one statement; resolves to the number of rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
  all<T>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  get<T>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined>;
  /** Runs a script of several statements without parameters (migrations, DDL). */
  exec(script: string): Promise<void>;
  /**
   * Runs `fn` in a transaction. Everything executed on this driver from within `fn`'s async context joins
   * it (an ambient transaction), so store methods called inside behave the same on both backends.
   * A nested call becomes a savepoint.
   */
  transaction<T>(fn: () => Promise<T>): Promise<T>;
  /** True within `fn` of a `transaction` (its async context). */
  inTransaction(): boolean;
}

export interface SqlDriver extends SqlExecutor {
  /** True for a violated PRIMARY KEY or UNIQUE constraint. */
  isUniqueViolation(err: unknown): boolean;
  /**
   * Serialises migrations across processes for the rest of the current transaction. SQLite needs
   * nothing (its write transactions are exclusive); Postgres takes a transaction-scoped advisory lock.
   */
  lockForMigrations(): Promise<void>;
  close(): Promise<void>;
}
