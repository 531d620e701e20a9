/**
 * Reviewed plans (migration 0008): the plan made for a pull request's head commit, kept in the state so
 * the merge applies exactly what the pull request showed. A plan holds config changes and counts only,
 * never a customer identifier, so it may live next to the apply journal.
 */
import type { AudienceContext } from './audiences.ts';

export type ReviewedPlanOutcome = 'applied' | 'failed' | 'stale';

export interface ReviewedPlan {
  head_sha: string;
  pr_number: number;
  plan_digest: string;
  /** The Plan as JSON text, exactly as kept. */
  plan_json: string;
  /** ISO-8601 UTC. */
  created_at: string;
  applied_at: string | null;
  outcome: ReviewedPlanOutcome | null;
}

interface Row extends Omit<ReviewedPlan, 'pr_number'> {
  pr_number: number | string;
}

const COLUMNS = 'head_sha, pr_number, plan_digest, plan_json, created_at, applied_at, outcome';
const fromRow = (r: Row): ReviewedPlan => ({ ...r, pr_number: Number(r.pr_number) });

/**
 * Keeps the plan for (environment, head commit), replacing one kept before for the same commit (a
 * re-run of the plan job) unless that one was already applied: an applied plan is history.
 */
export async function keepReviewedPlan(ctx: AudienceContext, p: Pick<ReviewedPlan, 'head_sha' | 'pr_number' | 'plan_digest' | 'plan_json'>, at: string): Promise<boolean> {
  const n = await ctx.db.run(
    `INSERT INTO reviewed_plans (env, head_sha, pr_number, plan_digest, plan_json, created_at) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (env, head_sha) DO UPDATE SET pr_number = excluded.pr_number, plan_digest = excluded.plan_digest,
       plan_json = excluded.plan_json, created_at = excluded.created_at, applied_at = NULL, outcome = NULL
     WHERE reviewed_plans.applied_at IS NULL`,
    [ctx.env, p.head_sha, p.pr_number, p.plan_digest, p.plan_json, at],
  );
  return n > 0;
}

export async function getReviewedPlan(ctx: AudienceContext, headSha: string): Promise<ReviewedPlan | undefined> {
  const row = await ctx.db.get<Row>(`SELECT ${COLUMNS} FROM reviewed_plans WHERE env = $1 AND head_sha = $2`, [ctx.env, headSha]);
  return row ? fromRow(row) : undefined;
}

/** The plans kept for a pull request, newest first. */
export async function reviewedPlansOf(ctx: AudienceContext, prNumber: number): Promise<ReviewedPlan[]> {
  const rows = await ctx.db.all<Row>(`SELECT ${COLUMNS} FROM reviewed_plans WHERE env = $1 AND pr_number = $2 ORDER BY created_at DESC, head_sha`, [ctx.env, prNumber]);
  return rows.map(fromRow);
}

export async function markReviewedPlan(ctx: AudienceContext, headSha: string, outcome: ReviewedPlanOutcome, at: string): Promise<void> {
  await ctx.db.run('UPDATE reviewed_plans SET applied_at = $3, outcome = $4 WHERE env = $1 AND head_sha = $2', [ctx.env, headSha, at, outcome]);
}
