/**
 * What Qualtrics reports about the emails it sent: a contact's email (and response) history, per
 * directory contact (K7) or through one mailing list (C6), and a list's bounced and opted-out contacts
 * (C7, C8; element `SingleContact`, `since` on the bounce or opt-out date).
 *
 * The history is written when a distribution is created (routes/distributions.ts), one entry per
 * recipient, dated at the send date: `Success`, `Blocked` (opted out), or `Bounce` (the address is
 * known to bounce, or its domain ends in `.invalid`, which RFC 2606 reserves as never resolving: a hard
 * bounce at send). A bounce can also be set by the sandbox's admin route, as a mail server would report it.
 */
import { parseIsoDateTime } from '../body.ts';
import { param, type HandlerContext, type Route } from '../context.ts';
import { invalidParam, missingParam, notFound, ok, type ApiResult } from '../envelope.ts';
import { nextPageUrl, readPageRequest, takePage } from '../pagination.ts';
import type { Contact, EmailHistoryEntry, QualtricsStore } from '../state.ts';
import { requireDirectory, requireMailingList } from './directory.ts';

/** `yyyy-MM-dd HH:mm:ss`, UTC: the documented history date format. */
export function historyDate(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, '');
}

function emailEntryView(e: EmailHistoryEntry): Record<string, unknown> {
  return {
    distributionId: e.distributionId,
    date: historyDate(e.date),
    type: e.type,
    result: e.result,
    ...(e.bounceInfo ? { bounceInfo: { ...e.bounceInfo } } : {}),
    surveyId: e.surveyId,
    read: false,
    lookupId: e.contactLookupId,
  };
}

function readHistoryType(ctx: HandlerContext): 'email' | 'response' {
  const type = ctx.url.searchParams.get('type');
  if (type === null || type === '') throw missingParam('type');
  if (type !== 'email' && type !== 'response') throw invalidParam('type', 'expected email or response');
  return type;
}

/** A contact's history, a page at a time (`offset` or the `skipToken` of `nextPage`). */
function historyPage(ctx: HandlerContext, contact: Contact, mailingListId: string | null): ApiResult {
  const type = readHistoryType(ctx);
  const collection = `hist:${type}:${contact.contactId}:${mailingListId ?? ''}`;
  const req = readPageRequest(ctx.url, collection, { defaultSize: 100, maxSize: 100, allowOffset: true });
  if (type === 'email') {
    const entries = ctx.store.emailHistoryOf(contact.contactId).filter((e) => mailingListId === null || e.mailingListId === mailingListId);
    const page = takePage(entries, req);
    return ok({ elements: page.items.map(emailEntryView), nextPage: nextPageUrl(ctx.url, collection, page.nextAfterSeq) });
  }
  const responses = [...ctx.store.responses.values()]
    .filter((r) => r.contactId === contact.contactId && (!r.drawn || Date.parse(r.recordedDate) <= ctx.now().getTime()))
    .sort((a, b) => a.seq - b.seq);
  const page = takePage(responses, req);
  return ok({
    elements: page.items.map((r) => ({
      responseId: r.responseId,
      distributionId: r.distributionId,
      surveyStartedDate: historyDate(Date.parse(r.startDate)),
      surveyCompletedDate: r.finished ? historyDate(Date.parse(r.endDate)) : null,
      surveyFinished: r.finished,
      surveyId: r.surveyId,
    })),
    nextPage: nextPageUrl(ctx.url, collection, page.nextAfterSeq),
  });
}

function directoryContactHistory(ctx: HandlerContext): ApiResult {
  const dir = requireDirectory(ctx);
  const contactId = param(ctx, 'contactId');
  const c = ctx.store.contacts.get(contactId);
  if (!c || c.directoryId !== dir.directoryId) throw notFound('Contact', contactId);
  return historyPage(ctx, c, null);
}

function listContactHistory(ctx: HandlerContext): ApiResult {
  const list = requireMailingList(ctx);
  const contactId = param(ctx, 'contactId');
  const c = ctx.store.contacts.get(contactId);
  if (!c || !ctx.store.membershipFor(list.mailingListId, contactId)) throw notFound('Contact', contactId);
  return historyPage(ctx, c, list.mailingListId);
}

/** `SingleContact`, the element of the bounced and opted-out lists. */
function singleContactView(c: Contact): Record<string, unknown> {
  return {
    contactId: c.contactId,
    firstName: c.firstName,
    lastName: c.lastName,
    email: c.email,
    phone: c.phone,
    extRef: c.extRef,
    language: c.language,
    directoryUnsubscribed: c.directoryUnsubscribed,
    directoryUnsubscribeDate: c.directoryUnsubscribeDate === null ? null : new Date(c.directoryUnsubscribeDate).toISOString(),
  };
}

function readSince(ctx: HandlerContext): number | undefined {
  const raw = ctx.url.searchParams.get('since');
  if (raw === null || raw === '') return undefined;
  const ms = parseIsoDateTime(raw);
  if (ms === undefined) throw invalidParam('since', 'expected an ISO-8601 date-time');
  return ms;
}

/** The list's members for whom `dateOf` gives a date at or after `since`, paged by membership. */
function listMembersWhere(ctx: HandlerContext, kind: string, dateOf: (c: Contact, unsubscribeDate: number | null) => number | null): ApiResult {
  const list = requireMailingList(ctx);
  const since = readSince(ctx);
  const collection = `${kind}:${list.mailingListId}`;
  const req = readPageRequest(ctx.url, collection, { defaultSize: 100, maxSize: 100 });
  const matching = ctx.store.membersOf(list.mailingListId).filter((m) => {
    const c = ctx.store.contacts.get(m.contactId);
    const date = c ? dateOf(c, m.unsubscribeDate) : null;
    return date !== null && (since === undefined || date >= since);
  });
  const page = takePage(matching, req);
  return ok({
    elements: page.items.map((m) => singleContactView(ctx.store.contacts.get(m.contactId)!)),
    nextPage: nextPageUrl(ctx.url, collection, page.nextAfterSeq),
  });
}

function bouncedContacts(ctx: HandlerContext): ApiResult {
  return listMembersWhere(ctx, 'bounced', (c) => c.bouncedDate);
}

/** Opted out of this list or of the whole directory (the later date when both). */
function optedOutContacts(ctx: HandlerContext): ApiResult {
  return listMembersWhere(ctx, 'optedout', (c, listDate) => {
    const dates = [listDate, c.directoryUnsubscribed ? c.directoryUnsubscribeDate : null].filter((d): d is number => d !== null);
    return dates.length ? Math.max(...dates) : null;
  });
}

/** A hard bounce's details, as a mail server reports a non-existent address. */
export const HARD_BOUNCE = { type: 'Hard', statusCode: '550', reason: '5.1.1 The email account that you tried to reach does not exist.', blacklisted: false };

/** Whether an address can never be delivered: its domain ends in `.invalid` (RFC 2606). */
export function undeliverable(email: string | null): boolean {
  return email !== null && /\.invalid$/i.test(email.trim());
}

/**
 * Marks every contact of a directory at this address (or with this extRef, or this contact) as
 * bounced at `atMs`; returns their ids. Contacts are per directory, and a bounce is the address's.
 */
export function bounceContacts(store: QualtricsStore, directoryId: string, by: { email?: string; extRef?: string; contactId?: string }, atMs: number): string[] {
  const out: string[] = [];
  for (const c of store.contacts.values()) {
    if (c.directoryId !== directoryId) continue;
    const hit =
      (by.contactId !== undefined && c.contactId === by.contactId) ||
      (by.extRef !== undefined && c.extRef === by.extRef) ||
      (by.email !== undefined && c.email !== null && c.email.toLowerCase() === by.email.trim().toLowerCase());
    if (!hit) continue;
    c.bouncedDate = atMs;
    out.push(c.contactId);
  }
  return out;
}

export const contactHistoryRoutes: Route[] = [
  { method: 'GET', pattern: '/directories/{directoryId}/contacts/{contactId}/history', handler: directoryContactHistory },
  { method: 'GET', pattern: '/directories/{directoryId}/mailinglists/{mailingListId}/contacts/{contactId}/history', handler: listContactHistory },
  { method: 'GET', pattern: '/directories/{directoryId}/mailinglists/{mailingListId}/bouncedContacts', handler: bouncedContacts },
  { method: 'GET', pattern: '/directories/{directoryId}/mailinglists/{mailingListId}/optedOutContacts', handler: optedOutContacts },
];
