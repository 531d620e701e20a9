/**
 * The Customer.io Track API (v1 + v2) as served over real HTTP by the sandbox: every endpoint's success,
 * validation error and auth error, the documented size limits, identify merge semantics, event dedupe and
 * v2 207 partial failures. Response shapes are checked against zod schemas of what clients rely on.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createSandbox, type RunningSandbox } from '../../reconciler/sandbox/index.ts';

const V1Ok = z.object({}).strict();
const V1Error = z.object({ meta: z.object({ errors: z.array(z.string()).min(1) }) });
const V2Error = z.object({ errors: z.array(z.object({ reason: z.string(), field: z.string(), message: z.string() })).min(1) });
const V2Partial = z.object({
  errors: z.array(z.object({ batch_index: z.number().int().min(0), reason: z.string(), field: z.string(), message: z.string() })).min(1),
});
const Region = z.object({ url: z.string().url(), region: z.enum(['us', 'eu']), environment_id: z.number().int() });

const BASIC = `Basic ${Buffer.from('sandbox-site:sandbox-track-key').toString('base64')}`;
const WRONG_KEY = `Basic ${Buffer.from('sandbox-site:nope').toString('base64')}`;
const WRONG_SITE = `Basic ${Buffer.from('other-site:sandbox-track-key').toString('base64')}`;

let sb: RunningSandbox;

beforeAll(async () => {
  sb = await createSandbox({ retryAfterSeconds: 0, trackRateLimitPerSecond: 100_000, appRateLimitPerSecond: 100_000, seed: 7 });
});
afterAll(async () => {
  await sb.close();
});
beforeEach(() => {
  sb.customerio.reset();
});

interface Res {
  status: number;
  body: unknown;
  text: string;
  headers: Headers;
}

async function call(method: string, path: string, body?: unknown, auth: string | null = BASIC): Promise<Res> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (auth !== null) headers.authorization = auth;
  const res = await fetch(`${sb.urls.customerioTrack}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed, text, headers: res.headers };
}

let ulidSeq = 0;
/** A fresh valid ULID per call. */
function ulid(): string {
  ulidSeq += 1;
  return `01HZY3M5Q3W6VQ5N8KX9T4${ulidSeq.toString(32).toUpperCase().padStart(4, '0')}`.replace(/[ILOU]/g, 'X');
}

const isV1Error = (r: Res, status = 400) => {
  expect(r.status).toBe(status);
  return V1Error.parse(r.body);
};

describe('PUT /api/v1/customers/{identifier} (identify)', () => {
  it('creates a person and answers 200 {} as JSON', async () => {
    const r = await call('PUT', '/api/v1/customers/42', { email: 'ann@example.com', created_at: 1_700_000_000, plan: 'basic', vip: true, seats: 3 });
    expect(r.status).toBe(200);
    V1Ok.parse(r.body);
    expect(r.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(sb.customerio.getPerson('42')).toMatchObject({
      id: '42',
      email: 'ann@example.com',
      attributes: { created_at: 1_700_000_000, plan: 'basic', vip: true, seats: 3 },
    });
  });

  it('merges later calls: new values win, untouched attributes stay, null and "" remove', async () => {
    await call('PUT', '/api/v1/customers/42', { plan: 'basic', city: 'Oslo', tier: 'gold', note: 'x' });
    await call('PUT', '/api/v1/customers/42', { plan: 'pro', tier: null, note: '' });
    expect(sb.customerio.getPerson('42')!.attributes).toEqual({ plan: 'pro', city: 'Oslo' });
    expect(sb.customerio.listPeople()).toHaveLength(1);
  });

  it('resolves email paths case-insensitively and percent-decoded', async () => {
    await call('PUT', `/api/v1/customers/${encodeURIComponent('Ann@Example.com')}`, { plan: 'a' });
    await call('PUT', `/api/v1/customers/${encodeURIComponent('ann@example.com')}`, { plan: 'b' });
    expect(sb.customerio.listPeople()).toHaveLength(1);
    expect(sb.customerio.getPerson('ANN@example.com')!.attributes.plan).toBe('b');
  });

  it('updates identifiers when addressed by cio_<id>, and orders updates by _timestamp', async () => {
    await call('PUT', '/api/v1/customers/1', { email: 'a@x.com' });
    const cio = sb.customerio.getPerson('1')!.cio_id;
    await call('PUT', `/api/v1/customers/cio_${cio}`, { id: '2', email: 'b@x.com' });
    expect(sb.customerio.getPerson('2')).toMatchObject({ cio_id: cio, email: 'b@x.com' });
    await call('PUT', '/api/v1/customers/2', { status: 'new', _timestamp: 2000 });
    await call('PUT', '/api/v1/customers/2', { status: 'old', _timestamp: 1000 });
    expect(sb.customerio.getPerson('2')!.attributes.status).toBe('new');
  });

  it('answers 200 but records an attribute update failure when the body email belongs to someone else', async () => {
    await call('PUT', '/api/v1/customers/1', { email: 'one@x.com' });
    await call('PUT', '/api/v1/customers/2', { email: 'two@x.com' });
    const r = await call('PUT', '/api/v1/customers/1', { email: 'two@x.com', plan: 'z' });
    expect(r.status).toBe(200);
    expect(sb.customerio.getPerson('1')!.attributes.plan).toBeUndefined();
    expect(sb.customerio.activity().at(-1)).toMatchObject({ type: 'attribute_update_failure' });
  });

  it('accepts values exactly at the limits', async () => {
    const attrs: Record<string, string> = { ['n'.repeat(150)]: 'v'.repeat(1000) };
    for (let i = 1; i < 300; i++) attrs[`a${i}`] = 'x';
    const r = await call('PUT', `/api/v1/customers/${'i'.repeat(150)}`, attrs);
    expect(r.status).toBe(200);
    expect(Object.keys(sb.customerio.getPerson('i'.repeat(150))!.attributes)).toHaveLength(300);
  });

  it.each([
    ['an id over 150 bytes', `/api/v1/customers/${'i'.repeat(151)}`, {}, '150 bytes'],
    ['a multibyte id over 150 bytes', `/api/v1/customers/${encodeURIComponent('é'.repeat(76))}`, {}, '150 bytes'],
    ['an attribute name over 150 bytes', '/api/v1/customers/1', { ['n'.repeat(151)]: 'x' }, '150 bytes'],
    ['an attribute value over 1000 bytes', '/api/v1/customers/1', { bio: 'v'.repeat(1001) }, '1000 bytes'],
    ['more than 300 attributes in one call', '/api/v1/customers/1', Object.fromEntries(Array.from({ length: 301 }, (_, i) => [`a${i}`, i])), '300'],
    ['a non-integer created_at', '/api/v1/customers/1', { created_at: '2024-01-01' }, 'created_at'],
    ['an invalid email', '/api/v1/customers/1', { email: 'not-an-email' }, 'email'],
    ['a non-object body', '/api/v1/customers/1', [1, 2], 'JSON object'],
    ['malformed JSON', '/api/v1/customers/1', '{"a":', 'not valid JSON'],
  ])('refuses %s with 400 meta.errors', async (_name, path, body, message) => {
    const r = await call('PUT', path, body);
    const err = isV1Error(r);
    expect(err.meta.errors.join(' ')).toContain(message);
    expect(sb.customerio.listPeople()).toHaveLength(0);
  });

  it('refuses an identify that would take a person past 300 attributes', async () => {
    await call('PUT', '/api/v1/customers/1', Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`a${i}`, i])));
    const r = await call('PUT', '/api/v1/customers/1', { one_more: true });
    isV1Error(r);
    // Replacing an existing attribute is still fine.
    expect((await call('PUT', '/api/v1/customers/1', { a0: 'changed' })).status).toBe(200);
  });

  it.each([
    ['no credentials', null],
    ['a wrong API key', WRONG_KEY],
    ['a wrong site id', WRONG_SITE],
    ['the App bearer key', 'Bearer sandbox-app-key'],
  ])('answers 401 to %s and changes nothing', async (_name, auth) => {
    const r = await call('PUT', '/api/v1/customers/1', { a: 1 }, auth);
    expect(r.status).toBe(401);
    expect(sb.customerio.listPeople()).toHaveLength(0);
  });
});

describe('DELETE /api/v1/customers/{identifier}', () => {
  it('removes the person and their data; unknown people are a no-op 200', async () => {
    await call('PUT', '/api/v1/customers/1', { a: 1 });
    await call('POST', '/api/v1/customers/1/events', { name: 'x' });
    expect((await call('DELETE', '/api/v1/customers/1')).status).toBe(200);
    expect(sb.customerio.getPerson('1')).toBeUndefined();
    expect(sb.customerio.eventsFor('1')).toEqual([]);
    expect((await call('DELETE', '/api/v1/customers/nobody')).status).toBe(200);
  });

  it('validates the identifier and requires auth', async () => {
    isV1Error(await call('DELETE', `/api/v1/customers/${'i'.repeat(151)}`));
    await call('PUT', '/api/v1/customers/1', {});
    expect((await call('DELETE', '/api/v1/customers/1', undefined, null)).status).toBe(401);
    expect(sb.customerio.getPerson('1')).toBeDefined();
  });
});

describe('POST /api/v1/customers/{identifier}/events', () => {
  it('stores an event with its data and creates the person if needed', async () => {
    const r = await call('POST', '/api/v1/customers/7/events', { name: 'purchase', timestamp: 1_700_000_100, data: { price: 23.45 } });
    expect(r.status).toBe(200);
    V1Ok.parse(r.body);
    expect(sb.customerio.eventsFor('7')).toEqual([
      expect.objectContaining({ name: 'purchase', type: 'event', timestamp: 1_700_000_100, data: { price: 23.45 } }),
    ]);
  });

  it('deduplicates by id: a repeated id is accepted with 200 but stored once', async () => {
    const id = ulid();
    const first = await call('POST', '/api/v1/customers/7/events', { id, name: 'order_placed', data: { order: 1 } });
    const again = await call('POST', '/api/v1/customers/7/events', { id, name: 'order_placed', data: { order: 1 } });
    const other = await call('POST', '/api/v1/customers/7/events', { id: ulid(), name: 'order_placed', data: { order: 2 } });
    expect([first.status, again.status, other.status]).toEqual([200, 200, 200]);
    expect(sb.customerio.eventsFor('7').map((e) => e.data.order)).toEqual([1, 2]);
  });

  it('accepts names and data exactly at their limits', async () => {
    const data = { blob: 'x'.repeat(100_000 - JSON.stringify({ blob: '' }).length) };
    expect((await call('POST', '/api/v1/customers/7/events', { name: 'n'.repeat(100), data })).status).toBe(200);
  });

  it.each([
    ['a missing name', { data: {} }, 'name'],
    ['a name over 100 bytes', { name: 'n'.repeat(101) }, '100 bytes'],
    ['data over 100 000 bytes', { name: 'big', data: { blob: 'x'.repeat(100_000) } }, '100000 bytes'],
    ['an id that is not a ULID', { name: 'x', id: 'order-123' }, 'ULID'],
    ['a fractional timestamp', { name: 'x', timestamp: 1.5 }, 'timestamp'],
    ['an unknown type', { name: 'x', type: 'click' }, 'type'],
  ])('refuses %s with 400', async (_name, body, message) => {
    const err = isV1Error(await call('POST', '/api/v1/customers/7/events', body));
    expect(err.meta.errors.join(' ')).toContain(message);
    expect(sb.customerio.getPerson('7')).toBeUndefined();
  });

  it('requires auth', async () => {
    expect((await call('POST', '/api/v1/customers/7/events', { name: 'x' }, WRONG_KEY)).status).toBe(401);
    expect(sb.customerio.getPerson('7')).toBeUndefined();
  });
});

describe('other v1 person endpoints', () => {
  it('tracks anonymous events and attaches them when identify sets anonymous_id', async () => {
    expect((await call('POST', '/api/v1/events', { name: 'viewed', anonymous_id: 'anon-1' })).status).toBe(200);
    isV1Error(await call('POST', '/api/v1/events', { name: 'viewed' }));
    expect((await call('POST', '/api/v1/events', { name: 'viewed', anonymous_id: 'anon-1' }, null)).status).toBe(401);
    await call('PUT', '/api/v1/customers/1', { anonymous_id: 'anon-1' });
    expect(sb.customerio.eventsFor('1').map((e) => e.name)).toEqual(['viewed']);
  });

  it('adds and deletes devices', async () => {
    expect((await call('PUT', '/api/v1/customers/1/devices', { device: { id: 'tok', platform: 'ios', last_used: 1 } })).status).toBe(200);
    isV1Error(await call('PUT', '/api/v1/customers/1/devices', { device: { id: 'tok', platform: 'windows' } }));
    expect((await call('PUT', '/api/v1/customers/1/devices', { device: { id: 'x', platform: 'ios' } }, null)).status).toBe(401);
    expect(sb.customerio.getPerson('1')!.devices).toEqual([{ id: 'tok', platform: 'ios', last_used: 1 }]);
    expect((await call('DELETE', '/api/v1/customers/1/devices/tok')).status).toBe(200);
    expect(sb.customerio.getPerson('1')!.devices).toEqual([]);
  });

  it('suppresses (deleting and blocking) and unsuppresses', async () => {
    await call('PUT', '/api/v1/customers/1', { a: 1 });
    expect((await call('POST', '/api/v1/customers/1/suppress', {})).status).toBe(200);
    expect(sb.customerio.getPerson('1')).toBeUndefined();
    await call('PUT', '/api/v1/customers/1', { a: 2 });
    expect(sb.customerio.getPerson('1')).toBeUndefined();
    expect((await call('POST', '/api/v1/customers/1/unsuppress', {}, null)).status).toBe(401);
    expect((await call('POST', '/api/v1/customers/1/unsuppress', {})).status).toBe(200);
    await call('PUT', '/api/v1/customers/1', { a: 3 });
    expect(sb.customerio.getPerson('1')!.attributes.a).toBe(3);
  });

  it('merges customers', async () => {
    await call('PUT', '/api/v1/customers/p', { plan: 'pro' });
    await call('PUT', `/api/v1/customers/${encodeURIComponent('s@x.com')}`, { city: 'Oslo' });
    const bad = isV1Error(await call('POST', '/api/v1/merge_customers', { primary: { id: 'p', email: 'x@y.z' }, secondary: { email: 's@x.com' } }));
    expect(bad.meta.errors.join(' ')).toContain('multiple identifiers');
    expect((await call('POST', '/api/v1/merge_customers', { primary: { id: 'p' }, secondary: { email: 's@x.com' } }, null)).status).toBe(401);
    expect((await call('POST', '/api/v1/merge_customers', { primary: { id: 'p' }, secondary: { email: 's@x.com' } })).status).toBe(200);
    expect(sb.customerio.getPerson('p')).toMatchObject({ email: 's@x.com', attributes: { plan: 'pro', city: 'Oslo' } });
    expect(sb.customerio.listPeople()).toHaveLength(1);
  });

  it('answers unknown routes with 404 and wrong methods with 405', async () => {
    expect((await call('GET', '/api/v1/nothing')).status).toBe(404);
    const r = await call('GET', '/api/v1/customers/1');
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('PUT, DELETE');
  });
});

describe('POST /api/v1/segments/{segment_id}/add_customers and remove_customers', () => {
  async function manualSegment(): Promise<number> {
    const res = await fetch(`${sb.urls.customerioApp}/v1/segments`, {
      method: 'POST',
      headers: { authorization: 'Bearer sandbox-app-key', 'content-type': 'application/json' },
      body: JSON.stringify({ segment: { name: 'Manual' } }),
    });
    return ((await res.json()) as { segment: { id: number } }).segment.id;
  }

  it('adds known people, ignores unknown and mismatched ids, and removes', async () => {
    await call('PUT', '/api/v1/customers/1', { email: 'one@x.com' });
    await call('PUT', '/api/v1/customers/2', {});
    const seg = await manualSegment();
    const add = await call('POST', `/api/v1/segments/${seg}/add_customers`, { ids: ['1', '2', 'ghost', 'one@x.com'] });
    expect(add.status).toBe(200);
    V1Ok.parse(add.body);
    expect(sb.customerio.segmentMembers(seg).map((m) => m.id)).toEqual(['1', '2']);
    await call('POST', `/api/v1/segments/${seg}/remove_customers?id_type=email`, { ids: ['one@x.com'] });
    expect(sb.customerio.segmentMembers(seg).map((m) => m.id)).toEqual(['2']);
    await call('POST', `/api/v1/segments/${seg}/add_customers?id_type=cio_id`, { ids: [sb.customerio.getPerson('1')!.cio_id] });
    expect(sb.customerio.segmentMembers(seg)).toHaveLength(2);
  });

  it('takes exactly 1000 ids and refuses 1001 with v1 meta.errors', async () => {
    const seg = await manualSegment();
    const ids = Array.from({ length: 1000 }, (_, i) => `p${i}`);
    expect((await call('POST', `/api/v1/segments/${seg}/add_customers`, { ids })).status).toBe(200);
    const err = isV1Error(await call('POST', `/api/v1/segments/${seg}/add_customers`, { ids: [...ids, 'one-more'] }));
    expect(err.meta.errors[0]).toContain('1000');
  });

  it.each([
    ['an empty ids array', { ids: [] }, ''],
    ['a missing ids key', { id: ['1'] }, ''],
    ['non-string ids', { ids: [1, 2] }, ''],
    ['an unknown id_type', { ids: ['1'] }, '?id_type=phone'],
  ])('refuses %s with 400', async (_name, body, query) => {
    const seg = await manualSegment();
    isV1Error(await call('POST', `/api/v1/segments/${seg}/add_customers${query}`, body));
  });

  it('answers a missing segment with 404 "Segment not found" and refuses data-driven segments', async () => {
    await call('PUT', '/api/v1/customers/1', {});
    const missing = await call('POST', '/api/v1/segments/999/add_customers', { ids: ['1'] });
    expect(missing.status).toBe(404);
    expect(missing.body).toBe('Segment not found');
    const dynamic = sb.customerio.seedSegment({ name: 'Data-driven', memberIds: ['1'] });
    isV1Error(await call('POST', `/api/v1/segments/${dynamic.id}/add_customers`, { ids: ['1'] }));
    isV1Error(await call('POST', `/api/v1/segments/${dynamic.id}/remove_customers`, { ids: ['1'] }));
    expect(sb.customerio.segmentMembers(dynamic.id)).toHaveLength(1);
  });

  it('requires auth', async () => {
    await call('PUT', '/api/v1/customers/1', {});
    const seg = await manualSegment();
    expect((await call('POST', `/api/v1/segments/${seg}/add_customers`, { ids: ['1'] }, null)).status).toBe(401);
    expect(sb.customerio.segmentMembers(seg)).toHaveLength(0);
  });
});

describe('GET /api/v1/accounts/region', () => {
  it('names the region, the workspace and the sandbox host itself', async () => {
    const r = await call('GET', '/api/v1/accounts/region');
    expect(r.status).toBe(200);
    expect(Region.parse(r.body)).toEqual({ url: sb.urls.customerioTrack, region: 'us', environment_id: 1 });
  });

  it('answers 401 with the documented message to wrong credentials', async () => {
    const r = await call('GET', '/api/v1/accounts/region', undefined, WRONG_KEY);
    expect(r.status).toBe(401);
    expect(V1Error.parse(r.body).meta.errors[0]).toContain('Make sure that you provided the right credentials');
  });
});

describe('POST /api/v2/entity', () => {
  it('identifies people and objects and relates them', async () => {
    expect((await call('POST', '/api/v2/entity', { type: 'person', identifiers: { id: '42' }, action: 'identify', attributes: { first_name: 'Jane' } })).status).toBe(200);
    const obj = await call('POST', '/api/v2/entity', {
      type: 'object',
      identifiers: { object_type_id: '1', object_id: 'acme' },
      action: 'identify',
      attributes: { name: 'Acme Corp' },
      cio_relationships: [{ identifiers: { id: '42' }, relationship_attributes: { role: 'admin' } }],
    });
    expect(obj.status).toBe(200);
    V1Ok.parse(obj.body);
    expect(sb.customerio.getObject('1', 'acme')).toMatchObject({ attributes: { name: 'Acme Corp' }, people: [sb.customerio.getPerson('42')!.cio_id] });
    expect(sb.customerio.getPerson('42')!.relationships).toEqual([expect.objectContaining({ object_id: 'acme', attributes: { role: 'admin' } })]);
  });

  it.each([
    ['missing identifiers', { type: 'person', action: 'identify' }, 'identifiers'],
    ['two identifiers', { type: 'person', identifiers: { id: '1', email: 'a@b.c' }, action: 'identify' }, 'identifiers'],
    ['a phone identifier (not enabled)', { type: 'person', identifiers: { phone: '+14155552671' }, action: 'identify' }, 'identifiers.phone'],
    ['an unknown action', { type: 'person', identifiers: { id: '1' }, action: 'upsert' }, 'action'],
    ['an unknown type', { type: 'account', identifiers: { id: '1' }, action: 'identify' }, 'type'],
    ['an event without name', { type: 'person', identifiers: { id: '1' }, action: 'event' }, 'name'],
    ['an object type id that is not an integer string', { type: 'object', identifiers: { object_type_id: 'company', object_id: 'a' }, action: 'identify' }, 'identifiers.object_type_id'],
    ['a delivery event without device token', { type: 'delivery', identifiers: { id: 'd1' }, action: 'event', name: 'opened', attributes: {} }, 'attributes.device_token'],
  ])('refuses %s with 400 {errors:[{reason, field, message}]}', async (_name, body, field) => {
    const r = await call('POST', '/api/v2/entity', body);
    expect(r.status).toBe(400);
    expect(V2Error.parse(r.body).errors.map((e) => e.field)).toContain(field);
    expect(sb.customerio.listPeople()).toHaveLength(0);
  });

  it('refuses a request over 32 000 bytes (the smaller reading of "32kb") and accepts one at it', async () => {
    const base = { type: 'person', identifiers: { id: '1' }, action: 'identify', attributes: {} as Record<string, string> };
    const sized = (total: number) => {
      const attrs: Record<string, string> = {};
      let body = JSON.stringify({ ...base, attributes: attrs });
      for (let i = 0; body.length < total; i++) {
        attrs[`k${i}`] = 'v'.repeat(Math.min(900, total - body.length - `,"k${i}":""`.length));
        body = JSON.stringify({ ...base, attributes: attrs });
      }
      return body;
    };
    const atLimit = sized(32_000);
    expect(Buffer.byteLength(atLimit)).toBe(32_000);
    expect((await call('POST', '/api/v2/entity', atLimit)).status).toBe(200);
    const over = await call('POST', '/api/v2/entity', `${atLimit} `);
    expect(over.status).toBe(400);
    expect(V2Error.parse(over.body).errors[0]!.reason).toBe('too_large');
  });

  it('requires auth', async () => {
    const r = await call('POST', '/api/v2/entity', { type: 'person', identifiers: { id: '1' }, action: 'identify' }, WRONG_SITE);
    expect(r.status).toBe(401);
    expect(sb.customerio.listPeople()).toHaveLength(0);
  });
});

describe('POST /api/v2/batch', () => {
  it('answers 200 {} when every entry is valid, applying them in order', async () => {
    const r = await call('POST', '/api/v2/batch', {
      batch: [
        { type: 'person', identifiers: { id: '1' }, action: 'identify', attributes: { plan: 'a' } },
        { type: 'person', identifiers: { id: '1' }, action: 'identify', attributes: { plan: 'b' } },
        { type: 'person', identifiers: { id: '1' }, action: 'event', name: 'upgraded', id: ulid() },
        { type: 'person', identifiers: { email: 'two@x.com' }, action: 'identify', attributes: { plan: 'c' } },
      ],
    });
    expect(r.status).toBe(200);
    V1Ok.parse(r.body);
    expect(sb.customerio.getPerson('1')!.attributes.plan).toBe('b');
    expect(sb.customerio.eventsFor('1')).toHaveLength(1);
    expect(sb.customerio.getPerson('two@x.com')!.attributes.plan).toBe('c');
  });

  it('answers 207 listing the invalid entries by batch_index and still applies the valid ones', async () => {
    const r = await call('POST', '/api/v2/batch', {
      batch: [
        { type: 'person', identifiers: { id: 'ok-1' }, action: 'identify', attributes: { plan: 'a' } },
        { type: 'person', identifiers: { id: 'bad-1' }, action: 'identify', attributes: { bio: 'x'.repeat(1001) } },
        { type: 'person', identifiers: { id: 'ok-2' }, action: 'identify' },
        { type: 'person', action: 'identify', attributes: {} },
        'not an object',
      ],
    });
    expect(r.status).toBe(207);
    const body = V2Partial.parse(r.body);
    expect(body.errors.map((e) => e.batch_index)).toEqual([1, 3, 4]);
    expect(body.errors[0]!.field).toBe('attributes.bio');
    expect(sb.customerio.listPeople().map((p) => p.id)).toEqual(['ok-1', 'ok-2']);
  });

  it('counts a person\'s 300 attributes against what the batch gave them before, one entry at a time', async () => {
    const attrs = (from: number, n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`a${from + i}`, i]));
    const r = await call('POST', '/api/v2/batch', {
      batch: [
        { type: 'person', identifiers: { id: 'full' }, action: 'identify', attributes: attrs(0, 299) },
        { type: 'person', identifiers: { id: 'full' }, action: 'identify', attributes: attrs(299, 1) },
        { type: 'person', identifiers: { id: 'full' }, action: 'identify', attributes: attrs(300, 1) },
        { type: 'person', identifiers: { id: 'full' }, action: 'identify', attributes: { a0: null, a300: 1 } },
        { type: 'person', identifiers: { id: 'new' }, action: 'identify', attributes: { ...attrs(0, 300), email: 'new@x.com' } },
      ],
    });
    expect(r.status).toBe(207);
    expect(V2Partial.parse(r.body).errors).toEqual([expect.objectContaining({ batch_index: 2, reason: 'too_many', field: 'attributes' })]);
    const full = sb.customerio.getPerson('full')!;
    expect(Object.keys(full.attributes)).toHaveLength(300);
    expect(full.attributes.a0).toBeUndefined();
    expect(full.attributes.a300).toBe(1);
    expect(Object.keys(sb.customerio.getPerson('new')!.attributes)).toHaveLength(300);
  });

  it('gives a person found by the body\'s email the path\'s id, entry after entry of one batch', async () => {
    const r = await call('POST', '/api/v2/batch', {
      batch: [
        { type: 'person', identifiers: { email: 'ann@x.com' }, action: 'identify', attributes: { plan: 'a' } },
        { type: 'person', identifiers: { id: 'ann-1' }, action: 'identify', attributes: { email: 'ANN@x.com', plan: 'b' } },
        { type: 'person', identifiers: { id: 'ann-1' }, action: 'identify', attributes: { plan: 'c' } },
        { type: 'person', identifiers: { id: 'bob' }, action: 'identify', attributes: { email: 'bob@x.com' } },
        { type: 'person', identifiers: { email: 'BOB@x.com' }, action: 'identify', attributes: { id: 'bob', plan: 'd' } },
      ],
    });
    expect(r.status).toBe(200);
    const ann = sb.customerio.getPerson('ann-1')!;
    expect([ann.email, ann.attributes.plan]).toEqual(['ann@x.com', 'c']);
    expect(sb.customerio.getPerson('ann@x.com')!.cio_id).toBe(ann.cio_id);
    expect(sb.customerio.getPerson('bob')!.attributes.plan).toBe('d');
    expect(sb.customerio.listPeople().map((p) => p.id).sort()).toEqual(['ann-1', 'bob']);
  });

  it('fails an entry over 32 000 bytes per entry while the batch goes through', async () => {
    const r = await call('POST', '/api/v2/batch', {
      batch: [
        { type: 'person', identifiers: { id: 'small' }, action: 'identify' },
        { type: 'person', identifiers: { id: 'huge' }, action: 'event', name: 'blob', attributes: { blob: 'x'.repeat(33_000) } },
      ],
    });
    expect(r.status).toBe(207);
    expect(V2Partial.parse(r.body).errors).toEqual([expect.objectContaining({ batch_index: 1, reason: 'too_large' })]);
    expect(sb.customerio.getPerson('small')).toBeDefined();
    expect(sb.customerio.getPerson('huge')).toBeUndefined();
  });

  it('refuses a whole request over 500 000 bytes', async () => {
    const entry = { type: 'person', identifiers: { id: 'x' }, action: 'identify', attributes: { v: 'y'.repeat(900) } };
    const batch = Array.from({ length: 560 }, (_, i) => ({ ...entry, identifiers: { id: `p${i}` } }));
    const body = JSON.stringify({ batch });
    expect(Buffer.byteLength(body)).toBeGreaterThan(500_000);
    const r = await call('POST', '/api/v2/batch', body);
    expect(r.status).toBe(400);
    expect(V2Error.parse(r.body).errors[0]!.reason).toBe('too_large');
    expect(sb.customerio.listPeople()).toHaveLength(0);
  });

  it.each([
    ['malformed JSON', '{"batch": ['],
    ['a body without batch', { entries: [] }],
    ['batch that is not an array', { batch: {} }],
    ['an empty batch', { batch: [] }],
  ])('refuses %s as a whole with 400', async (_name, body) => {
    const r = await call('POST', '/api/v2/batch', body);
    expect(r.status).toBe(400);
    V2Error.parse(r.body);
  });

  it('requires auth', async () => {
    const r = await call('POST', '/api/v2/batch', { batch: [{ type: 'person', identifiers: { id: '1' }, action: 'identify' }] }, null);
    expect(r.status).toBe(401);
    expect(sb.customerio.listPeople()).toHaveLength(0);
  });

  it('deduplicates events by id across v1 and v2', async () => {
    const id = ulid();
    await call('POST', '/api/v1/customers/1/events', { id, name: 'paid' });
    const r = await call('POST', '/api/v2/batch', { batch: [{ type: 'person', identifiers: { id: '1' }, action: 'event', name: 'paid', id }] });
    expect(r.status).toBe(200);
    expect(sb.customerio.eventsFor('1')).toHaveLength(1);
  });
});

describe('Track rate limit', () => {
  it('answers 429 with Retry-After once the per-second budget is spent', async () => {
    const limited = await createSandbox({ trackRateLimitPerSecond: 2, retryAfterSeconds: 0 });
    try {
      // Concurrent, so all land inside one second even on a slow machine.
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          fetch(`${limited.urls.customerioTrack}/api/v1/customers/p${i}`, {
            method: 'PUT',
            headers: { authorization: BASIC, 'content-type': 'application/json' },
            body: '{}',
          }),
        ),
      );
      const limitedOnes = results.filter((r) => r.status === 429);
      expect(limitedOnes.length).toBeGreaterThan(0);
      for (const r of limitedOnes) {
        expect(r.headers.get('retry-after')).toBe('0');
        V1Error.parse(await r.json());
      }
      expect(limited.customerio.listPeople()).toHaveLength(8 - limitedOnes.length);
    } finally {
      await limited.close();
    }
  });
});
