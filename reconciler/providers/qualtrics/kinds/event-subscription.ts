/**
 * `qualtrics.event_subscription`: the webhook that delivers completed responses of a survey. There is no
 * update operation, so any change is a replace; the new subscription is created before the old one is
 * deleted, so no response goes undelivered in between (the receiver dedupes by response id).
 */
import type { Attributes } from '../../../core/attributes.ts';
import type { LiveObject, ResourceKind } from '../../provider.ts';
import type { QualtricsClient } from '../client.ts';
import type { EventSubscription } from '../types.ts';

function topicsOf(t: unknown): string {
  const list = Array.isArray(t) ? t.map(String) : String(t ?? '').split(',');
  return list.map((s) => s.trim()).filter(Boolean).sort().join(',');
}

function toLive(s: EventSubscription): LiveObject {
  const topics = topicsOf(s.topics);
  const url = s.publicationUrl ?? '';
  return { id: s.id, name: `${topics} -> ${url}`, attributes: { topics, publication_url: url }, manageable: true };
}

export function qualtricsEventSubscriptionKind(client: QualtricsClient): ResourceKind {
  return {
    kind: 'qualtrics.event_subscription',
    replaceOn: ['topics', 'publication_url'],
    createOnly: [],
    createBeforeDestroy: true,
    normalize(desired: Attributes): Attributes {
      return { topics: topicsOf(desired.topics), publication_url: String(desired.publication_url ?? '') };
    },
    async list() {
      const out: LiveObject[] = [];
      for await (const s of client.listEventSubscriptions()) out.push(toLive(s));
      return out;
    },
    async read(id) {
      const s = await client.getEventSubscription(id);
      return s ? toLive(s) : undefined;
    },
    async create(desired) {
      const d = this.normalize(desired);
      const { id } = await client.createEventSubscription({ topics: String(d.topics), publicationUrl: String(d.publication_url) });
      return { id, name: `${d.topics} -> ${d.publication_url}`, attributes: d, manageable: true };
    },
    async update() {
      throw new Error('qualtrics.event_subscription cannot be updated in place; the planner plans a replace');
    },
    async delete(id) {
      return client.deleteEventSubscription(id);
    },
  };
}
