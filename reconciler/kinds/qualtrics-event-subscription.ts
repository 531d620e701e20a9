/**
 * `qualtrics.event_subscription`: the webhook that delivers completed responses of a survey. There is no
 * update operation, so any change is a replace; the new subscription is created before the old one is
 * deleted, so no response goes undelivered in between (the receiver dedupes by response id).
 */
import type { Attributes } from '../core/attributes.ts';
import { appliesTo, declaredAt, type DesiredResource } from '../plan/desired.ts';
import { sorted, type SpecModel } from '../spec/model.ts';
import type { ConfigKind, LiveObject, ResourceKind } from './kind.ts';
import { mailingListAddress } from './qualtrics-mailing-list.ts';
import type { QualtricsClient } from '../providers/qualtrics/client.ts';
import type { EventSubscription } from '../providers/qualtrics/types.ts';

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
    guard: (change) =>
      change.after && !change.after.publication_url
        ? { code: 'PLAN002', message: 'no responses_webhook_url is set for this environment in the Workspace' }
        : undefined,
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

/** A webhook for each survey target that asks for webhook delivery, after the target's mailing list. */
function desired(model: SpecModel, env: string): DesiredResource[] {
  const environment = model.workspace?.spec.environments[env];
  const out: DesiredResource[] = [];
  for (const t of sorted(model.surveyTargets)) {
    if (!appliesTo(t.spec, env) || !t.spec.responses?.webhook) continue;
    out.push({
      address: { provider: 'qualtrics', type: 'event_subscription', name: t.name },
      attributes: {
        topics: `surveyengine.completedResponse.${t.spec.survey}`,
        publication_url: environment?.qualtrics?.responses_webhook_url ?? null,
      },
      dependsOn: [mailingListAddress(t.name)],
      source: declaredAt(t),
      preventDestroy: t.spec.prevent_destroy === true,
      movedFrom: t.spec.moved_from ? { provider: 'qualtrics', type: 'event_subscription', name: t.spec.moved_from } : undefined,
    });
  }
  return out;
}

export const qualtricsEventSubscription: ConfigKind = {
  kind: 'qualtrics.event_subscription',
  desired,
  bind: (env, clients) => (env.qualtrics && clients.qualtrics ? qualtricsEventSubscriptionKind(clients.qualtrics) : undefined),
};
