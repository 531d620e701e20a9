import { describe, expect, it } from 'vitest';
import { backoffDelay, classifyNetworkError, DEFAULT_RETRY_POLICY, parseRetryAfter } from './retry.ts';

describe('parseRetryAfter', () => {
  const now = Date.parse('2030-01-01T00:00:00Z');
  it.each([
    ['7', 7000],
    ['0', 0],
    [' 2 ', 2000],
    ['Tue, 01 Jan 2030 00:01:00 GMT', 60_000],
    ['Mon, 31 Dec 2029 23:00:00 GMT', 0],
  ])('reads %j', (value, expected) => {
    expect(parseRetryAfter(value, now)).toBe(expected);
  });
  it.each([[null], [undefined], [''], ['soon']])('ignores %j', (value) => {
    expect(parseRetryAfter(value, now)).toBeUndefined();
  });
});

describe('backoffDelay', () => {
  it('doubles the ceiling per attempt up to the maximum, with full jitter', () => {
    const policy = { ...DEFAULT_RETRY_POLICY, baseDelayMs: 100, maxDelayMs: 1000 };
    expect([1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, policy, () => 0.999))).toEqual([99, 199, 399, 799, 999, 999]);
    expect(backoffDelay(3, policy, () => 0)).toBe(0);
  });
});

describe('classifyNetworkError', () => {
  const withCode = (code: string): Error => Object.assign(new Error(code), { code });
  it('recognises a connection that never happened', () => {
    expect(classifyNetworkError(new TypeError('fetch failed', { cause: withCode('ECONNREFUSED') }), undefined, false)).toBe('not-connected');
    const many = new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')]);
    expect(classifyNetworkError(new TypeError('fetch failed', { cause: many }), undefined, false)).toBe('not-connected');
  });
  it('treats resets and unknown failures as possibly applied', () => {
    expect(classifyNetworkError(new TypeError('fetch failed', { cause: withCode('ECONNRESET') }), undefined, false)).toBe('dropped');
    expect(classifyNetworkError(new Error('weird'), undefined, false)).toBe('dropped');
  });
  it('distinguishes our timeout from a caller abort', () => {
    expect(classifyNetworkError(new Error('x'), undefined, true)).toBe('timeout');
    const c = new AbortController();
    c.abort();
    expect(classifyNetworkError(new Error('x'), c.signal, true)).toBe('aborted');
  });
});
