import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { applyMergedPullRequest, driftPullRequest, planPullRequest, reportProblems, type DriftJson } from '../../composition/github-jobs.ts';
import { whoAmI } from '../../composition/use-cases.ts';
import { githubFromEnv } from '../../github/client.ts';
import { upsertSticky, type StickyResult } from '../../github/comments.ts';
import { renderPlanComment } from '../../github/plan-comment.ts';
import { parseStep, type StepOutcome } from '../../github/problems.ts';
import { parseStickyMarker } from '../../github/sticky.ts';
import { DEFAULT_REJECT_RATE_THRESHOLD } from '../../sync/monitor.ts';
import { PLAN_FORMAT_VERSION, readSavedPlan, type Plan } from '../../plan/plan.ts';
import { UserError } from '../../core/user-error.ts';
import { UsageError, type Command, type CommandContext } from '../command.ts';
import { environmentFlags, withEnvironment } from '../environment.ts';
import { parseCommandLine, renderUsage, type CommandLine } from '../options.ts';

const BIN = path.resolve(import.meta.dirname, '../../../bin/tidemark.js');

const line = {
  command: 'github',
  subcommands: ['comment', 'plan', 'apply', 'report', 'drift-pr'],
  positionals: true,
  options: {
    ...environmentFlags,
    pr: { type: 'string', value: 'N', only: ['comment', 'plan', 'apply'], description: 'the pull request number' },
    plan: { type: 'string', value: 'FILE', only: ['comment'], description: 'a plan saved with `tidemark plan --out` (JSON) to post, instead of a markdown file' },
    sha: { type: 'string', value: 'SHA', only: ['plan'], description: "the head commit the specs were checked out at (default: the pull request's head); a run for an older head is skipped" },
    commit: { type: 'string', value: 'SHA', only: ['apply'], description: 'find the merged pull request by its merge commit instead of --pr' },
    step: { type: 'string', multiple: true, value: 'NAME=OUTCOME', only: ['report'], description: "a step of the scheduled job and its outcome (success, failure, cancelled, skipped): a failure opens an issue, a success closes it" },
    'max-reject-rate': { type: 'string', value: 'SHARE', default: String(DEFAULT_REJECT_RATE_THRESHOLD), only: ['report'], description: 'rejected-row share over which a source that declares no max_rejected is a problem' },
    adopt: { type: 'boolean', only: ['drift-pr'], description: 'first run `tidemark drift --adopt` so the branch carries the specs rewritten to match live' },
    base: { type: 'string', value: 'BRANCH', only: ['drift-pr'], description: "the branch the drift pull request targets (default: the repository's default branch)" },
  },
} as const satisfies CommandLine;

export const githubCommand: Command = {
  name: 'github',
  summary: 'The GitHub side: the plan as a sticky PR comment, the reviewed plan applied on merge, problems as issues, drift as a PR',
  line,
  usage: renderUsage(line, {
    synopsis: [
      'github comment --pr N [--env E] (PLAN.md | --plan plan.json)',
      'github plan --pr N [--env E] [--sha SHA]',
      'github apply (--pr N | --commit SHA) [--env E]',
      'github report [--env E] [--step NAME=OUTCOME]...',
      'github drift-pr [--env E] [--adopt] [--base BRANCH]',
    ],
    intro: `comment   posts the plan as the environment's sticky comment on the pull request, edited in place on
          the next run (found by its hidden marker); a plan over 65,536 characters is posted in numbered
          parts, and parts a longer plan left are deleted. Needs no credentials but GitHub's.
plan      plans the environment for the pull request's head commit (the specs checked out), keeps the
          plan in the state for the merge, and posts it as the sticky comment (deletes only with the
          \`allow-delete\` label). Same-repository pull requests only.
apply     after the merge, applies exactly the plan kept for the pull request's head commit if nothing
          moved; otherwise applies nothing, comments what moved and posts a fresh plan. The result is
          commented on the pull request. Exit 0 only when everything planned was applied.
report    opens one labelled issue per problem (a stale or failing source, a failed step), updates it
          while it lasts and closes it when it recovers. Counts and ages only. Exit 3 when there are problems.
drift-pr  opens or updates one pull request (branch tidemark/drift-E) that shows the drift, carrying the
          spec files changed in the working tree (by \`drift --adopt\`); closes it when nothing drifts.

GitHub is reached with GITHUB_TOKEN (or GH_TOKEN) on GITHUB_REPOSITORY, at GITHUB_API_URL (default
https://api.github.com; GitHub Enterprise Server: https://HOST/api/v3). See docs/github.md.`,
  }),
  async run(args, ctx) {
    const { values, positionals } = parseCommandLine(line, args);
    const [sub, ...rest] = positionals;
    if (!sub || !line.subcommands.includes(sub as never)) throw new UsageError(`use one of: ${line.subcommands.map((s) => `github ${s}`).join(', ')}`);
    if (sub !== 'comment' && rest.length) throw new UsageError(`\`github ${sub}\` takes no arguments (got "${rest[0]}")`);
    const pr = values.pr === undefined ? undefined : prNumber(values.pr);
    const log = (l: string) => ctx.stderr.write(`${l}\n`);
    switch (sub) {
      case 'comment': {
        if (pr === undefined) throw new UsageError('--pr N is required');
        const { environment, body } = await commentBody(rest, values.plan, values.env, ctx);
        const gh = githubFromEnv(ctx.env, log);
        const r = await upsertSticky(gh, pr, 'plan', environment, body);
        ctx.stdout.write(`${describeSticky(`the plan for ${environment}`, pr, r)}\n`);
        return 0;
      }
      case 'plan': {
        if (pr === undefined) throw new UsageError('--pr N is required');
        const sha = values.sha === undefined ? undefined : commitSha(values.sha, '--sha');
        const gh = githubFromEnv(ctx.env, log);
        return withEnvironment(ctx, values, async (ws) => {
          const r = await planPullRequest(ws, gh, { pr, ...(sha ? { sha } : {}) });
          if (r.status === 'skipped') {
            ctx.stderr.write(`tidemark github plan: ${r.reason}\n`);
            return 0;
          }
          ctx.stdout.write(`${describeSticky(`the ${ws.conn.environment} plan for ${r.headSha.slice(0, 12)}`, pr, r.comment)}\n`);
          if (r.status === 'invalid') {
            ctx.stderr.write('tidemark github plan: the plan has errors (see the comment): it was not kept, so merging applies nothing.\n');
            return 1;
          }
          ctx.stdout.write(`Kept for the merge: ${ws.conn.environment} @ ${r.headSha}.\n`);
          return 0;
        });
      }
      case 'apply': {
        const commit = values.commit === undefined ? undefined : commitSha(values.commit, '--commit');
        if ((pr === undefined) === (commit === undefined)) throw new UsageError('give exactly one of --pr N and --commit SHA');
        const gh = githubFromEnv(ctx.env, log);
        return withEnvironment(ctx, values, async (ws) => {
          const r = await applyMergedPullRequest(ws, gh, {
            ...(pr !== undefined ? { pr } : {}),
            ...(commit ? { commit } : {}),
            who: whoAmI(ctx.env),
            onChange: (c) => ctx.stdout.write(`${c.status} ${c.address}${c.message ? ` — ${c.message}` : ''}\n`),
          });
          const on = `${ws.conn.environment} on ${ws.conn.target.label}`;
          switch (r.status) {
            case 'applied':
              ctx.stdout.write(`Apply of the plan reviewed on #${r.pr} (${r.headSha.slice(0, 12)}) ${r.ok ? 'complete' : 'failed'} (${on}); commented on #${r.pr}.\n`);
              return r.ok ? 0 : 1;
            case 'nothing':
              ctx.stdout.write(`The plan reviewed on #${r.pr} changes nothing (${on}); commented on #${r.pr}.\n`);
              return 0;
            case 'already-applied':
              ctx.stdout.write(`The plan reviewed on #${r.pr} (${r.headSha.slice(0, 12)}) was already applied at ${r.at}.\n`);
              return 0;
            case 'stale':
              ctx.stderr.write(`tidemark github apply: the plan reviewed on #${r.pr} is stale; nothing was applied:\n${r.moved.map((m) => `  - ${m}\n`).join('')}What moved and a fresh plan are commented on #${r.pr}.\n`);
              return 1;
            case 'no-plan':
              ctx.stderr.write(`tidemark github apply: ${r.reason}; nothing was applied. A fresh plan is posted on #${r.pr}.\n`);
              return 1;
            case 'refused':
              ctx.stderr.write(`tidemark github apply: nothing was applied: ${r.reason}. Commented on #${r.pr}.\n`);
              return 1;
          }
        });
      }
      case 'report': {
        const steps = new Map<string, StepOutcome>();
        for (const s of values.step ?? []) {
          const parsed = parseStep(s);
          if (!parsed) throw new UsageError(`--step must be NAME=success|failure|cancelled|skipped (got "${s}")`);
          steps.set(parsed[0], parsed[1]);
        }
        const threshold = Number(values['max-reject-rate']);
        if (!(threshold >= 0 && threshold <= 1)) throw new UsageError('--max-reject-rate must be a share between 0 and 1');
        const gh = githubFromEnv(ctx.env, log);
        return withEnvironment(ctx, values, async (ws) => {
          const runUrl = workflowRunUrl(ctx.env);
          const r = await reportProblems(ws, gh, { steps, rejectRateThreshold: threshold, ...(runUrl ? { runUrl } : {}) });
          const i = r.issues;
          const list = (what: string, ns: number[]) => (ns.length ? [`${what} ${ns.map((n) => `#${n}`).join(', ')}`] : []);
          const did = [...list('opened', i.opened), ...list('updated', i.updated), ...list('reopened', i.reopened), ...list('closed', i.closed), ...list('still open', i.unchanged)];
          ctx.stdout.write(`${r.problems === 0 ? 'No problems' : `${r.problems} problem(s)`} in ${ws.conn.environment} on ${ws.conn.target.label}${did.length ? `: ${did.join('; ')}` : ''} (${gh.fullName}).\n`);
          return r.problems > 0 ? 3 : 0;
        });
      }
      case 'drift-pr': {
        const gh = githubFromEnv(ctx.env, log);
        const before = values.adopt ? await runAdopt(ctx, values) : undefined;
        return withEnvironment(ctx, values, async (ws) => {
          const r = await driftPullRequest(ws, gh, { ...(values.base ? { base: values.base } : {}), ...(before ? { before } : {}) });
          const what =
            r.action === 'none'
              ? `No drift in ${ws.conn.environment}: no pull request needed.`
              : r.action === 'closed'
                ? `No drift in ${ws.conn.environment} any more: closed #${r.number}.`
                : `Drift in ${ws.conn.environment} (${r.drifted} object(s)): ${r.action} #${r.number} on ${r.branch}${r.adopted.length ? `, carrying ${r.adopted.join(', ')}` : ''}: ${r.url}`;
          ctx.stdout.write(`${what}\n`);
          return 0;
        });
      }
    }
    return 1;
  },
};

function prNumber(text: string): number {
  if (!/^[1-9]\d{0,9}$/.test(text)) throw new UsageError(`--pr must be a pull request number (got "${text}")`);
  return Number(text);
}

function commitSha(text: string, flag: string): string {
  if (!/^[0-9a-f]{40}$/.test(text)) throw new UsageError(`${flag} must be a full 40-hex commit SHA (got "${text}")`);
  return text;
}

function describeSticky(what: string, pr: number, r: StickyResult): string {
  const parts = r.parts === 1 ? 'one comment' : `${r.parts} parts`;
  const did = [`${r.created} created`, `${r.updated} updated`, `${r.unchanged} unchanged`, ...(r.deleted ? [`${r.deleted} left over deleted`] : [])].join(', ');
  return `Posted ${what} on #${pr} as ${parts} (${did})${r.url ? `: ${r.url}` : ''}`;
}

/** The comment to post: a saved plan rendered for the pull request, or a markdown file as it is. */
async function commentBody(files: string[], planFile: string | undefined, env: string | undefined, ctx: CommandContext): Promise<{ environment: string; body: string }> {
  if ((planFile === undefined) === (files.length === 0) || files.length > 1) throw new UsageError('give one markdown file, or --plan FILE (a plan saved as JSON)');
  const file = planFile ?? files[0]!;
  let text: string;
  try {
    text = await readFile(path.resolve(ctx.cwd, file), 'utf8');
  } catch {
    throw new UsageError(`cannot read ${file}`);
  }
  if (planFile !== undefined) {
    let plan: Plan;
    try {
      plan = JSON.parse(text) as Plan;
    } catch {
      throw new UsageError(`${file} is not a plan (not JSON); post a markdown plan without --plan`);
    }
    if (plan?.format_version !== PLAN_FORMAT_VERSION) throw new UsageError(`${file} is not a tidemark plan of format ${PLAN_FORMAT_VERSION}`);
    plan = readSavedPlan(plan);
    if (env !== undefined && env !== plan.environment) throw new UsageError(`${file} is a plan for environment "${plan.environment}", not "${env}"`);
    return { environment: plan.environment, body: renderPlanComment(plan) };
  }
  const marker = parseStickyMarker(text);
  if (marker && marker.kind === 'plan' && env !== undefined && marker.environment !== env) throw new UsageError(`${file} is a plan for environment "${marker.environment}", not "${env}"`);
  const environment = marker?.kind === 'plan' ? marker.environment : env;
  if (environment === undefined) throw new UsageError(`${file} carries no tidemark plan marker: say which environment it is with --env E`);
  if (!text.trim()) throw new UsageError(`${file} is empty`);
  return { environment, body: text };
}

/** The link to this workflow run, from what GitHub Actions sets (nothing a user writes). */
function workflowRunUrl(env: NodeJS.ProcessEnv): string | undefined {
  const { GITHUB_SERVER_URL: server, GITHUB_REPOSITORY: repo, GITHUB_RUN_ID: run } = env;
  if (!server || !repo || !run || !/^\d+$/.test(run) || !/^https:\/\/[^\s/]+$/.test(server)) return undefined;
  return `${server}/${repo}/actions/runs/${run}`;
}

/** `tidemark drift --adopt` as its own process, as a user would run it: it rewrites the spec files in place and reports the drift it adopted. */
async function runAdopt(ctx: CommandContext, values: { env?: string; specs?: string; sandbox?: boolean; now?: string }): Promise<DriftJson> {
  const args = [BIN, 'drift', '--adopt', '--format', 'json', ...(values.env ? ['--env', values.env] : []), ...(values.specs ? ['--specs', values.specs] : []), ...(values.sandbox ? ['--sandbox'] : []), ...(values.now ? ['--now', values.now] : [])];
  const child = spawn(process.execPath, args, { cwd: ctx.cwd, env: ctx.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  child.stdout.on('data', (d) => (out += String(d)));
  child.stderr.on('data', (d) => (err += String(d)));
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  // drift exits 2 when something drifted, which is why we are here.
  if (code !== 0 && code !== 2) {
    ctx.stderr.write(err);
    throw new UserError(`\`tidemark drift --adopt\` failed (exit ${code}); no pull request was opened`);
  }
  try {
    const report = JSON.parse(out) as Partial<DriftJson>;
    return { items: report.items ?? [], surveys: report.surveys ?? [] };
  } catch {
    throw new UserError('`tidemark drift --adopt --format json` wrote no JSON report; no pull request was opened');
  }
}

