/**
 * Keeping the repository's issues in line with the problems of one run: open one issue per problem
 * (labelled, found again by the marker its body starts with), update it while it lasts, reopen it when it
 * comes back, and close it with a comment when it recovers. Issues are listed by the base label across
 * every page, open and closed; only bodies that start with a tidemark problem marker for this
 * environment are touched.
 */
import { call, statusOf, type GitHubRepo } from './client.ts';
import { BASE_LABEL, parseProblemMarker, type ProblemReport } from './problems.ts';

export interface IssueSyncResult {
  opened: number[];
  updated: number[];
  reopened: number[];
  closed: number[];
  unchanged: number[];
}

const LABEL_COLOURS: Record<string, string> = {
  [BASE_LABEL]: '0e8a16',
  [`${BASE_LABEL}:stale`]: 'fbca04',
  [`${BASE_LABEL}:failed`]: 'd93f0b',
  [`${BASE_LABEL}:rejects`]: 'c5def5',
  [`${BASE_LABEL}:responses`]: 'bfdadc',
};

async function ensureLabel(gh: GitHubRepo, name: string): Promise<void> {
  try {
    await gh.client.rest.issues.getLabel({ owner: gh.owner, repo: gh.repo, name });
    return;
  } catch (err) {
    if (statusOf(err) !== 404) throw err;
  }
  try {
    await gh.client.rest.issues.createLabel({ owner: gh.owner, repo: gh.repo, name, color: LABEL_COLOURS[name] ?? 'ededed', description: 'Opened and closed by tidemark' });
  } catch (err) {
    // Another run created it in between.
    if (statusOf(err) !== 422) throw err;
  }
}

interface ListedIssue {
  number: number;
  state: string;
  body?: string | null;
  title: string;
  labels: Array<string | { name?: string }>;
  pull_request?: unknown;
}

export async function syncProblemIssues(gh: GitHubRepo, environment: string, report: ProblemReport, at: string): Promise<IssueSyncResult> {
  const result: IssueSyncResult = { opened: [], updated: [], reopened: [], closed: [], unchanged: [] };
  const listed = (await call(gh, 'list the tidemark issues', () =>
    gh.client.paginate(gh.client.rest.issues.listForRepo, { owner: gh.owner, repo: gh.repo, labels: BASE_LABEL, state: 'all', per_page: 100, sort: 'created', direction: 'desc' }),
  )) as ListedIssue[];
  const ours = new Map<string, { open?: ListedIssue; closed?: ListedIssue }>();
  for (const i of listed) {
    if (i.pull_request) continue;
    const m = parseProblemMarker(i.body);
    if (!m || m.environment !== environment) continue;
    const slot = ours.get(m.key) ?? {};
    // Newest first: the first open one is kept up to date, the newest closed one is reopened.
    if (i.state === 'open') slot.open ??= i;
    else slot.closed ??= i;
    ours.set(m.key, slot);
  }
  let labelsReady = false;
  for (const p of report.problems) {
    const slot = ours.get(p.key);
    if (!labelsReady) {
      await call(gh, 'create the tidemark labels', async () => {
        for (const l of new Set(report.problems.flatMap((x) => x.labels))) await ensureLabel(gh, l);
      });
      labelsReady = true;
    }
    if (slot?.open) {
      const i = slot.open;
      if (i.body === p.body && i.title === p.title) {
        result.unchanged.push(i.number);
        continue;
      }
      await call(gh, `update issue #${i.number}`, () => gh.client.rest.issues.update({ owner: gh.owner, repo: gh.repo, issue_number: i.number, title: p.title, body: p.body, labels: p.labels }));
      result.updated.push(i.number);
    } else if (slot?.closed) {
      const i = slot.closed;
      await call(gh, `reopen issue #${i.number}`, () => gh.client.rest.issues.update({ owner: gh.owner, repo: gh.repo, issue_number: i.number, state: 'open', title: p.title, body: p.body, labels: p.labels }));
      await call(gh, `comment on issue #${i.number}`, () => gh.client.rest.issues.createComment({ owner: gh.owner, repo: gh.repo, issue_number: i.number, body: `The problem is back (checked ${at}).` }));
      result.reopened.push(i.number);
    } else {
      const r = await call(gh, 'open an issue', () => gh.client.rest.issues.create({ owner: gh.owner, repo: gh.repo, title: p.title, body: p.body, labels: p.labels }));
      result.opened.push(r.data.number);
    }
  }
  const current = new Set(report.problems.map((p) => p.key));
  for (const [key, slot] of ours) {
    const i = slot.open;
    if (!i || current.has(key)) continue;
    const source = /^(stale|failed|rejects):(.+)$/.exec(key)?.[2];
    const prefix = [...report.recoveredPrefixes.keys()].find((p) => key.startsWith(p));
    const why =
      report.recovered.get(key) ??
      (source !== undefined && !report.sources.has(source) ? `source ${source} is no longer declared` : undefined) ??
      (prefix !== undefined ? report.recoveredPrefixes.get(prefix) : undefined);
    if (why === undefined) continue; // not checked this run (e.g. a step that was skipped): left as it is
    await call(gh, `comment on issue #${i.number}`, () => gh.client.rest.issues.createComment({ owner: gh.owner, repo: gh.repo, issue_number: i.number, body: `Recovered: ${why} (checked ${at}). Closing.` }));
    await call(gh, `close issue #${i.number}`, () => gh.client.rest.issues.update({ owner: gh.owner, repo: gh.repo, issue_number: i.number, state: 'closed', state_reason: 'completed' }));
    result.closed.push(i.number);
  }
  return result;
}
