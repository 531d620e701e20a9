/**
 * The reviewed-plan store (migration 8) on both backends: kept per environment and head commit, replaced
 * by a re-run until it is applied, found per pull request newest first, marked with its outcome.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { stateBackends, testClock } from '../support/state-backends.ts';

const backends = await stateBackends('reviewed_plans');
afterAll(async () => {
  for (const b of backends) await b.cleanup();
});

const sha = (c: string) => c.repeat(40).slice(0, 40);

describe.each(backends.map((b) => [b.name, b] as const))('reviewed plans on %s', (_name, b) => {
  it.skipIf(!b.available)('keep, replace until applied, list per pull request, mark, and stay per environment', async () => {
    const loc = await b.newLocation();
    const clock = testClock('2026-12-01T09:00:00.000Z');
    const staging = await b.open(loc, { env: 'staging', clock });
    const production = await b.open(loc, { env: 'production', clock });
    try {
      const kept = staging.reviewedPlans;
      expect(await kept.get(sha('a'))).toBeUndefined();
      expect(await kept.keep({ head_sha: sha('a'), pr_number: 7, plan_digest: 'sha256:1', plan_json: '{"v":1}' })).toBe(true);
      clock.advance(60_000);
      expect(await kept.keep({ head_sha: sha('b'), pr_number: 7, plan_digest: 'sha256:2', plan_json: '{"v":2}' })).toBe(true);
      clock.advance(60_000);
      // The plan job re-run for the same head: replaced.
      expect(await kept.keep({ head_sha: sha('a'), pr_number: 7, plan_digest: 'sha256:3', plan_json: '{"v":3}' })).toBe(true);
      expect(await kept.get(sha('a'))).toEqual({ head_sha: sha('a'), pr_number: 7, plan_digest: 'sha256:3', plan_json: '{"v":3}', created_at: '2026-12-01T09:02:00.000Z', applied_at: null, outcome: null });
      expect((await kept.ofPullRequest(7)).map((p) => p.plan_digest)).toEqual(['sha256:3', 'sha256:2']);
      expect(await kept.ofPullRequest(8)).toEqual([]);

      clock.advance(60_000);
      await kept.mark(sha('a'), 'applied');
      expect(await kept.get(sha('a'))).toEqual(expect.objectContaining({ applied_at: '2026-12-01T09:03:00.000Z', outcome: 'applied' }));
      // An applied plan is history: a late re-run of the plan job does not replace it.
      expect(await kept.keep({ head_sha: sha('a'), pr_number: 7, plan_digest: 'sha256:4', plan_json: '{"v":4}' })).toBe(false);
      expect((await kept.get(sha('a')))!.plan_digest).toBe('sha256:3');
      await kept.mark(sha('b'), 'stale');
      expect((await kept.get(sha('b')))!.outcome).toBe('stale');

      expect(await production.reviewedPlans.get(sha('a'))).toBeUndefined();
      expect(await production.reviewedPlans.ofPullRequest(7)).toEqual([]);
    } finally {
      await staging.close();
      await production.close();
    }
  });
});
