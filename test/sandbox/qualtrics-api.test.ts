/**
 * The Qualtrics emulator exercised through `handle()` with real-looking requests: envelope and auth,
 * datacenter notices, XM Directory (lists, contacts, paging, bulk import), distributions, event
 * subscriptions, rate limits, snapshot/restore and the admin seeding route. Answers are checked against
 * zod schemas of the documented shapes, written here independently of the emulator's own types.
 */
import { createHmac } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { SandboxResponse, ServiceFaults } from '../../reconciler/sandbox/common/types.ts';
import { createQualtricsEmulator, type QualtricsEmulator } from '../../reconciler/sandbox/qualtrics/index.ts';

const TOKEN = 'qa-token-7f3c';
const ORIGIN = 'http://127.0.0.1:4010';

const meta = z
  .object({
    httpStatus: z.string().regex(/^\d{3} - \S.*$/),
    requestId: z.uuid(),
    notice: z.string().optional(),
  })
  .strict();
const okEnvelope = <T extends z.ZodType>(result: T) => z.object({ result, meta }).strict();
const metaOnly = z.object({ meta }).strict();
const errorEnvelope = z
  .object({
    meta: z
      .object({
        httpStatus: z.string().regex(/^\d{3} - \S.*$/),
        requestId: z.uuid(),
        notice: z.string().optional(),
        error: z.object({ errorMessage: z.string().min(1), errorCode: z.string().min(1) }).strict(),
      })
      .strict(),
  })
  .strict();

const idOf = (prefix: string) => z.string().regex(new RegExp(`^${prefix}_[A-Za-z0-9]{15}$`));
const nextPage = z.url().nullable();
const epochMs = z.number().int().positive();

const whoamiResult = z.object({
  brandId: z.string(),
  userId: idOf('UR'),
  userName: z.string(),
  accountType: z.string(),
  firstName: z.string(),
  lastName: z.string(),
  email: z.string(),
  datacenter: z.string(),
});
const directoryElement = z.object({
  directoryId: idOf('POOL'),
  name: z.string().nullable(),
  contactCount: z.number().int(),
  isDefault: z.boolean(),
  deduplicationCriteria: z.object({
    email: z.boolean(),
    firstName: z.boolean(),
    lastName: z.boolean(),
    externalDataReference: z.boolean(),
    phone: z.boolean(),
  }),
});
const mailingList = z.object({
  mailingListId: idOf('CG'),
  name: z.string(),
  ownerId: z.string(),
  creationDate: epochMs,
  lastModifiedDate: epochMs,
  contactCount: z.number().int(),
});
const listContact = z.object({
  contactId: idOf('CID'),
  firstName: z.string().nullable(),
  lastName: z.string().nullable(),
  email: z.string().nullable(),
  phone: z.string().nullable(),
  extRef: z.string().nullable(),
  language: z.string().nullable(),
  unsubscribed: z.boolean(),
  contactLookupId: idOf('CGC'),
  embeddedData: z.record(z.string(), z.string()).optional(),
});
const fullListContact = z.object({
  contactId: idOf('CID'),
  creationDate: epochMs,
  lastModified: epochMs,
  email: z.string().nullable(),
  emailDomain: z.string().nullable(),
  embeddedData: z.record(z.string(), z.string()),
  directoryUnsubscribed: z.boolean(),
  directoryUnsubscribeDate: z.string().nullable(),
  mailingListUnsubscribed: z.boolean(),
  mailingListUnsubscribeDate: epochMs.nullable(),
  contactLookupId: idOf('CGC'),
  privateEmbeddedData: z.record(z.string(), z.string()),
});
const importStarted = z.object({
  id: z.string().min(1),
  contacts: z.object({ unprocessed: z.array(z.unknown()) }),
  tracking: z.object({ url: z.url() }),
  status: z.string(),
});
const importProgress = z.object({
  percentComplete: z.number().min(0).max(100),
  contacts: z.object({ count: z.object({ added: z.number(), updated: z.number(), failed: z.number() }) }),
  transactions: z.object({ count: z.object({ created: z.number() }) }),
  status: z.enum(['inProgress', 'complete', 'failed']),
});
const distribution = z.object({
  id: idOf('EMD'),
  parentDistributionId: z.string().nullable(),
  ownerId: z.string(),
  organizationId: z.string(),
  requestStatus: z.string(),
  requestType: z.string(),
  sendDate: z.iso.datetime(),
  createdDate: z.iso.datetime(),
  modifiedDate: z.iso.datetime(),
  headers: z.object({ fromEmail: z.string(), fromName: z.string(), replyToEmail: z.string().nullable(), subject: z.string() }),
  recipients: z.object({ mailingListId: z.string().nullable(), contactId: z.string().nullable() }),
  message: z.object({ libraryId: z.string().nullable(), messageId: z.string().nullable(), messageType: z.string() }),
  surveyLink: z.object({ surveyId: idOf('SV'), expirationDate: z.iso.datetime().nullable(), linkType: z.string() }),
  stats: z.object({
    sent: z.number(),
    failed: z.number(),
    started: z.number(),
    bounced: z.number(),
    opened: z.number(),
    skipped: z.number(),
    finished: z.number(),
    complaints: z.number(),
    blocked: z.number(),
  }),
});
const subscription = z.object({ id: z.string().min(1), topics: z.string(), publicationUrl: z.url(), encrypt: z.boolean() });

interface CallOptions {
  body?: unknown;
  rawBody?: string;
  token?: string | null;
  headers?: Record<string, string>;
  faults?: ServiceFaults;
}

function caller(emu: QualtricsEmulator, origin = ORIGIN) {
  return (method: string, pathOrUrl: string, opts: CallOptions = {}): Promise<SandboxResponse> => {
    const url = new URL(pathOrUrl.startsWith('http') ? pathOrUrl : `${origin}${pathOrUrl.startsWith('/__') ? '' : '/API/v3'}${pathOrUrl}`);
    const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
    if (opts.token !== null) headers['x-api-token'] = opts.token ?? TOKEN;
    let body = Buffer.alloc(0);
    if (opts.rawBody !== undefined) body = Buffer.from(opts.rawBody);
    else if (opts.body !== undefined) {
      body = Buffer.from(JSON.stringify(opts.body));
      headers['content-type'] ??= 'application/json';
    }
    return emu.handle({ method, url, headers, body }, opts.faults ?? {});
  };
}

function expectError(res: SandboxResponse, status: number, code?: string): z.infer<typeof errorEnvelope> {
  expect(res.status).toBe(status);
  const parsed = errorEnvelope.parse(res.json);
  expect(parsed.meta.httpStatus.startsWith(`${status} - `)).toBe(true);
  if (code) expect(parsed.meta.error.errorCode).toBe(code);
  return parsed;
}

const START = Date.parse('2025-03-01T12:00:00Z');

describe('Qualtrics emulator over handle()', () => {
  let nowMs = START;
  let emu: QualtricsEmulator;
  let call: ReturnType<typeof caller>;
  let dir: string;

  beforeEach(() => {
    nowMs = START;
    emu = createQualtricsEmulator({ apiToken: TOKEN, seed: 42, now: () => new Date(nowMs) });
    call = caller(emu);
    dir = emu.defaultDirectoryId();
  });

  async function createList(name = 'Post-purchase wave'): Promise<string> {
    const res = await call('POST', `/directories/${dir}/mailinglists`, { body: { name } });
    return okEnvelope(z.object({ id: idOf('CG') })).parse(res.json).result.id;
  }

  async function addContact(list: string, body: Record<string, unknown>): Promise<{ id: string; contactLookupId: string }> {
    const res = await call('POST', `/directories/${dir}/mailinglists/${list}/contacts`, { body });
    expect(res.status).toBe(200);
    return okEnvelope(z.object({ id: idOf('CID'), contactLookupId: idOf('CGC') })).parse(res.json).result;
  }

  describe('envelope, auth and routing', () => {
    it('answers whoami with the brand, user and datacenter inside the envelope', async () => {
      const res = await call('GET', '/whoami');
      expect(res.status).toBe(200);
      const body = okEnvelope(whoamiResult).parse(res.json);
      expect(body.meta.httpStatus).toBe('200 - OK');
      expect(body.meta.notice).toBeUndefined();
      expect(body.result).toMatchObject({ brandId: 'tidemark', accountType: 'UT_BRANDADMIN', datacenter: 'iad1' });
    });

    it('refuses a missing token and a wrong token with distinct codes and no result', async () => {
      const missing = expectError(await call('GET', '/whoami', { token: null }), 400, 'ATP_2');
      expect(missing.meta.error.errorMessage).toMatch(/none provided/);
      expectError(await call('GET', '/whoami', { token: 'nope' }), 401, 'DCD_7');
      expectError(await call('GET', `/directories/${dir}/mailinglists`, { token: `${TOKEN}x` }), 401, 'DCD_7');
    });

    it('answers unknown routes with 404 before checking credentials', async () => {
      const res = await call('GET', '/brands', { token: null });
      expect(expectError(res, 404).meta.error.errorMessage).toBe('The requested resource does not exist.');
      expectError(await call('PATCH', '/whoami'), 404);
      expectError(await call('GET', '/other/whoami', {}), 404);
    });

    it('refuses bodies that are not JSON, unknown keys (case sensitive) and oversized bodies', async () => {
      expectError(await call('POST', `/directories/${dir}/mailinglists`, { rawBody: '{"name":', headers: { 'content-type': 'application/json' } }), 400);
      expectError(await call('POST', `/directories/${dir}/mailinglists`, { rawBody: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 400);
      const wrongCase = expectError(await call('POST', `/directories/${dir}/mailinglists`, { body: { Name: 'x' } }), 400, 'RP_9');
      expect(wrongCase.meta.error.errorMessage).toBe('Unexpected json key provided: Name');
      emu.configure({ maxBodyBytes: 64 });
      expectError(await call('POST', `/directories/${dir}/mailinglists`, { body: { name: 'x'.repeat(100) } }), 413);
    });
  });

  describe('datacenter routing', () => {
    it('marks requests through a non-home host as proxied and names the home host', async () => {
      emu.configure({ homeHost: '127.0.0.1:4010' });
      const home = okEnvelope(whoamiResult).parse((await call('GET', '/whoami')).json);
      expect(home.meta.notice).toBeUndefined();
      const other = caller(emu, 'http://localhost:4010');
      const proxied = okEnvelope(whoamiResult).parse((await other('GET', '/whoami')).json);
      expect(proxied.meta.notice).toBe('Request proxied. For faster response times, use this host instead: 127.0.0.1:4010');
      const sv = emu.seedSurvey({ name: 'S' });
      const refused = expectError(await other('POST', `/surveys/${sv}/export-responses`, { body: { format: 'json' } }), 400, 'DC_1');
      expect(refused.meta.notice).toContain('127.0.0.1:4010');
      expect((await call('POST', `/surveys/${sv}/export-responses`, { body: { format: 'json' } })).status).toBe(200);
    });

    it('treats a <dc>.qualtrics.com host of another datacenter as proxied', async () => {
      const wrongDc = caller(emu, 'https://acme.sjc1.qualtrics.com');
      const res = okEnvelope(whoamiResult).parse((await wrongDc('GET', '/whoami')).json);
      expect(res.meta.notice).toBe('Request proxied. For faster response times, use this host instead: iad1.qualtrics.com');
      const rightDc = caller(emu, 'https://iad1.qualtrics.com');
      expect(okEnvelope(whoamiResult).parse((await rightDc('GET', '/whoami')).json).meta.notice).toBeUndefined();
    });
  });

  describe('directories and mailing lists', () => {
    it('lists the default directory', async () => {
      const body = okEnvelope(z.object({ elements: z.array(directoryElement), nextPage })).parse((await call('GET', '/directories')).json);
      expect(body.result.elements).toHaveLength(1);
      expect(body.result.elements[0]).toMatchObject({ directoryId: dir, isDefault: true });
      expect(body.result.nextPage).toBeNull();
    });

    it('creates, reads, lists, renames and deletes a mailing list', async () => {
      const id = await createList('Post-purchase wave');
      await addContact(id, { email: 'ana@example.com' });
      const got = okEnvelope(mailingList).parse((await call('GET', `/directories/${dir}/mailinglists/${id}`)).json);
      expect(got.result).toMatchObject({ mailingListId: id, name: 'Post-purchase wave', contactCount: 1, creationDate: START });

      const listSchema = okEnvelope(z.object({ elements: z.array(mailingList), nextPage }));
      const withoutCount = listSchema.parse((await call('GET', `/directories/${dir}/mailinglists`)).json);
      expect(withoutCount.result.elements.map((l) => [l.mailingListId, l.contactCount])).toEqual([[id, 0]]);
      const withCount = listSchema.parse((await call('GET', `/directories/${dir}/mailinglists?includeCount=true`)).json);
      expect(withCount.result.elements[0]?.contactCount).toBe(1);

      nowMs += 60_000;
      const put = await call('PUT', `/directories/${dir}/mailinglists/${id}`, { body: { name: 'Renamed' } });
      expect(put.status).toBe(200);
      metaOnly.parse(put.json);
      const renamed = okEnvelope(mailingList).parse((await call('GET', `/directories/${dir}/mailinglists/${id}`)).json);
      expect(renamed.result).toMatchObject({ name: 'Renamed', lastModifiedDate: START + 60_000 });

      metaOnly.parse((await call('DELETE', `/directories/${dir}/mailinglists/${id}`)).json);
      expectError(await call('GET', `/directories/${dir}/mailinglists/${id}`), 404);
      expect(emu.listMailingLists()).toEqual([]);
    });

    it('validates mailing list bodies and references', async () => {
      expectError(await call('POST', `/directories/${dir}/mailinglists`, { body: {} }), 400, 'RP_10');
      expectError(await call('POST', `/directories/${dir}/mailinglists`, { body: { name: 'x'.repeat(101) } }), 400, 'RP_1');
      expectError(await call('POST', `/directories/${dir}/mailinglists`, { body: { name: 'ok', ownerId: 'bob' } }), 400, 'RP_1');
      expectError(await call('POST', `/directories/POOL_000000000000000/mailinglists`, { body: { name: 'ok' } }), 404);
      expectError(await call('PUT', `/directories/${dir}/mailinglists/CG_000000000000000`, { body: { name: 'x' } }), 404);
      expectError(await call('GET', `/directories/${dir}/mailinglists`, { token: null }), 400);
    });
  });

  describe('contacts in a mailing list', () => {
    it('pages 120 contacts 50 at a time by following nextPage verbatim', async () => {
      const list = await createList();
      const created: string[] = [];
      for (let i = 0; i < 120; i++) created.push((await addContact(list, { email: `p${i}@example.com`, extRef: `cust-${i}` })).id);

      const pageSchema = okEnvelope(z.object({ elements: z.array(listContact), nextPage }));
      const seen: string[] = [];
      const sizes: number[] = [];
      let url: string | null = `${ORIGIN}/API/v3/directories/${dir}/mailinglists/${list}/contacts?pageSize=100`;
      while (url) {
        const page = pageSchema.parse((await call('GET', url)).json);
        sizes.push(page.result.elements.length);
        seen.push(...page.result.elements.map((c) => c.contactId));
        url = page.result.nextPage;
        if (url) {
          expect(url.startsWith(`${ORIGIN}/API/v3/directories/${dir}/mailinglists/${list}/contacts?`)).toBe(true);
          expect(new URL(url).searchParams.get('skipToken')).toBeTruthy();
        }
      }
      expect(sizes).toEqual([50, 50, 20]);
      expect(seen).toEqual(created);
    });

    it('keeps paging correct when contacts are deleted between pages', async () => {
      const list = await createList();
      const ids: string[] = [];
      for (let i = 0; i < 60; i++) ids.push((await addContact(list, { email: `d${i}@example.com` })).id);
      const pageSchema = okEnvelope(z.object({ elements: z.array(listContact), nextPage }));
      const first = pageSchema.parse((await call('GET', `/directories/${dir}/mailinglists/${list}/contacts`)).json);
      await call('DELETE', `/directories/${dir}/mailinglists/${list}/contacts/${ids[3]}`);
      const second = pageSchema.parse((await call('GET', first.result.nextPage ?? 'missing')).json);
      expect(second.result.elements.map((c) => c.contactId)).toEqual(ids.slice(50));
      expect(second.result.nextPage).toBeNull();
    });

    it('refuses a skip token from another list', async () => {
      const a = await createList('A');
      const b = await createList('B');
      for (let i = 0; i < 51; i++) await addContact(a, { email: `a${i}@example.com` });
      const page = okEnvelope(z.object({ elements: z.array(listContact), nextPage })).parse(
        (await call('GET', `/directories/${dir}/mailinglists/${a}/contacts`)).json,
      );
      const token = new URL(page.result.nextPage ?? '').searchParams.get('skipToken') ?? '';
      expectError(await call('GET', `/directories/${dir}/mailinglists/${b}/contacts?skipToken=${encodeURIComponent(token)}`), 400);
      expectError(await call('GET', `/directories/${dir}/mailinglists/${a}/contacts?pageSize=abc`), 400);
    });

    it('creates, reads, updates and deletes a contact with embedded data', async () => {
      const list = await createList();
      const { id, contactLookupId } = await addContact(list, {
        firstName: 'Ana',
        lastName: 'Silva',
        email: 'Ana@Example.com',
        extRef: 'cust-1',
        language: 'en/US',
        embeddedData: { vip_tier: 'gold', order_count: '3' },
        privateEmbeddedData: { note: 'x' },
      });
      const path = `/directories/${dir}/mailinglists/${list}/contacts/${id}`;
      const got = okEnvelope(fullListContact).parse((await call('GET', path)).json).result;
      expect(got).toMatchObject({
        contactId: id,
        contactLookupId,
        emailDomain: 'example.com',
        embeddedData: { vip_tier: 'gold', order_count: '3' },
        privateEmbeddedData: { note: 'x' },
        mailingListUnsubscribed: false,
        mailingListUnsubscribeDate: null,
      });

      const listed = okEnvelope(z.object({ elements: z.array(listContact), nextPage })).parse(
        (await call('GET', `/directories/${dir}/mailinglists/${list}/contacts`)).json,
      );
      expect(listed.result.elements[0]?.embeddedData).toBeUndefined();
      const embedded = okEnvelope(z.object({ elements: z.array(listContact), nextPage })).parse(
        (await call('GET', `/directories/${dir}/mailinglists/${list}/contacts?includeEmbedded=true`)).json,
      );
      expect(embedded.result.elements[0]?.embeddedData).toEqual({ vip_tier: 'gold', order_count: '3' });

      nowMs += 1000;
      const put = await call('PUT', path, { body: { embeddedData: { order_count: '4' }, unsubscribed: true } });
      metaOnly.parse(put.json);
      const updated = okEnvelope(fullListContact).parse((await call('GET', path)).json).result;
      expect(updated.embeddedData).toEqual({ vip_tier: 'gold', order_count: '4' });
      expect(updated).toMatchObject({ mailingListUnsubscribed: true, mailingListUnsubscribeDate: START + 1000, lastModified: START + 1000 });

      metaOnly.parse((await call('DELETE', path)).json);
      expectError(await call('GET', path), 404);
      // Leaving the list keeps the directory contact.
      const dirContact = await call('GET', `/directories/${dir}/contacts/${id}`);
      expect(dirContact.status).toBe(200);
      expect(okEnvelope(z.object({ mailingListMembership: z.record(z.string(), z.unknown()) })).parse(dirContact.json).result.mailingListMembership).toEqual({});
    });

    it('validates contact bodies and references', async () => {
      const list = await createList();
      const base = `/directories/${dir}/mailinglists/${list}/contacts`;
      expectError(await call('POST', base, { body: { email: 'not-an-email' } }), 400, 'RP_1');
      expectError(await call('POST', base, { body: { email: 'a@b.co', embeddedData: { n: 3 } } }), 400, 'RP_1');
      expectError(await call('POST', base, { body: { email: 'a@b.co', unsubscribed: 'yes' } }), 400, 'RP_1');
      expectError(await call('POST', base, { body: { mail: 'a@b.co' } }), 400, 'RP_9');
      expectError(await call('GET', `${base}/CID_000000000000000`), 404);
      expectError(await call('PUT', `${base}/CID_000000000000000`, { body: { firstName: 'x' } }), 404);
      expectError(await call('DELETE', `${base}/CID_000000000000000`), 404);
      expectError(await call('GET', base, { token: 'wrong' }), 401);
    });
  });

  describe('bulk transaction-contacts import', () => {
    const importPath = (list: string) => `/directories/${dir}/mailinglists/${list}/transactioncontacts`;

    it('runs in the background, merges duplicates by email and creates contacts and transactions', async () => {
      const list = await createList();
      const existing = await addContact(list, { email: 'existing@example.com', firstName: 'Old' });
      const rows = [
        ...['a', 'b', 'c', 'd', 'e'].map((n) => ({
          email: `${n}@example.com`,
          extRef: `cust-${n}`,
          embeddedData: { vip_tier: n === 'a' ? 'gold' : 'none' },
          transactionData: { order_id: `o-${n}` },
        })),
        { email: 'EXISTING@example.com', firstName: 'New', transactionData: { order_id: 'o-x' } },
        { email: 'broken-at-example', transactionData: { order_id: 'o-y' } },
        { email: 'f@example.com', transactionData: { undeclared: '1' } },
        'not a contact',
      ];
      const res = await call('POST', importPath(list), {
        body: { transactionMeta: { batchId: 'BT_abcdefghijklmno', fields: ['order_id'] }, contacts: rows },
      });
      expect(res.status).toBe(202);
      const started = okEnvelope(importStarted).parse(res.json);
      expect(started.meta.httpStatus).toBe('202 - Accepted');
      expect(started.result.status).toBe('inProgress');
      expect(started.result.contacts.unprocessed).toHaveLength(2);
      expect(started.result.tracking.url).toBe(`${ORIGIN}/API/v3${importPath(list)}/${started.result.id}`);

      // Nothing is written before the job runs.
      expect(emu.contacts(list)).toHaveLength(1);
      const progress: z.infer<typeof importProgress>[] = [];
      for (let i = 0; i < 10; i++) {
        const p = okEnvelope(importProgress).parse((await call('GET', started.result.tracking.url)).json).result;
        progress.push(p);
        if (p.status === 'complete') break;
      }
      expect(progress.map((p) => p.status)).toEqual(['inProgress', 'inProgress', 'complete']);
      const percents = progress.map((p) => p.percentComplete);
      expect(percents).toEqual([...percents].sort((x, y) => x - y));
      expect(percents.at(-1)).toBe(100);
      expect(progress.at(-1)).toMatchObject({
        contacts: { count: { added: 5, updated: 1, failed: 1 } },
        transactions: { count: { created: 6 } },
      });
      const summary = okEnvelope(importProgress.extend({ invalidEmails: z.array(z.string()) })).parse(
        (await call('GET', `${importPath(list)}/${started.result.id}/summary`)).json,
      );
      expect(summary.result.invalidEmails).toEqual(['broken-at-example']);

      const listed = okEnvelope(z.object({ elements: z.array(listContact), nextPage })).parse(
        (await call('GET', `/directories/${dir}/mailinglists/${list}/contacts?includeEmbedded=true`)).json,
      );
      // The merged contact takes the imported values, the email's spelling included.
      expect(listed.result.elements.map((c) => c.email)).toEqual([
        'EXISTING@example.com',
        'a@example.com',
        'b@example.com',
        'c@example.com',
        'd@example.com',
        'e@example.com',
      ]);
      expect(listed.result.elements[0]).toMatchObject({ contactId: existing.id, firstName: 'New' });
      expect(listed.result.elements[1]?.embeddedData).toEqual({ vip_tier: 'gold' });
      const txs = emu.transactions();
      expect(txs.map((t) => t.data['order_id'])).toEqual(['o-a', 'o-b', 'o-c', 'o-d', 'o-e', 'o-x']);
      expect(new Set(txs.map((t) => t.batchId))).toEqual(new Set(['BT_abcdefghijklmno']));
    });

    it('validates the import request and references', async () => {
      const list = await createList();
      expectError(await call('POST', importPath(list), { body: {} }), 400, 'RP_10');
      expectError(await call('POST', importPath(list), { body: { contacts: [] } }), 400, 'RP_1');
      expectError(await call('POST', importPath(list), { body: { contacts: {} } }), 400, 'RP_1');
      expectError(await call('POST', importPath(list), { body: { transactionMeta: { fields: [] }, contacts: [{ email: 'a@b.co' }] } }), 400, 'RP_10');
      expectError(await call('POST', importPath(list), { body: { transactionMeta: { batchId: 'batch-1' }, contacts: [{ email: 'a@b.co' }] } }), 400);
      expectError(await call('POST', importPath('CG_000000000000000'), { body: { contacts: [{ email: 'a@b.co' }] } }), 404);
      expectError(await call('GET', `${importPath(list)}/PGR_000000000000000`), 404);
      expectError(await call('POST', importPath(list), { body: { contacts: [{ email: 'a@b.co' }] }, token: null }), 400);
    });

    it('fails rows when a partial-failure fault is injected', async () => {
      const list = await createList();
      const res = await call('POST', importPath(list), {
        body: { contacts: [{ email: 'a@example.com' }, { email: 'b@example.com' }] },
        faults: { partialFailureRate: 1 },
      });
      const id = okEnvelope(importStarted).parse(res.json).result.id;
      emu.settleJobs();
      const p = okEnvelope(importProgress).parse((await call('GET', `${importPath(list)}/${id}`)).json).result;
      expect(p).toMatchObject({ status: 'complete', contacts: { count: { added: 0, updated: 0, failed: 2 } } });
      expect(emu.contacts(list)).toEqual([]);
    });
  });

  describe('distributions', () => {
    let survey: string;
    let list: string;
    const validBody = (over: Record<string, unknown> = {}) => ({
      message: { libraryId: 'UR_8cRedheujEbcxgN', messageId: 'MS_1Mt2Nj5kczdnjMh' },
      recipients: { mailingListId: list },
      header: { fromName: 'Tidemark', replyToEmail: 'care@example.com', fromEmail: 'noreply@qualtrics.com', subject: 'How did it fit?' },
      surveyLink: { surveyId: survey, expirationDate: '2025-03-09T00:00:00Z', type: 'Individual' },
      sendDate: '2025-03-02T09:00:00Z',
      ...over,
    });

    beforeEach(async () => {
      survey = emu.seedSurvey({ name: 'Post purchase fit' });
      list = await createList();
      await addContact(list, { email: 'a@example.com' });
      await addContact(list, { email: 'b@example.com' });
      await addContact(list, { email: 'c@example.com', unsubscribed: true });
    });

    it('creates an email distribution, then lists and gets it as scheduled and later done', async () => {
      const res = await call('POST', '/distributions', { body: validBody() });
      const id = okEnvelope(z.object({ id: idOf('EMD') })).parse(res.json).result.id;

      expectError(await call('GET', '/distributions'), 400, 'RP_10');
      const listed = okEnvelope(z.object({ elements: z.array(distribution), nextPage })).parse(
        (await call('GET', `/distributions?surveyId=${survey}`)).json,
      );
      expect(listed.result.elements.map((d) => d.id)).toEqual([id]);
      expect(listed.result.elements[0]).toMatchObject({
        requestStatus: 'Scheduled',
        requestType: 'Invite',
        headers: { subject: 'How did it fit?', fromEmail: 'noreply@qualtrics.com' },
        recipients: { mailingListId: list, contactId: null },
        message: { messageType: 'Library', messageId: 'MS_1Mt2Nj5kczdnjMh' },
        surveyLink: { surveyId: survey, expirationDate: '2025-03-09T00:00:00Z', linkType: 'Individual' },
        stats: { sent: 0 },
      });

      expectError(await call('GET', `/distributions/${id}`), 400, 'RP_10');
      nowMs = Date.parse('2025-03-03T00:00:00Z');
      const got = okEnvelope(distribution).parse((await call('GET', `/distributions/${id}?surveyId=${survey}`)).json).result;
      expect(got).toMatchObject({ requestStatus: 'Done', stats: { sent: 2, blocked: 1 } });

      metaOnly.parse((await call('DELETE', `/distributions/${id}`)).json);
      expectError(await call('GET', `/distributions/${id}?surveyId=${survey}`), 404);
    });

    it('sends to one contact by its lookup id', async () => {
      const one = await addContact(list, { email: 'solo@example.com' });
      const res = await call('POST', '/distributions', { body: validBody({ recipients: { mailingListId: list, contactId: one.contactLookupId } }) });
      expect(res.status).toBe(200);
      nowMs = Date.parse('2025-03-03T00:00:00Z');
      const id = okEnvelope(z.object({ id: z.string() })).parse(res.json).result.id;
      const got = okEnvelope(distribution).parse((await call('GET', `/distributions/${id}?surveyId=${survey}`)).json).result;
      expect(got.stats.sent).toBe(1);
      expect(got.recipients.contactId).toBe(one.contactLookupId);
    });

    it.each([
      ['a missing sendDate', (b: Record<string, unknown>) => ({ ...b, sendDate: undefined }), 'RP_10'],
      ['an unexpected key', (b: Record<string, unknown>) => ({ ...b, sendTime: 'now' }), 'RP_9'],
      ['a malformed sendDate', (b: Record<string, unknown>) => ({ ...b, sendDate: '03/02/2025' }), 'RP_1'],
      ['an unknown mailing list', (b: Record<string, unknown>) => ({ ...b, recipients: { mailingListId: 'CG_000000000000000' } }), 'RP_1'],
      ['a contact id that is not a lookup id of the list', (b: Record<string, unknown>) => ({ ...b, recipients: { mailingListId: list, contactId: 'CGC_000000000000000' } }), 'RP_1'],
      ['an unknown survey', (b: Record<string, unknown>) => ({ ...b, surveyLink: { surveyId: 'SV_000000000000000' } }), 'RP_1'],
      ['an expiration before the send date', (b: Record<string, unknown>) => ({ ...b, surveyLink: { surveyId: survey, expirationDate: '2025-03-02T08:00:00Z' } }), 'RP_1'],
      ['an expiration in the past', (b: Record<string, unknown>) => ({ ...b, sendDate: '2025-02-01T00:00:00Z', surveyLink: { surveyId: survey, expirationDate: '2025-02-10T00:00:00Z' } }), 'RP_1'],
      ['a library id of the wrong kind', (b: Record<string, unknown>) => ({ ...b, message: { libraryId: 'lib', messageId: 'MS_1Mt2Nj5kczdnjMh' } }), 'RP_1'],
      ['a missing subject', (b: Record<string, unknown>) => ({ ...b, header: { fromName: 'T', fromEmail: 'noreply@qualtrics.com' } }), 'RP_10'],
      ['an unknown link type', (b: Record<string, unknown>) => ({ ...b, surveyLink: { surveyId: survey, type: 'Personal' } }), 'RP_1'],
    ])('refuses %s', async (_name, mutate, code) => {
      expectError(await call('POST', '/distributions', { body: mutate(validBody()) }), 400, code);
      expect(emu.distributions()).toEqual([]);
    });

    it('refuses an inactive survey and a list without reachable recipients', async () => {
      const inactive = emu.seedSurvey({ name: 'Old', isActive: false });
      expectError(await call('POST', '/distributions', { body: validBody({ surveyLink: { surveyId: inactive } }) }), 400);
      const empty = await createList('Empty');
      const none = expectError(await call('POST', '/distributions', { body: validBody({ recipients: { mailingListId: empty } }) }), 400, 'CP_TD_GER_NP');
      expect(none.meta.error.errorMessage).toMatch(/has no recipients/);
    });

    it('pages distributions of a survey and filters by request type and send window', async () => {
      const other = emu.seedSurvey({ name: 'Other' });
      for (let i = 0; i < 5; i++) {
        await call('POST', '/distributions', { body: validBody({ sendDate: `2025-03-0${i + 2}T09:00:00Z`, surveyLink: { surveyId: survey, expirationDate: '2025-04-01T00:00:00Z' } }) });
      }
      await call('POST', '/distributions', { body: validBody({ surveyLink: { surveyId: other } }) });
      const schema = okEnvelope(z.object({ elements: z.array(distribution), nextPage }));
      const sizes: number[] = [];
      const ids = new Set<string>();
      let url: string | null = `${ORIGIN}/API/v3/distributions?surveyId=${survey}&pageSize=2`;
      while (url) {
        const page = schema.parse((await call('GET', url)).json);
        sizes.push(page.result.elements.length);
        for (const d of page.result.elements) ids.add(d.id);
        url = page.result.nextPage;
      }
      expect(sizes).toEqual([2, 2, 1]);
      expect(ids.size).toBe(5);
      const window = schema.parse(
        (await call('GET', `/distributions?surveyId=${survey}&sendStartDate=2025-03-03T00:00:00Z&sendEndDate=2025-03-04T23:59:59Z`)).json,
      );
      expect(window.result.elements.map((d) => d.sendDate)).toEqual(['2025-03-03T09:00:00Z', '2025-03-04T09:00:00Z']);
      const reminders = schema.parse((await call('GET', `/distributions?surveyId=${survey}&distributionRequestType=Reminder`)).json);
      expect(reminders.result.elements).toEqual([]);
      expectError(await call('GET', `/distributions?surveyId=${survey}&distributionRequestType=Bogus`), 400);
    });

    it('targets a transaction batch created by an import', async () => {
      await call('POST', `/directories/${dir}/mailinglists/${list}/transactioncontacts`, {
        body: {
          transactionMeta: { batchId: 'BT_batch000000001', fields: ['order_id'] },
          contacts: [
            { email: 'a@example.com', transactionData: { order_id: '1' } },
            { email: 'new@example.com', transactionData: { order_id: '2' } },
          ],
        },
      });
      emu.settleJobs();
      const res = await call('POST', '/distributions', { body: validBody({ recipients: { transactionBatchId: 'BT_batch000000001' } }) });
      const id = okEnvelope(z.object({ id: z.string() })).parse(res.json).result.id;
      nowMs = Date.parse('2025-03-03T00:00:00Z');
      const got = okEnvelope(distribution).parse((await call('GET', `/distributions/${id}?surveyId=${survey}`)).json).result;
      expect(got.stats.sent).toBe(2);
      expectError(await call('POST', '/distributions', { body: validBody({ recipients: { transactionBatchId: 'BT_unknown0000000' } }) }), 400);
    });
  });

  describe('event subscriptions', () => {
    it('creates, lists, gets and deletes a subscription without echoing the shared key', async () => {
      const body = {
        topics: 'surveyengine.completedResponse.SV_abcdefghijklmno',
        publicationUrl: 'https://hooks.example.com/qualtrics',
        encrypt: false,
        sharedKey: 's3cret',
      };
      const id = okEnvelope(z.object({ id: z.string().min(1) })).parse((await call('POST', '/eventsubscriptions', { body })).json).result.id;
      const listed = okEnvelope(z.object({ elements: z.array(subscription), nextPage })).parse((await call('GET', '/eventsubscriptions')).json);
      expect(listed.result.elements).toEqual([expect.objectContaining({ id, topics: body.topics, publicationUrl: body.publicationUrl, encrypt: false })]);
      const got = okEnvelope(subscription).parse((await call('GET', `/eventsubscriptions/${id}`)).json);
      expect(JSON.stringify(got)).not.toContain('s3cret');
      metaOnly.parse((await call('DELETE', `/eventsubscriptions/${id}`)).json);
      expectError(await call('GET', `/eventsubscriptions/${id}`), 404);
      expectError(await call('DELETE', `/eventsubscriptions/${id}`), 404);
    });

    it('validates topics and the publication URL, and requires a brand administrator', async () => {
      const ok = { topics: '*', publicationUrl: 'https://hooks.example.com/q' };
      expectError(await call('POST', '/eventsubscriptions', { body: { ...ok, topics: 'orders.created' } }), 400, 'RP_1');
      expectError(await call('POST', '/eventsubscriptions', { body: { ...ok, publicationUrl: 'ftp://x' } }), 400, 'RP_1');
      expectError(await call('POST', '/eventsubscriptions', { body: { topics: '*' } }), 400, 'RP_10');
      expectError(await call('POST', '/eventsubscriptions', { body: ok, token: 'bad' }), 401);
      emu.configure({ accountType: 'UT_PARTICIPANT' });
      expectError(await call('POST', '/eventsubscriptions', { body: ok }), 403);
    });

    it('queues signed completed-response deliveries for matching subscriptions', async () => {
      const sv = emu.seedSurvey({ name: 'Fit' });
      await call('POST', '/eventsubscriptions', { body: { topics: `surveyengine.completedResponse.${sv}`, publicationUrl: 'https://a.example.com/h', sharedKey: 'k1' } });
      await call('POST', '/eventsubscriptions', { body: { topics: 'surveyengine.completedResponse.*', publicationUrl: 'https://b.example.com/h' } });
      await call('POST', '/eventsubscriptions', { body: { topics: 'controlpanel.activateSurvey', publicationUrl: 'https://c.example.com/h' } });
      const [finished] = emu.seedResponses(sv, [
        { recordedDate: '2025-03-01T10:00:00Z', endDate: '2025-03-01T10:00:00Z' },
        { recordedDate: '2025-03-01T11:00:00Z', finished: false },
      ]);
      const deliveries = emu.drainWebhookOutbox();
      expect(deliveries.map((d) => d.publicationUrl)).toEqual(['https://a.example.com/h', 'https://b.example.com/h']);
      const signed = new URLSearchParams(deliveries[0]?.body);
      expect(signed.get('Topic')).toBe(`tidemark.surveyengine.completedResponse.${sv}`);
      const msg = signed.get('MSG') ?? '';
      expect(JSON.parse(msg)).toEqual({ Status: 'Complete', SurveyID: sv, ResponseID: finished, CompletedDate: '2025-03-01 10:00:00', BrandID: 'tidemark' });
      expect(signed.get('HMAC')).toBe(createHmac('sha512', 'k1').update(msg).digest('hex'));
      const flat = new URLSearchParams(deliveries[1]?.body);
      expect(flat.get('ResponseID')).toBe(finished);
      expect(flat.get('HMAC')).toBeNull();
      expect(emu.webhookOutbox()).toEqual([]);
    });
  });

  describe('rate limits', () => {
    it('refuses the request past the per-brand bucket with 429 and Retry-After, then recovers as it drains', async () => {
      const limited = createQualtricsEmulator({ apiToken: TOKEN, seed: 1, rateLimitPerMinute: 5, now: () => new Date(nowMs) });
      const c = caller(limited);
      // Unauthenticated requests do not count against the brand.
      for (let i = 0; i < 3; i++) await c('GET', '/whoami', { token: null });
      for (let i = 0; i < 5; i++) expect((await c('GET', '/whoami')).status).toBe(200);
      const refused = await c('GET', '/directories');
      expectError(refused, 429, 'RL_1');
      expect(refused.headers?.['retry-after']).toBe('12');
      nowMs += 12_000;
      expect((await c('GET', '/whoami')).status).toBe(200);
      expect((await c('GET', '/whoami')).status).toBe(429);
    });

    it('applies the stricter per-endpoint limit on export starts without blocking other calls', async () => {
      const limited = createQualtricsEmulator({ apiToken: TOKEN, seed: 1, retryAfterSeconds: 0, now: () => new Date(nowMs) });
      limited.configure({ endpointLimits: { 'POST /surveys/{surveyId}/export-responses': 2 } });
      const c = caller(limited);
      const sv = limited.seedSurvey({ name: 'S' });
      expect((await c('POST', `/surveys/${sv}/export-responses`, { body: { format: 'json' } })).status).toBe(200);
      expect((await c('POST', `/surveys/${sv}/export-responses`, { body: { format: 'csv' } })).status).toBe(200);
      const third = await c('POST', `/surveys/${sv}/export-responses`, { body: { format: 'json' } });
      expectError(third, 429);
      expect(third.headers?.['retry-after']).toBe('0');
      expect((await c('GET', '/whoami')).status).toBe(200);
    });
  });

  describe('snapshot, restore and reset', () => {
    it('round-trips all state through JSON, including export files and the id sequence', async () => {
      const list = await createList();
      await addContact(list, { email: 'a@example.com', embeddedData: { k: 'v' } });
      const sv = emu.seedSurvey({ name: 'Fit', questions: [{ text: 'Why', type: 'single', choices: ['A', 'B'] }] });
      emu.seedResponses(sv, [{ recordedDate: '2025-02-01T00:00:00Z', values: { QID1: 2 } }]);
      await call('POST', '/eventsubscriptions', { body: { topics: '*', publicationUrl: 'https://h.example.com/x' } });
      const progressId = okEnvelope(z.object({ progressId: z.string() })).parse(
        (await call('POST', `/surveys/${sv}/export-responses`, { body: { format: 'json' } })).json,
      ).result.progressId;
      emu.settleJobs();
      const progress = okEnvelope(z.object({ fileId: z.string(), status: z.literal('complete') }).loose()).parse(
        (await call('GET', `/surveys/${sv}/export-responses/${progressId}`)).json,
      );

      const snap = JSON.parse(JSON.stringify(emu.snapshot())) as unknown;
      const twin = createQualtricsEmulator({ apiToken: TOKEN, seed: 7, now: () => new Date(nowMs) });
      twin.restore(snap);
      const c2 = caller(twin);
      for (const path of [
        `/directories/${dir}/mailinglists?includeCount=true`,
        `/directories/${dir}/mailinglists/${list}/contacts?includeEmbedded=true`,
        `/surveys/${sv}`,
        '/eventsubscriptions',
      ]) {
        const a = (await call('GET', path)).json as { result: unknown };
        const b = (await c2('GET', path)).json as { result: unknown };
        expect(b.result).toEqual(a.result);
      }
      const fileA = await call('GET', `/surveys/${sv}/export-responses/${progress.result.fileId}/file`);
      const fileB = await c2('GET', `/surveys/${sv}/export-responses/${progress.result.fileId}/file`);
      expect(fileB.raw?.equals(fileA.raw ?? Buffer.alloc(0))).toBe(true);
      // Both continue the same id sequence.
      const nextA = okEnvelope(z.object({ id: z.string() })).parse((await call('POST', `/directories/${dir}/mailinglists`, { body: { name: 'N' } })).json);
      const nextB = okEnvelope(z.object({ id: z.string() })).parse((await c2('POST', `/directories/${dir}/mailinglists`, { body: { name: 'N' } })).json);
      expect(nextB.result.id).toBe(nextA.result.id);
    });

    it('restores a snapshot written by an older version, whose questions name their type `kind`', async () => {
      const sv = emu.seedSurvey({ name: 'Fit', questions: [{ text: 'Why', type: 'single', choices: ['A', 'B'] }, { text: 'Say more', type: 'text' }] });
      const snap = JSON.parse(JSON.stringify(emu.snapshot())) as { surveys: Array<{ questions: Array<Record<string, unknown>> }> };
      for (const q of snap.surveys.flatMap((s) => s.questions)) {
        q.kind = q.type;
        delete q.type;
      }
      const twin = createQualtricsEmulator({ apiToken: TOKEN, seed: 7, now: () => new Date(nowMs) });
      twin.restore(snap);
      expect((await caller(twin)('GET', `/surveys/${sv}`)).json).toEqual((await call('GET', `/surveys/${sv}`)).json);
      expect(twin.snapshot()).toEqual(emu.snapshot());
    });

    it('refuses a snapshot that is not one, and reset returns to the initial state', async () => {
      expect(() => emu.restore({ service: 'customerio' })).toThrow(/Not a Qualtrics sandbox snapshot/);
      const initial = JSON.stringify(emu.snapshot());
      await createList();
      emu.seedSurvey({ name: 'S' });
      emu.reset();
      expect(JSON.stringify(emu.snapshot())).toBe(initial);
    });
  });

  describe('admin seeding route', () => {
    it('seeds a survey and responses over HTTP, reporting bad input as 400', async () => {
      const res = await call('POST', '/__sandbox/qualtrics/surveys', {
        token: null,
        body: { name: 'Seeded over HTTP', questions: [{ text: 'Score', type: 'nps' }] },
      });
      expect(res.status).toBe(200);
      const { surveyId } = z.object({ surveyId: idOf('SV') }).parse(res.json);
      const added = await call('POST', `/__sandbox/qualtrics/surveys/${surveyId}/responses`, {
        token: null,
        body: { responses: [{ recordedDate: '2025-02-01T00:00:00Z', values: { QID1: 9 } }] },
      });
      expect(z.object({ responseIds: z.array(idOf('R')) }).parse(added.json).responseIds).toHaveLength(1);
      const bad = await call('POST', `/__sandbox/qualtrics/surveys/${surveyId}/responses`, {
        token: null,
        body: { responses: [{ recordedDate: '2025-02-01T00:00:00Z', values: { QID1: 11 } }] },
      });
      expect(bad.status).toBe(400);
      expect(z.object({ error: z.object({ message: z.string() }) }).parse(bad.json).error.message).toMatch(/QID1/);
      expect((await call('GET', '/__sandbox/qualtrics/nope', { token: null })).status).toBe(404);
      const cfg = await call('POST', '/__sandbox/qualtrics/config', { token: null, body: { jobSteps: 0 } });
      expect(cfg.status).toBe(400);
      expect(emu.responses(surveyId)).toHaveLength(1);
    });
  });
});
