/**
 * `qualtrics.event_subscription`: the webhook that delivers completed responses of a survey. There is no
 * update operation, so any change is a replace; the new subscription is created before the old one is
 * deleted, so no response goes undelivered in between (the receiver dedupes by response id).
 *
 * It is created with a shared key (Qualtrics then signs each delivery with HMAC-SHA512) when the
 * connection hands the kind the environment's key (`webhookSecret`, see responses/webhook-secret.ts).
 * Qualtrics never returns the key, so the plan compares its fingerprint: the one recorded in the state
 * when tidemark created the subscription against the current key's; a rotated key is a replace.
 */
import type { Attributes } from '../core/attributes.ts';
import { UserError } from '../core/user-error.ts';
import { appliesTo, declaredAt, type DesiredResource } from '../plan/desired.ts';
import { sorted, type SpecModel } from '../spec/model.ts';
import type { ConfigKind, LiveObject, ResourceKind } from './kind.ts';
import { mailingListAddress } from './qualtrics-mailing-list.ts';
import type { QualtricsClient } from '../providers/qualtrics/client.ts';
import type { EventSubscription } from '../providers/qualtrics/types.ts';

/**
 * An environment's webhook key as the connection resolves it (responses/webhook-secret.ts). The kind sends
 * `key` on create and diffs `fingerprint` only.
 */
export interface WebhookSecret {
  /** The variable the Workspace names for this environment. */
  variable: string;
  /** Where that setting lives, for messages: `environments.staging.qualtrics.responses_webhook_secret_env (specs/workspace.yaml:22)`. */
  location: string;
  /** Where the key came from: the variable, the sandbox's generated key, or nowhere. */
  source: 'environment' | 'sandbox' | 'unset';
  /** `sha256:` and the first 16 hex digits of the key's SHA-256; null when unset. Safe to show and store. */
  fingerprint: string | null;
  /** The key itself; absent when unset. Never print it. */
  key?: string;
}

/** What a live run says when the variable is unset: the variable and where the Workspace names it. */
export function webhookSecretUnsetMessage(secret: Pick<WebhookSecret, 'variable' | 'location'>): string {
  return `the webhook shared key is not set: environment variable ${secret.variable} (named by ${secret.location}) is unset or empty`;
}


function topicsOf(t: unknown): string {
  const list = Array.isArray(t) ? t.map(String) : String(t ?? '').split(',');
  return list.map((s) => s.trim()).filter(Boolean).sort().join(',');
}

function toLive(s: EventSubscription, sharedKey?: string | null): LiveObject {
  const topics = topicsOf(s.topics);
  const url = s.publicationUrl ?? '';
  const attributes: Attributes = { topics, publication_url: url };
  if (sharedKey !== undefined) attributes.shared_key = sharedKey;
  return { id: s.id, name: `${topics} -> ${url}`, attributes, manageable: true };
}

export function qualtricsEventSubscriptionKind(client: QualtricsClient, secret?: WebhookSecret): ResourceKind {
  // Qualtrics never returns the key. A managed subscription carries the fingerprint the state recorded
  // when tidemark created it. An unmanaged one is taken to carry the current key: that is what lets crash
  // recovery find a subscription created just before a crash instead of creating a second one; a
  // subscription made by hand and adopted keeps its own key, and its deliveries fail verification (401).
  const keyOf = (id: string, managed?: ReadonlyArray<{ id: string; attributes: Attributes }>): string | null | undefined => {
    if (!secret) return undefined;
    const entry = managed?.find((m) => m.id === id);
    if (entry) return typeof entry.attributes.shared_key === 'string' ? entry.attributes.shared_key : null;
    return secret.fingerprint;
  };
  return {
    kind: 'qualtrics.event_subscription',
    replaceOn: secret ? ['topics', 'publication_url', 'shared_key'] : ['topics', 'publication_url'],
    createOnly: [],
    createBeforeDestroy: true,
    guard: (change) => {
      if (!change.after) return undefined;
      if (!change.after.publication_url) return { code: 'PLAN002', message: 'no responses_webhook_url is set for this environment in the Workspace' };
      if (secret && !change.after.shared_key) {
        return {
          code: 'PLAN008',
          message: `${webhookSecretUnsetMessage(secret)}; set it, the same for apply and for the receiver`,
        };
      }
      return undefined;
    },
    normalize(desired: Attributes): Attributes {
      const base = { topics: topicsOf(desired.topics), publication_url: String(desired.publication_url ?? '') };
      return secret ? { ...base, shared_key: secret.fingerprint } : base;
    },
    async list(managed) {
      const out: LiveObject[] = [];
      for await (const s of client.listEventSubscriptions()) out.push(toLive(s, keyOf(s.id, managed)));
      return out;
    },
    async read(id) {
      const s = await client.getEventSubscription(id);
      return s ? toLive(s, keyOf(id)) : undefined;
    },
    async create(desired) {
      const d = this.normalize(desired);
      if (secret && !secret.key) throw new UserError(webhookSecretUnsetMessage(secret));
      const sharedKey = secret?.key;
      const { id } = await client.createEventSubscription({
        topics: String(d.topics),
        publicationUrl: String(d.publication_url),
        ...(sharedKey ? { sharedKey } : {}),
      });
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
  bind: (env, clients) =>
    env.qualtrics && clients.qualtrics ? qualtricsEventSubscriptionKind(clients.qualtrics, clients.webhookSecret) : undefined,
};
