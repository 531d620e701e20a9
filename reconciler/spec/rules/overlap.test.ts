/**
 * canOverlap on hand-written pairs: each verdict is worked out by hand, and every overlap's witness is
 * checked against both conditions with the evaluator. The database-backed property test is in
 * reconciler/audiences/overlap.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { Condition } from '../schema/segment.ts';
import { canOverlap, describeProfile, evaluate, REFERENCE_NOW, type OverlapContext, type Verdict } from './overlap.ts';

const SEGMENTS: Record<string, Condition | null> = {
  cancel_intent: { all: [{ attribute: { field: 'status', op: 'eq', value: 'active' } }, { event: { name: 'cancel_requested', occurred: true, to: '2d' } }] },
  loop: { segment: 'loop' },
  from_cio: null,
};

const ctx: OverlapContext = {
  fieldTypes: { category: 'enum', status: 'enum', note: 'string', orders: 'number', last_at: 'timestamp', vip: 'boolean' },
  enumValues: { category: ['consumables', 'apparel'], status: ['active', 'cancelled'] },
  segmentConditions: (n) => SEGMENTS[n],
};

type Op = NonNullable<Condition['attribute']>['op'];
const at = (field: string, op: Op, value?: unknown, duration?: string): Condition => ({
  attribute: { field, op, ...(value === undefined ? {} : { value: value as string }), ...(duration ? { duration } : {}) },
});
const ev = (name: string, w: { from?: string; to?: string; occurred?: boolean; count?: { min?: number; max?: number } } = {}): Condition => ({
  event: { name, occurred: w.occurred ?? true, ...(w.from ? { from: w.from } : {}), ...(w.to ? { to: w.to } : {}), ...(w.count ? { count: w.count } : {}) },
});
const all = (...c: Condition[]): Condition => ({ all: c });
const any = (...c: Condition[]): Condition => ({ any: c });
const not = (c: Condition): Condition => ({ not: c });

function verdict(a: Condition, b: Condition, c: OverlapContext = ctx): Verdict['verdict'] {
  const v = canOverlap(a, b, c);
  if (v.verdict === 'overlap') {
    // A witness is only ever shown when it lands in both.
    const now = { ...c, nowMs: c.nowMs ?? REFERENCE_NOW };
    expect(evaluate(a, v.witness, now)).toBe(true);
    expect(evaluate(b, v.witness, now)).toBe(true);
  }
  return v.verdict;
}

describe('canOverlap', () => {
  it.each<[string, Condition, Condition, Verdict['verdict']]>([
    ['different enum values', at('category', 'eq', 'consumables'), at('category', 'eq', 'apparel'), 'disjoint'],
    ['the same value', at('category', 'eq', 'apparel'), at('category', 'in', ['apparel', 'consumables']), 'overlap'],
    ['enum: not_in covers the rest of the domain', at('status', 'not_in', ['active']), at('status', 'not_in', ['cancelled']), 'disjoint'],
    ['string: not_in leaves other strings', at('note', 'not_in', ['a']), at('note', 'not_in', ['b']), 'overlap'],
    ['exists and not_exists', at('note', 'exists'), at('note', 'not_exists'), 'disjoint'],
    ['neq and not eq overlap on a missing attribute? no: neq needs it', at('note', 'neq', 'a'), not(at('note', 'exists')), 'disjoint'],
    ['not eq takes in a missing attribute', not(at('note', 'eq', 'a')), at('orders', 'gt', 3), 'overlap'],
    ['numbers: touching open ends', at('orders', 'gt', 3), at('orders', 'lte', 3), 'disjoint'],
    ['numbers: touching closed ends', at('orders', 'gte', 3), at('orders', 'lte', 3), 'overlap'],
    ['numbers: between and gt', at('orders', 'between', [1, 5]), at('orders', 'gt', 5), 'disjoint'],
    ['numbers: between and gte its high end', at('orders', 'between', [1, 5]), at('orders', 'gte', '5.0'), 'overlap'],
    ['numbers: a gap between reals', at('orders', 'gt', 1), at('orders', 'lt', 2), 'overlap'],
    ['numbers: eq and neq written differently', at('orders', 'eq', 30), at('orders', 'neq', '30.0'), 'disjoint'],
    ['numbers: in minus not_in', at('orders', 'in', [1, 2]), at('orders', 'not_in', [1, 2]), 'disjoint'],
    ['unparsed number row: exists and every comparison negated', at('orders', 'exists'), all(not(at('orders', 'gt', 0)), not(at('orders', 'lte', 0))), 'overlap'],
    ['within and older_than at the same age', at('last_at', 'within', undefined, '60d'), at('last_at', 'older_than', undefined, '60d'), 'disjoint'],
    ['within 61d and older_than 60d', at('last_at', 'within', undefined, '61d'), at('last_at', 'older_than', undefined, '60d'), 'overlap'],
    ['timestamps: fixed instants', at('last_at', 'gt', '2026-01-01T00:00:00Z'), at('last_at', 'lte', '2026-01-01T00:00:00Z'), 'disjoint'],
    ['timestamps: instants and ages without a now', at('last_at', 'gt', '2026-01-01T00:00:00Z'), at('last_at', 'older_than', undefined, '30d'), 'unknown'],
    ['booleans written differently', at('vip', 'eq', 'TRUE'), at('vip', 'eq', true), 'overlap'],
    ['booleans: true and not true', at('vip', 'eq', true), at('vip', 'neq', 'true'), 'disjoint'],
    ['contains and eq a value without it', at('note', 'contains', 'late'), at('note', 'eq', 'on time'), 'disjoint'],
    ['contains and not contains a part of it', at('note', 'contains', 'late'), not(at('note', 'contains', 'at')), 'disjoint'],
    ['contains two texts', at('note', 'contains', 'late'), at('note', 'contains', 'box'), 'overlap'],
    ['contains and neq', at('note', 'contains', 'late'), at('note', 'neq', 'late'), 'overlap'],
    ['contains on an enum, against its domain', at('category', 'contains', 'wear'), at('category', 'exists'), 'disjoint'],
    ['event occurred and not in a wider window', ev('delivered', { from: '5d', to: '10d' }), ev('delivered', { to: '30d', occurred: false }), 'disjoint'],
    ['event occurred and not in a narrower window', ev('delivered', { to: '30d' }), ev('delivered', { to: '10d', occurred: false }), 'overlap'],
    ['at least 2 and at most 1 in one window', ev('viewed', { to: '7d', count: { min: 2 } }), ev('viewed', { to: '7d', count: { min: 0, max: 1 } }), 'disjoint'],
    ['at least 2, not "at least 2" in a wider window', ev('viewed', { to: '7d', count: { min: 2 } }), ev('viewed', { to: '30d', occurred: false, count: { min: 2 } }), 'disjoint'],
    ['3 in 30d and none in the last 7d', ev('viewed', { to: '30d', count: { min: 3 } }), ev('viewed', { to: '7d', occurred: false }), 'overlap'],
    ['exactly 1 in 30d and 2 in 7d', ev('viewed', { to: '30d', count: { min: 1, max: 1 } }), ev('viewed', { to: '7d', count: { min: 2 } }), 'disjoint'],
    ['not 1..1: none or two', ev('viewed', { to: '7d', occurred: false, count: { min: 1, max: 1 } }), ev('viewed', { to: '7d' }), 'overlap'],
    ['"did not occur" with count min 0 is no one', ev('viewed', { occurred: false, count: { min: 0 } }), at('note', 'exists'), 'disjoint'],
    ['a segment and its negation', { segment: 'cancel_intent' }, all(at('status', 'eq', 'active'), not({ segment: 'cancel_intent' })), 'disjoint'],
    ['a segment and a wider one', { segment: 'cancel_intent' }, at('status', 'in', ['active']), 'overlap'],
    ['any: one branch overlaps', any(at('orders', 'lt', 0), at('category', 'eq', 'apparel')), at('category', 'eq', 'apparel'), 'overlap'],
    ['any: no branch overlaps', any(at('orders', 'lt', 0), at('category', 'eq', 'apparel')), all(at('orders', 'gte', 0), at('category', 'eq', 'consumables')), 'disjoint'],
    ['not any is all not', not(any(at('orders', 'lt', 0), at('orders', 'gt', 10))), at('orders', 'eq', 11), 'disjoint'],
    ['a reference loop is undecided', { segment: 'loop' }, at('orders', 'exists'), 'unknown'],
    ['a Customer.io segment is undecided', { segment: 'from_cio' }, at('orders', 'exists'), 'unknown'],
    ['an undeclared field is undecided', at('colour', 'eq', 'red'), at('orders', 'exists'), 'unknown'],
  ])('%s', (_t, a, b, expected) => {
    expect(verdict(a, b)).toBe(expected);
    expect(verdict(b, a)).toBe(expected);
  });

  it('with a fixed now, instants and ages are related', () => {
    const nowMs = Date.UTC(2026, 2, 1);
    expect(verdict(at('last_at', 'gt', '2026-02-25T00:00:00Z'), at('last_at', 'older_than', undefined, '30d'), { ...ctx, nowMs })).toBe('disjoint');
    expect(verdict(at('last_at', 'gt', '2026-01-01T00:00:00Z'), at('last_at', 'older_than', undefined, '30d'), { ...ctx, nowMs })).toBe('overlap');
  });

  it('a row whose text is not a number is a witness when only that fits, and says so', () => {
    const v = canOverlap(at('orders', 'exists'), all(not(at('orders', 'gt', 0)), not(at('orders', 'lte', 0))), ctx);
    if (v.verdict !== 'overlap') throw new Error(`expected an overlap, got ${v.verdict}`);
    expect(describeProfile(v.witness)).toBe('orders set to text that is not a number');
  });

  it('past the clause cap, it says so instead of guessing', () => {
    const wide = all(...Array.from({ length: 9 }, (_, i) => any(at('orders', 'eq', i), at('orders', 'eq', i + 100))));
    const v = canOverlap(wide, at('orders', 'lt', 0), ctx);
    expect(v).toEqual({ verdict: 'unknown', why: 'the conditions expand to more than 256 alternatives' });
  });

  it('past the budget of clause pairs, it says so instead of guessing', () => {
    // 2^7 = 128 alternatives a side: each under the clause cap, 16,384 pairs together.
    const wide = (k: number) => all(...Array.from({ length: 7 }, (_, i) => any(at('orders', 'neq', i + k), at('note', 'neq', `n${i + k}`))));
    expect(canOverlap(wide(0), wide(100), ctx)).toEqual({
      verdict: 'unknown',
      why: 'together the conditions have 16384 pairs of alternatives, more than the 4,096 compared',
    });
  });

  it('a count too large to write out as a witness is undecided, not a hang', () => {
    expect(canOverlap(ev('viewed', { count: { min: 1_000_000_000 } }), at('note', 'exists'), ctx)).toEqual({
      verdict: 'unknown',
      why: 'a profile in both needs more than 10,000 events',
    });
    // ...but counts that contradict each other are still apart, however large.
    expect(canOverlap(ev('viewed', { count: { min: 1_000_000_000 } }), ev('viewed', { count: { min: 0, max: 5 } }), ctx)).toEqual({ verdict: 'disjoint' });
  });

  it('shows a witness in words', () => {
    const v = canOverlap(
      all(at('category', 'eq', 'consumables'), ev('delivered', { to: '30d' })),
      all(at('last_at', 'older_than', undefined, '60d'), not(at('note', 'exists')), ev('viewed', { to: '7d', count: { min: 2 } })),
      ctx,
    );
    if (v.verdict !== 'overlap') throw new Error(`expected an overlap, got ${v.verdict}`);
    expect(describeProfile(v.witness, ['note'])).toBe('category=consumables, last_at 62d ago, no note, delivered 15d ago, viewed ×2 3d ago');
  });
});
