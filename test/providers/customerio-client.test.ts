/**
 * The Customer.io client against the sandbox emulator: every client operation, the documented error
 * shapes, pagination, 429/5xx handling, 207 partial failures, and fault injection showing that nothing
 * is lost or duplicated. State is checked through the emulator's in-process API, not through the client.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deterministicUlid } from '../../reconciler/core/ulid.ts';
import { CustomerioClient, customerioConfigFromEnv, type CustomerioConfig, type V2Entry } from '../../reconciler/providers/customerio/client.ts';
import { ProviderError } from '../../reconciler/providers/errors.ts';
import { RequestCounter } from '../../reconciler/providers/http/http-client.ts';
import { LimiterRegistry } from '../../reconciler/providers/http/rate-limiter.ts';
import { ManualTimer } from '../../reconciler/providers/http/timer.ts';
import { createSandbox, type RunningSandbox } from '../../reconciler/sandbox/index.ts';

let sb: RunningSandbox;
let counter: RequestCounter;

beforeAll(async () => {
  sb = await createSandbox({ port: 0, seed: 7, retryAfterSeconds: 0, appRateLimitPerSecond: 1000, trackRateLimitPerSecond: 100_000 });
});

afterAll(async () => {
  await sb.close();
});

beforeEach(() => {
  sb.faults.clear();
  sb.customerio.reset();
  counter = new RequestCounter();
});

function client(overrides: Partial<CustomerioConfig> = {}, env: Record<string, string> = {}): CustomerioClient {
  return new CustomerioClient(
    customerioConfigFromEnv(
      { ...sb.env, ...env },
      {
        trackRatePerSecond: 10_000,
        appRatePerSecond: 1000,
        limiters: new LimiterRegistry(),
        retry: { baseDelayMs: 1, maxDelayMs: 4 },
        onRequest: counter.hook,
        ...overrides,
      },
    ),
  );
}

async function pages<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const p of it) out.push(p);
  return out;
}

const T0 = Date.UTC(2030, 0, 1);
const eid = (key: string): string => deterministicUlid(key, T0);

const identifyEntry = (id: string, attributes: Record<string, unknown> = {}): V2Entry => ({ type: 'person', identifiers: { id }, action: 'identify', attributes });

describe('Track v1', () => {
  it('identifies, updates and deletes people', async () => {
    const c = client();
    await c.identify('cust-1', { email: 'one@example.com', plan: 'basic' });
    await c.identify('one@example.com', { plan: 'pro' });
    expect(sb.customerio.getPerson('cust-1')).toMatchObject({ id: 'cust-1', email: 'one@example.com', attributes: expect.objectContaining({ plan: 'pro' }) });
    await c.deletePerson('cust-1');
    expect(sb.customerio.getPerson('cust-1')).toBeUndefined();
  });

  it('tracks events once per dedupe id', async () => {
    const c = client();
    await c.identify('cust-2', {});
    await c.trackEvent('cust-2', { name: 'order_delivered', id: eid('order:A1'), data: { order: 'A1' } });
    await c.trackEvent('cust-2', { name: 'order_delivered', id: eid('order:A1'), data: { order: 'A1' } });
    const generated = await c.trackEvent('cust-2', { name: 'order_delivered', data: { order: 'A2' } }, { generateId: true });
    const events = sb.customerio.eventsFor('cust-2');
    expect(events).toHaveLength(2);
    expect(events.map((e) => e.id).sort()).toEqual([eid('order:A1'), generated.id].sort());
  });

  it('reports a validation error with the service text and does not retry it', async () => {
    const err = (await client()
      .identify('cust-3', { too_long: 'x'.repeat(1200) })
      .catch((e: unknown) => e)) as ProviderError;
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ status: 400, retryable: false, outcome: 'not-applied', attempts: 1 });
    expect(err.message).toMatch(/1000/);
    expect(sb.customerio.getPerson('cust-3')).toBeUndefined();
  });

  it('reports bad credentials as 401 without the key in the error', async () => {
    const err = (await client({}, { CUSTOMERIO_TRACK_API_KEY: 'wrong-track-key-123' })
      .identify('cust-4', {})
      .catch((e: unknown) => e)) as ProviderError;
    expect(err).toMatchObject({ status: 401, code: 'unauthorized', retryable: false });
    expect(`${String(err)} ${JSON.stringify(err)}`).not.toContain('wrong-track-key-123');
  });

  it('reads the account region', async () => {
    expect(await client().getRegion()).toEqual({ region: 'us', url: expect.any(String), environmentId: expect.any(Number) });
  });

  it('adds and removes manual segment members in chunks', async () => {
    const c = client();
    const seg = await c.createSegment({ name: 'Winback', description: 'lapsed buyers' });
    const people = Array.from({ length: 30 }, (_, i) => `m-${i}`);
    await c.sendBatches(people.map((id) => identifyEntry(id)));
    // 1200 ids (30 real, the rest unknown and ignored by the service) need two requests.
    const ids = [...people, ...Array.from({ length: 1170 }, (_, i) => `ghost-${i}`)];
    expect(await c.addToSegment(seg.id, ids, 'id')).toEqual({ requests: 2 });
    expect(sb.customerio.segmentMembers(seg.id).map((m) => m.id).sort()).toEqual([...people].sort());
    await c.removeFromSegment(seg.id, people.slice(0, 10));
    expect(sb.customerio.segmentMembers(seg.id)).toHaveLength(20);
  });

  it('refuses to change a data-driven segment', async () => {
    const seg = sb.customerio.seedSegment({ name: 'Dynamic', type: 'dynamic' });
    await client().identify('cust-5', {});
    await expect(client().addToSegment(seg.id, ['cust-5'])).rejects.toMatchObject({ status: 400, retryable: false });
  });
});

describe('Track v2', () => {
  it('sends an entity and a mixed batch, mapping 207 failures to caller indexes', async () => {
    const c = client();
    await c.entity(identifyEntry('v2-0', { plan: 'gold' }));
    expect(sb.customerio.getPerson('v2-0')?.attributes).toMatchObject({ plan: 'gold' });
    const entries: V2Entry[] = [
      identifyEntry('v2-1', { plan: 'basic' }),
      identifyEntry('v2-big', { blob: 'x'.repeat(40_000) }),
      { type: 'person', action: 'identify' } as V2Entry,
      { type: 'person', identifiers: { id: 'v2-1' }, action: 'event', name: 'signed_up', id: eid('signup:v2-1') },
    ];
    const out = await c.batch(entries);
    expect(out.results.map((r) => r.ok)).toEqual([true, false, false, true]);
    expect(out.results[1]).toMatchObject({ index: 1, reason: 'entry_too_large' });
    expect(out.results[2]).toMatchObject({ index: 2, ok: false, retryable: false });
    expect(out.results[2]!.message).toBeTruthy();
    expect(sb.customerio.getPerson('v2-1')).toBeDefined();
    expect(sb.customerio.getPerson('v2-big')).toBeUndefined();
    expect(sb.customerio.eventsFor('v2-1')).toHaveLength(1);
  });

  it('packs large inputs into several batches under 500 kb', async () => {
    const entries = Array.from({ length: 60 }, (_, i) => identifyEntry(`pack-${i}`, Object.fromEntries(Array.from({ length: 20 }, (_, k) => [`note_${k}`, 'n'.repeat(990)]))));
    const out = await client().sendBatches(entries);
    expect(out.accepted).toBe(60);
    expect(out.batches).toBe(3);
    expect(counter.count('track.v2.batch')).toBe(3);
    expect(sb.customerio.listPeople().filter((p) => p.id?.startsWith('pack-'))).toHaveLength(60);
  });

  it('sends each batch as exactly the JSON of its entries, packed by their UTF-8 size (multi-byte text near the limit)', async () => {
    const bodies: Buffer[] = [];
    const server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (d: Buffer) => parts.push(d));
      req.on('end', () => {
        bodies.push(Buffer.concat(parts));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (server.address() as AddressInfo).port;
      // 3 bytes of UTF-8 per character: a batch packed by characters would pass 500 kb.
      const entries = Array.from({ length: 40 }, (_, i) => identifyEntry(`utf-${i}`, { note: '€'.repeat(9000), quote: 'a "b" \\ c' }));
      const out = await client({}, { CUSTOMERIO_TRACK_URL: `http://127.0.0.1:${port}` }).sendBatches(entries);
      expect(out.accepted).toBe(40);
      const sent = bodies.map((b) => JSON.parse(b.toString('utf8')) as { batch: V2Entry[] });
      expect(sent.flatMap((b) => b.batch)).toEqual(entries);
      for (const [i, b] of bodies.entries()) {
        expect(b.toString('utf8')).toBe(JSON.stringify(sent[i]));
        expect(b.length).toBeLessThanOrEqual(500 * 1024);
      }
      expect(bodies.length).toBeGreaterThan(2);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('reports 207 partial failures per entry and applies the rest', async () => {
    sb.faults.set({ partialFailureRate: 0.3, service: 'track' });
    const entries = Array.from({ length: 50 }, (_, i) => identifyEntry(`pf-${i}`));
    const out = await client().sendBatches(entries);
    const failed = out.results.filter((r) => !r.ok);
    expect(failed.length).toBeGreaterThan(0);
    expect(out.accepted + failed.length).toBe(50);
    for (const r of out.results) {
      const landed = sb.customerio.getPerson(`pf-${r.index}`) !== undefined;
      expect(landed).toBe(r.ok);
    }
    // The emulator's injected failures are server-side ("retry it"), so they are flagged as resendable.
    expect(failed.every((r) => r.retryable === true)).toBe(true);
  });
});

describe('App API', () => {
  it('creates, reads, counts, lists and deletes manual segments', async () => {
    const c = client();
    const seg = await c.createSegment({ name: 'VIP', description: 'top spenders' });
    expect(seg).toMatchObject({ name: 'VIP', type: 'manual' });
    expect(await c.getSegment(seg.id)).toMatchObject({ id: seg.id, name: 'VIP' });
    expect((await c.listSegments()).map((s) => s.id)).toContain(seg.id);
    expect(await c.segmentCustomerCount(seg.id)).toBe(0);
    expect(await c.deleteSegment(seg.id)).toBe(true);
    expect(await c.deleteSegment(seg.id)).toBe(false);
    expect(await c.getSegment(seg.id)).toBeUndefined();
  });

  it('pages through segment membership and customer search', async () => {
    const c = client();
    const ids = Array.from({ length: 25 }, (_, i) => `pg-${String(i).padStart(2, '0')}`);
    await c.sendBatches(ids.map((id, i) => identifyEntry(id, { tier: i % 2 === 0 ? 'gold' : 'silver' })));
    const seg = sb.customerio.seedSegment({ name: 'Seeded', type: 'dynamic', memberIds: ids });
    const membership = await pages(c.segmentMembership(seg.id, { pageSize: 10 }));
    expect(membership.map((p) => p.ids.length)).toEqual([10, 10, 5]);
    expect(membership.flatMap((p) => p.ids).sort()).toEqual(ids);
    expect(await c.segmentCustomerCount(seg.id)).toBe(25);

    const found = await pages(c.searchCustomers({ attribute: { field: 'tier', operator: 'eq', value: 'gold' } }, { pageSize: 5 }));
    expect(found.length).toBeGreaterThan(1);
    expect(found.flatMap((p) => p.ids).sort()).toEqual(ids.filter((_, i) => i % 2 === 0));
  });

  it('looks people up by email, id and in bulk', async () => {
    const c = client();
    const ids = Array.from({ length: 130 }, (_, i) => `lk-${i}`);
    await c.sendBatches(ids.map((id) => identifyEntry(id, { email: `${id}@example.com`, city: 'Lyon' })));
    expect(await c.getCustomersByEmail('lk-3@example.com')).toEqual([expect.objectContaining({ id: 'lk-3', email: 'lk-3@example.com' })]);
    expect(await c.getCustomersByEmail('nobody@example.com')).toEqual([]);
    expect((await c.getAttributes('lk-4'))?.attributes).toMatchObject({ city: 'Lyon' });
    expect(await c.getAttributes('missing-person')).toBeUndefined();
    const before = counter.count('app.customers.attributes_batch');
    const many = await c.getCustomersAttributes([...ids, 'unknown-1']);
    expect(many).toHaveLength(130);
    expect(counter.count('app.customers.attributes_batch') - before).toBe(2);
  });

  it("lists a person's segments", async () => {
    const c = client();
    await c.identify('segs-1', {});
    const seg = await c.createSegment({ name: 'Members' });
    await c.addToSegment(seg.id, ['segs-1']);
    expect((await c.getCustomerSegments('segs-1'))?.map((s) => s.id)).toEqual([seg.id]);
    expect(await c.getCustomerSegments('segs-nobody')).toBeUndefined();
  });

  it('exports people and downloads the file', async () => {
    const c = client();
    await c.sendBatches(['ex-1', 'ex-2', 'ex-3'].map((id) => identifyEntry(id, { plan: id === 'ex-2' ? 'free' : 'paid' })));
    const exp = await c.createCustomersExport({ attribute: { field: 'plan', operator: 'eq', value: 'paid' } });
    expect((await c.listExports()).map((e) => e.id)).toContain(exp.id);
    const done = await c.waitForExport(exp.id, { pollIntervalMs: 5 });
    expect(done.status).toBe('done');
    const text = await c.downloadExportText(exp.id);
    expect(text).toContain('ex-1');
    expect(text).toContain('ex-3');
    expect(text).not.toContain('ex-2');
    expect(await c.getExport(999_999)).toBeUndefined();
  });

  it('returns the service text for an App validation error', async () => {
    const err = (await client()
      .getAttributes('someone', 'phone')
      .catch((e: unknown) => e)) as ProviderError;
    expect(err).toMatchObject({ status: 400, retryable: false });
    expect(err.message).toMatch(/phone/);
  });

  it('reports a wrong App key as 401', async () => {
    const err = (await client({}, { CUSTOMERIO_APP_API_KEY: 'wrong-app-key-456' })
      .listSegments()
      .catch((e: unknown) => e)) as ProviderError;
    expect(err).toMatchObject({ status: 401, retryable: false });
    expect(JSON.stringify(err)).not.toContain('wrong-app-key-456');
  });
});

describe('throttling and transient failures', () => {
  it('waits out 429 storms for exactly the Retry-After asked, even for a non-idempotent create', async () => {
    sb.faults.set({ storm429: { count: 2, retryAfterSeconds: 2 }, service: 'app' });
    const timer = new ManualTimer(Date.now());
    const seg = await client({ timer, limiters: new LimiterRegistry(timer) }).createSegment({ name: 'Stormy' });
    expect(timer.sleeps).toEqual([2000, 2000]);
    expect(counter.byStatus.get('429')).toBe(2);
    expect(sb.customerio.listSegments().filter((s) => s.name === 'Stormy').map((s) => s.id)).toEqual([seg.id]);
  });

  it('retries 5xx bursts on idempotent calls and then succeeds', async () => {
    sb.faults.set({ burst5xx: 3, service: 'track' });
    await client().identify('burst-1', { ok: true });
    expect(counter.count('track.identify')).toBe(4);
    expect(sb.customerio.getPerson('burst-1')?.attributes).toMatchObject({ ok: true });
  });

  it('does not retry a segment create whose answer was lost, and says to refresh', async () => {
    sb.faults.set({ dropAfterApplyRate: 1, service: 'app', pathPattern: '^/v1/segments$' });
    const err = (await client()
      .createSegment({ name: 'Maybe' })
      .catch((e: unknown) => e)) as ProviderError;
    expect(err).toMatchObject({ outcome: 'unknown', retryable: false });
    expect(err.message).toMatch(/refresh live state/);
    expect(counter.count('app.segments.create')).toBe(1);
    // It was applied exactly once; a refresh finds it.
    sb.faults.clear();
    expect((await client().listSegments()).filter((s) => s.name === 'Maybe')).toHaveLength(1);
  });

  it('stays under the documented App limit with default settings', async () => {
    const strict = await createSandbox({ port: 0, seed: 3, retryAfterSeconds: 0 });
    try {
      // A counter of its own: nothing from earlier tests can land in it. A retry after a
      // transport hiccup on a loaded machine is not what this test is about, so it counts first
      // attempts and asserts that none was throttled.
      const own = new RequestCounter();
      const c = new CustomerioClient(customerioConfigFromEnv(strict.env, { limiters: new LimiterRegistry(), onRequest: own.hook }));
      await Promise.all(Array.from({ length: 25 }, () => c.listSegments()));
      expect(own.total - own.retries).toBe(25);
      expect(own.byStatus.get('429')).toBeUndefined();
    } finally {
      await strict.close();
    }
  });
});

describe('fault injection: nothing lost, nothing duplicated', () => {
  const N = 40;

  it('lands N identifies and N events exactly once through errors and dropped connections (v1)', async () => {
    sb.faults.set({ errorRate: 0.3, dropRate: 0.1, dropAfterApplyRate: 0.15, service: 'track' });
    const c = client({ retry: { maxAttempts: 20, baseDelayMs: 1, maxDelayMs: 4 }, concurrency: 6 });
    const ids = Array.from({ length: N }, (_, i) => `ft-${i}`);
    await Promise.all(ids.map((id, i) => c.identify(id, { n: i })));
    await Promise.all(ids.map((id, i) => c.trackEvent(id, { name: 'purchase', id: eid(`ft:${i}`), data: { n: i } })));
    for (const [i, id] of ids.entries()) {
      expect(sb.customerio.getPerson(id)?.attributes).toMatchObject({ n: i });
      expect(sb.customerio.eventsFor(id)).toHaveLength(1);
    }
    expect(counter.retries).toBeGreaterThan(0);
    expect(counter.byStatus.get('dropped') ?? 0).toBeGreaterThan(0);
  });

  it('lands a v2 batch run exactly once through errors, drops and partial failures', async () => {
    sb.faults.set({ errorRate: 0.3, dropRate: 0.1, dropAfterApplyRate: 0.15, service: 'track' });
    const c = client({ retry: { maxAttempts: 20, baseDelayMs: 1, maxDelayMs: 4 } });
    const entries: V2Entry[] = [];
    for (let i = 0; i < N; i++) {
      entries.push(identifyEntry(`fb-${i}`, { n: i }));
      entries.push({ type: 'person', identifiers: { id: `fb-${i}` }, action: 'event', name: 'purchase', id: eid(`fb:${i}`) });
    }
    const out = await c.sendBatches(entries, { maxEntriesPerBatch: 8 });
    expect(out.rejected).toBe(0);
    for (let i = 0; i < N; i++) {
      expect(sb.customerio.getPerson(`fb-${i}`)?.attributes).toMatchObject({ n: i });
      expect(sb.customerio.eventsFor(`fb-${i}`)).toHaveLength(1);
    }
    expect(counter.retries).toBeGreaterThan(0);
  });
});
