/**
 * Survey eligibility at scale (issue 12, point 8: "eligibility for 1,000,000 people and 3 targets: target
 * under 10 s embedded"). A measurement, not a test: nothing is asserted beyond the specs loading and the
 * second run finding everyone each target kept in the first already handled by it.
 *
 *   npx tsx test/bench/surveys.bench.ts [people=1000000] [--keep]
 *
 * `--no-invitations` records no earlier invitations, and `--first-only` stops after the first evaluation:
 * diagnostics only (the caps and the "already handled" check then have nothing to look at), used to
 * separate the cost of those checks from the rest at 1,000,000 people (docs/BENCHMARKS.md).
 * `--analyze` runs SQLite's ANALYZE (from a second connection) after the fill and after recording, which the
 * product does not do: without statistics SQLite scans the materialised invitation subqueries of
 * `stageSurveyTarget` once per candidate (docs/BENCHMARKS.md), so this shows the cost with them.
 * `--keep` leaves the temp folder (and its state file) in place, to EXPLAIN QUERY PLAN the engine's queries.
 *
 * Specs: a Workspace (with a workspace-wide frequency cap), Fields, three Sources, three Segments and three
 * SurveyTargets, written to a temp folder and loaded with `loadSpecs`, so the engine evaluates real,
 * validated specs. The targets cover what the engine does per person: moments on three events, overlapping
 * audiences, an own cap (all_surveys), an own cap scoped to this_target, the Workspace cap, holdouts on all
 * three (10%, 10%, 5%), two priorities and one target without (claimed last).
 *
 * How the state is filled, and why: the engine reads `audience_candidates` (an audience evaluation's
 * output), `mirror_events` and `survey_invitations`; it never reads the snapshots or the attributes. Going
 * through the snapshots would cost what audiences.bench.ts measures: its `rebuildMirror` alone took 647 s at
 * 1,000,000 people, and the segment queries another ~44 s. So, after `openStateStore` has created and
 * migrated the embedded store, a second better-sqlite3 connection to the same file writes
 * `mirror_people`, `mirror_events`, `audience_candidates` and `survey_invitations` directly, with
 * `INSERT … SELECT` over a recursive CTE counting 0..N-1 (SQLite has no generate_series without its
 * extension), and closes before the engine runs. Those are exactly the rows `rebuildMirror` and
 * `storeCandidates` would leave (env, person id, event name, epoch ms; env, segment, person id), into the
 * migrated tables with all their indexes, and nothing is ANALYZEd (the product does not ANALYZE SQLite).
 * `mirror_attributes` stays empty: eligibility never reads it. The segments' conditions are therefore not
 * what picks their members here; the CTE does (independent hashes, so the audiences overlap).
 *
 * Data, per person i (ids `cust_` + 8 hex digits of i × 2654435761 mod 2^32, as in audiences.bench.ts, so
 * ids do not arrive in key order): order_delivered once within the last 150 days, a second one for half of
 * them; subscription_cancel_requested for 20% within the last 10 days; support_ticket_closed for 30% within
 * the last 10 days (about 2.0 events per person). Audiences: delivered_customers 60%, cancel_intent 30%,
 * support_contacts 50%. Invitations already recorded: 5% of people invited by post_purchase_fit 10 days
 * before now (they count against the 30-day caps of the other two targets, and are already handled for
 * post_purchase_fit, whose window reaches back 14 days), and 1% held out of it 20 days ago (never counts).
 *
 * Timed: `evaluateEligibility` for the three targets; recording this run's invitations for every eligible
 * person (and the held-out ones as held out) through `store.surveys.recordInvitations`, the export's path,
 * 5,000 ids a call; then `evaluateEligibility` again, which must find all of them already handled.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { eligibleIds, evaluateEligibility, heldOutIds, type EligibilityResult } from '../../reconciler/surveys/eligibility.ts';
import { loadSpecs } from '../../reconciler/spec/load.ts';
import type { SpecModel } from '../../reconciler/spec/model.ts';
import { openStateStore } from '../../reconciler/state/open.ts';
import type { StateStore } from '../../reconciler/state/types.ts';

const args = process.argv.slice(2);
const people = Number(args.find((a) => /^\d+$/.test(a)) ?? 1_000_000);
const ENV = 'bench';
const NOW = new Date('2026-12-02T00:00:00Z');
const NOW_MS = NOW.getTime();
const DAY_MS = 86_400_000;
const RECORD_BATCH = 5_000;

// ---------------------------------------------------------------------------------------------- specs

const WORKSPACE = `kind: Workspace
name: survey_bench
identity:
  primary: id
systems:
  crm: {}
  shop: {}
  support: {}
  qualtrics: {}
environments:
  ${ENV}:
    customerio:
      region: us
      site_id_env: BENCH_CIO_SITE_ID
      track_api_key_env: BENCH_CIO_TRACK_API_KEY
      app_api_key_env: BENCH_CIO_APP_API_KEY
    qualtrics:
      datacenter: iad1
      directory_id: POOL_2a3b4c5d6e7f8g9
default_environment: ${ENV}
state:
  backend: embedded
  path: .tidemark
surveys:
  frequency_cap: { max: 1, per: 30d }
`;

const FIELDS = `kind: Fields
name: survey_bench
fields:
  plan: { type: enum, values: [free, basic, pro], owner: crm }
  country: { type: string, owner: crm }
  order_count: { type: number, nature: measure, owner: crm }
  survey_reason: { type: enum, values: [good, bad], owner: qualtrics }
events:
  order_delivered: { owner: shop, stage: delivery }
  subscription_cancel_requested: { owner: shop, stage: engagement }
  support_ticket_closed: { owner: support, stage: engagement }
`;

const eventSource = (name: string, system: string, event: string) => `kind: Source
name: ${name}
system: ${system}
connector: { type: ndjson, path: data/${name}.ndjson }
schedule: "*/30 * * * *"
records: event
identity: { column: customer_id, as: id }
event:
  name: ${event}
  timestamp_column: at
  id_columns: [event_id]
timezone: UTC
fields: {}
freshness: { max_age: 2h }
latency_needed: hourly
`;

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
  plan: plan
  country: country
  order_count: order_count
freshness: { max_age: 2h }
latency_needed: daily
`,
  eventSource('deliveries', 'shop', 'order_delivered'),
  eventSource('cancellations', 'shop', 'subscription_cancel_requested'),
  eventSource('tickets', 'support', 'support_ticket_closed'),
];

const SEGMENTS = [
  'kind: Segment\nname: delivered_customers\nconditions:\n  event: { name: order_delivered, to: 150d }\nfreshness_guard: {}\n',
  'kind: Segment\nname: cancel_intent\nconditions:\n  event: { name: subscription_cancel_requested, to: 10d }\nfreshness_guard: {}\n',
  'kind: Segment\nname: support_contacts\nconditions:\n  attribute: { field: order_count, op: gte, value: 1 }\nfreshness_guard: {}\n',
];

const target = (name: string, body: string) => `kind: SurveyTarget
name: ${name}
survey: SV_bench${name.replaceAll('_', '')}
identifier: id
mailing_list: { name: "tidemark: ${name}" }
response_window: 72h
responses:
  question: QID1
  reason_codes: { "1": good, "2": bad }
  write: { attribute: survey_reason }
${body}`;

const TARGETS = [
  target(
    'cancel_intent_reason',
    `purpose: cancellation_reason
audience: cancel_intent
moment: { event: subscription_cancel_requested, after: 1h, before: 2d }
frequency_cap: { max: 1, per: 30d }
priority: 1
holdout: 10%
`,
  ),
  target(
    'post_purchase_fit',
    `purpose: product_feedback
product_type: consumable
audience: delivered_customers
moment: { event: order_delivered, after: 7d, before: 14d }
frequency_cap: { max: 2, per: 60d, scope: this_target }
priority: 2
holdout: 10%
`,
  ),
  target(
    'support_csat',
    `purpose: other
audience: support_contacts
moment: { event: support_ticket_closed, after: 1h, before: 7d }
holdout: 5%
`,
  ),
];

async function loadModel(dir: string): Promise<SpecModel> {
  mkdirSync(path.join(dir, 'specs', 'sources'), { recursive: true });
  writeFileSync(path.join(dir, 'specs', 'workspace.yaml'), WORKSPACE);
  writeFileSync(path.join(dir, 'specs', 'fields.yaml'), FIELDS);
  writeFileSync(path.join(dir, 'specs', 'sources', 'sources.yaml'), SOURCES.join('---\n'));
  writeFileSync(path.join(dir, 'specs', 'segments.yaml'), SEGMENTS.join('---\n'));
  writeFileSync(path.join(dir, 'specs', 'surveys.yaml'), TARGETS.join('---\n'));
  const loaded = await loadSpecs('specs', dir);
  const errors = loaded.diagnostics.filter((d) => d.severity === 'error');
  if (!loaded.model || errors.length) {
    throw new Error(`bench specs do not validate:\n${errors.map((d) => `${d.code} ${d.summary}`).join('\n')}`);
  }
  return loaded.model;
}

// ----------------------------------------------------------------------------------------------- data

/** The ids 0..N-1, with deterministic hashes per salt; `h(salt) % m` is spread enough for shares. */
const SERIES = `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ${people})`;
const h = (salt: number) => `(((i + ${salt * 7919}) * 2654435761 + ${salt * 40503}) % 4294967291)`;
const pid = `printf('cust_%08x', (i * 2654435761) % 4294967296)`;
const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Writes the mirror, the audience candidates and the earlier invitations straight into the migrated
 * tables (see the header for why); resolves to the row counts.
 */
function fillState(file: string): Record<string, number> {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('cache_size = -65536');
  const ev = (name: string, where: string, ageMs: string) =>
    `${SERIES} INSERT INTO mirror_events (env, person_id, name, occurred_ms) SELECT '${ENV}', ${pid}, '${name}', ${NOW_MS} - (${ageMs}) FROM n WHERE ${where}`;
  const seg = (segment: string, where: string) =>
    `${SERIES} INSERT INTO audience_candidates (env, segment, person_id) SELECT '${ENV}', '${segment}', ${pid} FROM n WHERE ${where}`;
  const inv = (where: string, at: string, heldOut: number) =>
    `${SERIES} INSERT INTO survey_invitations (env, target, person_id, invited_at, held_out, distribution_id) SELECT '${ENV}', 'post_purchase_fit', ${pid}, '${at}', ${heldOut}, 'EMD_bench' FROM n WHERE ${where}`;
  db.transaction(() => {
    db.exec(`${SERIES} INSERT INTO mirror_people (env, person_id) SELECT '${ENV}', ${pid} FROM n`);
    db.exec(ev('order_delivered', '1', `${h(1)} % ${150 * DAY_MS}`));
    db.exec(ev('order_delivered', `${h(2)} % 2 = 0`, `${h(3)} % ${150 * DAY_MS}`));
    db.exec(ev('subscription_cancel_requested', `${h(4)} % 10 < 2`, `${h(5)} % ${10 * DAY_MS}`));
    db.exec(ev('support_ticket_closed', `${h(6)} % 10 < 3`, `${h(7)} % ${10 * DAY_MS}`));
    db.exec(seg('delivered_customers', `${h(8)} % 10 < 6`));
    db.exec(seg('cancel_intent', `${h(9)} % 10 < 3`));
    db.exec(seg('support_contacts', `${h(10)} % 10 < 5`));
    if (!args.includes('--no-invitations')) db.exec(inv(`${h(11)} % 100 < 5`, iso(NOW_MS - 10 * DAY_MS), 0));
    if (!args.includes('--no-invitations')) db.exec(inv(`${h(11)} % 100 = 5`, iso(NOW_MS - 20 * DAY_MS), 1));
  })();
  const counts: Record<string, number> = {};
  for (const t of ['mirror_people', 'mirror_events', 'audience_candidates', 'survey_invitations']) {
    counts[t] = (db.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get() as { n: number }).n;
  }
  db.close();
  return counts;
}

/** Gathers SQLite's statistics from a second connection (`--analyze` only; the product never does). */
function analyzeState(file: string): void {
  const db = new Database(file);
  db.exec('ANALYZE');
  db.close();
}

// --------------------------------------------------------------------------------------------- timing

const mb = (bytes: number) => `${Math.round(bytes / 1e6)} MB`;
const peakRss = () => process.resourceUsage().maxRSS * 1024;
const results: Array<{ step: string; seconds: number; note: string }> = [];
const fmt = (n: number) => n.toLocaleString('en-US');

async function timed<T>(step: string, fn: () => Promise<T> | T, note: (v: T) => string = () => ''): Promise<T> {
  const t = performance.now();
  const cpu = process.cpuUsage();
  const value = await fn();
  const seconds = (performance.now() - t) / 1000;
  const used = process.cpuUsage(cpu);
  const n = note(value);
  results.push({ step, seconds, note: n });
  process.stderr.write(
    `  ${step.padEnd(52)} ${seconds.toFixed(2).padStart(7)} s wall ${((used.user + used.system) / 1e6).toFixed(2).padStart(6)} s cpu  rss ${mb(process.memoryUsage().rss)}  ${n}\n`,
  );
  return value;
}

const funnel = (r: EligibilityResult) =>
  r.targets
    .map((t) => `${t.target}: audience ${fmt(t.audience)}, in window ${fmt(t.in_window)}, already ${fmt(t.already_invited)}, capped ${fmt(t.capped)}, claimed ${fmt(t.claimed_by_other)}, held out ${fmt(t.held_out)}, eligible ${fmt(t.eligible)}`)
    .join('; ');

/**
 * Splits an evaluation into the store's survey calls (stage, dropClaimed, markHoldout, ...) by wrapping
 * them, as audiences.bench.ts does for the audience calls.
 */
function instrument(store: StateStore) {
  const phases = new Map<string, number>();
  const surveys = { ...store.surveys } as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  for (const name of ['clearCandidates', 'stage', 'drop', 'dropClaimed', 'markHoldout', 'count']) {
    const orig = surveys[name]!;
    surveys[name] = async (...a: unknown[]) => {
      const t = performance.now();
      try {
        return await orig(...a);
      } finally {
        const ms = performance.now() - t;
        phases.set(name, (phases.get(name) ?? 0) + ms);
        // Progress on stderr, so a run stopped by a timeout still shows where the time went.
        if (name === 'stage') process.stderr.write(`    stage ${(a[0] as { target: string }).target}: ${(ms / 1000).toFixed(2)} s\n`);
      }
    };
  }
  const measured = new Proxy(store, {
    get(target, prop) {
      if (prop === 'surveys') return surveys;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(target) : v;
    },
  });
  const report = () => {
    const out = [...phases].filter(([, ms]) => ms >= 1).map(([n, ms]) => `${n} ${(ms / 1000).toFixed(2)} s`).join(', ');
    phases.clear();
    return out;
  };
  return { measured, report };
}

async function recordRun(store: StateStore, result: EligibilityResult): Promise<{ invited: number; heldOut: number }> {
  let invited = 0;
  let heldOut = 0;
  for (const t of result.targets) {
    for await (const ids of eligibleIds(store, t.target, RECORD_BATCH)) invited += await store.surveys.recordInvitations(t.target, ids, { heldOut: false, distributionId: 'EMD_bench2' });
    for await (const ids of heldOutIds(store, t.target, RECORD_BATCH)) heldOut += await store.surveys.recordInvitations(t.target, ids, { heldOut: true });
  }
  return { invited, heldOut };
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'tidemark-survey-bench-'));
try {
  const model = await loadModel(dir);
  process.stderr.write(`survey bench: ${fmt(people)} people, ${model.surveyTargets.size} survey targets, sqlite in ${dir}\n`);
  // The store's clock is the bench's "now": recordInvitations stamps invitations with it.
  const store = await openStateStore({ dir: path.join(dir, '.tidemark'), env: ENV, clock: { now: () => new Date(NOW_MS) } });
  const file = store.location;
  await timed('fill mirror, audiences, invitations (direct SQL)', () => fillState(file), (c) => Object.entries(c).map(([t, n]) => `${t} ${fmt(n)}`).join(', '));

  const analyze = args.includes('--analyze');
  if (analyze) await timed('ANALYZE (--analyze, not what the product does)', () => analyzeState(file));
  const { measured, report } = instrument(store);
  const first = await timed('evaluateEligibility, 3 targets (first)', () => evaluateEligibility({ model, environment: ENV, store: measured, now: NOW }), funnel);
  results.push({ step: '  of which (store calls)', seconds: NaN, note: report() });
  if (args.includes('--first-only')) {
    await store.close();
    console.log(`survey eligibility, ${fmt(people)} people, first evaluation only${args.includes('--no-invitations') ? ', no earlier invitations' : ''}; peak RSS ${mb(peakRss())}\n`);
    console.log('| step | seconds | note |\n|---|---:|---|');
    for (const r of results) console.log(`| ${r.step} | ${Number.isNaN(r.seconds) ? '' : r.seconds.toFixed(2)} | ${r.note} |`);
    if (args.includes('--keep')) process.stderr.write(`kept ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  }
  const recorded = await timed('record this run (recordInvitations)', () => recordRun(store, first), (r) => `${fmt(r.invited)} invited, ${fmt(r.heldOut)} held out`);
  if (analyze) await timed('ANALYZE (--analyze, not what the product does)', () => analyzeState(file));
  const second = await timed('evaluateEligibility, 3 targets (after recording)', () => evaluateEligibility({ model, environment: ENV, store: measured, now: NOW }), funnel);
  results.push({ step: '  of which (store calls)', seconds: NaN, note: report() });
  await store.close();

  // Everyone a target kept in the first run (same clock, so still in its window) must be already handled
  // by that target in the second; people it did not reach because another target claimed them may now be
  // eligible, which is the engine's rule (one survey per person per run), so only this is checked.
  const kept = first.targets.reduce((s, t) => s + t.eligible + t.held_out, 0);
  const short = first.targets.filter((t, i) => second.targets[i]!.already_invited < t.eligible + t.held_out + t.already_invited);
  if (kept !== recorded.invited + recorded.heldOut || short.length) {
    process.stderr.write(`UNEXPECTED: first run kept ${kept}, recorded ${recorded.invited + recorded.heldOut}; not handled in the second run: ${short.map((t) => t.target).join(', ')}\n`);
    process.exitCode = 1;
  }

  console.log(`survey eligibility, ${fmt(people)} people, 3 targets, embedded (SQLite)${analyze ? ', ANALYZE after bulk writes' : ''}; peak RSS ${mb(peakRss())}\n`);
  console.log('| step | seconds | note |\n|---|---:|---|');
  for (const r of results) console.log(`| ${r.step} | ${Number.isNaN(r.seconds) ? '' : r.seconds.toFixed(2)} | ${r.note} |`);
  console.log('\n| run | target | audience | in window | already invited | capped | claimed by other | held out | eligible |\n|---|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const [label, r] of [['first', first], ['second', second]] as const) {
    for (const t of r.targets) {
      console.log(`| ${label} | ${t.target} | ${fmt(t.audience)} | ${fmt(t.in_window)} | ${fmt(t.already_invited)} | ${fmt(t.capped)} | ${fmt(t.claimed_by_other)} | ${fmt(t.held_out)} | ${fmt(t.eligible)} |`);
    }
  }
} finally {
  if (args.includes('--keep')) process.stderr.write(`kept ${dir}\n`);
  else rmSync(dir, { recursive: true, force: true });
}
