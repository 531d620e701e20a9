import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { byteLength, valueBytes, valueWithinBytes, withinBytes } from './limits.ts';

// The shortcuts must give the counted answer for every input: the sandbox refuses payloads by them.
describe('size checks without counting', () => {
  it('withinBytes is byteLength(s) <= limit, for any text and limit', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), fc.integer({ min: 0, max: 300 }), (s, limit) => {
        expect(withinBytes(s, limit)).toBe(byteLength(s) <= limit);
      }),
      { numRuns: 2000 },
    );
  });

  it('valueWithinBytes is valueBytes(v) <= limit, for any JSON value and limit', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 2 }), fc.integer({ min: 0, max: 120 }), (v, limit) => {
        expect(valueWithinBytes(v, limit)).toBe(valueBytes(v) <= limit);
      }),
      { numRuns: 2000 },
    );
  });

  it('counts at the edges: four-byte characters, and the longest numbers', () => {
    expect(withinBytes('😀'.repeat(37), 150)).toBe(true); // 148 bytes, 74 code units
    expect(withinBytes('😀'.repeat(38), 150)).toBe(false);
    expect(withinBytes('é'.repeat(75), 150)).toBe(true);
    expect(withinBytes('é'.repeat(76), 150)).toBe(false);
    for (const n of [-Number.MAX_VALUE, -Number.MIN_VALUE, -2.2250738585072014e-308, 0.1 + 0.2]) {
      expect(valueWithinBytes(n, 24)).toBe(true);
      expect(valueWithinBytes(n, 23)).toBe(valueBytes(n) <= 23);
    }
  });
});
