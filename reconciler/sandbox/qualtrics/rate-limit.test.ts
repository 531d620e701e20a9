import { describe, expect, it } from 'vitest';
import { LeakyBuckets } from './rate-limit.ts';

describe('LeakyBuckets', () => {
  it('admits a full bucket, refuses the next request and says how long until there is room', () => {
    const b = new LeakyBuckets();
    const brand = [{ key: 'brand', perMinute: 60 }];
    for (let i = 0; i < 60; i++) expect(b.take(brand, 0)).toBe(0);
    // 60/min drains one unit per second.
    expect(b.take(brand, 0)).toBeCloseTo(1000, 6);
    expect(b.take(brand, 500)).toBeCloseTo(500, 6);
    expect(b.take(brand, 1000)).toBe(0);
    expect(b.take(brand, 1000)).toBeGreaterThan(0);
  });

  it('drains completely after a minute of silence', () => {
    const b = new LeakyBuckets();
    const brand = [{ key: 'brand', perMinute: 3 }];
    for (let i = 0; i < 3; i++) b.take(brand, 0);
    expect(b.take(brand, 0)).toBeGreaterThan(0);
    for (let i = 0; i < 3; i++) expect(b.take(brand, 60_000)).toBe(0);
    expect(b.take(brand, 60_000)).toBeGreaterThan(0);
  });

  it('admits against all buckets or none: a refused endpoint call does not use up the brand', () => {
    const b = new LeakyBuckets();
    const both = [
      { key: 'brand', perMinute: 10 },
      { key: 'export', perMinute: 1 },
    ];
    expect(b.take(both, 0)).toBe(0);
    for (let i = 0; i < 5; i++) expect(b.take(both, 0)).toBeGreaterThan(0);
    const brandOnly = [{ key: 'brand', perMinute: 10 }];
    for (let i = 0; i < 9; i++) expect(b.take(brandOnly, 0)).toBe(0);
    expect(b.take(brandOnly, 0)).toBeGreaterThan(0);
  });

  it('does not credit a clock that runs backwards', () => {
    const b = new LeakyBuckets();
    const brand = [{ key: 'brand', perMinute: 1 }];
    expect(b.take(brand, 10_000)).toBe(0);
    expect(b.take(brand, 0)).toBeGreaterThan(0);
  });
});
