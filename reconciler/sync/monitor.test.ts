import { describe, expect, it } from 'vitest';
import type { SourceSpec } from '../spec/schema/index.ts';
import { formatAge, isDue, rejectThreshold, sourceStatus, type RunFacts } from './monitor.ts';

function source(over: Partial<SourceSpec> = {}): SourceSpec {
  return {
    kind: 'Source',
    name: 'vip',
    system: 'warehouse',
    connector: { type: 'ndjson', path: 'x.ndjson' },
    schedule: '0 3 * * *',
    records: 'person',
    identity: { column: 'customer_id', as: 'id' },
    fields: {},
    null_policy: 'protect',
    freshness: { max_age: '26h' },
    ...over,
  };
}

const run = (startedAt: string, over: Partial<RunFacts> = {}): RunFacts => ({ status: 'succeeded', startedAt, counts: { read: 100, rejected: 0 }, ...over });
const at = (iso: string) => new Date(iso);

describe('isDue', () => {
  it('is due when the schedule fired since the last success started, or when it never succeeded', () => {
    const s = source();
    expect(isDue(s, undefined, at('2026-05-01T00:00:00Z'))).toBe(true);
    expect(isDue(s, run('2026-05-01T03:00:05Z'), at('2026-05-01T12:00:00Z'))).toBe(false);
    // A scheduler starting exactly on the firing finds the source due.
    expect(isDue(s, run('2026-05-01T03:00:05Z'), at('2026-05-02T03:00:00Z'))).toBe(true);
    expect(isDue(s, run('2026-05-01T03:00:05Z'), at('2026-05-02T02:59:59.999Z'))).toBe(false);
    // Started just before the 03:00 firing: that firing still needs a run.
    expect(isDue(s, run('2026-05-01T02:59:59Z'), at('2026-05-01T03:30:00Z'))).toBe(true);
  });
});

describe('sourceStatus', () => {
  const now = at('2026-05-02T12:00:00Z');

  it('is fresh within the SLO, with the age measured from the start of the last success', () => {
    const st = sourceStatus('vip', source(), { lastSuccess: run('2026-05-02T03:00:00Z'), lastRun: run('2026-05-02T03:00:00Z') }, now, 0.05);
    expect(st).toEqual({
      source: 'vip',
      last_success: '2026-05-02T03:00:00Z',
      age_seconds: 9 * 3600,
      max_age_seconds: 26 * 3600,
      fresh: true,
      last_run_status: 'succeeded',
      reject_rate: 0,
      reject_threshold: 0.05,
      pending: 0,
      due: false,
      alerts: [],
    });
  });

  it('alerts on a stale source, one that never synced, and a failed last run', () => {
    const stale = sourceStatus('vip', source(), { lastSuccess: run('2026-04-30T03:00:00Z'), lastRun: run('2026-04-30T03:00:00Z') }, now, 0.05);
    expect(stale.fresh).toBe(false);
    expect(stale.alerts).toEqual([{ source: 'vip', kind: 'stale', message: 'vip last synced 2d ago, over its freshness SLO of 26h' }]);

    const never = sourceStatus('vip', source(), {}, now, 0.05);
    expect(never).toMatchObject({ fresh: false, age_seconds: null, last_run_status: null, reject_rate: null, due: true });
    expect(never.alerts.map((a) => a.kind)).toEqual(['never_synced']);

    const failed = sourceStatus('vip', source(), { lastSuccess: run('2026-05-02T03:00:00Z'), lastRun: run('2026-05-02T04:00:00Z', { status: 'failed', error: 'boom' }) }, now, 0.05);
    expect(failed.alerts).toEqual([{ source: 'vip', kind: 'run_failed', message: 'the last run of vip failed: boom' }]);
  });

  it('has no freshness verdict without an SLO', () => {
    const { freshness: _, ...noSlo } = source();
    const st = sourceStatus('vip', noSlo as SourceSpec, {}, now, 0.05);
    expect(st).toMatchObject({ fresh: null, max_age_seconds: null, alerts: [] });
  });

  it('counts rows tidemark rejected and entries Customer.io refused in the reject rate', () => {
    const last = run('2026-05-02T03:00:00Z', { counts: { read: 200, rejected: 4, refused: 8 } });
    const st = sourceStatus('vip', source(), { lastSuccess: last, lastRun: last }, now, 0.05);
    expect(st.reject_rate).toBe(0.06);
    expect(st.alerts).toEqual([{ source: 'vip', kind: 'reject_rate', message: '6.0% of the rows vip read were rejected or refused by Customer.io (threshold 5.0%)' }]);
    expect(sourceStatus('vip', source(), { lastSuccess: last, lastRun: last }, now, 0.1).alerts).toEqual([]);
  });

  it('holds the reject rate against the source\'s max_rejected when it declares one', () => {
    const last = run('2026-05-02T03:00:00Z', { counts: { read: 200, rejected: 4, refused: 8 } });
    expect(sourceStatus('vip', source({ max_rejected: '10%' }), { lastSuccess: last, lastRun: last }, now, 0.05)).toMatchObject({ reject_threshold: 0.1, alerts: [] });
    expect(sourceStatus('vip', source({ max_rejected: 0.01 }), { lastSuccess: last, lastRun: last }, now, 0.5).alerts.map((a) => a.kind)).toEqual(['reject_rate']);
    expect([rejectThreshold({}), rejectThreshold({ max_rejected: '2.5%' }), rejectThreshold({ max_rejected: 0 }), rejectThreshold({}, 0.2)]).toEqual([0.05, 0.025, 0, 0.2]);
  });

  it('never counts a partial run as a success, and alerts while entries wait for the next run', () => {
    // The last success is old: the partial run after it does not make the source fresh.
    const partial = run('2026-05-02T11:00:00Z', { status: 'partial', error: '3 entries wait for the next run' });
    const st = sourceStatus('vip', source(), { lastSuccess: run('2026-04-30T03:00:00Z'), lastRun: partial, pending: 3 }, now, 0.05);
    expect(st).toMatchObject({ fresh: false, last_run_status: 'partial', pending: 3, due: true });
    expect(st.alerts.map((a) => [a.kind, a.message])).toEqual([
      ['stale', 'vip last synced 2d ago, over its freshness SLO of 26h'],
      ['run_incomplete', 'the last run of vip did not deliver everything: 3 entries wait for the next run'],
    ]);
    // Entries left by an earlier run still wait even when the last run is not the one that left them.
    const waiting = sourceStatus('vip', source(), { lastSuccess: run('2026-05-02T03:00:00Z'), lastRun: run('2026-05-02T03:00:00Z'), pending: 2 }, now, 0.05);
    expect(waiting.alerts).toEqual([{ source: 'vip', kind: 'run_incomplete', message: '2 entries of vip wait to be sent on its next run' }]);
  });

  it('gives a run still marked running no reject rate (its counts are not final)', () => {
    const st = sourceStatus('vip', source(), { lastSuccess: run('2026-05-02T03:00:00Z'), lastRun: run('2026-05-02T11:00:00Z', { status: 'running', counts: {} }) }, now, 0.05);
    expect(st).toMatchObject({ last_run_status: 'running', reject_rate: null, alerts: [] });
  });
});

describe('formatAge', () => {
  it.each([
    [59, '59s'],
    [119, '119s'],
    [120, '2m'],
    [7199, '120m'],
    [7200, '2h'],
    [172_799, '48h'],
    [172_800, '2d'],
  ])('%i seconds → %s', (s, text) => expect(formatAge(s)).toBe(text));
});
