/**
 * The sandbox world (Hearth & Harvest): how fast the generator makes it, how fast the embedded warehouse
 * loads it, and how long `npm start`'s main job takes on it. The tests use the same generator.
 *
 *   npx tsx test/bench/world.bench.ts [people=1000000] [--load=100000] [--start=5000]
 *
 * 1. Generate the world for `people` customers a chunk at a time (rows per second, peak RSS of this process).
 * 2. Load `--load` customers into the embedded warehouse (PGlite behind its socket server, as `start` does).
 * 3. `tidemark start --people N` twice at one clock in a fresh folder (a separate process, as a user runs
 *    it): the first run does everything, the second must send nothing. Then once three hours later.
 * A measurement, not a test: nothing is asserted, but a start that exits non-zero makes this exit 1.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedWarehouse } from '../../reconciler/world/embedded-warehouse.ts';
import { worldChunks } from '../../reconciler/world/hearth-and-harvest.ts';

const args = process.argv.slice(2);
const people = Number(args.find((a) => /^\d+$/.test(a)) ?? 1_000_000);
const load = Number(args.find((a) => a.startsWith('--load='))?.slice(7) ?? 100_000);
const startPeople = Number(args.find((a) => a.startsWith('--start='))?.slice(8) ?? 5000);
const NOW = new Date('2026-12-02T12:00:00Z');
const repo = path.resolve(import.meta.dirname, '../..');
let failed = false;

const rows: string[] = ['| step | size | seconds | rate | note |', '|---|---|---|---|---|'];

{
  const t0 = performance.now();
  let total = 0;
  let customers = 0;
  for (const chunk of worldChunks({ seed: 1, people, now: NOW }, 20_000)) {
    customers += chunk.customers.length;
    for (const v of Object.values(chunk)) total += v.length;
  }
  const s = (performance.now() - t0) / 1000;
  rows.push(`| generate the world | ${people.toLocaleString('en-US')} people → ${total.toLocaleString('en-US')} rows | ${s.toFixed(1)} | ${Math.round(total / s).toLocaleString('en-US')} rows/s | ${customers.toLocaleString('en-US')} customers; peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB |`);
  process.stderr.write(`generated ${total} rows in ${s.toFixed(1)} s\n`);
}

{
  const t0 = performance.now();
  const wh = await startEmbeddedWarehouse({ seed: 1, people: load, now: NOW });
  const s = (performance.now() - t0) / 1000;
  const total = Object.values(wh.counts).reduce((a, b) => a + b, 0);
  await wh.close();
  rows.push(`| boot PGlite + load the warehouse | ${load.toLocaleString('en-US')} people → ${total.toLocaleString('en-US')} rows | ${s.toFixed(1)} | ${Math.round(total / s).toLocaleString('en-US')} rows/s | includes PGlite's boot |`);
  process.stderr.write(`loaded ${total} rows in ${s.toFixed(1)} s\n`);
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'tidemark-bench-world-'));
try {
  cpSync(path.join(repo, 'specs'), path.join(dir, 'specs'), { recursive: true, filter: (src) => !/specs\/data\/.+\.(csv|ndjson)$/.test(src) });
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '', NO_COLOR: '1' };
  for (const [label, now] of [
    ['first start', '2026-12-02T12:00:00Z'],
    ['second start, same clock', '2026-12-02T12:00:00Z'],
    ['start three hours later', '2026-12-02T15:00:00Z'],
  ] as const) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [path.join(repo, 'bin/tidemark.js'), 'start', '--now', now, '--people', String(startPeople)], { cwd: dir, env, encoding: 'utf8' });
    const s = (performance.now() - t0) / 1000;
    const sent = [...r.stdout.matchAll(/synced \S+: read \d+, sent (\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
    if (r.status !== 0) {
      failed = true;
      process.stderr.write(r.stdout + r.stderr);
    }
    rows.push(`| \`tidemark start\` (${label}) | ${startPeople.toLocaleString('en-US')} people | ${s.toFixed(1)} | | exit ${r.status}; ${sent.toLocaleString('en-US')} rows and events sent |`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

process.stdout.write(`${rows.join('\n')}\n`);
process.exit(failed ? 1 : 0);
