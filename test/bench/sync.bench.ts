/**
 * Sync benchmark (issue: "a 1,000,000-row person source with 1% changed between runs"). A sandbox runs in
 * this process as Customer.io; tidemark runs as a separate CLI process in live mode (sandbox credentials and
 * URLs in its environment), the way it talks to the real Track API.
 *
 *   npx tsx test/bench/sync.bench.ts [rows=1000000] [--skip-baseline] [--skip-first-plan] [--keep] [--timestamps=iso]
 *
 * `--skip-first-plan` leaves out step 1 (at 10,000,000 rows it costs minutes and measures nothing the
 * first run does not); the first run is still a real `sync run`.
 *
 * Steps, on a generated CSV person source (test/support/bench-people.ts: id, email, an enum with its
 * updated_at companion, numbers, a boolean, an ordering timestamp; naive timestamps in America/New_York; one
 * attribute blank in 10% of rows):
 * 1. `sync plan` on the full file with an empty snapshot: local processing rate (read, normalise, prepare,
 *    stage, diff; nothing sent).
 * 2. `sync run`: the full first run at a configured Track limit of 100 requests/s.
 * 3. 1% of rows change (deterministically: plan, its companion, order count, ordering column).
 * 4. `sync plan` again (1% changed) and `sync run` again: the re-sync.
 * 5. Baseline: the same changed rows delivered the way a user would without tidemark, one `identify` per
 *    row with the official customerio-node client, paced client-side at the same 100 requests/s.
 *
 * The floor (issue 15): before each pair of local steps, on the same file and in the same run, a bare Node
 * script (its own process, one core, no tidemark code) reads the file in 256 KiB reads and takes a sha256 of
 * every line: what any tool that must look at every row pays. Every step is also given as a ratio to it, so
 * figures compare across machines and across loads (the median of three floor runs is used; the machine is
 * shared, so its load average is printed beside them).
 *
 * Requests are counted by the sandbox; 429 answers are counted separately (they are requests too). Peak RSS
 * and CPU time of the tidemark process come from `TIDEMARK_REPORT_RSS=1`; the sandbox's memory and CPU time
 * are this process's and are reported apart from tidemark's (on two cores, a first run's emulator uses
 * about as much CPU as tidemark, so a step's wall time is theirs together). A measurement, not a test: nothing is asserted, but a step that exits
 * non-zero or delivers the wrong count is flagged in the table and makes this script exit 1.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { TrackClient } from 'customerio-node';
import { stringify } from 'yaml';
import { createSandbox, type RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { BASE_SECONDS, COUNTRIES, customerId, naiveStamp, PEOPLE_CSV_HEADER, PLANS, peopleFields, peopleSource } from '../support/bench-people.ts';

const args = process.argv.slice(2);
const rows = Number(args.find((a) => /^\d+$/.test(a)) ?? 1_000_000);
const skipBaseline = args.includes('--skip-baseline');
const skipFirstPlan = args.includes('--skip-first-plan');
/** Keep the generated folder (specs, CSV, state) for profiling a step by hand. */
const keep = args.includes('--keep');
const timestamps = args.includes('--timestamps=iso') ? 'iso' : 'naive';
/** The configured Track limit, for tidemark (env) and the baseline (pacing) alike. */
const TRACK_RATE = 100;
/**
 * What the sandbox enforces (a sliding one-second window). 10% above the clients' pace: on two busy cores,
 * requests started exactly 10 ms apart can arrive bunched, and an exact 100/s window then refuses some of
 * them (measured: ~3% of evenly paced identify calls got 429s at 100/s). Any 429 is still counted.
 */
const SANDBOX_TRACK_RATE = 110;
/** One row in CHANGE_EVERY changes between the runs (1%). */
const CHANGE_EVERY = 100;
const CHANGE_OFFSET = 37;
const repo = path.resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(path.join(os.tmpdir(), 'tidemark-bench-sync-'));
const csvPath = path.join(dir, 'data/people.csv');

const isChanged = (i: number): boolean => i % CHANGE_EVERY === CHANGE_OFFSET;

interface Person {
  id: string;
  email: string;
  plan: string;
  planChangedAt: number;
  orders: number;
  ltv: number;
  /** Blank in one row in ten: exercises the null policy (a blank never erases) on every run. */
  country: string | undefined;
  marketing: boolean;
  updatedAt: number;
}

function person(i: number, version: number): Person {
  const changed = version > 0 && isChanged(i);
  const planChangedAt = BASE_SECONDS + (i % 300) * 86_400 + (i % 86_400);
  return {
    id: customerId(i),
    email: `Person.${i}@Example.com`,
    plan: PLANS[(i + (changed ? 1 : 0)) % PLANS.length]!,
    planChangedAt: changed ? planChangedAt + 400 * 86_400 : planChangedAt,
    orders: (i % 23) + (changed ? 1 : 0),
    ltv: Math.round((i % 9973) * 1.37 * 100) / 100,
    country: i % 10 === 3 ? undefined : COUNTRIES[i % COUNTRIES.length]!,
    marketing: i % 3 !== 0,
    updatedAt: changed ? planChangedAt + 400 * 86_400 : planChangedAt + 3_600,
  };
}

/**
 * Timestamps as the CSV writes them: naive wall-clock text read in the source's declared timezone (default,
 * as warehouse exports usually write them; DST rules apply), or ISO-8601 with `Z` (`--timestamps=iso`).
 */
const stamp = timestamps === 'naive' ? naiveStamp : (seconds: number): string => `${new Date(seconds * 1000).toISOString().slice(0, 19)}Z`;

async function writeCsv(version: number): Promise<void> {
  mkdirSync(path.dirname(csvPath), { recursive: true });
  const out = createWriteStream(csvPath);
  out.write(`${PEOPLE_CSV_HEADER}\n`);
  let buf = '';
  for (let i = 0; i < rows; i++) {
    const p = person(i, version);
    buf += `${p.id},${p.email},${p.plan},${stamp(p.planChangedAt)},${p.orders},${p.ltv},${p.country ?? ''},${p.marketing ? 'yes' : 'no'},${stamp(p.updatedAt)}\n`;
    if (buf.length > 1 << 20) {
      if (!out.write(buf)) await once(out, 'drain');
      buf = '';
    }
  }
  out.end(buf);
  await once(out, 'finish');
}

function writeSpecs(): void {
  mkdirSync(path.join(dir, 'specs'), { recursive: true });
  writeFileSync(
    path.join(dir, 'specs/workspace.yaml'),
    `kind: Workspace
name: bench
identity: { primary: id }
normalization:
  email: { trim: true, lowercase: true }
environments:
  bench:
    customerio: { region: us }
state: { backend: embedded, path: .tidemark }
---
${stringify({ kind: 'Fields', name: 'people', fields: peopleFields })}`,
  );
  writeFileSync(path.join(dir, 'specs/people.yaml'), stringify({ ...peopleSource, freshness: { max_age: '26h' }, latency_needed: 'daily' }));
}

interface StepResult {
  ms: number;
  rssBytes: number | undefined;
  /** CPU seconds of the tidemark process (all its threads), and of this process (the emulator) meanwhile. */
  cpu: { tidemark: number | undefined; emulator: number };
  status: number | null;
  report: { counts?: Record<string, unknown>; runs?: { counts: Record<string, unknown> }[] } | undefined;
  requests: number;
  tooMany: number;
  output: string;
}

/** 429 answers of the Track listener, counted by wrapping the emulator's handler (requests are counted by the sandbox). */
function countRateLimited(sandbox: RunningSandbox): { read(): number; reset(): void } {
  let n = 0;
  const track = sandbox.customerio.track;
  const handle = track.handle.bind(track);
  track.handle = async (req, faults) => {
    const res = await handle(req, faults);
    if (res.status === 429) n++;
    return res;
  };
  return { read: () => n, reset: () => void (n = 0) };
}

/**
 * The floor: a minimal read of the file plus a sha256 per line, single core, as its own process (so it
 * pays a process start like every tidemark step). Plain JavaScript on purpose: nothing of tidemark's.
 */
const FLOOR_SCRIPT = `
const { openSync, readSync, closeSync } = require('node:fs');
const { hash } = require('node:crypto');
const fd = openSync(process.argv[1], 'r');
const buf = Buffer.allocUnsafe(256 * 1024);
let carry = '', lines = 0;
for (;;) {
  const n = readSync(fd, buf, 0, buf.length, null);
  if (n === 0) break;
  const s = carry + buf.toString('utf8', 0, n);
  let p = 0;
  for (let e = s.indexOf('\\n', p); e >= 0; e = s.indexOf('\\n', p)) { hash('sha256', s.slice(p, e)); lines++; p = e + 1; }
  carry = s.slice(p);
}
if (carry.length > 0) { hash('sha256', carry); lines++; }
closeSync(fd);
process.stdout.write(String(lines));
`;

interface Floor {
  /** Median wall time of the runs, process start included. */
  ms: number;
  runs: number[];
  lines: number;
  /** 1-minute load average when it was measured. */
  load: number;
}

async function measureFloor(file: string, runs = 3): Promise<Floor> {
  const times: number[] = [];
  let lines = 0;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', FLOOR_SCRIPT, file], { stdio: ['ignore', 'pipe', 'inherit'] });
      let stdout = '';
      child.stdout.on('data', (d) => (stdout += String(d)));
      child.on('close', (status) => (status === 0 ? resolve(stdout) : reject(new Error(`the floor script exited ${status}`))));
    });
    times.push(performance.now() - t0);
    lines = Number(out);
  }
  const sorted = [...times].sort((a, b) => a - b);
  return { ms: sorted[Math.floor(sorted.length / 2)]!, runs: times, lines, load: os.loadavg()[0]! };
}

const totalRequests = (counts: Record<string, number>): number =>
  Object.entries(counts).filter(([k]) => !k.includes('__sandbox')).reduce((n, [, v]) => n + v, 0);

async function runTidemark(sandbox: RunningSandbox, limited: ReturnType<typeof countRateLimited>, cliArgs: string[]): Promise<StepResult> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...sandbox.env,
    CUSTOMERIO_TRACK_RATE_PER_SECOND: String(TRACK_RATE),
    TIDEMARK_REPORT_RSS: '1',
    NO_COLOR: '1',
  };
  delete env.TIDEMARK_DATABASE_URL;
  sandbox.resetRequestCounts();
  limited.reset();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [path.join(repo, 'bin/tidemark.js'), ...cliArgs], { cwd: dir, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.stderr.on('data', (d) => (stderr = (stderr + String(d)).slice(-8000)));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
  const ms = performance.now() - t0;
  const emulator = process.cpuUsage(cpu0);
  const rss = /peak-rss-bytes=(\d+)/.exec(r.stderr)?.[1];
  const cpu = /cpu-microseconds=(\d+),(\d+)/.exec(r.stderr);
  let report: StepResult['report'];
  try {
    report = JSON.parse(r.stdout) as StepResult['report'];
  } catch {
    report = undefined;
  }
  return {
    ms,
    rssBytes: rss ? Number(rss) : undefined,
    cpu: { tidemark: cpu ? (Number(cpu[1]) + Number(cpu[2])) / 1e6 : undefined, emulator: (emulator.user + emulator.system) / 1e6 },
    status: r.status,
    report,
    requests: totalRequests(sandbox.requestCounts()),
    tooMany: limited.read(),
    output: `${r.stderr}\n${r.stdout.slice(-4000)}`,
  };
}

/**
 * What a user without tidemark writes: the official client, one identify per changed row, paced at the
 * account's Track limit with evenly spaced starts (a token bucket of one) and a few requests in flight.
 */
async function baseline(sandbox: RunningSandbox, limited: ReturnType<typeof countRateLimited>, people: Person[]): Promise<{ ms: number; requests: number; tooMany: number; failed: number }> {
  const cio = new TrackClient(sandbox.env.CUSTOMERIO_SITE_ID!, sandbox.env.CUSTOMERIO_TRACK_API_KEY!, {
    url: `${sandbox.env.CUSTOMERIO_TRACK_URL}/api/v1`,
    // The client's defaults, except a short backoff floor so a stray 429 does not dominate the figure.
    retry: { maxRetries: 3, minTimeoutMs: 50 },
  });
  sandbox.resetRequestCounts();
  limited.reset();
  const spacingMs = 1000 / TRACK_RATE;
  const maxInFlight = 8;
  const inFlight = new Set<Promise<void>>();
  let failed = 0;
  const t0 = performance.now();
  let next = t0;
  for (let k = 0; k < people.length; k++) {
    // A bucket of one token: a late timer never lets the loop catch up in a burst.
    const wait = next - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    next = Math.max(next, performance.now()) + spacingMs;
    while (inFlight.size >= maxInFlight) await Promise.race(inFlight);
    const p = people[k]!;
    const call: Promise<void> = cio
      .identify(p.id, {
        email: p.email.toLowerCase(),
        plan: p.plan,
        plan_updated_at: p.planChangedAt,
        order_count: p.orders,
        lifetime_value: p.ltv,
        country: p.country,
        accepts_marketing: p.marketing,
      })
      .then(
        () => undefined,
        () => void failed++,
      )
      .finally(() => inFlight.delete(call));
    inFlight.add(call);
  }
  await Promise.all(inFlight);
  const ms = performance.now() - t0;
  return { ms, requests: totalRequests(sandbox.requestCounts()), tooMany: limited.read(), failed };
}

const mb = (bytes: number | undefined): string => (bytes === undefined ? 'n/a' : `${Math.round(bytes / 1e6)} MB`);
const sec = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const sec2 = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const num = (v: unknown): number => (typeof v === 'number' ? v : 0);

function countsOf(r: StepResult): Record<string, unknown> {
  return r.report?.counts ?? r.report?.runs?.[0]?.counts ?? {};
}

async function main(): Promise<number> {
  writeSpecs();
  let t = performance.now();
  await writeCsv(0);
  process.stderr.write(`generated ${int(rows)} rows in ${sec(performance.now() - t)} (${dir})\n`);

  // The sandbox enforces the limit (with headroom for arrival jitter), so a client that overshoots gets
  // 429s, which the table shows.
  const floor0 = await measureFloor(csvPath);
  process.stderr.write(`floor (read + sha256 per line, one core): ${sec2(floor0.ms)} (runs ${floor0.runs.map(sec2).join(', ')}; load ${floor0.load.toFixed(2)})\n`);
  const floors: string[] = [`| the first file (every row new) | ${sec2(floor0.ms)} | ${floor0.runs.map(sec2).join(', ')} | ${int(floor0.lines)} | ${floor0.load.toFixed(2)} |`];

  const sandbox = await createSandbox({ port: 0, trackRateLimitPerSecond: SANDBOX_TRACK_RATE });
  const limited = countRateLimited(sandbox);
  const changedRows = Math.floor((rows - CHANGE_OFFSET - 1) / CHANGE_EVERY) + 1;
  const table: string[] = [];
  const cpuTable: string[] = [];
  const ratios: string[] = [];
  let problems = 0;
  const step = async (label: string, cliArgs: string[], expect: { sent?: number; changed?: number; isNew?: number }) => {
    const r = await runTidemark(sandbox, limited, cliArgs);
    const c = countsOf(r);
    const wrong =
      r.status !== 0 ||
      (expect.sent !== undefined && num(c.acknowledged) !== expect.sent) ||
      (expect.changed !== undefined && num(c.changed) !== expect.changed) ||
      (expect.isNew !== undefined && num(c.new) !== expect.isNew);
    if (wrong) {
      problems++;
      process.stderr.write(`${label}: unexpected result (exit ${r.status}, counts ${JSON.stringify(c)})\n${r.output.slice(-3000)}\n`);
    }
    process.stderr.write(`${label}: ${sec(r.ms)}, peak RSS ${mb(r.rssBytes)}, ${r.requests} requests\n`);
    const cpuOf = (v: number | undefined) => (v === undefined ? 'n/a' : `${v.toFixed(1)} s`);
    cpuTable.push(`| ${label} | ${sec(r.ms)} | ${cpuOf(r.cpu.tidemark)} | ${cpuOf(r.cpu.emulator)} | ${r.cpu.tidemark === undefined ? 'n/a' : `${((r.cpu.tidemark + r.cpu.emulator) / (r.ms / 1000) / os.cpus().length * 100).toFixed(0)}%`} |`);
    return { ...r, counts: c, wrong };
  };

  const x = (ms: number, f: Floor): string => `${(ms / f.ms).toFixed(1)}×`;
  if (!skipFirstPlan) {
    const plan1 = await step('sync plan, empty snapshot', ['sync', 'plan', 'people', '--format', 'json'], { isNew: rows });
    table.push(
      `| sync plan, empty snapshot (read, normalise, hash, diff in memory; sends nothing) | ${sec(plan1.ms)} | ${x(plan1.ms, floor0)} | ${int(rows / (plan1.ms / 1000))} rows/s | ${mb(plan1.rssBytes)} | ${plan1.requests} | new ${int(num(plan1.counts.new))}${plan1.wrong ? ' ⚠ unexpected' : ''} |`,
    );
  }

  const run1 = await step('first run', ['sync', 'run', 'people', '--format', 'json'], { sent: rows });
  const delivered1 = num(run1.counts.acknowledged);
  table.push(
    `| sync run, first (every row new) | ${sec(run1.ms)} | ${x(run1.ms, floor0)} | ${int(delivered1 / (run1.ms / 60_000))} rows/min delivered | ${mb(run1.rssBytes)} | ${run1.requests} (429s: ${run1.tooMany}) | sent ${int(num(run1.counts.sent))}, acknowledged ${int(delivered1)}${run1.wrong ? ' ⚠ unexpected' : ''} |`,
  );

  t = performance.now();
  await writeCsv(1);
  process.stderr.write(`changed ${int(changedRows)} rows in ${sec(performance.now() - t)}\n`);
  const floor1 = await measureFloor(csvPath);
  process.stderr.write(`floor (read + sha256 per line, one core): ${sec2(floor1.ms)} (runs ${floor1.runs.map(sec2).join(', ')}; load ${floor1.load.toFixed(2)})\n`);
  floors.push(`| the changed file (1% changed) | ${sec2(floor1.ms)} | ${floor1.runs.map(sec2).join(', ')} | ${int(floor1.lines)} | ${floor1.load.toFixed(2)} |`);

  const plan2 = await step('sync plan, 1% changed', ['sync', 'plan', 'people', '--format', 'json'], { changed: changedRows });
  table.push(
    `| sync plan, 1% changed | ${sec(plan2.ms)} | ${x(plan2.ms, floor1)} | ${int(rows / (plan2.ms / 1000))} rows/s | ${mb(plan2.rssBytes)} | ${plan2.requests} | changed ${int(num(plan2.counts.changed))}${plan2.wrong ? ' ⚠ unexpected' : ''} |`,
  );

  const run2 = await step('re-sync', ['sync', 'run', 'people', '--format', 'json'], { sent: changedRows, changed: changedRows });
  table.push(
    `| sync run, 1% changed (re-sync) | ${sec(run2.ms)} | ${x(run2.ms, floor1)} | ${int(rows / (run2.ms / 1000))} rows/s read | ${mb(run2.rssBytes)} | ${run2.requests} (429s: ${run2.tooMany}) | sent ${int(num(run2.counts.sent))}, unchanged ${int(num(run2.counts.unchanged))}${run2.wrong ? ' ⚠ unexpected' : ''} |`,
  );

  if (!skipBaseline) {
    const people: Person[] = [];
    for (let i = CHANGE_OFFSET; i < rows; i += CHANGE_EVERY) people.push(person(i, 1));
    const b = await baseline(sandbox, limited, people);
    if (b.failed > 0) problems++;
    process.stderr.write(`baseline: ${sec(b.ms)}, ${b.requests} requests, ${b.failed} failed\n`);
    table.push(
      `| baseline: customerio-node 5.x, one identify per changed row, paced at ${TRACK_RATE}/s | ${sec(b.ms)} | ${x(b.ms, floor1)} | ${int(people.length / (b.ms / 60_000))} rows/min | (in the bench process) | ${b.requests} (429s: ${b.tooMany}) | ${int(people.length)} calls, ${b.failed} failed |`,
    );
    ratios.push(
      `| requests | ${int(b.requests)} | ${int(run2.requests)} | ${(b.requests / Math.max(1, run2.requests)).toFixed(0)} |`,
      `| wall time | ${sec(b.ms)} | ${sec(run2.ms)} | ${(b.ms / run2.ms).toFixed(2)} |`,
    );
  }

  // Spot check that the re-sync delivered the new values (first, middle and last changed row).
  for (const i of [CHANGE_OFFSET, CHANGE_OFFSET + CHANGE_EVERY * Math.floor(changedRows / 2), CHANGE_OFFSET + CHANGE_EVERY * (changedRows - 1)]) {
    const want = person(i, 1);
    const got = sandbox.customerio.getPerson(want.id);
    if (got?.attributes.plan !== want.plan || Number(got.attributes.order_count) !== want.orders) {
      problems++;
      process.stderr.write(`row ${i}: Customer.io has ${JSON.stringify(got?.attributes)}, expected plan ${want.plan} and order_count ${want.orders}\n`);
    }
  }
  await sandbox.close();
  const sandboxRss = process.resourceUsage().maxRSS * 1024;

  process.stdout.write(
    `\nsync benchmark: ${int(rows)} person rows (${timestamps === 'naive' ? 'naive timestamps in America/New_York' : 'ISO-8601 timestamps'}, a blank attribute in 10% of rows), ${int(changedRows)} changed (1%); clients configured for ${TRACK_RATE} Track requests/s, the sandbox enforcing ${SANDBOX_TRACK_RATE}/s\n\n`,
  );
  process.stdout.write(`| step | wall time | × floor | rate | peak RSS (tidemark) | API requests | result |\n|---|---|---|---|---|---|---|\n${table.join('\n')}\n`);
  process.stdout.write(
    `\nThe floor: a bare Node script reading the same file (256 KiB reads) and taking a sha256 of every line, one core, its own process (median of three; ${os.cpus().length} CPUs, ${os.cpus()[0]?.model ?? 'unknown CPU'}):\n\n| file | floor | runs | lines | load average (1 min) |\n|---|---|---|---|---|\n${floors.join('\n')}\n`,
  );
  process.stdout.write(
    `\nCPU time of each step (the machine's ${os.cpus().length} cores are shared: the emulator answering tidemark's requests runs in this process, on the same cores):\n\n| step | wall time | CPU, tidemark (all threads) | CPU, the emulator | the cores' time used by both |\n|---|---|---|---|---|\n${cpuTable.join('\n')}\n`,
  );
  if (ratios.length) {
    process.stdout.write(`\n| 1% change delivered | customerio-node, identify per row | tidemark sync run | ratio (customerio-node ÷ tidemark) |\n|---|---|---|---|\n${ratios.join('\n')}\n`);
  }
  process.stdout.write(
    `\nSandbox (the bench process: emulated Customer.io holding ${int(rows)} people, plus the baseline client): peak RSS ${mb(sandboxRss)}.\n`,
  );
  if (keep) process.stderr.write(`kept ${dir}\n`);
  else rmSync(dir, { recursive: true, force: true });
  return problems > 0 ? 1 : 0;
}

process.exitCode = await main();
