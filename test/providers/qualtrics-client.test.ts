/**
 * The Qualtrics client against the sandbox emulator: every client operation, the envelope and its
 * errors, pagination, datacenter switching, 429/5xx handling and fault injection. State is checked
 * through the emulator's in-process API, not through the client.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ProviderError } from '../../reconciler/providers/errors.ts';
import { RequestCounter } from '../../reconciler/providers/http/http-client.ts';
import { LimiterRegistry } from '../../reconciler/providers/http/rate-limiter.ts';
import { ManualTimer } from '../../reconciler/providers/http/timer.ts';
import {
  collectAll,
  QualtricsClient,
  qualtricsConfigFromEnv,
  type DistributionInput,
  type QualtricsConfig,
} from '../../reconciler/providers/qualtrics/client.ts';
import { createSandbox, type RunningSandbox } from '../../reconciler/sandbox/index.ts';

let sb: RunningSandbox;
let counter: RequestCounter;
let dir: string;

beforeAll(async () => {
  sb = await createSandbox({ port: 0, seed: 11, retryAfterSeconds: 0 });
});

afterAll(async () => {
  await sb.close();
});

beforeEach(() => {
  sb.faults.clear();
  sb.qualtrics.reset();
  dir = sb.qualtrics.defaultDirectoryId();
  counter = new RequestCounter();
});

function client(overrides: Partial<QualtricsConfig> = {}, env: Record<string, string> = {}): QualtricsClient {
  return new QualtricsClient(
    qualtricsConfigFromEnv(
      { ...sb.env, ...env },
      {
        limiters: new LimiterRegistry(),
        retry: { baseDelayMs: 1, maxDelayMs: 4 },
        onRequest: counter.hook,
        // The sandbox finishes jobs after a few requests; poll without real waits.
        endpointRatesPerMinute: { exportStart: 60_000, exportProgress: 60_000, exportFile: 60_000 },
        ...overrides,
      },
    ),
  );
}

const inFuture = (days: number): string => new Date(Date.now() + days * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z');

function seedSurvey(): string {
  return sb.qualtrics.seedSurvey({
    name: 'Post purchase',
    questions: [
      { id: 'QID1', text: 'How was it?', type: 'single', choices: ['Shipping issue', 'Quality', 'Loved it'] },
      { id: 'QID2', text: 'Anything else?', type: 'text' },
    ],
    embeddedData: ['order_id'],
  });
}

describe('identity and directories', () => {
  it('reads whoami through the envelope', async () => {
    const me = await client().whoami();
    expect(me.brandId).toBe(sb.qualtrics.config().brandId);
    expect(counter.total).toBe(1);
  });

  it('rejects a wrong token with 401, keeping it out of the error', async () => {
    const err = (await client({}, { QUALTRICS_API_TOKEN: 'wrong-qualtrics-token-1' })
      .whoami()
      .catch((e: unknown) => e)) as ProviderError;
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ provider: 'qualtrics', status: 401, retryable: false });
    expect(err.requestId).toBeTruthy();
    expect(`${String(err)} ${JSON.stringify(err)}`).not.toContain('wrong-qualtrics-token-1');
  });

  it('lists directories', async () => {
    const dirs = await collectAll(client().listDirectories());
    expect(dirs.map((d) => d.directoryId)).toContain(dir);
  });

  it('switches to the home host named by the proxied notice', async () => {
    const home = new URL(sb.urls.qualtrics).host;
    sb.qualtrics.configure({ homeHost: home });
    const notices: string[] = [];
    const port = new URL(sb.urls.qualtrics).port;
    const c = client({ onNotice: (n) => notices.push(n) }, { QUALTRICS_BASE_URL: `http://localhost:${port}` });
    await c.whoami();
    expect(notices).toHaveLength(1);
    expect(c.baseUrl).toBe(`http://${home}/API/v3`);
    await c.whoami();
    expect(notices).toHaveLength(1);
  });

  it('retries an export refused on a proxied host once on the home host', async () => {
    const home = new URL(sb.urls.qualtrics).host;
    sb.qualtrics.configure({ homeHost: home, rejectProxiedExports: true });
    const survey = seedSurvey();
    const port = new URL(sb.urls.qualtrics).port;
    const c = client({}, { QUALTRICS_BASE_URL: `http://localhost:${port}` });
    const started = await c.startResponseExport(survey, { format: 'json' });
    expect(started.progressId).toMatch(/^ES_/);
    expect(counter.count('response_exports.start')).toBe(2);
    expect(c.baseUrl).toBe(`http://${home}/API/v3`);
  });
});

describe('mailing lists and contacts', () => {
  it('creates, reads, renames, lists and deletes a mailing list', async () => {
    const c = client();
    const { id } = await c.createMailingList(dir, { name: 'Post purchase wave 1' });
    expect(id).toMatch(/^CG_/);
    expect(await c.getMailingList(dir, id)).toMatchObject({ mailingListId: id, name: 'Post purchase wave 1' });
    await c.updateMailingList(dir, id, { name: 'Post purchase wave 2' });
    expect(sb.qualtrics.listMailingLists(dir).find((l) => l.mailingListId === id)?.name).toBe('Post purchase wave 2');
    expect((await collectAll(c.listMailingLists(dir))).map((l) => l.mailingListId)).toContain(id);
    expect(await c.deleteMailingList(dir, id)).toBe(true);
    expect(await c.deleteMailingList(dir, id)).toBe(false);
    expect(await c.getMailingList(dir, id)).toBeUndefined();
  });

  it('manages contacts and pages through them 50 at a time', async () => {
    const c = client();
    const { id: list } = await c.createMailingList(dir, { name: 'Contacts' });
    const created = [];
    for (let i = 0; i < 55; i++) {
      created.push(await c.createMailingListContact(dir, list, { email: `p${i}@example.com`, extRef: `cust-${i}`, embeddedData: { tier: 'gold' } }));
    }
    expect(created[0]).toMatchObject({ id: expect.stringMatching(/^CID_/), contactLookupId: expect.stringMatching(/^CGC_/) });
    const before = counter.count('mailing_list_contacts.list');
    const listed = await collectAll(c.listMailingListContacts(dir, list, { includeEmbedded: true }));
    expect(listed).toHaveLength(55);
    expect(counter.count('mailing_list_contacts.list') - before).toBe(2);
    expect(listed[0]!.embeddedData).toMatchObject({ tier: 'gold' });

    const first = created[0]!.id;
    await c.updateMailingListContact(dir, list, first, { firstName: 'Ada' });
    expect(await c.getMailingListContact(dir, list, first)).toMatchObject({ contactId: first, firstName: 'Ada', email: 'p0@example.com' });
    expect(await c.deleteMailingListContact(dir, list, first)).toBe(true);
    expect(sb.qualtrics.contacts(list)).toHaveLength(54);
    expect(await c.getMailingListContact(dir, list, first)).toBeUndefined();
  });

  it('reports a validation error with the service code', async () => {
    const err = (await client()
      .createMailingListContact(dir, 'CG_doesnotexist', { email: 'x@example.com' })
      .catch((e: unknown) => e)) as ProviderError;
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.status).toBeGreaterThanOrEqual(400);
    expect(err.status).toBeLessThan(500);
    expect(err.code).toBeTruthy();
    expect(err.retryable).toBe(false);
  });

  it('imports transaction contacts in bulk and polls the import to completion', async () => {
    const c = client({ timer: new ManualTimer(Date.now()) });
    const { id: list } = await c.createMailingList(dir, { name: 'Bulk' });
    const started = await c.importTransactionContacts(dir, list, {
      contacts: Array.from({ length: 12 }, (_, i) => ({ email: `bulk${i}@example.com`, extRef: `b-${i}`, transactionData: { order_id: `o-${i}` } })),
      transactionMeta: { batchId: 'BT_wave1', fields: ['order_id'] },
    });
    expect(started.id).toBeTruthy();
    const done = await c.waitForTransactionContactsImport(dir, list, started.id, { pollIntervalMs: 10 });
    expect(done.status).toBe('complete');
    expect(sb.qualtrics.contacts(list)).toHaveLength(12);
  });
});

describe('distributions', () => {
  async function listWithContact(c: QualtricsClient): Promise<string> {
    const { id } = await c.createMailingList(dir, { name: 'Invitees' });
    await c.createMailingListContact(dir, id, { email: 'invitee@example.com' });
    return id;
  }

  const input = (surveyId: string, mailingListId: string): DistributionInput => ({
    message: { libraryId: 'UR_sandbox', messageId: 'MS_invite' },
    recipients: { mailingListId },
    header: { fromName: 'Acme', fromEmail: 'noreply@example.com', subject: 'Tell us' },
    surveyLink: { surveyId, expirationDate: inFuture(3), type: 'Individual' },
    sendDate: inFuture(1),
  });

  it('creates a distribution with an expiration, lists and reads it', async () => {
    const c = client();
    const survey = seedSurvey();
    const list = await listWithContact(c);
    const { id } = await c.createDistribution(input(survey, list));
    expect(id).toMatch(/^EMD_/);
    expect(sb.qualtrics.distributions(survey)).toHaveLength(1);
    expect((await collectAll(c.listDistributions(survey))).map((d) => d.id)).toEqual([id]);
    const got = await c.getDistribution(id, survey);
    expect(got?.id).toBe(id);
    expect(await c.getDistribution('EMD_missing', survey)).toBeUndefined();
  });

  it('never sends a distribution twice after a lost answer', async () => {
    const c = client();
    const survey = seedSurvey();
    const list = await listWithContact(c);
    sb.faults.set({ dropAfterApplyRate: 1, service: 'qualtrics', pathPattern: '/distributions$' });
    const err = (await c.createDistribution(input(survey, list)).catch((e: unknown) => e)) as ProviderError;
    expect(err).toMatchObject({ outcome: 'unknown', retryable: false });
    expect(counter.count('distributions.create')).toBe(1);
    sb.faults.clear();
    expect(sb.qualtrics.distributions(survey)).toHaveLength(1);
  });

  it('retries a distribution create on 429, which proves it was not processed', async () => {
    const c = client();
    const survey = seedSurvey();
    const list = await listWithContact(c);
    sb.faults.set({ storm429: { count: 2, retryAfterSeconds: 0 }, service: 'qualtrics', pathPattern: '/distributions$' });
    await c.createDistribution(input(survey, list));
    expect(counter.count('distributions.create')).toBe(3);
    expect(sb.qualtrics.distributions(survey)).toHaveLength(1);
  });
});

describe('surveys and response exports', () => {
  it('lists and reads surveys and definitions', async () => {
    const c = client();
    const survey = seedSurvey();
    expect((await collectAll(c.listSurveys())).map((s) => s.id)).toContain(survey);
    const got = await c.getSurvey(survey);
    expect(got?.name).toBe('Post purchase');
    expect(Object.keys(got?.questions ?? {})).toEqual(expect.arrayContaining(['QID1', 'QID2']));
    expect((await c.getSurveyDefinition(survey))?.SurveyID).toBe(survey);
    expect(await c.getSurvey('SV_missing')).toBeUndefined();
  });

  it('exports responses as JSON and CSV, and reads single responses', async () => {
    const c = client({ timer: new ManualTimer(Date.now()) });
    const survey = seedSurvey();
    const ids = sb.qualtrics.seedResponses(survey, [
      { recordedDate: '2030-01-02T10:00:00Z', values: { QID1: 1, QID2: 'late box' }, embeddedData: { order_id: 'o-1' } },
      { recordedDate: '2030-01-03T10:00:00Z', values: { QID1: 3 }, embeddedData: { order_id: 'o-2' } },
    ]);
    const json = await c.exportResponses(survey, { format: 'json' }, { pollIntervalMs: 10 });
    if (json.format !== 'json') throw new Error('expected a JSON export');
    expect(json.responses.map((r) => r.responseId).sort()).toEqual([...ids].sort());
    const first = json.responses.find((r) => r.responseId === ids[0])!;
    expect(first.values).toMatchObject({ QID1: 1, QID2_TEXT: 'late box', order_id: 'o-1' });

    const csv = await c.exportResponses(survey, { format: 'csv' }, { pollIntervalMs: 10 });
    if (csv.format !== 'csv') throw new Error('expected a CSV export');
    expect(csv.rows).toHaveLength(2);
    expect(csv.rows.map((r) => r.QID1).sort()).toEqual(['1', '3']);

    expect((await c.getResponse(survey, ids[1]!))?.values).toMatchObject({ QID1: 3 });
    expect(await c.getResponse(survey, 'R_missing')).toBeUndefined();
  });

  it('starts a new export when one fails on the Qualtrics side', async () => {
    const c = client({ timer: new ManualTimer(Date.now()) });
    const survey = seedSurvey();
    sb.qualtrics.seedResponses(survey, [{ recordedDate: '2030-01-02T10:00:00Z', values: { QID1: 2 } }]);
    sb.qualtrics.configure({ exportFailuresPending: 1 });
    const out = await c.exportResponses(survey, { format: 'json' }, { pollIntervalMs: 10 });
    expect(out.format === 'json' && out.responses).toHaveLength(1);
    expect(counter.count('response_exports.start')).toBe(2);
  });
});

describe('event subscriptions', () => {
  it('creates, lists, reads and deletes a subscription', async () => {
    const c = client();
    const survey = seedSurvey();
    const { id } = await c.createEventSubscription({
      topics: `surveyengine.completedResponse.${survey}`,
      publicationUrl: 'https://hooks.example.com/qualtrics',
      encrypt: false,
    });
    expect(sb.qualtrics.eventSubscriptions().map((s) => s.id)).toEqual([id]);
    expect((await collectAll(c.listEventSubscriptions())).map((s) => s.id)).toEqual([id]);
    expect(await c.getEventSubscription(id)).toMatchObject({ id, publicationUrl: 'https://hooks.example.com/qualtrics' });
    expect(await c.deleteEventSubscription(id)).toBe(true);
    expect(await c.deleteEventSubscription(id)).toBe(false);
    expect(sb.qualtrics.eventSubscriptions()).toHaveLength(0);
  });
});

describe('throttling and faults', () => {
  it('waits exactly the Retry-After of a 429 storm', async () => {
    const timer = new ManualTimer(Date.now());
    sb.faults.set({ storm429: { count: 2, retryAfterSeconds: 3 }, service: 'qualtrics' });
    await client({ timer, limiters: new LimiterRegistry(timer) }).whoami();
    expect(timer.sleeps).toEqual([3000, 3000]);
    expect(counter.byStatus.get('429')).toBe(2);
  });

  it('retries 5xx bursts on reads and then succeeds', async () => {
    sb.faults.set({ burst5xx: 2, service: 'qualtrics' });
    expect((await client().whoami()).brandId).toBeTruthy();
    expect(counter.total).toBe(3);
  });

  it('keeps idempotent contact updates exact through errors and drops', async () => {
    const c = client({ retry: { maxAttempts: 20, baseDelayMs: 1, maxDelayMs: 4 } });
    const { id: list } = await c.createMailingList(dir, { name: 'Faulty' });
    const contacts = [];
    for (let i = 0; i < 15; i++) contacts.push(await c.createMailingListContact(dir, list, { email: `f${i}@example.com` }));
    sb.faults.set({ errorRate: 0.3, dropRate: 0.1, dropAfterApplyRate: 0.15, service: 'qualtrics' });
    await Promise.all(contacts.map((ct, i) => c.updateMailingListContact(dir, list, ct.id, { embeddedData: { n: String(i) } })));
    const listed = await collectAll(c.listMailingListContacts(dir, list, { includeEmbedded: true }));
    sb.faults.clear();
    expect(listed).toHaveLength(15);
    expect(sb.qualtrics.contacts(list).map((ct) => ct.embeddedData.n).sort()).toEqual(contacts.map((_, i) => String(i)).sort());
    expect(counter.retries).toBeGreaterThan(0);
  });
});
