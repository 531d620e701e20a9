/**
 * Posting a sticky comment: find this kind's comments for the environment by their marker (every page of
 * the issue's comments), edit each part in place, post the parts that are new, delete the parts an
 * earlier, longer body left over. Comments are matched by the marker their body starts with, not by a
 * guessed login (GITHUB_TOKEN, an app and a person's token post as different users). When someone pasted
 * a marker into their own comment, a bot-authored comment is preferred, and a comment GitHub does not let
 * this token edit (403) is passed over for the next one, or a new comment.
 */
import { call, statusOf, explainGitHubError, type GitHubRepo } from './client.ts';
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
  user?: { type?: string } | null;
}

/** Per part, the comments that carry its marker: bot-authored first, then oldest first. */
export async function listMarkedComments(gh: GitHubRepo, issue: number, kind: StickyKind, environment: string): Promise<Map<number, ListedComment[]>> {
  const all = await call(gh, `list the comments of #${issue}`, () =>
    gh.client.paginate(gh.client.rest.issues.listComments, { owner: gh.owner, repo: gh.repo, issue_number: issue, per_page: 100 }),
  );
  const byPart = new Map<number, ListedComment[]>();
  for (const c of all as ListedComment[]) {
    const m = parseStickyMarker(c.body);
    if (m && m.kind === kind && m.environment === environment) byPart.set(m.part, [...(byPart.get(m.part) ?? []), c]);
  }
  const bot = (c: ListedComment) => (c.user?.type === 'Bot' ? 0 : 1);
  for (const list of byPart.values()) list.sort((a, b) => bot(a) - bot(b) || a.id - b.id);
  return byPart;
}

/** Edits the first of `candidates` this token may edit; undefined when it may edit none. */
async function editFirst(gh: GitHubRepo, issue: number, candidates: readonly ListedComment[], body: string): Promise<string | undefined> {
  for (const c of candidates) {
    try {
      return (await gh.client.rest.issues.updateComment({ owner: gh.owner, repo: gh.repo, comment_id: c.id, body })).data.html_url;
    } catch (err) {
      if (statusOf(err) !== 403 || /rate limit/i.test(String((err as Error).message))) throw explainGitHubError(err, `update comment ${c.id} on #${issue}`, gh);
    }
  }
  return undefined;
}

export async function upsertSticky(gh: GitHubRepo, issue: number, kind: StickyKind, environment: string, body: string): Promise<StickyResult> {
  const bodies = splitSticky(kind, environment, body);
  const existing = await listMarkedComments(gh, issue, kind, environment);
  const result: StickyResult = { parts: bodies.length, created: 0, updated: 0, unchanged: 0, deleted: 0, url: undefined };
  for (const [i, text] of bodies.entries()) {
    const candidates = existing.get(i + 1) ?? [];
    const same = candidates[0];
    if (same && same.body === text) {
      result.unchanged++;
      result.url ??= same.html_url;
      continue;
    }
    const edited = candidates.length ? await editFirst(gh, issue, candidates, text) : undefined;
    if (edited) {
      result.updated++;
      result.url ??= edited;
      continue;
    }
    const r = await call(gh, `comment on #${issue}`, () => gh.client.rest.issues.createComment({ owner: gh.owner, repo: gh.repo, issue_number: issue, body: text }));
    result.created++;
    result.url ??= r.data.html_url;
  }
  for (const [part, list] of [...existing].sort(([a], [b]) => a - b)) {
    if (part <= bodies.length) continue;
    // Only the part's own comment (the one that would have been edited): a pasted copy is someone's.
    const c = list[0]!;
    try {
      await gh.client.rest.issues.deleteComment({ owner: gh.owner, repo: gh.repo, comment_id: c.id });
      result.deleted++;
    } catch (err) {
      if (statusOf(err) !== 403) throw explainGitHubError(err, `delete comment ${c.id} on #${issue}`, gh);
    }
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
