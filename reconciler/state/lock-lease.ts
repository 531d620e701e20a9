/**
 * The embedded store's lock: one row per environment naming its holder, with a lease.
 *
 * A crashed process can never leave it held forever: the lock is stale (and the next acquirer takes it
 * over) once its lease runs out without a heartbeat, or at once when the holder ran on this host and its
 * pid no longer exists. Reading and replacing the row happen in one write transaction, so two acquirers
 * can never both win.
 */
import type { Clock } from '../core/clock.ts';
import { LockHeldError } from './errors.ts';
import { newId } from './ids.ts';
import { HeldLock, isProcessAlive, resolveLockOptions, type LockManager } from './locks.ts';
import type { SqlDriver } from './sql/executor.ts';
import type { Lock, LockInfo, LockOptions, LockRequest } from './types.ts';

export interface LockRow {
  lock_id: string;
  operation: string;
  who: string;
  pid: number;
  hostname: string;
  session_pid: number | null;
  acquired_at: string;
  heartbeat_at: string;
  expires_at: string;
}

export const LOCK_COLUMNS = 'lock_id, operation, who, pid, hostname, session_pid, acquired_at, heartbeat_at, expires_at';

export function lockInfoFromRow(row: LockRow, stale: LockInfo['staleReason'] | undefined): LockInfo {
  const info: LockInfo = {
    id: row.lock_id,
    operation: row.operation,
    who: row.who,
    pid: row.pid,
    hostname: row.hostname,
    acquiredAt: row.acquired_at,
    heartbeatAt: row.heartbeat_at,
    expiresAt: row.expires_at,
    stale: stale !== undefined,
  };
  if (stale) info.staleReason = stale;
  return info;
}

export class LeaseLockManager implements LockManager {
  private readonly held = new Set<HeldLock>();

  constructor(
    private readonly db: SqlDriver,
    private readonly env: string,
    private readonly clock: Clock,
    private readonly holder: { hostname: string; pid: number },
    private readonly location: string,
    private readonly isAlive: (pid: number) => boolean = isProcessAlive,
  ) {}

  private staleness(row: LockRow): LockInfo['staleReason'] | undefined {
    if (row.expires_at <= this.clock.now().toISOString()) return 'lease-expired';
    // A pid only means something on the host that issued it.
    if (row.hostname === this.holder.hostname && !this.isAlive(row.pid)) return 'holder-dead';
    return undefined;
  }

  async acquire(request: LockRequest, opts: LockOptions | undefined): Promise<Lock> {
    const { ttlMs, heartbeatMs } = resolveLockOptions(opts);
    const id = newId(this.clock);
    const { info, tookOver } = await this.db.transaction(async () => {
      const row = await this.db.get<LockRow>(`SELECT ${LOCK_COLUMNS} FROM state_locks WHERE env = $1`, [this.env]);
      let tookOver: LockInfo | undefined;
      if (row) {
        const current = lockInfoFromRow(row, this.staleness(row));
        if (!current.stale) throw new LockHeldError(current, this.location);
        tookOver = current;
        await this.db.run('DELETE FROM state_locks WHERE env = $1 AND lock_id = $2', [this.env, row.lock_id]);
      }
      const now = this.clock.now();
      const at = now.toISOString();
      const expiresAt = new Date(now.getTime() + ttlMs).toISOString();
      await this.db.run(
        `INSERT INTO state_locks (env, ${LOCK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $7, $8)`,
        [this.env, id, request.operation, request.who, this.holder.pid, this.holder.hostname, at, expiresAt],
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
      return { info, tookOver };
    });
    const lock = new HeldLock(
      info,
      tookOver,
      {
        renew: async (heartbeatAt, expiresAt) =>
          (await this.db.run('UPDATE state_locks SET heartbeat_at = $3, expires_at = $4 WHERE env = $1 AND lock_id = $2', [
            this.env,
            id,
            heartbeatAt,
            expiresAt,
          ])) === 1,
        release: async () => {
          await this.db.run('DELETE FROM state_locks WHERE env = $1 AND lock_id = $2', [this.env, id]);
        },
      },
      ttlMs,
      heartbeatMs,
      () => this.clock.now(),
      (l) => this.held.delete(l),
    );
    this.held.add(lock);
    return lock;
  }

  async info(): Promise<LockInfo | undefined> {
    const row = await this.db.get<LockRow>(`SELECT ${LOCK_COLUMNS} FROM state_locks WHERE env = $1`, [this.env]);
    return row ? lockInfoFromRow(row, this.staleness(row)) : undefined;
  }

  async forceUnlock(id: string | undefined): Promise<boolean> {
    const n =
      id === undefined
        ? await this.db.run('DELETE FROM state_locks WHERE env = $1', [this.env])
        : await this.db.run('DELETE FROM state_locks WHERE env = $1 AND lock_id = $2', [this.env, id]);
    return n > 0;
  }

  async releaseAll(): Promise<void> {
    for (const lock of [...this.held]) await lock.release();
  }
}
