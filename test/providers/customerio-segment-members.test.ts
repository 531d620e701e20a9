/**
 * `segmentMembers` against the sandbox: a data-driven segment bigger than one page is read page by page,
 * following the `next` cursor, and every member comes back exactly once with the identifiers the API gives.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CustomerioClient, customerioConfigFromEnv, type CustomerIdentifiers, type V2Entry } from '../../reconciler/providers/customerio/client.ts';
import { RequestCounter } from '../../reconciler/providers/http/http-client.ts';
import { LimiterRegistry } from '../../reconciler/providers/http/rate-limiter.ts';
import { createSandbox, type RunningSandbox } from '../../reconciler/sandbox/index.ts';

let sb: RunningSandbox;
let counter: RequestCounter;

beforeAll(async () => {
  sb = await createSandbox({ port: 0, seed: 11, retryAfterSeconds: 0, appRateLimitPerSecond: 1000, trackRateLimitPerSecond: 100_000 });
});

afterAll(async () => {
  await sb.close();
});

beforeEach(() => {
  sb.faults.clear();
  sb.customerio.reset();
  counter = new RequestCounter();
});

function client(): CustomerioClient {
  return new CustomerioClient(
    customerioConfigFromEnv(sb.env, {
      trackRatePerSecond: 10_000,
      appRatePerSecond: 1000,
      limiters: new LimiterRegistry(),
      retry: { baseDelayMs: 1, maxDelayMs: 4 },
      onRequest: counter.hook,
    }),
  );
}

async function collect(pages: AsyncIterable<CustomerIdentifiers[]>): Promise<CustomerIdentifiers[][]> {
  const out: CustomerIdentifiers[][] = [];
  for await (const p of pages) out.push(p);
  return out;
}

const identify = (id: string, attributes: Record<string, unknown> = {}): V2Entry => ({ type: 'person', identifiers: { id }, action: 'identify', attributes });

describe('segmentMembers', () => {
  it('reads every member of a segment larger than a page exactly once, page by page', async () => {
    const c = client();
    const ids = Array.from({ length: 23 }, (_, i) => `sm-${String(i).padStart(2, '0')}`);
    await c.sendBatches(ids.map((id) => identify(id, { email: `${id}@example.com` })));
    // Someone outside the segment, to show only members come back.
    await c.sendBatches([identify('outsider')]);
    const seg = sb.customerio.seedSegment({ name: 'Engaged', type: 'dynamic', memberIds: ids });

    const pages = await collect(c.segmentMembers(seg.id, { pageSize: 5 }));

    expect(pages.map((p) => p.length)).toEqual([5, 5, 5, 5, 3]);
    const read = pages.flat();
    expect(read.map((m) => m.id).sort()).toEqual(ids);
    expect(new Set(read.map((m) => m.cio_id)).size).toBe(23);
    const byId = new Map(read.map((m) => [m.id, m]));
    const cioOf = (id: string) => sb.customerio.getPerson(id)!.cio_id;
    expect(byId.get('sm-07')).toEqual({ id: 'sm-07', email: 'sm-07@example.com', cio_id: cioOf('sm-07') });
    expect(counter.count('app.segments.membership')).toBe(5);
  });

  it('gives people without an id as null ids, with their email and cio_id', async () => {
    const c = client();
    await c.sendBatches([{ type: 'person', identifiers: { email: 'no-id@example.com' }, action: 'identify', attributes: {} }]);
    const seg = sb.customerio.seedSegment({ name: 'Emails only', memberIds: ['no-id@example.com'], idType: 'email' });
    const read = (await collect(c.segmentMembers(seg.id))).flat();
    expect(read).toEqual([{ id: null, email: 'no-id@example.com', cio_id: sb.customerio.getPerson('no-id@example.com')!.cio_id }]);
  });

  it('reads an empty segment as one empty page, and refuses a bad page size before any request', async () => {
    const c = client();
    const seg = sb.customerio.seedSegment({ name: 'Nobody' });
    expect(await collect(c.segmentMembers(seg.id))).toEqual([[]]);
    expect(() => c.segmentMembers(seg.id, { pageSize: 30_001 })).toThrow(/page size/);
    expect(counter.count('app.segments.membership')).toBe(1);
  });

  it('fails on a segment that does not exist', async () => {
    await expect(collect(client().segmentMembers(987_654))).rejects.toMatchObject({ status: 404 });
  });
});
