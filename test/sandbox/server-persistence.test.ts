/**
 * Sandbox state persists to `dataFile`: saved after writes (debounced) and on close, restored on start.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createSandbox } from '../../reconciler/sandbox/index.ts';

const BASIC = `Basic ${Buffer.from('sandbox-site:sandbox-track-key').toString('base64')}`;
const BEARER = 'Bearer sandbox-app-key';
const EVENT_ID = '01J0000000000000000000000B';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tidemark-sandbox-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function json(res: Promise<Response>): Promise<unknown> {
  return (await res).json();
}

describe('persistence', () => {
  it('survives close and a new sandbox on the same data file', async () => {
    const dataFile = join(dir, 'state.json');
    const first = await createSandbox({ dataFile, retryAfterSeconds: 0 });
    const put = (path: string, body: unknown) =>
      fetch(`${first.urls.customerioTrack}${path}`, { method: 'PUT', headers: { authorization: BASIC }, body: JSON.stringify(body) });
    await put('/api/v1/customers/42', { email: 'ann@x.com', plan: 'pro' });
    await fetch(`${first.urls.customerioTrack}/api/v1/customers/42/events`, { method: 'POST', headers: { authorization: BASIC }, body: JSON.stringify({ id: EVENT_ID, name: 'paid' }) });
    const seg = (await json(
      fetch(`${first.urls.customerioApp}/v1/segments`, { method: 'POST', headers: { authorization: BEARER }, body: JSON.stringify({ segment: { name: 'VIP' } }) }),
    )) as { segment: { id: number } };
    await fetch(`${first.urls.customerioTrack}/api/v1/segments/${seg.segment.id}/add_customers`, { method: 'POST', headers: { authorization: BASIC }, body: JSON.stringify({ ids: ['42'] }) });
    const survey = await fetch(`${first.urls.qualtrics}/__sandbox/qualtrics/surveys`, { method: 'POST', body: JSON.stringify({ name: 'NPS' }) });
    expect(survey.status).toBeLessThan(300);
    const qualtricsBefore = JSON.stringify(first.qualtrics.snapshot());
    await first.close();

    const onDisk = JSON.parse(await readFile(dataFile, 'utf8')) as { format: string; version: number; services: Record<string, unknown> };
    expect(onDisk).toMatchObject({ format: 'tidemark-sandbox', version: 1 });
    expect(Object.keys(onDisk.services).sort()).toEqual(['customerio', 'qualtrics']);

    const second = await createSandbox({ dataFile, retryAfterSeconds: 0 });
    try {
      expect(second.customerio.getPerson('ann@x.com')).toMatchObject({ id: '42', attributes: { plan: 'pro' }, segments: [seg.segment.id] });
      const members = (await json(fetch(`${second.urls.customerioApp}/v1/segments/${seg.segment.id}/membership`, { headers: { authorization: BEARER } }))) as { ids: string[] };
      expect(members.ids).toEqual(['42']);
      // Dedupe memory survives too: the same event id is not stored again.
      await fetch(`${second.urls.customerioTrack}/api/v1/customers/42/events`, { method: 'POST', headers: { authorization: BASIC }, body: JSON.stringify({ id: EVENT_ID, name: 'paid' }) });
      expect(second.customerio.eventsFor('42')).toHaveLength(1);
      // Id sequences continue instead of colliding with restored objects.
      const next = (await json(
        fetch(`${second.urls.customerioApp}/v1/segments`, { method: 'POST', headers: { authorization: BEARER }, body: JSON.stringify({ segment: { name: 'Next' } }) }),
      )) as { segment: { id: number } };
      expect(next.segment.id).toBe(seg.segment.id + 1);
      expect(JSON.stringify(second.qualtrics.snapshot())).toBe(qualtricsBefore);
    } finally {
      await second.close();
    }
  });

  it('saves after writes without waiting for close', async () => {
    const dataFile = join(dir, 'live.json');
    const sb = await createSandbox({ dataFile, persistDebounceMs: 5 });
    try {
      await fetch(`${sb.urls.customerioTrack}/api/v1/customers/7`, { method: 'PUT', headers: { authorization: BASIC }, body: '{"a":1}' });
      await vi.waitFor(
        async () => {
          const doc = JSON.parse(await readFile(dataFile, 'utf8')) as { services: { customerio: { people: Array<{ id: string }> } } };
          expect(doc.services.customerio.people.map((p) => p.id)).toEqual(['7']);
        },
        { timeout: 10_000, interval: 20 },
      );
    } finally {
      await sb.close();
    }
  });

  it('saves admin seeding and in-process changes on close', async () => {
    const dataFile = join(dir, 'seeded.json');
    const sb = await createSandbox({ dataFile });
    await fetch(`${sb.urls.customerioTrack}/api/v1/customers/1`, { method: 'PUT', headers: { authorization: BASIC }, body: '{}' });
    await fetch(`${sb.urls.customerioApp}/__sandbox/customerio/segments`, { method: 'POST', body: JSON.stringify({ name: 'Data-driven', member_ids: ['1'] }) });
    sb.customerio.seedSegment({ name: 'In process' });
    await sb.close();
    const again = await createSandbox({ dataFile });
    try {
      expect(again.customerio.listSegments().map((s) => [s.name, s.type, s.count])).toEqual([
        ['Data-driven', 'dynamic', 1],
        ['In process', 'dynamic', 0],
      ]);
    } finally {
      await again.close();
    }
  });

  it('refuses to start on a corrupt or foreign data file and leaves it untouched', async () => {
    const corrupt = join(dir, 'corrupt.json');
    await writeFile(corrupt, '{"format":');
    await expect(createSandbox({ dataFile: corrupt })).rejects.toThrow(/not valid JSON/);
    expect(await readFile(corrupt, 'utf8')).toBe('{"format":');
    const foreign = join(dir, 'foreign.json');
    await writeFile(foreign, '{"hello":"world"}');
    await expect(createSandbox({ dataFile: foreign })).rejects.toThrow(/not a tidemark sandbox snapshot/);
    expect(await readFile(foreign, 'utf8')).toBe('{"hello":"world"}');
  });

  it('starts empty when the data file does not exist yet, and creates it on close', async () => {
    const dataFile = join(dir, 'sub', 'new.json');
    const sb = await createSandbox({ dataFile });
    expect(sb.customerio.listPeople()).toEqual([]);
    await sb.close();
    expect(JSON.parse(await readFile(dataFile, 'utf8'))).toMatchObject({ format: 'tidemark-sandbox' });
  });
});
