/**
 * `qualtrics.mailing_list`: the XM Directory mailing list a survey target sends through. The name can
 * be updated in place; moving a list to another directory means a new list (replace).
 */
import type { Attributes } from '../core/attributes.ts';
import type { Address } from '../core/address.ts';
import { appliesTo, declaredAt, type DesiredResource } from '../plan/desired.ts';
import { sorted, type SpecModel } from '../spec/model.ts';
import type { ConfigKind, LiveObject, ResourceKind } from './kind.ts';
import type { QualtricsClient } from '../providers/qualtrics/client.ts';
import type { MailingList } from '../providers/qualtrics/types.ts';

function isoDate(v: unknown): string | undefined {
  if (v === null || v === undefined || v === '') return undefined;
  const d = new Date(typeof v === 'number' ? v : String(v));
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

export function qualtricsMailingListKind(client: QualtricsClient, directoryId: string): ResourceKind {
  // Which directory each known list lives in: lists are addressed through their directory, and a list
  // tidemark manages may still be in the directory the environment used before (a pending move).
  const directoryOf = new Map<string, string>();
  const toLive = (m: MailingList, dir: string): LiveObject => {
    directoryOf.set(m.mailingListId, dir);
    return {
      id: m.mailingListId,
      name: m.name ?? '',
      attributes: { name: m.name ?? '', directory_id: dir },
      updatedAt: isoDate(m.lastModifiedDate),
      manageable: true,
    };
  };
  const collect = async (managed: ReadonlyArray<{ id: string; attributes: Attributes }> = []) => {
    const dirs = new Set([directoryId]);
    for (const m of managed) if (typeof m.attributes.directory_id === 'string' && m.attributes.directory_id) dirs.add(m.attributes.directory_id);
    const out: LiveObject[] = [];
    for (const dir of [...dirs].sort()) {
      try {
        for await (const m of client.listMailingLists(dir)) out.push(toLive(m, dir));
      } catch (err) {
        // The environment's own directory must be readable; an old one may be gone entirely.
        if (dir === directoryId) throw err;
      }
    }
    return out;
  };
  return {
    kind: 'qualtrics.mailing_list',
    replaceOn: ['directory_id'],
    createOnly: [],
    createBeforeDestroy: false,
    normalize(desired: Attributes): Attributes {
      return { name: String(desired.name ?? '').trim(), directory_id: desired.directory_id === null ? null : String(desired.directory_id ?? directoryId) };
    },
    list: collect,
    async read(id) {
      const dir = directoryOf.get(id) ?? directoryId;
      const m = await client.getMailingList(dir, id);
      return m ? toLive(m, dir) : undefined;
    },
    async create(desired) {
      const d = this.normalize(desired);
      const { id } = await client.createMailingList(directoryId, { name: String(d.name) });
      directoryOf.set(id, directoryId);
      // The create answer carries only the id; what was sent is what the list now holds.
      return { id, name: String(d.name), attributes: { name: String(d.name), directory_id: directoryId }, manageable: true };
    },
    async update(id, desired) {
      const d = this.normalize(desired);
      const dir = directoryOf.get(id) ?? directoryId;
      await client.updateMailingList(dir, id, { name: String(d.name) });
      return { id, name: String(d.name), attributes: { name: String(d.name), directory_id: dir }, manageable: true };
    },
    async delete(id) {
      return client.deleteMailingList(directoryOf.get(id) ?? directoryId, id);
    },
  };
}

/** The mailing list of a survey target: its own address, which the target's webhook depends on. */
export function mailingListAddress(target: string): Address {
  return { provider: 'qualtrics', type: 'mailing_list', name: target };
}

/** One list per survey target, in the environment's XM directory. */
function desired(model: SpecModel, env: string): DesiredResource[] {
  const environment = model.workspace?.spec.environments[env];
  const out: DesiredResource[] = [];
  for (const t of sorted(model.surveyTargets)) {
    if (!appliesTo(t.spec, env)) continue;
    out.push({
      address: mailingListAddress(t.name),
      attributes: { name: t.spec.mailing_list.name, directory_id: environment?.qualtrics?.directory_id ?? null },
      dependsOn: [],
      source: declaredAt(t),
      preventDestroy: t.spec.prevent_destroy === true,
      movedFrom: t.spec.moved_from ? mailingListAddress(t.spec.moved_from) : undefined,
    });
  }
  return out;
}

export const qualtricsMailingList: ConfigKind = {
  kind: 'qualtrics.mailing_list',
  desired,
  bind: (env, clients) => (env.qualtrics && clients.qualtrics ? qualtricsMailingListKind(clients.qualtrics, env.qualtrics.directory_id) : undefined),
};
