/**
 * The desired config plane, derived from the spec model for one environment: which remote objects
 * tidemark should manage, with the attributes it owns on them. Pure. The reconciler diffs this against
 * live state; the cdktf stack in stacks/ exports the same list to Terraform JSON.
 */
import type { Address } from '../core/address.ts';
import { compareAddress, formatAddress } from '../core/address.ts';
import type { SourceRange } from '../core/diagnostics.ts';
import { sorted, type Located, type SpecModel } from '../spec/model.ts';
import { locate } from '../spec/parse.ts';

export type DesiredKind = 'customerio.segment' | 'qualtrics.mailing_list' | 'qualtrics.event_subscription';

export interface DesiredResource {
  address: Address;
  /** Attributes tidemark owns on the remote object, normalised (see the kind modules). */
  attributes: Record<string, string | number | boolean | string[] | null>;
  dependsOn: Address[];
  /** Where the object is declared, for diagnostics and plan output. */
  source: SourceRange;
  preventDestroy: boolean;
  /** A previous name: the object is renamed, never deleted and created again. */
  movedFrom?: Address;
}

/** Specs that apply to an environment: those without an `environments` list, or that list it. */
export function appliesTo(spec: { environments?: string[] }, env: string): boolean {
  return !spec.environments || spec.environments.includes(env);
}

/** Names tidemark gives remote objects, so people browsing the Customer.io/Qualtrics UI know who manages them. */
export function remoteSegmentName(segment: string): string {
  return `tidemark: ${segment}`;
}

export function desiredResources(model: SpecModel, env: string): DesiredResource[] {
  const out: DesiredResource[] = [];
  const where = (s: Located<unknown>) => locate(s.pd, ['name']);
  const environment = model.workspace?.spec.environments[env];

  for (const seg of sorted(model.segments)) {
    if (!appliesTo(seg.spec, env) || !seg.spec.publish?.customerio_segment) continue;
    out.push({
      address: { provider: 'customerio', kind: 'segment', name: seg.name },
      attributes: {
        name: remoteSegmentName(seg.name),
        description: seg.spec.description ?? `Managed by tidemark from ${seg.pd.file}`,
      },
      dependsOn: [],
      source: where(seg),
      preventDestroy: seg.spec.prevent_destroy === true,
      movedFrom: seg.spec.moved_from ? { provider: 'customerio', kind: 'segment', name: seg.spec.moved_from } : undefined,
    });
  }

  for (const t of sorted(model.surveyTargets)) {
    if (!appliesTo(t.spec, env)) continue;
    const list: Address = { provider: 'qualtrics', kind: 'mailing_list', name: t.name };
    out.push({
      address: list,
      attributes: { name: t.spec.mailing_list.name, directory_id: environment?.qualtrics?.directory_id ?? null },
      dependsOn: [],
      source: where(t),
      preventDestroy: t.spec.prevent_destroy === true,
      movedFrom: t.spec.moved_from ? { provider: 'qualtrics', kind: 'mailing_list', name: t.spec.moved_from } : undefined,
    });
    if (t.spec.responses?.webhook) {
      out.push({
        address: { provider: 'qualtrics', kind: 'event_subscription', name: t.name },
        attributes: {
          topics: `surveyengine.completedResponse.${t.spec.survey}`,
          publication_url: environment?.qualtrics?.responses_webhook_url ?? null,
        },
        dependsOn: [list],
        source: where(t),
        preventDestroy: t.spec.prevent_destroy === true,
        movedFrom: t.spec.moved_from ? { provider: 'qualtrics', kind: 'event_subscription', name: t.spec.moved_from } : undefined,
      });
    }
  }
  return out.sort((a, b) => compareAddress(a.address, b.address));
}

export function resourceKey(r: { address: Address }): string {
  return formatAddress(r.address);
}
