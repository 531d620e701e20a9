/**
 * The snapshot's change log (migration 0009): which keys of a source's snapshot changed since the
 * environment's audience mirror last read them. Written by everything that changes `snapshot_entries`
 * (the ack session's merge, the response loop), read and emptied by the mirror update (state/audiences.ts).
 *
 * Logging starts once the environment has a mirror: until then the first evaluation fills the mirror whole
 * from the snapshots and needs no log. What makes this exact on Postgres, where a sync and an evaluation
 * may run at once: a writer locks its `snapshot_sources` row before it logs or writes, and the mirror
 * update share-locks every row of its environment first. Either the writer commits before the update
 * reads (the update sees its entries and its log), or it waits until the update committed (and then sees
 * the mirror's `mirror_builds` row, so it logs). SQLite's transactions exclude each other already.
 */
import type { SqlDriver, SqlValue } from './sql/executor.ts';

/**
 * Called first in a transaction that will change the source's entries: waits for a mirror update in
 * progress (Postgres; a no-op on SQLite, whose writers are serialised).
 */
export async function lockSourceForWrite(db: SqlDriver, sid: number): Promise<void> {
  if (db.dialect === 'postgres') await db.run('SELECT sid FROM snapshot_sources WHERE sid = $1 FOR UPDATE', [sid]);
}

/** Called first in a mirror update: no writer of the environment's snapshots commits until it ends. */
export async function lockSourcesForMirror(db: SqlDriver, env: string): Promise<void> {
  if (db.dialect === 'postgres') await db.run('SELECT sid FROM snapshot_sources WHERE env = $1 ORDER BY sid FOR SHARE', [env]);
}

/**
 * Logs the keys `keys` selects (a query returning `row_key`, with its own `$n` parameters `params`; `$sid`
 * and `$env` are appended) as changed in source `sid`, when the environment has a mirror, with each key's
 * payload as it is now. Called before the payloads change. A key already logged keeps its first payload:
 * the one the mirror was last built from, which the update compares the new one with.
 */
export async function logChangedKeys(db: SqlDriver, env: string, sid: number, keys: string, params: readonly SqlValue[] = []): Promise<void> {
  // Asked apart, after the caller's lock (so as exact as a condition inside the insert): the insert joins
  // every key to its payload before a condition there could drop the rows, which cost a re-sync of 10,000
  // keys a quarter of a second of random page reads with no mirror to log for.
  if (!(await db.get('SELECT 1 AS mirrored FROM mirror_builds WHERE env = $1', [env]))) return;
  const s = `$${params.length + 1}`;
  await db.run(
    `INSERT INTO snapshot_changes (sid, row_key, old_payload)
     SELECT CAST(${s} AS INTEGER), k.row_key, p.payload FROM (${keys}) k
     LEFT JOIN snapshot_payloads p ON p.sid = CAST(${s} AS INTEGER) AND p.row_key = k.row_key
     ON CONFLICT (sid, row_key) DO NOTHING`,
    [...params, sid],
  );
}

/**
 * After a snapshot was dropped whole: the mirror cannot tell its keys were removed from a log, so the
 * environment's next evaluation fills it whole.
 */
export async function forgetMirrorOf(db: SqlDriver, env: string, sid: number): Promise<void> {
  await db.run('DELETE FROM snapshot_changes WHERE sid = $1', [sid]);
  await db.run('DELETE FROM mirror_builds WHERE env = $1', [env]);
}
