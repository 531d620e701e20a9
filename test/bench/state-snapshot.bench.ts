/**
 * Snapshot throughput of the embedded store, as the sync engine uses it: a person source of N rows
 * (default 1,000,000) is synced once (every row new, all acknowledged), then re-synced with 1% of rows
 * changed. Each sync reads the snapshot index, diffs in memory, appends the acknowledgements of what
 * changed to an ack session in Track-batch-sized chunks, and closes it (the one sorted merge). Prints
 * wall time per step, rows/s and peak RSS. A measurement, not a test: nothing is asserted.
 *
 *   npx tsx test/bench/state-snapshot.bench.ts [rows] [--payload] [--changed=0.01] [--postgres[=URL]]
 *
 * `--postgres` runs the same steps against Postgres instead (default URL: TIDEMARK_TEST_DATABASE_URL or
 * postgres://postgres@127.0.0.1:5432/test), in a throwaway schema.
 * `--payload` acknowledges a ~150-byte JSON payload per row (the mirror of what was sent).
 *
 * CPU time is printed beside wall time: on a shared machine it is the steadier figure.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { openStateStore } from '../../reconciler/state/open.ts';
import type { AckedRow, SnapshotAckSession, StateStore } from '../../reconciler/state/types.ts';

const args = process.argv.slice(2);
const rows = Number(args.find((a) => /^\d+$/.test(a)) ?? 1_000_000);
const withPayload = args.includes('--payload');
const changedShare = Number(args.find((a) => a.startsWith('--changed='))?.slice('--changed='.length) ?? 0.01);
const changedEvery = Math.max(1, Math.round(1 / changedShare));
const pgArg = args.find((a) => a === '--postgres' || a.startsWith('--postgres='));
const pgUrl = pgArg
  ? pgArg.includes('=')
    ? pgArg.slice('--postgres='.length)
    : (process.env.TIDEMARK_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test')
  : undefined;
/** Acknowledged rows per append, like one Track API batch. */
const ACK_BATCH = 1_000;

/** Distinct, unordered keys (a bijection of i over 32 bits), like real customer ids. */
const keyOf = (i: number) => `cust_${(Math.imul(i, 2654435761) >>> 0).toString(16).padStart(8, '0')}`;

function* source(version: number): Generator<AckedRow> {
  for (let i = 0; i < rows; i++) {
    const v = version > 0 && i % changedEvery === 0 ? version : 0;
    const row: AckedRow = { key: keyOf(i), hash: `h${v}_${i.toString(36).padStart(18, '0')}`, ordering: 1_700_000_000_000 + v * 1000 + i };
    if (withPayload) {
      row.payload = JSON.stringify({ id: keyOf(i), email: `person${i}@example.com`, plan: v ? 'gold' : 'silver', orders: i % 17, ltv: (i % 997) * 1.5 });
    }
    yield row;
  }
}

const mb = (bytes: number) => `${Math.round(bytes / 1e6)} MB`;
const rate = (n: number, ms: number) => `${Math.round((n / ms) * 1000).toLocaleString('en-US')} rows/s`;

async function timed<T>(label: string, n: number, fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t = performance.now();
  const cpu = process.cpuUsage();
  const value = await fn();
  const ms = performance.now() - t;
  const used = process.cpuUsage(cpu);
  const cpuS = ((used.user + used.system) / 1e6).toFixed(2);
  console.log(
    `  ${label.padEnd(32)} ${(ms / 1000).toFixed(2).padStart(7)} s wall ${cpuS.padStart(6)} s cpu ${rate(n, ms).padStart(18)}   rss ${mb(process.memoryUsage().rss)}`,
  );
  return { value, ms };
}

/** The snapshot's keys and hashes, as the engine loads them before reading the source. */
async function loadIndex(store: StateStore): Promise<Map<string, string>> {
  const index = new Map<string, string>();
  for await (const page of store.readSnapshotIndex('people')) for (const e of page) index.set(e.key, e.hash);
  return index;
}

async function diffAndAcknowledge(index: ReadonlyMap<string, string>, acks: SnapshotAckSession, version: number): Promise<number> {
  let batch: AckedRow[] = [];
  let sent = 0;
  for (const row of source(version)) {
    if (index.get(row.key) === row.hash) continue;
    batch.push(row);
    if (batch.length >= ACK_BATCH) {
      sent += await acks.append(batch);
      batch = [];
    }
  }
  if (batch.length > 0) sent += await acks.append(batch);
  return sent;
}

async function run(store: StateStore, title: string, version: number): Promise<void> {
  console.log(`\n${title}`);
  const started = performance.now();
  const acks = await store.openAckSession('people');
  const index = await timed('read snapshot index', rows, () => loadIndex(store));
  const sent = await timed('diff in memory + append acks', rows, () => diffAndAcknowledge(index.value, acks, version));
  await timed('close session (merge acks)', sent.value, () => acks.close());
  const total = performance.now() - started;
  console.log(`  ${'total'.padEnd(34)} ${(total / 1000).toFixed(2).padStart(7)} s   ${rate(rows, total).padStart(18)}   acknowledged ${sent.value}`);
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'tidemark-bench-'));
const schema = `tm_bench_${process.pid}`;
try {
  const where = pgUrl ? `postgres schema ${schema}` : `sqlite in ${dir}`;
  console.log(
    `state snapshot bench: ${rows.toLocaleString('en-US')} rows, ${(100 / changedEvery).toFixed(2)}% changed on re-sync, payload ${withPayload ? 'on' : 'off'}, ${where}`,
  );
  const store = await openStateStore(pgUrl ? { databaseUrl: pgUrl, schema } : { dir });
  await run(store, 'first sync (every row new, all acknowledged)', 0);
  await run(store, 're-sync (same rows, a share changed)', 1);
  await store.close();
  console.log(`\npeak RSS ${mb(process.resourceUsage().maxRSS * 1024)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
  if (pgUrl) {
    const c = new pg.Client({ connectionString: pgUrl });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  }
}
