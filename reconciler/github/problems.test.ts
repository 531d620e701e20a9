import { describe, expect, it } from 'vitest';
import { parseProblemMarker, parseStep, problemMarker, problemReport, type SourceFacts } from './problems.ts';

const source = (o: Partial<SourceFacts> & { source: string }): SourceFacts => ({
  last_success: '2026-12-02T08:00:00.000Z',
  age_seconds: 3600,
  max_age_seconds: 7200,
  last_run_status: 'succeeded',
  reject_rate: 0,
  pending: 0,
  alerts: [],
  ...o,
});

describe('problemReport', () => {
  const report = problemReport({
    environment: 'production',
    checkedAt: '2026-12-02T09:00:00.000Z',
    statuses: [
      source({ source: 'orders', age_seconds: 90_000, alerts: [{ kind: 'stale' }, { kind: 'run_failed' }] }),
      source({ source: 'loyalty', last_success: null, age_seconds: null, alerts: [{ kind: 'never_synced' }, { kind: 'reject_rate' }], reject_rate: 0.2 }),
      source({ source: 'returns' }),
    ],
    steps: new Map([
      ['surveys', 'failure'],
      ['audiences', 'success'],
      ['responses', 'skipped'],
    ]),
    runUrl: 'https://github.com/acme/specs/actions/runs/42',
  });

  it('makes one problem per source and kind, and per failed step, each with its labels and marker', () => {
    expect(report.problems.map((p) => [p.key, p.labels.join(',')])).toEqual([
      ['stale:orders', 'tidemark,tidemark:stale'],
      ['failed:orders', 'tidemark,tidemark:failed'],
      ['stale:loyalty', 'tidemark,tidemark:stale'],
      ['rejects:loyalty', 'tidemark,tidemark:rejects'],
      ['step:surveys', 'tidemark,tidemark:failed'],
    ]);
    for (const p of report.problems) expect(parseProblemMarker(p.body)).toEqual({ environment: 'production', key: p.key });
    expect(report.problems[0]!.title).toBe('tidemark: source orders is stale in production');
    expect(report.problems[0]!.body).toContain('last synced 25.0 h ago');
    expect(report.problems[2]!.body).toContain('has never synced successfully');
    expect(report.problems[0]!.body).toContain('by [this run](https://github.com/acme/specs/actions/runs/42)');
  });

  it('lists what recovered: the kinds a checked source does not have, and the steps that succeeded; a skipped step is not checked', () => {
    expect([...report.recovered.keys()].sort()).toEqual(['failed:loyalty', 'failed:returns', 'rejects:orders', 'rejects:returns', 'stale:returns', 'step:audiences']);
    expect(report.recoveredPrefixes.size).toBe(0);
  });

  it('escapes names so no marker or markdown can be injected', () => {
    const odd = problemReport({ environment: 'eu west', checkedAt: 'now', statuses: [source({ source: 'a-->b', alerts: [{ kind: 'stale' }] })], steps: new Map() });
    expect(odd.problems[0]!.title).toBe('tidemark: source a--_b is stale in eu_west');
    expect(parseProblemMarker(odd.problems[0]!.body)).toEqual({ environment: 'eu west', key: 'stale:a-->b' });
    expect(problemMarker('eu west', 'stale:a-->b').match(/-->/g)).toHaveLength(1);
  });

  it('parses step outcomes as GitHub writes them', () => {
    expect(parseStep('surveys=failure')).toEqual(['surveys', 'failure']);
    expect(parseStep('surveys=')).toBeUndefined();
    expect(parseStep('sur veys=success')).toBeUndefined();
    expect(parseStep('x=neutral')).toBeUndefined();
  });
});
