/**
 * Wire types of the Customer.io Track and App APIs, as far as tidemark uses them
 * (facts: shared reference "Customer.io HTTP APIs", sections noted per type).
 *
 * Response schemas are loose on purpose: they check only what the client relies on and keep every
 * other field (Customer.io says it may add fields at any time). A response that breaks them becomes a
 * `ProviderError` with code `invalid_response` naming the offending path.
 */
import { z } from 'zod';
import type { CallOptions, HttpSettings } from '../http/client-settings.ts';

export type { CallOptions } from '../http/client-settings.ts';

export type CustomerioRegion = 'us' | 'eu';

/** Which identifier a list of ids or a path value holds (§7). `phone` only where the API allows it. */
export type TrackIdType = 'id' | 'email' | 'cio_id';
export type AppIdType = 'id' | 'email' | 'phone' | 'cio_id';

export interface CustomerioConfig extends HttpSettings {
  region: CustomerioRegion;
  siteId: string;
  trackApiKey: string;
  /** Needed only for App API calls; those fail with a clear error without it. */
  appApiKey?: string;
  /** Host base overriding the region, e.g. `http://127.0.0.1:4010`; `/api/v1` and `/api/v2` are appended. */
  trackUrl?: string;
  /** Host base overriding the region; `/v1` is appended. */
  appUrl?: string;
  /**
   * Client-side Track budget. Default 100/s: the docs give 1000/s as a soft, unenforced limit and older
   * material says 100/s; staying at the lower figure keeps a long sync far from "throttling or dropped
   * data", and is still ~8M requests a day (and each v2 batch carries hundreds of entries).
   */
  trackRatePerSecond?: number;
  /** Client-side App budget. Default 10/s, the documented limit for most App endpoints (§2). */
  appRatePerSecond?: number;
}

// ---------------------------------------------------------------------------------------------------
// Call options

export interface TrackEventOptions extends CallOptions {
  /**
   * Generate a ULID when `event.id` is absent. The generated id makes this call's own retries safe, but
   * not a re-run of the caller: callers that need exactly-once across runs pass a deterministic id.
   */
  generateId?: boolean;
}

export interface SendBatchesOptions extends CallOptions {
  /** Upper bound for one request body; default (and maximum) 500 kb. */
  maxBatchBytes?: number;
  /** Optional cap on entries per request; the API documents none. */
  maxEntriesPerBatch?: number;
}

export interface PollOptions extends CallOptions {
  /** Default 2 s. */
  pollIntervalMs?: number;
  /** Default 15 min. */
  timeoutMs?: number;
}

// ---------------------------------------------------------------------------------------------------
// Track v1 (§4)

/** A person event (§4.4). `id` is the dedupe key: a repeated id is ignored by Customer.io. */
export interface TrackEvent {
  name: string;
  /** ULID used for dedupe. Required unless the call asks for one to be generated. */
  id?: string;
  type?: 'event' | 'page' | 'screen';
  /** Unix seconds; without it the receive time is used. */
  timestamp?: number;
  data?: Record<string, unknown>;
}

export interface RegionInfo {
  url: string;
  region: string;
  environmentId?: number;
}

// ---------------------------------------------------------------------------------------------------
// Track v2 (§5)

/** Exactly one identifier (§5; `cio_id` without the `cio_` prefix here). */
export type PersonIdentifiers = { id: string } | { email: string } | { phone: string } | { cio_id: string };
export type ObjectIdentifiers = { object_type_id: string; object_id: string } | { cio_object_id: string };

export type PersonAction =
  | 'identify'
  | 'delete'
  | 'event'
  | 'screen'
  | 'page'
  | 'add_relationships'
  | 'delete_relationships'
  | 'add_device'
  | 'delete_device'
  | 'merge'
  | 'suppress'
  | 'unsuppress';

/**
 * One v2 operation. The common fields are typed; the rest (attributes, cio_relationships, device,
 * primary/secondary, …) pass through as given, since the service validates them per action.
 */
export type V2Entry =
  | ({ type: 'person'; action: PersonAction; identifiers?: PersonIdentifiers; name?: string; id?: string; timestamp?: number } & Record<string, unknown>)
  | ({
      type: 'object';
      action: 'identify' | 'delete' | 'add_relationships' | 'delete_relationships' | 'identify_anonymous';
      identifiers?: ObjectIdentifiers;
    } & Record<string, unknown>)
  | ({ type: 'delivery'; action: 'event'; identifiers: { id: string }; name: string } & Record<string, unknown>);

/** Per-entry outcome of a v2 batch; `index` points into the caller's array, not into a batch. */
export interface EntryResult {
  index: number;
  ok: boolean;
  /**
   * Why it failed: the service's `reason` for a 207 entry, or one of tidemark's:
   * `entry_too_large` (rejected locally, never sent), `batch_rejected` (the whole request got a 4xx),
   * `not_sent` (an earlier failure stopped the run before this entry's batch), `unknown_outcome` (the
   * request failed in a way that leaves it unknown whether the batch was applied).
   */
  reason?: string;
  field?: string;
  message?: string;
  /** Whether sending this entry again is safe (it is idempotent or was certainly not applied). */
  retryable?: boolean;
}

export interface BatchSummary {
  results: EntryResult[];
  /** HTTP requests that carried entries (excluding retries). */
  batches: number;
  accepted: number;
  rejected: number;
}

// ---------------------------------------------------------------------------------------------------
// App API (§6)

const unixSeconds = z.number();
const nullableString = z.string().nullable().optional();

export const segmentSchema = z.looseObject({
  id: z.number(),
  name: z.string(),
  description: nullableString,
  type: z.string().optional(),
  state: z.string().nullable().optional(),
  progress: z.number().nullable().optional(),
  deduplicate_id: z.string().optional(),
  tags: z.array(z.string()).nullable().optional(),
  created_at: unixSeconds.optional(),
  updated_at: unixSeconds.optional(),
});
/** A segment (§6.1); `type` is `manual` or `dynamic` (data-driven, built in the UI). */
export type Segment = z.infer<typeof segmentSchema>;

export const identifiersSchema = z.looseObject({
  id: z.union([z.string(), z.number()]).nullable().optional().transform((v) => (v === null || v === undefined ? null : String(v))),
  email: nullableString.transform((v) => v ?? null),
  cio_id: z.union([z.string(), z.number()]).nullable().optional().transform((v) => (v === null || v === undefined ? null : String(v))),
});
/** A person's identifiers in App responses; unset ones are null. */
export type CustomerIdentifiers = z.infer<typeof identifiersSchema>;

/** `next` is a string in the current spec and an integer in the 2022 one; absent or empty ends the list. */
const cursorSchema = z
  .union([z.string(), z.number()])
  .nullable()
  .optional()
  .transform((v) => (v === null || v === undefined || v === '' ? undefined : String(v)));

export const peoplePageSchema = z.looseObject({
  identifiers: z.array(identifiersSchema).nullable().optional().transform((v) => v ?? []),
  ids: z.array(z.union([z.string(), z.number()]).transform(String)).nullable().optional().transform((v) => v ?? []),
  next: cursorSchema,
});

/** One page of people (segment membership, customer search). */
export interface PeoplePage {
  identifiers: CustomerIdentifiers[];
  /** `id` values only; may contain '' for people without an id. */
  ids: string[];
  /** Cursor for the next page; undefined on the last page. */
  next?: string;
}

export const customerAttributesSchema = z.looseObject({
  id: z.union([z.string(), z.number()]).nullable().optional(),
  identifiers: identifiersSchema.optional(),
  attributes: z.record(z.string(), z.unknown()).default({}),
  timestamps: z.record(z.string(), z.number()).nullable().optional(),
  unsubscribed: z.boolean().nullable().optional(),
  devices: z.array(z.unknown()).nullable().optional(),
});
/** A person's attributes (§6.2); Customer.io returns every value as a string. */
export type CustomerAttributes = z.infer<typeof customerAttributesSchema>;

export const segmentRefSchema = z.looseObject({
  id: z.union([z.number(), z.string()]).transform((v) => Number(v)),
  name: z.string().optional(),
  description: nullableString,
});
export type SegmentRef = z.infer<typeof segmentRefSchema>;

export const exportSchema = z.looseObject({
  id: z.number(),
  status: z.string().optional(),
  failed: z.boolean().optional(),
  total: z.number().optional(),
  type: z.string().optional(),
  description: z.string().nullable().optional(),
  created_at: unixSeconds.optional(),
  updated_at: unixSeconds.optional(),
});
/** An export job (§6.6); `status` is `pending`, `done` or `failed`. */
export type Export = z.infer<typeof exportSchema>;

/**
 * Audience filter for customer search and exports (§6.2): leaves `segment` and `attribute`
 * (operators `eq` and `exists` only), groups `and`/`or` (arrays) and `not` (one filter). Every object
 * has exactly one property.
 */
export type AudienceFilter =
  | { segment: { id: number } }
  | { attribute: { field: string; operator: 'eq'; value: string } | { field: string; operator: 'exists'; value?: string } }
  | { and: AudienceFilter[] }
  | { or: AudienceFilter[] }
  | { not: AudienceFilter };
