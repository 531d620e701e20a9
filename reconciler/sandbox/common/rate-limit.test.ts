import { describe, expect, it } from 'vitest';
import { SlidingWindowLimiter, TokenBucket } from './rate-limit.ts';

describe('SlidingWindowLimiter', () => {
  it('admits `limit` requests per window and tells how long to wait after that', () => {
    let now = 1_000;
    const l = new SlidingWindowLimiter(3, 1000, () => now);
    expect([l.tryAcquire(), l.tryAcquire(), l.tryAcquire()].every((r) => r.ok)).toBe(true);
    now = 1_400;
    expect(l.tryAcquire()).toEqual({ ok: false, retryAfterMs: 600 });
    now = 2_000;
    expect(l.tryAcquire().ok).toBe(true);
  });

  it('slides: a rejected request does not use up capacity', () => {
    let now = 0;
    const l = new SlidingWindowLimiter(2, 1000, () => now);
    l.tryAcquire();
    now = 500;
    l.tryAcquire();
    now = 900;
    expect(l.tryAcquire().ok).toBe(false);
    now = 1000;
    expect(l.tryAcquire().ok).toBe(true); // the request at 0 left the window
    expect(l.tryAcquire().ok).toBe(false); // the one at 500 is still inside
    now = 1500;
    expect(l.tryAcquire().ok).toBe(true);
  });

  it('reset empties the window', () => {
    const l = new SlidingWindowLimiter(1, 1000, () => 0);
    l.tryAcquire();
    expect(l.tryAcquire().ok).toBe(false);
    l.reset();
    expect(l.tryAcquire().ok).toBe(true);
  });

  it('refuses nonsensical limits', () => {
    expect(() => new SlidingWindowLimiter(0, 1000)).toThrow(RangeError);
    expect(() => new SlidingWindowLimiter(1, 0)).toThrow(RangeError);
  });
});

describe('TokenBucket', () => {
  it('drains to empty, then refills continuously', () => {
    let now = 0;
    const b = new TokenBucket(2, 1, () => now);
    expect(b.tryTake().ok).toBe(true);
    expect(b.tryTake().ok).toBe(true);
    expect(b.tryTake()).toEqual({ ok: false, retryAfterMs: 1000 });
    now = 500;
    expect(b.tryTake()).toEqual({ ok: false, retryAfterMs: 500 });
    now = 1000;
    expect(b.tryTake().ok).toBe(true);
  });

  it('never holds more than its capacity', () => {
    let now = 0;
    const b = new TokenBucket(2, 10, () => now);
    now = 60_000;
    expect(b.tryTake().ok).toBe(true);
    expect(b.tryTake().ok).toBe(true);
    expect(b.tryTake().ok).toBe(false);
  });
});
