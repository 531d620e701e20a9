/** XM Directory: directories, mailing lists, contacts in lists, directory contacts and contact search. */
import { BodyReader, parseJsonBody, queryBoolean } from '../body.ts';
import {
  addMembership,
  createContact,
  directoryContactListView,
  directoryContactView,
  listContactView,
  mailingListContactView,
  mailingListView,
  patchContact,
  readContactInput,
  searchContactView,
  setDirectoryUnsubscribed,
  setListUnsubscribed,
} from '../contacts.ts';
import { param, type HandlerContext, type Route } from '../context.ts';
import { invalidParam, notFound, ok, type ApiResult } from '../envelope.ts';
import {
  SEARCH_PAGING_LIMIT,
  decodeSkipToken,
  encodeSkipToken,
  nextPageUrl,
  pagingLimitError,
  readPageRequest,
  takePage,
} from '../pagination.ts';
import type { Contact, Directory, MailingList, Membership } from '../state.ts';

/** Mailing list names are capped at 100 characters (reported limit). */
const MAX_LIST_NAME = 100;

export function requireDirectory(ctx: HandlerContext): Directory {
  const id = param(ctx, 'directoryId');
  const d = ctx.store.directories.get(id);
  if (!d) throw notFound('Directory', id);
  return d;
}

export function requireMailingList(ctx: HandlerContext): MailingList {
  const dir = requireDirectory(ctx);
  const id = param(ctx, 'mailingListId');
  const list = ctx.store.mailingLists.get(id);
  if (!list || list.directoryId !== dir.directoryId) throw notFound('Mailing list', id);
  return list;
}

function requireMember(ctx: HandlerContext, list: MailingList): { m: Membership; c: Contact } {
  const contactId = param(ctx, 'contactId');
  const m = ctx.store.membershipFor(list.mailingListId, contactId);
  const c = ctx.store.contacts.get(contactId);
  if (!m || !c) throw notFound('Contact', contactId);
  return { m, c };
}

function requireDirectoryContact(ctx: HandlerContext, dir: Directory): Contact {
  const contactId = param(ctx, 'contactId');
  const c = ctx.store.contacts.get(contactId);
  if (!c || c.directoryId !== dir.directoryId) throw notFound('Contact', contactId);
  return c;
}

function listDirectories(ctx: HandlerContext): ApiResult {
  const req = readPageRequest(ctx.url, 'dir', { defaultSize: 100, maxSize: 100 });
  const counts = new Map<string, number>();
  for (const c of ctx.store.contacts.values()) counts.set(c.directoryId, (counts.get(c.directoryId) ?? 0) + 1);
  const page = takePage([...ctx.store.directories.values()], req);
  return ok({
    elements: page.items.map((d) => ({
      directoryId: d.directoryId,
      name: d.name,
      contactCount: counts.get(d.directoryId) ?? 0,
      isDefault: d.isDefault,
      deduplicationCriteria: { ...d.deduplicationCriteria },
    })),
    nextPage: nextPageUrl(ctx.url, 'dir', page.nextAfterSeq),
  });
}

function listMailingLists(ctx: HandlerContext): ApiResult {
  const dir = requireDirectory(ctx);
  const collection = `ml:${dir.directoryId}`;
  const req = readPageRequest(ctx.url, collection, { defaultSize: 100, maxSize: 100 });
  const includeCount = queryBoolean(ctx.url, 'includeCount') ?? false;
  // Accepted for compatibility: our tokens are already the string-based scheme it opts into.
  queryBoolean(ctx.url, 'useNewPaginationScheme');
  const ownerId = ctx.url.searchParams.get('ownerId');
  const lists = [...ctx.store.mailingLists.values()].filter(
    (l) => l.directoryId === dir.directoryId && (!ownerId || l.ownerId === ownerId),
  );
  const page = takePage(lists, req);
  return ok({
    elements: page.items.map((l) => mailingListView(ctx.store, l, includeCount)),
    nextPage: nextPageUrl(ctx.url, collection, page.nextAfterSeq),
  });
}

function readOwnerId(body: BodyReader): string | undefined {
  const ownerId = body.optionalString('ownerId');
  if (ownerId !== undefined && !/^(UR|GR)_\w+$/.test(ownerId)) {
    throw invalidParam('ownerId', 'expected a user (UR_) or group (GR_) id');
  }
  return ownerId;
}

function createMailingList(ctx: HandlerContext): ApiResult {
  const dir = requireDirectory(ctx);
  const body = new BodyReader(parseJsonBody(ctx.req)).allowOnly(['name', 'ownerId', 'prioritizeListMetadata']);
  const name = body.requiredString('name', { maxLength: MAX_LIST_NAME });
  if (name.trim() === '') throw invalidParam('name', 'must not be empty');
  const ownerId = readOwnerId(body) ?? ctx.store.config.userId;
  const prioritizeListMetadata = body.optionalBoolean('prioritizeListMetadata') ?? false;
  const nowMs = ctx.now().getTime();
  const list: MailingList = {
    seq: ctx.store.nextSeq(),
    mailingListId: ctx.rng.id('CG'),
    directoryId: dir.directoryId,
    name,
    ownerId,
    prioritizeListMetadata,
    creationDate: nowMs,
    lastModifiedDate: nowMs,
  };
  ctx.store.mailingLists.set(list.mailingListId, list);
  return ok({ id: list.mailingListId });
}

function getMailingList(ctx: HandlerContext): ApiResult {
  return ok(mailingListView(ctx.store, requireMailingList(ctx), true));
}

function updateMailingList(ctx: HandlerContext): ApiResult {
  const list = requireMailingList(ctx);
  const body = new BodyReader(parseJsonBody(ctx.req)).allowOnly(['name', 'ownerId', 'prioritizeListMetadata']);
  const name = body.optionalString('name', { maxLength: MAX_LIST_NAME });
  if (name !== undefined && name.trim() === '') throw invalidParam('name', 'must not be empty');
  const ownerId = readOwnerId(body);
  const prioritize = body.optionalBoolean('prioritizeListMetadata');
  if (name !== undefined) list.name = name;
  if (ownerId !== undefined) list.ownerId = ownerId;
  if (prioritize !== undefined) list.prioritizeListMetadata = prioritize;
  list.lastModifiedDate = ctx.now().getTime();
  return ok();
}

function deleteMailingList(ctx: HandlerContext): ApiResult {
  const list = requireMailingList(ctx);
  ctx.store.deleteMailingList(list.mailingListId);
  return ok();
}

function listListContacts(ctx: HandlerContext): ApiResult {
  const list = requireMailingList(ctx);
  const collection = `mlc:${list.mailingListId}`;
  // Documented: default 50, maximum 50.
  const req = readPageRequest(ctx.url, collection, { defaultSize: 50, maxSize: 50 });
  const includeEmbedded = queryBoolean(ctx.url, 'includeEmbedded') ?? false;
  queryBoolean(ctx.url, 'useNewPaginationScheme');
  const page = takePage(ctx.store.membersOf(list.mailingListId), req);
  const elements = page.items.flatMap((m) => {
    const c = ctx.store.contacts.get(m.contactId);
    return c ? [listContactView(m, c, includeEmbedded)] : [];
  });
  return ok({ elements, nextPage: nextPageUrl(ctx.url, collection, page.nextAfterSeq) });
}

/**
 * "Create Contact in Mailing List … is the only way to add a contact to a mailing list": it always
 * creates a new directory contact too, even when one with the same email exists (documented duplicate).
 */
function createListContact(ctx: HandlerContext): ApiResult {
  const list = requireMailingList(ctx);
  const input = readContactInput(new BodyReader(parseJsonBody(ctx.req)), { allowPrivate: true });
  const nowMs = ctx.now().getTime();
  const contact = createContact(ctx.store, ctx.rng, nowMs, list.directoryId, input);
  const m = addMembership(ctx.store, ctx.rng, nowMs, list, contact, input);
  list.lastModifiedDate = nowMs;
  return ok({ id: contact.contactId, contactLookupId: m.contactLookupId });
}

function getListContact(ctx: HandlerContext): ApiResult {
  const { m, c } = requireMember(ctx, requireMailingList(ctx));
  return ok(mailingListContactView(m, c));
}

function updateListContact(ctx: HandlerContext): ApiResult {
  const list = requireMailingList(ctx);
  const { m, c } = requireMember(ctx, list);
  const input = readContactInput(new BodyReader(parseJsonBody(ctx.req)), { allowPrivate: true });
  const nowMs = ctx.now().getTime();
  patchContact(ctx.store, c, input, nowMs);
  if (input.unsubscribed !== undefined) setListUnsubscribed(m, input.unsubscribed, nowMs);
  if (input.privateEmbeddedData) m.privateEmbeddedData = { ...m.privateEmbeddedData, ...input.privateEmbeddedData };
  list.lastModifiedDate = nowMs;
  return ok();
}

/** Removes the contact from this list only; the directory contact stays. */
function deleteListContact(ctx: HandlerContext): ApiResult {
  const list = requireMailingList(ctx);
  const { m } = requireMember(ctx, list);
  ctx.store.deleteMembership(m.contactLookupId);
  list.lastModifiedDate = ctx.now().getTime();
  return ok();
}

function listDirectoryContacts(ctx: HandlerContext): ApiResult {
  const dir = requireDirectory(ctx);
  const collection = `dc:${dir.directoryId}`;
  const req = readPageRequest(ctx.url, collection, { defaultSize: 100, maxSize: 100 });
  const contacts = [...ctx.store.contacts.values()].filter((c) => c.directoryId === dir.directoryId);
  const page = takePage(contacts, req);
  return ok({
    elements: page.items.map(directoryContactListView),
    nextPage: nextPageUrl(ctx.url, collection, page.nextAfterSeq),
  });
}

function createDirectoryContact(ctx: HandlerContext): ApiResult {
  const dir = requireDirectory(ctx);
  const input = readContactInput(new BodyReader(parseJsonBody(ctx.req)), { allowPrivate: false });
  const nowMs = ctx.now().getTime();
  const contact = createContact(ctx.store, ctx.rng, nowMs, dir.directoryId, input);
  if (input.unsubscribed) setDirectoryUnsubscribed(contact, true, nowMs);
  return ok({ id: contact.contactId });
}

function getDirectoryContact(ctx: HandlerContext): ApiResult {
  const dir = requireDirectory(ctx);
  return ok(directoryContactView(ctx.store, requireDirectoryContact(ctx, dir)));
}

function updateDirectoryContact(ctx: HandlerContext): ApiResult {
  const dir = requireDirectory(ctx);
  const c = requireDirectoryContact(ctx, dir);
  const input = readContactInput(new BodyReader(parseJsonBody(ctx.req)), { allowPrivate: false });
  const nowMs = ctx.now().getTime();
  patchContact(ctx.store, c, input, nowMs);
  if (input.unsubscribed !== undefined) setDirectoryUnsubscribed(c, input.unsubscribed, nowMs);
  return ok();
}

function deleteDirectoryContact(ctx: HandlerContext): ApiResult {
  const dir = requireDirectory(ctx);
  const c = requireDirectoryContact(ctx, dir);
  ctx.store.deleteContact(c.contactId);
  return ok();
}

type ContactPredicate = (c: Contact) => boolean;

const FILTER_FIELDS: Record<string, (c: Contact) => string | null> = {
  email: (c) => c.email,
  extRef: (c) => c.extRef,
  phone: (c) => c.phone,
  firstName: (c) => c.firstName,
  lastName: (c) => c.lastName,
  language: (c) => c.language,
};

/** Search filters: `{filterType, comparison, value}` leaves combined by `{conjunction, filters}`. */
function compileFilter(body: BodyReader): ContactPredicate {
  if (body.has('conjunction') || body.has('filters')) {
    body.allowOnly(['conjunction', 'filters']);
    const conj = body.requiredString('conjunction');
    if (conj !== 'and' && conj !== 'or') throw invalidParam('filter.conjunction', 'expected and or or');
    const parts = body.requiredArray('filters').map((f, i) => {
      if (typeof f !== 'object' || f === null || Array.isArray(f)) throw invalidParam(`filter.filters[${i}]`);
      return compileFilter(new BodyReader(f as Record<string, unknown>, `filter.filters[${i}]`));
    });
    if (parts.length === 0) throw invalidParam('filter.filters', 'must not be empty');
    return conj === 'and' ? (c) => parts.every((p) => p(c)) : (c) => parts.some((p) => p(c));
  }
  body.allowOnly(['filterType', 'comparison', 'value']);
  const filterType = body.requiredString('filterType');
  const get = FILTER_FIELDS[filterType];
  if (!get) throw invalidParam('filter.filterType', `unsupported filterType ${filterType}`);
  const comparison = body.requiredString('comparison');
  const value = body.requiredString('value');
  const norm = (s: string): string => (filterType === 'email' ? s.toLowerCase() : s);
  switch (comparison) {
    case 'eq':
      return (c) => {
        const v = get(c);
        return v !== null && norm(v) === norm(value);
      };
    case 'ne':
      return (c) => {
        const v = get(c);
        return v === null || norm(v) !== norm(value);
      };
    case 'contains':
      return (c) => (get(c) ?? '').toLowerCase().includes(value.toLowerCase());
    default:
      throw invalidParam('filter.comparison', `unsupported comparison ${comparison}`);
  }
}

/**
 * Search answers `result.skipToken` (not `nextPage`), present while pages come back full, and refuses to
 * page past the first 10 000 matches (`BRE_0.5`), as documented.
 */
function searchDirectoryContacts(ctx: HandlerContext): ApiResult {
  const dir = requireDirectory(ctx);
  const body = new BodyReader(parseJsonBody(ctx.req)).allowOnly(['filter']);
  const filterBody = body.optionalObject('filter');
  const predicate: ContactPredicate = filterBody ? compileFilter(filterBody) : () => true;
  const collection = `search:${dir.directoryId}`;
  const pageSizeRaw = ctx.url.searchParams.get('pageSize');
  let pageSize = 100;
  if (pageSizeRaw !== null && pageSizeRaw !== '') {
    if (!/^\d+$/.test(pageSizeRaw) || Number(pageSizeRaw) < 1) throw invalidParam('pageSize');
    pageSize = Math.min(Number(pageSizeRaw), 100);
  }
  const token = ctx.url.searchParams.get('skipToken');
  const afterSeq = token ? decodeSkipToken(token, collection) : 0;
  const includeEmbedded = queryBoolean(ctx.url, 'includeEmbedded') ?? false;
  queryBoolean(ctx.url, 'includeSegments');
  const matches = [...ctx.store.contacts.values()].filter((c) => c.directoryId === dir.directoryId && predicate(c));
  const start = matches.findIndex((c) => c.seq > afterSeq);
  const from = start < 0 ? matches.length : start;
  if (from >= SEARCH_PAGING_LIMIT) throw pagingLimitError();
  const items = matches.slice(from, Math.min(from + pageSize, SEARCH_PAGING_LIMIT));
  const result: Record<string, unknown> = { elements: items.map((c) => searchContactView(c, includeEmbedded)) };
  const last = items[items.length - 1];
  if (items.length === pageSize && last) result['skipToken'] = encodeSkipToken(collection, last.seq);
  return ok(result);
}

export const directoryRoutes: Route[] = [
  { method: 'GET', pattern: '/directories', handler: listDirectories },
  { method: 'GET', pattern: '/directories/{directoryId}/mailinglists', handler: listMailingLists },
  { method: 'POST', pattern: '/directories/{directoryId}/mailinglists', handler: createMailingList },
  { method: 'GET', pattern: '/directories/{directoryId}/mailinglists/{mailingListId}', handler: getMailingList },
  { method: 'PUT', pattern: '/directories/{directoryId}/mailinglists/{mailingListId}', handler: updateMailingList },
  { method: 'DELETE', pattern: '/directories/{directoryId}/mailinglists/{mailingListId}', handler: deleteMailingList },
  { method: 'GET', pattern: '/directories/{directoryId}/mailinglists/{mailingListId}/contacts', handler: listListContacts },
  { method: 'POST', pattern: '/directories/{directoryId}/mailinglists/{mailingListId}/contacts', handler: createListContact },
  {
    method: 'GET',
    pattern: '/directories/{directoryId}/mailinglists/{mailingListId}/contacts/{contactId}',
    handler: getListContact,
  },
  {
    method: 'PUT',
    pattern: '/directories/{directoryId}/mailinglists/{mailingListId}/contacts/{contactId}',
    handler: updateListContact,
  },
  {
    method: 'DELETE',
    pattern: '/directories/{directoryId}/mailinglists/{mailingListId}/contacts/{contactId}',
    handler: deleteListContact,
  },
  { method: 'GET', pattern: '/directories/{directoryId}/contacts', handler: listDirectoryContacts },
  { method: 'POST', pattern: '/directories/{directoryId}/contacts', handler: createDirectoryContact },
  { method: 'POST', pattern: '/directories/{directoryId}/contacts/search', handler: searchDirectoryContacts },
  { method: 'GET', pattern: '/directories/{directoryId}/contacts/{contactId}', handler: getDirectoryContact },
  { method: 'PUT', pattern: '/directories/{directoryId}/contacts/{contactId}', handler: updateDirectoryContact },
  { method: 'DELETE', pattern: '/directories/{directoryId}/contacts/{contactId}', handler: deleteDirectoryContact },
];
