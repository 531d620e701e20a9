/**
 * Runs the state tests against both backends. The embedded store gets a fresh temporary directory per
 * location; Postgres gets a freshly created schema per location (so parallel test files never collide),
 * all dropped in `cleanup`. When no Postgres server answers, the Postgres backend is marked unavailable
 * and a loud banner says why: the suites skip it instead of failing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { Clock } from '../../reconciler/core/clock.ts';
import { openStateStoreWith } from '../../reconciler/state/open.ts';
import { MIGRATIONS } from '../../reconciler/state/migrations/all.ts';
import type { Migration } from '../../reconciler/state/migrations/migration.ts';
import type { StateStore, StateStoreOptions } from '../../reconciler/state/types.ts';

import { TEST_DATABASE_URL, postgresSkipReason } from './postgres.ts';

export { TEST_DATABASE_URL };

/** Where one store's state lives: a directory (embedded) or a schema (Postgres). */
export interface Location {
  dir?: string;
  schema?: string;
}

export type OpenOptions = Omit<StateStoreOptions, 'databaseUrl' | 'dir' | 'schema'>;

/** Direct SQL on a location, for tests that must tamper with what the store wrote. */
export interface RawSql {
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

export interface Backend {
  name: 'sqlite' | 'postgres';
  available: boolean;
  newLocation(): Promise<Location>;
  open(loc: Location, opts?: OpenOptions, migrations?: readonly Migration[]): Promise<StateStore>;
  /** Options a child process needs to open the same state. */
  connection(loc: Location): Pick<StateStoreOptions, 'databaseUrl' | 'dir' | 'schema'>;
  raw(loc: Location, env?: string): Promise<RawSql>;
  cleanup(): Promise<void>;
}

/** A clock tests move by hand. */
export function testClock(start = '2026-03-01T12:00:00.000Z'): Clock & { advance(ms: number): void } {
  let t = Date.parse(start);
  return {
    now: () => new Date(t),
    advance: (ms: number) => {
      t += ms;
    },
  };
}

function sqliteBackend(): Backend {
  const dirs: string[] = [];
  return {
    name: 'sqlite',
    available: true,
    async newLocation() {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'tidemark-state-'));
      dirs.push(dir);
      return { dir };
    },
    open: (loc, opts = {}, migrations = MIGRATIONS) => openStateStoreWith({ ...opts, dir: loc.dir! }, migrations),
    connection: (loc) => ({ dir: loc.dir! }),
    async raw(loc, env = 'default') {
      const db = new Database(path.join(loc.dir!, `state-${env}.sqlite`));
      return {
        exec: async (sql) => void db.exec(sql),
        close: async () => void db.close(),
      };
    },
    async cleanup() {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    },
  };
}


function postgresBackend(tag: string, skipReason: string | undefined): Backend {
  const schemas: string[] = [];
  const prefix = `tm_test_${tag}_${process.pid}_${randomBytes(3).toString('hex')}`;
  const admin = () => {
    const c = new pg.Client({ connectionString: TEST_DATABASE_URL });
    c.on('error', () => {});
    return c;
  };
  return {
    name: 'postgres',
    available: skipReason === undefined,
    async newLocation() {
      const schema = `${prefix}_${schemas.length}`;
      const c = admin();
      await c.connect();
      try {
        await c.query(`CREATE SCHEMA ${schema}`);
      } finally {
        await c.end();
      }
      schemas.push(schema);
      return { schema };
    },
    open: (loc, opts = {}, migrations = MIGRATIONS) =>
      openStateStoreWith({ ...opts, databaseUrl: TEST_DATABASE_URL, schema: loc.schema! }, migrations),
    connection: (loc) => ({ databaseUrl: TEST_DATABASE_URL, schema: loc.schema! }),
    async raw(loc) {
      const c = new pg.Client({ connectionString: TEST_DATABASE_URL, options: `-c search_path=${loc.schema!}` });
      c.on('error', () => {});
      await c.connect();
      return {
        exec: async (sql) => void (await c.query(sql)),
        close: () => c.end(),
      };
    },
    async cleanup() {
      if (schemas.length === 0) return;
      const c = admin();
      await c.connect();
      try {
        for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
      } finally {
        await c.end();
      }
    },
  };
}

/**
 * Both backends for one test file. `tag` names the file in schema names (lowercase letters, digits, `_`).
 * Call at module top level (`await stateBackends('store')`).
 */
export async function stateBackends(tag: string): Promise<Backend[]> {
  const reason = await postgresSkipReason(`Postgres state tests of ${tag}; only the embedded (SQLite) backend was tested`);
  return [sqliteBackend(), postgresBackend(tag, reason)];
}
