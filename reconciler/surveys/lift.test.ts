import { describe, expect, it } from 'vitest';
import { computeLift, wilsonInterval } from './lift.ts';

describe('computeLift: Newcombe 1998 method 10 (hybrid score interval)', () => {
  /*
   * Worked by hand, Newcombe 1998, Table II example (a): 56/70 against 48/80, z = 1.959964, z² = 3.841459.
   *
   * Wilson interval of 56/70 (p1 = 0.8):
   *   denom  = 1 + z²/n             = 1 + 3.841459/70            = 1.054878
   *   centre = (p + z²/2n) / denom  = (0.8 + 0.027439) / 1.054878 = 0.784393
   *   half   = z·√(p(1−p)/n + z²/4n²) / denom = 1.959964·√(0.00228571 + 0.00019599) / 1.054878 = 0.092560
   *   l1 = 0.691834, u1 = 0.876953
   * Wilson interval of 48/80 (p0 = 0.6), the same way: l0 = 0.490455, u0 = 0.700382.
   * Difference d = 0.8 − 0.6 = 0.2000.
   *   lower = d − √((p1 − l1)² + (u0 − p0)²) = 0.2 − √(0.011700 + 0.010077) = 0.2 − 0.147569 = 0.0524
   *   upper = d + √((u1 − p1)² + (p0 − l0)²) = 0.2 + √(0.005922 + 0.012000) = 0.2 + 0.133873 = 0.3339
   * which is the paper's method-10 row for (a): 0.0524 to 0.3339. (The brief quoted a difference of
   * 0.1833 and 0.0377 to 0.3244; 56/70 − 48/80 is 0.2 exactly, and 0.0524–0.3339 is what the formula and
   * the paper give.) Relative lift: 0.2 / 0.6 = 0.3333.
   */
  it('matches the paper’s example (a), 56/70 vs 48/80, step by step', () => {
    const w1 = wilsonInterval(56, 70);
    expect(w1.lower).toBeCloseTo(0.691834, 6);
    expect(w1.upper).toBeCloseTo(0.876953, 6);
    const w0 = wilsonInterval(48, 80);
    expect(w0.lower).toBeCloseTo(0.490455, 6);
    expect(w0.upper).toBeCloseTo(0.700382, 6);
    const r = computeLift({ n: 70, x: 56 }, { n: 80, x: 48 });
    expect(r.status).toBe('ok');
    expect(r.invited.rate).toBeCloseTo(0.8, 12);
    expect(r.holdout.rate).toBeCloseTo(0.6, 12);
    expect(r.difference).toBeCloseTo(0.2, 12);
    expect(r.ci!.lower).toBeCloseTo(0.0524, 4);
    expect(r.ci!.upper).toBeCloseTo(0.3339, 4);
    expect(r.ci!.method).toBe('newcombe_hybrid_score');
    expect(r.relative_lift).toBeCloseTo(1 / 3, 12);
  });

  // The paper's other examples (Table II, method 10), computed with the same steps.
  it.each([
    ['(b) 9/10 vs 3/10', 9, 10, 3, 10, 0.6, 0.1705, 0.809],
    ['(c) 6/7 vs 2/7', 6, 7, 2, 7, 0.5714, 0.0582, 0.8062],
    ['(d) 5/56 vs 0/29', 5, 56, 0, 29, 0.0893, -0.0381, 0.1926],
    ['(e) 0/10 vs 0/20', 0, 10, 0, 20, 0, -0.1611, 0.2775],
    ['(g) 10/10 vs 0/20', 10, 10, 0, 20, 1, 0.6791, 1],
  ])('example %s', (_name, x1, n1, x0, n0, d, lo, hi) => {
    const r = computeLift({ n: n1, x: x1 }, { n: n0, x: x0 });
    expect(r.difference).toBeCloseTo(d, 4);
    expect(r.ci!.lower).toBeCloseTo(lo, 4);
    expect(r.ci!.upper).toBeCloseTo(hi, 4);
  });

  it('stays inside [−1, 1] and contains the difference at the extremes (where Wald collapses)', () => {
    const allVsNone = computeLift({ n: 5, x: 5 }, { n: 5, x: 0 });
    expect(allVsNone.difference).toBe(1);
    expect(allVsNone.ci!.upper).toBe(1);
    expect(allVsNone.ci!.lower).toBeGreaterThan(0);
    expect(allVsNone.ci!.lower).toBeLessThan(1);
    const noneVsAll = computeLift({ n: 5, x: 0 }, { n: 5, x: 5 });
    expect(noneVsAll.ci!.lower).toBe(-1);
    expect(noneVsAll.ci!.upper).toBeCloseTo(-allVsNone.ci!.lower, 12);
    const bothZero = computeLift({ n: 40, x: 0 }, { n: 4, x: 0 });
    expect(bothZero.difference).toBe(0);
    // Not a zero-width interval: 0 of 4 says little about the holdout's rate.
    expect(bothZero.ci!.lower).toBeLessThan(-0.4);
    expect(bothZero.ci!.upper).toBeGreaterThan(0);
  });

  it('gives no relative lift when the holdout rate is 0, and a negative one when invited did worse', () => {
    expect(computeLift({ n: 10, x: 3 }, { n: 10, x: 0 }).relative_lift).toBeNull();
    expect(computeLift({ n: 10, x: 2 }, { n: 10, x: 4 }).relative_lift).toBeCloseTo(-0.5, 12);
    const all = computeLift({ n: 10, x: 10 }, { n: 10, x: 10 });
    expect(all.difference).toBe(0);
    expect(all.relative_lift).toBe(0);
  });

  it('is "no data" when a group has nobody whose window closed', () => {
    for (const [i, h] of [
      [{ n: 0, x: 0 }, { n: 10, x: 3 }],
      [{ n: 10, x: 3 }, { n: 0, x: 0 }],
      [{ n: 0, x: 0 }, { n: 0, x: 0 }],
    ] as const) {
      const r = computeLift(i, h);
      expect(r.status).toBe('no_data');
      expect(r.difference).toBeNull();
      expect(r.ci).toBeNull();
      expect(r.relative_lift).toBeNull();
    }
    expect(computeLift({ n: 0, x: 0 }, { n: 10, x: 3 }).holdout.rate).toBeCloseTo(0.3, 12);
  });

  it('refuses counts that cannot be', () => {
    expect(() => computeLift({ n: 3, x: 4 }, { n: 1, x: 0 })).toThrow(RangeError);
    expect(() => computeLift({ n: 3, x: -1 }, { n: 1, x: 0 })).toThrow(RangeError);
    expect(() => computeLift({ n: 3, x: 1.5 }, { n: 1, x: 0 })).toThrow(RangeError);
  });
});
