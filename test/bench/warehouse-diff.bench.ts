/**
 * The diff in the warehouse (issue 15 point 5): a 1,000,000-row Postgres source with 1% changed, re-synced
 * with its state in the same database, once with the diff in tidemark (TIDEMARK_WAREHOUSE_DIFF=off: every
 * row crosses the wire) and once in the warehouse (only the rows whose fingerprint changed cross), in the
 * same run against the same server. tidemark runs as its own CLI process, live against a sandbox in this
 * process, as in sync.bench.ts.
 *
 *   npx tsx test/bench/warehouse-diff.bench.ts [rows=1000000] [--keep]
 *
 * Steps: the table is generated in the server (generate_series); each side's first `sync run` sends every
 * row (the warehouse side's also records the fingerprints); then two rounds: 1% of the rows change (plan,
 * its companion, order count, ordering column), then each side's `sync plan` and `sync run` (the second
 * round in the other order), measured: wall time (process
 * start included), peak RSS of the tidemark process, rows the query returned and rows that crossed the
 * wire (the report's `diff`). Both sides must find the same counts; a step that exits non-zero or counts
 * otherwise makes this script exit 1. The server is TIDEMARK_TEST_DATABASE_URL or
 * postgres://postgres@127.0.0.1:5432/test; without one the benchmark says so and exits 0.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createSandbox, type RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { probePostgres, TEST_DATABASE_URL } from '../support/postgres.ts';

const args = process.argv.slice(2);
const rows = Number(args.find((a) => /^\d+$/.test(a)) ?? 1_000_000);
const keep = args.includes('--keep');
const repo = path.resolve(import.meta.dirname, '../..');
const TAG = `tm_bench_whd_${randomBytes(3).toString('hex')}`;
const TABLE = `${TAG}_src.people`;
/** The first runs only fill the state; a generous limit keeps them short. Nothing measured sends much. */
const TRACK_RATE = 1000;
const PLANS = ['free', 'starter', 'pro', 'enterprise'];

function specs(dir: string): void {
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
state: { backend: postgres, url_env: TIDEMARK_DATABASE_URL }
---
kind: Fields
name: people
fields:
  email: { type: string, format: email, nature: identifier, owner: shop, pii: true }
  plan: { type: enum, values: [${PLANS.join(', ')}], nature: state, owner: shop, updated_at: plan_updated_at }
  plan_updated_at: { type: timestamp, owner: shop }
  order_count: { type: number, nature: measure, owner: shop }
  lifetime_value: { type: number, nature: measure, owner: shop }
  country: { type: string, owner: shop }
  accepts_marketing: { type: boolean, nature: state, owner: shop }
`,
  );
  writeFileSync(
    path.join(dir, 'specs/people.yaml'),
    `kind: Source
name: people
system: shop
connector:
  type: postgres
  url_env: WAREHOUSE_URL
  query: |
    select customer_id, email, plan, plan_changed_at, orders, lifetime_value, country, accepts_marketing, updated_at
    from ${TABLE}
schedule: "0 3 * * *"
records: person
identity: { column: customer_id, as: id }
ordering: updated_at
timezone: America/New_York
fields:
  email: email
  plan: plan
  plan_updated_at: plan_changed_at
  order_count: orders
  lifetime_value: lifetime_value
  country: country
  accepts_marketing: accepts_marketing
freshness: { max_age: 26h }
latency_needed: daily
`,
  );
}

interface Side {
  name: 'in tidemark' | 'in the warehouse';
  dir: string;
  env: NodeJS.ProcessEnv;
}

interface Step {
  ms: number;
  rssBytes: number | undefined;
  status: number | null;
  report: Report | undefined;
  output: string;
}

interface Report {
  counts: Record<string, number>;
  diff?: { in: string; rows_read?: number; rows_transferred?: number; reason?: string };
}

async function tidemark(side: Side, sandbox: RunningSandbox, cliArgs: string[]): Promise<Step> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...sandbox.env, ...side.env, CUSTOMERIO_TRACK_RATE_PER_SECOND: String(TRACK_RATE), TIDEMARK_REPORT_RSS: '1', NO_COLOR: '1' };
  const t0 = performance.now();
  const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [path.join(repo, 'bin/tidemark.js'), ...cliArgs], { cwd: side.dir, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.stderr.on('data', (d) => (stderr = (stderr + String(d)).slice(-8000)));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
  const ms = performance.now() - t0;
  const rss = /peak-rss-bytes=(\d+)/.exec(r.stderr)?.[1];
  let report: Report | undefined;
  try {
    const parsed = JSON.parse(r.stdout) as Report & { runs?: Report[] };
    report = parsed.runs?.[0] ?? parsed;
  } catch {
    report = undefined;
  }
  return { ms, rssBytes: rss ? Number(rss) : undefined, status: r.status, report, output: `${r.stderr}\n${r.stdout.slice(-3000)}` };
}

const sec = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const mb = (bytes: number | undefined): string => (bytes === undefined ? 'n/a' : `${Math.round(bytes / 1e6)} MB`);
const int = (n: number | undefined): string => (n === undefined ? 'n/a' : Math.round(n).toLocaleString('en-US'));

async function main(): Promise<number> {
  const unreachable = await probePostgres();
  if (unreachable !== undefined) {
    process.stdout.write(`skipped: no PostgreSQL server answered at ${TEST_DATABASE_URL.replace(/:[^:@/]*@/, ':***@')} (${unreachable})\n`);
    return 0;
  }
  const db = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await db.connect();
  const dirs: string[] = [];
  let sandbox: RunningSandbox | undefined;
  let failed = false;
  try {
    let t = performance.now();
    await db.query(`CREATE SCHEMA ${TAG}_src`);
    // Distinct, unordered ids (a bijection over 32 bits), emails in mixed case, a blank country in one row in ten.
    await db.query(`CREATE TABLE ${TABLE} AS
      SELECT i,
        ((i::bigint * 2654435761) % 4294967296) + 100000000 AS customer_id,
        'Person.' || i || '@Example.com' AS email,
        (ARRAY['${PLANS.join("','")}'])[1 + i % 4] AS plan,
        timestamp '2025-01-01' + (i % 300) * interval '1 day' + (i % 86400) * interval '1 second' AS plan_changed_at,
        i % 50 AS orders,
        round((i % 100000) / 7.0, 2) AS lifetime_value,
        CASE WHEN i % 10 = 3 THEN NULL ELSE (ARRAY['US','GB','DE','FR','CA','AU','NL','SE'])[1 + i % 8] END AS country,
        i % 3 = 0 AS accepts_marketing,
        timestamp '2025-06-01' + (i % 100000) * interval '1 minute' AS updated_at
      FROM generate_series(0, ${rows - 1}) AS i`);
    await db.query(`ANALYZE ${TABLE}`);
    process.stderr.write(`generated ${int(rows)} rows in ${sec(performance.now() - t)} (${TABLE})\n`);

    sandbox = await createSandbox({ port: 0, trackRateLimitPerSecond: TRACK_RATE * 1.1 });
    const sides: Side[] = [];
    for (const [name, schema, extra] of [
      ['in tidemark', `${TAG}_client`, { TIDEMARK_WAREHOUSE_DIFF: 'off' }],
      ['in the warehouse', `${TAG}_warehouse`, {}],
    ] as const) {
      await db.query(`CREATE SCHEMA ${schema}`);
      const url = new URL(TEST_DATABASE_URL);
      url.searchParams.set('options', `-c search_path=${schema}`);
      const dir = mkdtempSync(path.join(os.tmpdir(), 'tidemark-bench-whd-'));
      dirs.push(dir);
      specs(dir);
      sides.push({ name, dir, env: { TIDEMARK_DATABASE_URL: url.toString(), WAREHOUSE_URL: TEST_DATABASE_URL, ...extra } });
    }

    const table: string[] = [
      '| step | diff | wall time | peak RSS | rows read | rows across the wire | new / changed / unchanged | sent |',
      '|---|---|---|---|---|---|---|---|',
    ];
    const line = (label: string, side: Side, s: Step) => {
      const c = s.report?.counts ?? {};
      const d = s.report?.diff;
      table.push(
        `| ${label} | ${side.name}${d?.in === 'client' && side.name === 'in the warehouse' ? ` (fell back: ${d.reason})` : ''} | ${sec(s.ms)} | ${mb(s.rssBytes)} | ${int(d?.rows_read)} | ${int(d?.rows_transferred)} | ${int(c.new)} / ${int(c.changed)} / ${int(c.unchanged)} | ${c.sent === undefined ? '–' : int(c.sent)} |`,
      );
      process.stderr.write(`${label}, ${side.name}: ${sec(s.ms)}, peak RSS ${mb(s.rssBytes)}, ${int(d?.rows_transferred)} of ${int(d?.rows_read)} rows across the wire\n`);
    };
    const check = (label: string, side: Side, s: Step, expect: Record<string, number>, where: 'warehouse' | 'client') => {
      const c = s.report?.counts ?? {};
      const wrong = Object.entries(expect).filter(([k, v]) => c[k] !== v);
      if (s.status !== 0 || wrong.length > 0 || s.report?.diff?.in !== where) {
        failed = true;
        process.stderr.write(`${label}, ${side.name}: unexpected result (exit ${s.status}, counts ${JSON.stringify(c)}, diff ${JSON.stringify(s.report?.diff)})\n${s.output.slice(-3000)}\n`);
      }
    };

    let changedRows = 0;
    for (const side of sides) {
      const s = await tidemark(side, sandbox, ['sync', 'run', 'people', '--format', 'json']);
      line('first run (every row new)', side, s);
      check('first run', side, s, { read: rows, new: rows, sent: rows }, side.name === 'in tidemark' ? 'client' : 'warehouse');
    }

    // Two rounds, each changing another 1% of the rows; the second runs the sides in the other order, so
    // neither always comes first after a change (cold caches) or second (warm ones).
    for (const round of [1, 2]) {
      t = performance.now();
      const changed = await db.query(
        `UPDATE ${TABLE} SET plan = (ARRAY['${PLANS.join("','")}'])[1 + (i + ${round}) % 4], plan_changed_at = plan_changed_at + ${round * 400} * interval '1 day',
           orders = orders + 1, updated_at = updated_at + ${round * 400} * interval '1 day' WHERE i % 100 = ${36 + round}`,
      );
      await db.query(`VACUUM ANALYZE ${TABLE}`);
      const n = changed.rowCount ?? 0;
      process.stderr.write(`round ${round}: changed ${int(n)} rows in ${sec(performance.now() - t)}\n`);
      const order = round === 1 ? sides : [...sides].reverse();
      for (const [step, argv, expect] of [
        [`sync plan (1% changed, round ${round})`, ['sync', 'plan', 'people', '--format', 'json'], { read: rows, changed: n, unchanged: rows - n }],
        [`re-sync (1% changed, round ${round})`, ['sync', 'run', 'people', '--format', 'json'], { read: rows, changed: n, unchanged: rows - n, sent: n }],
      ] as const) {
        for (const side of order) {
          const s = await tidemark(side, sandbox, [...argv]);
          line(step, side, s);
          check(step, side, s, expect, side.name === 'in tidemark' ? 'client' : 'warehouse');
        }
      }
      changedRows = n;
    }
    process.stdout.write(`${table.join('\n')}\n`);
    process.stdout.write(
      `\n${int(rows)} rows, ${int(changedRows)} changed per round; PostgreSQL ${(await db.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v} on 127.0.0.1 (state and source in one database); ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? 'unknown'}), load ${os.loadavg()[0]!.toFixed(2)} at the end\n`,
    );
  } finally {
    await sandbox?.close();
    if (!keep) {
      for (const schema of [`${TAG}_src`, `${TAG}_client`, `${TAG}_warehouse`]) await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    } else process.stderr.write(`kept ${dirs.join(', ')} and schemas ${TAG}_*\n`);
    await db.end();
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
