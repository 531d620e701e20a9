/**
 * Wire types of the Qualtrics REST API v3 as tidemark uses them (facts: shared reference "Qualtrics REST
 * API v3", sections noted per type). No official OpenAPI file was available, so response schemas are
 * loose: they check what the client relies on (ids, pagination) and keep all other fields.
 */
import { z } from 'zod';
import type { HttpSettings } from '../http/client-settings.ts';

/** Endpoints with their own, stricter per-minute limits (§1.7). */
export type QualtricsEndpointLimit = 'exportStart' | 'exportProgress' | 'exportFile' | 'distributionLinks' | 'distributionHistory';

export interface QualtricsConfig extends HttpSettings {
  apiToken: string;
  /** Datacenter id such as `iad1` or `fra1`; gives `https://{datacenter}.qualtrics.com`. */
  datacenter?: string;
  /** Host base overriding the datacenter, e.g. `http://127.0.0.1:4020`; `/API/v3` is appended. */
  baseUrl?: string;
  /**
   * Brand id, when known. The documented 3000/min limit is per brand, so clients for different tokens
   * of one brand share a budget only when they name the brand; otherwise the budget is per token.
   */
  brandId?: string;
  /** Client-side brand budget. Default 3000/min (§1.7). */
  ratePerMinute?: number;
  /** Overrides of the per-endpoint limits (per minute). */
  endpointRatesPerMinute?: Partial<Record<QualtricsEndpointLimit, number>>;
  /**
   * Follow the "Request proxied … use this host instead: X" notice (§1.2) by sending later requests to
   * X. Default true. The switch only ever happens to a `*.qualtrics.com` host over https, or from one
   * loopback address to another (the sandbox), so the token never goes anywhere else.
   */
  followProxyNotice?: boolean;
  /** Called with every `meta.notice` the service sends (qualtRics surfaces them as warnings). */
  onNotice?: (notice: string) => void;
}

const looseString = z.string().nullable().optional();
/** Dates come as epoch-ms numbers or ISO strings depending on endpoint and era (§4.2 ⚠). */
const dateValue = z.union([z.number(), z.string()]).nullable().optional();

export const whoAmISchema = z.looseObject({
  brandId: z.string(),
  userId: z.string().optional(),
  userName: looseString,
  accountType: looseString,
  firstName: looseString,
  lastName: looseString,
  email: looseString,
  datacenter: z.string().optional(),
});
/** `GET /whoami` (§3). */
export type WhoAmI = z.infer<typeof whoAmISchema>;

export const directorySchema = z.looseObject({
  directoryId: z.string(),
  name: z.string().nullable().optional(),
  contactCount: z.number().optional(),
  isDefault: z.boolean().optional(),
});
/** An XM Directory (§4.1), `POOL_…`. */
export type Directory = z.infer<typeof directorySchema>;

export const mailingListSchema = z.looseObject({
  mailingListId: z.string(),
  name: z.string().nullable().optional(),
  ownerId: looseString,
  creationDate: dateValue,
  lastModifiedDate: dateValue,
  contactCount: z.number().optional(),
});
/** A mailing list (§4.2), `CG_…`. */
export type MailingList = z.infer<typeof mailingListSchema>;

export const idResultSchema = z.looseObject({ id: z.string() });

export const contactCreatedSchema = z.looseObject({ id: z.string(), contactLookupId: z.string().optional() });
/** Result of creating a contact in a mailing list: `CID_…` and the list-specific `CGC_…` lookup id. */
export type ContactCreated = z.infer<typeof contactCreatedSchema>;

export const mailingListContactSchema = z.looseObject({
  contactId: z.string(),
  contactLookupId: z.string().optional(),
  firstName: looseString,
  lastName: looseString,
  email: looseString,
  phone: looseString,
  extRef: looseString,
  language: looseString,
  unsubscribed: z.boolean().optional(),
  mailingListUnsubscribed: z.boolean().optional(),
  embeddedData: z.record(z.string(), z.unknown()).nullable().optional(),
});
/** A contact as listed or read in a mailing list (§4.3). */
export type MailingListContact = z.infer<typeof mailingListContactSchema>;

/** Create/update body for a mailing-list contact (§4.3); every field optional. */
export interface ContactInput {
  firstName?: string;
  lastName?: string;
  email?: string;
  phone?: string;
  extRef?: string;
  embeddedData?: Record<string, string>;
  privateEmbeddedData?: Record<string, string>;
  language?: string;
  unsubscribed?: boolean;
}

/** One contact of a bulk transaction-contacts import (§4.5). */
export interface TransactionContactInput extends Omit<ContactInput, 'privateEmbeddedData' | 'phone'> {
  phone?: string;
  transactionData?: Record<string, string>;
}

export interface TransactionContactsImportInput {
  contacts: TransactionContactInput[];
  transactionMeta?: { batchId: string; fields?: string[] };
}

export const importStartedSchema = z.looseObject({
  id: z.string(),
  status: z.string().optional(),
  contacts: z.looseObject({ unprocessed: z.array(z.unknown()).optional() }).optional(),
  tracking: z.looseObject({ url: z.string().optional() }).optional(),
});
/** `202` answer of a transaction-contacts import (§4.5). */
export type ImportStarted = z.infer<typeof importStartedSchema>;

export const importProgressSchema = z.looseObject({
  percentComplete: z.number().optional(),
  status: z.string(),
  contacts: z
    .looseObject({ count: z.looseObject({ added: z.number().optional(), updated: z.number().optional(), failed: z.number().optional() }).optional() })
    .optional(),
  transactions: z.looseObject({ count: z.looseObject({ created: z.number().optional() }).optional() }).optional(),
});
/** One row of an import's per-row report (§4.5). */
export const importReportEntrySchema = z.looseObject({
  sourceIndexId: z.number(),
  contactId: z.string().nullable().optional(),
  importStatus: z.string().nullable().optional(),
  importStatusCode: z.string().nullable().optional(),
  transactionId: z.string().nullable().optional(),
  transactionStatus: z.string().nullable().optional(),
});
export type ImportReportEntry = z.infer<typeof importReportEntrySchema>;

/** Progress of a transaction-contacts import (§2 I2). */
export type ImportProgress = z.infer<typeof importProgressSchema>;

/** Email distribution to a mailing list, a single contact, a sample or a transaction batch (§5.1). */
export interface DistributionInput {
  message: { libraryId: string; messageId: string } | { messageText: string };
  recipients: { mailingListId: string; contactId?: string } | { sampleId: string } | { transactionBatchId: string };
  header: { fromName: string; replyToEmail?: string; fromEmail: string; subject: string };
  surveyLink: {
    surveyId: string;
    /**
     * When the survey link stops working (ISO-8601 UTC). Required by tidemark: every distribution it
     * creates carries the survey target's response window.
     */
    expirationDate: string;
    type?: 'Individual' | 'Multiple' | 'Anonymous';
  };
  /** ISO-8601 UTC; required by the service (missing gives 400 RP_10). */
  sendDate: string;
  embeddedData?: Record<string, string>;
}

export const distributionSchema = z.looseObject({
  id: z.string(),
  parentDistributionId: looseString,
  requestStatus: looseString,
  requestType: looseString,
  sendDate: looseString,
  createdDate: looseString,
  recipients: z.looseObject({}).nullable().optional(),
  surveyLink: z.looseObject({ surveyId: looseString, expirationDate: looseString }).nullable().optional(),
  stats: z.record(z.string(), z.unknown()).nullable().optional(),
});
/** A distribution as listed or read (§5.2). */
export type Distribution = z.infer<typeof distributionSchema>;

export const surveySummarySchema = z.looseObject({
  id: z.string(),
  name: z.string().optional(),
  ownerId: looseString,
  lastModified: looseString,
  creationDate: looseString,
  isActive: z.boolean().optional(),
});
/** A survey as listed (§6.1). */
export type SurveySummary = z.infer<typeof surveySummarySchema>;

export const surveySchema = z.looseObject({
  id: z.string(),
  name: z.string().optional(),
  isActive: z.boolean().optional(),
  questions: z.record(z.string(), z.unknown()).optional(),
  exportColumnMap: z.record(z.string(), z.unknown()).optional(),
  embeddedData: z.array(z.unknown()).optional(),
});
/** `GET /surveys/{id}` (§6.1): questions keyed by QID, choices keyed by choice id. */
export type Survey = z.infer<typeof surveySchema>;

export const surveyDefinitionSchema = z.looseObject({
  SurveyID: z.string(),
  SurveyName: z.string().optional(),
  SurveyStatus: z.string().optional(),
  Questions: z.record(z.string(), z.unknown()).optional(),
});
/** `GET /survey-definitions/{id}` (§6.2). */
export type SurveyDefinition = z.infer<typeof surveyDefinitionSchema>;

export type ResponseExportFormat = 'json' | 'ndjson' | 'csv' | 'tsv';

/** Body of `POST /surveys/{id}/export-responses` (§7.1); `format` plus the common options. */
export interface ResponseExportOptions {
  format: ResponseExportFormat;
  startDate?: string;
  endDate?: string;
  timeZone?: string;
  limit?: number;
  useLabels?: boolean;
  compress?: boolean;
  questionIds?: string[];
  embeddedDataIds?: string[];
  surveyMetadataIds?: string[];
  filterId?: string;
  allowContinuation?: boolean;
  continuationToken?: string;
  sortByLastModifiedDate?: boolean;
}

export const exportStartedSchema = z.looseObject({
  progressId: z.string(),
  percentComplete: z.number().optional(),
  status: z.string().optional(),
});
export type ExportStarted = z.infer<typeof exportStartedSchema>;

export const exportProgressSchema = z.looseObject({
  percentComplete: z.number().optional(),
  status: z.string(),
  fileId: z.string().nullable().optional(),
  continuationToken: z.string().nullable().optional(),
});
/** `inProgress` → `complete` (with `fileId`) or `failed` (§7.2). */
export type ExportProgress = z.infer<typeof exportProgressSchema>;

export const responseRecordSchema = z.looseObject({
  responseId: z.string(),
  values: z.record(z.string(), z.unknown()).default({}),
  labels: z.record(z.string(), z.unknown()).optional(),
  displayedFields: z.array(z.string()).optional(),
  displayedValues: z.record(z.string(), z.unknown()).optional(),
});
/** One response record of a JSON export or `GET /surveys/{id}/responses/{id}` (§7.3). */
export type ResponseRecord = z.infer<typeof responseRecordSchema>;

/** A downloaded, unzipped and parsed response export. */
export type ResponseExportResult =
  | { format: 'json' | 'ndjson'; responses: ResponseRecord[]; fileName?: string; continuationToken?: string }
  | { format: 'csv' | 'tsv'; rows: Record<string, string>[]; fileName?: string; continuationToken?: string };

export interface EventSubscriptionInput {
  /** e.g. `surveyengine.completedResponse.SV_…`; `*` wildcards allowed (§8.1). */
  topics: string;
  publicationUrl: string;
  encrypt?: boolean;
  sharedKey?: string;
}

export const eventSubscriptionSchema = z.looseObject({
  id: z.string(),
  topics: z.union([z.string(), z.array(z.string())]).optional(),
  publicationUrl: z.string().optional(),
  encrypt: z.boolean().optional(),
});
/** A webhook subscription (§8.2). */
export type EventSubscription = z.infer<typeof eventSubscriptionSchema>;

export const singleContactSchema = z.looseObject({
  contactId: z.string(),
  firstName: looseString,
  lastName: looseString,
  email: looseString,
  phone: looseString,
  extRef: looseString,
  language: looseString,
  directoryUnsubscribed: z.boolean().nullable().optional(),
  directoryUnsubscribeDate: dateValue,
});
/** `SingleContact` (§4.3): an element of a list's bounced or opted-out contacts (C7, C8). */
export type SingleContact = z.infer<typeof singleContactSchema>;

export const emailHistoryEntrySchema = z.looseObject({
  distributionId: looseString,
  /** `yyyy-MM-dd HH:mm:ss`, UTC (§4.3). */
  date: looseString,
  /** `Invite | ThankYou | Reminder`. */
  type: looseString,
  /** `Success | Bounce | Blocked | Error | Skipped | Pending` (lists add Complaint, Failure, Unknown, SoftBounce, HardBounce). */
  result: looseString,
  surveyId: looseString,
  bounceInfo: z.looseObject({}).nullable().optional(),
  lookupId: looseString,
});
/** One entry of a contact's email history (`…/history?type=email`, C6/K7, §4.3). */
export type EmailHistoryEntry = z.infer<typeof emailHistoryEntrySchema>;

export const contactSearchHitSchema = z.looseObject({
  id: z.string(),
  email: looseString,
  /** The search element's legacy name for extRef (§4.4). */
  externalDataReference: looseString,
  unsubscribed: z.boolean().nullable().optional(),
});
/** An element of a directory contact search (K5, `ElementsInner1`, §4.4). */
export type ContactSearchHit = z.infer<typeof contactSearchHitSchema>;

/** A directory contact search filter (§4.4): one leaf, or leaves joined by `and` / `or`. */
export type ContactSearchFilter =
  | { filterType: 'email' | 'extRef' | 'phone' | 'firstName' | 'lastName'; comparison: 'eq' | 'ne' | 'contains'; value: string }
  | { conjunction: 'and' | 'or'; filters: ContactSearchFilter[] };

export const directoryContactSchema = z.looseObject({
  contactId: z.string(),
  firstName: looseString,
  lastName: looseString,
  email: looseString,
  phone: looseString,
  extRef: looseString,
  language: looseString,
  unsubscribed: z.boolean().nullable().optional(),
});
/** An element of a directory's contact listing (K1, §2). */
export type DirectoryContact = z.infer<typeof directoryContactSchema>;
