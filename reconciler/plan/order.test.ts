import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatAddress } from '../core/address.ts';
import { creationOrder, deletionOrder, dependencyWaves } from './order.ts';

const a = (name: string, deps: string[] = []) => ({
  address: { provider: 'p', type: 'k', name },
  dependsOn: deps.map((d) => ({ provider: 'p', type: 'k', name: d })),
});

describe('dependency order', () => {
  it('puts dependencies first, sorted by address within a wave', () => {
    const waves = dependencyWaves([a('sub', ['list']), a('list'), a('b'), a('a')]);
    expect(waves.map((w) => w.map((n) => n.address.name))).toEqual([['a', 'b', 'list'], ['sub']]);
  });

  it('deletes in reverse', () => {
    expect(deletionOrder([a('list'), a('sub', ['list'])]).map((n) => n.address.name)).toEqual(['sub', 'list']);
  });

  it('holds for any acyclic graph (property)', () => {
    // Edges only point to lower indexes, so the graph is acyclic by construction.
    const graph = fc.integer({ min: 1, max: 25 }).chain((n) =>
      fc.tuple(...Array.from({ length: n }, (_, i) => fc.subarray(Array.from({ length: i }, (_, j) => j)))),
    );
    fc.assert(
      fc.property(graph, fc.infiniteStream(fc.nat()), (deps, shuffle) => {
        const nodes = deps.map((ds, i) => a(`n${i}`, ds.map((d) => `n${d}`)));
        const shuffled = [...nodes].sort(() => (shuffle.next().value % 3) - 1);
        const create = creationOrder(shuffled).map((n) => formatAddress(n.address));
        const del = deletionOrder(shuffled).map((n) => formatAddress(n.address));
        deps.forEach((ds, i) => {
          for (const d of ds) {
            expect(create.indexOf(`p.k.n${d}`)).toBeLessThan(create.indexOf(`p.k.n${i}`));
            expect(del.indexOf(`p.k.n${d}`)).toBeGreaterThan(del.indexOf(`p.k.n${i}`));
          }
        });
        expect(creationOrder([...nodes].reverse()).map((n) => formatAddress(n.address))).toEqual(create);
      }),
      { numRuns: 200 },
    );
  });
});
