/**
 * The emulator's whole state: plain records (zod schemas are the single source of their types, and
 * validate a snapshot read back from disk) held in insertion-ordered maps, plus derived indexes that are
 * rebuilt on restore and never persisted.
 *
 * Ordering: every record gets a `seq` from one monotonic counter. Collections are listed in `seq` order
 * and skip tokens carry the last `seq` served, so paging stays correct while records are added or
 * deleted between pages (an offset would skip or repeat rows).
 */
import { z } from 'zod';

const stringMap = z.record(z.string(), z.string());

export const configSchema = z.object({
  brandId: z.string(),
  userId: z.string(),
  userName: z.string(),
  firstName: z.string(),
  lastName: z.string(),
  email: z.string(),
  /** `UT_BRANDADMIN` may manage event subscriptions; other user types get 403 there. */
  accountType: z.string(),
  /** The brand's home datacenter id, reported by `/whoami`. */
  datacenter: z.string(),
  /**
   * The host (`host:port`) that counts as the home datacenter. When set, a request arriving under any
   * other host is "proxied": it carries the documented `meta.notice` naming this host. Null: every host
   * is home, unless the host itself names a datacenter (`<dc>.qualtrics.com`).
   */
  homeHost: z.string().nullable(),
  /** Whether response-export calls on a proxied host fail with 400 (as reported in real threads). */
  rejectProxiedExports: z.boolean(),
  /** Requests per minute per brand (leaky bucket). */
  brandLimitPerMinute: z.number().int().positive(),
  /** Stricter per-endpoint limits, keyed by route key (see routes). */
  endpointLimits: z.record(z.string(), z.number().int().positive()),
  /** Fixed Retry-After (seconds) on 429; null derives it from the bucket's drain time. */
  retryAfterSeconds: z.number().int().nonnegative().nullable(),
  /** How many emulator requests a background job (import, export) needs to finish. */
  jobSteps: z.number().int().positive(),
  /** The next N response exports end in `failed`, for testing a client's retry path. */
  exportFailuresPending: z.number().int().nonnegative(),
  maxBodyBytes: z.number().int().positive(),
});
export type QualtricsConfig = z.infer<typeof configSchema>;

export const dedupCriteriaSchema = z.object({
  email: z.boolean(),
  firstName: z.boolean(),
  lastName: z.boolean(),
  externalDataReference: z.boolean(),
  phone: z.boolean(),
});
export type DedupCriteria = z.infer<typeof dedupCriteriaSchema>;

export const directorySchema = z.object({
  seq: z.number(),
  directoryId: z.string(),
  name: z.string().nullable(),
  isDefault: z.boolean(),
  deduplicationCriteria: dedupCriteriaSchema,
});
export type Directory = z.infer<typeof directorySchema>;

/** A contact in a directory; mailing-list membership is a separate record. Dates are epoch ms. */
export const contactSchema = z.object({
  seq: z.number(),
  contactId: z.string(),
  directoryId: z.string(),
  firstName: z.string().nullable(),
  lastName: z.string().nullable(),
  email: z.string().nullable(),
  phone: z.string().nullable(),
  extRef: z.string().nullable(),
  language: z.string().nullable(),
  embeddedData: stringMap,
  directoryUnsubscribed: z.boolean(),
  directoryUnsubscribeDate: z.number().nullable(),
  /**
   * When the contact's current address bounced (epoch ms); null while it has not. A bounce belongs to
   * the address, so changing the email clears it. Absent in snapshots written before bounces existed.
   */
  bouncedDate: z.number().nullable().default(null),
  creationDate: z.number(),
  lastModified: z.number(),
});
export type Contact = z.infer<typeof contactSchema>;

export const mailingListSchema = z.object({
  seq: z.number(),
  mailingListId: z.string(),
  directoryId: z.string(),
  name: z.string(),
  ownerId: z.string(),
  prioritizeListMetadata: z.boolean(),
  creationDate: z.number(),
  lastModifiedDate: z.number(),
});
export type MailingList = z.infer<typeof mailingListSchema>;

/** A contact's place in one mailing list, addressed by its `CGC_` lookup id. */
export const membershipSchema = z.object({
  seq: z.number(),
  contactLookupId: z.string(),
  mailingListId: z.string(),
  contactId: z.string(),
  unsubscribed: z.boolean(),
  unsubscribeDate: z.number().nullable(),
  privateEmbeddedData: stringMap,
  creationDate: z.number(),
});
export type Membership = z.infer<typeof membershipSchema>;

export const importContactSchema = z.object({
  firstName: z.string().nullable(),
  lastName: z.string().nullable(),
  email: z.string().nullable(),
  phone: z.string().nullable(),
  extRef: z.string().nullable(),
  language: z.string().nullable(),
  unsubscribed: z.boolean().nullable(),
  embeddedData: stringMap,
  transactionData: stringMap.nullable(),
});
export type ImportContact = z.infer<typeof importContactSchema>;

export const importReportEntrySchema = z.object({
  sourceIndexId: z.number(),
  email: z.string().nullable(),
  phone: z.string().nullable(),
  contactId: z.string().nullable(),
  importStatus: z.string(),
  importStatusCode: z.string().nullable(),
  transactionId: z.string().nullable(),
  transactionStatus: z.string().nullable(),
  transactionStatusCode: z.string().nullable(),
  contactListContactId: z.string().nullable(),
  contactListContactStatus: z.string().nullable(),
  contactListContactStatusCode: z.string().nullable(),
});
export type ImportReportEntry = z.infer<typeof importReportEntrySchema>;

export const jobStatusSchema = z.enum(['inProgress', 'complete', 'failed']);
export type JobStatus = z.infer<typeof jobStatusSchema>;

export const importJobSchema = z.object({
  seq: z.number(),
  id: z.string(),
  directoryId: z.string(),
  mailingListId: z.string(),
  batchId: z.string().nullable(),
  transactionFields: z.array(z.string()),
  createdAt: z.number(),
  stepsDone: z.number(),
  stepsTotal: z.number(),
  status: jobStatusSchema,
  rows: z.array(importContactSchema),
  /** Rows processed so far; processing is spread over the job's steps. */
  cursor: z.number(),
  /** Rows the partial-failure fault marked as failing, by index. */
  faultedRows: z.array(z.number()),
  added: z.number(),
  updated: z.number(),
  failed: z.number(),
  transactionsCreated: z.number(),
  invalidEmails: z.array(z.string()),
  report: z.array(importReportEntrySchema),
});
export type ImportJob = z.infer<typeof importJobSchema>;

export const transactionBatchSchema = z.object({
  seq: z.number(),
  id: z.string(),
  directoryId: z.string(),
  creationDate: z.number(),
  transactionIds: z.array(z.string()),
});
export type TransactionBatch = z.infer<typeof transactionBatchSchema>;

export const transactionSchema = z.object({
  seq: z.number(),
  id: z.string(),
  directoryId: z.string(),
  contactId: z.string(),
  mailingListId: z.string(),
  batchId: z.string().nullable(),
  /** `YYYY-MM-DD HH:MM:SS` UTC, the format transactions use on the wire. */
  transactionDate: z.string(),
  data: stringMap,
});
export type Transaction = z.infer<typeof transactionSchema>;

/** The emulator's question types (each maps to one Qualtrics `QuestionType`/`Selector`). */
export const questionTypeSchema = z.enum(['single', 'multi', 'text', 'nps']);
export type QuestionType = z.infer<typeof questionTypeSchema>;

export const questionSchema = z.preprocess(
  // Snapshots written by older versions name the question type `kind`.
  (q) => (q !== null && typeof q === 'object' && !('type' in q) && 'kind' in q ? (({ kind, ...rest }) => ({ ...rest, type: kind }))(q) : q),
  z.object({
    id: z.string(),
    /** `DataExportTag`, the CSV column name (`Q1`). */
    exportTag: z.string(),
    text: z.string(),
    type: questionTypeSchema,
    forceResponse: z.boolean(),
    choices: z.array(z.object({ id: z.string(), text: z.string(), recode: z.string() })),
  }),
);
export type Question = z.infer<typeof questionSchema>;

export const surveySchema = z.object({
  seq: z.number(),
  id: z.string(),
  name: z.string(),
  ownerId: z.string(),
  isActive: z.boolean(),
  creationDate: z.string(),
  lastModifiedDate: z.string(),
  expiration: z.object({ startDate: z.string().nullable(), endDate: z.string().nullable() }),
  questions: z.array(questionSchema),
  embeddedData: z.array(z.object({ name: z.string(), defaultValue: z.string().nullable() })),
});
export type Survey = z.infer<typeof surveySchema>;

/** An answer as stored: a choice id, several choice ids, free text, or a 0–10 score. */
export const answerSchema = z.union([z.string(), z.number(), z.array(z.string())]);
export type Answer = z.infer<typeof answerSchema>;

export const surveyResponseSchema = z.object({
  seq: z.number(),
  responseId: z.string(),
  surveyId: z.string(),
  startDate: z.string(),
  endDate: z.string(),
  recordedDate: z.string(),
  lastModifiedDate: z.string(),
  status: z.number(),
  finished: z.boolean(),
  progress: z.number(),
  duration: z.number(),
  ipAddress: z.string().nullable(),
  locationLatitude: z.string().nullable(),
  locationLongitude: z.string().nullable(),
  distributionChannel: z.string(),
  userLanguage: z.string(),
  distributionId: z.string().nullable(),
  contactId: z.string().nullable(),
  recipientEmail: z.string().nullable(),
  recipientFirstName: z.string().nullable(),
  recipientLastName: z.string().nullable(),
  externalDataReference: z.string().nullable(),
  /** Keyed by QID. */
  answers: z.record(z.string(), answerSchema),
  /** Free text typed next to a choice, keyed by `QID<n>_<choiceId>_TEXT`. */
  choiceTexts: stringMap,
  /** QIDs shown to the respondent (answered or not). */
  displayed: z.array(z.string()),
  embeddedData: stringMap,
  /** Drawn for a distribution's recipient (answers.ts): exists only once its recordedDate has come. */
  drawn: z.boolean().optional(),
});
export type SurveyResponse = z.infer<typeof surveyResponseSchema>;

export const exportFormatSchema = z.enum(['json', 'ndjson', 'csv', 'tsv', 'xml']);
export type ExportFormat = z.infer<typeof exportFormatSchema>;

export const exportRequestSchema = z.object({
  format: exportFormatSchema,
  startDate: z.string().nullable(),
  endDate: z.string().nullable(),
  limit: z.number().nullable(),
  useLabels: z.boolean(),
  timeZone: z.string(),
  questionIds: z.array(z.string()).nullable(),
  embeddedDataIds: z.array(z.string()).nullable(),
  surveyMetadataIds: z.array(z.string()).nullable(),
  seenUnansweredRecode: z.number().nullable(),
  multiselectSeenUnansweredRecode: z.number().nullable(),
  compress: z.boolean(),
  breakoutSets: z.boolean(),
  formatDecimalAsComma: z.boolean(),
  newlineReplacement: z.string().nullable(),
  sortByLastModifiedDate: z.boolean(),
  allowContinuation: z.boolean(),
  /** Responses with a `seq` above this were not yet exported by the continued export. */
  afterSeq: z.number().nullable(),
});
export type ExportRequest = z.infer<typeof exportRequestSchema>;

export const exportJobSchema = z.object({
  seq: z.number(),
  progressId: z.string(),
  surveyId: z.string(),
  createdAt: z.number(),
  stepsDone: z.number(),
  stepsTotal: z.number(),
  status: jobStatusSchema,
  willFail: z.boolean(),
  request: exportRequestSchema,
  fileId: z.string().nullable(),
  continuationToken: z.string().nullable(),
});
export type ExportJob = z.infer<typeof exportJobSchema>;

export const exportFileSchema = z.object({
  fileId: z.string(),
  surveyId: z.string(),
  fileName: z.string(),
  contentType: z.string(),
  /** File bytes, base64 so the snapshot stays JSON. */
  dataBase64: z.string(),
});
export type ExportFile = z.infer<typeof exportFileSchema>;

export const continuationSchema = z.object({
  token: z.string(),
  surveyId: z.string(),
  afterSeq: z.number(),
  expiresAt: z.number(),
});
export type Continuation = z.infer<typeof continuationSchema>;

export const distributionStatsSchema = z.object({
  sent: z.number(),
  failed: z.number(),
  started: z.number(),
  bounced: z.number(),
  opened: z.number(),
  skipped: z.number(),
  finished: z.number(),
  complaints: z.number(),
  blocked: z.number(),
});
export type DistributionStats = z.infer<typeof distributionStatsSchema>;

export const distributionSchema = z.object({
  seq: z.number(),
  id: z.string(),
  parentDistributionId: z.string().nullable(),
  ownerId: z.string(),
  requestType: z.string(),
  sendDate: z.string(),
  createdDate: z.string(),
  modifiedDate: z.string(),
  headers: z.object({
    fromEmail: z.string(),
    fromName: z.string(),
    replyToEmail: z.string().nullable(),
    subject: z.string(),
  }),
  recipients: z.object({
    mailingListId: z.string().nullable(),
    contactId: z.string().nullable(),
    libraryId: z.string().nullable(),
    sampleId: z.string().nullable(),
    transactionBatchId: z.string().nullable(),
  }),
  message: z.object({
    libraryId: z.string().nullable(),
    messageId: z.string().nullable(),
    messageText: z.string().nullable(),
    messageType: z.enum(['Library', 'Inline']),
  }),
  surveyLink: z.object({ surveyId: z.string(), expirationDate: z.string().nullable(), linkType: z.string() }),
  embeddedData: stringMap.nullable(),
  /** Contacts the invite goes to (subscribed) and those left out because they opted out. */
  recipientCount: z.number(),
  optedOutCount: z.number(),
  /** Of the recipients, those whose email bounced. */
  bouncedCount: z.number().default(0),
});
export type Distribution = z.infer<typeof distributionSchema>;

/** Email history results (`EmailHistory.result`, §4.3) the emulator produces. */
export const emailResultSchema = z.enum(['Success', 'Bounce', 'Blocked', 'Skipped']);
export type EmailResult = z.infer<typeof emailResultSchema>;

/**
 * One email Qualtrics sent (or did not) to one contact for one distribution: what the contact's
 * email history (`…/contacts/{contactId}/history?type=email`) lists.
 */
export const emailHistorySchema = z.object({
  seq: z.number(),
  contactId: z.string(),
  /** The list membership the email went through (C6 lists a list's entries). */
  mailingListId: z.string().nullable(),
  contactLookupId: z.string().nullable(),
  distributionId: z.string(),
  surveyId: z.string().nullable(),
  /** The distribution's send date, epoch ms. */
  date: z.number(),
  type: z.enum(['Invite', 'ThankYou', 'Reminder']),
  result: emailResultSchema,
  bounceInfo: z
    .object({ type: z.string(), statusCode: z.string(), reason: z.string(), blacklisted: z.boolean() })
    .nullable(),
});
export type EmailHistoryEntry = z.infer<typeof emailHistorySchema>;

export const subscriptionSchema = z.object({
  seq: z.number(),
  id: z.string(),
  topics: z.string(),
  publicationUrl: z.string(),
  encrypt: z.boolean(),
  sharedKey: z.string().nullable(),
  successEmailAddresses: z.array(z.string()),
});
export type Subscription = z.infer<typeof subscriptionSchema>;

/** A webhook call Qualtrics would make; the emulator queues it for the host to deliver or inspect. */
export const webhookDeliverySchema = z.object({
  subscriptionId: z.string(),
  publicationUrl: z.string(),
  contentType: z.literal('application/x-www-form-urlencoded'),
  body: z.string(),
  topic: z.string(),
  surveyId: z.string(),
  responseId: z.string(),
});
export type WebhookDelivery = z.infer<typeof webhookDeliverySchema>;

export const snapshotSchema = z.object({
  service: z.literal('qualtrics'),
  version: z.literal(1),
  rngState: z.number(),
  seq: z.number(),
  config: configSchema,
  directories: z.array(directorySchema),
  contacts: z.array(contactSchema),
  mailingLists: z.array(mailingListSchema),
  memberships: z.array(membershipSchema),
  imports: z.array(importJobSchema),
  batches: z.array(transactionBatchSchema),
  transactions: z.array(transactionSchema),
  surveys: z.array(surveySchema),
  responses: z.array(surveyResponseSchema),
  exports: z.array(exportJobSchema),
  files: z.array(exportFileSchema),
  continuations: z.array(continuationSchema),
  distributions: z.array(distributionSchema),
  subscriptions: z.array(subscriptionSchema),
  webhookOutbox: z.array(webhookDeliverySchema),
  emailHistory: z.array(emailHistorySchema).default([]),
});
export type QualtricsSnapshot = z.infer<typeof snapshotSchema>;

function indexBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T> {
  const m = new Map<string, T>();
  for (const item of [...items].sort((a, b) => seqOf(a) - seqOf(b))) m.set(key(item), item);
  return m;
}

function seqOf(item: unknown): number {
  return typeof item === 'object' && item !== null && 'seq' in item && typeof item.seq === 'number' ? item.seq : 0;
}

function emailKey(directoryId: string, email: string): string {
  return `${directoryId}\u0000${email.toLowerCase()}`;
}

/**
 * In-memory state with the indexes the handlers need. All mutation of contacts and memberships goes
 * through methods here so the indexes cannot drift from the records.
 */
export class QualtricsStore {
  seq = 0;
  directories = new Map<string, Directory>();
  contacts = new Map<string, Contact>();
  mailingLists = new Map<string, MailingList>();
  memberships = new Map<string, Membership>();
  imports = new Map<string, ImportJob>();
  batches = new Map<string, TransactionBatch>();
  transactions = new Map<string, Transaction>();
  surveys = new Map<string, Survey>();
  responses = new Map<string, SurveyResponse>();
  exports = new Map<string, ExportJob>();
  files = new Map<string, ExportFile>();
  continuations = new Map<string, Continuation>();
  distributions = new Map<string, Distribution>();
  subscriptions = new Map<string, Subscription>();
  webhookOutbox: WebhookDelivery[] = [];
  emailHistory: EmailHistoryEntry[] = [];

  private historyByContact = new Map<string, EmailHistoryEntry[]>();
  private listMembers = new Map<string, Membership[]>();
  private contactLookups = new Map<string, Set<string>>();
  private emailIndex = new Map<string, Set<string>>();
  private responsesBySurvey = new Map<string, SurveyResponse[]>();

  constructor(public config: QualtricsConfig) {}

  nextSeq(): number {
    this.seq += 1;
    return this.seq;
  }

  addContact(contact: Contact): void {
    this.contacts.set(contact.contactId, contact);
    this.indexEmail(contact);
  }

  /** Applies a partial update; `embeddedData` merges key by key, as the API does. */
  updateContact(contact: Contact, patch: Partial<Omit<Contact, 'contactId' | 'directoryId' | 'seq'>>): void {
    this.unindexEmail(contact);
    const { embeddedData, ...rest } = patch;
    Object.assign(contact, rest);
    if (embeddedData) contact.embeddedData = { ...contact.embeddedData, ...embeddedData };
    this.indexEmail(contact);
  }

  /** Deleting a directory contact also removes it from every mailing list. */
  deleteContact(contactId: string): void {
    const contact = this.contacts.get(contactId);
    if (!contact) return;
    for (const lookupId of [...(this.contactLookups.get(contactId) ?? [])]) this.deleteMembership(lookupId);
    this.unindexEmail(contact);
    this.contacts.delete(contactId);
  }

  findContactsByEmail(directoryId: string, email: string): Contact[] {
    const ids = this.emailIndex.get(emailKey(directoryId, email));
    if (!ids) return [];
    const out: Contact[] = [];
    for (const id of ids) {
      const c = this.contacts.get(id);
      if (c) out.push(c);
    }
    return out.sort((a, b) => a.seq - b.seq);
  }

  addMembership(m: Membership): void {
    this.memberships.set(m.contactLookupId, m);
    let members = this.listMembers.get(m.mailingListId);
    if (!members) {
      members = [];
      this.listMembers.set(m.mailingListId, members);
    }
    members.push(m);
    let lookups = this.contactLookups.get(m.contactId);
    if (!lookups) {
      lookups = new Set();
      this.contactLookups.set(m.contactId, lookups);
    }
    lookups.add(m.contactLookupId);
  }

  deleteMembership(contactLookupId: string): void {
    const m = this.memberships.get(contactLookupId);
    if (!m) return;
    this.memberships.delete(contactLookupId);
    const members = this.listMembers.get(m.mailingListId);
    if (members) {
      const i = members.indexOf(m);
      if (i >= 0) members.splice(i, 1);
    }
    this.contactLookups.get(m.contactId)?.delete(contactLookupId);
  }

  /** Members of a list in `seq` order (the list is shared: do not mutate it). */
  membersOf(mailingListId: string): readonly Membership[] {
    return this.listMembers.get(mailingListId) ?? [];
  }

  membershipsOfContact(contactId: string): Membership[] {
    const out: Membership[] = [];
    for (const id of this.contactLookups.get(contactId) ?? []) {
      const m = this.memberships.get(id);
      if (m) out.push(m);
    }
    return out.sort((a, b) => a.seq - b.seq);
  }

  membershipFor(mailingListId: string, contactId: string): Membership | undefined {
    return this.membershipsOfContact(contactId).find((m) => m.mailingListId === mailingListId);
  }

  deleteMailingList(mailingListId: string): void {
    for (const m of [...this.membersOf(mailingListId)]) this.deleteMembership(m.contactLookupId);
    this.listMembers.delete(mailingListId);
    this.mailingLists.delete(mailingListId);
  }

  addResponse(r: SurveyResponse): void {
    this.responses.set(r.responseId, r);
    let list = this.responsesBySurvey.get(r.surveyId);
    if (!list) {
      list = [];
      this.responsesBySurvey.set(r.surveyId, list);
    }
    list.push(r);
  }

  addEmailHistory(e: EmailHistoryEntry): void {
    this.emailHistory.push(e);
    let list = this.historyByContact.get(e.contactId);
    if (!list) {
      list = [];
      this.historyByContact.set(e.contactId, list);
    }
    list.push(e);
  }

  /** A contact's email history in `seq` order (shared: do not mutate). */
  emailHistoryOf(contactId: string): readonly EmailHistoryEntry[] {
    return this.historyByContact.get(contactId) ?? [];
  }

  responsesOf(surveyId: string): readonly SurveyResponse[] {
    return this.responsesBySurvey.get(surveyId) ?? [];
  }

  private indexEmail(c: Contact): void {
    if (!c.email) return;
    const key = emailKey(c.directoryId, c.email);
    let set = this.emailIndex.get(key);
    if (!set) {
      set = new Set();
      this.emailIndex.set(key, set);
    }
    set.add(c.contactId);
  }

  private unindexEmail(c: Contact): void {
    if (!c.email) return;
    this.emailIndex.get(emailKey(c.directoryId, c.email))?.delete(c.contactId);
  }

  snapshot(rngState: number): QualtricsSnapshot {
    const snap: QualtricsSnapshot = {
      service: 'qualtrics',
      version: 1,
      rngState,
      seq: this.seq,
      config: this.config,
      directories: [...this.directories.values()],
      contacts: [...this.contacts.values()],
      mailingLists: [...this.mailingLists.values()],
      memberships: [...this.memberships.values()],
      imports: [...this.imports.values()],
      batches: [...this.batches.values()],
      transactions: [...this.transactions.values()],
      surveys: [...this.surveys.values()],
      responses: [...this.responses.values()],
      exports: [...this.exports.values()],
      files: [...this.files.values()],
      continuations: [...this.continuations.values()],
      distributions: [...this.distributions.values()],
      subscriptions: [...this.subscriptions.values()],
      webhookOutbox: this.webhookOutbox,
      emailHistory: this.emailHistory,
    };
    // A deep copy, so a caller holding the snapshot never sees later mutation (and vice versa).
    return structuredClone(snap);
  }

  /** Rebuilds a store from a snapshot; throws with the failing path when the snapshot is not valid. */
  static fromSnapshot(raw: unknown): { store: QualtricsStore; rngState: number } {
    const parsed = snapshotSchema.safeParse(raw);
    if (!parsed.success) {
      const first = parsed.error.issues[0];
      const where = first ? `${first.path.join('.') || '(root)'}: ${first.message}` : 'unknown problem';
      throw new Error(`Not a Qualtrics sandbox snapshot (${where})`);
    }
    const s = structuredClone(parsed.data);
    const store = new QualtricsStore(s.config);
    store.seq = s.seq;
    store.directories = indexBy(s.directories, (d) => d.directoryId);
    for (const c of [...s.contacts].sort((a, b) => a.seq - b.seq)) store.addContact(c);
    store.mailingLists = indexBy(s.mailingLists, (l) => l.mailingListId);
    for (const m of [...s.memberships].sort((a, b) => a.seq - b.seq)) store.addMembership(m);
    store.imports = indexBy(s.imports, (j) => j.id);
    store.batches = indexBy(s.batches, (b) => b.id);
    store.transactions = indexBy(s.transactions, (t) => t.id);
    store.surveys = indexBy(s.surveys, (v) => v.id);
    for (const r of [...s.responses].sort((a, b) => a.seq - b.seq)) store.addResponse(r);
    store.exports = indexBy(s.exports, (e) => e.progressId);
    store.files = new Map(s.files.map((f) => [f.fileId, f]));
    store.continuations = new Map(s.continuations.map((c) => [c.token, c]));
    store.distributions = indexBy(s.distributions, (d) => d.id);
    store.subscriptions = indexBy(s.subscriptions, (v) => v.id);
    store.webhookOutbox = s.webhookOutbox;
    for (const e of [...s.emailHistory].sort((a, b) => a.seq - b.seq)) store.addEmailHistory(e);
    return { store, rngState: s.rngState };
  }
}
