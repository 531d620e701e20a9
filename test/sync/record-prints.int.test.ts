/**
 * Record prints (reconciler/sync/record-prints.ts) from outside: a source read again and again, changing
 * a little each time, must give exactly what the sequential read gives (reports, rejects files, what
 * Customer.io holds) while most rows are answered from their prints; and a print must never answer for
 * a context it was not made under (a changed spec, or an index file of the format before prints).
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import type { ParallelOptions } from '../../reconciler/sync/parallel/read.ts';
import type { SyncReport } from '../../reconciler/sync/run.ts';
import { makeProject, open, personSource, readRejects, resetSandbox, sync, useSandbox, writeData } from '../support/sync-fixture.ts';

let sandbox: RunningSandbox;

useSandbox(17, (s) => (sandbox = s));

const HEADER = 'customer_id,orders,store,tier,tier_at,updated_at';

const SOURCE_SHAPE = {
  connector: '{ type: csv, path: data/customers.csv }',
  fields: { order_count: 'orders', preferred_store: 'store', vip_tier: 'tier', vip_tier_updated_at: 'tier_at' },
  ordering: 'updated_at',
};
const SOURCE = personSource(SOURCE_SHAPE);
const POLICY = { OWN002: 'off' } as const;

/** Mostly plain lines (read as bytes, so answered from prints), with what makes order and text matter. */
const stamp = fc.oneof(
  { weight: 12, arbitrary: fc.integer({ min: 1, max: 4 }).map((d) => `2026-01-0${d}T00:00:00Z`) },
  { weight: 2, arbitrary: fc.constant('') },
  { weight: 1, arbitrary: fc.constant('not a time') },
);
const plain = fc
  .tuple(
    fc.integer({ min: 0, max: 40 }).map((i) => `c${i}`),
    fc.oneof({ weight: 10, arbitrary: fc.nat({ max: 50 }).map(String) }, { weight: 1, arbitrary: fc.constantFrom('', 'x') }),
    fc.constantFrom('north', 'south', 'é-store', 'ünï', ''),
    fc.oneof({ weight: 10, arbitrary: fc.constantFrom('none', 'silver', 'gold') }, { weight: 1, arbitrary: fc.constantFrom('', 'diamond') }),
    stamp,
    stamp,
  )
  .map((cells) => cells.join(','));
const line = fc.oneof(
  { weight: 40, arbitrary: plain },
  // A quoted field (that segment is read as text), a blank line, a malformed line, an invalid byte.
  { weight: 1, arbitrary: fc.constantFrom('c1,2,"quoted, store",gold,,', '', 'c2,1,a,none,,,extra', 'c3,2,\u0000bad\u0000,gold,,') },
);
const lines = fc.array(line, { minLength: 20, maxLength: 120 });
/** A later version of the file: most lines kept as they are, some changed, dropped, added or moved. */
const evolve = (from: string[]) =>
  fc.array(fc.tuple(fc.nat({ max: 9 }), line), { minLength: from.length, maxLength: from.length }).chain((edits) =>
    fc.array(line, { maxLength: 6 }).map((added) => {
      const out: string[] = [];
      edits.forEach(([roll, replacement], i) => {
        if (roll === 0) out.push(replacement);
        else if (roll !== 1) out.push(from[i]!);
      });
      return [...out, ...added];
    }),
  );
const history = lines.chain((first) => evolve(first).chain((second) => evolve(second).map((third) => [first, second, third])));

/** The invalid byte is written as a byte: a string cannot hold it. */
const bytesOf = (rows: string[]) => {
  const text = `${HEADER}\n${rows.join('\n')}\n`;
  const parts = text.split('\u0000bad\u0000');
  return Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [Buffer.from(p, 'utf8')] : [Buffer.from([0x62, 0xff, 0x61]), Buffer.from(p, 'utf8')])));
};

function outcome(r: SyncReport): unknown {
  return { status: r.status, counts: r.counts, notes: r.notes, problems: r.problems ?? [], error: r.error ?? null };
}

/** Each version of the file is planned, run, then planned again (the plan after a run finds what it left). */
async function rounds(versions: string[][], parallel: ParallelOptions, source = SOURCE): Promise<{ steps: unknown[]; rejects: unknown; people: unknown; matched: number }> {
  resetSandbox(sandbox);
  const dir = await makeProject({ sources: [source], data: { 'customers.csv': '' }, policy: POLICY });
  const steps: unknown[] = [];
  let matched = 0;
  for (const version of versions) {
    await writeFile(path.join(dir, 'data', 'customers.csv'), bytesOf(version));
    for (const mode of ['plan', 'run', 'plan'] as const) {
      const r = await sync(dir, sandbox, 'customers', { mode, parallel });
      steps.push(outcome(r));
      matched += r.prints?.matched ?? 0;
    }
  }
  const people = sandbox.customerio
    .listPeople()
    .map((p) => ({ id: p.id, attributes: p.attributes }))
    .sort((a, b) => ((a.id ?? '') < (b.id ?? '') ? -1 : 1));
  const rejects = (await readRejects(dir, 'customers')).map((f) => f.rows);
  return { steps, rejects, people, matched };
}

describe('record prints', () => {
  it('answer re-read rows exactly as reading them does, over versions of a file (property)', async () => {
    let matchedInAll = 0;
    await fc.assert(
      fc.asyncProperty(history, fc.integer({ min: 64, max: 900 }), async (versions, readBytes) => {
        const serial = await rounds(versions, { workers: 0 });
        const parallel = await rounds(versions, { workers: 2, minBytes: 0, readBytes });
        expect({ ...parallel, matched: 0 }).toEqual({ ...serial, matched: 0 });
        expect(serial.matched).toBe(0);
        matchedInAll += parallel.matched;
      }),
      // No shrinking: each case is dozens of runs, and a failure's first counterexample is what matters.
      { numRuns: 8, endOnFailure: true },
    );
    // Not vacuous: most re-read lines were answered from their prints.
    expect(matchedInAll).toBeGreaterThan(200);
  }, 300_000);

  it('are kept with what Customer.io acknowledged, match on the next read, and are dropped when the spec changes what a record means', async () => {
    // Odd rows have a blank (their entry may depend on what was sent before); changed rows have none.
    const rows = Array.from({ length: 3000 }, (_, i) => `c${i},${i % 13},store-${i % 9},${i % 3 === 0 ? 'silver' : 'gold'},${i % 2 === 0 ? '2026-01-01T00:00:00Z' : ''},2026-01-0${1 + (i % 3)}T00:00:00Z`);
    const dir = await makeProject({ sources: [SOURCE], data: { 'customers.csv': `${HEADER}\n${rows.join('\n')}\n` }, policy: POLICY });
    const parallel = { workers: 2, minBytes: 0, readBytes: 8192 };
    resetSandbox(sandbox);
    const first = await sync(dir, sandbox, 'customers', { parallel });
    expect(first.counts).toMatchObject({ new: 3000, acknowledged: 3000 });
    // Every row sent as read from bytes keeps its print once acknowledged: all but those of the header's
    // read and the last record, which the parser cuts (csv.ts, SegmentCutter).
    const learned = first.prints!.learned;
    expect(first.prints!.matched).toBe(0);
    expect(learned).toBeGreaterThan(2500);
    const matching = await sync(dir, sandbox, 'customers', { mode: 'plan', parallel });
    expect(matching.counts).toMatchObject({ unchanged: 3000 });
    expect(matching.prints).toEqual({ matched: learned, learned: 0 });

    // Ten rows change: a run sends exactly them, and their old prints are gone with their old hashes.
    const changed = rows.map((r, i) => (i % 300 === 0 ? r.replace(/,(gold|silver),/, ',none,') : r));
    await writeData(dir, 'customers.csv', `${HEADER}\n${changed.join('\n')}\n`);
    const resync = await sync(dir, sandbox, 'customers', { parallel });
    expect(resync.counts).toMatchObject({ changed: 10, unchanged: 2990, acknowledged: 10 });
    expect(resync.prints!.matched).toBeGreaterThan(2500);
    expect(resync.prints!.matched).toBeLessThanOrEqual(2990);
    // The changed rows sent with their new prints (those read as bytes).
    expect(resync.prints!.learned).toBeGreaterThan(0);
    expect(resync.prints!.learned).toBeLessThanOrEqual(10);
    const after = await sync(dir, sandbox, 'customers', { mode: 'plan', parallel });
    expect(after.counts).toMatchObject({ changed: 0, unchanged: 3000 });
    expect(after.prints).toEqual({ matched: resync.prints!.matched + resync.prints!.learned, learned: 0 });
    expect(sandbox.customerio.listPeople().filter((p) => p.attributes.vip_tier === 'none')).toHaveLength(10);

    // The same bytes mean something else once a column maps to another field: no print may answer.
    const remapped = personSource({
      connector: '{ type: csv, path: data/customers.csv }',
      fields: { order_count: 'orders', preferred_store: 'tier', vip_tier: 'tier', vip_tier_updated_at: 'tier_at' },
      ordering: 'updated_at',
    });
    await writeFile(path.join(dir, 'specs', 'sources', 'sources.yaml'), remapped);
    const respec = await sync(dir, sandbox, 'customers', { mode: 'plan', parallel });
    expect(respec.prints?.matched).toBe(0);
    expect(respec.counts).toMatchObject({ changed: 3000 });
  }, 120_000);

  it('stand for a row\'s ordering too: a row read unchanged with a newer ordering teaches nothing', async () => {
    // c1's content stays; its ordering moves on (the ordering column is not an attribute, so the hash
    // stays). Had that row taught its print, the print would claim the snapshot's older ordering, and a
    // later duplicate of c1 with an ordering between the two would wrongly win.
    const filler = (from: number) => Array.from({ length: 400 }, (_, i) => `c${from + i},${i % 7},north,gold,2026-01-01T00:00:00Z,2026-01-01T00:00:00Z`);
    const versions = [
      [...filler(100), 'c1,1,north,gold,2026-01-01T00:00:00Z,2026-01-01T00:00:00Z', ...filler(600)],
      [...filler(100), 'c1,1,north,gold,2026-01-01T00:00:00Z,2026-01-03T00:00:00Z', ...filler(600)],
      [...filler(100), 'c1,1,north,gold,2026-01-01T00:00:00Z,2026-01-03T00:00:00Z', 'c1,9,south,silver,2026-01-01T00:00:00Z,2026-01-02T00:00:00Z', ...filler(600)],
    ];
    const serial = await rounds(versions, { workers: 0 });
    const parallel = await rounds(versions, { workers: 2, minBytes: 0, readBytes: 2048 });
    expect(parallel.matched).toBeGreaterThan(1000);
    expect({ ...parallel, matched: 0 }).toEqual({ ...serial, matched: 0 });
  }, 60_000);

  it('never stand for a row with a note: the note is reported on every read', async () => {
    // Naive local times: one in New York's spring-forward gap, mid-file (read as bytes), is read with a note.
    const local = personSource({ ...SOURCE_SHAPE, timezone: 'America/New_York' });
    const rows = Array.from({ length: 900 }, (_, i) => `c${i},${i % 7},north,gold,${i === 450 ? '2026-03-08 02:30:00' : '2026-03-07 12:00:00'},2026-01-01 00:00:00`);
    const versions = [rows, rows, rows];
    const serial = await rounds(versions, { workers: 0 }, local);
    const parallel = await rounds(versions, { workers: 2, minBytes: 0, readBytes: 2048 }, local);
    expect(parallel.matched).toBeGreaterThan(1000);
    expect(JSON.stringify(serial.steps)).toMatch(/gap|spring|does not exist|skipped/i);
    expect({ ...parallel, matched: 0 }).toEqual({ ...serial, matched: 0 });
  }, 60_000);

  it('never stand for an entry an unmerged acknowledgement replaced (a run killed before it closed)', async () => {
    const rows = Array.from({ length: 900 }, (_, i) => `c${i},${i % 7},north,gold,2026-01-01T00:00:00Z,2026-01-01T00:00:00Z`);
    const dir = await makeProject({ sources: [SOURCE], data: { 'customers.csv': `${HEADER}\n${rows.join('\n')}\n` }, policy: POLICY });
    const parallel = { workers: 2, minBytes: 0, readBytes: 2048 };
    resetSandbox(sandbox);
    await sync(dir, sandbox, 'customers', { parallel });
    expect((await sync(dir, sandbox, 'customers', { mode: 'plan', parallel })).counts).toMatchObject({ changed: 0, unchanged: 900 });
    // A run that committed an acknowledgement of c450 with other content, and was killed before merging it.
    const ws = await open(dir, sandbox);
    try {
      const acks = await ws.conn.store.openAckSession('customers');
      await acks.append([{ key: 'c450', hash: 'f'.repeat(32), ordering: Date.parse('2026-01-01T00:00:00Z'), payload: '{"order_count":99}' }]);
    } finally {
      await ws.conn.close();
    }
    const plan = await sync(dir, sandbox, 'customers', { mode: 'plan', parallel });
    expect(plan.prints!.matched).toBeGreaterThan(800);
    expect(plan.counts).toMatchObject({ changed: 1, unchanged: 899 });
  }, 60_000);

  it('ignore an index file of the format before prints: the store is read, and the file replaced', async () => {
    const rows = Array.from({ length: 500 }, (_, i) => `c${i},${i % 13},north,gold,,2026-01-01T00:00:00Z`);
    const dir = await makeProject({ sources: [SOURCE], data: { 'customers.csv': `${HEADER}\n${rows.join('\n')}\n` }, policy: POLICY });
    const parallel = { workers: 2, minBytes: 0, readBytes: 4096 };
    resetSandbox(sandbox);
    await sync(dir, sandbox, 'customers', { parallel });
    await sync(dir, sandbox, 'customers', { mode: 'plan', parallel });
    const [name] = (await readdir(dir, { recursive: true })).filter((n) => n.endsWith('.idx'));
    const file = path.join(dir, name!);
    const bytes = await readFile(file);
    expect(bytes.toString('latin1', 0, 8)).toBe('TMSIDX02');
    // An older tidemark's file: its magic and format say 1.
    bytes.write('TMSIDX01', 0, 'latin1');
    await writeFile(file, bytes);
    const plan = await sync(dir, sandbox, 'customers', { mode: 'plan', parallel });
    expect(plan.counts).toMatchObject({ unchanged: 500 });
    expect(plan.prints!.matched).toBe(0);
    expect(plan.prints!.learned).toBeGreaterThan(300);
    const again = await sync(dir, sandbox, 'customers', { mode: 'plan', parallel });
    expect(again.prints).toEqual({ matched: plan.prints!.learned, learned: 0 });
  }, 60_000);
});
