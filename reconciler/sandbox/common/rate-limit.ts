/**
 * Rate limiters the emulators use to answer 429 the way the real services do. Both take a `now()` in
 * milliseconds so tests can drive time by hand instead of sleeping.
 */

export type Acquire = { ok: true } | { ok: false; /** Milliseconds until a request would be admitted. */ retryAfterMs: number };

/**
 * At most `limit` admitted requests in any window of `windowMs` (Customer.io App: "10 requests per 1s").
 * Keeps the timestamps of the last `limit` admitted requests in a ring, so each call is O(1): a request is
 * admitted when the oldest of those is already outside the window.
 */
export class SlidingWindowLimiter {
  private readonly ring: number[];
  private head = 0;
  private size = 0;

  constructor(
    readonly limit: number,
    readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer, got ${limit}`);
    if (!(windowMs > 0)) throw new RangeError(`windowMs must be positive, got ${windowMs}`);
    this.ring = new Array<number>(limit).fill(0);
  }

  tryAcquire(): Acquire {
    const t = this.now();
    if (this.size < this.limit) {
      this.ring[(this.head + this.size) % this.limit] = t;
      this.size++;
      return { ok: true };
    }
    const oldest = this.ring[this.head]!;
    if (oldest > t - this.windowMs) return { ok: false, retryAfterMs: oldest + this.windowMs - t };
    this.ring[this.head] = t;
    this.head = (this.head + 1) % this.limit;
    return { ok: true };
  }

  reset(): void {
    this.head = 0;
    this.size = 0;
  }
}

/**
 * A token bucket (equivalently a leaky bucket seen from the sender): holds up to `capacity` tokens and
 * refills `refillPerSecond` continuously. Qualtrics documents its limits as a leaky bucket per minute.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly capacity: number,
    readonly refillPerSecond: number,
    private readonly now: () => number = Date.now,
  ) {
    if (!(capacity >= 1)) throw new RangeError(`capacity must be at least 1, got ${capacity}`);
    if (!(refillPerSecond > 0)) throw new RangeError(`refillPerSecond must be positive, got ${refillPerSecond}`);
    this.tokens = capacity;
    this.last = now();
  }

  tryTake(count = 1): Acquire {
    const t = this.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((t - this.last) / 1000) * this.refillPerSecond);
    this.last = t;
    if (this.tokens >= count) {
      this.tokens -= count;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.ceil(((count - this.tokens) / this.refillPerSecond) * 1000) };
  }

  reset(): void {
    this.tokens = this.capacity;
    this.last = this.now();
  }
}
