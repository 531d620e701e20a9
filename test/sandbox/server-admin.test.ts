/**
 * The admin endpoint (`/__sandbox/…` on every listener) and request counting over real HTTP.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createSandbox, type RunningSandbox } from '../../reconciler/sandbox/index.ts';

const BASIC = `Basic ${Buffer.from('sandbox-site:sandbox-track-key').toString('base64')}`;
const BEARER = 'Bearer sandbox-app-key';

let sb: RunningSandbox;
let listeners: string[];
beforeAll(async () => {
  sb = await createSandbox({ seed: 5, retryAfterSeconds: 0, appRateLimitPerSecond: 100_000 });
  listeners = [sb.urls.customerioTrack, sb.urls.customerioApp, sb.urls.qualtrics];
});
afterAll(async () => {
  await sb.close();
});
beforeEach(() => {
  sb.faults.clear();
  sb.customerio.reset();
  sb.resetRequestCounts();
});

async function admin(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${base}/__sandbox${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
}

const identify = (id: string, attrs: Record<string, unknown> = {}) =>
  fetch(`${sb.urls.customerioTrack}/api/v1/customers/${encodeURIComponent(id)}`, {
    method: 'PUT',
    headers: { authorization: BASIC, 'content-type': 'application/json' },
    body: JSON.stringify(attrs),
  });

describe('/__sandbox/faults', () => {
  it.each([0, 1, 2])('is served on every listener (listener %i) and shared between them', async (i) => {
    const base = listeners[i]!;
    const put = await admin(base, 'PUT', '/faults', { burst5xx: 1, service: 'track' });
    expect(put).toEqual({ status: 200, body: { burst5xx: 1, service: 'track' } });
    for (const other of listeners) expect((await admin(other, 'GET', '/faults')).body).toEqual({ burst5xx: 1, service: 'track' });
    expect(sb.faults.get()).toEqual({ burst5xx: 1, service: 'track' });
    expect((await identify('1')).status).toBe(503);
    expect((await admin(base, 'GET', '/faults')).body).toEqual({ burst5xx: 0, service: 'track' });
    expect(await admin(base, 'DELETE', '/faults')).toEqual({ status: 200, body: {} });
    expect(sb.faults.get()).toEqual({});
  });

  it('PUT replaces rather than merges', async () => {
    await admin(sb.urls.customerioApp, 'PUT', '/faults', { errorRate: 0.5, latencyMs: 10 });
    await admin(sb.urls.customerioApp, 'PUT', '/faults', { dropRate: 0.1 });
    expect(sb.faults.get()).toEqual({ dropRate: 0.1 });
  });

  it.each([
    ['an unknown key', { errorRatee: 1 }],
    ['a rate above 1', { dropRate: 3 }],
    ['malformed JSON', '{"dropRate":'],
    ['a non-object', '[1]'],
  ])('refuses %s with 400 and keeps the current faults', async (_name, body) => {
    sb.faults.set({ latencyMs: 1 });
    const r = await admin(sb.urls.customerioTrack, 'PUT', '/faults', body);
    expect(r.status).toBe(400);
    expect(z.object({ error: z.string() }).parse(r.body).error.length).toBeGreaterThan(0);
    expect(sb.faults.get()).toEqual({ latencyMs: 1 });
  });

  it('is never itself subject to faults', async () => {
    sb.faults.set({ errorRate: 1, dropRate: 1 });
    expect((await admin(sb.urls.customerioTrack, 'GET', '/faults')).status).toBe(200);
    expect((await admin(sb.urls.customerioTrack, 'DELETE', '/faults')).status).toBe(200);
  });

  it('answers 405 to other methods and 404 to unknown admin routes', async () => {
    expect((await admin(sb.urls.customerioTrack, 'POST', '/faults', {})).status).toBe(405);
    expect((await admin(sb.urls.customerioTrack, 'GET', '/nothing')).status).toBe(404);
  });
});

describe('request counting', () => {
  it('counts per method and route template across listeners, including faulted requests but not admin ones', async () => {
    await identify('1');
    await identify('a@b.com');
    await fetch(`${sb.urls.customerioTrack}/api/v2/batch`, { method: 'POST', headers: { authorization: BASIC }, body: JSON.stringify({ batch: [{ type: 'person', identifiers: { id: '2' }, action: 'identify' }] }) });
    sb.faults.set({ burst5xx: 1, service: 'app' });
    await fetch(`${sb.urls.customerioApp}/v1/segments/3/membership?limit=5`, { headers: { authorization: BEARER } });
    await fetch(`${sb.urls.customerioApp}/v1/segments/4/membership`, { headers: { authorization: BEARER } });
    await fetch(`${sb.urls.customerioApp}/v1/nowhere`, { headers: { authorization: BEARER } });
    await fetch(`${sb.urls.qualtrics}/API/v3/whoami`, { headers: { 'x-api-token': 'sandbox-qualtrics-token' } });
    await admin(sb.urls.customerioTrack, 'GET', '/faults');

    const counts = sb.requestCounts();
    expect(counts['PUT /api/v1/customers/{identifier}']).toBe(2);
    expect(counts['POST /api/v2/batch']).toBe(1);
    expect(counts['GET /v1/segments/{segment_id}/membership']).toBe(2);
    expect(counts['GET <unmatched>']).toBe(1);
    expect(Object.keys(counts).some((k) => k.includes('__sandbox'))).toBe(false);
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(7);
    expect((await admin(sb.urls.qualtrics, 'GET', '/requests')).body).toEqual(counts);
  });

  it('resets in process and through the admin endpoint', async () => {
    await identify('1');
    sb.resetRequestCounts();
    expect(sb.requestCounts()).toEqual({});
    await identify('1');
    expect((await admin(sb.urls.customerioApp, 'DELETE', '/requests')).status).toBe(200);
    expect(sb.requestCounts()).toEqual({});
  });
});

describe('/__sandbox/reset', () => {
  it('empties Customer.io state and the request counts', async () => {
    await identify('1', { a: 1 });
    sb.customerio.seedSegment({ name: 'S' });
    const r = await admin(sb.urls.qualtrics, 'POST', '/reset');
    expect(r.status).toBe(200);
    expect(sb.customerio.listPeople()).toEqual([]);
    expect(sb.customerio.listSegments()).toEqual([]);
    expect(sb.requestCounts()).toEqual({});
    expect((await admin(sb.urls.qualtrics, 'GET', '/reset')).status).toBe(405);
  });

  it('empties Qualtrics state too', async () => {
    const initial = JSON.stringify(sb.qualtrics.snapshot());
    const created = await fetch(`${sb.urls.qualtrics}/__sandbox/qualtrics/surveys`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Post purchase' }),
    });
    expect(created.status).toBeLessThan(300);
    expect(JSON.stringify(sb.qualtrics.snapshot())).not.toBe(initial);
    await admin(sb.urls.customerioTrack, 'POST', '/reset');
    expect(sb.qualtrics.snapshot()).toEqual(JSON.parse(initial));
  });
});

describe('/__sandbox/customerio', () => {
  it('seeds a data-driven segment readable through the App API', async () => {
    await identify('1');
    await identify('x@y.com');
    const r = await admin(sb.urls.customerioTrack, 'POST', '/customerio/segments', { name: 'Engaged 30d', description: 'opened in 30 days', member_ids: ['1'] });
    expect(r.status).toBe(200);
    const seg = z.object({ segment: z.object({ id: z.number(), type: z.literal('dynamic'), count: z.literal(1) }) }).parse(r.body).segment;
    const members = await fetch(`${sb.urls.customerioApp}/v1/segments/${seg.id}/membership`, { headers: { authorization: BEARER } });
    expect(await members.json()).toMatchObject({ ids: ['1'] });

    const update = await admin(sb.urls.customerioApp, 'PUT', `/customerio/segments/${seg.id}/members`, { member_ids: ['x@y.com'], id_type: 'email' });
    expect(update).toEqual({ status: 200, body: { segment_id: seg.id, count: 1 } });
    expect(sb.customerio.segmentMembers(seg.id).map((m) => m.email)).toEqual(['x@y.com']);
  });

  it.each([
    ['a missing name', { member_ids: [] }],
    ['an unknown member', { name: 'S', member_ids: ['ghost'] }],
    ['a bad id_type', { name: 'S', id_type: 'phone' }],
    ['a bad type', { name: 'S', type: 'smart' }],
  ])('refuses to seed a segment with %s', async (_name, body) => {
    expect((await admin(sb.urls.customerioTrack, 'POST', '/customerio/segments', body)).status).toBe(400);
    expect(sb.customerio.listSegments()).toEqual([]);
  });

  it('shows a person with typed attributes and their events, or 404', async () => {
    await identify('a@b.com', { plan: 'pro', seats: 4 });
    await fetch(`${sb.urls.customerioTrack}/api/v1/customers/a%40b.com/events`, { method: 'POST', headers: { authorization: BASIC }, body: JSON.stringify({ name: 'paid' }) });
    const r = await admin(sb.urls.customerioApp, 'GET', `/customerio/people/${encodeURIComponent('a@b.com')}`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ person: { email: 'a@b.com', attributes: { plan: 'pro', seats: 4 } }, events: [{ name: 'paid' }] });
    expect((await admin(sb.urls.customerioApp, 'GET', '/customerio/people/nobody')).status).toBe(404);
  });

  it('lists the activity log of accepted-but-failed writes', async () => {
    await fetch(`${sb.urls.customerioTrack}/api/v1/customers/cio_ffffffff`, { method: 'PUT', headers: { authorization: BASIC }, body: '{"a":1}' });
    const r = await admin(sb.urls.customerioTrack, 'GET', '/customerio/activity');
    expect(r.body).toEqual({ activity: [expect.objectContaining({ type: 'dropped_request', identifier: 'cio_id:ffffffff' })] });
  });

  it('exposes the Qualtrics admin routes on the Customer.io listeners', async () => {
    expect((await admin(sb.urls.customerioTrack, 'GET', '/qualtrics')).status).toBe(200);
  });
});
