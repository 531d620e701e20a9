/**
 * The Customer.io App API (§6): segments, people lookups and exports, on the App host with the App API
 * key (Bearer). Without that key the client still works for Track calls, and each App call fails with a
 * configuration error naming the missing variable.
 *
 * Export downloads go to a pre-signed link on a storage host, through a client that never sends our
 * credentials.
 */
import type { z } from 'zod';
import { clientErrors, isRecord } from '../client-errors.ts';
import { withSignal } from '../http/client-settings.ts';
import { ProviderError, type RequestOutcome } from '../errors.ts';
import type { HttpClient, HttpRequest } from '../http/http-client.ts';
import { followPages } from '../http/paging.ts';
import type { Timer } from '../http/timer.ts';
import { assertSegmentId, personPath } from './requests.ts';
import {
  customerAttributesSchema,
  exportSchema,
  identifiersSchema,
  peoplePageSchema,
  segmentRefSchema,
  segmentSchema,
  type AppIdType,
  type AudienceFilter,
  type CallOptions,
  type CustomerAttributes,
  type CustomerIdentifiers,
  type Export,
  type PeoplePage,
  type PollOptions,
  type Segment,
  type SegmentRef,
} from './types.ts';

const { configError, localError, invalidResponse, parseWith } = clientErrors('customerio');

/** App `POST /v1/customers/attributes` takes at most 100 ids (§2). */
export const ATTRIBUTES_CHUNK = 100;
/** Segment membership page size: default 1000, max 30000 (§6.1). */
export const MEMBERSHIP_PAGE_MAX = 30_000;
/** Customer search page size: default 50, max 1000 (§6.2). */
export const SEARCH_PAGE_MAX = 1000;

export class CustomerioAppApi {
  constructor(
    /** App API host client; undefined without an App API key. */
    readonly app: HttpClient | undefined,
    private readonly download: HttpClient,
    protected readonly timer: Timer,
  ) {}

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
    return this.findField({ operation: op, method: 'GET', path: `/v1/segments/${segmentId}` }, 'segment', segmentSchema, options);
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

  /**
   * A segment's members, one array per page, as the API identifies them: `id`, `email` and `cio_id`, null
   * when unset (an "id only" workspace never sends `email`). Same paging and budget as `segmentMembership`;
   * arguments are checked on the call, not on the first read.
   */
  segmentMembers(segmentId: number, options: CallOptions & { pageSize?: number } = {}): AsyncIterable<CustomerIdentifiers[]> {
    const pages = this.segmentMembership(segmentId, options);
    return (async function* () {
      for await (const page of pages) yield membersOf(page);
    })();
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
    const path = `/v1/customers/${personPath(op, identifier)}/attributes`;
    return this.findField({ operation: op, method: 'GET', path, query: { id_type: idType } }, 'customer', customerAttributesSchema, options);
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
    const path = `/v1/customers/${personPath(op, identifier)}/segments`;
    return this.findField({ operation: op, method: 'GET', path, query: { id_type: idType } }, 'segments', segmentRefSchema.array(), options);
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
    return this.findField({ operation: op, method: 'GET', path: `/v1/exports/${exportId}` }, 'export', exportSchema, options);
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

  private appClient(operation: string): HttpClient {
    if (!this.app) throw configError(`${operation} needs an App API key (CUSTOMERIO_APP_API_KEY)`);
    return this.app;
  }

  private async appRequest(req: HttpRequest, options: CallOptions) {
    return this.appClient(req.operation).request({ ...req, ...withSignal(options) });
  }

  /** A read whose 404 means "no such object": the named field of the answer, parsed, or undefined. */
  private async findField<S extends z.ZodType>(req: HttpRequest, field: string, schema: S, options: CallOptions): Promise<z.output<S> | undefined> {
    const res = await this.appRequest({ ...req, acceptStatuses: [404] }, options);
    return res.status === 404 ? undefined : parseField(req.operation, res.data, field, schema);
  }

  private async appCall(req: HttpRequest, options: CallOptions): Promise<unknown> {
    return (await this.appRequest(req, options)).data;
  }

  private paginate(op: string, build: (start: string | undefined) => Omit<HttpRequest, 'operation'>, options: CallOptions): AsyncGenerator<PeoplePage> {
    return followPages(
      async (start) => {
        const page = parseWith(op, await this.appCall({ operation: op, ...build(start) }, options), peoplePageSchema);
        const out: PeoplePage = { identifiers: page.identifiers, ids: page.ids };
        if (page.next !== undefined) out.next = page.next;
        return out;
      },
      (page) => page.next,
      () => invalidResponse(op, 'the pagination cursor repeated itself', 'applied'),
    );
  }
}

/**
 * `identifiers` is what the docs recommend reading; a page that carries only `ids` (as the 2022 spec allowed)
 * still names its members, with '' meaning "this person has no id".
 */
function membersOf(page: PeoplePage): CustomerIdentifiers[] {
  if (page.identifiers.length > 0 || page.ids.length === 0) return page.identifiers;
  return page.ids.map((id) => ({ id: id === '' ? null : id, email: null, cio_id: null }));
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
