/**
 * The parallel read (reconciler/sync/parallel/) against the sequential one, on random CSV files: the
 * same reports, the same rejects files (same lines, same order) and the same people in Customer.io, over
 * a first run, a plan and a re-sync. The files hold what makes order matter: duplicate keys, rows out of
 * order and ordering ties, blanks the null policy keeps, quoted delimiters and line ends, malformed lines
 * and values that are rejected. Reads are cut small so every file is many segments.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import type { SyncReport } from '../../reconciler/sync/run.ts';
import type { ParallelOptions } from '../../reconciler/sync/parallel/read.ts';
import { runChild } from '../support/child-cli.ts';
import { makeProject, personSource, readRejects, resetSandbox, sandboxEnv, sync, useSandbox, writeData } from '../support/sync-fixture.ts';

let sandbox: RunningSandbox;

useSandbox(16, (s) => (sandbox = s));

const HEADER = 'customer_id,orders,store,tier,tier_at,updated_at';

const text = fc.string({ unit: fc.constantFrom('a', 'B', ' ', ',', '"', '\n', '\r\n', 'é', '1'), maxLength: 6 });
/** A CSV field: quoted when it must be (or at random), sometimes blank. */
const field = (value: fc.Arbitrary<string>) =>
  fc.tuple(value, fc.boolean()).map(([v, quote]) => (quote || /[",\r\n]/.test(v) || v.startsWith(' ') ? `"${v.replaceAll('"', '""')}"` : v));
/** Mostly valid, sometimes blank, rarely a value that is rejected. */
const mostly = (valid: fc.Arbitrary<string>, invalid: string) =>
  fc.oneof({ weight: 30, arbitrary: valid }, { weight: 4, arbitrary: fc.constant('') }, { weight: 1, arbitrary: fc.constant(invalid) });
const stamp = mostly(fc.integer({ min: 1, max: 4 }).map((d) => `2026-01-0${d}T00:00:00Z`), 'not a time');
const row = fc.oneof(
  {
    weight: 20,
    arbitrary: fc
      .tuple(
        fc.integer({ min: 0, max: 7 }).map((i) => `c${i}`),
        mostly(fc.nat({ max: 50 }).map(String), 'x'),
        field(text),
        mostly(fc.constantFrom('none', 'silver', 'gold'), 'diamond'),
        stamp,
        stamp,
      )
      .map((cells) => cells.join(',')),
  },
  // Malformed: a column too many, a quote closed before the end of its field, a blank line, a quoted line end.
  { weight: 1, arbitrary: fc.constantFrom('c1,1,a,none,,,extra', 'c2,"3"x,a,none,,', '', 'c3,2,"closed\nlate",gold,,\n') },
);
const file = fc.array(row, { minLength: 5, maxLength: 80 }).map((rows) => `${HEADER}\n${rows.join('\n')}\n`);

const SOURCE = personSource({
  connector: '{ type: csv, path: data/customers.csv }',
  fields: { order_count: 'orders', preferred_store: 'store', vip_tier: 'tier', vip_tier_updated_at: 'tier_at' },
  ordering: 'updated_at',
});

/** vip_tier belongs to the warehouse; one source writing it beside crm fields is this test's shortcut. */
const POLICY = { OWN002: 'off' } as const;

/** What must agree: everything in the report but times and ids. */
function outcome(r: SyncReport): unknown {
  return { status: r.status, counts: r.counts, notes: r.notes, problems: r.problems ?? [], error: r.error ?? null };
}

async function rejectsOf(dir: string): Promise<unknown[]> {
  const files = await readRejects(dir, 'customers');
  return files.map((f) => f.rows);
}

async function rounds(first: string, second: string, parallel: ParallelOptions): Promise<unknown> {
  resetSandbox(sandbox);
  const dir = await makeProject({ sources: [SOURCE], data: { 'customers.csv': first }, policy: POLICY });
  const run1 = await sync(dir, sandbox, 'customers', { parallel });
  await writeData(dir, 'customers.csv', second);
  const plan = await sync(dir, sandbox, 'customers', { mode: 'plan', parallel });
  const run2 = await sync(dir, sandbox, 'customers', { parallel });
  const people = sandbox.customerio
    .listPeople()
    .map((p) => ({ id: p.id, attributes: p.attributes }))
    .sort((a, b) => ((a.id ?? '') < (b.id ?? '') ? -1 : 1));
  return { run1: outcome(run1), plan: outcome(plan), run2: outcome(run2), rejects: await rejectsOf(dir), people };
}

describe('the parallel read', () => {
  it('gives the sequential read exactly: reports, rejects files and what Customer.io holds, on random files (property)', async () => {
    await fc.assert(
      fc.asyncProperty(file, file, fc.integer({ min: 16, max: 700 }), async (first, second, readBytes) => {
        const serial = await rounds(first, second, { workers: 0 });
        const parallel = await rounds(first, second, { workers: 2, minBytes: 0, readBytes });
        expect(parallel).toEqual(serial);
      }),
      { numRuns: 10 },
    );
  }, 240_000);

  it('gives the same outcome when the workers cannot be compiled and register tsx instead', async () => {
    const rows = Array.from({ length: 400 }, (_, i) => `c${i % 150},${i},"store, ${i % 9}",${i % 4 === 0 ? '' : 'gold'},2026-01-01T00:00:00Z,2026-01-0${1 + (i % 3)}T00:00:00Z`);
    const first = `${HEADER}\n${rows.join('\n')}\n`;
    const second = `${HEADER}\n${rows.map((r, i) => (i % 7 === 0 ? r.replace('gold', 'silver') : r)).join('\n')}\n`;
    const serial = await rounds(first, second, { workers: 0 });
    const compile = () => {
      throw new Error('cannot compile here');
    };
    const fallback = await rounds(first, second, { workers: 2, minBytes: 0, readBytes: 512, compile });
    expect(fallback).toEqual(serial);
  }, 60_000);

  it('reads phone numbers in the workers as on this thread (the phone library is loaded on first use, from the source folder)', async () => {
    const phoneSource = personSource({ connector: '{ type: csv, path: data/customers.csv }', fields: { phone: 'phone', order_count: 'orders' } });
    const numbers = ['(415) 555-0132', '+44 20 7946 0958', '415.555.0199', 'not a number', ''];
    const csv = `customer_id,phone,orders\n${Array.from({ length: 300 }, (_, i) => `c${i},${numbers[i % numbers.length]},${i}`).join('\n')}\n`;
    const people = async (parallel: ParallelOptions) => {
      resetSandbox(sandbox);
      const dir = await makeProject({ sources: [phoneSource], data: { 'customers.csv': csv } });
      const report = await sync(dir, sandbox, 'customers', { parallel });
      const held = sandbox.customerio.listPeople().map((p) => [p.id, p.attributes.phone ?? null] as const);
      return { report: outcome(report), rejects: await rejectsOf(dir), held: held.sort(([a], [b]) => ((a ?? '') < (b ?? '') ? -1 : 1)) };
    };
    const serial = await people({ workers: 0 });
    expect(serial.held).toContainEqual(['c0', '+14155550132']);
    expect(await people({ workers: 2, minBytes: 0, readBytes: 256 })).toEqual(serial);
  }, 60_000);

  it('fails a truncated file after diffing the rows before it, as the sequential read does', async () => {
    const rows = Array.from({ length: 3000 }, (_, i) => `c${i},${i},"store, ${i % 9}",gold,2026-01-01T00:00:00Z,2026-01-0${1 + (i % 3)}T00:00:00Z`);
    const broken = `${HEADER}\n${rows.join('\n')}\nc9999,1,"never closed\n`;
    const serialDir = await makeProject({ sources: [SOURCE], data: { 'customers.csv': broken }, policy: POLICY });
    const serial = await sync(serialDir, sandbox, 'customers', { mode: 'plan', parallel: { workers: 0 } });
    const parallelDir = await makeProject({ sources: [SOURCE], data: { 'customers.csv': broken }, policy: POLICY });
    const parallel = await sync(parallelDir, sandbox, 'customers', { mode: 'plan', parallel: { workers: 2, minBytes: 0, readBytes: 4096 } });
    expect(serial.status).toBe('failed');
    expect(serial.error).toMatch(/never closed/);
    expect(outcome(parallel)).toEqual(outcome(serial));
    expect(parallel.counts.read).toBe(3000);
  }, 60_000);

  it('runs from bin/tidemark.js in a project folder: workers start there, and a parallel run leaves what a sequential plan finds unchanged', async () => {
    const rows = Array.from({ length: 2000 }, (_, i) => `c${i},${i % 13},"store, ${i % 9}",${i % 3 === 0 ? '' : 'gold'},,2026-01-0${1 + (i % 3)}T00:00:00Z`);
    const dir = await makeProject({ sources: [SOURCE], data: { 'customers.csv': `${HEADER}\n${rows.join('\n')}\n` }, policy: POLICY });
    const env = (workers: string) => ({ ...sandboxEnv(sandbox), TIDEMARK_SYNC_WORKERS: workers, TIDEMARK_SYNC_PARALLEL_MIN_BYTES: '0', NO_COLOR: '1' });
    // `sync run` prints its reports under `runs`, `sync plan` one report.
    const report = (output: string) => {
      const json = JSON.parse(output.split('\n').filter((l) => !l.startsWith('tidemark ')).join('\n')) as SyncReport & { runs?: SyncReport[] };
      return json.runs?.[0] ?? json;
    };
    const parallelPlan = await runChild(dir, ['sync', 'plan', 'customers', '--format', 'json'], { env: env('2') });
    const serialPlan = await runChild(dir, ['sync', 'plan', 'customers', '--format', 'json'], { env: env('0') });
    // The workers load worker.ts compiled with the CLI (bin/compiled.js); through tsx, they compile it here.
    const sourcesPlan = await runChild(dir, ['sync', 'plan', 'customers', '--format', 'json'], { env: { ...env('2'), TIDEMARK_COMPILE: '0' } });
    expect(parallelPlan.code, parallelPlan.output).toBe(0);
    expect(sourcesPlan.code, sourcesPlan.output).toBe(0);
    expect(report(parallelPlan.output).counts).toEqual(report(serialPlan.output).counts);
    expect(report(sourcesPlan.output).counts).toEqual(report(serialPlan.output).counts);
    const run = await runChild(dir, ['sync', 'run', 'customers', '--format', 'json'], { env: env('2') });
    expect(run.code, run.output).toBe(0);
    expect(report(run.output).counts).toMatchObject({ read: 2000, new: 2000, acknowledged: 2000 });
    const after = await runChild(dir, ['sync', 'plan', 'customers', '--format', 'json'], { env: env('0') });
    expect(report(after.output).counts).toMatchObject({ read: 2000, new: 0, changed: 0, unchanged: 2000 });
  }, 120_000);
});
