/**
 * Email distributions: create (validated against the mailing list, the survey and the dates), list
 * (survey-scoped, filtered, paginated), get and delete. Note the documented asymmetry: create takes
 * `header` and `surveyLink.type`, reads answer `headers` and `surveyLink.linkType`.
 */
import { BodyReader, parseIsoDateTime, parseJsonBody } from '../body.ts';
import { param, type HandlerContext, type Route } from '../context.ts';
import { ErrorCode, badRequest, invalidParam, missingParam, notFound, ok, type ApiResult } from '../envelope.ts';
import { nextPageUrl, readPageRequest, takePage } from '../pagination.ts';
import { answerDistribution } from '../answers.ts';
import type { Distribution, DistributionStats, EmailResult, Membership, QualtricsStore } from '../state.ts';
import { HARD_BOUNCE, undeliverable } from './contact-history.ts';

const LINK_TYPES = ['Individual', 'Multiple', 'Anonymous'];

const REQUEST_TYPES = ['Invite', 'ThankYou', 'Reminder', 'Email', 'Portal', 'PortalInvite', 'GeneratedInvite'];

function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

interface Audience {
  recipients: Distribution['recipients'];
  recipientCount: number;
  optedOutCount: number;
  memberships: Membership[];
}

/** Resolves `recipients` to the contacts the invite goes to, refusing references that do not exist. */
function resolveRecipients(store: QualtricsStore, body: BodyReader): Audience {
  body.allowOnly(['mailingListId', 'contactId', 'sampleId', 'transactionBatchId']);
  const mailingListId = body.optionalString('mailingListId');
  const contactId = body.optionalString('contactId');
  const sampleId = body.optionalString('sampleId');
  const transactionBatchId = body.optionalString('transactionBatchId');
  const targets = [mailingListId, sampleId, transactionBatchId].filter((v) => v !== undefined);
  if (targets.length === 0) throw missingParam('recipients.mailingListId');
  if (targets.length > 1) {
    throw invalidParam('recipients', 'give exactly one of mailingListId, sampleId or transactionBatchId');
  }
  if (contactId !== undefined && mailingListId === undefined) {
    throw invalidParam('recipients.contactId', 'an individual send needs the mailingListId the contact belongs to');
  }
  const base: Distribution['recipients'] = {
    mailingListId: mailingListId ?? null,
    contactId: contactId ?? null,
    libraryId: null,
    sampleId: sampleId ?? null,
    transactionBatchId: transactionBatchId ?? null,
  };
  if (sampleId !== undefined) throw invalidParam('recipients.sampleId', `no sample ${sampleId} exists`);

  let memberships: Membership[];
  if (mailingListId !== undefined) {
    const list = store.mailingLists.get(mailingListId);
    if (!list) throw invalidParam('recipients.mailingListId', `no mailing list ${mailingListId} exists`);
    base.libraryId = list.ownerId;
    memberships = [...store.membersOf(mailingListId)];
    if (contactId !== undefined) {
      // The individual-send id is the contact *lookup* id (CGC_), scoped to the list.
      const m = store.memberships.get(contactId);
      if (!m || m.mailingListId !== mailingListId) {
        throw invalidParam('recipients.contactId', `${contactId} is not a contact lookup id (CGC_…) in ${mailingListId}`);
      }
      memberships = [m];
    }
  } else {
    const batch = store.batches.get(transactionBatchId ?? '');
    if (!batch) throw invalidParam('recipients.transactionBatchId', `no transaction batch ${transactionBatchId ?? ''} exists`);
    const seen = new Set<string>();
    memberships = batch.transactionIds.flatMap((tid) => {
      const tx = store.transactions.get(tid);
      const m = tx ? store.membershipFor(tx.mailingListId, tx.contactId) : undefined;
      if (!m || seen.has(m.contactLookupId)) return [];
      seen.add(m.contactLookupId);
      return [m];
    });
  }
  let recipientCount = 0;
  let optedOutCount = 0;
  for (const m of memberships) {
    const c = store.contacts.get(m.contactId);
    if (!c) continue;
    if (m.unsubscribed || c.directoryUnsubscribed) optedOutCount += 1;
    else recipientCount += 1;
  }
  return { recipients: base, recipientCount, optedOutCount, memberships };
}

/**
 * Qualtrics' record of each email of a new distribution, in every recipient's email history: opted-out
 * contacts `Blocked`; an address known to bounce, or one that can never be delivered (its first send
 * bounces hard and marks it bounced), `Bounce`; the rest `Success`. Resolves to how many bounced.
 */
function recordEmails(store: QualtricsStore, d: Distribution, memberships: readonly Membership[]): number {
  const sendMs = Date.parse(d.sendDate);
  let bounced = 0;
  for (const m of memberships) {
    const c = store.contacts.get(m.contactId);
    if (!c) continue;
    let result: EmailResult = 'Success';
    if (m.unsubscribed || c.directoryUnsubscribed) result = 'Blocked';
    else if (c.bouncedDate !== null || undeliverable(c.email)) {
      result = 'Bounce';
      if (c.bouncedDate === null) c.bouncedDate = sendMs;
      bounced += 1;
    }
    store.addEmailHistory({
      seq: store.nextSeq(),
      contactId: c.contactId,
      mailingListId: m.mailingListId,
      contactLookupId: m.contactLookupId,
      distributionId: d.id,
      surveyId: d.surveyLink.surveyId,
      date: sendMs,
      type: 'Invite',
      result,
      bounceInfo: result === 'Bounce' ? { ...HARD_BOUNCE } : null,
    });
  }
  return bounced;
}

function createDistribution(ctx: HandlerContext): ApiResult {
  const body = new BodyReader(parseJsonBody(ctx.req)).allowOnly([
    'message',
    'recipients',
    'header',
    'surveyLink',
    'sendDate',
    'embeddedData',
  ]);
  const nowMs = ctx.now().getTime();

  const message = body.requiredObject('message').allowOnly(['libraryId', 'messageId', 'messageText']);
  const libraryId = message.optionalString('libraryId');
  const messageId = message.optionalString('messageId');
  const messageText = message.optionalString('messageText');
  if (messageText === undefined) {
    if (libraryId === undefined) throw missingParam('message.libraryId');
    if (messageId === undefined) throw missingParam('message.messageId');
    if (!/^(UR|GR)_\w+$/.test(libraryId)) throw invalidParam('message.libraryId', 'expected a user (UR_) or group (GR_) library id');
    if (!/^MS_\w+$/.test(messageId)) throw invalidParam('message.messageId', 'expected a library message id (MS_…)');
  } else if (libraryId !== undefined || messageId !== undefined) {
    throw invalidParam('message', 'give either messageText or libraryId with messageId');
  } else if (messageText.trim() === '') {
    throw invalidParam('message.messageText', 'must not be empty');
  }

  const header = body.requiredObject('header').allowOnly(['fromEmail', 'fromName', 'replyToEmail', 'subject']);
  const fromEmail = header.optionalEmail('fromEmail');
  if (!fromEmail) throw missingParam('header.fromEmail');
  const fromName = header.requiredString('fromName');
  const replyToEmail = header.optionalEmail('replyToEmail');
  const subject = header.requiredString('subject');
  if (subject.trim() === '') throw invalidParam('header.subject', 'must not be empty');

  const link = body.requiredObject('surveyLink').allowOnly(['surveyId', 'expirationDate', 'type']);
  const surveyId = link.requiredString('surveyId');
  const survey = ctx.store.surveys.get(surveyId);
  if (!survey) throw invalidParam('surveyLink.surveyId', `no survey ${surveyId} exists`);
  // ⚠ Documented for generated links ("survey must be active"); assumed for email invites too.
  if (!survey.isActive) throw invalidParam('surveyLink.surveyId', `survey ${surveyId} is not active`);
  const linkType = link.optionalString('type') ?? 'Individual';
  if (!LINK_TYPES.includes(linkType)) throw invalidParam('surveyLink.type', 'expected Individual, Multiple or Anonymous');

  const sendDate = body.requiredDateTime('sendDate');
  const expiration = link.optionalDateTime('expirationDate');
  if (expiration) {
    if (expiration.ms <= sendDate.ms) throw invalidParam('surveyLink.expirationDate', 'must be after sendDate');
    if (expiration.ms <= nowMs) throw invalidParam('surveyLink.expirationDate', 'is in the past');
  }
  const embeddedData = body.optionalStringMap('embeddedData') ?? null;

  const audience = resolveRecipients(ctx.store, body.requiredObject('recipients'));
  const id = ctx.rng.id('EMD');
  if (audience.recipientCount === 0) {
    // Observed error for a distribution that resolves to nobody.
    throw badRequest(ErrorCode.noRecipients, `The email-distribution(${id}) has no recipients and no parent.`);
  }
  const d: Distribution = {
    seq: ctx.store.nextSeq(),
    id,
    parentDistributionId: null,
    ownerId: ctx.store.config.userId,
    requestType: 'Invite',
    sendDate: isoSeconds(sendDate.ms),
    createdDate: isoSeconds(nowMs),
    modifiedDate: isoSeconds(nowMs),
    headers: { fromEmail, fromName, replyToEmail: replyToEmail ?? null, subject },
    recipients: audience.recipients,
    message: {
      libraryId: libraryId ?? null,
      messageId: messageId ?? null,
      messageText: messageText ?? null,
      messageType: messageText === undefined ? 'Library' : 'Inline',
    },
    surveyLink: { surveyId, expirationDate: expiration ? isoSeconds(expiration.ms) : null, linkType },
    embeddedData,
    recipientCount: audience.recipientCount,
    optedOutCount: audience.optedOutCount,
    bouncedCount: 0,
  };
  ctx.store.distributions.set(d.id, d);
  d.bouncedCount = recordEmails(ctx.store, d, audience.memberships);
  // Some recipients answer later (seeded by contact and send date), so the sandbox has responses to pull.
  answerDistribution(ctx.store, ctx.rng, d);
  return ok({ id: d.id });
}

function statsOf(store: QualtricsStore, d: Distribution, sent: boolean, nowMs: number): DistributionStats {
  let started = 0;
  let finished = 0;
  for (const r of store.responsesOf(d.surveyLink.surveyId)) {
    if (r.distributionId !== d.id) continue;
    // An answer drawn for later (answers.ts) has not happened yet.
    if (r.drawn && Date.parse(r.recordedDate) > nowMs) continue;
    started += 1;
    if (r.finished) finished += 1;
  }
  return {
    sent: sent ? d.recipientCount : 0,
    failed: 0,
    started,
    bounced: sent ? d.bouncedCount : 0,
    opened: 0,
    skipped: 0,
    finished,
    complaints: 0,
    blocked: sent ? d.optedOutCount : 0,
  };
}

/** List/get element; the request status follows the clock (Scheduled until sendDate, then Done). */
function distributionView(ctx: HandlerContext, d: Distribution, includeMessageText: boolean): Record<string, unknown> {
  const sent = Date.parse(d.sendDate) <= ctx.now().getTime();
  const message: Record<string, unknown> = {
    libraryId: d.message.libraryId,
    messageId: d.message.messageId,
    messageType: d.message.messageType,
  };
  // Since June 2022 list answers omit messageText; get returns it for inline messages.
  if (includeMessageText && d.message.messageType === 'Inline') message['messageText'] = d.message.messageText;
  return {
    id: d.id,
    parentDistributionId: d.parentDistributionId,
    ownerId: d.ownerId,
    organizationId: ctx.store.config.brandId,
    requestStatus: sent ? 'Done' : 'Scheduled',
    requestType: d.requestType,
    sendDate: d.sendDate,
    createdDate: d.createdDate,
    modifiedDate: d.modifiedDate,
    customHeaders: {},
    headers: { ...d.headers },
    recipients: {
      mailingListId: d.recipients.mailingListId,
      contactId: d.recipients.contactId,
      libraryId: d.recipients.libraryId,
      sampleId: d.recipients.sampleId,
      ...(d.recipients.transactionBatchId ? { transactionBatchId: d.recipients.transactionBatchId } : {}),
    },
    message,
    surveyLink: { ...d.surveyLink },
    embeddedData: d.embeddedData,
    stats: statsOf(ctx.store, d, sent, ctx.now().getTime()),
  };
}

function dateParam(url: URL, name: string): number | undefined {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return undefined;
  const ms = parseIsoDateTime(raw);
  if (ms === undefined) throw invalidParam(name, 'expected an ISO-8601 date-time');
  return ms;
}

function listDistributions(ctx: HandlerContext): ApiResult {
  const surveyId = ctx.url.searchParams.get('surveyId');
  if (!surveyId) throw missingParam('surveyId');
  if (!ctx.store.surveys.has(surveyId)) throw invalidParam('surveyId', `no survey ${surveyId} exists`);
  const type = ctx.url.searchParams.get('distributionRequestType');
  if (type !== null && !REQUEST_TYPES.includes(type)) throw invalidParam('distributionRequestType');
  const mailingListId = ctx.url.searchParams.get('mailingListId');
  const from = dateParam(ctx.url, 'sendStartDate');
  const to = dateParam(ctx.url, 'sendEndDate');
  const collection = `dist:${surveyId}`;
  const req = readPageRequest(ctx.url, collection, { defaultSize: 100, maxSize: 100, allowOffset: true });
  const matches = [...ctx.store.distributions.values()].filter((d) => {
    if (d.surveyLink.surveyId !== surveyId) return false;
    if (type !== null && d.requestType !== type) return false;
    if (mailingListId && d.recipients.mailingListId !== mailingListId) return false;
    const t = Date.parse(d.sendDate);
    return (from === undefined || t >= from) && (to === undefined || t <= to);
  });
  const page = takePage(matches, req);
  return ok({
    elements: page.items.map((d) => distributionView(ctx, d, false)),
    nextPage: nextPageUrl(ctx.url, collection, page.nextAfterSeq),
  });
}

/**
 * ⚠ Whether `surveyId` is required on get is unconfirmed; requiring it is the safe reading (a client that
 * sends it works against the real API either way).
 */
function requireDistribution(ctx: HandlerContext): Distribution {
  const surveyId = ctx.url.searchParams.get('surveyId');
  if (!surveyId) throw missingParam('surveyId');
  const id = param(ctx, 'distributionId');
  const d = ctx.store.distributions.get(id);
  if (!d || d.surveyLink.surveyId !== surveyId) throw notFound('Distribution', id);
  return d;
}

function getDistribution(ctx: HandlerContext): ApiResult {
  return ok(distributionView(ctx, requireDistribution(ctx), true));
}

function deleteDistribution(ctx: HandlerContext): ApiResult {
  const id = param(ctx, 'distributionId');
  if (!ctx.store.distributions.has(id)) throw notFound('Distribution', id);
  ctx.store.distributions.delete(id);
  return ok();
}

export const distributionRoutes: Route[] = [
  { method: 'POST', pattern: '/distributions', handler: createDistribution },
  { method: 'GET', pattern: '/distributions', handler: listDistributions },
  { method: 'GET', pattern: '/distributions/{distributionId}', handler: getDistribution },
  { method: 'DELETE', pattern: '/distributions/{distributionId}', handler: deleteDistribution },
];
