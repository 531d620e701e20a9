/**
 * No row is silently lost, and the exit codes say so: entries Customer.io refuses for a transient reason
 * (or never acknowledges) wait in the state and go out on the next run even when that run reads a file of
 * deltas that no longer holds them; only a newer row of the same person supersedes a waiting entry. A run
 * that leaves entries waiting, rejects more rows than its source allows, rejects every row, or cannot
 * write its rejects file exits 1 and is never shown as succeeded; a source is never synced to an
 * environment its spec does not list.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { createWriteStream, existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openEnvironment } from '../../reconciler/composition/use-cases.ts';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { syncSource } from '../../reconciler/sync/run.ts';
import { attributesOf, cli, FAST_RETRY, makeProject, ndjson, open, personSource, sandboxEnv, sync, syncOk, trackRequests, useSandbox, workspaceYaml, writeData } from '../support/sync-fixture.ts';

let sandbox: RunningSandbox;

useSandbox(23, (s) => (sandbox = s));

const csvSource = (extra = '') =>
  personSource({ connector: '{ type: csv, path: data/customers.csv }', fields: { order_count: 'orders' }, ordering: 'updated_at', extra });

const csv = (rows: ReadonlyArray<{ id: string; orders: number; at: string }>) =>
  `customer_id,orders,updated_at\n${rows.map((r) => `${r.id},${r.orders},${r.at}`).join('\n')}\n`;

interface StatusJson {
  sources: Array<{ source: string; last_run_status: string | null; last_success: string | null; pending: number }>;
  alerts: Array<{ source: string; kind: string; message: string }>;
}

describe('entries refused for a transient reason', () => {
  it('reach Customer.io on the next run from a delta file that no longer holds them, and every person ends correct', async () => {
    const N = 400;
    const everyone = Array.from({ length: N }, (_, i) => ({ id: `p${i}`, orders: i, at: '2026-05-01T00:00:00Z' }));
    const dir = await makeProject({ sources: [csvSource()], data: { 'customers.csv': csv(everyone) } });

    sandbox.faults.set({ partialFailureRate: 0.05, service: 'track' });
    const first = await cli(dir, sandbox, ['sync', 'run', 'customers', '--format', 'json']);
    sandbox.faults.clear();
    // Entries wait for the next run: the command did not do everything, so it does not exit 0.
    expect(first.code, first.stderr).toBe(1);
    const r1 = (JSON.parse(first.stdout) as { runs: Array<{ status: string; counts: Record<string, number>; problems: string[] }> }).runs[0]!;
    const refused = r1.counts.retry_later!;
    // Seeded: about 5% of the entries.
    expect(refused).toBeGreaterThan(5);
    expect(refused).toBeLessThan(45);
    expect(r1.status).toBe('partial');
    expect(r1.counts).toMatchObject({ read: N, sent: N - refused, acknowledged: N - refused, pending: refused });
    expect(r1.problems).toEqual([
      `${refused} entries were refused by Customer.io for a transient reason or not acknowledged (${refused} refused, 0 not acknowledged); they are kept in the state and sent on the next run.`,
    ]);
    const missing = everyone.filter((p) => sandbox.customerio.getPerson(p.id) === undefined).map((p) => p.id);
    expect(missing).toHaveLength(refused);

    // `status` never shows that run as a success.
    const st1 = await cli(dir, sandbox, ['status', '--format', 'json']);
    expect(st1.code).toBe(3);
    const s1 = JSON.parse(st1.stdout) as StatusJson;
    expect(s1.sources[0]).toMatchObject({ last_run_status: 'partial', last_success: null, pending: refused });
    expect(s1.alerts.map((a) => a.kind)).toContain('run_incomplete');
    const text = await cli(dir, sandbox, ['status']);
    expect(text.stdout).toContain(`last success never (SLO 2h), last run partial, 0.0% rejected, ${refused} entries waiting for the next run, due`);
    const github = await cli(dir, sandbox, ['status', '--format', 'github']);
    expect(github.stdout).toContain('::error title=tidemark run_incomplete (customers)::the last run of customers did not deliver everything: ');

    // The next export holds only changes for some other people (and one new person).
    const others = everyone.filter((p) => !missing.includes(p.id)).slice(0, 30);
    const delta = [...others.map((p) => ({ ...p, orders: p.orders + 1000, at: '2026-05-02T00:00:00Z' })), { id: 'newcomer', orders: 7, at: '2026-05-02T00:00:00Z' }];
    await writeData(dir, 'customers.csv', csv(delta));
    const second = await cli(dir, sandbox, ['sync', 'run', 'customers', '--format', 'json']);
    expect(second.code, second.stdout).toBe(0);
    const r2 = (JSON.parse(second.stdout) as { runs: Array<{ status: string; counts: Record<string, number> }> }).runs[0]!;
    expect(r2).toMatchObject({ status: 'succeeded', counts: { read: delta.length, retried: refused, sent: delta.length + refused, pending: 0 } });

    const expected = new Map(everyone.map((p) => [p.id, p.orders]));
    for (const d of delta) expected.set(d.id, d.orders);
    const wrong = [...expected].filter(([id, orders]) => attributesOf(sandbox, id)?.order_count !== orders).map(([id]) => id);
    expect(wrong).toEqual([]);
    expect(sandbox.customerio.listPeople()).toHaveLength(N + 1);

    const st2 = await cli(dir, sandbox, ['status', '--format', 'json']);
    expect((JSON.parse(st2.stdout) as StatusJson).sources[0]).toMatchObject({ last_run_status: 'succeeded', pending: 0 });
    expect(st2.code, st2.stdout).toBe(0);
  });

  it('are superseded only by a newer row of the same person; an older or equally old row does not replace them', async () => {
    const at = (day: number) => `2026-05-${String(day).padStart(2, '0')}T00:00:00Z`;
    const dir = await makeProject({
      sources: [csvSource()],
      data: { 'customers.csv': csv(['a', 'b', 'c', 'd', 'e'].map((id) => ({ id, orders: 10, at: at(10) }))) },
    });
    // Every entry of the first run is refused for a transient reason: all five wait.
    sandbox.faults.set({ partialFailureRate: 1, service: 'track' });
    const first = await sync(dir, sandbox, 'customers');
    sandbox.faults.clear();
    expect(first).toMatchObject({ status: 'partial', counts: { sent: 0, retry_later: 5, pending: 5 } });

    // d has no ordering: a row without one counts as newer. e is not in the file at all.
    await writeFile(
      path.join(dir, 'data', 'customers.csv'),
      `customer_id,orders,updated_at\na,11,${at(11)}\nb,9,${at(9)}\nc,99,${at(10)}\nd,12,\n`,
    );
    const second = await syncOk(dir, sandbox, 'customers');
    expect(second.counts).toMatchObject({ read: 4, behind_pending: 2, retried: 3, sent: 5, pending: 0 });
    expect(['a', 'b', 'c', 'd', 'e'].map((id) => attributesOf(sandbox, id)?.order_count)).toEqual([11, 10, 10, 12, 10]);

    // What went out is now what the snapshot holds: those rows again send nothing.
    await writeFile(path.join(dir, 'data', 'customers.csv'), `customer_id,orders,updated_at\na,11,${at(11)}\nb,10,${at(10)}\nd,12,\n`);
    const requests = trackRequests(sandbox);
    const third = await syncOk(dir, sandbox, 'customers');
    expect(third.counts).toMatchObject({ sent: 0, retried: 0, behind_pending: 0 });
    expect(trackRequests(sandbox)).toBe(requests);
  });
});

describe('a newer row that matches what Customer.io already holds', () => {
  it('still goes out when it supersedes a waiting entry, so its acknowledgement settles that entry in one transaction', async () => {
    const dir = await makeProject({ sources: [csvSource()], data: { 'customers.csv': csv([{ id: 'a', orders: 1, at: '2026-05-10T00:00:00Z' }]) } });
    await syncOk(dir, sandbox, 'customers');
    await writeData(dir, 'customers.csv', csv([{ id: 'a', orders: 2, at: '2026-05-20T00:00:00Z' }]));
    sandbox.faults.set({ partialFailureRate: 1, service: 'track' });
    expect((await sync(dir, sandbox, 'customers')).counts).toMatchObject({ retry_later: 1, pending: 1 });
    sandbox.faults.clear();
    // Back to the value the snapshot holds, but newer than the waiting entry: it supersedes it and is sent
    // (not skipped as unchanged, which would leave the older entry to be dropped only at the end of the run).
    await writeData(dir, 'customers.csv', csv([{ id: 'a', orders: 1, at: '2026-05-30T00:00:00Z' }]));
    const third = await syncOk(dir, sandbox, 'customers');
    expect(third.counts).toMatchObject({ unchanged: 1, sent: 1, retried: 0, pending: 0 });
    // An export without the person leaves Customer.io with the newest value.
    await writeData(dir, 'customers.csv', csv([]));
    expect((await syncOk(dir, sandbox, 'customers')).counts).toMatchObject({ read: 0, sent: 0, retried: 0 });
    expect(attributesOf(sandbox, 'a')).toMatchObject({ order_count: 1 });
  });
});

describe('exit codes', () => {
  it('fails a run whose rejects exceed the source\'s max_rejected (default 5%), saying so in one sentence', async () => {
    const rows = [...Array.from({ length: 18 }, (_, i) => ({ customer_id: `r${i}`, orders: i })), { customer_id: 'x1', orders: 'many' }, { customer_id: 'x2', orders: 'lots' }];
    const dir = await makeProject({ sources: [personSource({ fields: { order_count: 'orders' } })], data: { 'customers.ndjson': ndjson(rows) } });
    const run = await cli(dir, sandbox, ['sync', 'run', 'customers']);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('Sync run of customers: failed');
    expect(run.stdout).toContain("error: 2 of 20 rows read (10%) were rejected or refused by Customer.io for good, over the source's max_rejected of 5%.");
    // The good rows still went out; only the verdict differs.
    expect(attributesOf(sandbox, 'r3')).toMatchObject({ order_count: 3 });
    const status = await cli(dir, sandbox, ['status', '--format', 'json']);
    expect(status.code).toBe(3);
    const s = JSON.parse(status.stdout) as StatusJson;
    expect(s.sources[0]).toMatchObject({ last_run_status: 'failed', last_success: null });

    // Declared higher, the same rows pass.
    await writeFile(path.join(dir, 'specs', 'sources', 'sources.yaml'), personSource({ fields: { order_count: 'orders' }, extra: 'max_rejected: 10%\n' }));
    expect((await cli(dir, sandbox, ['sync', 'run', 'customers'])).code).toBe(0);
  });

  it('fails a run in which every row was rejected, with nothing sent', async () => {
    const dir = await makeProject({
      sources: [personSource({ fields: { last_seen_at: 'seen_at' }, extra: 'max_rejected: 100%\n' })],
      data: { 'customers.ndjson': ndjson([{ customer_id: 'a', seen_at: 'yesterday' }, { customer_id: 'b', seen_at: '2026-02-30 10:00' }]) },
    });
    const run = await cli(dir, sandbox, ['sync', 'run', 'customers']);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('error: Every one of the 2 rows read was rejected (see the rejects file); nothing could be sent.');
    expect(sandbox.customerio.listPeople()).toEqual([]);
  });
});

describe('a rejects file that cannot be written', () => {
  it('fails the run with one line naming the rejects folder and the OS error, without a stack trace; the cursor stays', async () => {
    const dir = await makeProject({
      sources: [personSource({ fields: { order_count: 'orders' }, extra: 'max_rejected: 100%\n' })],
      data: { 'customers.ndjson': ndjson([{ customer_id: 'a', orders: 1 }, { customer_id: 'b', orders: 'many' }]) },
    });
    // The folder the rejects go in cannot be made: its parent is a regular file.
    await mkdir(path.join(dir, '.tidemark'), { recursive: true });
    await writeFile(path.join(dir, '.tidemark', 'rejects'), 'not a folder');
    const run = await cli(dir, sandbox, ['sync', 'run', 'customers']);
    expect(run.code).toBe(1);
    const errors = run.stdout.split('\n').filter((l) => l.includes('error:'));
    expect(errors[0]).toBe(
      `  error: Rejected rows could not be written to ${path.join('.tidemark', 'rejects', 'customers')} (ENOTDIR): the run stopped, and the source's cursor stays where it was.`,
    );
    // The good row read before the stop was not sent: it waits in the state rather than being lost.
    expect(errors.slice(1)).toEqual([
      '  error: 1 entries were refused by Customer.io for a transient reason or not acknowledged (0 refused, 1 not acknowledged); they are kept in the state and sent on the next run.',
    ]);
    expect(`${run.stdout}${run.stderr}`).not.toMatch(/\n\s+at /);
    // The state the CLI used (opened the way the CLI opens it).
    const ws = await openEnvironment({ cwd: dir, env: sandboxEnv(sandbox), specs: 'specs', retry: FAST_RETRY });
    try {
      const [last] = await ws.conn.store.lastRuns('customers', 1);
      expect(last?.status).toBe('failed');
      expect(await ws.conn.store.lastSuccess('customers')).toBeUndefined();
      expect(await ws.conn.store.getCursor('sync.customers.last_sync_at')).toBeUndefined();
    } finally {
      await ws.conn.close();
    }
  });

  it.runIf(existsSync('/dev/full'))('fails the run on ENOSPC instead of crashing on an unhandled error event', async () => {
    const dir = await makeProject({
      sources: [personSource({ fields: { order_count: 'orders' }, extra: 'max_rejected: 100%\n' })],
      data: { 'customers.ndjson': ndjson([{ customer_id: 'a', orders: 1 }, { customer_id: 'b', orders: 'many' }]) },
    });
    const ws = await open(dir, sandbox);
    try {
      const report = await syncSource(
        {
          model: ws.model,
          store: ws.conn.store,
          client: ws.conn.customerio,
          cwd: dir,
          env: {},
          clock: ws.clock,
          stateDir: ws.conn.stateDir,
          // Every write to /dev/full fails with ENOSPC.
          openRejectsStream: () => createWriteStream('/dev/full'),
        },
        'customers',
        { mode: 'run' },
      );
      expect(report.status).toBe('failed');
      expect(report.error).toBe(`rejected rows could not be written to ${path.join('.tidemark', 'rejects', 'customers')} (ENOSPC): the run stopped, and the source's cursor stays where it was`);
      expect(await ws.conn.store.getCursor('sync.customers.last_sync_at')).toBeUndefined();
    } finally {
      await ws.conn.close();
    }
  });
});

describe('environments', () => {
  it('refuses `sync run NAME` and `sync plan NAME` for a source that does not apply to the environment; runs without a name skip it', async () => {
    const dir = await makeProject({
      policy: { OWN001: 'off' },
      sources: [personSource({ name: 'prod_only', fields: { order_count: 'orders' }, extra: 'environments: [production]\n' }), personSource({ name: 'everywhere', fields: { order_count: 'orders' } })],
      data: { 'prod_only.ndjson': ndjson([{ customer_id: 'p1', orders: 1 }]), 'everywhere.ndjson': ndjson([{ customer_id: 'e1', orders: 1 }]) },
    });
    const production = `  production:\n    customerio:\n      region: us\n      site_id_env: PROD_SITE_ID\n      track_api_key_env: PROD_TRACK_KEY\n      app_api_key_env: PROD_APP_KEY\ndefault_environment:`;
    await writeFile(path.join(dir, 'specs', 'workspace.yaml'), workspaceYaml('id', { OWN001: 'off' }).replace('default_environment:', production));
    for (const args of [['sync', 'run', 'prod_only'], ['sync', 'plan', 'prod_only']]) {
      const r = await cli(dir, sandbox, args);
      expect(r.code, r.stdout).toBe(1);
      expect(r.stderr).toMatch(/source "prod_only" does not apply to environment test: its environments are production \(specs\/sources\/sources\.yaml:\d+\); nothing was read or sent/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    expect(sandbox.customerio.listPeople()).toEqual([]);
    const all = await cli(dir, sandbox, ['sync', 'run']);
    expect(all.code, all.stdout).toBe(0);
    expect(all.stdout).not.toContain('prod_only');
    expect(sandbox.customerio.listPeople().map((p) => p.id)).toEqual(['e1']);
  });
});
