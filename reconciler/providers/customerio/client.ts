/**
 * The Customer.io client: Track API v1 and v2 (people, events, manual segment membership, batches) and
 * the App API (segments, people lookups, exports). HTTP only: no model mapping, no planning.
 *
 * Facts come from the shared reference "Customer.io HTTP APIs" (section numbers in comments). Where it
 * marks something uncertain (⚠) the safest reading is used and said so next to the code.
 *
 * Idempotency, which decides what the HTTP layer may retry (see http/http-client.ts):
 * - identify (PUT), delete (DELETE), reads: idempotent by method.
 * - track event (POST): always sent with a dedupe `id` (§4.4, "a repeated id is ignored"), so idempotent.
 * - add/remove segment members (POST): set semantics, so idempotent.
 * - v2 entity/batch (POST): idempotent when every entry is (identify-like actions, or events with `id`).
 * - create segment (POST): NOT idempotent; a failure of unknown outcome is reported, never retried.
 */
import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import { registerSecret } from '../../core/redact.ts';
import { generateUlid, isUlid } from '../../core/ulid.ts';
import { clientErrors, isRecord } from '../client-errors.ts';
import { ProviderError, type RequestOutcome } from '../errors.ts';
import { HttpClient, type HttpRequest } from '../http/http-client.ts';
import { credentialFingerprint, sharedLimiters } from '../http/rate-limiter.ts';
import { systemTimer, type Timer } from '../http/timer.ts';
import { describeCustomerioError, formatV2Error } from './errors.ts';
import {
  customerAttributesSchema,
  exportSchema,
  identifiersSchema,
  peoplePageSchema,
  segmentRefSchema,
  segmentSchema,
  type AppIdType,
  type AudienceFilter,
  type BatchSummary,
  type CustomerAttributes,
  type CustomerIdentifiers,
  type CustomerioConfig,
  type CustomerioRegion,
  type EntryResult,
  type Export,
  type PeoplePage,
  type RegionInfo,
  type Segment,
  type SegmentRef,
  type TrackEvent,
  type TrackIdType,
  type V2Entry,
} from './types.ts';

export type * from './types.ts';

const { configError, localError, invalidResponse, parseWith } = clientErrors('customerio');

const TRACK_HOSTS: Record<CustomerioRegion, string> = {
  us: 'https://track.customer.io',
  eu: 'https://track-eu.customer.io',
};
const APP_HOSTS: Record<CustomerioRegion, string> = {
  us: 'https://api.customer.io',
  eu: 'https://api-eu.customer.io',
};

/**
 * v2 size limits (§2, §5): "32kb" per entry and "500kb" per batch. ⚠ The docs do not say whether kb is
 * 1000 or 1024 bytes; the smaller reading (1000) is used so nothing we send can be over either limit.
 */
export const V2_ENTRY_LIMIT_BYTES = 32_000;
export const V2_BATCH_LIMIT_BYTES = 500_000;
/** Track v1 add/remove_customers take 1..1000 ids per request (§4.2). */
export const SEGMENT_MEMBERS_CHUNK = 1000;
/** App `POST /v1/customers/attributes` takes at most 100 ids (§2). */
export const ATTRIBUTES_CHUNK = 100;
/** Segment membership page size: default 1000, max 30000 (§6.1). */
export const MEMBERSHIP_PAGE_MAX = 30_000;
/** Customer search page size: default 50, max 1000 (§6.2). */
export const SEARCH_PAGE_MAX = 1000;
/** Person ID values are limited to 150 bytes (§2). */
const PERSON_ID_LIMIT_BYTES = 150;

const DEFAULT_TRACK_RATE = 100;
const DEFAULT_APP_RATE = 10;

/**
 * Builds a config from `CUSTOMERIO_*` variables. Required: `CUSTOMERIO_SITE_ID`,
 * `CUSTOMERIO_TRACK_API_KEY`. Optional: `CUSTOMERIO_REGION` (`us` default, or `eu`),
 * `CUSTOMERIO_APP_API_KEY`, `CUSTOMERIO_TRACK_URL` / `CUSTOMERIO_APP_URL` (host bases overriding the
 * region, e.g. the sandbox), `CUSTOMERIO_TRACK_RATE_PER_SECOND`. Credentials are registered as secrets.
 */
export function customerioConfigFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  overrides: Partial<CustomerioConfig> = {},
): CustomerioConfig {
  const missing = ['CUSTOMERIO_SITE_ID', 'CUSTOMERIO_TRACK_API_KEY'].filter((k) => !env[k]);
  if (missing.length > 0) {
    throw configError(`missing environment variable${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
  }
  const region = (env.CUSTOMERIO_REGION ?? 'us').trim().toLowerCase();
  if (region !== 'us' && region !== 'eu') throw configError(`CUSTOMERIO_REGION must be "us" or "eu", got "${region}"`);
  const config: CustomerioConfig = {
    region,
    siteId: env.CUSTOMERIO_SITE_ID!,
    trackApiKey: env.CUSTOMERIO_TRACK_API_KEY!,
  };
  if (env.CUSTOMERIO_APP_API_KEY) config.appApiKey = env.CUSTOMERIO_APP_API_KEY;
  if (env.CUSTOMERIO_TRACK_URL) config.trackUrl = env.CUSTOMERIO_TRACK_URL;
  if (env.CUSTOMERIO_APP_URL) config.appUrl = env.CUSTOMERIO_APP_URL;
  if (env.CUSTOMERIO_TRACK_RATE_PER_SECOND) {
    const rate = Number(env.CUSTOMERIO_TRACK_RATE_PER_SECOND);
    if (!(rate > 0)) throw configError('CUSTOMERIO_TRACK_RATE_PER_SECOND must be a positive number');
    config.trackRatePerSecond = rate;
  }
  // For workspaces whose App API limit Customer.io raised (and for the sandbox in benchmarks).
  if (env.CUSTOMERIO_APP_RATE_PER_SECOND) {
    const rate = Number(env.CUSTOMERIO_APP_RATE_PER_SECOND);
    if (!(rate > 0)) throw configError('CUSTOMERIO_APP_RATE_PER_SECOND must be a positive number');
    config.appRatePerSecond = rate;
  }
  const merged = { ...config, ...overrides };
  registerCredentials(merged);
  return merged;
}

function registerCredentials(config: CustomerioConfig): void {
  registerSecret(config.trackApiKey);
  registerSecret(config.appApiKey);
  registerSecret(basicToken(config.siteId, config.trackApiKey));
}

function basicToken(siteId: string, apiKey: string): string {
  return Buffer.from(`${siteId}:${apiKey}`, 'utf8').toString('base64');
}

/** Options every call accepts. */
export interface CallOptions {
  signal?: AbortSignal;
}

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

export class CustomerioClient {
  /** Track API host client (v1 and v2 share the host, the credential and the budget). */
  readonly track: HttpClient;
  /** App API host client; undefined without an App API key. */
  readonly app: HttpClient | undefined;
  private readonly download: HttpClient;
  private readonly timer: Timer;
  private readonly random: () => number;

  constructor(readonly config: CustomerioConfig) {
    if (!config.siteId || !config.trackApiKey) throw configError('siteId and trackApiKey are required');
    registerCredentials(config);
    this.timer = config.timer ?? systemTimer;
    this.random = config.random ?? Math.random;
    const registry = config.limiters ?? sharedLimiters;
    const common = {
      provider: 'customerio' as const,
      describeError: describeCustomerioError,
      timer: this.timer,
      random: this.random,
      ...(config.timeoutMs !== undefined ? { timeoutMs: config.timeoutMs } : {}),
      ...(config.retry !== undefined ? { retry: config.retry } : {}),
      ...(config.concurrency !== undefined ? { concurrency: config.concurrency } : {}),
      ...(config.onRequest !== undefined ? { onRequest: config.onRequest } : {}),
      ...(config.fetch !== undefined ? { fetch: config.fetch } : {}),
    };

    const trackBase = stripSuffix(config.trackUrl ?? TRACK_HOSTS[config.region], '/api/v1');
    const trackOrigin = new URL(trackBase).origin;
    const trackRate = config.trackRatePerSecond ?? DEFAULT_TRACK_RATE;
    const token = basicToken(config.siteId, config.trackApiKey);
    this.track = new HttpClient({
      ...common,
      service: 'track',
      baseUrl: trackBase,
      authHeaders: () => ({ authorization: `Basic ${token}` }),
      limiters: [
        registry.get(`customerio-track:${trackOrigin}:${credentialFingerprint(config.siteId, config.trackApiKey)}`, {
          ratePerSecond: trackRate,
          burst: Math.max(1, Math.floor(trackRate / 10)),
        }),
      ],
      // An EU account calling the US Track host is redirected to the EU host (§1); keep credentials
      // within customer.io (the rule customerio-node uses) or the configured origin.
      isTrustedUrl: (url) => url.origin === trackOrigin || (url.protocol === 'https:' && url.hostname.endsWith('.customer.io')),
    });

    const appBase = stripSuffix(config.appUrl ?? APP_HOSTS[config.region], '/v1');
    const appKey = config.appApiKey;
    this.app = appKey
      ? new HttpClient({
          ...common,
          service: 'app',
          baseUrl: appBase,
          authHeaders: () => ({ authorization: `Bearer ${appKey}` }),
          limiters: [
            registry.get(`customerio-app:${new URL(appBase).origin}:${credentialFingerprint(appKey)}`, {
              ratePerSecond: config.appRatePerSecond ?? DEFAULT_APP_RATE,
            }),
          ],
        })
      : undefined;

    // Export downloads go to a pre-signed link on a storage host: never with our credentials.
    this.download = new HttpClient({ ...common, service: 'download', baseUrl: appBase });
  }

  // -------------------------------------------------------------------------------------------------
  // Track v1 (§4)

  /** Creates or updates a person (`PUT /api/v1/customers/{identifier}`). */
  async identify(identifier: string, attributes: Record<string, unknown>, options: CallOptions = {}): Promise<void> {
    const op = 'track.identify';
    await this.trackCall({ operation: op, method: 'PUT', path: `/api/v1/customers/${this.personPath(op, identifier)}`, body: attributes }, options);
  }

  /** Deletes a person and all their data (`DELETE /api/v1/customers/{identifier}`). */
  async deletePerson(identifier: string, options: CallOptions = {}): Promise<void> {
    const op = 'track.delete';
    await this.trackCall({ operation: op, method: 'DELETE', path: `/api/v1/customers/${this.personPath(op, identifier)}` }, options);
  }

  /**
   * Sends a person event with a dedupe id (`POST /api/v1/customers/{identifier}/events`). Without
   * `event.id` the call is refused unless `generateId` is set. Returns the id that was sent.
   */
  async trackEvent(identifier: string, event: TrackEvent, options: TrackEventOptions = {}): Promise<{ id: string }> {
    const op = 'track.event';
    if (!event.name || !event.name.trim()) throw localError(op, 'event name is required', 'invalid_request');
    let id = event.id;
    if (id === undefined || id === '') {
      if (!options.generateId) {
        throw localError(op, 'event id is required for safe retries (pass a deterministic id, or generateId: true)', 'invalid_request');
      }
      id = generateUlid(this.timer.now(), randomBytes(10));
    } else if (!isUlid(id)) {
      // The dedupe id is documented as a ULID (§4.4); deterministicUlid() turns any key into one.
      throw localError(op, 'event id must be a ULID (26 Crockford base32 characters); see deterministicUlid()', 'invalid_request');
    }
    const body = { ...event, id };
    await this.trackCall(
      { operation: op, method: 'POST', path: `/api/v1/customers/${this.personPath(op, identifier)}/events`, body, idempotent: true },
      options,
    );
    return { id };
  }

  /**
   * Adds people to a manual segment, in requests of at most 1000 ids (§4.2). Unknown people are
   * ignored by the service. `idType` is sent only when given (the service defaults to `id`).
   */
  async addToSegment(segmentId: number, ids: readonly string[], idType?: TrackIdType, options: CallOptions = {}): Promise<{ requests: number }> {
    return this.changeSegmentMembers('track.segment.add', 'add_customers', segmentId, ids, idType, options);
  }

  /**
   * Removes people from a manual segment, in requests of at most 1000 ids. ⚠ The docs say removal
   * needs people to have an `id` while the spec still declares `id_type` on this path; `idType` is
   * passed through only when the caller gives it.
   */
  async removeFromSegment(segmentId: number, ids: readonly string[], idType?: TrackIdType, options: CallOptions = {}): Promise<{ requests: number }> {
    return this.changeSegmentMembers('track.segment.remove', 'remove_customers', segmentId, ids, idType, options);
  }

  private async changeSegmentMembers(
    op: string,
    action: 'add_customers' | 'remove_customers',
    segmentId: number,
    ids: readonly string[],
    idType: TrackIdType | undefined,
    options: CallOptions,
  ): Promise<{ requests: number }> {
    assertSegmentId(op, segmentId);
    const unique = [...new Set(ids)];
    if (unique.some((id) => typeof id !== 'string' || id === '')) throw localError(op, 'ids must be non-empty strings', 'invalid_request');
    let requests = 0;
    for (let i = 0; i < unique.length; i += SEGMENT_MEMBERS_CHUNK) {
      const chunk = unique.slice(i, i + SEGMENT_MEMBERS_CHUNK);
      await this.trackCall(
        {
          operation: op,
          method: 'POST',
          path: `/api/v1/segments/${segmentId}/${action}`,
          query: { id_type: idType },
          body: { ids: chunk },
          idempotent: true,
        },
        options,
      );
      requests++;
    }
    return { requests };
  }

  /** The account's region (`GET /api/v1/accounts/region`). */
  async getRegion(options: CallOptions = {}): Promise<RegionInfo> {
    const op = 'track.region';
    const data = await this.trackCall({ operation: op, method: 'GET', path: '/api/v1/accounts/region' }, options);
    if (!isRecord(data) || typeof data.url !== 'string' || typeof data.region !== 'string') {
      throw invalidResponse(op, 'expected {url, region}', 'applied');
    }
    const out: RegionInfo = { url: data.url, region: data.region };
    if (typeof data.environment_id === 'number') out.environmentId = data.environment_id;
    return out;
  }

  // -------------------------------------------------------------------------------------------------
  // Track v2 (§5)

  /** Sends one v2 operation (`POST /api/v2/entity`); an entry over 32 kb is refused before sending. */
  async entity(entry: V2Entry, options: CallOptions = {}): Promise<void> {
    const op = 'track.v2.entity';
    const size = byteLength(entry);
    if (size > V2_ENTRY_LIMIT_BYTES) {
      throw localError(op, `entry is ${size} bytes, over the ${V2_ENTRY_LIMIT_BYTES}-byte limit; it was not sent`, 'entry_too_large');
    }
    await this.trackCall({ operation: op, method: 'POST', path: '/api/v2/entity', body: entry, idempotent: isIdempotentEntry(entry) }, options);
  }

  /**
   * Sends entries as ONE v2 batch (`POST /api/v2/batch`). Entries over 32 kb are rejected locally and
   * never sent; the rest must fit in 500 kb (use `sendBatches` for larger sets). A 207 maps each failed
   * entry back to its index in `entries`. A 4xx for the whole request throws.
   */
  async batch(entries: readonly V2Entry[], options: CallOptions = {}): Promise<BatchSummary> {
    const op = 'track.v2.batch';
    const results: EntryResult[] = new Array(entries.length);
    const sendable: number[] = [];
    const sizes = entries.map((e) => byteLength(e));
    entries.forEach((_, index) => {
      if (sizes[index]! > V2_ENTRY_LIMIT_BYTES) results[index] = oversizeResult(index, sizes[index]!);
      else sendable.push(index);
    });
    const total = batchBodyBytes(sendable.map((i) => sizes[i]!));
    if (sendable.length > 0 && total > V2_BATCH_LIMIT_BYTES) {
      throw localError(op, `batch is ${total} bytes, over the ${V2_BATCH_LIMIT_BYTES}-byte limit; use sendBatches`, 'batch_too_large');
    }
    let batches = 0;
    if (sendable.length > 0) {
      const mapped = await this.sendOneBatch(entries, sendable, options);
      for (const r of mapped) results[r.index] = r;
      batches = 1;
    }
    return summarize(results, batches);
  }

  /**
   * Packs entries greedily, in order, into batches under the size limit and sends them one after the
   * other (so per-person ordering holds across batches). Never throws for data problems:
   * - an entry over 32 kb is rejected locally;
   * - a batch the service refuses as a whole (400/413/422) is split in halves and resent until the bad
   *   entries are isolated, so one malformed entry cannot sink the others;
   * - a transport failure that survives retries stops the run: that batch's entries are reported as
   *   `unknown_outcome` (or `not_sent` when it is certain nothing was applied) and later ones as
   *   `not_sent`, each with `retryable` telling whether resending is safe.
   */
  async sendBatches(entries: readonly V2Entry[], options: SendBatchesOptions = {}): Promise<BatchSummary> {
    const limit = Math.min(options.maxBatchBytes ?? V2_BATCH_LIMIT_BYTES, V2_BATCH_LIMIT_BYTES);
    const maxEntries = options.maxEntriesPerBatch ?? Number.POSITIVE_INFINITY;
    const results: EntryResult[] = new Array(entries.length);
    const sizes = entries.map((e) => byteLength(e));
    const groups: number[][] = [];
    let current: number[] = [];
    let currentBytes = batchBodyBytes([]);
    entries.forEach((_, index) => {
      const size = sizes[index]!;
      if (size > V2_ENTRY_LIMIT_BYTES || batchBodyBytes([size]) > limit) {
        results[index] = oversizeResult(index, size);
        return;
      }
      const added = size + (current.length > 0 ? 1 : 0);
      if (current.length > 0 && (currentBytes + added > limit || current.length >= maxEntries)) {
        groups.push(current);
        current = [];
        currentBytes = batchBodyBytes([]);
      }
      currentBytes += size + (current.length > 0 ? 1 : 0);
      current.push(index);
    });
    if (current.length > 0) groups.push(current);

    let batches = 0;
    for (let g = 0; g < groups.length; g++) {
      const stop = await this.sendGroup(entries, groups[g]!, results, options, () => batches++);
      if (stop) {
        for (const rest of groups.slice(g + 1)) {
          for (const index of rest) {
            results[index] = { index, ok: false, reason: 'not_sent', message: 'not sent: an earlier batch failed', retryable: true };
          }
        }
        break;
      }
    }
    return summarize(results, batches);
  }

  /** Sends one group, bisecting on whole-request rejections. Returns true when the run must stop. */
  private async sendGroup(
    entries: readonly V2Entry[],
    group: number[],
    results: EntryResult[],
    options: CallOptions,
    countBatch: () => void,
  ): Promise<boolean> {
    try {
      countBatch();
      for (const r of await this.sendOneBatch(entries, group, options)) results[r.index] = r;
      return false;
    } catch (err) {
      if (!(err instanceof ProviderError)) throw err;
      const wholeRequestRejected = err.outcome === 'not-applied' && err.status !== undefined && [400, 413, 422].includes(err.status);
      if (wholeRequestRejected) {
        if (group.length === 1) {
          const index = group[0]!;
          results[index] = { index, ok: false, reason: 'batch_rejected', message: err.message, retryable: false };
          return false;
        }
        const mid = Math.ceil(group.length / 2);
        if (await this.sendGroup(entries, group.slice(0, mid), results, options, countBatch)) {
          for (const index of group.slice(mid)) {
            results[index] = { index, ok: false, reason: 'not_sent', message: 'not sent: an earlier batch failed', retryable: true };
          }
          return true;
        }
        return this.sendGroup(entries, group.slice(mid), results, options, countBatch);
      }
      for (const index of group) {
        const certain = err.outcome === 'not-applied';
        results[index] = {
          index,
          ok: false,
          reason: certain ? 'not_sent' : 'unknown_outcome',
          message: err.message,
          retryable: certain ? err.retryable : isIdempotentEntry(entries[index]!),
        };
      }
      return true;
    }
  }

  /** One `POST /api/v2/batch` carrying `entries[i]` for each i in `indexes`; maps 207 errors back. */
  private async sendOneBatch(entries: readonly V2Entry[], indexes: readonly number[], options: CallOptions): Promise<EntryResult[]> {
    const op = 'track.v2.batch';
    const batch = indexes.map((i) => entries[i]!);
    const res = await this.track.request({
      operation: op,
      method: 'POST',
      path: '/api/v2/batch',
      body: { batch },
      idempotent: batch.every(isIdempotentEntry),
      ...withSignal(options),
    });
    const results: EntryResult[] = indexes.map((index) => ({ index, ok: true }));
    if (res.status !== 207) return results;
    const errors = isRecord(res.data) && Array.isArray(res.data.errors) ? res.data.errors : undefined;
    if (!errors) throw invalidResponse(op, '207 without an errors array', 'applied');
    for (const e of errors) {
      const at = isRecord(e) ? e.batch_index : undefined;
      if (!isRecord(e) || typeof at !== 'number' || !Number.isInteger(at) || at < 0 || at >= indexes.length) {
        // We cannot tell which entry this error belongs to; every entry of the batch is in doubt.
        return indexes.map((index) => ({
          index,
          ok: false,
          reason: 'unknown_outcome',
          message: 'the service reported a failure without a usable batch_index',
          retryable: isIdempotentEntry(entries[index]!),
        }));
      }
      const reason = typeof e.reason === 'string' ? e.reason : undefined;
      const message = typeof e.message === 'string' ? e.message : formatV2Error(e);
      const previous = results[at]!;
      if (!previous.ok) {
        // Several problems with one entry arrive as several errors with the same batch_index.
        previous.message = `${previous.message}; ${message}`;
        continue;
      }
      const result: EntryResult = { index: indexes[at]!, ok: false, message, retryable: reason !== undefined && TRANSIENT_ENTRY_REASON.test(reason) };
      if (reason !== undefined) result.reason = reason;
      if (typeof e.field === 'string' && e.field !== '') result.field = e.field;
      results[at] = result;
    }
    return results;
  }

  // -------------------------------------------------------------------------------------------------
  // App API: segments (§6.1)

  async listSegments(options: CallOptions = {}): Promise<Segment[]> {
    const op = 'app.segments.list';
    const data = await this.appCall({ operation: op, method: 'GET', path: '/v1/segments' }, options);
    return parseField(op, data, 'segments', segmentSchema.array());
  }

  /** The segment, or undefined when it does not exist (404). */
  async getSegment(segmentId: number, options: CallOptions = {}): Promise<Segment | undefined> {
    const op = 'app.segments.get';
    assertSegmentId(op, segmentId);
    const res = await this.appRequest({ operation: op, method: 'GET', path: `/v1/segments/${segmentId}`, acceptStatuses: [404] }, options);
    if (res.status === 404) return undefined;
    return parseField(op, res.data, 'segment', segmentSchema);
  }

  /**
   * Creates an empty manual segment (`POST /v1/segments`). Not idempotent: a failure with
   * `outcome: 'unknown'` means it may exist; list segments before trying again.
   */
  async createSegment(input: { name: string; description?: string }, options: CallOptions = {}): Promise<Segment> {
    const op = 'app.segments.create';
    if (!input.name) throw localError(op, 'segment name is required', 'invalid_request');
    const segment: Record<string, string> = { name: input.name };
    if (input.description !== undefined) segment.description = input.description;
    const data = await this.appCall({ operation: op, method: 'POST', path: '/v1/segments', body: { segment }, idempotent: false }, options);
    return parseField(op, data, 'segment', segmentSchema, 'applied');
  }

  /** Deletes a manual segment. Returns false when it did not exist (404), which a retry can also see. */
  async deleteSegment(segmentId: number, options: CallOptions = {}): Promise<boolean> {
    const op = 'app.segments.delete';
    assertSegmentId(op, segmentId);
    const res = await this.appRequest({ operation: op, method: 'DELETE', path: `/v1/segments/${segmentId}`, acceptStatuses: [404] }, options);
    return res.status !== 404;
  }

  async segmentCustomerCount(segmentId: number, options: CallOptions = {}): Promise<number> {
    const op = 'app.segments.count';
    assertSegmentId(op, segmentId);
    const data = await this.appCall({ operation: op, method: 'GET', path: `/v1/segments/${segmentId}/customer_count` }, options);
    if (!isRecord(data) || typeof data.count !== 'number') throw invalidResponse(op, 'expected {count: number}', 'applied');
    return data.count;
  }

  /** Pages of a segment's members, following the `next` cursor (§6.1). `pageSize` ≤ 30000. */
  segmentMembership(segmentId: number, options: CallOptions & { pageSize?: number } = {}): AsyncIterable<PeoplePage> {
    const op = 'app.segments.membership';
    assertSegmentId(op, segmentId);
    const limit = pageSizeOption(op, options.pageSize, 1000, MEMBERSHIP_PAGE_MAX);
    return this.paginate(op, (start) => ({ method: 'GET', path: `/v1/segments/${segmentId}/membership`, query: { start, limit } }), options);
  }

  // -------------------------------------------------------------------------------------------------
  // App API: people (§6.2)

  /** Pages of people matching a filter (`POST /v1/customers`). `pageSize` ≤ 1000 (default 1000). */
  searchCustomers(filter: AudienceFilter, options: CallOptions & { pageSize?: number } = {}): AsyncIterable<PeoplePage> {
    const op = 'app.customers.search';
    const problem = checkAudienceFilter(filter, 'filter');
    if (problem) throw localError(op, problem, 'invalid_request');
    const limit = pageSizeOption(op, options.pageSize, SEARCH_PAGE_MAX, SEARCH_PAGE_MAX);
    return this.paginate(
      op,
      // A search is a read: repeating it is harmless.
      (start) => ({ method: 'POST', path: '/v1/customers', query: { start, limit }, body: { filter }, idempotent: true }),
      options,
    );
  }

  /** People with this email (`GET /v1/customers?email=`); empty when none. */
  async getCustomersByEmail(email: string, options: CallOptions = {}): Promise<CustomerIdentifiers[]> {
    const op = 'app.customers.by_email';
    const data = await this.appCall({ operation: op, method: 'GET', path: '/v1/customers', query: { email } }, options);
    return parseField(op, data, 'results', identifiersSchema.array());
  }

  /** A person's attributes, or undefined when the person does not exist (404). */
  async getAttributes(identifier: string, idType: AppIdType = 'id', options: CallOptions = {}): Promise<CustomerAttributes | undefined> {
    const op = 'app.customers.attributes';
    const res = await this.appRequest(
      {
        operation: op,
        method: 'GET',
        path: `/v1/customers/${this.personPath(op, identifier)}/attributes`,
        query: { id_type: idType },
        acceptStatuses: [404],
      },
      options,
    );
    if (res.status === 404) return undefined;
    return parseField(op, res.data, 'customer', customerAttributesSchema);
  }

  /** Attributes of many people by `id`, 100 per request; unknown ids are simply absent. */
  async getCustomersAttributes(ids: readonly string[], options: CallOptions = {}): Promise<CustomerAttributes[]> {
    const op = 'app.customers.attributes_batch';
    const unique = [...new Set(ids)];
    const out: CustomerAttributes[] = [];
    for (let i = 0; i < unique.length; i += ATTRIBUTES_CHUNK) {
      const data = await this.appCall(
        { operation: op, method: 'POST', path: '/v1/customers/attributes', body: { ids: unique.slice(i, i + ATTRIBUTES_CHUNK) }, idempotent: true },
        options,
      );
      out.push(...parseField(op, data, 'customers', customerAttributesSchema.array()));
    }
    return out;
  }

  /** Segments a person belongs to, or undefined when the person does not exist (404). */
  async getCustomerSegments(identifier: string, idType: AppIdType = 'id', options: CallOptions = {}): Promise<SegmentRef[] | undefined> {
    const op = 'app.customers.segments';
    const res = await this.appRequest(
      {
        operation: op,
        method: 'GET',
        path: `/v1/customers/${this.personPath(op, identifier)}/segments`,
        query: { id_type: idType },
        acceptStatuses: [404],
      },
      options,
    );
    if (res.status === 404) return undefined;
    return parseField(op, res.data, 'segments', segmentRefSchema.array());
  }

  // -------------------------------------------------------------------------------------------------
  // App API: exports (§6.6)

  /**
   * Starts an export of the people matching `filters` (`POST /v1/exports/customers`). Marked idempotent
   * on purpose: a duplicate export job changes no customer data and is simply never downloaded.
   */
  async createCustomersExport(filters: AudienceFilter, options: CallOptions = {}): Promise<Export> {
    const op = 'app.exports.create';
    const problem = checkAudienceFilter(filters, 'filters');
    if (problem) throw localError(op, problem, 'invalid_request');
    const data = await this.appCall({ operation: op, method: 'POST', path: '/v1/exports/customers', body: { filters }, idempotent: true }, options);
    return parseField(op, data, 'export', exportSchema, 'applied');
  }

  /** All exports; the live API answers `{"exports": null}` when there are none. */
  async listExports(options: CallOptions = {}): Promise<Export[]> {
    const op = 'app.exports.list';
    const data = await this.appCall({ operation: op, method: 'GET', path: '/v1/exports' }, options);
    if (isRecord(data) && data.exports === null) return [];
    return parseField(op, data, 'exports', exportSchema.array());
  }

  async getExport(exportId: number, options: CallOptions = {}): Promise<Export | undefined> {
    const op = 'app.exports.get';
    const res = await this.appRequest({ operation: op, method: 'GET', path: `/v1/exports/${exportId}`, acceptStatuses: [404] }, options);
    if (res.status === 404) return undefined;
    return parseField(op, res.data, 'export', exportSchema);
  }

  /** Polls an export until it is `done`; throws when it fails, disappears, or takes longer than allowed. */
  async waitForExport(exportId: number, options: PollOptions = {}): Promise<Export> {
    const op = 'app.exports.wait';
    const interval = options.pollIntervalMs ?? 2000;
    const deadline = this.timer.now() + (options.timeoutMs ?? 15 * 60_000);
    for (;;) {
      const exp = await this.getExport(exportId, options);
      if (!exp) throw new ProviderError({ provider: 'customerio', operation: op, message: 'export not found', status: 404, retryable: false, code: 'not_found' });
      if (exp.status === 'done') return exp;
      if (exp.status === 'failed' || exp.failed === true) {
        throw new ProviderError({ provider: 'customerio', operation: op, message: 'export failed on the Customer.io side', retryable: true, code: 'export_failed' });
      }
      if (this.timer.now() + interval > deadline) {
        throw new ProviderError({ provider: 'customerio', operation: op, message: 'export did not finish in time', retryable: true, code: 'export_timeout' });
      }
      await this.timer.sleep(interval, options.signal);
    }
  }

  /**
   * Downloads a finished export: asks for the signed link (`GET /v1/exports/{id}/download`, valid
   * 15 minutes) and fetches it without credentials. ⚠ The file format is undocumented (CSV expected).
   */
  async downloadExport(exportId: number, options: CallOptions = {}): Promise<Uint8Array> {
    const op = 'app.exports.download';
    const data = await this.appCall({ operation: op, method: 'GET', path: `/v1/exports/${exportId}/download` }, options);
    // 5.0.1 of the SDK documented `{link}`; the spec says `{url}`. Accept either.
    const url = isRecord(data) ? (typeof data.url === 'string' ? data.url : typeof data.link === 'string' ? data.link : undefined) : undefined;
    if (!url) throw invalidResponse(op, 'expected {url}', 'applied');
    const res = await this.download.request<Uint8Array>({ operation: op, method: 'GET', url, auth: false, responseType: 'bytes', ...withSignal(options) });
    return res.data;
  }

  async downloadExportText(exportId: number, options: CallOptions = {}): Promise<string> {
    return new TextDecoder().decode(await this.downloadExport(exportId, options));
  }

  // -------------------------------------------------------------------------------------------------
  // plumbing

  private async trackCall(req: HttpRequest, options: CallOptions): Promise<unknown> {
    return (await this.track.request({ ...req, ...withSignal(options) })).data;
  }

  private appClient(operation: string): HttpClient {
    if (!this.app) throw configError(`${operation} needs an App API key (CUSTOMERIO_APP_API_KEY)`);
    return this.app;
  }

  private async appRequest(req: HttpRequest, options: CallOptions) {
    return this.appClient(req.operation).request({ ...req, ...withSignal(options) });
  }

  private async appCall(req: HttpRequest, options: CallOptions): Promise<unknown> {
    return (await this.appRequest(req, options)).data;
  }

  private async *paginate(
    op: string,
    build: (start: string | undefined) => Omit<HttpRequest, 'operation'>,
    options: CallOptions,
  ): AsyncGenerator<PeoplePage> {
    const seen = new Set<string>();
    let start: string | undefined;
    for (;;) {
      const data = await this.appCall({ operation: op, ...build(start) }, options);
      const page = parseWith(op, data, peoplePageSchema);
      const out: PeoplePage = { identifiers: page.identifiers, ids: page.ids };
      if (page.next !== undefined) out.next = page.next;
      yield out;
      if (page.next === undefined) return;
      if (seen.has(page.next)) throw invalidResponse(op, 'the pagination cursor repeated itself', 'applied');
      seen.add(page.next);
      start = page.next;
    }
  }

  /** URL-encodes a v1 path identifier after basic checks (§4.1). */
  private personPath(op: string, identifier: string): string {
    if (typeof identifier !== 'string' || identifier.trim() === '') throw localError(op, 'identifier must be a non-empty string', 'invalid_request');
    const looksLikeEmail = identifier.includes('@');
    if (!looksLikeEmail && Buffer.byteLength(identifier, 'utf8') > PERSON_ID_LIMIT_BYTES) {
      throw localError(op, `identifier is longer than ${PERSON_ID_LIMIT_BYTES} bytes`, 'invalid_request');
    }
    return encodeURIComponent(identifier);
  }
}

// ---------------------------------------------------------------------------------------------------
// helpers

/**
 * 207 entry reasons that describe a failure on the service's side rather than a bad entry. ⚠ The docs
 * list no reason vocabulary; this is a heuristic so such entries are reported as worth resending.
 */
const TRANSIENT_ENTRY_REASON = /internal|server|unavailable|timeout|rate/i;

const IDEMPOTENT_V2_ACTIONS = new Set([
  'identify',
  'identify_anonymous',
  'delete',
  'add_relationships',
  'delete_relationships',
  'add_device',
  'delete_device',
  'suppress',
  'unsuppress',
]);
const EVENT_V2_ACTIONS = new Set(['event', 'screen', 'page']);

/**
 * Whether sending the entry twice has the effect of sending it once: state-setting actions are, events
 * are only with a dedupe `id`, and `merge` is not (its second run would act on a changed profile).
 */
export function isIdempotentEntry(entry: V2Entry): boolean {
  const action = String(entry.action);
  if (IDEMPOTENT_V2_ACTIONS.has(action)) return true;
  if (EVENT_V2_ACTIONS.has(action)) return typeof entry.id === 'string' && entry.id !== '';
  return false;
}

function oversizeResult(index: number, size: number): EntryResult {
  return {
    index,
    ok: false,
    reason: 'entry_too_large',
    message: `entry is ${size} bytes, over the ${V2_ENTRY_LIMIT_BYTES}-byte limit; it was not sent`,
    retryable: false,
  };
}

function summarize(results: EntryResult[], batches: number): BatchSummary {
  let accepted = 0;
  for (const r of results) if (r.ok) accepted++;
  return { results, batches, accepted, rejected: results.length - accepted };
}

function byteLength(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value), 'utf8');
}

/** Size of `{"batch":[e1,e2,…]}` given the entries' serialised sizes. */
function batchBodyBytes(sizes: readonly number[]): number {
  const overhead = '{"batch":[]}'.length;
  return overhead + sizes.reduce((a, b) => a + b, 0) + Math.max(0, sizes.length - 1);
}

function stripSuffix(url: string, suffix: string): string {
  const trimmed = url.replace(/\/+$/, '');
  return trimmed.endsWith(suffix) ? trimmed.slice(0, -suffix.length) : trimmed;
}

function withSignal(options: CallOptions): { signal?: AbortSignal } {
  return options.signal ? { signal: options.signal } : {};
}

function assertSegmentId(op: string, id: number): void {
  // segment_id is an int32 in the path (§4.2).
  if (!Number.isInteger(id) || id < 0 || id > 2_147_483_647) throw localError(op, 'segment id must be a non-negative 32-bit integer', 'invalid_request');
}

function pageSizeOption(op: string, requested: number | undefined, fallback: number, max: number): number {
  const size = requested ?? fallback;
  if (!Number.isInteger(size) || size < 1 || size > max) throw localError(op, `page size must be an integer from 1 to ${max}`, 'invalid_request');
  return size;
}

function parseField<S extends z.ZodType>(op: string, data: unknown, field: string, schema: S, outcome: RequestOutcome = 'applied'): z.output<S> {
  if (!isRecord(data) || !(field in data)) throw invalidResponse(op, `expected a "${field}" field`, outcome);
  return parseWith(op, data[field], schema, outcome);
}

/** Local check of the audience filter rules (§6.2); returns a problem description or undefined. */
export function checkAudienceFilter(filter: unknown, path: string): string | undefined {
  if (!isRecord(filter)) return `${path} must be an object`;
  const keys = Object.keys(filter);
  if (keys.length !== 1) return `${path} must have exactly one property (nest and/or/not for complex filters)`;
  const key = keys[0]!;
  const value = filter[key];
  switch (key) {
    case 'and':
    case 'or': {
      if (!Array.isArray(value) || value.length === 0) return `${path}.${key} must be a non-empty array`;
      for (let i = 0; i < value.length; i++) {
        const problem = checkAudienceFilter(value[i], `${path}.${key}[${i}]`);
        if (problem) return problem;
      }
      return undefined;
    }
    case 'not':
      return checkAudienceFilter(value, `${path}.not`);
    case 'segment':
      return isRecord(value) && Number.isInteger(value.id) ? undefined : `${path}.segment.id must be an integer`;
    case 'attribute': {
      if (!isRecord(value) || typeof value.field !== 'string' || !value.field) return `${path}.attribute.field is required`;
      if (value.operator !== 'eq' && value.operator !== 'exists') return `${path}.attribute.operator must be "eq" or "exists"`;
      if (value.operator === 'eq' && typeof value.value !== 'string') return `${path}.attribute.value is required for "eq"`;
      return undefined;
    }
    default:
      return `${path} has an unknown filter type "${key}"`;
  }
}
