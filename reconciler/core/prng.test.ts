import { describe, expect, it } from 'vitest';
import { createPrng } from './prng.ts';

describe('createPrng', () => {
  it('repeats the same sequence for the same seed', () => {
    const a = createPrng(42);
    const b = createPrng(42);
    const seqA = Array.from({ length: 20 }, () => a.next());
    const seqB = Array.from({ length: 20 }, () => b.next());
    expect(seqA).toEqual(seqB);
    expect(new Set(seqA).size).toBe(20);
  });

  it('gives different sequences for different seeds', () => {
    const a = Array.from({ length: 5 }, createPrng(1).next);
    const b = Array.from({ length: 5 }, createPrng(2).next);
    expect(a).not.toEqual(b);
  });

  it('keeps int() inside its inclusive bounds and reaches both ends', () => {
    const p = createPrng(7);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const n = p.int(3, 6);
      expect(n).toBeGreaterThanOrEqual(3);
      expect(n).toBeLessThanOrEqual(6);
      seen.add(n);
    }
    expect([...seen].sort()).toEqual([3, 4, 5, 6]);
  });

  it('does not consume draws for certain outcomes, so unused faults do not shift the sequence', () => {
    const a = createPrng(9);
    const b = createPrng(9);
    expect(a.chance(0)).toBe(false);
    expect(a.chance(1)).toBe(true);
    expect(a.next()).toBe(b.next());
  });

  it('produces hex strings of the requested length', () => {
    const p = createPrng(3);
    expect(p.hex(6)).toMatch(/^[0-9a-f]{6}$/);
    expect(p.hex(32)).toMatch(/^[0-9a-f]{32}$/);
  });

  it('approximates the requested probability', () => {
    const p = createPrng(11);
    let hits = 0;
    for (let i = 0; i < 10_000; i++) if (p.chance(0.3)) hits++;
    expect(hits).toBeGreaterThan(2700);
    expect(hits).toBeLessThan(3300);
  });
});
