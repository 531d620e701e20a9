/**
 * The sync commands as an operator and the scheduled workflow use them: `sync plan` (counts per class
 * and per field, nothing sent), `sync run --due` (only sources whose schedule fired since their last
 * success), `sync run --format json` (the run report), `status` (age against the SLO, reject rate, exit 3
 * with JSON alerts, `::error` lines for GitHub), and `stamp_last_sent`.
 *
 * The CLI reads the system clock; time is injected by running syncs in-process with a fixed clock (the
 * state store records them at that time) and by choosing schedules whose outcome is certain.
 */
import { describe, expect, it } from 'vitest';
import { fixedClock } from '../../reconciler/core/clock.ts';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import type { SyncReport } from '../../reconciler/sync/run.ts';
import { attributesOf, cli, makeProject, ndjson, personSource, sync as syncAttached, syncOk as syncOkAttached, trackRequests, useSandbox, writeData, type SyncCall } from '../support/sync-fixture.ts';

// The runs in process reach the sandbox as the CLI does, so both share one state.
const sync = (dir: string, sandbox: RunningSandbox, source: string, o: SyncCall = {}) => syncAttached(dir, sandbox, source, { ...o, live: true });
const syncOk = (dir: string, sandbox: RunningSandbox, source: string, o: SyncCall = {}) => syncOkAttached(dir, sandbox, source, { ...o, live: true });

let sandbox: RunningSandbox;
let dir: string | undefined;

useSandbox(17, (s) => (sandbox = s));

/** Several copies of one source write the same fields; validation would (rightly) refuse that. */
const SEVERAL_WRITERS = { OWN001: 'off' } as const;

const vip = (name = 'vip', extra: Parameters<typeof personSource>[0] extends infer O ? Partial<O> : never = {}) =>
  personSource({ name, system: 'warehouse', fields: { vip_tier: 'tier', vip_tier_updated_at: 'tier_at' }, ordering: 'tier_at', ...extra });

describe('sync plan', () => {
  it('shows new, changed, unchanged, out-of-order, rejected and null-blocked per field, and sends nothing', async () => {
    dir = await makeProject({
      sources: [vip()],
      data: {
        'vip.ndjson': ndjson([
          { customer_id: 'a', tier: 'gold', tier_at: '2026-05-02T00:00:00Z' },
          { customer_id: 'b', tier: 'gold', tier_at: '2026-05-02T00:00:00Z' },
          { customer_id: 'c', tier: 'gold', tier_at: '2026-05-02T00:00:00Z' },
          { customer_id: 'd', tier: 'gold', tier_at: '2026-05-02T00:00:00Z' },
        ]),
      },
    });
    await syncOk(dir, sandbox, 'vip');
    await writeData(
      dir,
      'vip.ndjson',
      ndjson([
        { customer_id: 'a', tier: 'gold', tier_at: '2026-05-02T00:00:00Z' }, // unchanged
        { customer_id: 'b', tier: 'platinum', tier_at: '2026-05-03T00:00:00Z' }, // changed
        { customer_id: 'c', tier: 'silver', tier_at: '2026-05-01T00:00:00Z' }, // out of order
        { customer_id: 'd', tier: null, tier_at: '2026-05-03T00:00:00Z' }, // blank: blocked, so unchanged
        { customer_id: 'e', tier: 'none', tier_at: '2026-05-03T00:00:00Z' }, // new
        { customer_id: 'f', tier: 'diamond', tier_at: '2026-05-03T00:00:00Z' }, // rejected
        { tier: 'gold' }, // rejected
      ]),
    );
    sandbox.resetRequestCounts();
    const text = await cli(dir, sandbox, ['sync', 'plan', 'vip']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toBe(
      [
        `Planning against Customer.io site ${sandbox.env.CUSTOMERIO_SITE_ID} (us) via ${sandbox.urls.customerioTrack} (environment test)`,
        'Sync plan for vip',
        '  read 7, rejected 2 (identity_missing 1, type_mismatch 1)',
        '  new 1, changed 1, unchanged 2, out of order (older than what was sent) 1, duplicate keys 0',
        '  blanks kept from erasing values: vip_tier 1',
        '  updated_at companions held back with their blank state: vip_tier_updated_at 1',
        '  fields changing: vip_tier 2, vip_tier_updated_at 2',
        `  rejected rows: ${text.stdout.match(/rejected rows: (\S+)/)![1]}`,
        '',
      ].join('\n'),
    );
    const json = await cli(dir, sandbox, ['sync', 'plan', 'vip', '--format', 'json']);
    const report = JSON.parse(json.stdout) as SyncReport;
    expect(report).toMatchObject({
      environment: 'test',
      target: { mode: 'live', label: expect.stringMatching(/^Customer\.io site /) },
      format_version: 1,
      source: 'vip',
      mode: 'plan',
      status: 'planned',
      counts: {
        read: 7,
        rejected: 2,
        new: 1,
        changed: 1,
        unchanged: 2,
        out_of_order: 1,
        null_blocked: { vip_tier: 1 },
        held_back: { vip_tier_updated_at: 1 },
        erased: {},
        changed_fields: { vip_tier: 2, vip_tier_updated_at: 2 },
        sent: 0,
      },
    });
    expect(report.run_id).toBeUndefined();
    // Nothing reached Track, and nothing changed in Customer.io.
    expect(trackRequests(sandbox)).toBe(0);
    expect(sandbox.customerio.getPerson('e')).toBeUndefined();
    expect(attributesOf(sandbox, 'b')).toMatchObject({ vip_tier: 'gold' });
    // A plan is not a run: it leaves no run history behind, so a run still sends everything planned.
    const run = await sync(dir, sandbox, 'vip');
    expect(run.counts).toMatchObject({ new: 1, changed: 1, sent: 2 });
    // What was planned went out; the run still fails, because 2 of its 7 rows were rejected.
    expect(run.status).toBe('failed');
    expect(run.problems).toEqual(["2 of 7 rows read (28.6%) were rejected or refused by Customer.io for good, over the source's max_rejected of 5%."]);
  });
});

describe('sync run', () => {
  it('prints a JSON run report with the counts of every source run', async () => {
    dir = await makeProject({
      // Half of the customers rows are rejected: within the threshold that source declares.
      sources: [vip(), personSource({ fields: { order_count: 'orders' }, extra: 'max_rejected: 50%\n' })],
      data: {
        'vip.ndjson': ndjson([{ customer_id: 'a', tier: 'gold', tier_at: '2026-05-02T00:00:00Z' }]),
        'customers.ndjson': ndjson([{ customer_id: 'a', orders: 2 }, { customer_id: 'b', orders: 'x' }]),
      },
    });
    const r = await cli(dir, sandbox, ['sync', 'run', '--format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { format_version: number; runs: SyncReport[] };
    expect(out.format_version).toBe(1);
    expect(out.runs.map((x) => [x.source, x.status, x.counts.read, x.counts.rejected, x.counts.sent, x.counts.acknowledged])).toEqual([
      ['customers', 'succeeded', 2, 1, 1, 1],
      ['vip', 'succeeded', 1, 0, 1, 1],
    ]);
    for (const run of out.runs) {
      expect(run.run_id).toEqual(expect.any(String));
      expect(Date.parse(run.finished_at)).toBeGreaterThanOrEqual(Date.parse(run.started_at));
    }
    expect(out.runs[0]!.rejects_file).toMatch(/^\.tidemark\/rejects\/customers\/.+\.ndjson$/);
  });

  it('with --due runs only the sources whose schedule fired since their last success', async () => {
    dir = await makeProject({
      sources: [vip('fresh_vip'), vip('old_vip'), vip('new_vip')],
      policy: SEVERAL_WRITERS,
      data: { 'fresh_vip.ndjson': ndjson([]), 'old_vip.ndjson': ndjson([]), 'new_vip.ndjson': ndjson([]) },
    });
    // Hourly sources: one succeeded "in 2099" (no hour can have begun since), one in 2020 (many have),
    // one never ran.
    await syncOk(dir, sandbox, 'fresh_vip', { clock: fixedClock('2099-01-01T00:30:00Z') });
    await syncOk(dir, sandbox, 'old_vip', { clock: fixedClock('2020-01-01T00:30:00Z') });
    const r = await cli(dir, sandbox, ['sync', 'run', '--due', '--format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { runs: SyncReport[] }).runs.map((x) => x.source)).toEqual(['new_vip', 'old_vip']);

    // Named sources are filtered the same way.
    const named = await cli(dir, sandbox, ['sync', 'run', 'fresh_vip', '--due']);
    expect(named.code).toBe(0);
    expect(named.stdout).toBe('No source is due.\n');
  });

  it('stamps the run time on the people it sends, and only on them', async () => {
    dir = await makeProject({
      sources: [personSource({ fields: { order_count: 'orders' }, extra: 'stamp_last_sent: last_synced_by_tidemark\n' })],
      data: { 'customers.ndjson': ndjson([{ customer_id: 'a', orders: 1 }, { customer_id: 'b', orders: 1 }]) },
    });
    await syncOk(dir, sandbox, 'customers', { clock: fixedClock('2026-06-01T12:00:00Z') });
    const first = Date.parse('2026-06-01T12:00:00Z') / 1000;
    expect(attributesOf(sandbox, 'a')).toEqual({ order_count: 1, last_synced_by_tidemark: first });
    expect(attributesOf(sandbox, 'b')).toEqual({ order_count: 1, last_synced_by_tidemark: first });

    await writeData(dir, 'customers.ndjson', ndjson([{ customer_id: 'a', orders: 2 }, { customer_id: 'b', orders: 1 }]));
    await syncOk(dir, sandbox, 'customers', { clock: fixedClock('2026-06-02T12:00:00Z') });
    expect(attributesOf(sandbox, 'a')).toEqual({ order_count: 2, last_synced_by_tidemark: Date.parse('2026-06-02T12:00:00Z') / 1000 });
    expect(attributesOf(sandbox, 'b')).toEqual({ order_count: 1, last_synced_by_tidemark: first });
  });
});

describe('status', () => {
  it('shows age against the SLO and the reject rate, and exits 3 with JSON alerts when a source is stale, failed or rejects too much', async () => {
    dir = await makeProject({
      sources: [vip('fresh'), vip('stale'), vip('broken'), vip('messy'), vip('unsynced')],
      policy: SEVERAL_WRITERS,
      data: {
        'fresh.ndjson': ndjson([{ customer_id: 'a', tier: 'gold', tier_at: '2026-05-02T00:00:00Z' }]),
        'stale.ndjson': ndjson([{ customer_id: 'b', tier: 'gold', tier_at: '2026-05-02T00:00:00Z' }]),
        'broken.ndjson': ndjson([{ customer_id: 'c', tier: 'gold', tier_at: '2026-05-02T00:00:00Z' }]),
        'messy.ndjson': ndjson([
          { customer_id: 'd', tier: 'gold', tier_at: '2026-05-02T00:00:00Z' },
          { customer_id: 'e', tier: 'bronze', tier_at: '2026-05-02T00:00:00Z' },
          { tier: 'gold' },
          { customer_id: 'f', tier: 'gold', tier_at: '2026-05-02T00:00:00Z' },
        ]),
        'unsynced.ndjson': ndjson([]),
      },
    });
    await syncOk(dir, sandbox, 'fresh');
    // Half of its rows are rejected, over the default max_rejected of 5%: the run fails.
    expect((await sync(dir, sandbox, 'messy')).status).toBe('failed');
    // Three days ago, against an SLO of two hours.
    await syncOk(dir, sandbox, 'stale', { clock: fixedClock(new Date(Date.now() - 3 * 86_400_000).toISOString()) });
    await syncOk(dir, sandbox, 'broken');
    sandbox.faults.set({ service: 'track', burst5xx: 1000, pathPattern: '/api/v2/batch' });
    await writeData(dir, 'broken.ndjson', ndjson([{ customer_id: 'c', tier: 'silver', tier_at: '2026-05-03T00:00:00Z' }]));
    expect((await sync(dir, sandbox, 'broken')).status).toBe('partial');
    sandbox.faults.clear();

    const json = await cli(dir, sandbox, ['status', '--format', 'json']);
    expect(json.code).toBe(3);
    const out = JSON.parse(json.stdout) as {
      format_version: number;
      environment: string;
      sources: Array<{ source: string; age_seconds: number | null; max_age_seconds: number | null; fresh: boolean | null; reject_rate: number | null; last_run_status: string | null }>;
      alerts: Array<{ source: string; kind: string; message: string }>;
    };
    expect(out).toMatchObject({ format_version: 1, environment: 'test' });
    expect(out.alerts.map((a) => [a.source, a.kind])).toEqual([
      ['broken', 'run_incomplete'],
      ['messy', 'never_synced'],
      ['messy', 'run_failed'],
      ['messy', 'reject_rate'],
      ['stale', 'stale'],
      ['unsynced', 'never_synced'],
    ]);
    const by = new Map(out.sources.map((s) => [s.source, s]));
    expect(by.get('fresh')).toMatchObject({ fresh: true, max_age_seconds: 7200, reject_rate: 0, last_run_status: 'succeeded' });
    expect(by.get('fresh')!.age_seconds).toBeLessThan(7200);
    expect(by.get('stale')).toMatchObject({ fresh: false, max_age_seconds: 7200 });
    expect(by.get('stale')!.age_seconds).toBeGreaterThanOrEqual(3 * 86_400);
    // A run that rejected too much never counts as a success, so it cannot make the source fresh.
    expect(by.get('messy')).toMatchObject({ reject_rate: 0.5, fresh: false, last_run_status: 'failed' });
    // The failed run left the earlier success in place: still fresh, but alerting.
    expect(by.get('broken')).toMatchObject({ fresh: true, last_run_status: 'partial' });
    expect(out.alerts.find((a) => a.kind === 'stale')!.message).toMatch(/^stale last synced 3d ago, over its freshness SLO of 2h$/);
    expect(out.alerts.find((a) => a.kind === 'reject_rate')!.message).toMatch(/^50\.0% of the rows messy read were rejected/);

    const text = await cli(dir, sandbox, ['status']);
    expect(text.code).toBe(3);
    expect(text.stdout).toMatch(/^✓ fresh: last success \d+s ago \(SLO 2h\), last run succeeded, 0\.0% rejected$/m);
    expect(text.stdout).toMatch(/^✗ stale: last success 3d ago \(SLO 2h\), last run succeeded, 0\.0% rejected, due$/m);
    expect(text.stdout).toMatch(/^Status of test on Customer\.io site \S+ \(us\) via http:\/\/127\.0\.0\.1:\d+$/m);
    expect(text.stdout).toMatch(/^✗ messy: last success never \(SLO 2h\), last run failed, 50\.0% rejected, due$/m);
    expect(text.stdout).toMatch(/^✗ broken: .*last run partial, 0\.0% rejected, 1 entries waiting for the next run$/m);

    const github = await cli(dir, sandbox, ['status', '--format', 'github']);
    expect(github.code).toBe(3);
    const lines = github.stdout.trim().split('\n');
    expect(lines).toHaveLength(6);
    // Each annotation says where the status was read.
    for (const line of lines) expect(line).toMatch(/^::error title=tidemark (run_incomplete|run_failed|reject_rate|stale|never_synced) \(\w+\)::.+ \[test on Customer\.io site .+\]$/);
    // Percent signs are escaped for the workflow command parser.
    expect(lines.find((l) => l.includes('reject_rate'))).toContain('50.0%25 of the rows');

    // Fixed data and fresh runs: all clear.
    await writeData(dir, 'messy.ndjson', ndjson([{ customer_id: 'd', tier: 'gold', tier_at: '2026-05-02T00:00:00Z' }]));
    await syncOk(dir, sandbox, 'messy');
    await syncOk(dir, sandbox, 'stale');
    await syncOk(dir, sandbox, 'broken');
    await syncOk(dir, sandbox, 'unsynced');
    const clear = await cli(dir, sandbox, ['status', '--max-reject-rate', '0.6', '--format', 'json']);
    expect(clear.code).toBe(0);
    expect((JSON.parse(clear.stdout) as { alerts: unknown[] }).alerts).toEqual([]);
  });

  it('counts entries Customer.io refused for good in the reject rate, and fails the run over the threshold', async () => {
    // Customer.io refuses for good a new attribute on a person who already has its 300: 4 of 40 people
    // (10%, over the default 5%) are given 300 attributes first, through the Track API.
    const auth = `Basic ${Buffer.from(`${sandbox.env.CUSTOMERIO_SITE_ID}:${sandbox.env.CUSTOMERIO_TRACK_API_KEY}`).toString('base64')}`;
    const full = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`a${i}`, i]));
    for (const id of ['p0', 'p10', 'p20', 'p30']) {
      const res = await fetch(`${sandbox.env.CUSTOMERIO_TRACK_URL}/api/v1/customers/${id}`, { method: 'PUT', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify(full) });
      expect(res.status).toBe(200);
    }
    const rows = Array.from({ length: 40 }, (_, i) => ({ customer_id: `p${i}`, orders: i }));
    dir = await makeProject({ sources: [personSource({ fields: { order_count: 'orders' } })], data: { 'customers.ndjson': ndjson(rows) } });
    const run = await cli(dir, sandbox, ['sync', 'run', 'customers', '--format', 'json']);
    expect(run.code).toBe(1);
    const r = (JSON.parse(run.stdout) as { runs: SyncReport[] }).runs[0]!;
    expect(r.status).toBe('failed');
    expect(r.counts).toMatchObject({ read: 40, refused: 4, sent: 36, retry_later: 0, pending: 0 });
    expect(r.problems).toEqual(["4 of 40 rows read (10%) were rejected or refused by Customer.io for good, over the source's max_rejected of 5%."]);
    const status = await cli(dir, sandbox, ['status', '--format', 'json']);
    expect(status.code).toBe(3);
    const out = JSON.parse(status.stdout) as { sources: Array<{ reject_rate: number; last_run_status: string }>; alerts: Array<{ kind: string }> };
    expect(out.sources[0]).toMatchObject({ reject_rate: 0.1, last_run_status: 'failed' });
    expect(out.alerts.map((a) => a.kind).sort()).toEqual(['never_synced', 'reject_rate', 'run_failed']);
  });
});
