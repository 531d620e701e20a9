import type { Migration } from './migration.ts';

/**
 * Reviewed plans (issue 14): the plan made for a pull request's head commit, kept until the merge applies
 * it. Keyed by environment and the commit the specs were read at, so a push to the pull request makes a
 * new row and the merge finds exactly the plan made for what was reviewed last.
 *
 * - `plan_json` is the whole Plan (config changes, counts of the data impact; no customer identifiers);
 *   `plan_digest` is `planDigest(plan)`, what the apply journal records, so a reader can tell which kept
 *   plan an apply ran.
 * - `applied_at` / `outcome` are set once an apply ran it (`applied`, `failed`, `stale`), so a re-run of
 *   the merge job says "already applied" instead of reporting the applied plan as stale.
 */
export const reviewedPlans: Migration = {
  version: 8,
  name: 'reviewed-plans',
  sql: `
CREATE TABLE reviewed_plans (
  env TEXT NOT NULL,
  head_sha TEXT NOT NULL,
  pr_number INTEGER NOT NULL,
  plan_digest TEXT NOT NULL,
  plan_json TEXT NOT NULL,
  created_at TEXT NOT NULL,
  applied_at TEXT,
  outcome TEXT,
  PRIMARY KEY (env, head_sha)
);
CREATE INDEX reviewed_plans_pr ON reviewed_plans (env, pr_number, created_at);
`,
};
