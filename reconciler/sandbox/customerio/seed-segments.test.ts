/**
 * Seeding segments under a given id (a segment the real workspace has, referenced by id from the specs), and
 * the stand-ins for UI segments the embedded sandbox gets: data-driven, members drawn from people present.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createSandbox, SANDBOX_CREDENTIALS, type RunningSandbox } from '../index.ts';

let sb: RunningSandbox;

beforeAll(async () => {
  sb = await createSandbox({ port: 0, seed: 3, retryAfterSeconds: 0, appRateLimitPerSecond: 1000 });
});

afterAll(async () => {
  await sb.close();
});

beforeEach(() => {
  sb.customerio.reset();
});

async function app(path: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${sb.urls.customerioApp}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${SANDBOX_CREDENTIALS.CUSTOMERIO_APP_API_KEY}`, 'content-type': 'application/json' },
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

function people(n: number, prefix = 'p'): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(3, '0')}`);
}

describe('seeding a segment with an id', () => {
  it('serves the segment under that id through the App API', async () => {
    const seg = sb.customerio.seedSegment({ id: 42, name: 'newsletter_engaged', type: 'dynamic', memberIds: ['a', 'b'], createMissingPeople: true });
    expect(seg).toMatchObject({ id: 42, type: 'dynamic', count: 2 });
    const got = await app('/v1/segments/42');
    expect(got).toMatchObject({ status: 200, body: { segment: { id: 42, name: 'newsletter_engaged', type: 'dynamic' } } });
    expect((await app('/v1/segments/42/membership')).body.ids).toEqual(expect.arrayContaining(['a', 'b']));
  });

  it('refuses a taken id, and creates no people for the refused seed', () => {
    sb.customerio.seedSegment({ id: 7, name: 'first' });
    expect(() => sb.customerio.seedSegment({ id: 7, name: 'second', memberIds: ['new-person'], createMissingPeople: true })).toThrow(
      /segment id 7 is taken \(by "first"\)/,
    );
    expect(sb.customerio.getPerson('new-person')).toBeUndefined();
    expect(sb.customerio.listSegments().map((s) => s.name)).toEqual(['first']);
  });

  it('refuses ids that are not positive 32-bit integers', () => {
    for (const id of [0, -3, 1.5, 2 ** 31]) expect(() => sb.customerio.seedSegment({ id, name: 'bad' })).toThrow(/positive 32-bit integer/);
  });

  it('hands out later ids around a seeded one', async () => {
    sb.customerio.seedSegment({ id: 2, name: 'seeded' });
    const a = await app('/v1/segments', { method: 'POST', body: JSON.stringify({ segment: { name: 'one' } }) });
    const b = await app('/v1/segments', { method: 'POST', body: JSON.stringify({ segment: { name: 'two' } }) });
    expect([(a.body.segment as { id: number }).id, (b.body.segment as { id: number }).id]).toEqual([1, 3]);
  });

  it('keeps seeded ids and the id sequence across a snapshot', () => {
    sb.customerio.seedSegment({ id: 1, name: 'seeded' });
    const snap = sb.customerio.snapshot();
    sb.customerio.reset();
    sb.customerio.restore(snap);
    expect(sb.customerio.seedSegment({ name: 'next' }).id).toBe(2);
    expect(() => sb.customerio.seedSegment({ id: 1, name: 'again' })).toThrow(/taken/);
  });

  it('takes an id on the admin route, and answers 400 for a taken or malformed one', async () => {
    const admin = (body: unknown) =>
      fetch(`${sb.urls.customerioApp}/__sandbox/customerio/segments`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const ok = await admin({ id: 900, name: 'ui built' });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { segment: { id: number } }).segment.id).toBe(900);
    const taken = await admin({ id: 900, name: 'again' });
    expect(taken.status).toBe(400);
    expect(await taken.json()).toEqual({ error: 'segment id 900 is taken (by "ui built")' });
    expect((await admin({ id: '900', name: 'text id' })).status).toBe(400);
  });

  it('passes an id through the createSandbox option', async () => {
    const other = await createSandbox({ port: 0, customerioSegments: [{ id: 42, name: 'newsletter_engaged', memberIds: ['x-1'] }] });
    try {
      expect(other.customerio.listSegments().map((s) => [s.id, s.name, s.type, s.count])).toEqual([[42, 'newsletter_engaged', 'dynamic', 1]]);
    } finally {
      await other.close();
    }
  });
});

describe('seedReferencedSegments', () => {
  it('seeds a missing segment as data-driven, with no members when there are no people', () => {
    const created = sb.customerio.seedReferencedSegments([{ id: 42, name: 'newsletter_engaged' }]);
    expect(created).toEqual([expect.objectContaining({ id: 42, name: 'newsletter_engaged', type: 'dynamic', count: 0 })]);
  });

  it('leaves a segment that exists alone', () => {
    sb.customerio.seedSegment({ id: 42, name: 'built in the UI', memberIds: ['m-1'], createMissingPeople: true });
    sb.customerio.seedSegment({ name: 'filler', memberIds: people(5), createMissingPeople: true });
    expect(sb.customerio.seedReferencedSegments([{ id: 42, name: 'newsletter_engaged' }])).toEqual([]);
    expect(sb.customerio.segmentMembers(42).map((m) => m.id)).toEqual(['m-1']);
    expect(sb.customerio.listSegments().find((s) => s.id === 42)?.name).toBe('built in the UI');
  });

  it('draws members from the people present: some, not all, and the same ones whatever the sandbox', async () => {
    const ids = people(90);
    const draw = async (seed: number): Promise<string[]> => {
      const box = await createSandbox({ port: 0, seed });
      try {
        // Created in a different order each time: the draw must not depend on it, nor on cio_ids.
        const order = seed % 2 === 0 ? ids : [...ids].reverse();
        box.customerio.seedSegment({ name: 'people', memberIds: order, createMissingPeople: true });
        box.customerio.seedReferencedSegments([{ id: 42, name: 'newsletter_engaged' }]);
        return box.customerio
          .segmentMembers(42)
          .map((m) => m.id!)
          .sort();
      } finally {
        await box.close();
      }
    };
    const first = await draw(1);
    expect(first.length).toBeGreaterThan(10);
    expect(first.length).toBeLessThan(60);
    expect(first.every((id) => ids.includes(id))).toBe(true);
    expect(await draw(2)).toEqual(first);
  });

  it('draws differently for different segments', () => {
    sb.customerio.seedSegment({ name: 'people', memberIds: people(60), createMissingPeople: true });
    sb.customerio.seedReferencedSegments([
      { id: 42, name: 'a' },
      { id: 43, name: 'b' },
    ]);
    const ids = (id: number) => sb.customerio.segmentMembers(id).map((m) => m.id);
    expect(ids(42)).not.toEqual(ids(43));
  });
});
