/**
 * The emulator's email history, bounced and opted-out lists, and the bounce hook, through `handle()`:
 * documented shapes (checked by schemas written here, not the emulator's types), required parameters,
 * a list's view of a contact's history, and the admin route's refusals.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { SandboxResponse } from '../../common/types.ts';
import { createQualtricsEmulator, type QualtricsEmulator } from '../index.ts';

const TOKEN = 'history-token';
const ORIGIN = 'http://127.0.0.1:4010';

const emailEntry = z
  .object({
    distributionId: z.string().regex(/^EMD_/),
    date: z.string().regex(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/),
    type: z.enum(['Invite', 'ThankYou', 'Reminder']),
    result: z.enum(['Success', 'Bounce', 'Blocked', 'Error', 'Skipped', 'Pending']),
    bounceInfo: z.object({ type: z.string(), statusCode: z.string(), reason: z.string(), blacklisted: z.boolean() }).optional(),
    surveyId: z.string(),
    read: z.boolean(),
    lookupId: z.string().nullable(),
  })
  .strict();
const singleContact = z
  .object({
    contactId: z.string(),
    firstName: z.string().nullable(),
    lastName: z.string().nullable(),
    email: z.string().nullable(),
    phone: z.string().nullable(),
    extRef: z.string().nullable(),
    language: z.string().nullable(),
    directoryUnsubscribed: z.boolean(),
    directoryUnsubscribeDate: z.string().nullable(),
  })
  .strict();
const page = <T extends z.ZodType>(element: T) => z.object({ result: z.object({ elements: z.array(element), nextPage: z.url().nullable() }), meta: z.object({}).passthrough() });

let emu: QualtricsEmulator;
let dir: string;
const now = Date.parse('2026-06-01T12:00:00Z');

async function call(method: string, path: string, body?: unknown): Promise<SandboxResponse> {
  const admin = path.startsWith('/__');
  const url = new URL(`${ORIGIN}${admin ? '' : '/API/v3'}${path}`);
  const headers: Record<string, string> = { 'x-api-token': TOKEN };
  if (body !== undefined) headers['content-type'] = 'application/json';
  return emu.handle({ method, url, headers, body: body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body)) }, {});
}

async function ok(method: string, path: string, body?: unknown): Promise<{ result?: Record<string, unknown> }> {
  const res = await call(method, path, body);
  if (res.status !== 200) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.json)}`);
  return res.json as { result?: Record<string, unknown> };
}

beforeEach(() => {
  emu = createQualtricsEmulator({ apiToken: TOKEN, seed: 3, now: () => new Date(now) });
  dir = emu.defaultDirectoryId();
});

async function world() {
  const survey = emu.seedSurvey({ name: 'S', questions: [{ text: 'Q', type: 'text' }] });
  const listA = (await ok('POST', `/directories/${dir}/mailinglists`, { name: 'A' })).result!.id as string;
  const listB = (await ok('POST', `/directories/${dir}/mailinglists`, { name: 'B' })).result!.id as string;
  const ada = (await ok('POST', `/directories/${dir}/mailinglists/${listA}/contacts`, { email: 'ada@example.com', extRef: 'ada' })).result!.id as string;
  const bob = (await ok('POST', `/directories/${dir}/mailinglists/${listB}/contacts`, { email: 'bob@old.invalid', extRef: 'bob' })).result!.id as string;
  const send = async (list: string, days: number) =>
    (
      await ok('POST', '/distributions', {
        message: { libraryId: 'UR_1', messageId: 'MS_1' },
        recipients: { mailingListId: list },
        header: { fromEmail: 'cx@example.com', fromName: 'CX', subject: 'Hi' },
        surveyLink: { surveyId: survey, expirationDate: new Date(now + (days + 2) * 86_400_000).toISOString() },
        sendDate: new Date(now + days * 86_400_000).toISOString(),
      })
    ).result!.id as string;
  return { survey, listA, listB, ada, bob, send };
}

describe('email history (K7, C6)', () => {
  it('answers the documented elements, requires type, and a list shows only the emails sent through it', async () => {
    const w = await world();
    const first = await w.send(w.listA, 1);
    const history = page(emailEntry).parse((await ok('GET', `/directories/${dir}/contacts/${w.ada}/history?type=email`)));
    expect(history.result.elements).toEqual([{ distributionId: first, date: '2026-06-02 12:00:00', type: 'Invite', result: 'Success', surveyId: w.survey, read: false, lookupId: expect.stringMatching(/^CGC_/) }]);
    const missing = await call('GET', `/directories/${dir}/contacts/${w.ada}/history`);
    expect(missing.status).toBe(400);
    expect(JSON.stringify(missing.json)).toContain('RP_10');
    expect((await call('GET', `/directories/${dir}/contacts/${w.ada}/history?type=sms`)).status).toBe(400);
    expect((await call('GET', `/directories/${dir}/contacts/CID_nobody/history?type=email`)).status).toBe(404);
    // Through list B, which ada is not in: not found; through list A: her entries.
    expect((await call('GET', `/directories/${dir}/mailinglists/${w.listB}/contacts/${w.ada}/history?type=email`)).status).toBe(404);
    expect(page(emailEntry).parse(await ok('GET', `/directories/${dir}/mailinglists/${w.listA}/contacts/${w.ada}/history?type=email`)).result.elements).toHaveLength(1);
  });

  it('records a hard bounce for an undeliverable address, counts it in the distribution stats, and lists the contact as bounced since the send', async () => {
    const w = await world();
    const d = await w.send(w.listB, 1);
    const [entry] = page(emailEntry).parse(await ok('GET', `/directories/${dir}/contacts/${w.bob}/history?type=email`)).result.elements;
    expect(entry).toMatchObject({ distributionId: d, result: 'Bounce', bounceInfo: { type: 'Hard', statusCode: '550' } });
    const bounced = page(singleContact).parse(await ok('GET', `/directories/${dir}/mailinglists/${w.listB}/bouncedContacts`)).result.elements;
    expect(bounced.map((c) => [c.extRef, c.email])).toEqual([['bob', 'bob@old.invalid']]);
    expect(page(singleContact).parse(await ok('GET', `/directories/${dir}/mailinglists/${w.listB}/bouncedContacts?since=2026-06-03T00:00:00Z`)).result.elements).toEqual([]);
    expect((await call('GET', `/directories/${dir}/mailinglists/${w.listB}/bouncedContacts?since=soon`)).status).toBe(400);
    expect(emu.distributions(w.survey)[0]!.bouncedCount).toBe(1);
    // A contact at a bounced address draws no answer.
    expect(emu.responses(w.survey).filter((r) => r.contactId === w.bob)).toEqual([]);
  });
});

describe('the bounce hook', () => {
  it('bounces every contact of the directory at an address; refuses unknown keys, non-strings and no match', async () => {
    const w = await world();
    const res = await call('POST', '/__sandbox/qualtrics/bounces', { email: 'ADA@example.com', at: '2026-05-01T00:00:00Z' });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ contactIds: [w.ada] });
    const listed = page(singleContact).parse(await ok('GET', `/directories/${dir}/mailinglists/${w.listA}/bouncedContacts`)).result.elements;
    expect(listed.map((c) => c.extRef)).toEqual(['ada']);
    // Her next email bounces too.
    await w.send(w.listA, 1);
    expect(emu.emailHistory(w.ada).map((e) => e.result)).toEqual(['Bounce']);
    for (const body of [{ mail: 'x@example.com' }, { email: 42 }, { email: 'nobody@example.com' }, {}]) {
      expect((await call('POST', '/__sandbox/qualtrics/bounces', body)).status).toBe(400);
    }
  });
});
