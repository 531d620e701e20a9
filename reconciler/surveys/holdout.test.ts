import { describe, expect, it } from 'vitest';
import { holdoutPosition, holdoutShare, inHoldout } from './holdout.ts';

const ids = (n: number) => Array.from({ length: n }, (_, i) => `cust_${100000 + i}`);

describe('holdout', () => {
  it('answers the same for the same identifier and target, every time', () => {
    for (const id of ids(1000)) {
      expect(inHoldout(id, 'post_purchase_fit', 0.1)).toBe(inHoldout(id, 'post_purchase_fit', 0.1));
      expect(holdoutPosition(id, 'post_purchase_fit')).toBe(holdoutPosition(id, 'post_purchase_fit'));
    }
    // Pinned values: a change of hash would silently move people in or out of every running holdout.
    expect(holdoutPosition('cust_1', 'post_purchase_fit')).toBe(0.9108079799952196);
  });

  it('is keyed by target too: one person is not held out of every survey at once', () => {
    const a = ids(10_000).filter((id) => inHoldout(id, 'a', 0.1));
    const b = new Set(ids(10_000).filter((id) => inHoldout(id, 'b', 0.1)));
    const both = a.filter((id) => b.has(id)).length;
    // Independent 10% draws share about 1% (100 of 10,000), not 10%.
    expect(both).toBeGreaterThan(40);
    expect(both).toBeLessThan(200);
  });

  it.each([
    ['10%', 0.1],
    ['15%', 0.15],
  ])('holds out %s of 100,000 ids within ±0.5 percentage points', (pct, share) => {
    expect(holdoutShare(pct)).toBeCloseTo(share, 12);
    const held = ids(100_000).filter((id) => inHoldout(id, 'lapsed_diagnosis', share)).length;
    expect(Math.abs(held / 100_000 - share)).toBeLessThanOrEqual(0.005);
  });

  it('holds out nobody at 0% and everybody at 100%', () => {
    expect(ids(1000).some((id) => inHoldout(id, 't', 0))).toBe(false);
    expect(ids(1000).every((id) => inHoldout(id, 't', holdoutShare('100%')))).toBe(true);
    expect(holdoutShare(undefined)).toBe(0);
  });
});
