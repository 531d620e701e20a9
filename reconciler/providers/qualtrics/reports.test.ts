/**
 * What Qualtrics reports about its emails, read by the client from the sandbox emulator: a list's
 * bounced contacts (C7) across pages and since a date, a contact's email history (K7) with each
 * distribution's result, and the directory search (K5) that pages by `skipToken`.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createSandbox, type RunningSandbox } from '../../sandbox/index.ts';
import { RequestCounter } from '../http/http-client.ts';
import { LimiterRegistry } from '../http/rate-limiter.ts';
import { collectAll, QualtricsClient, qualtricsConfigFromEnv } from './client.ts';

let sb: RunningSandbox;
let dir: string;
let counter: RequestCounter;

beforeAll(async () => {
  sb = await createSandbox({ port: 0, seed: 7, retryAfterSeconds: 0 });
});
afterAll(async () => {
  await sb.close();
});
beforeEach(() => {
  sb.qualtrics.reset();
  dir = sb.qualtrics.defaultDirectoryId();
  counter = new RequestCounter();
});

function client(): QualtricsClient {
  return new QualtricsClient(qualtricsConfigFromEnv(sb.env, { limiters: new LimiterRegistry(), retry: { baseDelayMs: 1, maxDelayMs: 4 }, onRequest: counter.hook }));
}

const inFuture = (days: number): string => new Date(Date.now() + days * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z');

async function listWith(q: QualtricsClient, people: Array<{ extRef: string; email: string }>): Promise<string> {
  const { id } = await q.createMailingList(dir, { name: 'ui list' });
  for (const p of people) await q.createMailingListContact(dir, id, p);
  return id;
}

async function distribute(q: QualtricsClient, mailingListId: string, surveyId: string, sendInDays: number): Promise<string> {
  const { id } = await q.createDistribution({
    message: { libraryId: 'UR_1', messageId: 'MS_1' },
    recipients: { mailingListId },
    header: { fromEmail: 'cx@example.com', fromName: 'CX', subject: 'Tell us' },
    surveyLink: { surveyId, expirationDate: inFuture(sendInDays + 3), type: 'Individual' },
    sendDate: inFuture(sendInDays),
  });
  return id;
}

describe('bounced contacts (C7)', () => {
  it('lists the bounced contacts of a list across pages, each with the address that bounced, and only those since a date', async () => {
    const q = client();
    const people = Array.from({ length: 7 }, (_, i) => ({ extRef: `p${i}`, email: `p${i}@example.com` }));
    const list = await listWith(q, people);
    for (const i of [1, 2, 4, 6]) sb.qualtrics.bounce({ extRef: `p${i}`, at: i < 4 ? '2027-01-01T00:00:00Z' : '2027-02-01T00:00:00Z' });
    counter = new RequestCounter();
    const c2 = new QualtricsClient(qualtricsConfigFromEnv(sb.env, { limiters: new LimiterRegistry(), onRequest: counter.hook }));
    const all = await collectAll(c2.listBouncedContacts(dir, list, { pageSize: 3 }));
    expect(all.map((c) => [c.extRef, c.email])).toEqual([
      ['p1', 'p1@example.com'],
      ['p2', 'p2@example.com'],
      ['p4', 'p4@example.com'],
      ['p6', 'p6@example.com'],
    ]);
    expect(counter.total).toBe(2);
    const recent = await collectAll(q.listBouncedContacts(dir, list, { since: '2027-01-15T00:00:00Z' }));
    expect(recent.map((c) => c.extRef)).toEqual(['p4', 'p6']);
  });

  it('bounces an undeliverable address at its first send, and a new address clears the bounce', async () => {
    const q = client();
    const survey = sb.qualtrics.seedSurvey({ name: 'S', questions: [{ text: 'Q', type: 'text' }] });
    const list = await listWith(q, [
      { extRef: 'ok', email: 'ok@example.com' },
      { extRef: 'gone', email: 'gone@mailbox.invalid' },
    ]);
    expect(await collectAll(q.listBouncedContacts(dir, list))).toEqual([]);
    await distribute(q, list, survey, 1);
    const bounced = await collectAll(q.listBouncedContacts(dir, list));
    expect(bounced.map((c) => c.extRef)).toEqual(['gone']);
    // The person gives a working address: the bounce was the old address's.
    const gone = bounced[0]!;
    await q.updateMailingListContact(dir, list, gone.contactId, { email: 'gone@example.com' });
    expect(await collectAll(q.listBouncedContacts(dir, list))).toEqual([]);
  });

  it('lists the opted-out contacts of a list (C8): out of the list, or of the whole directory', async () => {
    const q = client();
    const list = await listWith(q, [
      { extRef: 'stays', email: 'stays@example.com' },
      { extRef: 'list_only', email: 'list_only@example.com' },
      { extRef: 'everything', email: 'everything@example.com' },
    ]);
    const byRef = new Map(sb.qualtrics.contacts(list).map((c) => [c.extRef, c.contactId]));
    await q.updateMailingListContact(dir, list, byRef.get('list_only')!, { unsubscribed: true });
    await q.http.request({ operation: 'test', method: 'PUT', path: `/directories/${dir}/contacts/${byRef.get('everything')}`, body: { unsubscribed: true } });
    const out = await collectAll(q.listOptedOutContacts(dir, list));
    expect(out.map((c) => [c.extRef, c.directoryUnsubscribed])).toEqual([
      ['list_only', false],
      ['everything', true],
    ]);
  });

  it('refuses a page size over the documented 100 and a since that is not a date, before calling', async () => {
    const q = client();
    expect(() => q.listBouncedContacts(dir, 'CG_x', { pageSize: 101 })).toThrow(/page size/);
    expect(() => q.listBouncedContacts(dir, 'CG_x', { since: 'yesterday' })).toThrow(/since/);
    expect(counter.total).toBe(0);
  });
});

describe('email history (K7) and contact search (K5)', () => {
  it('reports each invite with its survey, date and result: Success, Blocked when opted out, Bounce', async () => {
    const q = client();
    const survey = sb.qualtrics.seedSurvey({ name: 'S', questions: [{ text: 'Q', type: 'text' }] });
    const list = await listWith(q, [
      { extRef: 'a', email: 'a@example.com' },
      { extRef: 'b', email: 'b@example.com' },
      { extRef: 'c', email: 'c@nowhere.invalid' },
    ]);
    const contacts = sb.qualtrics.contacts(list);
    const b = contacts.find((c) => c.extRef === 'b')!;
    await q.updateMailingListContact(dir, list, b.contactId, { unsubscribed: true });
    const first = await distribute(q, list, survey, 1);
    const second = await distribute(q, list, survey, 2);
    const history = async (extRef: string) =>
      (await collectAll(q.contactEmailHistory(dir, contacts.find((c) => c.extRef === extRef)!.contactId, { pageSize: 1 }))).map((e) => [e.distributionId, e.type, e.result, e.surveyId]);
    expect(await history('a')).toEqual([
      [first, 'Invite', 'Success', survey],
      [second, 'Invite', 'Success', survey],
    ]);
    expect(await history('b')).toEqual([
      [first, 'Invite', 'Blocked', survey],
      [second, 'Invite', 'Blocked', survey],
    ]);
    expect(await history('c')).toEqual([
      [first, 'Invite', 'Bounce', survey],
      [second, 'Invite', 'Bounce', survey],
    ]);
    const [entry] = await collectAll(q.contactEmailHistory(dir, contacts[0]!.contactId));
    expect(entry!.date).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    expect(Date.parse(`${entry!.date!.replace(' ', 'T')}Z`)).toBe(Date.parse(sb.qualtrics.distributions(survey)[0]!.sendDate));
  });

  it('finds contacts by extRef or email with an or-filter, following skipToken', async () => {
    const q = client();
    await listWith(q, Array.from({ length: 5 }, (_, i) => ({ extRef: `s${i}`, email: `s${i}@example.com` })));
    counter = new RequestCounter();
    const c2 = new QualtricsClient(qualtricsConfigFromEnv(sb.env, { limiters: new LimiterRegistry(), onRequest: counter.hook }));
    const hits = [];
    for await (const h of c2.searchDirectoryContacts(
      dir,
      {
        conjunction: 'or',
        filters: [
          { filterType: 'extRef', comparison: 'eq', value: 's0' },
          { filterType: 'email', comparison: 'eq', value: 'S3@example.com' },
          { filterType: 'extRef', comparison: 'eq', value: 's4' },
        ],
      },
      { pageSize: 2 },
    )) hits.push(h);
    expect(hits.map((h) => h.externalDataReference).sort()).toEqual(['s0', 's3', 's4']);
    expect(counter.total).toBe(2);
  });
});
