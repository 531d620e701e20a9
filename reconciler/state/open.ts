import { chmodSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { systemClock } from '../core/clock.ts';
import { InternalError } from '../core/diagnostics.ts';
import { redact, registerSecret } from '../core/redact.ts';
import { StateError } from './errors.ts';
import { AdvisoryLockManager } from './lock-advisory.ts';
import { LeaseLockManager } from './lock-lease.ts';
import { MIGRATIONS } from './migrations/all.ts';
import { migrate } from './migrations/migrate.ts';
import type { Migration } from './migrations/migration.ts';
import type { SqlDriver } from './sql/executor.ts';
import { PostgresDriver } from './sql/postgres-driver.ts';
import { SqliteDriver } from './sql/sqlite-driver.ts';
import { traceStatements, traceThreshold } from './sql/trace.ts';
import { SqlStateStore } from './store.ts';
import type { StateStore, StateStoreOptions } from './types.ts';

/** Where the embedded store lives unless the workspace names another directory. */
export const DEFAULT_STATE_DIR = '.tidemark';
export const DEFAULT_ENV = 'default';

const ENV_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
// Validated instead of quoted: the schema also goes into a connection startup option, where quoting
// rules differ from SQL's.
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Fills `databaseUrl` from `TIDEMARK_DATABASE_URL` (the variable wins over the workspace setting, so CI
 * can point any workspace at a shared database).
 */
export function stateStoreOptionsFromEnv(env: NodeJS.ProcessEnv, base: StateStoreOptions = {}): StateStoreOptions {
  const url = env.TIDEMARK_DATABASE_URL?.trim();
  return url ? { ...base, databaseUrl: url } : { ...base };
}

/** The URL with its password masked, safe for messages and `location`. */
export function describeDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable database URL)';
  }
}

/** Opens (creating and migrating as needed) the state of one environment. */
export function openStateStore(opts: StateStoreOptions = {}): Promise<StateStore> {
  return openStateStoreWith(opts, MIGRATIONS);
}

/** `openStateStore` with an explicit migration list; tests use it to exercise upgrades. */
export async function openStateStoreWith(opts: StateStoreOptions, migrations: readonly Migration[]): Promise<StateStore> {
  const env = opts.env ?? DEFAULT_ENV;
  if (!ENV_NAME.test(env)) {
    throw new StateError('STATE008', `"${env}" is not a usable environment name: use letters, digits, "_", "-" and ".", starting with a letter or digit.`);
  }
  const clock = opts.clock ?? systemClock;
  const holder = { hostname: opts.holder?.hostname ?? os.hostname(), pid: opts.holder?.pid ?? process.pid };
  const now = () => clock.now().toISOString();

  if (opts.databaseUrl) {
    const url = opts.databaseUrl;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new StateError('STATE008', 'TIDEMARK_DATABASE_URL is not a valid URL (expected postgres://user:password@host:5432/database).');
    }
    if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
      throw new StateError('STATE008', `The state database URL must start with postgres:// or postgresql://, not ${parsed.protocol}//.`);
    }
    if (parsed.password) registerSecret(decodeURIComponent(parsed.password));
    if (opts.schema !== undefined && !SCHEMA_NAME.test(opts.schema)) {
      throw new StateError('STATE008', `"${opts.schema}" is not a usable schema name: lowercase letters, digits and "_", not starting with a digit.`);
    }
    const driver = traced(new PostgresDriver({ connectionString: url, ...(opts.schema ? { schema: opts.schema } : {}) }));
    let location = describeDatabaseUrl(url);
    try {
      await driver.init(opts.schema);
      location = `${location} (schema ${driver.schema})`;
      await migrate(driver, migrations, location, now);
    } catch (e) {
      await driver.close().catch(() => {});
      throw wrapOpenError(e, location);
    }
    return new SqlStateStore({
      backend: 'postgres',
      env,
      location,
      clock,
      db: driver,
      locks: new AdvisoryLockManager(driver, env, clock, holder, location),
    });
  }

  const dir = path.resolve(opts.dir ?? DEFAULT_STATE_DIR);
  prepareStateDir(dir);
  const file = path.join(dir, `state-${env}.sqlite`);
  const created = !existsSync(file);
  let driver: SqlDriver;
  try {
    driver = traced(new SqliteDriver(file));
  } catch (e) {
    throw localStateError(e, dir) ?? wrapOpenError(e, file);
  }
  if (created) chmodSync(file, 0o600);
  try {
    await migrate(driver, migrations, file, now);
  } catch (e) {
    await driver.close().catch(() => {});
    throw localStateError(e, dir) ?? wrapOpenError(e, file);
  }
  return new SqlStateStore({
    backend: 'sqlite',
    env,
    location: file,
    clock,
    db: driver,
    locks: new LeaseLockManager(driver, env, clock, holder, file),
  });
}

const STATE_PATH_HINT = "The state folder is the Workspace's `state.path` setting (default .tidemark), relative to the project.";

/**
 * Creates the state folder (private, and out of Git: the state holds customer identifiers and payloads).
 * The usual ways it fails are the machine's state, not bugs, and each gets its own plain message.
 */
function prepareStateDir(dir: string): void {
  const existing = statSync(dir, { throwIfNoEntry: false });
  if (existing && !existing.isDirectory()) {
    throw new StateError('STATE009', `The state folder ${dir} is a file, not a folder. Move or delete that file, or point the state elsewhere. ${STATE_PATH_HINT}`);
  }
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const gitignore = path.join(dir, '.gitignore');
    if (!existsSync(gitignore)) writeFileSync(gitignore, '# tidemark state: never commit it\n*\n');
  } catch (e) {
    throw localStateError(e, dir) ?? e;
  }
}

const LOCAL_CAUSES: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is exceeded',
  ENOTDIR: 'a part of its path is a file, not a folder',
  SQLITE_READONLY: 'the database file is read-only',
  SQLITE_CANTOPEN: 'the database file cannot be opened',
  SQLITE_FULL: 'no space left on the device',
};

/** A StateError for a state folder that cannot be created or written, or undefined for other failures. */
export function localStateError(e: unknown, dir: string): StateError | undefined {
  const code = e instanceof Error ? (e as { code?: unknown }).code : undefined;
  if (typeof code !== 'string' || !(code in LOCAL_CAUSES)) return undefined;
  return new StateError(
    'STATE009',
    `The state folder ${dir} cannot be written: ${LOCAL_CAUSES[code]} (${code}). Make it writable by this user, or point the state elsewhere. ${STATE_PATH_HINT}`,
    { cause: e },
  );
}

function wrapOpenError(e: unknown, location: string): unknown {
  if (e instanceof StateError || e instanceof InternalError) return e;
  return new StateError('STATE008', `Cannot open the state at ${location}: ${redact(e instanceof Error ? e.message : String(e))}`, { cause: e });
}

/** The driver as is, or traced when `TIDEMARK_SQL_TRACE` asks for it (sql/trace.ts). */
function traced<D extends SqlDriver>(driver: D): D {
  const ms = traceThreshold();
  return ms === undefined ? driver : traceStatements(driver, ms);
}
