/**
 * Drift: what changed in Customer.io or Qualtrics outside tidemark since the last apply. Compares the
 * state's last applied attributes with live ones (not with the specs: a spec change is not drift), and
 * leaves out a change the specs already ask for (the specs adopted it: nothing is left to reconcile).
 * Pure.
 */
import { canonicalJson } from '../core/digest.ts';
import { formatAddress } from '../core/address.ts';
import type { DesiredResource } from './desired.ts';
import { isSameObject, matchLabel, type KindTraits, type LiveEntry, type StateEntry } from './diff.ts';
import type { Attributes } from './plan.ts';

export interface DriftItem {
  address: string;
  kind: string;
  remoteId?: string;
  type: 'changed' | 'deleted' | 'unmanaged_match';
  fields: Array<{ name: string; applied: Attributes[string] | undefined; live: Attributes[string] | undefined }>;
  /** When the service says the object last changed. */
  liveUpdatedAt?: string;
  message: string;
}

export interface DriftReport {
  environment: string;
  items: DriftItem[];
}

export function driftReport(input: {
  environment: string;
  desired: DesiredResource[];
  kinds: Record<string, KindTraits>;
  state: StateEntry[];
  live: Record<string, LiveEntry[]>;
}): DriftReport {
  const items: DriftItem[] = [];
  const managedIds = new Set(input.state.map((s) => `${s.kind}|${s.remoteId}`));
  const desiredBy = new Map(input.desired.map((d) => [formatAddress(d.address), d]));
  for (const s of [...input.state].sort((a, b) => (a.address < b.address ? -1 : 1))) {
    const live = input.live[s.kind]?.find((l) => l.id === s.remoteId);
    if (!live) {
      items.push({ address: s.address, kind: s.kind, remoteId: s.remoteId, type: 'deleted', fields: [], message: `${s.remoteId} was deleted outside tidemark` });
      continue;
    }
    const names = [...new Set([...Object.keys(s.attributes), ...Object.keys(live.attributes)])].sort();
    // A change the specs already ask for is not drift any more (e.g. adopted with `drift --adopt`): the next
    // plan has nothing to do for it, even though the state still records the value applied before.
    const wanted = desiredBy.get(s.address);
    const asked = wanted ? input.kinds[s.kind]?.normalize(wanted.attributes) : undefined;
    const fields = names
      .filter((n) => canonicalJson(s.attributes[n] ?? null) !== canonicalJson(live.attributes[n] ?? null))
      .filter((n) => !asked || !Object.hasOwn(asked, n) || canonicalJson(asked[n] ?? null) !== canonicalJson(live.attributes[n] ?? null))
      .map((n) => ({ name: n, applied: s.attributes[n], live: live.attributes[n] }));
    if (fields.length) {
      items.push({
        address: s.address,
        kind: s.kind,
        remoteId: s.remoteId,
        type: 'changed',
        fields,
        ...(live.updatedAt ? { liveUpdatedAt: live.updatedAt } : {}),
        message: `${fields.map((f) => f.name).join(', ')} changed outside tidemark${live.updatedAt ? ` (last changed ${live.updatedAt})` : ''}`,
      });
    }
  }
  const managedAddresses = new Set(input.state.map((s) => s.address));
  for (const d of input.desired) {
    const address = formatAddress(d.address);
    if (managedAddresses.has(address)) continue;
    const kind = `${d.address.provider}.${d.address.type}`;
    const traits = input.kinds[kind];
    if (!traits) continue;
    const wanted = traits.normalize(d.attributes);
    const match = input.live[kind]?.filter((l) => isSameObject(traits, wanted, l) && !managedIds.has(`${kind}|${l.id}`)) ?? [];
    for (const l of [...match].sort((a, b) => (a.id < b.id ? -1 : 1))) {
      items.push({
        address,
        kind,
        remoteId: l.id,
        type: 'unmanaged_match',
        fields: [],
        ...(l.updatedAt ? { liveUpdatedAt: l.updatedAt } : {}),
        message: `an unmanaged ${kind} ${matchLabel(traits, wanted)} (${l.id}) matches this spec: adopt it with \`tidemark import ${address} ${l.id}\` or plan with --adopt-by-name`,
      });
    }
  }
  return { environment: input.environment, items };
}
