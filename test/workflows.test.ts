/**
 * The GitHub workflows in .github/workflows are meant to be copied by users, next to their production
 * credentials, so their safety is checked mechanically rather than by review:
 * - no user-controlled text is interpolated into a script (`run:`, github-script's `script:`);
 * - `permissions:` is least privilege, and a job that runs a pull request's code can only read;
 * - every action is pinned to a full commit SHA, with its version in a comment;
 * - every job has `timeout-minutes`;
 * - pull-request workflows share no secret and no GitHub environment with the apply workflow, which
 *   applies a reviewed, saved plan in an environment, one run at a time, and never reads a commit message;
 * - a job that runs on a pull request with a token that can write runs only the base commit's code;
 * - a `workflow_run` workflow that holds secrets plans only same-repository pull requests, and takes
 *   only the specs/ folder of the pull request's head, as data (a sparse checkout beside the trusted one);
 * - every tidemark command the workflows run exists, with the flags they pass.
 * Each check is also run on a small bad workflow, so a check that stopped finding anything fails too.
 * Every workflow is also parsed by GitHub's own workflow parser (@actions/workflow-parser, offline).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { tsImport } from 'tsx/esm/api';
import { describe, expect, it } from 'vitest';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { runCli } from './support/cli-run.ts';

const repo = path.resolve(import.meta.dirname, '..');
// The parser imports its JSON schema without an import attribute, which Node's own loader (the one
// vitest hands node_modules to) refuses; tsx's loader, which runs the CLI, accepts it.
const { parseWorkflow, NoOperationTraceWriter } = (await tsImport('@actions/workflow-parser', import.meta.url)) as typeof import('@actions/workflow-parser');
const workflowDir = path.join(repo, '.github/workflows');

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = { [key: string]: Json };

interface Step {
  index: number;
  uses?: string;
  run?: string;
  with?: Obj;
}

interface Job {
  id: string;
  body: Obj;
  steps: Step[];
}

interface Workflow {
  file: string;
  text: string;
  doc: Document;
  lines: LineCounter;
  root: Obj;
  triggers: string[];
  jobs: Job[];
}

function isObj(v: Json | undefined): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function loadWorkflow(file: string, text: string): Workflow {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0]!.message}`);
  const root = doc.toJS() as Json;
  if (!isObj(root)) throw new Error(`${file}: not a mapping`);
  const on = root.on;
  const triggers = typeof on === 'string' ? [on] : Array.isArray(on) ? on.map(String) : isObj(on) ? Object.keys(on) : [];
  const jobs: Job[] = [];
  for (const [id, body] of Object.entries(isObj(root.jobs) ? root.jobs : {})) {
    if (!isObj(body)) continue;
    const steps = (Array.isArray(body.steps) ? body.steps : []).map((s, index): Step => {
      const step = isObj(s) ? s : {};
      return {
        index,
        ...(typeof step.uses === 'string' ? { uses: step.uses } : {}),
        ...(typeof step.run === 'string' ? { run: step.run } : {}),
        ...(isObj(step.with) ? { with: step.with } : {}),
      };
    });
    jobs.push({ id, body, steps });
  }
  return { file, text, doc, lines, root, triggers, jobs };
}

function repoWorkflows(): Workflow[] {
  return readdirSync(workflowDir)
    .filter((f) => f.endsWith('.yml') || f.endsWith('.yaml'))
    .sort()
    .map((f) => loadWorkflow(f, readFileSync(path.join(workflowDir, f), 'utf8')));
}

/** The scripts a job runs: `run:` and the JavaScript of actions/github-script. */
function scripts(job: Job): { step: Step; text: string }[] {
  const out: { step: Step; text: string }[] = [];
  for (const step of job.steps) {
    if (step.run !== undefined) out.push({ step, text: step.run });
    if (step.uses?.startsWith('actions/github-script@') && typeof step.with?.script === 'string') out.push({ step, text: step.with.script });
  }
  return out;
}

function expressions(text: string): string[] {
  return [...text.matchAll(/\$\{\{([\s\S]*?)\}\}/g)].map((m) => m[1]!.trim());
}

/** Context references in one expression (`github.event.pull_request.title`, `inputs.name`, …). */
function contextReferences(expr: string): string[] {
  const noStrings = expr.replace(/'(?:[^']|'')*'/g, "''");
  const refs: string[] = [];
  for (const m of noStrings.matchAll(/[A-Za-z_][\w-]*(?:\s*(?:\.\s*(?:[A-Za-z_][\w-]*|\*)|\[[^\]]*\]))*(\s*\()?/g)) {
    if (m[1]) continue; // a function name: contains(, format(, toJSON(
    const ref = m[0].replace(/\s+/g, '');
    if (/^(github|env|vars|job|jobs|steps|runner|secrets|strategy|matrix|needs|inputs)\b/.test(ref)) refs.push(ref);
  }
  return refs;
}

/** Parts of `github` that are fixed by GitHub, not written by whoever opens a pull request or pushes a branch. */
const SAFE_GITHUB = new Set(['sha', 'run_id', 'run_number', 'run_attempt', 'repository', 'repository_id', 'repository_owner', 'workspace', 'event_name', 'job', 'action', 'server_url', 'api_url', 'graphql_url', 'retention_days', 'actor', 'triggering_actor']);
/** Values in an event payload that are numbers, ids, commit SHAs or booleans. */
const SAFE_EVENT_LEAVES = new Set(['number', 'id', 'sha', 'before', 'after', 'merged', 'draft', 'forced', 'created', 'deleted', 'run_id', 'run_number', 'run_attempt']);

function inputTypes(wf: Workflow): Map<string, string> {
  const types = new Map<string, string>();
  const on = wf.root.on;
  if (!isObj(on)) return types;
  for (const trigger of ['workflow_dispatch', 'workflow_call']) {
    const t = on[trigger];
    if (!isObj(t) || !isObj(t.inputs)) continue;
    for (const [name, spec] of Object.entries(t.inputs)) types.set(name, isObj(spec) && typeof spec.type === 'string' ? spec.type : 'string');
  }
  return types;
}

/**
 * Why a context must not be interpolated into a script, or undefined when it may. The list is an
 * allowlist: text that anyone opening a pull request, pushing a branch, labelling or commenting can
 * choose (titles, bodies, commit messages, branch names, label names, comments, string inputs), and
 * values that may carry such text along (env, step and job outputs), go through `env:` and "$VAR".
 */
function unsafeInScript(ref: string, inputs: Map<string, string>): string | undefined {
  const parts = ref.split(/\.|\[/).map((p) => p.replace(/\]$/, '').replace(/^'|'$/g, ''));
  const [root, second] = parts;
  const leaf = parts[parts.length - 1]!;
  if (root === 'matrix' || root === 'strategy' || root === 'runner' || root === 'vars') return undefined;
  if (root === 'inputs' || (root === 'github' && second === 'event' && parts[2] === 'inputs')) {
    const name = root === 'inputs' ? second : parts[3];
    const type = name ? inputs.get(name) : undefined;
    return type === 'boolean' || type === 'number' ? undefined : `input "${name}" is ${type ? `of type ${type}` : 'undeclared'}: whoever runs the workflow chooses its text`;
  }
  if (root === 'github' && second === 'event') {
    return parts.length > 2 && SAFE_EVENT_LEAVES.has(leaf) ? undefined : 'event payload text (titles, bodies, commit messages, branch and label names, comments) is chosen by users';
  }
  if (root === 'github') {
    if (second && SAFE_GITHUB.has(second) && parts.length === 2) return undefined;
    if (second === 'head_ref' || second === 'ref' || second === 'ref_name' || second === 'base_ref') return 'branch names are chosen by whoever pushes them';
    if (second === 'token') return 'a token belongs in env:, not in the script text';
    return `github.${second} is not known to be fixed by GitHub`;
  }
  if (root === 'secrets') return 'secrets belong in env:, not in the script text';
  return `${root} values can carry user text along: pass them through env:`;
}

function injectionProblems(wf: Workflow): string[] {
  const inputs = inputTypes(wf);
  const problems: string[] = [];
  for (const job of wf.jobs) {
    for (const { step, text } of scripts(job)) {
      for (const expr of expressions(text)) {
        for (const ref of contextReferences(expr)) {
          const why = unsafeInScript(ref, inputs);
          if (why) problems.push(`${wf.file}: job ${job.id}, step ${step.index + 1}: \${{ ${ref} }} inside a script (${why}); pass it through env: and use "$VAR"`);
        }
      }
    }
  }
  return problems;
}

function hasWrite(perms: Json | undefined): boolean {
  if (perms === 'write-all') return true;
  return isObj(perms) && Object.values(perms).some((v) => v === 'write');
}

function permissionProblems(wf: Workflow): string[] {
  const problems: string[] = [];
  const top = wf.root.permissions;
  if (top === undefined) problems.push(`${wf.file}: no top-level permissions: (the token would get the repository's default, often write to everything)`);
  else if (!isObj(top)) problems.push(`${wf.file}: top-level permissions: ${JSON.stringify(top)}; use {} or a map of read scopes`);
  else for (const [scope, level] of Object.entries(top)) if (level !== 'read' && level !== 'none') problems.push(`${wf.file}: top-level permission ${scope}: ${String(level)}; grant write only to the job that needs it`);
  const runsPullRequestCode = wf.triggers.includes('pull_request') || wf.triggers.includes('pull_request_target');
  for (const job of wf.jobs) {
    const perms = job.body.permissions;
    if (perms !== undefined && !isObj(perms)) problems.push(`${wf.file}: job ${job.id} permissions: ${JSON.stringify(perms)}; list the scopes it needs`);
    // A checkout of the base commit runs the code the repository already has, not the pull request's.
    const checksOut = job.steps.some((s) => s.uses?.startsWith('actions/checkout@') && !/^\$\{\{\s*github\.event\.pull_request\.base\.sha\s*\}\}$/.test(String(s.with?.ref ?? '')));
    if (runsPullRequestCode && checksOut && hasWrite(perms ?? top)) {
      problems.push(`${wf.file}: job ${job.id} runs the pull request's code with a token that can write; post results from a separate job`);
    }
  }
  return problems;
}

function usesNodes(wf: Workflow): { where: string; value: string; line: number }[] {
  const out: { where: string; value: string; line: number }[] = [];
  const at = (keys: (string | number)[], where: string): void => {
    const node = wf.doc.getIn(keys, true);
    if (isScalar(node) && typeof node.value === 'string' && node.range) out.push({ where, value: node.value, line: wf.lines.linePos(node.range[0]).line });
  };
  for (const job of wf.jobs) {
    at(['jobs', job.id, 'uses'], `job ${job.id}`);
    const steps = wf.doc.getIn(['jobs', job.id, 'steps'], true);
    if (isSeq(steps)) steps.items.forEach((item, i) => isMap(item) && at(['jobs', job.id, 'steps', i, 'uses'], `job ${job.id}, step ${i + 1}`));
  }
  return out;
}

function pinningProblems(wf: Workflow): string[] {
  const problems: string[] = [];
  const lines = wf.text.split('\n');
  for (const u of usesNodes(wf)) {
    if (u.value.startsWith('./')) continue;
    if (u.value.startsWith('docker://')) {
      if (!/@sha256:[0-9a-f]{64}$/.test(u.value)) problems.push(`${wf.file}: ${u.where}: ${u.value} is not pinned to an image digest`);
      continue;
    }
    if (!/^[\w.-]+\/[\w.\-/]+@[0-9a-f]{40}$/.test(u.value)) {
      problems.push(`${wf.file}: ${u.where}: ${u.value} is not pinned to a full 40-hex commit SHA (a tag or branch can be moved under you)`);
      continue;
    }
    const line = lines[u.line - 1] ?? '';
    if (!/#\s*v\d+(\.\d+)*\b/.test(line.slice(line.indexOf(u.value) + u.value.length))) {
      problems.push(`${wf.file}: ${u.where}: ${u.value} has no "# vX.Y.Z" comment naming the version the SHA is`);
    }
  }
  return problems;
}

function timeoutProblems(wf: Workflow): string[] {
  const problems: string[] = [];
  for (const job of wf.jobs) {
    if (typeof job.body.uses === 'string') continue; // a reusable-workflow call: its own jobs carry the timeouts
    const t = job.body['timeout-minutes'];
    if (typeof t !== 'number' || !(t > 0)) problems.push(`${wf.file}: job ${job.id} has no timeout-minutes (the default is 6 hours)`);
  }
  return problems;
}

function secretNames(wf: Workflow): Set<string> {
  const names = new Set<string>();
  for (const m of wf.text.matchAll(/\bsecrets\s*(?:\.\s*([A-Za-z_]\w*)|\[\s*'([^']+)'\s*\])/g)) names.add(m[1] ?? m[2]!);
  names.delete('GITHUB_TOKEN');
  return names;
}

function environmentNames(wf: Workflow): Set<string> {
  const names = new Set<string>();
  for (const job of wf.jobs) {
    const env = job.body.environment;
    if (typeof env === 'string') names.add(env);
    else if (isObj(env) && typeof env.name === 'string') names.add(env.name);
  }
  return names;
}

const isPullRequestWorkflow = (wf: Workflow): boolean => wf.triggers.includes('pull_request') || wf.triggers.includes('pull_request_target');

/** A tidemark invocation in a script: the command and its arguments, shell continuations joined. */
function tidemarkCalls(text: string): string[][] {
  const joined = text.replace(/\\\n\s*/g, ' ');
  return [...joined.matchAll(/(?:npx\s+tidemark|node\s+bin\/tidemark\.js)\s+([^|;&><\n]*)/g)].map((m) => m[1]!.trim().split(/\s+/));
}

/** `tidemark apply …` or `tidemark github apply …`: the calls that change the services. */
const isApplyCall = (c: string[]): boolean => c[0] === 'apply' || (c[0] === 'github' && c[1] === 'apply');
const runsApply = (wf: Workflow): boolean => wf.jobs.some((j) => scripts(j).some((s) => tidemarkCalls(s.text).some(isApplyCall)));

function pullRequestSecretProblems(all: Workflow[]): string[] {
  const problems: string[] = [];
  const applying = all.filter(runsApply);
  const applySecrets = new Set(applying.flatMap((wf) => [...secretNames(wf)]));
  const applyEnvironments = new Set(applying.flatMap((wf) => [...environmentNames(wf)]));
  for (const wf of all) {
    if (wf.triggers.includes('pull_request_target')) problems.push(`${wf.file}: pull_request_target runs with the base repository's secrets for code from a fork; use pull_request`);
    if (!isPullRequestWorkflow(wf)) continue;
    if (/secrets:\s*inherit/.test(wf.text)) problems.push(`${wf.file}: passes every secret on (secrets: inherit)`);
    if (/\btoJSON\s*\(\s*secrets\s*\)/i.test(wf.text)) problems.push(`${wf.file}: serialises every secret`);
    for (const s of secretNames(wf)) if (applySecrets.has(s)) problems.push(`${wf.file}: a pull-request workflow reads ${s}, a secret the apply workflow uses`);
    for (const e of environmentNames(wf)) if (applyEnvironments.has(e)) problems.push(`${wf.file}: a pull-request workflow runs in the environment "${e}" that the apply workflow uses (its secrets come with it)`);
  }
  return problems;
}

function applyGateProblems(all: Workflow[]): string[] {
  const problems: string[] = [];
  for (const wf of all) {
    for (const expr of [...wf.text.matchAll(/\$\{\{([\s\S]*?)\}\}/g)].map((m) => m[1]!)) {
      // The commit's message, author or whole object: only its id and time are not free text.
      if (/\bhead_commit\b(?!\s*\.\s*(id|timestamp|tree_id)\b)|\bcommits\b/.test(expr)) problems.push(`${wf.file}: reads commit text (\${{ ${expr.trim()} }}); decide deletes by a label or an input`);
    }
    if (!runsApply(wf)) continue;
    if (isPullRequestWorkflow(wf)) problems.push(`${wf.file}: applies on a pull request`);
    const c = wf.root.concurrency;
    const group = typeof c === 'string' ? c : isObj(c) ? c.group : undefined;
    if (typeof group !== 'string' || group.includes('${{')) problems.push(`${wf.file}: applies without one fixed concurrency group, so two applies can race`);
    if (isObj(c) && c['cancel-in-progress'] !== undefined && c['cancel-in-progress'] !== false) problems.push(`${wf.file}: a newer run could cancel an apply midway (cancel-in-progress)`);
    for (const job of wf.jobs) {
      const calls = scripts(job).flatMap((s) => tidemarkCalls(s.text)).filter(isApplyCall);
      if (!calls.length) continue;
      if (job.body.environment === undefined) problems.push(`${wf.file}: job ${job.id} applies outside a GitHub environment, so no reviewer gates it`);
      const downloads = job.steps.some((s) => s.uses?.startsWith('actions/download-artifact@'));
      for (const call of calls) {
        if (call.includes('--auto-approve')) problems.push(`${wf.file}: job ${job.id} applies a fresh plan (--auto-approve) instead of the reviewed one`);
        if (call[0] === 'github') {
          // The kept plan of a merged pull request, found by its number or its merge commit.
          if (!call.includes('--pr') && !call.includes('--commit')) problems.push(`${wf.file}: job ${job.id} runs github apply without naming the merged pull request (--pr or --commit)`);
          continue;
        }
        const file = call.slice(1).find((a, i, args) => !a.startsWith('-') && !(args[i - 1] ?? '').match(/^--(env|specs|target)$/));
        if (!file) problems.push(`${wf.file}: job ${job.id} applies without a saved plan file`);
        else if (!downloads) problems.push(`${wf.file}: job ${job.id} applies ${file} without downloading the plan that was reviewed`);
      }
    }
  }
  return problems;
}

/**
 * A `workflow_run` workflow runs the default branch's code with the repository's secrets, after a
 * pull-request workflow: it may plan a pull request's head with production credentials only if it
 * plans same-repository pull requests and takes nothing from the head but specs/, checked out sparsely
 * beside the trusted checkout, without credentials.
 */
function workflowRunProblems(wf: Workflow): string[] {
  if (!wf.triggers.includes('workflow_run') || secretNames(wf).size === 0) return [];
  const problems: string[] = [];
  for (const job of wf.jobs) {
    const cond = typeof job.body.if === 'string' ? job.body.if.replace(/\s+/g, ' ') : '';
    if (!/github\.event\.workflow_run\.head_repository\.full_name == github\.repository/.test(cond)) {
      problems.push(`${wf.file}: job ${job.id} holds secrets for any workflow_run, forks included: require head_repository.full_name == github.repository`);
    }
    for (const step of job.steps) {
      if (!step.uses?.startsWith('actions/checkout@')) continue;
      const ref = String(step.with?.ref ?? '');
      if (!/workflow_run\.head_(sha|branch)/.test(ref)) continue;
      if (String(step.with?.['sparse-checkout'] ?? '').trim() !== 'specs') problems.push(`${wf.file}: job ${job.id}, step ${step.index + 1} checks out the pull request's head beyond specs/ (sparse-checkout: specs)`);
      if (!step.with?.path) problems.push(`${wf.file}: job ${job.id}, step ${step.index + 1} checks the pull request's head out over the trusted code (give it a path)`);
      if (step.with?.['persist-credentials'] !== false) problems.push(`${wf.file}: job ${job.id}, step ${step.index + 1} leaves a token in the pull request's checkout (persist-credentials: false)`);
    }
  }
  return problems;
}

/** What `tidemark COMMAND --help` prints. */
async function usageOf(command: string): Promise<{ code: number; text: string }> {
  const r = await runCli([command, '--help'], { cwd: repo, env: { NO_COLOR: '1' } });
  return { code: r.code, text: r.stdout + r.stderr };
}

async function cliProblems(wf: Workflow): Promise<string[]> {
  const problems: string[] = [];
  for (const job of wf.jobs) {
    for (const { text } of scripts(job)) {
      for (const [command, ...args] of tidemarkCalls(text)) {
        const where = `${wf.file}: job ${job.id}: tidemark ${command} ${args.join(' ')}`;
        const usage = await usageOf(command!);
        if (usage.code !== 0 || usage.text.includes('unknown command')) {
          problems.push(`${where}: no such command`);
          continue;
        }
        const subcommands = [...usage.text.matchAll(new RegExp(`tidemark ${command} ([a-z][a-z-]*)\\b`, 'g'))].map((m) => m[1]!);
        if (subcommands.length && !subcommands.includes(args[0] ?? '')) problems.push(`${where}: "${args[0]}" is not one of ${[...new Set(subcommands)].join(', ')}`);
        for (const arg of args) {
          if (!arg.startsWith('--')) continue;
          const flag = arg.split('=')[0]!;
          if (!new RegExp(`(^|[\\s\\[|])${flag}(?![\\w-])`).test(usage.text)) problems.push(`${where}: ${flag} is not an option of \`tidemark ${command}\``);
        }
      }
    }
  }
  return problems;
}

function githubParserErrors(file: string, text: string): string[] {
  const result = parseWorkflow({ name: file, content: text }, new NoOperationTraceWriter());
  return result.context.errors.getErrors().map((e) => e.message);
}

describe('the repository workflows', () => {
  const workflows = repoWorkflows();

  it('are the five this project ships', () => {
    expect(workflows.map((w) => w.file)).toEqual(['apply.yml', 'ci.yml', 'drift.yml', 'plan-production.yml', 'plan.yml', 'sync.yml']);
  });

  it("are valid for GitHub's own workflow parser", () => {
    for (const wf of workflows) expect(githubParserErrors(wf.file, wf.text), wf.file).toEqual([]);
  });

  it('interpolate no user-controlled text into a script', () => {
    expect(workflows.flatMap(injectionProblems)).toEqual([]);
  });

  it('grant least-privilege permissions', () => {
    expect(workflows.flatMap(permissionProblems)).toEqual([]);
  });

  it('pin every action to a full commit SHA with its version in a comment', () => {
    expect(workflows.flatMap(usesNodes).length).toBeGreaterThan(0);
    expect(workflows.flatMap(pinningProblems)).toEqual([]);
  });

  it('give every job a timeout', () => {
    expect(workflows.flatMap(timeoutProblems)).toEqual([]);
  });

  it('keep the credentials apply uses away from pull requests', () => {
    const apply = workflows.filter(runsApply);
    expect(apply.map((w) => w.file)).toEqual(['apply.yml']);
    // The comparison below means something only when apply really names its secrets and environment.
    expect([...secretNames(apply[0]!)]).toEqual(expect.arrayContaining(['CUSTOMERIO_APP_API_KEY', 'QUALTRICS_API_TOKEN', 'TIDEMARK_DATABASE_URL']));
    expect([...environmentNames(apply[0]!)]).toContain('production');
    expect(workflows.filter(isPullRequestWorkflow).map((w) => w.file)).toEqual(['ci.yml', 'plan.yml']);
    expect(pullRequestSecretProblems(workflows)).toEqual([]);
  });

  it('apply only the reviewed plan, in an environment, one run at a time, deletes never decided by commit text', () => {
    expect(applyGateProblems(workflows)).toEqual([]);
  });

  it('plan a pull request with production credentials only from trusted code, its specs as data', () => {
    expect(workflows.filter((w) => w.triggers.includes('workflow_run')).map((w) => w.file)).toEqual(['plan-production.yml']);
    expect(workflows.flatMap(workflowRunProblems)).toEqual([]);
  });

  it('use the GitHub side of tidemark: the sticky plan, the kept plan applied on merge, problems as issues, drift as a pull request', () => {
    const calls = (file: string) => workflows.find((w) => w.file === file)!.jobs.flatMap((j) => scripts(j).flatMap((s) => tidemarkCalls(s.text))).filter((c) => c[0] === 'github').map((c) => c.slice(0, 2).join(' '));
    expect(calls('plan.yml')).toEqual(['github comment']);
    expect(calls('plan-production.yml')).toEqual(['github plan']);
    expect(calls('apply.yml')).toEqual(['github apply', 'github apply']);
    expect(calls('sync.yml')).toEqual(['github report']);
    expect(calls('drift.yml')).toEqual(['github drift-pr']);
    // The token each needs, and no more.
    const perms = (file: string, job: string) => workflows.find((w) => w.file === file)!.jobs.find((j) => j.id === job)!.body.permissions;
    expect(perms('plan.yml', 'plan')).toEqual({ contents: 'read' });
    expect(perms('plan.yml', 'comment')).toEqual({ contents: 'read', 'pull-requests': 'write' });
    expect(perms('plan-production.yml', 'plan')).toEqual({ contents: 'read', 'pull-requests': 'write' });
    expect(perms('apply.yml', 'apply')).toEqual({ contents: 'read', 'pull-requests': 'write' });
    expect(perms('sync.yml', 'sync')).toEqual({ contents: 'read', issues: 'write' });
    expect(perms('drift.yml', 'drift')).toEqual({ contents: 'write', 'pull-requests': 'write' });
    // Rejects go up as an artifact; every step of the scheduled run is reported, whatever it did.
    const sync = workflows.find((w) => w.file === 'sync.yml')!.jobs[0]!;
    expect(sync.steps.some((s) => s.uses?.startsWith('actions/upload-artifact@') && s.with?.name === 'rejects' && String(s.with?.path).includes('rejects'))).toBe(true);
    const report = sync.steps.filter((s) => s.run?.includes('tidemark github report'));
    expect(report).toHaveLength(1);
    for (const step of ['sync', 'audiences', 'surveys', 'responses']) expect(report[0]!.run).toContain(`--step "${step}=$`);
  });

  it('run only tidemark commands and flags that exist', async () => {
    const calls = workflows.flatMap((wf) => wf.jobs.flatMap((j) => scripts(j).flatMap((s) => tidemarkCalls(s.text))));
    expect(new Set(calls.map((c) => c[0]))).toEqual(new Set(['validate', 'plan', 'github', 'sync', 'audiences', 'surveys', 'responses']));
    const problems: string[] = [];
    for (const wf of workflows) problems.push(...(await cliProblems(wf)));
    expect(problems).toEqual([]);
  });
});

/** A workflow that passes every check, to build the bad ones from. */
const GOOD = `
on: { push: { branches: [main] } }
permissions: {}
jobs:
  build:
    runs-on: ubuntu-latest
    timeout-minutes: 5
    permissions: { contents: read }
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
      - run: echo "$TITLE"
        env: { TITLE: "\${{ github.event.head_commit.id }}" }
`;

const wf = (text: string, file = 'fixture.yml'): Workflow => loadWorkflow(file, text);

describe('the checks themselves', () => {
  it('pass a workflow that follows every rule', async () => {
    const good = wf(GOOD);
    expect([...injectionProblems(good), ...permissionProblems(good), ...pinningProblems(good), ...timeoutProblems(good), ...applyGateProblems([good])]).toEqual([]);
    expect(await cliProblems(good)).toEqual([]);
  });

  it.each([
    ['a commit message', 'github.event.head_commit.message'],
    ['a pull request title', 'github.event.pull_request.title'],
    ['a pull request body', 'github.event.pull_request.body'],
    ['an issue comment', 'github.event.comment.body'],
    ['a review body', 'github.event.review.body'],
    ['a label name', 'github.event.label.name'],
    ['the labels of a pull request', "join(github.event.pull_request.labels.*.name, ',')"],
    ['the head branch', 'github.head_ref'],
    ['the head branch from the payload', 'github.event.pull_request.head.ref'],
    ['the pushed branch', 'github.ref_name'],
    ['a commit author', 'github.event.commits[0].author.name'],
    ['the whole payload', 'toJSON(github.event)'],
    ['a string input', 'inputs.reason'],
    ['a string input through the payload', 'github.event.inputs.reason'],
    ['a step output', 'steps.x.outputs.title'],
    ['an env value', 'env.TITLE'],
    ['a secret', 'secrets.CUSTOMERIO_APP_API_KEY'],
  ])('find %s inside run:', (_what, expr) => {
    const bad = wf(
      GOOD.replace('on: { push: { branches: [main] } }', 'on: { push: {}, workflow_dispatch: { inputs: { reason: { type: string }, go: { type: boolean } } } }').replace(
        'run: echo "$TITLE"',
        `run: echo "\${{ ${expr} }}"`,
      ),
    );
    expect(injectionProblems(bad)).toEqual([expect.stringMatching(/inside a script/)]);
  });

  it('find user text in the script of actions/github-script', () => {
    const bad = wf(
      GOOD.replace(
        'run: echo "$TITLE"',
        'uses: actions/github-script@60a0d83039c74a4aee543508d2ffcb1c3799cdea # v7.0.1\n        with: { script: "console.log(\'${{ github.event.pull_request.title }}\')" }',
      ),
    );
    expect(injectionProblems(bad)).toEqual([expect.stringMatching(/pull_request\.title.*inside a script/)]);
  });

  it('let numbers, SHAs, booleans and matrix values through', () => {
    const ok = wf(
      GOOD.replace('on: { push: { branches: [main] } }', 'on: { workflow_dispatch: { inputs: { go: { type: boolean } } } }').replace(
        'run: echo "$TITLE"',
        'run: echo "${{ github.event.pull_request.number }} ${{ github.sha }} ${{ inputs.go }} ${{ matrix.node }} ${{ runner.temp }}"',
      ),
    );
    expect(injectionProblems(ok)).toEqual([]);
  });

  it('find missing or broad permissions', () => {
    expect(permissionProblems(wf(GOOD.replace('permissions: {}\n', '')))).toEqual([expect.stringMatching(/no top-level permissions/)]);
    expect(permissionProblems(wf(GOOD.replace('permissions: {}', 'permissions: write-all')))).toEqual([expect.stringMatching(/top-level permissions: "write-all"/)]);
    expect(permissionProblems(wf(GOOD.replace('permissions: {}', 'permissions: { contents: write }')))).toEqual([expect.stringMatching(/contents: write/)]);
    expect(permissionProblems(wf(GOOD.replace('permissions: { contents: read }', 'permissions: write-all')))).toEqual([expect.stringMatching(/job build permissions/)]);
    const prWrites = GOOD.replace('on: { push: { branches: [main] } }', 'on: pull_request').replace('permissions: { contents: read }', 'permissions: { contents: read, pull-requests: write }');
    expect(permissionProblems(wf(prWrites))).toEqual([expect.stringMatching(/runs the pull request's code with a token that can write/)]);
  });

  it('find actions that are not pinned to a commit SHA with a version comment', () => {
    const pin = '11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2';
    expect(pinningProblems(wf(GOOD.replace(pin, 'v4')))).toEqual([expect.stringMatching(/not pinned to a full 40-hex commit SHA/)]);
    expect(pinningProblems(wf(GOOD.replace(pin, '11bd719')))).toEqual([expect.stringMatching(/not pinned/)]);
    expect(pinningProblems(wf(GOOD.replace(pin, '11bd71901bbe5b1630ceea73d27597364c9af683')))).toEqual([expect.stringMatching(/no "# vX.Y.Z" comment/)]);
    expect(pinningProblems(wf(GOOD.replace('actions/checkout@' + pin, 'docker://alpine:3')))).toEqual([expect.stringMatching(/image digest/)]);
    expect(pinningProblems(wf(GOOD.replace('actions/checkout@' + pin, './.github/actions/local')))).toEqual([]);
    const reusable = GOOD.replace('runs-on: ubuntu-latest', 'uses: octo/workflows/.github/workflows/x.yml@main').replace(/    timeout-minutes: 5\n/, '');
    expect(pinningProblems(wf(reusable))).toEqual([expect.stringMatching(/job build: .*not pinned/)]);
  });

  it('find a job without timeout-minutes', () => {
    expect(timeoutProblems(wf(GOOD.replace('timeout-minutes: 5', 'timeout-minutes: "${{ 5 }}"')))).toEqual([expect.stringMatching(/no timeout-minutes/)]);
    expect(timeoutProblems(wf(GOOD.replace(/    timeout-minutes: 5\n/, '')))).toEqual([expect.stringMatching(/job build has no timeout-minutes/)]);
  });

  const APPLY = `
on: { push: { branches: [main] } }
permissions: {}
concurrency: { group: apply, cancel-in-progress: false }
jobs:
  apply:
    runs-on: ubuntu-latest
    timeout-minutes: 5
    environment: production
    env: { CUSTOMERIO_APP_API_KEY: "\${{ secrets.CUSTOMERIO_APP_API_KEY }}" }
    steps:
      - uses: actions/download-artifact@d3f86a106a0bac45b974a628896c90dbdf5c8093 # v4.3.0
      - run: npx tidemark apply plan.json --env production
`;
  const PR = `
on: pull_request
permissions: {}
jobs:
  plan:
    runs-on: ubuntu-latest
    timeout-minutes: 5
    env: { CIO_STAGING_APP_API_KEY: "\${{ secrets.CIO_STAGING_APP_API_KEY }}" }
    steps:
      - run: npx tidemark plan --env staging
`;

  it('find a pull-request workflow that could reach the credentials apply uses', () => {
    const apply = wf(APPLY, 'apply.yml');
    expect(pullRequestSecretProblems([apply, wf(PR, 'plan.yml')])).toEqual([]);
    expect(pullRequestSecretProblems([apply, wf(PR.replace(/CIO_STAGING_APP_API_KEY/g, 'CUSTOMERIO_APP_API_KEY'), 'plan.yml')])).toEqual([
      expect.stringMatching(/reads CUSTOMERIO_APP_API_KEY, a secret the apply workflow uses/),
    ]);
    expect(pullRequestSecretProblems([apply, wf(PR.replace("secrets.CIO_STAGING_APP_API_KEY", "secrets['CUSTOMERIO_APP_API_KEY']"), 'plan.yml')])).toEqual([
      expect.stringMatching(/reads CUSTOMERIO_APP_API_KEY/),
    ]);
    expect(pullRequestSecretProblems([apply, wf(PR.replace('timeout-minutes: 5', 'timeout-minutes: 5\n    environment: production'), 'plan.yml')])).toEqual([
      expect.stringMatching(/runs in the environment "production"/),
    ]);
    expect(pullRequestSecretProblems([apply, wf(PR.replace('on: pull_request', 'on: pull_request_target'), 'plan.yml')])).toEqual([
      expect.stringMatching(/pull_request_target runs with the base repository's secrets/),
    ]);
  });

  it('find an apply that is not the reviewed plan, not gated, not serialised, or decided by commit text', () => {
    expect(applyGateProblems([wf(APPLY)])).toEqual([]);
    expect(applyGateProblems([wf(APPLY.replace('apply plan.json --env production', 'apply --env production --auto-approve'))])).toEqual([
      expect.stringMatching(/--auto-approve/),
      expect.stringMatching(/without a saved plan file/),
    ]);
    expect(applyGateProblems([wf(APPLY.replace(/      - uses: actions\/download-artifact.*\n/, ''))])).toEqual([expect.stringMatching(/without downloading the plan/)]);
    expect(applyGateProblems([wf(APPLY.replace('    environment: production\n', ''))])).toEqual([expect.stringMatching(/outside a GitHub environment/)]);
    expect(applyGateProblems([wf(APPLY.replace('concurrency: { group: apply, cancel-in-progress: false }\n', ''))])).toEqual([expect.stringMatching(/concurrency group/)]);
    expect(applyGateProblems([wf(APPLY.replace('group: apply', 'group: "apply-${{ github.ref }}"'))])).toEqual([expect.stringMatching(/concurrency group/)]);
    expect(applyGateProblems([wf(APPLY.replace('cancel-in-progress: false', 'cancel-in-progress: true'))])).toEqual([expect.stringMatching(/cancel an apply midway/)]);
    expect(applyGateProblems([wf(APPLY.replace('on: { push: { branches: [main] } }', 'on: pull_request'))])).toEqual([expect.stringMatching(/applies on a pull request/)]);
    for (const expr of ['github.event.head_commit.message', 'toJSON(github.event.head_commit)', 'github.event.commits[0].message']) {
      const byMessage = APPLY.replace('steps:', `steps:\n      - run: echo "$M"\n        env: { M: "\${{ ${expr} }}" }`);
      expect(applyGateProblems([wf(byMessage)]), expr).toEqual([expect.stringMatching(/reads commit text/)]);
    }
  });

  it('find a tidemark command or flag that does not exist', async () => {
    const call = (cmd: string): Workflow => wf(GOOD.replace('run: echo "$TITLE"', `run: npx tidemark ${cmd}`));
    expect(await cliProblems(call('plan --env staging --detailed-exitcode'))).toEqual([]);
    expect(await cliProblems(call('plann --env staging'))).toEqual([expect.stringMatching(/no such command/)]);
    expect(await cliProblems(call('plan --enviroment staging'))).toEqual([expect.stringMatching(/--enviroment is not an option of `tidemark plan`/)]);
    expect(await cliProblems(call('plan --allow'))).toEqual([expect.stringMatching(/--allow is not an option/)]);
    expect(await cliProblems(call('sync go --due'))).toEqual([expect.stringMatching(/"go" is not one of plan, run/)]);
    expect(await cliProblems(wf(GOOD.replace('run: echo "$TITLE"', 'run: |\n          npx tidemark drift \\\n            --env production --bogus')))).toEqual([
      expect.stringMatching(/--bogus is not an option of `tidemark drift`/),
    ]);
  });

  const RUN = `
on: { workflow_run: { workflows: ["tidemark plan"], types: [completed] } }
permissions: {}
jobs:
  plan:
    if: github.event.workflow_run.head_repository.full_name == github.repository
    runs-on: ubuntu-latest
    timeout-minutes: 5
    environment: production-jobs
    env: { CUSTOMERIO_APP_API_KEY: "\${{ secrets.CUSTOMERIO_APP_API_KEY }}" }
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
        with: { persist-credentials: false }
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
        with: { ref: "\${{ github.event.workflow_run.head_sha }}", path: pr, sparse-checkout: specs, persist-credentials: false }
      - run: npx tidemark plan --env production
`;

  it('find a workflow_run workflow that could run a pull request\'s code, or a fork\'s, with secrets', () => {
    expect(workflowRunProblems(wf(RUN))).toEqual([]);
    expect(workflowRunProblems(wf(RUN.replace(/    if: .*\n/, '')))).toEqual([expect.stringMatching(/forks included/)]);
    expect(workflowRunProblems(wf(RUN.replace(', sparse-checkout: specs', '')))).toEqual([expect.stringMatching(/beyond specs\//)]);
    expect(workflowRunProblems(wf(RUN.replace(', path: pr', '')))).toEqual([expect.stringMatching(/over the trusted code/)]);
    expect(workflowRunProblems(wf(RUN.replace(', persist-credentials: false }', ' }')))).toEqual([expect.stringMatching(/leaves a token/)]);
    // Without secrets there is nothing to protect.
    expect(workflowRunProblems(wf(RUN.replace(/    env: .*\n/, '').replace(/    if: .*\n/, '')))).toEqual([]);
  });

  it('let a pull-request job that can write run only the base commit\'s code', () => {
    const base = GOOD.replace('on: { push: { branches: [main] } }', 'on: pull_request')
      .replace('permissions: { contents: read }', 'permissions: { contents: read, pull-requests: write }')
      .replace('v4.2.2\n', 'v4.2.2\n        with: { ref: "${{ github.event.pull_request.base.sha }}" }\n');
    expect(permissionProblems(wf(base))).toEqual([]);
    expect(permissionProblems(wf(base.replace('pull_request.base.sha', 'pull_request.head.sha')))).toEqual([expect.stringMatching(/runs the pull request's code with a token that can write/)]);
  });

  it('find a github apply that names no merged pull request, or runs outside an environment', () => {
    const github = APPLY.replace('apply plan.json --env production', 'github apply --commit "$GITHUB_SHA" --env production').replace(/      - uses: actions\/download-artifact.*\n/, '');
    expect(applyGateProblems([wf(github)])).toEqual([]);
    expect(applyGateProblems([wf(github.replace('--commit "$GITHUB_SHA" ', ''))])).toEqual([expect.stringMatching(/without naming the merged pull request/)]);
    expect(applyGateProblems([wf(github.replace('    environment: production\n', ''))])).toEqual([expect.stringMatching(/outside a GitHub environment/)]);
    expect(runsApply(wf(github))).toBe(true);
  });

  it('find a github subcommand or option that does not exist', async () => {
    const call = (cmd: string): Workflow => wf(GOOD.replace('run: echo "$TITLE"', `run: npx tidemark ${cmd}`));
    expect(await cliProblems(call('github drift-pr --env production --adopt'))).toEqual([]);
    expect(await cliProblems(call('github drift --env production'))).toEqual([expect.stringMatching(/"drift" is not one of comment, plan, apply, report, drift-pr/)]);
    expect(await cliProblems(call('github report --env production --stepp x=success'))).toEqual([expect.stringMatching(/--stepp is not an option of `tidemark github`/)]);
  });

  it("reject what GitHub's parser rejects", () => {
    expect(githubParserErrors('bad.yml', GOOD.replace('timeout-minutes: 5', 'timeout-minutes: soon'))).toEqual([expect.stringMatching(/Unexpected value 'soon'/)]);
    expect(githubParserErrors('bad.yml', GOOD.replace('run: echo "$TITLE"', 'run: echo ${{ github.sha'))).toEqual([expect.stringMatching(/expression is not closed/)]);
  });
});
