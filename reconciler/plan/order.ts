/**
 * Dependency order: creates and updates run dependencies first; deletes run in reverse (a dependant is
 * deleted before what it depends on). Within one wave, items sort by address so plans are reproducible.
 */
import { compareAddress, formatAddress, type Address } from '../core/address.ts';
import { InternalError } from '../core/diagnostics.ts';

export interface Node {
  address: Address;
  dependsOn: Address[];
}

/**
 * Waves of nodes: every node comes after all of its dependencies that are in the list. Dependencies on
 * addresses not in the list are ignored (they already exist or are not being changed).
 */
export function dependencyWaves<T extends Node>(nodes: readonly T[]): T[][] {
  const byKey = new Map(nodes.map((n) => [formatAddress(n.address), n]));
  const level = new Map<string, number>();
  const visiting = new Set<string>();
  const depth = (n: T): number => {
    const key = formatAddress(n.address);
    const known = level.get(key);
    if (known !== undefined) return known;
    if (visiting.has(key)) throw new InternalError(`dependency cycle through ${key}`);
    visiting.add(key);
    let d = 0;
    for (const dep of n.dependsOn) {
      const target = byKey.get(formatAddress(dep));
      if (target) d = Math.max(d, depth(target) + 1);
    }
    visiting.delete(key);
    level.set(key, d);
    return d;
  };
  const waves: T[][] = [];
  for (const n of nodes) {
    const d = depth(n);
    (waves[d] ??= []).push(n);
  }
  return waves.filter(Boolean).map((w) => [...w].sort((a, b) => compareAddress(a.address, b.address)));
}

/** Flattened creation order. */
export function creationOrder<T extends Node>(nodes: readonly T[]): T[] {
  return dependencyWaves(nodes).flat();
}

/** Flattened deletion order: the reverse of creation order. */
export function deletionOrder<T extends Node>(nodes: readonly T[]): T[] {
  return dependencyWaves(nodes).reverse().flat();
}
