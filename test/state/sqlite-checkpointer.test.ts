/**
 * The embedded store's WAL is checkpointed by a background thread (reconciler/state/sql/sqlite-checkpointer.ts),
 * not inside the writer's COMMIT. What a user would notice if that went wrong: a WAL that only grows, a
 * database file missing committed data after close, a process that does not exit, or writes that stop.
 */
import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteDriver } from '../../reconciler/state/sql/sqlite-driver.ts';
import { checkpointThread } from '../../reconciler/state/sql/sqlite-checkpointer.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'tidemark-checkpoint-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** ~8 MB of rows in one transaction: ~2,000 pages, twice SQLite's automatic checkpoint threshold. */
async function writeMegabytes(db: SqliteDriver, table: string): Promise<void> {
  await db.exec(`CREATE TABLE IF NOT EXISTS ${table} (k INTEGER PRIMARY KEY, v TEXT)`);
  await db.transaction(async () => {
    for (let i = 0; i < 4000; i++) await db.run(`INSERT INTO ${table} (v) VALUES ($1)`, ['x'.repeat(2000)]);
  });
}

async function until(check: () => boolean, ms = 15_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return check();
}

describe('background WAL checkpoints of the embedded store', () => {
  it('the writer does not checkpoint in its commits; the thread copies the WAL into the database file', async () => {
    const file = path.join(dir, 'a.sqlite');
    const db = new SqliteDriver(file);
    expect(await db.get<{ wal_autocheckpoint: number }>('PRAGMA wal_autocheckpoint')).toEqual({ wal_autocheckpoint: 0 });
    const before = statSync(file).size;
    await writeMegabytes(db, 't');
    // Only a checkpoint grows the database file: the commit itself appends to the WAL.
    expect(await until(() => statSync(file).size > before + 7_000_000)).toBe(true);
    await db.close();
  });

  it('checkpoints while the writer never returns to the event loop (statements of the synchronous driver only)', async () => {
    const file = path.join(dir, 'sync.sqlite');
    const db = new SqliteDriver(file);
    const before = statSync(file).size;
    // Each await below resolves at once: no timer, message or I/O callback of this thread runs until the end.
    await writeMegabytes(db, 't');
    await writeMegabytes(db, 'u');
    const sleeper = new Int32Array(new SharedArrayBuffer(4));
    const end = Date.now() + 15_000;
    while (statSync(file).size < before + 15_000_000 && Date.now() < end) Atomics.wait(sleeper, 0, 0, 20);
    expect(statSync(file).size).toBeGreaterThan(before + 15_000_000);
    await db.close();
  });

  it('close leaves every committed row in the database file and no WAL behind', async () => {
    const file = path.join(dir, 'b.sqlite');
    const db = new SqliteDriver(file);
    await writeMegabytes(db, 't');
    await db.run('INSERT INTO t (v) VALUES ($1)', ['last']);
    await db.close();
    expect(existsSync(`${file}-wal`)).toBe(false);
    const check = new Database(file, { readonly: true });
    expect(check.prepare('SELECT COUNT(*) AS n FROM t').get()).toEqual({ n: 4001 });
    check.close();
  });

  it('two stores in one process are checkpointed each on its own', async () => {
    const files = ['c1.sqlite', 'c2.sqlite'].map((f) => path.join(dir, f));
    const dbs = files.map((f) => new SqliteDriver(f));
    const sizes = files.map((f) => statSync(f).size);
    await Promise.all(dbs.map((db) => writeMegabytes(db, 't')));
    for (const [i, f] of files.entries()) expect(await until(() => statSync(f).size > sizes[i]! + 7_000_000)).toBe(true);
    await Promise.all(dbs.map((db) => db.close()));
    for (const f of files) expect(existsSync(`${f}-wal`)).toBe(false);
  });

  it('a file the thread cannot open is handed back to its writer', async () => {
    let refused = false;
    checkpointThread().open(path.join(dir, 'missing', 'x.sqlite'), () => (refused = true));
    expect(await until(() => refused)).toBe(true);
    await checkpointThread().forget(path.join(dir, 'missing', 'x.sqlite'));
  });

  it('a file locked while the thread opens it is waited for, not handed back to its writer', async () => {
    const file = path.join(dir, 'locked.sqlite');
    const setup = new Database(file);
    setup.pragma('journal_mode = WAL');
    setup.exec('CREATE TABLE t (v TEXT)');
    setup.close();
    // Another connection holds the file exclusively for a moment, as a writer setting up its WAL does.
    const holder = new Database(file);
    holder.pragma('locking_mode = EXCLUSIVE');
    holder.exec('BEGIN EXCLUSIVE; INSERT INTO t VALUES (1); COMMIT');
    let refused = false;
    checkpointThread().open(file, () => (refused = true));
    await new Promise((r) => setTimeout(r, 300));
    holder.close();
    await checkpointThread().forget(file);
    expect(refused).toBe(false);
  });

  it('a connection the thread failed to set up is closed, so the writer can still remove its WAL', async () => {
    const file = path.join(dir, 'garbage.sqlite');
    writeFileSync(file, 'x'.repeat(8192));
    let refused = false;
    checkpointThread().open(file, () => (refused = true));
    expect(await until(() => refused)).toBe(true);
    await checkpointThread().forget(file);
    // Linux shows a process' open files; an fd left on the file is the connection that leaked.
    if (process.platform === 'linux') {
      const fds = readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`) === file;
        } catch {
          return false;
        }
      });
      expect(fds).toEqual([]);
    }
  });

  // Last: the thread is process-wide and does not come back.
  it('when the thread dies, the writer takes its checkpoints back and keeps writing', async () => {
    const file = path.join(dir, 'd.sqlite');
    const db = new SqliteDriver(file);
    await writeMegabytes(db, 't');
    await checkpointThread().terminate();
    expect(await until(() => !checkpointThread().available())).toBe(true);
    expect(await db.get<{ wal_autocheckpoint: number }>('PRAGMA wal_autocheckpoint')).toEqual({ wal_autocheckpoint: 1000 });
    await writeMegabytes(db, 'u');
    expect(await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM u')).toEqual({ n: 4000 });
    await db.close();
    // A store opened after the thread died checkpoints in its own commits.
    const later = new SqliteDriver(path.join(dir, 'e.sqlite'));
    expect(await later.get<{ wal_autocheckpoint: number }>('PRAGMA wal_autocheckpoint')).toEqual({ wal_autocheckpoint: 1000 });
    await later.close();
  });
});
