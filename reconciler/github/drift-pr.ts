/**
 * The drift pull request: one per environment, on the branch `tidemark/drift-<env>`, rebuilt on each run
 * as one commit on top of the default branch through the git data API (blobs in a tree on the base tree,
 * a commit, the branch ref moved with force), so no clone or push credential is needed and the branch
 * never accumulates history. The pull request's body shows the drift; the commit carries the drift report
 * (`tidemark-drift/<env>.md`) and, when specs were rewritten to match live (`drift --adopt`), those files.
 * Merging it accepts the drift into the specs; closing it means "restore": the next apply does.
 * When nothing drifted any more, the open pull request is closed with a comment.
 */
import type { DriftItem } from '../plan/drift.ts';
import { codeSpan, mdText } from '../plan/render/markdown.ts';
import { call, explainGitHubError, statusOf, type GitHubRepo } from './client.ts';

export function driftBranch(environment: string): string {
  return `tidemark/drift-${environment.replace(/[^\w.-]/g, '-')}`;
}

export function driftReportPath(environment: string): string {
  return `tidemark-drift/${environment.replace(/[^\w.-]/g, '-')}.md`;
}

export interface SurveyDrift {
  address: string;
  survey: string;
  what: string;
}

/** The drift as markdown, the pull request's body and the report file. Pure; config values only. */
export function renderDriftMarkdown(o: { environment: string; target: string; items: readonly DriftItem[]; surveys: readonly SurveyDrift[]; adopted: readonly string[] }): string {
  const env = mdText(o.environment);
  const changed = o.items.filter((i) => i.type !== 'unmanaged_match');
  const unmanaged = o.items.filter((i) => i.type === 'unmanaged_match');
  let out = `## Drift in ${env}\n\nWhat changed in Customer.io or Qualtrics outside tidemark (${mdText(o.target)}), against what tidemark last applied.\n\n`;
  if (changed.length) {
    out += '| Object | What happened | Live updated |\n| --- | --- | --- |\n';
    for (const i of changed) out += `| ${codeSpan(i.address, true)} | ${mdText(i.message)} | ${i.liveUpdatedAt ? mdText(i.liveUpdatedAt) : ''} |\n`;
    out += '\n';
    for (const i of changed.filter((x) => x.fields.length)) {
      const lines = i.fields.flatMap((f) => [`- ${f.name}: ${JSON.stringify(f.applied ?? null)}`, `+ ${f.name}: ${JSON.stringify(f.live ?? null)}`]);
      const fence = '`'.repeat(Math.max(3, ...[...lines.join('\n').matchAll(/`+/g)].map((m) => m[0].length + 1)));
      out += `<details><summary><code>${mdText(i.address)}</code>: applied → live</summary>\n\n${fence}diff\n${lines.join('\n')}\n${fence}\n\n</details>\n\n`;
    }
  }
  if (o.surveys.length) {
    out += '| Survey target | Survey | What changed |\n| --- | --- | --- |\n';
    for (const s of o.surveys) out += `| ${codeSpan(s.address, true)} | ${codeSpan(s.survey, true)} | ${mdText(s.what)} |\n`;
    out += '\n';
  }
  if (unmanaged.length) {
    out += `<details><summary>${unmanaged.length} unmanaged object(s) whose names match specs (\`tidemark import\` adopts them)</summary>\n\n`;
    for (const i of unmanaged) out += `- ${codeSpan(i.address)}${i.remoteId ? ` (${codeSpan(i.remoteId)})` : ''}: ${mdText(i.message)}\n`;
    out += '\n</details>\n\n';
  }
  out += o.adopted.length
    ? `This branch rewrites ${o.adopted.map((f) => codeSpan(f)).join(', ')} to match live (\`tidemark drift --adopt\`): merge it to accept the drift, or close it and let the next apply restore the specs.\n`
    : `Merge this pull request to record that the drift was seen, or change the specs to match; the next apply restores what the specs say.\n`;
  return out;
}

export interface DriftPullRequestResult {
  action: 'opened' | 'updated' | 'unchanged' | 'closed' | 'none';
  number?: number;
  url?: string;
  branch: string;
}

interface OpenPull {
  number: number;
  html_url: string;
  title: string;
  body?: string | null;
}

async function openPullFor(gh: GitHubRepo, branch: string): Promise<OpenPull | undefined> {
  const list = await call(gh, `list the pull requests of ${branch}`, () =>
    gh.client.paginate(gh.client.rest.pulls.list, { owner: gh.owner, repo: gh.repo, head: `${gh.owner}:${branch}`, state: 'open', per_page: 100 }),
  );
  return list[0];
}

/**
 * Opens or updates the environment's drift pull request with `files` (path → content) committed on the
 * base branch; with `drifted` false, closes an open one instead.
 */
export async function upsertDriftPullRequest(
  gh: GitHubRepo,
  o: { environment: string; drifted: boolean; title: string; body: string; files: ReadonlyMap<string, string>; base?: string; at: string },
): Promise<DriftPullRequestResult> {
  const branch = driftBranch(o.environment);
  const open = await openPullFor(gh, branch);
  if (!o.drifted) {
    if (!open) return { action: 'none', branch };
    await call(gh, `comment on #${open.number}`, () =>
      gh.client.rest.issues.createComment({ owner: gh.owner, repo: gh.repo, issue_number: open.number, body: `No drift in ${mdText(o.environment)} any more (checked ${o.at}): closing.` }),
    );
    await call(gh, `close #${open.number}`, () => gh.client.rest.pulls.update({ owner: gh.owner, repo: gh.repo, pull_number: open.number, state: 'closed' }));
    return { action: 'closed', number: open.number, url: open.html_url, branch };
  }
  const base = o.base ?? (await call(gh, 'read the repository', () => gh.client.rest.repos.get({ owner: gh.owner, repo: gh.repo }))).data.default_branch;
  const baseSha = (await call(gh, `read branch ${base}`, () => gh.client.rest.git.getRef({ owner: gh.owner, repo: gh.repo, ref: `heads/${base}` }))).data.object.sha;
  const baseTree = (await call(gh, `read commit ${baseSha}`, () => gh.client.rest.git.getCommit({ owner: gh.owner, repo: gh.repo, commit_sha: baseSha }))).data.tree.sha;
  const tree = await call(gh, 'write the drift files', () =>
    gh.client.rest.git.createTree({
      owner: gh.owner,
      repo: gh.repo,
      base_tree: baseTree,
      tree: [...o.files].sort(([a], [b]) => (a < b ? -1 : 1)).map(([path, content]) => ({ path, mode: '100644' as const, type: 'blob' as const, content })),
    }),
  );
  let current: string | undefined;
  try {
    current = (await gh.client.rest.git.getRef({ owner: gh.owner, repo: gh.repo, ref: `heads/${branch}` })).data.object.sha;
  } catch (err) {
    if (statusOf(err) !== 404) throw explainGitHubError(err, `read branch ${branch}`, gh);
  }
  let moved = true;
  if (current) {
    const head = (await call(gh, `read commit ${current}`, () => gh.client.rest.git.getCommit({ owner: gh.owner, repo: gh.repo, commit_sha: current! }))).data;
    // Same files on the same base: nothing to commit, and no push to notify reviewers about.
    moved = !(head.tree.sha === tree.data.sha && head.parents.length === 1 && head.parents[0]!.sha === baseSha);
  }
  if (moved) {
    const commit = await call(gh, 'commit the drift', () =>
      gh.client.rest.git.createCommit({ owner: gh.owner, repo: gh.repo, message: `${o.title}\n\nWritten by tidemark drift-pr at ${o.at}.`, tree: tree.data.sha, parents: [baseSha] }),
    );
    if (current) await call(gh, `move branch ${branch}`, () => gh.client.rest.git.updateRef({ owner: gh.owner, repo: gh.repo, ref: `heads/${branch}`, sha: commit.data.sha, force: true }));
    else await call(gh, `create branch ${branch}`, () => gh.client.rest.git.createRef({ owner: gh.owner, repo: gh.repo, ref: `refs/heads/${branch}`, sha: commit.data.sha }));
  }
  if (open) {
    if (open.title === o.title && open.body === o.body && !moved) return { action: 'unchanged', number: open.number, url: open.html_url, branch };
    await call(gh, `update #${open.number}`, () => gh.client.rest.pulls.update({ owner: gh.owner, repo: gh.repo, pull_number: open.number, title: o.title, body: o.body }));
    return { action: 'updated', number: open.number, url: open.html_url, branch };
  }
  const pr = await call(gh, 'open the drift pull request', () => gh.client.rest.pulls.create({ owner: gh.owner, repo: gh.repo, head: branch, base, title: o.title, body: o.body }));
  return { action: 'opened', number: pr.data.number, url: pr.data.html_url, branch };
}
