/**
 * The Customer.io client: Track API v1 and v2 (people, events, manual segment membership, batches) and
 * the App API (segments, people lookups, exports). HTTP only: no model mapping, no planning.
 *
 * Split by seam: config.ts reads and checks the settings, v2-batch.ts packs and accounts for v2
 * batches, app-api.ts holds the App API calls; this file builds the HTTP clients and makes the Track
 * calls.
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
import { generateUlid, isUlid } from '../../core/ulid.ts';
import { clientErrors, isRecord } from '../client-errors.ts';
import { passThroughSettings, withSignal } from '../http/client-settings.ts';
import { HttpClient, type HttpRequest } from '../http/http-client.ts';
import { credentialFingerprint, sharedLimiters } from '../http/rate-limiter.ts';
import { systemTimer } from '../http/timer.ts';
import { CustomerioAppApi } from './app-api.ts';
import { appBaseUrl, basicToken, registerCredentials, trackBaseUrl } from './config.ts';
import { describeCustomerioError } from './errors.ts';
import { assertSegmentId, personPath } from './requests.ts';
import type {
  BatchSummary,
  CallOptions,
  CustomerioConfig,
  EntryResult,
  RegionInfo,
  SendBatchesOptions,
  TrackEvent,
  TrackEventOptions,
  TrackIdType,
  V2Entry,
} from './types.ts';
import {
  batchBodyBytes,
  batchBody,
  byteLength,
  isIdempotentEntry,
  oversizeResult,
  packBatches,
  readBatchResults,
  sendGroups,
  serialiseEntries,
  serialiseEntry,
  type RetryFacts,
  type SerialisedEntry,
  summarize,
  V2_BATCH_LIMIT_BYTES,
  V2_ENTRY_LIMIT_BYTES,
} from './v2-batch.ts';

export type * from './types.ts';
export { customerioConfigFromEnv } from './config.ts';

const { configError, localError, invalidResponse } = clientErrors('customerio');

/** Track v1 add/remove_customers take 1..1000 ids per request (§4.2). */
export const SEGMENT_MEMBERS_CHUNK = 1000;

const DEFAULT_TRACK_RATE = 100;
// 10% under the App API's documented 10 requests/s. The service counts arrivals in a sliding second; requests
// sent evenly at exactly the limit arrive bunched by network and event-loop delays, and a busy machine got
// 429s for 25 of them against the emulator's strict window (the Track benchmark saw the same at 100/s).
// CUSTOMERIO_APP_RATE_PER_SECOND sets it for a workspace whose limit Customer.io raised.
const DEFAULT_APP_RATE = 9;

// One object for both APIs, so callers keep one handle; the App calls are inherited from app-api.ts so
// each API's code sits in its own file.
export class CustomerioClient extends CustomerioAppApi {
  /** Track API host client (v1 and v2 share the host, the credential and the budget). */
  readonly track: HttpClient;

  constructor(readonly config: CustomerioConfig) {
    if (!config.siteId || !config.trackApiKey) throw configError('siteId and trackApiKey are required');
    registerCredentials(config);
    const timer = config.timer ?? systemTimer;
    const registry = config.limiters ?? sharedLimiters;
    const common = {
      provider: 'customerio' as const,
      describeError: describeCustomerioError,
      timer,
      ...passThroughSettings(config),
    };

    const appBase = appBaseUrl(config);
    const appKey = config.appApiKey;
    const app = appKey
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
    super(app, new HttpClient({ ...common, service: 'download', baseUrl: appBase }), timer);

    const trackBase = trackBaseUrl(config);
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
  }

  // -------------------------------------------------------------------------------------------------
  // Track v1 (§4)

  /** Creates or updates a person (`PUT /api/v1/customers/{identifier}`). */
  async identify(identifier: string, attributes: Record<string, unknown>, options: CallOptions = {}): Promise<void> {
    const op = 'track.identify';
    await this.trackCall({ operation: op, method: 'PUT', path: `/api/v1/customers/${personPath(op, identifier)}`, body: attributes }, options);
  }

  /** Deletes a person and all their data (`DELETE /api/v1/customers/{identifier}`). */
  async deletePerson(identifier: string, options: CallOptions = {}): Promise<void> {
    const op = 'track.delete';
    await this.trackCall({ operation: op, method: 'DELETE', path: `/api/v1/customers/${personPath(op, identifier)}` }, options);
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
      { operation: op, method: 'POST', path: `/api/v1/customers/${personPath(op, identifier)}/events`, body, idempotent: true },
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
    const { texts, sizes } = serialiseEntries(entries);
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
      const mapped = await this.sendOneBatch(entries, texts, sizes, sendable, options);
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
    return this.sendSerialised(entries.map(serialiseEntry), options);
  }

  /** `sendBatches` for entries serialised already (`serialiseEntry`): the same batches, the same results. */
  async sendSerialised(entries: readonly SerialisedEntry[], options: SendBatchesOptions = {}): Promise<BatchSummary> {
    const texts = entries.map((e) => e.text);
    const sizes = texts.map((t) => (typeof t === 'string' ? Buffer.byteLength(t, 'utf8') : t.length));
    const limit = Math.min(options.maxBatchBytes ?? V2_BATCH_LIMIT_BYTES, V2_BATCH_LIMIT_BYTES);
    const { groups, oversize } = packBatches(sizes, limit, options.maxEntriesPerBatch ?? Number.POSITIVE_INFINITY);
    const results: EntryResult[] = new Array(entries.length);
    for (const index of oversize) results[index] = oversizeResult(index, sizes[index]!);
    const batches = await sendGroups(entries, groups, results, (indexes) => this.sendOneBatch(entries, texts, sizes, indexes, options));
    return summarize(results, batches);
  }

  /** One `POST /api/v2/batch` carrying `entries[i]` for each i in `indexes`; maps 207 errors back. */
  private async sendOneBatch(entries: readonly RetryFacts[], texts: readonly (string | Uint8Array)[], sizes: readonly number[], indexes: readonly number[], options: CallOptions): Promise<EntryResult[]> {
    const op = 'track.v2.batch';
    const res = await this.track.request({
      operation: op,
      method: 'POST',
      path: '/api/v2/batch',
      bodyJson: batchBody(texts, sizes, indexes),
      idempotent: indexes.every((i) => isIdempotentEntry(entries[i]!)),
      ...withSignal(options),
    });
    return readBatchResults(op, entries, indexes, res.status, res.data);
  }

  // -------------------------------------------------------------------------------------------------
  // plumbing

  private async trackCall(req: HttpRequest, options: CallOptions): Promise<unknown> {
    return (await this.track.request({ ...req, ...withSignal(options) })).data;
  }
}
