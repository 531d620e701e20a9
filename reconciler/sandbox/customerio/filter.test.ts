import { describe, expect, it } from 'vitest';
import { matchesFilter, parseAudienceFilter, type FilterSubject } from './filter.ts';

function subject(attrs: Record<string, string>, segments: number[] = []): FilterSubject {
  return { attribute: (f) => attrs[f], inSegment: (id) => segments.includes(id) };
}

function parse(input: unknown) {
  const r = parseAudienceFilter(input);
  if (!r.ok) throw new Error(r.message);
  return r.filter;
}

describe('parseAudienceFilter', () => {
  it.each([
    ['two top-level properties', { and: [{ segment: { id: 1 } }], or: [{ segment: { id: 2 } }] }, 'exactly one property'],
    ['not with an array', { not: [{ segment: { id: 1 } }] }, 'single filter object'],
    ['eq without value', { attribute: { field: 'plan', operator: 'eq' } }, 'value is required'],
    ['an unknown operator', { attribute: { field: 'plan', operator: 'gt', value: '1' } }, 'operator'],
    ['a non-integer segment id', { segment: { id: '3' } }, 'integer'],
    ['an empty and', { and: [] }, 'non-empty'],
    ['an unknown key', { attr: {} }, 'unknown property'],
  ])('refuses %s', (_name, input, message) => {
    const r = parseAudienceFilter(input);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toContain(message);
  });

  it('accepts the documented example', () => {
    const r = parseAudienceFilter({
      and: [
        { attribute: { field: 'email', operator: 'eq', value: 'x@y.com' } },
        { not: { attribute: { field: 'source', operator: 'eq', value: 'website_newsletter' } } },
      ],
    });
    expect(r.ok).toBe(true);
  });
});

describe('matchesFilter', () => {
  it('evaluates and/or/not over attributes and segments', () => {
    const f = parse({ and: [{ segment: { id: 3 } }, { or: [{ attribute: { field: 'state', operator: 'eq', value: 'NM' } }, { not: { attribute: { field: 'vip', operator: 'exists' } } }] }] });
    expect(matchesFilter(f, subject({ state: 'NM', vip: 'true' }, [3]))).toBe(true);
    expect(matchesFilter(f, subject({ state: 'CA' }, [3]))).toBe(true);
    expect(matchesFilter(f, subject({ state: 'CA', vip: 'true' }, [3]))).toBe(false);
    expect(matchesFilter(f, subject({ state: 'NM' }, [4]))).toBe(false);
  });

  it('compares eq on the string form, case-sensitively except for email', () => {
    expect(matchesFilter(parse({ attribute: { field: 'unsubscribed', operator: 'eq', value: true } }), subject({ unsubscribed: 'true' }))).toBe(true);
    expect(matchesFilter(parse({ attribute: { field: 'plan', operator: 'eq', value: 'Pro' } }), subject({ plan: 'pro' }))).toBe(false);
    expect(matchesFilter(parse({ attribute: { field: 'email', operator: 'eq', value: 'A@B.com' } }), subject({ email: 'a@b.com' }))).toBe(true);
  });
});
