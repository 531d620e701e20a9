/**
 * Audience evaluation at scale (issue 11, point 8): N people (default 1,000,000) with ~8 fields of each
 * type and ~2 events each, 20 segments mixing attribute operators, event windows and counts, all/any/not
 * nesting and segment references, evaluated by `evaluateAudiences` and diffed against the last published
 * membership; then 10,000 membership changes published through `publishSegment` to the in-process sandbox.
 * A measurement, not a test: nothing is asserted beyond the specs loading and the publish completing.
 * The first evaluation fills the mirror whole; the second, after 1% of people changed, updates it and
 * evaluates incrementally (only the people whose mirror changed, and those a time edge passed, are decided).
 *
 *   npx tsx test/bench/audiences.bench.ts [people=1000000] [--postgres[=URL]] [--analyze] [--vacuum] [--keep-schema]
 *   npx tsx test/bench/audiences.bench.ts [people] [--postgres] --again=<kept folder or schema> --round=N
 *
 * The specs are written to a temp folder and loaded with `loadSpecs`, so the bench evaluates real,
 * validated specs. The snapshots are filled through the store's ack session (the sync engine's own path)
 * with payloads shaped as the engine stores them (reconciler/sync/prepare.ts `Payload`: timestamps in epoch
 * seconds). `--postgres` runs against Postgres instead (default URL: TIDEMARK_TEST_DATABASE_URL or
 * postgres://postgres@127.0.0.1:5432/test), in a throwaway schema (`--keep-schema` keeps it, or the embedded store's folder, to EXPLAIN the queries).
 *
 * One event name per event source is all a Source can declare, so the two events come from two event
 * sources (three sources in all).
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { evaluateAudiences, type SegmentEvaluation } from '../../reconciler/audiences/evaluate.ts';
import { publishSegment } from '../../reconciler/audiences/publish.ts';
import { CustomerioClient } from '../../reconciler/providers/customerio/client.ts';
import { createSandbox } from '../../reconciler/sandbox/index.ts';
import { loadSpecs } from '../../reconciler/spec/load.ts';
import type { SpecModel } from '../../reconciler/spec/model.ts';
import { openStateStore } from '../../reconciler/state/open.ts';
import type { AckedRow, StateStore } from '../../reconciler/state/types.ts';
import type { Payload } from '../../reconciler/sync/prepare.ts';

const args = process.argv.slice(2);
const people = Number(args.find((a) => /^\d+$/.test(a)) ?? 1_000_000);
const pgArg = args.find((a) => a === '--postgres' || a.startsWith('--postgres='));
const pgUrl = pgArg
  ? pgArg.includes('=')
    ? pgArg.slice('--postgres='.length)
    : (process.env.TIDEMARK_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test')
  : undefined;
/**
 * `--analyze` (Postgres): also ANALYZE the mirror after its update and the candidates after each segment's
 * query, from a second connection. The product analyses after bulk fills and large changes itself (state/
 * audiences.ts); this forces it after every step, to tell a planning problem from the rest.
 */
const analyze = !!pgUrl && args.includes('--analyze');
/**
 * `--vacuum` (Postgres): after the bulk publish is recorded, `VACUUM (ANALYZE)` the state's tables, as
 * autovacuum does on a default server after millions of rows are written (this machine's server runs with
 * autovacuum off). Without it the first evaluation after the bulk writes is also the first to read those
 * rows, and pays for setting their hint bits: every page dirtied again and written out of 128 MB of shared
 * buffers. Reported as a step of its own.
 */
const vacuum = !!pgUrl && args.includes('--vacuum');
/**
 * `--again=<folder or schema> --round=N` (N ≥ 2): on a store an earlier run kept (`--keep-schema`), only
 * another re-sync (the same 1% of people changed again, version N) and the diffed evaluation: a quick way
 * to measure a change to the update path without filling a million people again.
 */
const again = args.find((a) => a.startsWith('--again='))?.slice('--again='.length);
const round = Number(args.find((a) => a.startsWith('--round='))?.slice('--round='.length) ?? 2);
/** Changed between the published evaluation and the next one. */
const CHANGED_EVERY = 100;
const PUBLISH_CHANGES = 10_000;
const ACK_BATCH = 1_000;
const NOW = new Date('2026-12-02T00:00:00Z');
const NOW_S = NOW.getTime() / 1000;
const DAY_S = 86_400;

const keyOf = (i: number) => `cust_${(Math.imul(i, 2654435761) >>> 0).toString(16).padStart(8, '0')}`;
/** A cheap deterministic hash of (person, salt): the bench's data is the same on every run. */
const h = (i: number, salt: number) => {
  let x = Math.imul(i ^ Math.imul(salt, 0x9e3779b1), 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
};

const PLANS = ['free', 'basic', 'pro', 'enterprise'];
const COUNTRIES = ['US', 'GB', 'DE', 'FR', 'ES', 'IT', 'NL', 'SE'];
const N = [1, 2, 3, 4, 5, 6, 7, 8];

// ---------------------------------------------------------------------------------------------- specs

const WORKSPACE = `kind: Workspace
name: audience_bench
identity:
  primary: id
normalization:
  email: { trim: true, lowercase: true }
systems:
  crm: {}
  shop: {}
  email: {}
environments:
  bench:
    customerio:
      region: us
      site_id_env: BENCH_CIO_SITE_ID
      track_api_key_env: BENCH_CIO_TRACK_API_KEY
      app_api_key_env: BENCH_CIO_APP_API_KEY
default_environment: bench
state:
  backend: embedded
  path: .tidemark
`;

const FIELDS = `kind: Fields
name: audience_bench
fields:
  plan:
    type: enum
    values: [${PLANS.join(', ')}]
    owner: crm
  country: { type: string, owner: crm }
  email: { type: string, format: email, owner: crm, pii: true }
${[4, 5, 6, 7, 8].map((n) => `  str_${n}: { type: string, owner: crm }`).join('\n')}
${N.map((n) => `  num_${n}: { type: number, nature: measure, owner: crm }`).join('\n')}
${N.map((n) => `  flag_${n}: { type: boolean, owner: crm }`).join('\n')}
${N.map((n) => `  at_${n}: { type: timestamp, owner: crm }`).join('\n')}
events:
  order_placed: { owner: shop, stage: delivery }
  email_clicked: { owner: email, stage: engagement }
`;

const personFields = ['plan', 'country', 'email', ...[4, 5, 6, 7, 8].map((n) => `str_${n}`), ...['num', 'flag', 'at'].flatMap((t) => N.map((n) => `${t}_${n}`))];

const SOURCES = [
  `kind: Source
name: customers
system: crm
connector: { type: ndjson, path: data/customers.ndjson }
schedule: "0 * * * *"
records: person
identity: { column: customer_id, as: id }
timezone: UTC
fields:
${personFields.map((f) => `  ${f}: ${f}`).join('\n')}
freshness: { max_age: 2h }
latency_needed: daily
`,
  ...[
    ['orders', 'shop', 'order_placed', 'order_id', 'placed_at'],
    ['clicks', 'email', 'email_clicked', 'click_id', 'clicked_at'],
  ].map(
    ([name, system, event, id, ts]) => `kind: Source
name: ${name}
system: ${system}
connector: { type: ndjson, path: data/${name}.ndjson }
schedule: "*/30 * * * *"
records: event
identity: { column: customer_id, as: id }
event:
  name: ${event}
  timestamp_column: ${ts}
  id_columns: [${id}]
timezone: UTC
fields: {}
freshness: { max_age: 2h }
latency_needed: hourly
`,
  ),
];

const seg = (name: string, conditions: string, publish = false) =>
  `kind: Segment\nname: ${name}\nconditions:\n${conditions.replace(/^/gm, '  ')}\n${publish ? 'publish: { customerio_segment: true }\n' : ''}`;

/** 20 segments: each attribute operator, event windows and counts, nesting, and references. */
const SEGMENTS = [
  seg('pro_plans', 'attribute: { field: plan, op: in, value: [pro, enterprise] }'),
  seg('us_customers', 'attribute: { field: country, op: eq, value: US }'),
  seg('big_spenders', 'attribute: { field: num_2, op: gt, value: 2000 }'),
  seg('mid_orders', 'attribute: { field: num_1, op: between, value: [10, 20] }'),
  seg('recently_seen', 'attribute: { field: at_1, op: within, duration: 30d }'),
  seg('dormant', 'attribute: { field: at_1, op: older_than, duration: 180d }'),
  seg('tagged', 'attribute: { field: str_4, op: exists }'),
  seg('org_emails', 'attribute: { field: email, op: contains, value: example.org }'),
  seg('recent_buyers', 'event: { name: order_placed, to: 30d }', true),
  seg('repeat_buyers', 'event: { name: order_placed, to: 90d, count: { min: 2 } }', true),
  seg('clickers_no_order', 'all:\n  - event: { name: email_clicked, to: 14d }\n  - event: { name: order_placed, occurred: false, to: 60d }', true),
  seg('vip', 'all:\n  - segment: big_spenders\n  - any:\n      - attribute: { field: plan, op: in, value: [pro, enterprise] }\n      - attribute: { field: num_1, op: gte, value: 30 }', true),
  seg('vip_at_risk', 'all:\n  - segment: vip\n  - segment: dormant', true),
  seg('us_not_vip', 'all:\n  - segment: us_customers\n  - not: { segment: vip }', true),
  seg(
    'winback',
    'all:\n  - attribute: { field: at_1, op: older_than, duration: 90d }\n  - event: { name: order_placed, from: 90d, to: 365d }\n  - not: { event: { name: email_clicked, to: 30d } }',
    true,
  ),
  seg(
    'flag_combo',
    'all:\n  - attribute: { field: flag_1, op: eq, value: true }\n  - any:\n      - attribute: { field: flag_2, op: eq, value: true }\n      - attribute: { field: flag_3, op: eq, value: false }\n  - not: { attribute: { field: flag_4, op: eq, value: true } }',
    true,
  ),
  seg('signed_up_2026_q3', 'attribute: { field: at_2, op: between, value: ["2026-07-01T00:00:00Z", "2026-09-30T23:59:59Z"] }', true),
  seg(
    'europe_engaged',
    'all:\n  - attribute: { field: country, op: in, value: [DE, FR, ES, IT, NL, SE] }\n  - any:\n      - event: { name: email_clicked, to: 7d }\n      - attribute: { field: at_1, op: within, duration: 7d }',
    true,
  ),
  seg('cheap_frequent', 'all:\n  - attribute: { field: num_2, op: lt, value: 100 }\n  - attribute: { field: num_1, op: gte, value: 40 }', true),
  seg('reachable', 'any:\n  - segment: recent_buyers\n  - segment: recently_seen\n  - segment: pro_plans', true),
];

async function loadModel(dir: string): Promise<SpecModel> {
  mkdirSync(path.join(dir, 'specs', 'sources'), { recursive: true });
  writeFileSync(path.join(dir, 'specs', 'workspace.yaml'), WORKSPACE);
  writeFileSync(path.join(dir, 'specs', 'fields.yaml'), FIELDS);
  writeFileSync(path.join(dir, 'specs', 'sources', 'sources.yaml'), SOURCES.join('---\n'));
  writeFileSync(path.join(dir, 'specs', 'segments.yaml'), SEGMENTS.join('---\n'));
  const loaded = await loadSpecs('specs', dir);
  if (!loaded.model) {
    const errors = loaded.diagnostics.filter((d) => d.severity === 'error');
    throw new Error(`bench specs do not validate:\n${errors.map((d) => `${d.code} ${d.summary}`).join('\n')}`);
  }
  return loaded.model;
}

// ----------------------------------------------------------------------------------------------- data

/** A person's attributes as the sync engine stores them; `version` > 0 moves the changed share. */
function personPayload(i: number, version: number): Payload['attributes'] {
  const v = version > 0 && i % CHANGED_EVERY === 0 ? version : 0;
  const a: Payload['attributes'] = {
    plan: PLANS[(h(i, 1) + v) % 4]!,
    country: COUNTRIES[h(i, 2) % 8]!,
    email: `person${i}@example.${h(i, 3) % 5 === 0 ? 'org' : 'com'}`,
  };
  for (const n of [4, 5, 6, 7, 8]) if (h(i, 10 + n) % 5 !== 0) a[`str_${n}`] = `v${h(i, 20 + n) % 50}`;
  a.num_1 = (h(i, 31) + v * 7) % 50;
  a.num_2 = Math.round((h(i, 32) % 300_000) + v * 50_000) / 100;
  for (const n of [3, 4, 5, 6, 7, 8]) a[`num_${n}`] = h(i, 30 + n) % 1000;
  for (const n of N) if (h(i, 40 + n) % 10 !== 0) a[`flag_${n}`] = (h(i, 50 + n) + v) % 2 === 0;
  a.at_1 = NOW_S - (h(i, 61) % 365) * DAY_S + (v ? 200 * DAY_S : 0) - (h(i, 71) % DAY_S);
  a.at_2 = NOW_S - (h(i, 62) % 1500) * DAY_S;
  for (const n of [3, 4, 5, 6, 7, 8]) a[`at_${n}`] = NOW_S - (h(i, 60 + n) % (730 * DAY_S));
  return a;
}

function* personRows(version: number): Generator<AckedRow> {
  for (let i = 0; i < people; i++) {
    const payload: Payload = { records: 'person', attributes: personPayload(i, version) };
    const changed = version > 0 && i % CHANGED_EVERY === 0;
    yield { key: keyOf(i), hash: `p${changed ? version : 0}_${i}`, ordering: null, payload: JSON.stringify(payload) };
  }
}

/**
 * 0–2 events per person per source (about one on average), within the last year. In version 1 a changed
 * person's count moves, which gives two in three of them a new event per source. Later versions (`--again`
 * rounds) keep the count and give the same share one new event of their own id each: rows are never removed
 * from a snapshot here, so moving the count again would add nothing once every count was reached, and a
 * round would then change people only, lighter than the full run's diffed step.
 */
function* eventRows(name: string, salt: number, days: number, version: number): Generator<AckedRow> {
  for (let i = 0; i < people; i++) {
    const changed = version > 0 && i % CHANGED_EVERY === 0;
    const count = (h(i, salt) + (changed && version === 1 ? version : 0)) % 3;
    const ids: Array<[string, number]> = [];
    for (let k = 0; k < count; k++) ids.push([`${name}_${i}_${k}`, h(i, salt + 1 + k)]);
    if (changed && version > 1 && (h(i, salt) + version) % 3 !== 0) ids.push([`${name}_${i}_v${version}`, h(i, salt + 1 + version)]);
    for (const [id, hv] of ids) {
      const timestamp = NOW_S - (hv % (days * DAY_S));
      const payload: Payload = { records: 'event', attributes: {}, event: { name, id, timestamp, person: keyOf(i) } };
      yield { key: id, hash: `e_${id}`, ordering: null, payload: JSON.stringify(payload) };
    }
  }
}

/** Writes a source's full snapshot as the engine does: only new or changed rows are acknowledged. */
async function fill(store: StateStore, source: string, rows: Iterable<AckedRow>, index?: ReadonlyMap<string, string>): Promise<number> {
  const acks = await store.openAckSession(source);
  let batch: AckedRow[] = [];
  let sent = 0;
  for (const row of rows) {
    if (index && index.get(row.key) === row.hash) continue;
    batch.push(row);
    if (batch.length >= ACK_BATCH) {
      sent += await acks.append(batch);
      batch = [];
    }
  }
  if (batch.length) sent += await acks.append(batch);
  await acks.close();
  return sent;
}

async function loadIndex(store: StateStore, source: string): Promise<Map<string, string>> {
  const index = new Map<string, string>();
  for await (const page of store.readSnapshotIndex(source)) for (const e of page) index.set(e.key, e.hash);
  return index;
}

async function fillAll(store: StateStore, version: number): Promise<number> {
  let n = 0;
  const diffed = version > 0;
  n += await fill(store, 'customers', personRows(version), diffed ? await loadIndex(store, 'customers') : undefined);
  n += await fill(store, 'orders', eventRows('order_placed', 100, 365, version), diffed ? await loadIndex(store, 'orders') : undefined);
  n += await fill(store, 'clicks', eventRows('email_clicked', 200, 120, version), diffed ? await loadIndex(store, 'clicks') : undefined);
  return n;
}

// --------------------------------------------------------------------------------------------- timing

const mb = (bytes: number) => `${Math.round(bytes / 1e6)} MB`;
const peakRss = () => process.resourceUsage().maxRSS * 1024;
const results: Array<{ step: string; seconds: number; note: string }> = [];

async function timed<T>(step: string, fn: () => Promise<T>, note: (v: T) => string = () => ''): Promise<T> {
  const t = performance.now();
  const cpu = process.cpuUsage();
  const value = await fn();
  const seconds = (performance.now() - t) / 1000;
  const used = process.cpuUsage(cpu);
  const n = note(value);
  results.push({ step, seconds, note: n });
  process.stderr.write(
    `  ${step.padEnd(44)} ${seconds.toFixed(2).padStart(7)} s wall ${((used.user + used.system) / 1e6).toFixed(2).padStart(6)} s cpu  rss ${mb(process.memoryUsage().rss)}  ${n}\n`,
  );
  return value;
}

/**
 * Splits one `evaluateAudiences` call into its phases by wrapping the store's audience calls: the mirror
 * rebuild, each segment's query (storeCandidates), and the deltas against the published membership.
 */
function instrument(store: StateStore, sql?: pg.Client) {
  /** `segments`: first start to last end of the segments' stores (on Postgres two run at once, so the per-segment times add up to more). */
  const phases = { rebuild: 0, candidates: new Map<string, number>(), delta: 0, segments: { from: Infinity, to: 0 } };
  // `store.audiences` is a getter that builds a plain object of closures each time: wrap one such object
  // and hand evaluateAudiences a store that returns it.
  const audiences = { ...store.audiences } as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const wrap = (name: string, add: (ms: number, args: unknown[]) => void) => {
    const orig = audiences[name]!;
    audiences[name] = async (...args: unknown[]) => {
      const t = performance.now();
      try {
        const out = await orig(...args);
        if (sql && name === 'rebuildMirror') await sql.query('ANALYZE mirror_people, mirror_attributes, mirror_events');
        if (sql && name === 'storeCandidates') await sql.query('ANALYZE audience_candidates');
        return out;
      } finally {
        add(performance.now() - t, args);
      }
    };
  };
  wrap('rebuildMirror', (ms) => (phases.rebuild += ms));
  wrap('storeCandidates', (ms, args) => {
    phases.candidates.set(String(args[0]), (phases.candidates.get(String(args[0])) ?? 0) + ms);
    const end = performance.now();
    phases.segments.from = Math.min(phases.segments.from, end - ms);
    phases.segments.to = Math.max(phases.segments.to, end);
  });
  wrap('delta', (ms) => (phases.delta += ms));
  wrap('publishedCount', (ms) => (phases.delta += ms));
  const measured = new Proxy(store, {
    get(target, prop) {
      if (prop === 'audiences') return audiences;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  const reset = () => {
    phases.rebuild = 0;
    phases.delta = 0;
    phases.candidates.clear();
    phases.segments = { from: Infinity, to: 0 };
  };
  return { phases, reset, measured };
}

const sumOf = (segs: SegmentEvaluation[], k: 'members' | 'entering' | 'leaving') => segs.reduce((s, e) => s + e[k], 0);

async function run(model: SpecModel, store: StateStore, environment: string, sql?: pg.Client): Promise<void> {
  const { phases, reset, measured } = instrument(store, sql);
  const evaluate = async (label: string) => {
    reset();
    // Postgres: the WAL the evaluation wrote (logged tables only; the mirror is unlogged), full-page images
    // included: the server's insert position before, and how far it moved after.
    const wal = async (from?: string): Promise<string | undefined> => {
      if (!pgUrl) return undefined;
      const c = new pg.Client({ connectionString: pgUrl });
      await c.connect();
      try {
        const sql = from === undefined ? 'SELECT pg_current_wal_insert_lsn()::text AS v' : 'SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1)::text AS v';
        return String((await c.query(sql, from === undefined ? [] : [from])).rows[0].v);
      } finally {
        await c.end();
      }
    };
    const walFrom = await wal();
    const ev = await timed(label, () => evaluateAudiences({ model, environment, store: measured, now: NOW }), (e) =>
      `${e.mirror.people.toLocaleString('en-US')} people, ${e.mirror.attributes.toLocaleString('en-US')} attribute rows, ${e.mirror.events.toLocaleString('en-US')} events; ${sumOf(e.segments, 'members').toLocaleString('en-US')} memberships, +${sumOf(e.segments, 'entering').toLocaleString('en-US')} entering, -${sumOf(e.segments, 'leaving').toLocaleString('en-US')} leaving`,
    );
    const sumMs = [...phases.candidates.values()].reduce((x, y) => x + y, 0);
    const segMs = phases.segments.to > phases.segments.from ? phases.segments.to - phases.segments.from : 0;
    results.push({ step: '  of which mirror rebuild', seconds: phases.rebuild / 1000, note: '' });
    results.push({ step: '  of which 20 segment queries (storeCandidates, wall)', seconds: segMs / 1000, note: `their own times add up to ${(sumMs / 1000).toFixed(2)} s; slowest: ${[...phases.candidates].sort((x, y) => y[1] - x[1]).slice(0, 3).map(([n, ms]) => `${n} ${(ms / 1000).toFixed(2)} s`).join(', ')}` });
    results.push({ step: '  of which deltas + published counts', seconds: phases.delta / 1000, note: '' });
    if (walFrom !== undefined) {
      const mb = Number(await wal(walFrom)) / 1e6;
      process.stderr.write(`    WAL written during it: ${mb.toFixed(1)} MB\n`);
      results.push({ step: '  WAL written (Postgres, logged tables)', seconds: NaN, note: `${mb.toFixed(1)} MB` });
    }
    process.stderr.write(`    rebuild ${(phases.rebuild / 1000).toFixed(2)} s, segments ${(segMs / 1000).toFixed(2)} s wall (${(sumMs / 1000).toFixed(2)} s added up), deltas ${(phases.delta / 1000).toFixed(2)} s\n`);
    process.stderr.write(`    per segment (members, s): ${ev.segments.map((s) => `${s.segment} ${s.members} ${((phases.candidates.get(s.segment) ?? 0) / 1000).toFixed(2)}`).join(', ')}\n`);
    return ev;
  };
  if (again) {
    const version = Math.max(2, round);
    await timed(`re-sync: 1% of people changed (round ${version})`, () => fillAll(store, version), (n) => `${n.toLocaleString('en-US')} rows acknowledged`);
    await evaluate('evaluateAudiences, diffed against published');
    return;
  }
  await timed('fill snapshots (1 person source, 2 event sources)', () => fillAll(store, 0), (n) => `${n.toLocaleString('en-US')} rows`);
  const first = await evaluate('evaluateAudiences, first (nothing published)');

  // A previous publish, recorded straight into the published state (no Customer.io round trip).
  await timed('record all 20 as published', async () => {
    let n = 0;
    for (const s of first.segments) {
      let page: string[] = [];
      for await (const ids of store.audiences.changes(s.segment, 'add', 50_000)) {
        page = ids;
        await store.audiences.recordPublished(s.segment, 'add', page);
        n += page.length;
      }
    }
    if (sql) await sql.query('ANALYZE audience_members');
    return n;
  }, (n) => `${n.toLocaleString('en-US')} memberships`);

  if (vacuum) {
    const c = new pg.Client({ connectionString: pgUrl, options: `-c search_path=${schema}` });
    await c.connect();
    try {
      await timed('VACUUM (ANALYZE) after the bulk writes (--vacuum: what autovacuum does)', async () => {
        await c.query('VACUUM (ANALYZE) audience_members, audience_candidates, mirror_attributes, mirror_events, mirror_people, mirror_rows, snapshot_entries, snapshot_payloads, cursors');
        return 0;
      }, () => 'the state tables');
    } finally {
      await c.end();
    }
  }
  await timed('re-sync: 1% of people changed', () => fillAll(store, 1), (n) => `${n.toLocaleString('en-US')} rows acknowledged`);
  await evaluate('evaluateAudiences, diffed against published');
}

async function publishBench(store: StateStore): Promise<void> {
  const sandbox = await createSandbox({ port: 0 });
  try {
    const client = new CustomerioClient({
      region: 'us',
      siteId: sandbox.env.CUSTOMERIO_SITE_ID!,
      trackApiKey: sandbox.env.CUSTOMERIO_TRACK_API_KEY!,
      appApiKey: sandbox.env.CUSTOMERIO_APP_API_KEY,
      trackUrl: sandbox.env.CUSTOMERIO_TRACK_URL,
      appUrl: sandbox.env.CUSTOMERIO_APP_URL,
    });
    const target = sandbox.customerio.seedSegment({ name: 'tidemark: bench_publish', type: 'manual' });
    const segment = 'bench_publish';
    await store.audiences.storeCandidates(segment, `SELECT person_id FROM mirror_people WHERE env = $1 ORDER BY person_id LIMIT ${PUBLISH_CHANGES}`, [store.audiences.env]);
    const ev: SegmentEvaluation = { segment, members: PUBLISH_CHANGES, entering: PUBLISH_CHANGES, leaving: 0, published: 0, verdict: 'publish', publish: { customerio_segment: true } };
    sandbox.resetRequestCounts();
    const out = await timed(
      `publishSegment: ${PUBLISH_CHANGES.toLocaleString('en-US')} additions`,
      () => publishSegment(ev, { audiences: store.audiences, client, segmentId: async () => target.id }),
      (o) => `${o[0]!.added} added in ${o[0]!.requests} requests${o[0]!.error ? `, ERROR ${o[0]!.error}` : ''}`,
    );
    const counts = sandbox.requestCounts();
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    process.stderr.write(`    sandbox request counts: ${JSON.stringify(counts)}\n`);
    results.push({ step: 'requests per 1,000 changes', seconds: NaN, note: `${((total / out[0]!.added) * 1000).toFixed(2)} (${total} requests counted by the sandbox)` });
    if (out[0]!.error || out[0]!.added !== PUBLISH_CHANGES) process.exitCode = 1;
  } finally {
    await sandbox.close();
  }
}

const dir = again && !pgUrl ? again : mkdtempSync(path.join(os.tmpdir(), 'tidemark-audience-bench-'));
const schema = again && pgUrl ? again : `tm_audbench_${process.pid}`;
try {
  const model = await loadModel(dir);
  const where = pgUrl ? `postgres schema ${schema}` : `sqlite in ${dir}`;
  process.stderr.write(`audience bench: ${people.toLocaleString('en-US')} people, ${model.segments.size} segments, ${where}\n`);
  const store = await openStateStore(pgUrl ? { databaseUrl: pgUrl, schema, env: 'bench' } : { dir: path.join(dir, '.tidemark'), env: 'bench' });
  let sql: pg.Client | undefined;
  if (analyze) {
    sql = new pg.Client({ connectionString: pgUrl, options: `-c search_path=${schema}` });
    await sql.connect();
  }
  await run(model, store, 'bench', sql);
  await sql?.end();
  if (!again) await publishBench(store);
  await store.close();
  console.log(`audiences, ${people.toLocaleString('en-US')} people, ${pgUrl ? `Postgres${analyze ? ' (ANALYZE after bulk writes)' : ''}${vacuum ? ' (VACUUM after the bulk publish)' : ''}` : 'embedded (SQLite)'}; peak RSS ${mb(peakRss())}\n`);
  console.log('| step | seconds | note |\n|---|---:|---|');
  for (const r of results) console.log(`| ${r.step} | ${Number.isNaN(r.seconds) ? '' : r.seconds.toFixed(2)} | ${r.note} |`);
} finally {
  if (!pgUrl && (args.includes('--keep-schema') || again)) process.stderr.write(`kept ${dir}\n`);
  else rmSync(dir, { recursive: true, force: true });
  if (pgUrl && (args.includes('--keep-schema') || again)) process.stderr.write(`kept schema ${schema}\n`);
  else if (pgUrl) {
    const c = new pg.Client({ connectionString: pgUrl });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  }
}
