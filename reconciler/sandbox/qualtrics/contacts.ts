/**
 * Contact records and their wire views. One directory contact can sit in several mailing lists; the
 * list-specific part (opt-out, private embedded data, the `CGC_` lookup id) is the membership.
 */
import { BodyReader } from './body.ts';
import type { SeededRandom } from './random.ts';
import type { Contact, Directory, MailingList, Membership, QualtricsStore } from './state.ts';

/** Fields a client may send for a contact; absent means "leave as is" on update. */
export interface ContactInput {
  firstName?: string;
  lastName?: string;
  email?: string;
  phone?: string;
  extRef?: string;
  language?: string;
  unsubscribed?: boolean;
  embeddedData?: Record<string, string>;
  privateEmbeddedData?: Record<string, string>;
}

const CONTACT_KEYS = ['firstName', 'lastName', 'email', 'phone', 'extRef', 'embeddedData', 'language', 'unsubscribed'];

/** Reads the documented contact body (`CreateMailingListContactRequest`, all fields optional). */
export function readContactInput(
  body: BodyReader,
  opts: { allowPrivate: boolean; extraKeys?: string[]; checkEmail?: boolean },
): ContactInput {
  body.allowOnly([...CONTACT_KEYS, ...(opts.allowPrivate ? ['privateEmbeddedData'] : []), ...(opts.extraKeys ?? [])]);
  const input: ContactInput = {};
  const firstName = body.optionalString('firstName');
  if (firstName !== undefined) input.firstName = firstName;
  const lastName = body.optionalString('lastName');
  if (lastName !== undefined) input.lastName = lastName;
  const email = opts.checkEmail === false ? body.optionalString('email') : body.optionalEmail('email');
  if (email !== undefined) input.email = email;
  const phone = body.optionalString('phone');
  if (phone !== undefined) input.phone = phone;
  const extRef = body.optionalString('extRef');
  if (extRef !== undefined) input.extRef = extRef;
  const language = body.optionalString('language');
  if (language !== undefined) input.language = language;
  const unsubscribed = body.optionalBoolean('unsubscribed');
  if (unsubscribed !== undefined) input.unsubscribed = unsubscribed;
  const embeddedData = body.optionalStringMap('embeddedData');
  if (embeddedData !== undefined) input.embeddedData = embeddedData;
  if (opts.allowPrivate) {
    const privateEmbeddedData = body.optionalStringMap('privateEmbeddedData');
    if (privateEmbeddedData !== undefined) input.privateEmbeddedData = privateEmbeddedData;
  }
  return input;
}

function blankToNull(v: string | undefined): string | null {
  return v === undefined || v === '' ? null : v;
}

export function createContact(
  store: QualtricsStore,
  rng: SeededRandom,
  nowMs: number,
  directoryId: string,
  input: ContactInput,
): Contact {
  const contact: Contact = {
    seq: store.nextSeq(),
    contactId: rng.id('CID'),
    directoryId,
    firstName: blankToNull(input.firstName),
    lastName: blankToNull(input.lastName),
    email: blankToNull(input.email),
    phone: blankToNull(input.phone),
    extRef: blankToNull(input.extRef),
    language: blankToNull(input.language),
    embeddedData: { ...(input.embeddedData ?? {}) },
    directoryUnsubscribed: false,
    directoryUnsubscribeDate: null,
    bouncedDate: null,
    creationDate: nowMs,
    lastModified: nowMs,
  };
  store.addContact(contact);
  return contact;
}

/** Writes the directory-level fields present in `input` onto `contact`. */
export function patchContact(store: QualtricsStore, contact: Contact, input: ContactInput, nowMs: number): void {
  const patch: Parameters<QualtricsStore['updateContact']>[1] = { lastModified: nowMs };
  if (input.firstName !== undefined) patch.firstName = blankToNull(input.firstName);
  if (input.lastName !== undefined) patch.lastName = blankToNull(input.lastName);
  if (input.email !== undefined) {
    patch.email = blankToNull(input.email);
    // A bounce is the address's: a new address has not bounced.
    if ((patch.email ?? '').toLowerCase() !== (contact.email ?? '').toLowerCase()) patch.bouncedDate = null;
  }
  if (input.phone !== undefined) patch.phone = blankToNull(input.phone);
  if (input.extRef !== undefined) patch.extRef = blankToNull(input.extRef);
  if (input.language !== undefined) patch.language = blankToNull(input.language);
  if (input.embeddedData !== undefined) patch.embeddedData = input.embeddedData;
  store.updateContact(contact, patch);
}

export function setDirectoryUnsubscribed(contact: Contact, unsubscribed: boolean, nowMs: number): void {
  if (contact.directoryUnsubscribed === unsubscribed) return;
  contact.directoryUnsubscribed = unsubscribed;
  contact.directoryUnsubscribeDate = unsubscribed ? nowMs : null;
}

export function setListUnsubscribed(m: Membership, unsubscribed: boolean, nowMs: number): void {
  if (m.unsubscribed === unsubscribed) return;
  m.unsubscribed = unsubscribed;
  m.unsubscribeDate = unsubscribed ? nowMs : null;
}

export function addMembership(
  store: QualtricsStore,
  rng: SeededRandom,
  nowMs: number,
  list: MailingList,
  contact: Contact,
  input: ContactInput,
): Membership {
  const m: Membership = {
    seq: store.nextSeq(),
    contactLookupId: rng.id('CGC'),
    mailingListId: list.mailingListId,
    contactId: contact.contactId,
    unsubscribed: input.unsubscribed ?? false,
    unsubscribeDate: input.unsubscribed ? nowMs : null,
    privateEmbeddedData: { ...(input.privateEmbeddedData ?? {}) },
    creationDate: nowMs,
  };
  store.addMembership(m);
  return m;
}

/**
 * The directory contact an import row merges into, by the directory's deduplication criteria: every
 * enabled criterion must match (email case-insensitively). No criteria enabled means no merging.
 */
export function findDuplicate(store: QualtricsStore, directory: Directory, input: ContactInput): Contact | undefined {
  const crit = directory.deduplicationCriteria;
  const wanted: [keyof Contact, string | undefined, boolean][] = [
    ['email', input.email?.toLowerCase(), crit.email],
    ['firstName', input.firstName, crit.firstName],
    ['lastName', input.lastName, crit.lastName],
    ['extRef', input.extRef, crit.externalDataReference],
    ['phone', input.phone, crit.phone],
  ];
  const active = wanted.filter(([, , on]) => on);
  if (active.length === 0 || active.some(([, v]) => v === undefined || v === '')) return undefined;
  const matches = (c: Contact): boolean =>
    active.every(([field, v]) => {
      const have = c[field];
      return typeof have === 'string' && (field === 'email' ? have.toLowerCase() : have) === v;
    });
  const candidates = crit.email && input.email
    ? store.findContactsByEmail(directory.directoryId, input.email)
    : [...store.contacts.values()].filter((c) => c.directoryId === directory.directoryId);
  return candidates.find(matches);
}

function emailDomain(email: string | null): string | null {
  if (!email) return null;
  const at = email.lastIndexOf('@');
  return at >= 0 ? email.slice(at + 1).toLowerCase() : null;
}

/**
 * List element (`SingleContactLegacy`). `unsubscribed` is the effective opt-out for this list: opted out
 * of the list or of the whole directory, since either way the contact will not be mailed.
 */
export function listContactView(m: Membership, c: Contact, includeEmbedded: boolean): Record<string, unknown> {
  const view: Record<string, unknown> = {
    contactId: c.contactId,
    firstName: c.firstName,
    lastName: c.lastName,
    email: c.email,
    phone: c.phone,
    extRef: c.extRef,
    language: c.language,
    unsubscribed: m.unsubscribed || c.directoryUnsubscribed,
    contactLookupId: m.contactLookupId,
    mailingListUnsubscribed: m.unsubscribed,
  };
  if (includeEmbedded) view['embeddedData'] = { ...c.embeddedData };
  return view;
}

/** Get-contact-in-list result (`Result17`); note the mixed date types, as documented. */
export function mailingListContactView(m: Membership, c: Contact): Record<string, unknown> {
  return {
    contactId: c.contactId,
    creationDate: c.creationDate,
    lastModified: c.lastModified,
    firstName: c.firstName,
    lastName: c.lastName,
    email: c.email,
    emailDomain: emailDomain(c.email),
    phone: c.phone,
    extRef: c.extRef,
    embeddedData: { ...c.embeddedData },
    language: c.language,
    directoryUnsubscribed: c.directoryUnsubscribed,
    directoryUnsubscribeDate:
      c.directoryUnsubscribeDate === null ? null : new Date(c.directoryUnsubscribeDate).toISOString(),
    mailingListUnsubscribed: m.unsubscribed,
    mailingListUnsubscribeDate: m.unsubscribeDate,
    // Per-contact statistics: the documented schema names the object but not its fields.
    stats: {},
    contactLookupId: m.contactLookupId,
    privateEmbeddedData: { ...m.privateEmbeddedData },
  };
}

/** Directory contact list element. */
export function directoryContactListView(c: Contact): Record<string, unknown> {
  return {
    contactId: c.contactId,
    firstName: c.firstName,
    lastName: c.lastName,
    email: c.email,
    phone: c.phone,
    extRef: c.extRef,
    language: c.language,
    unsubscribed: c.directoryUnsubscribed,
  };
}

/** Get-directory-contact result (`Result5`). */
export function directoryContactView(store: QualtricsStore, c: Contact): Record<string, unknown> {
  const mailingListMembership: Record<string, unknown> = {};
  for (const m of store.membershipsOfContact(c.contactId)) {
    const list = store.mailingLists.get(m.mailingListId);
    mailingListMembership[m.mailingListId] = {
      contactLookupId: m.contactLookupId,
      name: list?.name ?? null,
      unsubscribed: m.unsubscribed,
      unsubscribeDate: m.unsubscribeDate,
      ownerId: list?.ownerId ?? null,
    };
  }
  return {
    contactId: c.contactId,
    creationDate: c.creationDate,
    lastModified: c.lastModified,
    firstName: c.firstName,
    lastName: c.lastName,
    email: c.email,
    emailDomain: emailDomain(c.email),
    phone: c.phone,
    extRef: c.extRef,
    embeddedData: { ...c.embeddedData },
    language: c.language,
    segmentMembership: {},
    directoryUnsubscribed: c.directoryUnsubscribed,
    directoryUnsubscribeDate: c.directoryUnsubscribeDate,
    stats: {},
    mailingListMembership,
  };
}

/** Search element (`ElementsInner1`): the legacy names `id`, `phoneNumber`, `externalDataReference`. */
export function searchContactView(c: Contact, includeEmbedded: boolean): Record<string, unknown> {
  const view: Record<string, unknown> = {
    id: c.contactId,
    creationDate: c.creationDate,
    lastModified: c.lastModified,
    firstName: c.firstName,
    lastName: c.lastName,
    email: c.email,
    phoneNumber: c.phone,
    externalDataReference: c.extRef,
    language: c.language,
    unsubscribed: c.directoryUnsubscribed,
    unsubscribeDate: c.directoryUnsubscribeDate,
    stats: {},
    segmentMembership: {},
  };
  if (includeEmbedded) view['embeddedData'] = { ...c.embeddedData };
  return view;
}

export function mailingListView(store: QualtricsStore, l: MailingList, includeCount: boolean): Record<string, unknown> {
  return {
    mailingListId: l.mailingListId,
    name: l.name,
    ownerId: l.ownerId,
    creationDate: l.creationDate,
    lastModifiedDate: l.lastModifiedDate,
    // Documented: "when false that count will show zero".
    contactCount: includeCount ? store.membersOf(l.mailingListId).length : 0,
  };
}
