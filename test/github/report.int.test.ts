/**
 * `tidemark github report` through the CLI against the fake GitHub: one labelled issue per problem of the
 * scheduled run (a stale or failing source, a failed step), found again by the marker in its body, so a
 * second run opens nothing; closed with a comment when the problem recovers, reopened when it comes back;
 * no personal data in any issue, even when a run's error quotes a person.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixedClock } from '../../reconciler/core/clock.ts';
import { openStateStore } from '../../reconciler/state/index.ts';
import { personalData, tidemark, useFakeGitHub } from './support.ts';

const { gh, project } = useFakeGitHub();
const T0 = '2026-12-02T09:00:00.000Z';
const LATER = '2026-12-02T09:05:00Z';

/** Records sync runs in the project's sandbox state, as `sync run` would have. */
async function recordRuns(dir: string, runs: Array<{ source: string; status: 'succeeded' | 'failed'; error?: string }>): Promise<void> {
  const store = await openStateStore({ dir: path.join(dir, '.tidemark'), env: 'staging.sandbox', clock: fixedClock(T0) });
  try {
    for (const r of runs) {
      const id = await store.startRun(r.source, { last_sync_at: null });
      await store.finishRun(id, { status: r.status, counts: { read: 100, rejected: 0, sent: r.status === 'succeeded' ? 100 : 0 }, ...(r.error ? { error: r.error } : {}) });
    }
  } finally {
    await store.close();
  }
}

describe('github report', () => {
  it('opens one labelled issue per problem, deduplicates them, closes them on recovery and reopens them when they come back', async () => {
    const fake = gh();
    const dir = await project();
    const status = JSON.parse((await tidemark(dir, ['status', '--env', 'staging', '--format', 'json', '--now', T0])).stdout) as {
      sources: Array<{ source: string }>;
      responses: Array<{ kind: string; target: string }>;
    };
    const sources = status.sources.map((s) => s.source);
    expect(sources.length).toBeGreaterThanOrEqual(5);
    // The example's reason codes that no segment uses yet: status alerts on them, and so do issues.
    const mapping = status.responses.map((r) => `tidemark: survey target ${r.target}: reason codes feed nothing in staging`);
    expect(status.responses.map((r) => r.kind)).toEqual(['code_feeds_nothing', 'code_feeds_nothing', 'code_feeds_nothing']);

    const production = fake.addIssue({ title: 'production is stale', body: '<!-- tidemark-problem environment=production key=stale%3Aloyalty_tiers -->\nproduction', labels: ['tidemark'] });
    const human = fake.addIssue({ title: 'a question about tidemark', body: 'is the loyalty source stale?', labels: ['tidemark'] });
    const first = await tidemark(dir, ['github', 'report', '--env', 'staging', '--now', T0, '--step', 'surveys=failure', '--step', 'audiences=success'], fake.env());
    expect(first.code, first.stderr).toBe(3);
    const issues = () => fake.issues.filter((i) => !i.pull && i.number !== production && i.number !== human);
    const open = () => issues().filter((i) => i.state === 'open');
    expect(open().map((i) => i.title).sort()).toEqual(
      [...sources.map((s) => `tidemark: source ${s} is stale in staging`), 'tidemark: surveys failed in staging', ...mapping].sort(),
    );
    for (const i of issues()) {
      expect(i.body.split('\n')[0]).toMatch(/^<!-- tidemark-problem environment=staging key=(stale%3A\w+|step%3Asurveys|responses%3A\w+%3Acode_feeds_nothing) -->$/);
      expect(i.labels).toEqual(i.title.includes('surveys failed') ? ['tidemark', 'tidemark:failed'] : i.title.includes('survey target') ? ['tidemark', 'tidemark:responses'] : ['tidemark', 'tidemark:stale']);
    }
    expect(fake.labels.get('tidemark:stale')).toEqual(expect.objectContaining({ color: 'fbca04', description: 'Opened and closed by tidemark' }));
    expect([...fake.labels.keys()].sort()).toEqual(['tidemark', 'tidemark:failed', 'tidemark:responses', 'tidemark:stale']);
    expect(first.stdout).toMatch(new RegExp(`^${sources.length + 4} problem\\(s\\) in staging on the embedded sandbox .*: opened #`));

    // The same problems again: nothing is opened or written.
    const writes = fake.writes().length;
    const second = await tidemark(dir, ['github', 'report', '--env', 'staging', '--now', T0, '--step', 'surveys=failure'], fake.env());
    expect(second.code).toBe(3);
    expect(second.stdout).toMatch(/still open #/);
    expect(fake.writes().length).toBe(writes);
    expect(issues()).toHaveLength(sources.length + 4);

    // Every source but the first synced; the first one's run failed with an error quoting a person.
    const [failing, ...synced] = sources;
    await recordRuns(dir, [...synced.map((source) => ({ source, status: 'succeeded' as const })), { source: failing!, status: 'failed', error: 'Customer.io refused jane.doe@example.com (id cus_8812)' }]);
    const third = await tidemark(dir, ['github', 'report', '--env', 'staging', '--now', LATER, '--step', 'surveys=success'], fake.env());
    expect(third.code, third.stderr).toBe(3);
    expect(open().map((i) => i.title).sort()).toEqual([...mapping, `tidemark: source ${failing} is failing in staging`, `tidemark: source ${failing} is stale in staging`].sort());
    const closed = issues().filter((i) => i.state === 'closed');
    expect(closed).toHaveLength(synced.length + 1);
    for (const i of closed) {
      const comments = fake.commentsOn(i.number);
      expect(comments.map((c) => c.body)).toEqual([expect.stringMatching(/^Recovered: .* \(checked 2026-12-02T09:05:00\.000Z\)\. Closing\.$/)]);
    }
    const failingIssue = open().find((i) => i.title.includes('failing'))!;
    expect(failingIssue.labels).toEqual(['tidemark', 'tidemark:failed']);
    expect(failingIssue.body).toContain('| last run | failed |');
    for (const i of issues()) {
      expect(personalData(i.body)).toEqual([]);
      expect(i.body).not.toContain('jane');
    }

    // The surveys step fails again: its issue is reopened, not duplicated.
    const surveysIssue = issues().find((i) => i.title === 'tidemark: surveys failed in staging')!;
    const fourth = await tidemark(dir, ['github', 'report', '--env', 'staging', '--now', LATER, '--step', 'surveys=failure'], fake.env());
    expect(fourth.code).toBe(3);
    expect(fourth.stdout).toContain(`reopened #${surveysIssue.number}`);
    expect(surveysIssue.state).toBe('open');
    expect(issues().filter((i) => i.title === 'tidemark: surveys failed in staging')).toHaveLength(1);
    expect(fake.commentsOn(surveysIssue.number).at(-1)!.body).toMatch(/^The problem is back/);

    // Issues of another environment, and issues people wrote, were left alone.
    for (const n of [production, human]) {
      expect(fake.issue(n)!.state).toBe('open');
      expect(fake.commentsOn(n)).toEqual([]);
    }
    expect(fake.writes().filter((c) => c.path.endsWith(`/issues/${production}`) || c.path.endsWith(`/issues/${human}`))).toEqual([]);
    const bad = await tidemark(dir, ['github', 'report', '--env', 'staging', '--step', 'surveys=broken'], fake.env());
    expect([bad.code, bad.stderr]).toEqual([1, expect.stringMatching(/--step must be NAME=success\|failure\|cancelled\|skipped \(got "surveys=broken"\)/)]);
  }, 120_000);
});
