/**
 * The Postgres lock: a session-level advisory lock (`pg_try_advisory_lock`) on a dedicated connection
 * held for the lock's whole life, plus a `state_locks` row naming the holder so others can be told who
 * it is. The advisory lock is the truth: when the holder's process dies, its session ends and Postgres
 * frees the lock, whatever the row says; a row whose session no longer holds the lock is reported stale
 * and overwritten by the next holder. Leases are recorded (heartbeats keep `lockInfo` informative) but
 * never expire a Postgres lock: a live session keeps it.
 */
import type { Clock } from '../core/clock.ts';
import { redact } from '../core/redact.ts';
import { LockHeldError, LockLostError, StateError } from './errors.ts';
import { newId } from './ids.ts';
import { LOCK_COLUMNS, lockInfoFromRow, type LockRow } from './lock-lease.ts';
import { HeldLock, resolveLockOptions, type LockManager } from './locks.ts';
import { ADVISORY_CLASS, advisoryKey, type PostgresDriver } from './sql/postgres-driver.ts';
import type { Lock, LockInfo, LockOptions, LockRequest } from './types.ts';

// The two-integer form of advisory locks shows up in pg_locks as (classid, objid, objsubid = 2).
const HOLDERS_SQL = `SELECT pid FROM pg_locks
  WHERE locktype = 'advisory' AND granted AND objsubid = 2
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND classid = CAST(CAST($1 AS bigint) AS oid) AND objid = CAST(CAST($2 AS bigint) AS oid)`;

/** How long `forceUnlock` waits for a terminated session to let go of the lock. */
const TERMINATION_WAIT_MS = 10_000;

export class AdvisoryLockManager implements LockManager {
  private readonly held = new Set<HeldLock>();
  private readonly key: number;

  constructor(
    private readonly db: PostgresDriver,
    private readonly env: string,
    private readonly clock: Clock,
    private readonly holder: { hostname: string; pid: number },
    private readonly location: string,
  ) {
    this.key = advisoryKey(db.schema, env);
  }

  async acquire(request: LockRequest, opts: LockOptions | undefined): Promise<Lock> {
    const { ttlMs, heartbeatMs } = resolveLockOptions(opts);
    const client = await this.db.connectDedicated();
    let lock: HeldLock | undefined;
    let ended = false;
    const lost = (cause?: unknown) => {
      if (lock && !lock.isReleased) {
        lock.lose(new LockLostError(`the database session holding lock ${lock.info.id} ended; the lock is gone`, { cause }));
      }
    };
    client.on('error', lost);
    client.on('end', () => {
      ended = true;
      lost();
    });
    let closing = false;
    const end = async () => {
      if (ended || closing) return;
      closing = true;
      await client.end().catch(() => {});
    };
    try {
      const r = await client.query<{ ok: boolean; session: number }>(
        'SELECT pg_try_advisory_lock($1, $2) AS ok, pg_backend_pid() AS session',
        [ADVISORY_CLASS, this.key],
      );
      const first = r.rows[0];
      if (!first?.ok) {
        await end();
        throw new LockHeldError(await this.info(), this.location);
      }
      const previous = (await client.query<LockRow>(`SELECT ${LOCK_COLUMNS} FROM state_locks WHERE env = $1`, [this.env])).rows[0];
      // We hold the advisory lock, so whoever the row names has lost its session.
      const tookOver = previous ? lockInfoFromRow(previous, 'session-gone') : undefined;
      const id = newId(this.clock);
      const now = this.clock.now();
      const at = now.toISOString();
      const expiresAt = new Date(now.getTime() + ttlMs).toISOString();
      await client.query(
        `INSERT INTO state_locks (env, ${LOCK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)
         ON CONFLICT (env) DO UPDATE SET lock_id = excluded.lock_id, operation = excluded.operation, who = excluded.who,
           pid = excluded.pid, hostname = excluded.hostname, session_pid = excluded.session_pid,
           acquired_at = excluded.acquired_at, heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at`,
        [this.env, id, request.operation, request.who, this.holder.pid, this.holder.hostname, first.session, at, expiresAt],
      );
      const info: LockInfo = {
        id,
        operation: request.operation,
        who: request.who,
        pid: this.holder.pid,
        hostname: this.holder.hostname,
        acquiredAt: at,
        heartbeatAt: at,
        expiresAt,
        stale: false,
      };
      lock = new HeldLock(
        info,
        tookOver,
        {
          renew: async (heartbeatAt, expires) => {
            if (ended) return false;
            const u = await client.query('UPDATE state_locks SET heartbeat_at = $3, expires_at = $4 WHERE env = $1 AND lock_id = $2', [
              this.env,
              id,
              heartbeatAt,
              expires,
            ]);
            return u.rowCount === 1;
          },
          release: async () => {
            if (ended) return;
            try {
              await client.query('DELETE FROM state_locks WHERE env = $1 AND lock_id = $2', [this.env, id]);
              await client.query('SELECT pg_advisory_unlock($1, $2)', [ADVISORY_CLASS, this.key]);
            } catch {
              // The session is broken; ending it frees the advisory lock anyway, and a leftover row is
              // reported stale and overwritten by the next holder.
            } finally {
              await end();
            }
          },
        },
        ttlMs,
        heartbeatMs,
        () => this.clock.now(),
        (l) => this.held.delete(l),
      );
      this.held.add(lock);
      return lock;
    } catch (e) {
      await end();
      throw e;
    }
  }

  private async holders(): Promise<number[]> {
    const rows = await this.db.all<{ pid: number }>(HOLDERS_SQL, [ADVISORY_CLASS, this.key]);
    return rows.map((r) => r.pid);
  }

  async info(): Promise<LockInfo | undefined> {
    const row = await this.db.get<LockRow>(`SELECT ${LOCK_COLUMNS} FROM state_locks WHERE env = $1`, [this.env]);
    if (!row) return undefined;
    const holders = await this.holders();
    return lockInfoFromRow(row, row.session_pid !== null && holders.includes(row.session_pid) ? undefined : 'session-gone');
  }

  async forceUnlock(id: string | undefined): Promise<boolean> {
    const row = await this.db.get<LockRow>(`SELECT ${LOCK_COLUMNS} FROM state_locks WHERE env = $1`, [this.env]);
    if (id !== undefined && row?.lock_id !== id) return false;
    // Only the session holding an advisory lock can unlock it, so freeing it means ending that session.
    const holders = await this.holders();
    for (const pid of holders) {
      try {
        await this.db.run('SELECT pg_terminate_backend($1)', [pid]);
      } catch (e) {
        throw new StateError(
          'STATE003',
          `The lock on ${this.location} is held by database session ${pid}, which this role may not terminate ` +
            `(${redact((e as Error).message)}). Ask a database administrator to run SELECT pg_terminate_backend(${pid}).`,
          { cause: e },
        );
      }
    }
    await this.waitUntilFree();
    const deleted =
      id === undefined
        ? await this.db.run('DELETE FROM state_locks WHERE env = $1', [this.env])
        : await this.db.run('DELETE FROM state_locks WHERE env = $1 AND lock_id = $2', [this.env, id]);
    return holders.length > 0 || deleted > 0;
  }

  /** Termination is asynchronous: wait (bounded) until Postgres has actually dropped the lock. */
  private async waitUntilFree(): Promise<void> {
    const deadline = Date.now() + TERMINATION_WAIT_MS;
    let delay = 5;
    while ((await this.holders()).length > 0) {
      if (Date.now() > deadline) {
        throw new StateError('STATE003', `The lock on ${this.location} was still held ${TERMINATION_WAIT_MS / 1000} s after terminating its session.`);
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 200);
    }
  }

  async releaseAll(): Promise<void> {
    for (const lock of [...this.held]) await lock.release();
  }
}
