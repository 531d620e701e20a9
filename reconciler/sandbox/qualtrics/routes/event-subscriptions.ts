/**
 * Event subscriptions (webhooks): create, list, get, delete, plus the deliveries Qualtrics would make.
 * The emulator itself never opens sockets: deliveries are queued in an outbox, and the host drains it
 * and POSTs them with `deliverWebhooks` (to loopback publication URLs only).
 */
import { createHmac } from 'node:crypto';
import { BodyReader, parseJsonBody } from '../body.ts';
import { param, type HandlerContext, type Route } from '../context.ts';
import { ErrorCode, QualtricsApiError, invalidParam, notFound, ok, type ApiResult } from '../envelope.ts';
import { nextPageUrl, readPageRequest, takePage } from '../pagination.ts';
import type { QualtricsStore, Subscription, SurveyResponse, WebhookDelivery } from '../state.ts';

/** Topic namespaces the reference lists; anything else is refused rather than silently never firing. */
const TOPIC = /^(\*|surveyengine\.(\*|completedResponse\.(\*|SV_\w+))|controlpanel\.(\*|activateSurvey|deactivateSurvey)|threesixty\.(\*|created|nominationCreated|nominationRemoved|evaluationStatusChanged|reportReady|statusChanged|person\.statusChanged))$/;

function subscriptionView(s: Subscription): Record<string, unknown> {
  // The shared key is a secret: accepted on create, never echoed.
  return { id: s.id, topics: s.topics, publicationUrl: s.publicationUrl, encrypt: s.encrypt, successEmailAddresses: [...s.successEmailAddresses] };
}

function createSubscription(ctx: HandlerContext): ApiResult {
  if (ctx.store.config.accountType !== 'UT_BRANDADMIN') {
    throw new QualtricsApiError(403, ErrorCode.forbidden, 'To use this call you must be a Qualtrics brand administrator.');
  }
  const body = new BodyReader(parseJsonBody(ctx.req)).allowOnly(['topics', 'publicationUrl', 'encrypt', 'sharedKey', 'successEmailAddresses']);
  const topics = body.requiredString('topics');
  if (!TOPIC.test(topics)) throw invalidParam('topics', `unknown topic ${topics}`);
  const publicationUrl = body.requiredString('publicationUrl');
  let url: URL;
  try {
    url = new URL(publicationUrl);
  } catch {
    throw invalidParam('publicationUrl', 'expected an absolute http(s) URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalidParam('publicationUrl', 'expected an absolute http(s) URL');
  const encrypt = body.optionalBoolean('encrypt') ?? false;
  const sharedKey = body.optionalString('sharedKey');
  if (sharedKey !== undefined && sharedKey === '') throw invalidParam('sharedKey', 'must not be empty');
  const successEmailAddresses = body.optionalStringArray('successEmailAddresses') ?? [];
  const sub: Subscription = {
    seq: ctx.store.nextSeq(),
    id: ctx.rng.id('SUB'),
    topics,
    publicationUrl,
    encrypt,
    sharedKey: sharedKey ?? null,
    successEmailAddresses,
  };
  ctx.store.subscriptions.set(sub.id, sub);
  return ok({ id: sub.id });
}

function listSubscriptions(ctx: HandlerContext): ApiResult {
  const req = readPageRequest(ctx.url, 'sub', { defaultSize: 100, maxSize: 100 });
  const page = takePage([...ctx.store.subscriptions.values()], req);
  return ok({ elements: page.items.map(subscriptionView), nextPage: nextPageUrl(ctx.url, 'sub', page.nextAfterSeq) });
}

function requireSubscription(ctx: HandlerContext): Subscription {
  const id = param(ctx, 'subscriptionId');
  const s = ctx.store.subscriptions.get(id);
  if (!s) throw notFound('Subscription', id);
  return s;
}

function getSubscription(ctx: HandlerContext): ApiResult {
  return ok(subscriptionView(requireSubscription(ctx)));
}

/**
 * ⚠ DELETE is used by real clients but absent from the official reference map; implemented as the brief
 * and the reference's emulator note ask.
 */
function deleteSubscription(ctx: HandlerContext): ApiResult {
  ctx.store.subscriptions.delete(requireSubscription(ctx).id);
  return ok();
}

/** Dotted-topic match where `*` stands for one segment, or for the rest when it is the last one. */
export function topicMatches(pattern: string, topic: string): boolean {
  const p = pattern.split('.');
  const t = topic.split('.');
  for (let i = 0; i < p.length; i++) {
    const seg = p[i];
    if (seg === '*' && i === p.length - 1) return t.length > i;
    if (i >= t.length || (seg !== '*' && seg !== t[i])) return false;
  }
  return p.length === t.length;
}

function completedDate(iso: string): string {
  return new Date(iso).toISOString().slice(0, 19).replace('T', ' ');
}

/**
 * Queues `surveyengine.completedResponse.<SurveyID>` deliveries for finished responses. With a shared
 * key the payload is `Topic`, `MSG` (JSON) and `HMAC` (hex HMAC-SHA512 of MSG); without one the fields
 * are flat. The delivered Topic carries the brand id prefix. ⚠ `encrypt: true` payloads are not
 * documented, so encrypted subscriptions get no queued deliveries.
 */
export function queueCompletedResponseWebhooks(store: QualtricsStore, responses: readonly SurveyResponse[]): void {
  const brandId = store.config.brandId;
  for (const r of responses) {
    if (!r.finished) continue;
    const topic = `surveyengine.completedResponse.${r.surveyId}`;
    for (const sub of store.subscriptions.values()) {
      if (sub.encrypt || !topicMatches(sub.topics, topic)) continue;
      const fields = {
        Status: 'Complete',
        SurveyID: r.surveyId,
        ResponseID: r.responseId,
        CompletedDate: completedDate(r.endDate),
        BrandID: brandId,
      };
      const form = new URLSearchParams();
      form.set('Topic', `${brandId}.${topic}`);
      if (sub.sharedKey !== null) {
        const msg = JSON.stringify(fields);
        form.set('MSG', msg);
        form.set('HMAC', createHmac('sha512', sub.sharedKey).update(msg).digest('hex'));
      } else {
        for (const [k, v] of Object.entries(fields)) form.set(k, v);
      }
      store.webhookOutbox.push({
        subscriptionId: sub.id,
        publicationUrl: sub.publicationUrl,
        contentType: 'application/x-www-form-urlencoded',
        body: form.toString(),
        topic: `${brandId}.${topic}`,
        surveyId: r.surveyId,
        responseId: r.responseId,
      });
    }
  }
}

/** What one POST of a queued delivery came to: the receiver's status, or why it was not made. */
export interface WebhookDeliveryResult {
  subscriptionId: string;
  /** The receiver's HTTP status; absent when the POST was not made or failed. */
  status?: number;
  /** `not_loopback`: the sandbox posts only to this machine; `network`: the connection failed. */
  error?: 'not_loopback' | 'network';
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * POSTs queued deliveries the way Qualtrics does (form-encoded, one request each, in order). Only to
 * publication URLs on this machine: the sandbox must never send a webhook across the network, and the
 * example Workspace's receivers are placeholder hosts. Qualtrics retries a non-2xx answer; this does
 * not (the caller keeps the deliveries and may post them again).
 */
export async function deliverWebhooks(deliveries: readonly WebhookDelivery[], opts: { timeoutMs?: number } = {}): Promise<WebhookDeliveryResult[]> {
  const out: WebhookDeliveryResult[] = [];
  for (const d of deliveries) {
    let url: URL;
    try {
      url = new URL(d.publicationUrl);
    } catch {
      out.push({ subscriptionId: d.subscriptionId, error: 'not_loopback' });
      continue;
    }
    if (!LOOPBACK_HOSTS.has(url.hostname) || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      out.push({ subscriptionId: d.subscriptionId, error: 'not_loopback' });
      continue;
    }
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': d.contentType },
        body: d.body,
        redirect: 'manual',
        signal: AbortSignal.timeout(opts.timeoutMs ?? 16_000),
      });
      await res.arrayBuffer().catch(() => undefined);
      out.push({ subscriptionId: d.subscriptionId, status: res.status });
    } catch {
      out.push({ subscriptionId: d.subscriptionId, error: 'network' });
    }
  }
  return out;
}

export const eventSubscriptionRoutes: Route[] = [
  { method: 'POST', pattern: '/eventsubscriptions', handler: createSubscription },
  { method: 'GET', pattern: '/eventsubscriptions', handler: listSubscriptions },
  { method: 'GET', pattern: '/eventsubscriptions/{subscriptionId}', handler: getSubscription },
  { method: 'DELETE', pattern: '/eventsubscriptions/{subscriptionId}', handler: deleteSubscription },
];
