/**
 * The print table's lookups (reconciler/sync/record-prints.ts): `findPrintNear`, which tries the slot after
 * the last match before the table, answers exactly what the table does, whatever slot it is told to try,
 * including slots past the table's (whose words may still hold a print).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildPrintShare, findPrint, findPrintNear } from '../../reconciler/sync/record-prints.ts';

/** Words in shared memory, as the run's diff keeps them: the share then uses them as they are, past slots included. */
function shared(values: number[]): Uint32Array {
  const out = new Uint32Array(new SharedArrayBuffer(4 * Math.max(4, values.length)));
  out.set(values);
  return out;
}

const word = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 0xffffffff }));
const print = fc.tuple(word, word, word, word);

describe('findPrintNear', () => {
  it('answers as findPrint does, for any slot tried first (property)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(print, { minLength: 1, maxLength: 60, selector: (p) => p.join(',') }),
        fc.nat({ max: 8 }),
        fc.array(fc.tuple(fc.integer({ min: -2, max: 80 }), fc.oneof(fc.nat({ max: 80 }), print)), { minLength: 1, maxLength: 30 }),
        (prints, past, probes) => {
          // The table covers the first `count` slots; the slots after it hold prints the table must not answer with.
          const count = Math.max(0, prints.length - past);
          const words = shared(prints.flat());
          const share = buildPrintShare(words, count);
          if (share === undefined) return;
          for (const [slot, probe] of probes) {
            const p = typeof probe === 'number' ? Uint32Array.from(prints[probe % prints.length]!) : Uint32Array.from(probe);
            expect(findPrintNear(share, slot, p, 0)).toBe(findPrint(share, p, 0));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('answers from the slot tried when it holds the print, and never with a slot past the table', () => {
    const words = shared([1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9]);
    const share = buildPrintShare(words, 2)!;
    expect(findPrintNear(share, 1, Uint32Array.from([5, 6, 7, 8]), 0)).toBe(1);
    expect(findPrintNear(share, 0, Uint32Array.from([5, 6, 7, 8]), 0)).toBe(1);
    expect(findPrintNear(share, 2, Uint32Array.from([9, 9, 9, 9]), 0)).toBe(-1);
  });
});
