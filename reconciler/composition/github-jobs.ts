/**
 * The GitHub loop's use cases (issue 14): the plan kept for a pull request's head commit and posted on it,
 * that plan applied on merge, the scheduled run's problems as issues, and drift as a pull request. Each
 * joins an open environment (plan, apply, state) with reconciler/github (the calls to GitHub).
 */
import { simpleGit } from 'simple-git';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { planDigest } from '../apply/safety.ts';
import type { ChangeResult } from '../apply/executor.ts';
import { hasErrors } from '../core/diagnostics.ts';
import { UserError } from '../core/user-error.ts';
import type { GitHubRepo } from '../github/client.ts';
import { getPullRequest, pullRequestMergedAs, upsertSticky, type PullRequestInfo, type StickyResult } from '../github/comments.ts';
import { driftReportPath, renderDriftMarkdown, upsertDriftPullRequest, type DriftPullRequestResult, type SurveyDrift } from '../github/drift-pr.ts';
import { syncProblemIssues, type IssueSyncResult } from '../github/issues.ts';
import { renderPlanComment } from '../github/plan-comment.ts';
import { problemReport, type StepOutcome } from '../github/problems.ts';
import type { DriftItem } from '../plan/drift.ts';
import { readSavedPlan, type Plan } from '../plan/plan.ts';
import { codeSpan, mdText } from '../plan/render/markdown.ts';
import type { ReviewedPlan } from '../state/reviewed-plans.ts';
import { responseMappingStatus } from './responses-job.ts';
import { checkSurveyPayloads } from './survey-mapping.ts';
import { checkFreshness } from './sync-job.ts';
import { applyChanges, detectDrift, makePlan, type OpenEnvironment } from './use-cases.ts';

/** The label that plans deletes on a pull request (GitHub compares label names without case). */
export const ALLOW_DELETE_LABEL = 'allow-delete';

const short = (sha: string) => sha.slice(0, 12);

export type PullRequestPlanOutcome =
  | { status: 'kept'; plan: Plan; headSha: string; comment: StickyResult }
  | { status: 'invalid'; plan: Plan; headSha: string; comment: StickyResult }
  | { status: 'skipped'; reason: string };

/**
 * Plans the environment for the pull request's head commit (the specs in the working tree are that
 * commit's), keeps the plan in the state under (environment, head sha) for the merge to apply, and posts
 * it as the environment's sticky comment. Deletes are planned only when the pull request carries the
 * `allow-delete` label, read from GitHub, never from text in the workflow.
 */
export async function planPullRequest(ws: OpenEnvironment, gh: GitHubRepo, o: { pr: number; sha?: string }): Promise<PullRequestPlanOutcome> {
  const pr = await getPullRequest(gh, o.pr);
  if (pr.state !== 'open') return { status: 'skipped', reason: `pull request #${pr.number} is ${pr.merged ? 'merged' : pr.state}: nothing to plan for it` };
  if (pr.headRepo !== gh.fullName) {
    return { status: 'skipped', reason: `pull request #${pr.number} comes from ${pr.headRepo ?? 'a deleted fork'}, not ${gh.fullName}: tidemark plans protected environments for same-repository pull requests only` };
  }
  const headSha = o.sha ?? pr.headSha;
  if (headSha !== pr.headSha) return { status: 'skipped', reason: `pull request #${pr.number} moved on to ${short(pr.headSha)}; this run was for ${short(headSha)} (the run for the new head plans it)` };
  const allowDelete = pr.labels.some((l) => l.toLowerCase() === ALLOW_DELETE_LABEL);
  const plan = await makePlan(ws, { allowDelete, adoptByName: false, targets: [] });
  const invalid = hasErrors(plan.diagnostics);
  if (!invalid) await ws.conn.store.reviewedPlans.keep({ head_sha: headSha, pr_number: pr.number, plan_digest: planDigest(plan), plan_json: JSON.stringify(plan) });
  const preamble = [
    `Planned for head commit \`${short(headSha)}\`${allowDelete ? ` with deletes (the \`${ALLOW_DELETE_LABEL}\` label)` : `; deletes are shown blocked unless the pull request has the \`${ALLOW_DELETE_LABEL}\` label`}.`,
    invalid
      ? '**This plan has errors and was not kept: merging applies nothing until a plan without errors is made for the head commit.**'
      : 'On merge, exactly this plan is applied if nothing it was made from has moved; otherwise nothing is applied, what moved is commented here and a fresh plan is posted.',
  ].join(' ');
  const comment = await upsertSticky(gh, pr.number, 'plan', ws.conn.environment, renderPlanComment(plan, { preamble }));
  return invalid ? { status: 'invalid', plan, headSha, comment } : { status: 'kept', plan, headSha, comment };
}

export type MergeApplyOutcome =
  | { status: 'applied'; pr: number; headSha: string; results: ChangeResult[]; ok: boolean; next: string[] }
  | { status: 'nothing'; pr: number; headSha: string }
  | { status: 'already-applied'; pr: number; headSha: string; at: string }
  | { status: 'stale'; pr: number; headSha: string; moved: string[]; fresh: Plan }
  | { status: 'no-plan'; pr: number; reason: string; fresh: Plan }
  | { status: 'refused'; pr: number; headSha: string; reason: string };

/** The kept plan a merge applies: the newest of those made for the head commit or, after a stale one, for the merge commit. */
async function keptPlanFor(ws: OpenEnvironment, pr: PullRequestInfo): Promise<ReviewedPlan | undefined> {
  const shas = new Set([pr.headSha, ...(pr.mergeCommitSha ? [pr.mergeCommitSha] : [])]);
  return (await ws.conn.store.reviewedPlans.ofPullRequest(pr.number)).find((p) => shas.has(p.head_sha));
}

/**
 * Applies, after its merge, exactly the plan kept for the pull request. A stale plan applies nothing: the
 * pull request gets what moved, and a fresh plan (kept under the merge commit, applied by running the
 * workflow again once someone has read it). Every outcome is commented on the pull request.
 */
export async function applyMergedPullRequest(
  ws: OpenEnvironment,
  gh: GitHubRepo,
  o: { pr?: number; commit?: string; who: string; onChange?: (r: ChangeResult) => void },
): Promise<MergeApplyOutcome> {
  const env = ws.conn.environment;
  const number = o.pr ?? (o.commit ? await pullRequestMergedAs(gh, o.commit) : undefined);
  if (number === undefined) throw new UserError(`commit ${o.commit} is not the merge of a pull request: nothing reviewed to apply`, { hint: 'Apply a saved plan with `tidemark apply FILE` instead.' });
  const pr = await getPullRequest(gh, number);
  if (!pr.merged) throw new UserError(`pull request #${pr.number} is not merged: its plan is applied only after the merge`);
  const kept = await keptPlanFor(ws, pr);
  const sticky = (body: string) => upsertSticky(gh, pr.number, 'apply', env, body);
  const heading = `## Apply to ${mdText(env)}`;
  const freshPlan = async (why: string): Promise<Plan> => {
    const options = kept ? readSavedPlan(JSON.parse(kept.plan_json) as Plan).options : undefined;
    const fresh = await makePlan(ws, { allowDelete: options?.allow_delete ?? pr.labels.some((l) => l.toLowerCase() === ALLOW_DELETE_LABEL), adoptByName: false, targets: [] });
    const keep = !hasErrors(fresh.diagnostics) && pr.mergeCommitSha !== null;
    if (keep) await ws.conn.store.reviewedPlans.keep({ head_sha: pr.mergeCommitSha!, pr_number: pr.number, plan_digest: planDigest(fresh), plan_json: JSON.stringify(fresh) });
    const commit = pr.mergeCommitSha ? ` for the merge commit \`${short(pr.mergeCommitSha)}\`` : '';
    const next = keep
      ? 'Read it, then run the apply workflow again: it applies exactly this plan if nothing moved since.'
      : '**It has errors and was not kept: fix the specs in a new pull request.**';
    await upsertSticky(gh, pr.number, 'plan', env, renderPlanComment(fresh, { preamble: `**Fresh plan${commit}**: ${why} Nothing was applied. ${next}` }));
    return fresh;
  };
  if (!kept) {
    const reason = `no plan was kept for head commit \`${short(pr.headSha)}\` of #${pr.number} in ${env}`;
    await sticky(
      `${heading}: nothing applied\n\nNo plan was kept for head commit \`${short(pr.headSha)}\` (the production plan job did not run for it, or its plan had errors), so nothing reviewed can be applied. A fresh plan is posted above.\n`,
    );
    const fresh = await freshPlan('no plan had been kept for the reviewed head commit.');
    return { status: 'no-plan', pr: pr.number, reason, fresh };
  }
  if (kept.outcome === 'applied') return { status: 'already-applied', pr: pr.number, headSha: kept.head_sha, at: kept.applied_at ?? '' };
  const saved = readSavedPlan(JSON.parse(kept.plan_json) as Plan);
  const outcome = await applyChanges(ws, { saved, options: { allowDelete: false, adoptByName: false, targets: [] }, who: o.who, ...(o.onChange ? { onChange: o.onChange } : {}) });
  const which = `the plan reviewed for \`${short(kept.head_sha)}\``;
  switch (outcome.status) {
    case 'stale': {
      await ws.conn.store.reviewedPlans.mark(kept.head_sha, 'stale');
      await sticky(`${heading}: nothing applied, ${which} is stale\n\nWhat moved since it was made:\n\n${outcome.moved.map((m) => `- ${mdText(m)}\n`).join('')}\nA fresh plan is posted above.\n`);
      const fresh = await freshPlan('the reviewed plan was stale.');
      return { status: 'stale', pr: pr.number, headSha: kept.head_sha, moved: outcome.moved, fresh };
    }
    case 'nothing':
      await ws.conn.store.reviewedPlans.mark(kept.head_sha, 'applied');
      await sticky(`${heading}: no changes\n\n${which} changes nothing: ${mdText(ws.conn.target.label)} already matches the specs.\n`);
      return { status: 'nothing', pr: pr.number, headSha: kept.head_sha };
    case 'done': {
      const r = outcome.result;
      await ws.conn.store.reviewedPlans.mark(kept.head_sha, r.ok ? 'applied' : 'failed');
      const count = (s: string) => r.results.filter((x) => x.status === s).length;
      let body = `${heading}: ${r.ok ? 'complete' : '**failed**'}\n\nApplied ${which} on ${mdText(ws.conn.target.label)}: ${count('applied')} applied, ${count('failed')} failed, ${count('skipped')} skipped, ${count('blocked')} blocked.\n\n`;
      body += '| Result | Address | Note |\n| --- | --- | --- |\n';
      for (const c of r.results) body += `| ${mdText(c.status)} | ${codeSpan(c.address, true)} | ${c.message ? mdText(c.message) : ''} |\n`;
      if (r.next.length) body += `\n${r.next.map((n) => `${mdText(n)}\n`).join('')}`;
      body += `\n<sub>apply run ${mdText(r.runId)}</sub>\n`;
      await sticky(body);
      return { status: 'applied', pr: pr.number, headSha: kept.head_sha, results: r.results, ok: r.ok, next: r.next };
    }
    case 'locked':
      await sticky(`${heading}: nothing applied\n\nAnother apply holds the lock (${mdText(outcome.holder)}). Run the apply workflow again when it is done.\n`);
      return { status: 'refused', pr: pr.number, headSha: kept.head_sha, reason: outcome.holder };
    case 'invalid':
      await sticky(`${heading}: nothing applied\n\n${which} has errors; it cannot be applied.\n`);
      return { status: 'refused', pr: pr.number, headSha: kept.head_sha, reason: 'the plan has errors' };
    default:
      await sticky(`${heading}: nothing applied (${mdText(outcome.status)})\n`);
      return { status: 'refused', pr: pr.number, headSha: kept.head_sha, reason: outcome.status };
  }
}

/** Opens, updates, reopens and closes the issues of the scheduled run's problems. */
export async function reportProblems(
  ws: OpenEnvironment,
  gh: GitHubRepo,
  o: { steps: ReadonlyMap<string, StepOutcome>; rejectRateThreshold: number; runUrl?: string },
): Promise<{ problems: number; issues: IssueSyncResult }> {
  const { checkedAt, statuses } = await checkFreshness(ws, o.rejectRateThreshold);
  const mapping = await responseMappingStatus(ws);
  const report = problemReport({ environment: ws.conn.environment, checkedAt: checkedAt.toISOString(), statuses, steps: o.steps, mapping, ...(o.runUrl ? { runUrl: o.runUrl } : {}) });
  const issues = await syncProblemIssues(gh, ws.conn.environment, report, checkedAt.toISOString());
  return { problems: report.problems.length, issues };
}

/**
 * Spec files changed in the working tree (by `drift --adopt`, which edits tracked files in place), path
 * from the repository root → content. Untracked files are left out: the sandbox world's exports and other
 * generated data must never reach a commit.
 */
async function changedSpecFiles(ws: OpenEnvironment): Promise<Map<string, string>> {
  const git = simpleGit({ baseDir: ws.cwd });
  if (!(await git.checkIsRepo())) return new Map();
  const root = (await git.revparse(['--show-toplevel'])).trim();
  const status = await git.status(['--', ws.load.dir]);
  const files = new Map<string, string>();
  for (const f of [...status.modified].sort()) {
    files.set(f, await readFile(path.join(root, f), 'utf8'));
  }
  return files;
}

/** What `drift --format json` reports (the drift found before `--adopt` rewrote the specs). */
export interface DriftJson {
  items: DriftItem[];
  surveys: Array<{ address: string; survey: string; status: string; notRead?: Array<{ field: string }> }>;
}

function surveyDrift(findings: DriftJson['surveys']): SurveyDrift[] {
  return findings
    .filter((f) => f.status !== 'ok' && f.status !== 'unchecked')
    .map((f) => ({
      address: f.address,
      survey: f.survey,
      what: f.status === 'drift' ? `no longer reads ${(f.notRead ?? []).map((n) => n.field).join(', ')}, which the target sends` : f.status === 'missing_survey' ? 'the survey does not exist' : 'the survey has no flow tidemark could read',
    }));
}

/**
 * Opens, updates or closes the environment's drift pull request. `before` is the drift as `drift --adopt`
 * reported it before rewriting the specs (the rewritten specs no longer differ from live, so the drift is
 * shown as it was); without it the drift is read now. Spec files changed in the working tree go on the branch.
 */
export async function driftPullRequest(ws: OpenEnvironment, gh: GitHubRepo, o: { base?: string; before?: DriftJson }): Promise<DriftPullRequestResult & { drifted: number; adopted: string[] }> {
  const report = o.before ?? { items: (await detectDrift(ws)).items, surveys: (await checkSurveyPayloads(ws)).findings };
  const surveys = surveyDrift(report.surveys);
  const drifted = report.items.filter((i) => i.type !== 'unmanaged_match').length + surveys.length;
  const files = await changedSpecFiles(ws);
  const adopted = [...files.keys()];
  const markdown = renderDriftMarkdown({ environment: ws.conn.environment, target: ws.conn.target.label, items: report.items, surveys, adopted });
  files.set(driftReportPath(ws.conn.environment), markdown);
  const at = ws.clock.now().toISOString();
  const result = await upsertDriftPullRequest(gh, {
    environment: ws.conn.environment,
    drifted: drifted > 0 || adopted.length > 0,
    title: `tidemark: drift in ${ws.conn.environment}`,
    body: markdown,
    files,
    ...(o.base ? { base: o.base } : {}),
    at,
  });
  return { ...result, drifted, adopted };
}

