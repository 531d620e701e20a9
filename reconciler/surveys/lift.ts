/**
 * Lift (issue 13 point 3): how much more often the invited group reached the outcome than the holdout,
 * with a 95% confidence interval for the difference. Pure: counts in, figures out.
 *
 * The interval is Newcombe's hybrid score interval (Newcombe 1998, "Interval estimation for the
 * difference between independent proportions: comparison of eleven methods", method 10): a Wilson score
 * interval for each rate, combined. Why this one: holdouts are small (10% of a survey's audience) and
 * outcomes such as a reorder are often rare or near-certain, where the textbook Wald interval
 * (difference ± 1.96 × its standard error) collapses to zero width at 0 or 1 successes and overshoots
 * [−1, 1]. Newcombe's interval stays inside [−1, 1], is never empty, and keeps close to its nominal 95%
 * coverage at small counts, which is why he recommends it.
 */

/** The 97.5% point of the standard normal distribution: a two-sided 95% interval. */
export const Z_95 = 1.959963984540054;

export const LIFT_METHOD = 'newcombe_hybrid_score';

export interface GroupCounts {
  /** People whose outcome window has closed (the denominator). */
  n: number;
  /** Of those, how many reached the outcome. */
  x: number;
}

export interface GroupRate extends GroupCounts {
  /** x / n; null when n = 0. */
  rate: number | null;
}

export interface Lift {
  invited: GroupRate;
  holdout: GroupRate;
  /** `no_data`: a group has nobody whose window closed, so nothing can be compared. */
  status: 'ok' | 'no_data';
  /** invited rate − holdout rate. */
  difference: number | null;
  /** 95% interval for the difference (Newcombe method 10). */
  ci: { lower: number; upper: number; level: 0.95; method: typeof LIFT_METHOD } | null;
  /** difference / holdout rate (0.25 = a quarter more often); null when the holdout rate is 0 (no base to scale). */
  relative_lift: number | null;
}

/** The Wilson score interval for x successes of n (n > 0), clamped to [0, 1] against rounding at the edges. */
export function wilsonInterval(x: number, n: number, z = Z_95): { lower: number; upper: number } {
  const p = x / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  // At x = 0 (or n) the exact limit is 0 (or 1); floating point lands a few ulps off.
  return { lower: x === 0 ? 0 : Math.max(0, centre - half), upper: x === n ? 1 : Math.min(1, centre + half) };
}

function checkCounts(name: string, g: GroupCounts): void {
  if (!Number.isInteger(g.n) || !Number.isInteger(g.x) || g.n < 0 || g.x < 0 || g.x > g.n) {
    throw new RangeError(`${name}: counts must be whole numbers with 0 ≤ x ≤ n (got x = ${g.x}, n = ${g.n})`);
  }
}

/** Compares the invited group with the holdout: rates, difference, its 95% interval, and the relative lift. */
export function computeLift(invited: GroupCounts, holdout: GroupCounts): Lift {
  checkCounts('invited', invited);
  checkCounts('holdout', holdout);
  const rate = (g: GroupCounts): GroupRate => ({ n: g.n, x: g.x, rate: g.n > 0 ? g.x / g.n : null });
  const i = rate(invited);
  const h = rate(holdout);
  if (i.rate === null || h.rate === null) return { invited: i, holdout: h, status: 'no_data', difference: null, ci: null, relative_lift: null };
  const p1 = i.rate;
  const p0 = h.rate;
  const w1 = wilsonInterval(i.x, i.n);
  const w0 = wilsonInterval(h.x, h.n);
  const d = p1 - p0;
  // Method 10: the lower limit takes how far the invited rate could be lower and the holdout rate higher
  // (each its own Wilson distance), the upper limit the opposite.
  const lower = d - Math.sqrt((p1 - w1.lower) ** 2 + (w0.upper - p0) ** 2);
  const upper = d + Math.sqrt((w1.upper - p1) ** 2 + (p0 - w0.lower) ** 2);
  return {
    invited: i,
    holdout: h,
    status: 'ok',
    difference: d,
    ci: { lower: Math.max(-1, lower), upper: Math.min(1, upper), level: 0.95, method: LIFT_METHOD },
    relative_lift: p0 > 0 ? d / p0 : null,
  };
}
