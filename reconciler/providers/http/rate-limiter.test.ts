import { describe, expect, it } from 'vitest';
import { credentialFingerprint, LimiterRegistry, TokenBucket } from './rate-limiter.ts';
import { ManualTimer } from './timer.ts';

describe('TokenBucket', () => {
  it('serves waiters in arrival order at the configured rate', async () => {
    const timer = new ManualTimer(0);
    const bucket = new TokenBucket({ ratePerSecond: 10, timer });
    const order: Array<[number, number]> = [];
    await Promise.all(Array.from({ length: 20 }, (_, i) => bucket.acquire().then(() => order.push([i, timer.now()]))));
    expect(order.map(([i]) => i)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    // 20 requests at 10/s with burst 1: the last one goes out at 1.9 s.
    expect(order.map(([, t]) => t)).toEqual(Array.from({ length: 20 }, (_, i) => i * 100));
  });

  it('lets a burst through at once and then throttles to the rate', async () => {
    const timer = new ManualTimer(0);
    const bucket = new TokenBucket({ ratePerSecond: 50, burst: 5, timer });
    const times: number[] = [];
    await Promise.all(Array.from({ length: 15 }, () => bucket.acquire().then(() => times.push(timer.now()))));
    expect(times.slice(0, 5)).toEqual([0, 0, 0, 0, 0]);
    expect(times[14]).toBe(200);
    // Throughput over the throttled part matches 50/s.
    expect((10 / (times[14]! - times[4]!)) * 1000).toBe(50);
  });

  it('is fair across callers sharing one bucket', async () => {
    const registry = new LimiterRegistry(new ManualTimer(0));
    const a = registry.get('customerio-app:host:abc', { ratePerSecond: 10 });
    const b = registry.get('customerio-app:host:abc', { ratePerSecond: 10 });
    expect(a).toBe(b);
    const served: string[] = [];
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 4; i++) {
      calls.push(a.acquire().then(() => served.push(`sync-${i}`)));
      calls.push(b.acquire().then(() => served.push(`plan-${i}`)));
    }
    await Promise.all(calls);
    expect(served).toEqual(['sync-0', 'plan-0', 'sync-1', 'plan-1', 'sync-2', 'plan-2', 'sync-3', 'plan-3']);
  });

  it('keeps the stricter configuration when clients disagree', () => {
    const registry = new LimiterRegistry(new ManualTimer(0));
    registry.get('k', { ratePerSecond: 100, burst: 10 });
    const bucket = registry.get('k', { ratePerSecond: 20, burst: 2 });
    expect(bucket.ratePerSecond).toBe(20);
    expect(bucket.burst).toBe(2);
    registry.get('k', { ratePerSecond: 500, burst: 50 });
    expect(bucket.ratePerSecond).toBe(20);
  });

  it('holds everyone back while blocked by a Retry-After', async () => {
    const timer = new ManualTimer(0);
    const bucket = new TokenBucket({ ratePerSecond: 1000, burst: 100, timer });
    bucket.blockFor(2500);
    await bucket.acquire();
    expect(timer.now()).toBe(2500);
  });

  it('drops an aborted waiter from the queue', async () => {
    const timer = new ManualTimer(0);
    const bucket = new TokenBucket({ ratePerSecond: 1, timer });
    await bucket.acquire();
    const controller = new AbortController();
    const aborted = bucket.acquire(controller.signal);
    controller.abort(new Error('stop'));
    await expect(aborted).rejects.toThrow('stop');
    await bucket.acquire();
    expect(bucket.pending).toBe(0);
  });
});

describe('credentialFingerprint', () => {
  it('is stable and does not contain the credential', () => {
    const f = credentialFingerprint('site', 'secret-key-123');
    expect(f).toBe(credentialFingerprint('site', 'secret-key-123'));
    expect(f).not.toContain('secret');
    expect(f).not.toBe(credentialFingerprint('site', 'secret-key-124'));
  });
});
