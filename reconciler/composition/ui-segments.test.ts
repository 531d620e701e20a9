/**
 * UI segments referenced by id: the pure plan check on made-up answers, the reader and the member loader
 * against the sandbox, and the embedded sandbox's stand-ins made by connect().
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CustomerioClient, customerioConfigFromEnv } from '../providers/customerio/client.ts';
import { RequestCounter } from '../providers/http/http-client.ts';
import { LimiterRegistry } from '../providers/http/rate-limiter.ts';
import { createSandbox, type RunningSandbox } from '../sandbox/index.ts';
import { findSpecFiles } from '../spec/load.ts';
import type { SpecModel } from '../spec/model.ts';
import { validateSpecs, type SpecFile } from '../spec/validate.ts';
import { connect } from './connect.ts';
import {
  loadUiSegmentMembers,
  readReferencedSegments,
  referencedSegmentDiagnostics,
  referencedUiSegments,
  type ReferencedSegments,
} from './ui-segments.ts';

const REPO = path.resolve(import.meta.dirname, '../..');

/** The example specs, plus extra Segment documents in their own file. */
async function model(extra = ''): Promise<SpecModel> {
  const files: SpecFile[] = [];
  for (const f of await findSpecFiles(path.join(REPO, 'specs'))) files.push({ path: path.relative(REPO, f).split(path.sep).join('/'), text: await readFile(f, 'utf8') });
  if (extra) files.push({ path: 'specs/extra.yaml', text: extra });
  const result = validateSpecs(files);
  if (!result.model) throw new Error(`example specs do not validate: ${JSON.stringify(result.diagnostics.slice(0, 3))}`);
  return result.model;
}

const EXTRA = `kind: Segment
name: production_only_ui
environments: [production]
customerio_segment: { id: 77 }
---
kind: Segment
name: same_ui_segment
customerio_segment: { id: 42 }
`;

describe('referencedUiSegments', () => {
  it('lists the segments of an environment that reference a UI segment, by name', async () => {
    const m = await model(EXTRA);
    expect(referencedUiSegments(m, 'staging')).toEqual([
      { name: 'newsletter_engaged', id: 42, description: expect.stringContaining('Customer.io UI') },
      { name: 'same_ui_segment', id: 42 },
    ]);
    expect(referencedUiSegments(m, 'production').map((r) => [r.name, r.id])).toEqual([
      ['newsletter_engaged', 42],
      ['production_only_ui', 77],
      ['same_ui_segment', 42],
    ]);
  });
});

describe('referencedSegmentDiagnostics', () => {
  it('is an error at customerio_segment.id when the target has no such segment', async () => {
    const m = await model();
    const found: ReferencedSegments = new Map([['newsletter_engaged', 'missing']]);
    const [d, ...rest] = referencedSegmentDiagnostics(m, found, 'the embedded sandbox');
    expect(rest).toEqual([]);
    expect(d).toMatchObject({
      severity: 'error',
      code: 'REF008',
      summary: 'Segment "newsletter_engaged" references Customer.io segment 42, which does not exist in the embedded sandbox.',
      address: 'segment.newsletter_engaged',
      path: ['customerio_segment', 'id'],
    });
    // The line of `customerio_segment: { id: 42 }` in the example file, pointing at the id's value.
    const lines = (await readFile(path.join(REPO, 'specs/segments.yaml'), 'utf8')).split('\n');
    const line = lines.findIndex((l) => l.startsWith('customerio_segment: { id: 42 }')) + 1;
    expect(d!.source).toMatchObject({ file: 'specs/segments.yaml', start: { line, col: lines[line - 1]!.indexOf('42') + 1 } });
  });

  it('says nothing for dynamic and manual segments, and warns about a type it does not know', async () => {
    const m = await model(EXTRA);
    const ok: ReferencedSegments = new Map([
      ['newsletter_engaged', { id: 42, type: 'dynamic', name: 'Newsletter engaged' }],
      ['same_ui_segment', { id: 42, type: 'manual', name: 'Newsletter engaged' }],
    ]);
    expect(referencedSegmentDiagnostics(m, ok, 'x')).toEqual([]);

    const odd: ReferencedSegments = new Map([
      ['newsletter_engaged', { id: 42, type: 'predictive', name: 'Likely to open' }],
      ['same_ui_segment', { id: 42, type: null, name: 'Likely to open' }],
    ]);
    const ds = referencedSegmentDiagnostics(m, odd, 'x');
    expect(ds.map((d) => [d.severity, d.code, d.address])).toEqual([
      ['warning', 'REF009', 'segment.newsletter_engaged'],
      ['warning', 'REF009', 'segment.same_ui_segment'],
    ]);
    expect(ds[0]!.summary).toBe('Segment "newsletter_engaged" references Customer.io segment 42 ("Likely to open"), whose type "predictive" tidemark does not know.');
    expect(ds[1]!.summary).toContain('whose type Customer.io does not report');
  });

  it('checks only the segments that were read (another environment’s references are not there)', async () => {
    const m = await model(EXTRA);
    expect(referencedSegmentDiagnostics(m, new Map(), 'x')).toEqual([]);
    const ds = referencedSegmentDiagnostics(m, new Map([['production_only_ui', 'missing' as const]]), 'Customer.io site abc (us)');
    expect(ds.map((d) => d.summary)).toEqual(['Segment "production_only_ui" references Customer.io segment 77, which does not exist in Customer.io site abc (us).']);
    expect(ds[0]!.source?.file).toBe('specs/extra.yaml');
  });
});

describe('against the sandbox', () => {
  let sb: RunningSandbox;
  let counter: RequestCounter;

  beforeAll(async () => {
    sb = await createSandbox({ port: 0, seed: 5, retryAfterSeconds: 0, appRateLimitPerSecond: 1000, trackRateLimitPerSecond: 100_000 });
  });
  afterAll(async () => {
    await sb.close();
  });
  beforeEach(() => {
    sb.customerio.reset();
    counter = new RequestCounter();
  });

  const client = () =>
    new CustomerioClient(
      customerioConfigFromEnv(sb.env, { appRatePerSecond: 1000, trackRatePerSecond: 10_000, limiters: new LimiterRegistry(), onRequest: counter.hook }),
    );

  it('reads each referenced segment once per id, and marks the ones the target lacks', async () => {
    const m = await model(EXTRA);
    sb.customerio.seedSegment({ id: 42, name: 'Newsletter engaged', type: 'dynamic' });
    const staging = await readReferencedSegments(m, 'staging', client());
    expect(staging).toEqual(
      new Map([
        ['newsletter_engaged', { id: 42, type: 'dynamic', name: 'Newsletter engaged' }],
        ['same_ui_segment', { id: 42, type: 'dynamic', name: 'Newsletter engaged' }],
      ]),
    );
    expect(counter.count('app.segments.get')).toBe(1);

    const production = await readReferencedSegments(m, 'production', client());
    expect(production.get('production_only_ui')).toBe('missing');
    expect(referencedSegmentDiagnostics(m, production, 'the embedded sandbox').map((d) => d.code)).toEqual(['REF008']);
  });

  it('reads nothing when no spec references a UI segment', async () => {
    const m = await model();
    m.segments.delete('newsletter_engaged');
    expect(await readReferencedSegments(m, 'staging', client())).toEqual(new Map());
    expect(counter.count('app.segments.get')).toBe(0);
  });

  it('streams member ids page by page, and counts members without an id instead of guessing', async () => {
    const ids = Array.from({ length: 12 }, (_, i) => `u-${String(i).padStart(2, '0')}`);
    const seg = sb.customerio.seedSegment({ id: 42, name: 'Newsletter engaged', memberIds: ids, createMissingPeople: true });
    // People known only by email, in the same segment.
    const emails = ['a@example.com', 'b@example.com'];
    sb.customerio.seedSegment({ name: 'tmp', memberIds: emails, idType: 'email', createMissingPeople: true });
    const cio = (identifier: string) => sb.customerio.getPerson(identifier)!.cio_id;
    sb.customerio.setSegmentMembers(seg.id, [...ids, ...emails].map(cio), 'cio_id');

    const written: string[][] = [];
    const load = await loadUiSegmentMembers(async (personIds) => void written.push(personIds), client(), 42, { pageSize: 5 });

    expect(written.flat().sort()).toEqual(ids);
    expect(written.every((p) => p.length > 0 && p.length <= 5)).toBe(true);
    expect(load).toMatchObject({ segmentId: 42, pages: 3, written: 12, withoutId: 2 });
    expect(load.withoutIdSample.sort()).toEqual(emails.map(cio).sort());
    expect(load.note).toMatch(/^2 members of Customer\.io segment 42 have no id \(cio_id .+\): tidemark matches people by id, so they are left out\.$/);
    expect(load.note).not.toContain('@');
  });

  it('writes nothing and notes nothing for an empty segment', async () => {
    sb.customerio.seedSegment({ id: 42, name: 'Newsletter engaged' });
    const written: string[][] = [];
    const load = await loadUiSegmentMembers(async (personIds) => void written.push(personIds), client(), 42);
    expect(written).toEqual([]);
    expect(load).toEqual({ segmentId: 42, pages: 1, written: 0, withoutId: 0, withoutIdSample: [] });
  });
});

describe('the embedded sandbox made by connect()', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tidemark-ui-segments-'));
    return () => rm(dir, { recursive: true, force: true });
  });

  it('stands in for the referenced UI segments it lacks, and leaves them alone on later runs', async () => {
    const m = await model();
    const first = await connect(m, { cwd: dir, env: {}, sandbox: true });
    try {
      expect(first.sandbox!.customerio.listSegments().map((s) => [s.id, s.name, s.type, s.count])).toEqual([[42, 'newsletter_engaged', 'dynamic', 0]]);
      expect(referencedSegmentDiagnostics(m, await readReferencedSegments(m, first.environment, first.customerio), first.target.label)).toEqual([]);
      // Someone joins it, as people do in the real workspace.
      first.sandbox!.customerio.seedSegment({ name: 'people', memberIds: ['joined'], createMissingPeople: true });
      first.sandbox!.customerio.setSegmentMembers(42, ['joined']);
    } finally {
      await first.close();
    }
    const second = await connect(m, { cwd: dir, env: {}, sandbox: true });
    try {
      expect(second.sandbox!.customerio.segmentMembers(42).map((p) => p.id)).toEqual(['joined']);
    } finally {
      await second.close();
    }
  });

  it('draws members from the people the embedded sandbox already has', async () => {
    const m = await model();
    const people = Array.from({ length: 30 }, (_, i) => `p-${i}`);
    const first = await connect(m, { cwd: dir, env: {}, sandbox: true });
    try {
      // People arrive after the first run (as a sync brings them); a segment referenced later draws from them.
      first.sandbox!.customerio.seedSegment({ name: 'people', memberIds: people, createMissingPeople: true });
    } finally {
      await first.close();
    }
    const m2 = await model('kind: Segment\nname: other_ui\ncustomerio_segment: { id: 43 }\n');
    const second = await connect(m2, { cwd: dir, env: {}, sandbox: true });
    try {
      const drawn = second.sandbox!.customerio.segmentMembers(43).map((p) => p.id!);
      expect(drawn.length).toBeGreaterThan(0);
      expect(drawn.length).toBeLessThan(people.length);
      expect(drawn.every((id) => people.includes(id))).toBe(true);
    } finally {
      await second.close();
    }
  });

  it('does not seed a sandbox it was handed (tests own theirs)', async () => {
    const sb = await createSandbox({ port: 0 });
    try {
      const conn = await connect(await model(), { cwd: dir, env: {}, attachSandbox: sb });
      await conn.close();
      expect(sb.customerio.listSegments()).toEqual([]);
    } finally {
      await sb.close();
    }
  });
});
