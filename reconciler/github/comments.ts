/**
 * Posting a sticky comment: find this kind's comments for the environment by their marker (every page of
 * the issue's comments), edit each part in place, post the parts that are new, delete the parts an
 * earlier, longer body left over. Comments are matched by the marker their body starts with, never by
 * author: the login a token posts as differs between GITHUB_TOKEN, an app and a person's token.
 */
import { call, type GitHubRepo } from './client.ts';
import { parseStickyMarker, splitSticky, type StickyKind } from './sticky.ts';

export interface StickyResult {
  parts: number;
  created: number;
  updated: number;
  unchanged: number;
  deleted: number;
  /** Link to the first part. */
  url: string | undefined;
}

interface ListedComment {
  id: number;
  body?: string | null;
  html_url: string;
}

export async function listMarkedComments(gh: GitHubRepo, issue: number, kind: StickyKind, environment: string): Promise<Map<number, ListedComment>> {
  const all = await call(gh, `list the comments of #${issue}`, () =>
    gh.client.paginate(gh.client.rest.issues.listComments, { owner: gh.owner, repo: gh.repo, issue_number: issue, per_page: 100 }),
  );
  const byPart = new Map<number, ListedComment>();
  for (const c of all as ListedComment[]) {
    const m = parseStickyMarker(c.body);
    // The oldest comment of a part is the one kept up to date; a copy pasted later is left alone.
    if (m && m.kind === kind && m.environment === environment && !byPart.has(m.part)) byPart.set(m.part, c);
  }
  return byPart;
}

export async function upsertSticky(gh: GitHubRepo, issue: number, kind: StickyKind, environment: string, body: string): Promise<StickyResult> {
  const bodies = splitSticky(kind, environment, body);
  const existing = await listMarkedComments(gh, issue, kind, environment);
  const result: StickyResult = { parts: bodies.length, created: 0, updated: 0, unchanged: 0, deleted: 0, url: undefined };
  for (const [i, text] of bodies.entries()) {
    const part = i + 1;
    const found = existing.get(part);
    if (found && found.body === text) {
      result.unchanged++;
      result.url ??= found.html_url;
    } else if (found) {
      const r = await call(gh, `update comment ${found.id} on #${issue}`, () => gh.client.rest.issues.updateComment({ owner: gh.owner, repo: gh.repo, comment_id: found.id, body: text }));
      result.updated++;
      result.url ??= r.data.html_url;
    } else {
      const r = await call(gh, `comment on #${issue}`, () => gh.client.rest.issues.createComment({ owner: gh.owner, repo: gh.repo, issue_number: issue, body: text }));
      result.created++;
      result.url ??= r.data.html_url;
    }
  }
  for (const [part, c] of [...existing].sort(([a], [b]) => a - b)) {
    if (part <= bodies.length) continue;
    await call(gh, `delete comment ${c.id} on #${issue}`, () => gh.client.rest.issues.deleteComment({ owner: gh.owner, repo: gh.repo, comment_id: c.id }));
    result.deleted++;
  }
  return result;
}

/** A plain (not sticky) comment, for notes such as "the reviewed plan was stale". */
export async function postComment(gh: GitHubRepo, issue: number, body: string): Promise<string> {
  const r = await call(gh, `comment on #${issue}`, () => gh.client.rest.issues.createComment({ owner: gh.owner, repo: gh.repo, issue_number: issue, body }));
  return r.data.html_url;
}

export interface PullRequestInfo {
  number: number;
  state: string;
  merged: boolean;
  headSha: string;
  headRepo: string | null;
  mergeCommitSha: string | null;
  labels: string[];
}

export async function getPullRequest(gh: GitHubRepo, number: number): Promise<PullRequestInfo> {
  const { data } = await call(gh, `read pull request #${number}`, () => gh.client.rest.pulls.get({ owner: gh.owner, repo: gh.repo, pull_number: number }));
  return {
    number: data.number,
    state: data.state,
    merged: data.merged === true || data.merged_at != null,
    headSha: data.head.sha,
    headRepo: data.head.repo?.full_name ?? null,
    mergeCommitSha: data.merge_commit_sha ?? null,
    labels: (data.labels ?? []).map((l) => (typeof l === 'string' ? l : (l.name ?? ''))),
  };
}

/** The pull request a commit on the default branch merged (its merge, squash or rebase commit), if any. */
export async function pullRequestMergedAs(gh: GitHubRepo, sha: string): Promise<number | undefined> {
  const list = await call(gh, `find the pull request of commit ${sha}`, () =>
    gh.client.paginate(gh.client.rest.repos.listPullRequestsAssociatedWithCommit, { owner: gh.owner, repo: gh.repo, commit_sha: sha, per_page: 100 }),
  );
  return list.find((p) => p.merge_commit_sha === sha && p.merged_at != null)?.number;
}
