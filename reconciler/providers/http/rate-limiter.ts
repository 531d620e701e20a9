/**
 * Client-side rate limiting: a token bucket with a FIFO wait queue.
 *
 * - Fair: callers are served strictly in arrival order, whichever client instance they come from, so a
 *   large sync cannot starve a plan's refresh that shares the same credential.
 * - Shared: buckets live in a registry keyed by service + host + a hash of the credential, so every
 *   client built for the same account in one process draws from the same budget (the services count
 *   per account, not per socket). The key never contains the credential itself.
 * - Cooperative with the server: `blockFor` parks the whole bucket when the service answers 429 with
 *   Retry-After, so queued requests do not run into the same wall.
 */
import { createHash } from 'node:crypto';
import { systemTimer, type Timer } from './timer.ts';

export interface TokenBucketOptions {
  /** Sustained rate in requests per second (may be fractional, e.g. 100/60 for 100 per minute). */
  ratePerSecond: number;
  /**
   * Tokens available at once. Defaults to 1, i.e. requests are evenly spaced, which is the safe choice
   * against services that count in fixed one-second windows (a full bucket plus a window's refill
   * would otherwise allow up to twice the rate inside one window).
   */
  burst?: number;
  timer?: Timer;
}

interface Waiter {
  resolve: () => void;
  reject: (reason: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export class TokenBucket {
  private ratePerMs: number;
  private capacity: number;
  private tokens: number;
  private last: number;
  private blockedUntil = 0;
  private readonly queue: Waiter[] = [];
  private pumping = false;
  private readonly timer: Timer;

  constructor(options: TokenBucketOptions) {
    if (!(options.ratePerSecond > 0)) throw new RangeError('ratePerSecond must be positive');
    this.timer = options.timer ?? systemTimer;
    this.ratePerMs = options.ratePerSecond / 1000;
    this.capacity = Math.max(1, options.burst ?? 1);
    this.tokens = this.capacity;
    this.last = this.timer.now();
  }

  get ratePerSecond(): number {
    return this.ratePerMs * 1000;
  }

  get burst(): number {
    return this.capacity;
  }

  /** Number of callers waiting for a token. */
  get pending(): number {
    return this.queue.length;
  }

  /** Waits (in arrival order) until a request may be sent. */
  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject };
      if (signal) {
        waiter.signal = signal;
        waiter.onAbort = () => {
          const i = this.queue.indexOf(waiter);
          if (i >= 0) this.queue.splice(i, 1);
          reject(signal.reason);
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.queue.push(waiter);
      void this.pump();
    });
  }

  /** Holds every waiter back for `ms` (the service told us to back off). */
  blockFor(ms: number): void {
    if (ms <= 0) return;
    this.blockedUntil = Math.max(this.blockedUntil, this.timer.now() + ms);
  }

  /**
   * Tightens the limits when another client asks for a stricter budget on the same key; never loosens
   * them, so the most conservative configuration in the process wins.
   */
  tighten(options: Pick<TokenBucketOptions, 'ratePerSecond' | 'burst'>): void {
    const rate = options.ratePerSecond / 1000;
    if (rate > 0 && rate < this.ratePerMs) this.ratePerMs = rate;
    const burst = Math.max(1, options.burst ?? 1);
    if (burst < this.capacity) {
      this.capacity = burst;
      this.tokens = Math.min(this.tokens, burst);
    }
  }

  private refill(now: number): void {
    if (now > this.last) {
      this.tokens = Math.min(this.capacity, this.tokens + (now - this.last) * this.ratePerMs);
      this.last = now;
    }
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0) {
        const now = this.timer.now();
        if (now < this.blockedUntil) {
          await this.timer.sleep(this.blockedUntil - now);
          continue;
        }
        this.refill(now);
        if (this.tokens >= 1) {
          this.tokens -= 1;
          const waiter = this.queue.shift()!;
          if (waiter.signal && waiter.onAbort) waiter.signal.removeEventListener('abort', waiter.onAbort);
          waiter.resolve();
          continue;
        }
        await this.timer.sleep(Math.max(1, Math.ceil((1 - this.tokens) / this.ratePerMs)));
      }
    } finally {
      this.pumping = false;
    }
  }
}

/** Buckets by key; the process-wide instance is `sharedLimiters`. Tests pass their own registry. */
export class LimiterRegistry {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(private readonly timer: Timer = systemTimer) {}

  /**
   * The bucket for `key`, created on first use. A later caller asking for a lower rate tightens the
   * shared bucket (see `TokenBucket.tighten`).
   */
  get(key: string, options: Pick<TokenBucketOptions, 'ratePerSecond' | 'burst'>): TokenBucket {
    const existing = this.buckets.get(key);
    if (existing) {
      existing.tighten(options);
      return existing;
    }
    const bucket = new TokenBucket({ ...options, timer: this.timer });
    this.buckets.set(key, bucket);
    return bucket;
  }

  keys(): string[] {
    return [...this.buckets.keys()].sort();
  }
}

export const sharedLimiters = new LimiterRegistry();

/** A short, non-reversible fingerprint of a credential for use in limiter keys. */
export function credentialFingerprint(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 16);
}
