/**
 * `customerio.segment`: a manual segment tidemark publishes audience membership to.
 *
 * The App API can create and delete manual segments but has no update operation (reference §6.1), so
 * name and description are create-only: a difference is reported, never "fixed" by delete-and-create,
 * which would drop the membership and break every campaign that uses the segment. Data-driven segments
 * are listed (they can be referenced) but are never manageable.
 */
import { InternalError } from '../core/diagnostics.ts';
import type { Attributes } from '../core/attributes.ts';
import { appliesTo, declaredAt, type DesiredResource } from '../plan/desired.ts';
import { sorted, type SpecModel } from '../spec/model.ts';
import type { ConfigKind, LiveObject, ResourceKind } from './kind.ts';
import type { CustomerioClient } from '../providers/customerio/client.ts';
import type { Segment } from '../providers/customerio/types.ts';

function toLive(s: Segment): LiveObject {
  return {
    id: String(s.id),
    name: s.name,
    attributes: { name: s.name, description: s.description ?? '' },
    updatedAt: s.updated_at !== undefined ? new Date(s.updated_at * 1000).toISOString() : undefined,
    manageable: s.type !== 'dynamic',
  };
}

export function customerioSegmentKind(client: CustomerioClient): ResourceKind {
  return {
    kind: 'customerio.segment',
    replaceOn: [],
    createOnly: ['name', 'description'],
    createBeforeDestroy: false,
    normalize(desired: Attributes): Attributes {
      return { name: String(desired.name ?? '').trim(), description: String(desired.description ?? '').trim() };
    },
    async list() {
      return (await client.listSegments()).map(toLive);
    },
    async read(id) {
      const s = await client.getSegment(Number(id));
      return s ? toLive(s) : undefined;
    },
    async create(desired) {
      const d = this.normalize(desired);
      return toLive(await client.createSegment({ name: String(d.name), description: String(d.description) }));
    },
    async update() {
      throw new InternalError('customerio.segment has no update operation; the planner must never plan one');
    },
    async delete(id) {
      return client.deleteSegment(Number(id));
    },
  };
}

/** Names tidemark gives the segments, so people browsing the Customer.io UI know who manages them. */
export function remoteSegmentName(segment: string): string {
  return `tidemark: ${segment}`;
}

/** Segments published to a Customer.io manual segment. */
function desired(model: SpecModel, env: string): DesiredResource[] {
  const out: DesiredResource[] = [];
  for (const seg of sorted(model.segments)) {
    if (!appliesTo(seg.spec, env) || !seg.spec.publish?.customerio_segment) continue;
    out.push({
      address: { provider: 'customerio', type: 'segment', name: seg.name },
      attributes: {
        name: remoteSegmentName(seg.name),
        description: seg.spec.description ?? `Managed by tidemark from ${seg.pd.file}`,
      },
      dependsOn: [],
      source: declaredAt(seg),
      preventDestroy: seg.spec.prevent_destroy === true,
      movedFrom: seg.spec.moved_from ? { provider: 'customerio', type: 'segment', name: seg.spec.moved_from } : undefined,
    });
  }
  return out;
}

export const customerioSegment: ConfigKind = {
  kind: 'customerio.segment',
  desired,
  bind: (_env, clients) => customerioSegmentKind(clients.customerio),
};
