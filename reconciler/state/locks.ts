/**
 * What both lock implementations share: the held-lock handle (lease renewal, loss signalling, release)
 * and the contract each backend fulfils.
 */
import { LockLostError } from './errors.ts';
import type { Lock, LockInfo, LockOptions, LockRequest } from './types.ts';

export const DEFAULT_LOCK_TTL_MS = 120_000;

export interface LockManager {
  acquire(request: LockRequest, opts: LockOptions | undefined): Promise<Lock>;
  info(): Promise<LockInfo | undefined>;
  forceUnlock(id: string | undefined): Promise<boolean>;
  /** Releases every lock this store still holds (store close). */
  releaseAll(): Promise<void>;
}

/** How a held lock talks to its backend. */
export interface LockOps {
  /** Extends the lease to `expiresAt`; resolves false when the lock is no longer ours. */
  renew(heartbeatAt: string, expiresAt: string): Promise<boolean>;
  /** Gives the lock up. Must not throw when the lock is already gone. */
  release(): Promise<void>;
}

export function resolveLockOptions(opts: LockOptions | undefined): { ttlMs: number; heartbeatMs: number | false } {
  const ttlMs = opts?.ttlMs ?? DEFAULT_LOCK_TTL_MS;
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError(`lock ttlMs must be a positive number, got ${ttlMs}`);
  const heartbeatMs = opts?.heartbeatMs === undefined ? Math.max(1, Math.floor(ttlMs / 4)) : opts.heartbeatMs;
  if (heartbeatMs !== false && (!Number.isFinite(heartbeatMs) || heartbeatMs <= 0)) {
    throw new RangeError(`lock heartbeatMs must be a positive number or false, got ${heartbeatMs}`);
  }
  return { ttlMs, heartbeatMs };
}

export class HeldLock implements Lock {
  readonly tookOver?: LockInfo;
  private current: LockInfo;
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private released = false;

  constructor(
    info: LockInfo,
    tookOver: LockInfo | undefined,
    private readonly ops: LockOps,
    private readonly ttlMs: number,
    heartbeatMs: number | false,
    private readonly now: () => Date,
    private readonly onDone: (lock: HeldLock) => void,
  ) {
    this.current = info;
    if (tookOver) this.tookOver = tookOver;
    if (heartbeatMs !== false) {
      // Renewal failures are not fatal by themselves (a transient database error): the lease still runs,
      // and the next renewal tells whether the lock survived.
      this.timer = setInterval(() => void this.heartbeat().catch(() => {}), heartbeatMs);
      // A forgotten lock must not keep the process alive; its lease then simply runs out.
      this.timer.unref();
    }
  }

  get info(): LockInfo {
    return { ...this.current };
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  async heartbeat(): Promise<void> {
    if (this.released) throw new LockLostError(`lock ${this.current.id} was already released`);
    if (this.controller.signal.aborted) throw this.controller.signal.reason;
    const now = this.now();
    const heartbeatAt = now.toISOString();
    const expiresAt = new Date(now.getTime() + this.ttlMs).toISOString();
    const ours = await this.ops.renew(heartbeatAt, expiresAt);
    if (!ours) {
      const err = new LockLostError(
        `lock ${this.current.id} for "${this.current.operation}" is no longer held: it was force-unlocked or taken over after its lease expired`,
      );
      this.lose(err);
      throw err;
    }
    this.current = { ...this.current, heartbeatAt, expiresAt };
  }

  /** Marks the lock lost (the backend noticed first, e.g. the Postgres session died). */
  lose(err: LockLostError): void {
    this.stopTimer();
    if (!this.controller.signal.aborted) this.controller.abort(err);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.stopTimer();
    try {
      await this.ops.release();
    } finally {
      this.onDone(this);
    }
  }

  get isReleased(): boolean {
    return this.released;
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** Whether a process with this pid exists on this host. EPERM means it exists but belongs to someone else. */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
