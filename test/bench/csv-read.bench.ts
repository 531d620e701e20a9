/**
 * CSV connector throughput: a generated person source like sync.bench.ts's (customer id, email, plan and
 * its updated_at companion, order count, lifetime value, country blank in 10% of rows, a boolean, an
 * ordering timestamp) read with `readBatches` (what the engine uses) and with `read` (row by row).
 * Prints rows/s and peak RSS. A measurement, not a test: nothing is asserted.
 *
 *   npx tsx test/bench/csv-read.bench.ts [rows=1000000] [--runs=3] [--compare=/abs/path/to/csv.ts]
 *
 * Each read runs in its own child process, so its peak RSS is its own and one mode's garbage does not
 * slow the next. Runs alternate between modes (a b a b …) so a noisy neighbour on the shared cores hits
 * them alike; the median and the best run are shown. `--compare` adds the `read` of another module
 * exporting `createCsvConnector` (e.g. a previous version kept outside the repository).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Connector } from '../../reconciler/sync/types.ts';

const args = process.argv.slice(2);
const child = args.find((a) => a.startsWith('--child='))?.slice('--child='.length);

interface Measured {
  rows: number;
  ms: number;
  cpuMs: number;
  maxRssKb: number;
}

if (child) {
  // Child: read the file once in the given mode and print the measurement as JSON.
  const [file, modulePath] = args.filter((a) => !a.startsWith('--'));
  const { createCsvConnector } = (await import(pathToFileURL(modulePath ?? path.resolve(import.meta.dirname, '../../reconciler/sync/connectors/csv.ts')).href)) as {
    createCsvConnector: (spec: { type: 'csv'; path: string }) => Connector;
  };
  const connector = createCsvConnector({ type: 'csv', path: file! });
  const ctx = { lastSyncAt: null, cwd: '/', env: {} };
  const t = performance.now();
  const cpu = process.cpuUsage();
  let rows = 0;
  let errors = 0;
  if (child === 'batches') {
    if (!connector.readBatches) throw new Error('this connector has no readBatches');
    for await (const batch of connector.readBatches(ctx)) {
      rows += batch.length;
      for (const r of batch) if (r.values.__error !== undefined) errors++;
    }
  } else {
    for await (const r of connector.read(ctx)) {
      rows++;
      if (r.values.__error !== undefined) errors++;
    }
  }
  const ms = performance.now() - t;
  const used = process.cpuUsage(cpu);
  if (errors > 0) throw new Error(`${errors} rows could not be read`);
  const out: Measured = { rows, ms, cpuMs: (used.user + used.system) / 1000, maxRssKb: process.resourceUsage().maxRSS };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
}

const rows = Number(args.find((a) => /^\d+$/.test(a)) ?? 1_000_000);
const runs = Number(args.find((a) => a.startsWith('--runs='))?.slice('--runs='.length) ?? 3);
const compare = args.find((a) => a.startsWith('--compare='))?.slice('--compare='.length);

const PLANS = ['free', 'starter', 'pro', 'enterprise'] as const;
const COUNTRIES = ['US', 'GB', 'DE', 'FR', 'CA', 'AU', 'NL', 'SE'] as const;
const BASE_SECONDS = Date.UTC(2025, 0, 1) / 1000;
const customerId = (i: number): string => String((Math.imul(i, 2654435761) >>> 0) + 100_000_000);
const stamp = (seconds: number): string => new Date(seconds * 1000).toISOString().slice(0, 19).replace('T', ' ');

async function writeCsv(file: string): Promise<number> {
  const out = createWriteStream(file);
  out.write('customer_id,email,plan,plan_changed_at,orders,lifetime_value,country,accepts_marketing,updated_at\n');
  let buf = '';
  let bytes = 0;
  for (let i = 0; i < rows; i++) {
    const planChangedAt = BASE_SECONDS + (i % 300) * 86_400 + (i % 86_400);
    const country = i % 10 === 3 ? '' : COUNTRIES[i % COUNTRIES.length]!;
    buf += `${customerId(i)},Person.${i}@Example.com,${PLANS[i % PLANS.length]},${stamp(planChangedAt)},${i % 23},${Math.round((i % 9973) * 1.37 * 100) / 100},${country},${i % 3 !== 0 ? 'yes' : 'no'},${stamp(planChangedAt + 3_600)}\n`;
    if (buf.length > 1 << 20) {
      bytes += buf.length;
      if (!out.write(buf)) await once(out, 'drain');
      buf = '';
    }
  }
  bytes += buf.length;
  out.end(buf);
  await once(out, 'finish');
  return bytes;
}

function measure(mode: string, file: string, modulePath?: string): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const argv = ['--import', 'tsx', import.meta.filename, `--child=${mode}`, file, ...(modulePath ? [modulePath] : [])];
    const p = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => {
      if (code !== 0) reject(new Error(`${mode} exited with ${code}`));
      else resolve(JSON.parse(stdout) as Measured);
    });
  });
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'tidemark-bench-csv-'));
let failed = false;
try {
  const file = path.join(dir, 'people.csv');
  process.stderr.write(`generating ${rows.toLocaleString('en-US')} rows… `);
  const bytes = await writeCsv(file);
  process.stderr.write(`${Math.round(bytes / 1e6)} MB\n`);

  const modes: { label: string; mode: string; module?: string }[] = [
    { label: '`readBatches`', mode: 'batches' },
    { label: '`read`', mode: 'rows' },
    ...(compare ? [{ label: `\`read\`, ${path.basename(compare)}`, mode: 'rows', module: compare }] : []),
  ];
  const results = new Map<string, Measured[]>(modes.map((m) => [m.label, []]));
  for (let r = 0; r < runs; r++) {
    for (const m of modes) {
      process.stderr.write(`run ${r + 1}/${runs}: ${m.label}… `);
      const got = await measure(m.mode, file, m.module);
      if (got.rows !== rows) {
        failed = true;
        process.stderr.write(`read ${got.rows} rows, expected ${rows}\n`);
      }
      process.stderr.write(`${Math.round(got.ms)} ms\n`);
      results.get(m.label)!.push(got);
    }
  }

  const rate = (ms: number) => Math.round((rows / ms) * 1000).toLocaleString('en-US');
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
  console.log(`CSV read, ${rows.toLocaleString('en-US')} rows (${Math.round(bytes / 1e6)} MB), ${runs} run(s) per mode, node ${process.version}, ${os.cpus().length} CPUs`);
  console.log('');
  console.log('| mode | rows/s (median) | rows/s (best) | µs/row (median) | CPU s (median) | peak RSS (max) |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const m of modes) {
    const rs = results.get(m.label)!;
    const ms = median(rs.map((x) => x.ms));
    const best = Math.min(...rs.map((x) => x.ms));
    console.log(
      `| ${m.label} | ${rate(ms)} | ${rate(best)} | ${((ms * 1000) / rows).toFixed(2)} | ${(median(rs.map((x) => x.cpuMs)) / 1000).toFixed(2)} | ${Math.round(Math.max(...rs.map((x) => x.maxRssKb)) / 1024)} MB |`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
if (failed) process.exit(1);
