/** How a managed object is kept in the state store: its last applied attributes and its dependencies. */
import type { StateEntry } from '../plan/diff.ts';
import type { Attributes } from '../plan/plan.ts';
import type { ManagedObject, ManagedObjectInput } from '../state/index.ts';

interface Stored {
  values: Attributes;
  depends_on: string[];
}

export function toStateEntry(m: ManagedObject): StateEntry {
  const stored = (m.attributes ?? {}) as Partial<Stored>;
  return {
    address: m.address,
    kind: m.kind,
    remoteId: m.remoteId,
    attributes: stored.values ?? {},
    dependsOn: stored.depends_on ?? [],
    preventDestroy: m.preventDestroy,
  };
}

export function toManagedInput(e: StateEntry, specDigest?: string): ManagedObjectInput {
  const stored: Stored = { values: e.attributes, depends_on: e.dependsOn };
  return { address: e.address, kind: e.kind, remoteId: e.remoteId, attributes: stored, preventDestroy: e.preventDestroy, ...(specDigest ? { specDigest } : {}) };
}
