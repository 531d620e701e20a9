/**
 * The Qualtrics API v3 emulator: a pure request → response function over in-memory state.
 *
 * Request pipeline, in the order the real service is observed to apply it:
 *   1. route match below `/API/v3` (unknown routes answer 404 even without credentials);
 *   2. body size (413 over 5 MB);
 *   3. `X-API-TOKEN` (401 `ATP_2` when absent, 401 `DCD_7` when wrong);
 *   4. background jobs advance one step (imports, exports);
 *   5. leaky-bucket rate limits, per brand and per endpoint (429);
 *   6. the handler.
 * Every JSON answer is wrapped in the `{result, meta}` envelope and carries the proxied-host notice when
 * the request came through a host other than the brand's home datacenter.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { registerSecret } from '../../core/redact.ts';
import type { Emulator, SandboxRequest, SandboxResponse, ServiceFaults } from '../common/types.ts';
import { handleAdmin, ADMIN_PREFIX } from './admin.ts';
import { routeKey, type HandlerContext, type Route } from './context.ts';
import { homeHostFor, proxiedNotice } from './datacenter.ts';
import { ErrorCode, QualtricsApiError, envelope, errorEnvelope, type ApiResult } from './envelope.ts';
import { SeededRandom } from './random.ts';
import { LeakyBuckets } from './rate-limit.ts';
import { Router } from './router.ts';
import { bounceContacts, contactHistoryRoutes } from './routes/contact-history.ts';
import { directoryRoutes } from './routes/directory.ts';
import { distributionRoutes } from './routes/distributions.ts';
import { eventSubscriptionRoutes, queueCompletedResponseWebhooks } from './routes/event-subscriptions.ts';
import { EXPORT_FILE_PATTERN, EXPORT_PROGRESS_PATTERN, EXPORT_START_PATTERN, advanceExport, exportRoutes } from './routes/exports.ts';
import { advanceImport, importRoutes } from './routes/imports.ts';
import { surveyRoutes } from './routes/surveys.ts';
import { whoamiRoutes } from './routes/whoami.ts';
import {
  SeedError,
  editEmbeddedData as editEmbeddedDataOf,
  seedDirectory as seedDirectoryInto,
  seedResponses as seedResponsesInto,
  seedSurvey as seedSurveyInto,
  type EmbeddedDataEditInput,
  type SeedDirectoryInput,
  type SeedResponseInput,
  type SeedSurveyInput,
} from './seed.ts';
import {
  QualtricsStore,
  configSchema,
  type Contact,
  type Distribution,
  type EmailHistoryEntry,
  type MailingList,
  type QualtricsConfig,
  type Subscription,
  type SurveyResponse,
  type Transaction,
  type WebhookDelivery,
} from './state.ts';

/** Options fixed for the emulator's lifetime (reset returns to them). */
export interface QualtricsEmulatorOptions {
  /** The only token `X-API-TOKEN` accepts. */
  apiToken: string;
  /** Per-brand requests per minute; default 3000 (documented). */
  rateLimitPerMinute?: number;
  /** Fixed Retry-After seconds on 429; default: the time until the bucket has room again. */
  retryAfterSeconds?: number;
  /** Seed for ids and sampled faults; default random. */
  seed?: number;
  /** The clock; default the system clock. */
  now?: () => Date;
}

/** Settable behaviour: identity, datacenter routing, limits, job pacing, injected failures. */
export type QualtricsConfigPatch = Partial<Omit<QualtricsConfig, 'endpointLimits'>> & {
  /** Merged into the current per-endpoint limits (keys like `POST /surveys/{surveyId}/export-responses`). */
  endpointLimits?: Record<string, number>;
};

/** A contact as it sits in one mailing list: directory fields plus the list-specific ones. */
export interface MailingListContact {
  contactId: string;
  contactLookupId: string;
  mailingListId: string;
  firstName: string | null;
  lastName: string | null;
  email: string | null;
  phone: string | null;
  extRef: string | null;
  language: string | null;
  embeddedData: Record<string, string>;
  privateEmbeddedData: Record<string, string>;
  /** Opted out of this list. */
  unsubscribed: boolean;
  /** Opted out of the whole directory. */
  directoryUnsubscribed: boolean;
}

/** The emulator plus in-process seeding and inspection (tests, `tidemark sandbox`). */
export interface QualtricsEmulator extends Emulator {
  readonly service: 'qualtrics';
  config(): QualtricsConfig;
  configure(patch: QualtricsConfigPatch): QualtricsConfig;
  /** The brand's default XM directory (`POOL_…`), present from the start. */
  defaultDirectoryId(): string;
  seedDirectory(input?: SeedDirectoryInput): string;
  hasDirectory(directoryId: string): boolean;
  /** Adds a survey (surveys are built in the Qualtrics UI, not through the API); returns its id. */
  seedSurvey(input: SeedSurveyInput): string;
  hasSurvey(surveyId: string): boolean;
  /**
   * Adds each survey whose id the brand lacks (a real brand has the surveys its specs name) and keeps
   * those it has as they are, edits included. Returns the ids it added.
   */
  seedReferencedSurveys(inputs: readonly SeedSurveyInput[]): string[];
  /** Renames, removes or adds a survey's embedded-data fields, as CX would in the survey flow. Throws SeedError. */
  editEmbeddedData(surveyId: string, edit: EmbeddedDataEditInput): Array<{ name: string; defaultValue: string | null }>;
  /** Adds responses to a survey and queues their webhooks; returns the response ids. Throws SeedError on bad input. */
  seedResponses(surveyId: string, responses: readonly SeedResponseInput[]): string[];
  listMailingLists(directoryId?: string): MailingList[];
  contacts(mailingListId: string): MailingListContact[];
  directoryContacts(directoryId?: string): Contact[];
  transactions(): Transaction[];
  /** The transactions a batch holds (an import's, and those added to it), in the order they joined. */
  batchTransactions(batchId: string): Transaction[];
  distributions(surveyId?: string): Distribution[];
  eventSubscriptions(): Subscription[];
  responses(surveyId: string): SurveyResponse[];
  webhookOutbox(): WebhookDelivery[];
  /** Returns the queued webhook deliveries and empties the queue. */
  drainWebhookOutbox(): WebhookDelivery[];
  /** Finishes every running import and export at once. */
  settleJobs(): void;
  /**
   * A mail server reports a bounce: every contact of the directory (default: the default one) at this
   * address, with this extRef, or this contact, is bounced from `at` (default now). Returns their ids.
   */
  bounce(input: BounceInput): string[];
  /** Every email Qualtrics recorded for a contact (the email history), oldest first. */
  emailHistory(contactId: string): EmailHistoryEntry[];
}

export interface BounceInput {
  directoryId?: string;
  email?: string;
  extRef?: string;
  contactId?: string;
  /** ISO-8601; default the emulator's now. */
  at?: string;
}

/** Reported per-endpoint limits (requests per minute per brand); ⚠ the official table was not retrieved. */
export const DEFAULT_ENDPOINT_LIMITS: Record<string, number> = {
  [`POST ${EXPORT_START_PATTERN}`]: 100,
  [`GET ${EXPORT_PROGRESS_PATTERN}`]: 1000,
  [`GET ${EXPORT_FILE_PATTERN}`]: 100,
};

const ROUTES: Route[] = [
  ...whoamiRoutes,
  ...directoryRoutes,
  ...contactHistoryRoutes,
  ...importRoutes,
  ...distributionRoutes,
  ...surveyRoutes,
  ...exportRoutes,
  ...eventSubscriptionRoutes,
];

const API_PREFIX = /^\/API\/v3(?=\/|$)/i;

function copy<T>(v: T): T {
  return structuredClone(v);
}

class QualtricsEmulatorImpl implements QualtricsEmulator {
  readonly service = 'qualtrics' as const;
  private readonly router = new Router(ROUTES);
  private readonly buckets = new LeakyBuckets();
  private readonly seed: number;
  private readonly now: () => Date;
  private rng: SeededRandom;
  private store: QualtricsStore;

  constructor(private readonly opts: QualtricsEmulatorOptions) {
    if (opts.apiToken === '') throw new Error('The Qualtrics emulator needs a non-empty apiToken');
    registerSecret(opts.apiToken);
    this.seed = opts.seed ?? randomBytes(4).readUInt32LE(0);
    this.now = opts.now ?? (() => new Date());
    this.rng = new SeededRandom(this.seed);
    this.store = this.freshStore();
  }

  private freshStore(): QualtricsStore {
    const config = configSchema.parse({
      brandId: 'tidemark',
      userId: this.rng.id('UR'),
      userName: 'retention.ops@tidemark.example',
      firstName: 'Sandbox',
      lastName: 'Operator',
      email: 'retention.ops@tidemark.example',
      accountType: 'UT_BRANDADMIN',
      datacenter: 'iad1',
      homeHost: null,
      rejectProxiedExports: true,
      brandLimitPerMinute: this.opts.rateLimitPerMinute ?? 3000,
      endpointLimits: { ...DEFAULT_ENDPOINT_LIMITS },
      retryAfterSeconds: this.opts.retryAfterSeconds ?? null,
      jobSteps: 3,
      exportFailuresPending: 0,
      maxBodyBytes: 5 * 1024 * 1024,
    });
    const store = new QualtricsStore(config);
    seedDirectoryInto(store, this.rng, { isDefault: true });
    return store;
  }

  async handle(req: SandboxRequest, faults: ServiceFaults): Promise<SandboxResponse> {
    const path = req.url.pathname;
    if (path === ADMIN_PREFIX || path.startsWith(`${ADMIN_PREFIX}/`)) return handleAdmin(this, req);

    const requestId = this.rng.uuid();
    const homeHost = homeHostFor(this.store.config, req.url);
    const notice = homeHost === undefined ? undefined : proxiedNotice(homeHost);
    const fail = (err: QualtricsApiError): SandboxResponse => errorEnvelope(err, requestId, notice);

    const prefix = API_PREFIX.exec(path);
    const below = prefix ? path.slice(prefix[0].length).replace(/\/+$/, '') || '/' : undefined;
    const match = below === undefined ? undefined : this.router.match(req.method.toUpperCase(), below);
    if (!match) return fail(new QualtricsApiError(404, ErrorCode.routeNotFound, 'The requested resource does not exist.'));

    if (req.body.length > this.store.config.maxBodyBytes) {
      return fail(new QualtricsApiError(413, ErrorCode.tooLarge, 'The request body is too large.'));
    }
    const authError = this.checkToken(req.headers['x-api-token']);
    if (authError) return fail(authError);

    const now = this.now();
    this.advanceJobs(now);

    const limitError = this.takeRateLimit(routeKey(match.route), now.getTime());
    if (limitError) return fail(limitError);

    const ctx: HandlerContext = {
      store: this.store,
      rng: this.rng,
      now: this.now,
      req,
      url: req.url,
      params: match.params,
      faults,
      origin: req.url.origin,
      proxied: homeHost !== undefined,
    };
    let result: ApiResult;
    try {
      result = match.route.handler(ctx);
    } catch (err) {
      if (err instanceof QualtricsApiError) return fail(err);
      throw err;
    }
    if (result.raw) return { status: result.status, headers: { ...result.raw.headers }, raw: result.raw.body };
    return envelope(result.status, requestId, result.result, notice);
  }

  private checkToken(given: string | undefined): QualtricsApiError | undefined {
    // Real traffic answers a missing header with 400 ATP_2 and a wrong token with 401; the sandbox
    // answers the same, so clients are tested against what they will meet.
    if (given === undefined || given === '') {
      return new QualtricsApiError(400, ErrorCode.missingAuth, 'Expected authorization in headers, but none provided.');
    }
    const a = Buffer.from(given, 'utf8');
    const b = Buffer.from(this.opts.apiToken, 'utf8');
    if (a.length !== b.length || !timingSafeEqual(a, b)) {
      return new QualtricsApiError(401, ErrorCode.badToken, 'Unrecognized X-API-TOKEN.');
    }
    return undefined;
  }

  private takeRateLimit(key: string, nowMs: number): QualtricsApiError | undefined {
    const config = this.store.config;
    const brand = config.brandId;
    const checks = [{ key: `brand:${brand}`, perMinute: config.brandLimitPerMinute }];
    const endpointLimit = config.endpointLimits[key];
    if (endpointLimit !== undefined) checks.push({ key: `endpoint:${brand}:${key}`, perMinute: endpointLimit });
    const waitMs = this.buckets.take(checks, nowMs);
    if (waitMs === 0) return undefined;
    // ⚠ Whether Qualtrics sends Retry-After is unverified; sending it is the safe choice for clients.
    const retryAfter = config.retryAfterSeconds ?? Math.max(1, Math.ceil(waitMs / 1000));
    return new QualtricsApiError(429, ErrorCode.rateLimited, 'Too many requests. Please slow down and retry later.', {
      'retry-after': String(retryAfter),
    });
  }

  /** Background work moves on as the world does: one step per authenticated request. */
  private advanceJobs(now: Date): void {
    const nowMs = now.getTime();
    for (const job of this.store.imports.values()) advanceImport(this.store, this.rng, job, nowMs);
    for (const job of this.store.exports.values()) advanceExport(this.store, this.rng, job, now);
  }

  settleJobs(): void {
    const now = this.now();
    for (const job of this.store.imports.values()) while (job.status === 'inProgress') advanceImport(this.store, this.rng, job, now.getTime());
    for (const job of this.store.exports.values()) while (job.status === 'inProgress') advanceExport(this.store, this.rng, job, now);
  }

  snapshot(): unknown {
    return this.store.snapshot(this.rng.state);
  }

  restore(snapshot: unknown): void {
    const { store, rngState } = QualtricsStore.fromSnapshot(snapshot);
    this.store = store;
    this.rng.state = rngState;
    this.buckets.clear();
  }

  reset(): void {
    this.rng = new SeededRandom(this.seed);
    this.store = this.freshStore();
    this.buckets.clear();
  }

  config(): QualtricsConfig {
    return copy(this.store.config);
  }

  configure(patch: QualtricsConfigPatch): QualtricsConfig {
    const current = this.store.config;
    const next = configSchema.parse({
      ...current,
      ...patch,
      endpointLimits: { ...current.endpointLimits, ...(patch.endpointLimits ?? {}) },
    });
    this.store.config = next;
    return copy(next);
  }

  defaultDirectoryId(): string {
    for (const d of this.store.directories.values()) if (d.isDefault) return d.directoryId;
    throw new Error('The Qualtrics emulator has no default directory');
  }

  seedDirectory(input?: SeedDirectoryInput): string {
    return seedDirectoryInto(this.store, this.rng, input ?? {}).directoryId;
  }

  hasDirectory(directoryId: string): boolean {
    return this.store.directories.has(directoryId);
  }

  seedSurvey(input: SeedSurveyInput): string {
    return seedSurveyInto(this.store, this.rng, this.now(), input).id;
  }

  hasSurvey(surveyId: string): boolean {
    return this.store.surveys.has(surveyId);
  }

  seedReferencedSurveys(inputs: readonly SeedSurveyInput[]): string[] {
    const added: string[] = [];
    for (const input of inputs) {
      if (input.id !== undefined && this.store.surveys.has(input.id)) continue;
      added.push(this.seedSurvey(input));
    }
    return added;
  }

  editEmbeddedData(surveyId: string, edit: EmbeddedDataEditInput): Array<{ name: string; defaultValue: string | null }> {
    return editEmbeddedDataOf(this.store, this.now(), surveyId, edit).embeddedData.map(copy);
  }

  seedResponses(surveyId: string, responses: readonly SeedResponseInput[]): string[] {
    const added = seedResponsesInto(this.store, this.rng, surveyId, responses);
    queueCompletedResponseWebhooks(this.store, added);
    return added.map((r) => r.responseId);
  }

  listMailingLists(directoryId?: string): MailingList[] {
    return [...this.store.mailingLists.values()].filter((l) => !directoryId || l.directoryId === directoryId).map(copy);
  }

  contacts(mailingListId: string): MailingListContact[] {
    return this.store.membersOf(mailingListId).flatMap((m) => {
      const c = this.store.contacts.get(m.contactId);
      if (!c) return [];
      return [
        {
          contactId: c.contactId,
          contactLookupId: m.contactLookupId,
          mailingListId,
          firstName: c.firstName,
          lastName: c.lastName,
          email: c.email,
          phone: c.phone,
          extRef: c.extRef,
          language: c.language,
          embeddedData: { ...c.embeddedData },
          privateEmbeddedData: { ...m.privateEmbeddedData },
          unsubscribed: m.unsubscribed,
          directoryUnsubscribed: c.directoryUnsubscribed,
        },
      ];
    });
  }

  directoryContacts(directoryId?: string): Contact[] {
    const dir = directoryId ?? this.defaultDirectoryId();
    return [...this.store.contacts.values()].filter((c) => c.directoryId === dir).map(copy);
  }

  transactions(): Transaction[] {
    return [...this.store.transactions.values()].map(copy);
  }

  batchTransactions(batchId: string): Transaction[] {
    const batch = this.store.batches.get(batchId);
    return (batch?.transactionIds ?? []).flatMap((id) => {
      const t = this.store.transactions.get(id);
      return t ? [copy(t)] : [];
    });
  }

  distributions(surveyId?: string): Distribution[] {
    return [...this.store.distributions.values()].filter((d) => !surveyId || d.surveyLink.surveyId === surveyId).map(copy);
  }

  eventSubscriptions(): Subscription[] {
    return [...this.store.subscriptions.values()].map(copy);
  }

  responses(surveyId: string): SurveyResponse[] {
    return this.store.responsesOf(surveyId).map(copy);
  }

  webhookOutbox(): WebhookDelivery[] {
    return this.store.webhookOutbox.map(copy);
  }

  bounce(input: BounceInput): string[] {
    for (const key of Object.keys(input ?? {})) {
      if (!['directoryId', 'email', 'extRef', 'contactId', 'at'].includes(key)) throw new SeedError(`unknown key ${key}`);
      if (typeof (input as unknown as Record<string, unknown>)[key] !== 'string') throw new SeedError(`${key} must be a string`);
    }
    const directoryId = input.directoryId ?? this.defaultDirectoryId();
    if (!this.store.directories.has(directoryId)) throw new SeedError(`no directory ${directoryId}`);
    if (input.email === undefined && input.extRef === undefined && input.contactId === undefined) throw new SeedError('give email, extRef or contactId');
    const atMs = input.at === undefined ? this.now().getTime() : Date.parse(input.at);
    if (Number.isNaN(atMs)) throw new SeedError(`at: "${input.at}" is not an ISO-8601 date-time`);
    const ids = bounceContacts(this.store, directoryId, input, atMs);
    if (ids.length === 0) throw new SeedError('no contact matches');
    return ids;
  }

  emailHistory(contactId: string): EmailHistoryEntry[] {
    return this.store.emailHistoryOf(contactId).map(copy);
  }

  drainWebhookOutbox(): WebhookDelivery[] {
    const out = this.store.webhookOutbox;
    this.store.webhookOutbox = [];
    return out;
  }
}

export function createQualtricsEmulator(opts: QualtricsEmulatorOptions): QualtricsEmulator {
  return new QualtricsEmulatorImpl(opts);
}
