import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { closest, didYouMean } from '../../reconciler/spec/suggest.ts';

/** The plain algorithm: full Levenshtein against every candidate, no shortcuts, no memo. */
function reference(input: string, candidates: string[]): string | undefined {
  const lev = (a: string, b: string): number => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0]![j] = j;
    for (let i = 1; i <= a.length; i++) {
      for (let j = 1; j <= b.length; j++) d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    return d[a.length]![b.length]!;
  };
  let best: string | undefined;
  let score = Infinity;
  const lower = input.toLowerCase();
  for (const c of candidates) {
    const s = lev(lower, c.toLowerCase());
    if (s < score) [best, score] = [c, s];
  }
  if (best === undefined) return undefined;
  if (lower.length >= 3) {
    const prefixed = candidates.filter((c) => c.toLowerCase().startsWith(lower));
    if (prefixed.length === 1 && score > 1) return prefixed[0];
  }
  return score <= Math.max(2, Math.floor(Math.max(input.length, best.length) / 3)) ? best : undefined;
}

describe('did you mean', () => {
  it('suggests the close key, an abbreviation, and nothing for a far one', () => {
    expect(didYouMean('frequncy_cap', ['frequency_cap', 'holdout'])).toBe(' Did you mean "frequency_cap"?');
    expect(closest('prod', ['production', 'staging'])).toBe('production');
    expect(closest('zzzzzzzz', ['production', 'staging'])).toBeUndefined();
  });

  it('gives the same answer as the plain algorithm (the shortcuts only skip work that cannot win)', () => {
    const word = fc.string({ unit: fc.constantFrom('a', 'b', 'c', '_', 'D'), maxLength: 9 });
    fc.assert(
      fc.property(word, fc.array(word, { maxLength: 8 }), (input, candidates) => {
        expect(closest(input, [...candidates])).toBe(reference(input, candidates));
        // Asked again with the same list (memoised), the answer does not change.
        const list = [...candidates];
        expect(closest(input, list)).toBe(closest(input, list));
      }),
      { numRuns: 500, seed: 8 },
    );
  });
});
