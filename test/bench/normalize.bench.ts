/**
 * Normalise + prepare benchmark: the per-row CPU cost of the sync engine's local pipeline, without the
 * connector, the snapshot or any I/O. The budget for the whole local pipeline is 100,000 rows/s, so these
 * two steps together must stay around 3 µs per row.
 *
 *   npx tsx test/bench/normalize.bench.ts [rows=1000000] [--passes=2] [--old=DIR]
 *
 * The source is the sync benchmark's person source (test/support/bench-people.ts): numeric customer id,
 * email, a plan enum with its plan_updated_at companion, order count, lifetime value, country (blank in 10%
 * of rows), a boolean, and naive updated_at/plan timestamps read in America/New_York. Rows are generated in memory the
 * way the CSV connector yields them (every value a fresh string, blanks as ''), before anything is timed.
 *
 * Each pass times, over all rows: normalising alone (the current code through `createNormalizer`, as the
 * engine does; an old copy through its `normalize`), prepareRow() alone (on rows normalised untimed, ten
 * thousand at a time), and both as the engine calls them. The best pass is reported
 * (2 shared cores: the best is the least disturbed). Every row must be accepted, or the script exits 1.
 * `--old=DIR` also loads normalize.ts and prepare.ts from DIR (a copy of a previous version, kept outside
 * the repository) and times it in the same run, alternating with the current code; every row's
 * normalised row, payload and hash must then be the same in both, or the script exits 1.
 * A measurement, not a test: nothing is timed against a threshold.
 *
 * `--segments` times instead what a worker of the parallel read does (issue 15): the same rows written as
 * the sync benchmark's CSV text, cut into 256 KiB segments, each parsed, normalised, prepared and hashed
 * by `createSegmentWorker`, in this thread. Pass 1 is a fresh worker's (its caches cold, as in every
 * run); the best pass is the warm figure.
 */
import path from 'node:path';
import type { FieldDef } from '../../reconciler/spec/schema/index.ts';
import * as current from '../../reconciler/sync/normalize.ts';
import * as currentPrepare from '../../reconciler/sync/prepare.ts';
import type { NormalizeContext, NormalizeResult, NormalizedRow, SourceRow } from '../../reconciler/sync/types.ts';

import { createSegmentWorker } from '../../reconciler/sync/parallel/segment.ts';
import { BASE_SECONDS, COUNTRIES, customerId, naiveStamp, PEOPLE_CSV_HEADER, PLANS, peopleFields, peopleSource } from '../support/bench-people.ts';

const args = process.argv.slice(2);
const rows = Number(args.find((a) => /^\d+$/.test(a)) ?? 1_000_000);
const passes = Number(args.find((a) => a.startsWith('--passes='))?.slice('--passes='.length) ?? 2);
const oldDir = args.find((a) => a.startsWith('--old='))?.slice('--old='.length);

const source = peopleSource;
const fields = new Map<string, FieldDef>(Object.entries(peopleFields));

const ctx: NormalizeContext = { source, fields, normalization: { email: { trim: true, lowercase: true } }, primary: 'id' };

/**
 * Row i as csv-parse yields it. Every value is built by concatenation so that it is a fresh string, as a
 * parser's output is (a shared literal would carry a cached hash and flatter any string-keyed lookup).
 */
function csvRow(i: number): SourceRow {
  const planChangedAt = BASE_SECONDS + (i % 300) * 86_400 + (i % 86_400);
  const fresh = (s: string): string => `${s} `.slice(0, s.length);
  return {
    location: `data/people.csv:${i + 2}`,
    values: {
      customer_id: customerId(i),
      email: `Person.${i}@Example.com`,
      plan: fresh(PLANS[i % PLANS.length]!),
      plan_changed_at: naiveStamp(planChangedAt),
      orders: String(i % 23),
      lifetime_value: String(Math.round((i % 9973) * 1.37 * 100) / 100),
      country: i % 10 === 3 ? '' : fresh(COUNTRIES[i % COUNTRIES.length]!),
      accepts_marketing: fresh(i % 3 !== 0 ? 'yes' : 'no'),
      updated_at: naiveStamp(planChangedAt + 3_600),
    },
  };
}

interface Impl {
  label: string;
  normalize: (row: SourceRow, ctx: NormalizeContext) => NormalizeResult;
  prepareRow: typeof currentPrepare.prepareRow;
}

if (args.includes('--segments')) {
  await timeSegments();
  process.exit(process.exitCode ?? 0);
}

/** The worker's per-row path over CSV text (see the module comment). */
async function timeSegments(): Promise<void> {
  const segments: { text: string; line: number; mayHoldInvalid: boolean }[] = [];
  let text = '';
  let start = 2;
  for (let i = 0; i < rows; i++) {
    const v = csvRow(i).values as Record<string, string>;
    text += `${v.customer_id},${v.email},${v.plan},${v.plan_changed_at},${v.orders},${v.lifetime_value},${v.country},${v.accepts_marketing},${v.updated_at}\n`;
    if (text.length >= 256 * 1024 || i === rows - 1) {
      segments.push({ text, line: start, mayHoldInvalid: false });
      text = '';
      start = i + 3;
    }
  }
  const work = createSegmentWorker({ source, fields: [...fields], normalization: ctx.normalization, primary: ctx.primary });
  const csv = { path: 'data/people.csv', delimiter: ',', maxRecord: 8 * 1024 * 1024, header: PEOPLE_CSV_HEADER.split(',') };
  const times: number[] = [];
  for (let pass = 1; pass <= Math.max(passes, 2); pass++) {
    let count = 0;
    let rejected = 0;
    const t0 = performance.now();
    for (let s = 0; s < segments.length; s++) {
      const r = work({ seq: s, csv, segment: segments[s]!, payloads: false });
      count += r.count;
      rejected += r.rejects.length;
    }
    times.push(performance.now() - t0);
    if (count !== rows || rejected > 0) {
      process.stderr.write(`pass ${pass}: ${count} rows, ${rejected} rejected\n`);
      process.exitCode = 1;
    }
  }
  const us = times.map((t) => ((t * 1000) / rows).toFixed(2));
  process.stdout.write(`segment worker, ${rows.toLocaleString('en-US')} rows in ${segments.length} segments, Node ${process.version}: µs per row by pass ${us.join(', ')} (first: cold caches)\n`);
}

// What the engine runs: one normaliser compiled for the source, then called per row.
const compiled = current.createNormalizer(ctx);
const impls: Impl[] = [{ label: 'current', normalize: (row) => compiled(row), prepareRow: currentPrepare.prepareRow }];
if (oldDir) {
  const dir = path.resolve(oldDir);
  const n = (await import(path.join(dir, 'normalize.ts'))) as Pick<typeof current, 'createNormalizer'>;
  const p = (await import(path.join(dir, 'prepare.ts'))) as typeof currentPrepare;
  const oldCompiled = n.createNormalizer(ctx);
  const oldNormalize: Impl['normalize'] = (row) => oldCompiled(row);
  impls.unshift({ label: `old (${dir})`, normalize: oldNormalize, prepareRow: p.prepareRow });
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');

let t = performance.now();
const data: SourceRow[] = new Array<SourceRow>(rows);
for (let i = 0; i < rows; i++) data[i] = csvRow(i);
process.stderr.write(`generated ${int(rows)} rows in ${((performance.now() - t) / 1000).toFixed(1)} s\n`);

let problems = 0;

// Untimed: every row must be accepted, and with --old both implementations must give the same rows,
// payloads and hashes. Compared row by row, so that nothing a million rows large is kept meanwhile.
{
  const [first, second] = impls;
  let differ = 0;
  for (let i = 0; i < rows; i++) {
    const a = first!.normalize(data[i]!, ctx);
    if (!a.ok) {
      if (problems++ < 5) process.stderr.write(`row ${i} rejected: ${a.code} ${a.reason}\n`);
      continue;
    }
    if (!second) continue;
    const b = second.normalize(data[i]!, ctx);
    const same = b.ok && JSON.stringify(a) === JSON.stringify(b) && JSON.stringify(first!.prepareRow(a, source, fields)) === JSON.stringify(second.prepareRow(b, source, fields));
    if (!same && differ++ < 5) process.stderr.write(`row ${i}: the implementations disagree\n${JSON.stringify(a)}\n${JSON.stringify(b)}\n`);
  }
  if (differ > 0) {
    problems++;
    process.stderr.write(`${int(differ)} rows differ between the implementations\n`);
  }
}

interface Timing {
  normalize: number;
  prepare: number;
  both: number;
}
const best = new Map<Impl, Timing>(impls.map((impl) => [impl, { normalize: Infinity, prepare: Infinity, both: Infinity }]));
// Something every timed loop feeds, printed at the end, so no loop body can be optimised away.
let sink = 0;

function timeNormalize(impl: Impl): number {
  const t0 = performance.now();
  for (let i = 0; i < rows; i++) {
    const n = impl.normalize(data[i]!, ctx);
    if (n.ok) sink += n.key.length;
  }
  return performance.now() - t0;
}

/** prepareRow alone, on rows normalised (untimed) a chunk at a time, as the engine holds them. */
function timePrepare(impl: Impl): number {
  const CHUNK = 10_000;
  const input: NormalizedRow[] = [];
  let ms = 0;
  for (let start = 0; start < rows; start += CHUNK) {
    input.length = 0;
    for (let i = start; i < Math.min(rows, start + CHUNK); i++) {
      const n = impl.normalize(data[i]!, ctx);
      if (n.ok) input.push(n);
    }
    const t0 = performance.now();
    for (let i = 0; i < input.length; i++) sink += impl.prepareRow(input[i]!, source, fields).hash.length;
    ms += performance.now() - t0;
  }
  return ms;
}

function timeBoth(impl: Impl): number {
  const t0 = performance.now();
  for (let i = 0; i < rows; i++) {
    const n = impl.normalize(data[i]!, ctx);
    if (n.ok) sink += impl.prepareRow(n, source, fields).hash.length;
  }
  return performance.now() - t0;
}

for (let pass = 1; pass <= passes; pass++) {
  for (const impl of impls) {
    const b = best.get(impl)!;
    t = timeNormalize(impl);
    b.normalize = Math.min(b.normalize, t);
    const p = timePrepare(impl);
    b.prepare = Math.min(b.prepare, p);
    const both = timeBoth(impl);
    b.both = Math.min(b.both, both);
    process.stderr.write(`pass ${pass}, ${impl.label}: normalize ${int(t)} ms, prepare ${int(p)} ms, both ${int(both)} ms\n`);
  }
}

const perRow = (ms: number): string => `${((ms * 1000) / rows).toFixed(2)} µs`;
const rate = (ms: number): string => `${int(rows / (ms / 1000))} rows/s`;
process.stdout.write(
  `\nnormalise + prepare: ${int(rows)} person rows (sync benchmark's source: naive timestamps in America/New_York, a blank attribute in 10% of rows), best of ${passes} pass(es), Node ${process.version}\n\n`,
);
process.stdout.write('| implementation | step | per row | rate |\n|---|---|---|---|\n');
for (const impl of impls) {
  const b = best.get(impl)!;
  process.stdout.write(`| ${impl.label} | normalize | ${perRow(b.normalize)} | ${rate(b.normalize)} |\n`);
  process.stdout.write(`| ${impl.label} | prepareRow | ${perRow(b.prepare)} | ${rate(b.prepare)} |\n`);
  process.stdout.write(`| ${impl.label} | normalize + prepareRow | ${perRow(b.both)} | ${rate(b.both)} |\n`);
}
process.stderr.write(`(checksum ${sink})\n`);
process.exitCode = problems > 0 ? 1 : 0;
