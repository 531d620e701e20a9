/**
 * The GitHub client: octokit's Octokit with its throttling and retry plugins, pointed at GITHUB_API_URL
 * (GitHub Enterprise Server serves the REST API under `https://HOST/api/v3`), authenticated with
 * GITHUB_TOKEN (or GH_TOKEN, what the gh CLI reads), on the repository GITHUB_REPOSITORY names.
 *
 * Rate limits: GitHub asks integrations to wait out a primary limit until its reset and a secondary limit
 * for its `retry-after`. The throttling plugin does the waiting and spaces writes; we let it retry a
 * bounded number of times, and only waits a CI job can afford, so a run that is throttled for an hour
 * fails with a message instead of hanging until the job's timeout. The retry plugin retries 5xx answers
 * and dropped connections with backoff (never 4xx: a validation error does not get better).
 */
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import { Octokit } from 'octokit';
import { UserError } from '../core/user-error.ts';

/** octokit's Octokit already carries both plugins; `plugin()` skips ones it has, so this states the dependency without doubling them. */
const Client = Octokit.plugin(throttling, retry);
export type GitHubClient = InstanceType<typeof Client>;

export interface GitHubRepo {
  client: GitHubClient;
  owner: string;
  repo: string;
  /** `owner/name`, for messages. */
  fullName: string;
  /** The API root, for messages (never carries the token). */
  apiUrl: string;
}

/** How many times a rate-limited request is retried, and the longest single wait accepted (seconds). */
export const RATE_LIMIT_RETRIES = 3;
export const RATE_LIMIT_MAX_WAIT_S = 120;

export function githubFromEnv(env: NodeJS.ProcessEnv, log: (line: string) => void = () => undefined): GitHubRepo {
  const token = (env.GITHUB_TOKEN ?? '').trim() || (env.GH_TOKEN ?? '').trim();
  if (!token) throw new UserError('no GitHub token: set GITHUB_TOKEN (in a workflow: `env: { GITHUB_TOKEN: ${{ github.token }} }`) or GH_TOKEN');
  const repository = (env.GITHUB_REPOSITORY ?? '').trim();
  const m = repository.match(/^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/);
  if (!m) throw new UserError(`GITHUB_REPOSITORY must be owner/name (got "${repository}")`, { hint: 'GitHub Actions sets it; elsewhere export it, e.g. GITHUB_REPOSITORY=acme/retention-specs' });
  const apiUrl = ((env.GITHUB_API_URL ?? '').trim() || 'https://api.github.com').replace(/\/+$/, '');
  let parsed: URL;
  try {
    parsed = new URL(apiUrl);
  } catch {
    throw new UserError(`GITHUB_API_URL is not a URL (got "${apiUrl}")`);
  }
  if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(parsed.hostname))) {
    throw new UserError(`GITHUB_API_URL must be https (got ${parsed.protocol}//${parsed.host}): the token would travel in clear`);
  }
  const onLimit = (kind: string) => (retryAfter: number, options: { method: string; url: string }, _octokit: unknown, retryCount: number) => {
    if (retryCount >= RATE_LIMIT_RETRIES || retryAfter > RATE_LIMIT_MAX_WAIT_S) {
      log(`GitHub ${kind} rate limit on ${options.method} ${options.url}: giving up (retry after ${retryAfter} s, ${retryCount} retries made)`);
      return false;
    }
    log(`GitHub ${kind} rate limit on ${options.method} ${options.url}: retrying in ${retryAfter} s`);
    return true;
  };
  const client = new Client({
    auth: token,
    baseUrl: apiUrl,
    userAgent: 'tidemark',
    throttle: { onRateLimit: onLimit('primary'), onSecondaryRateLimit: onLimit('secondary') },
    retry: { retries: 3 },
    // octokit logs every 4xx through console by default; our commands say what failed themselves.
    log: { debug: () => undefined, info: () => undefined, warn: (m: string) => log(m), error: () => undefined },
  });
  return { client, owner: m[1]!, repo: m[2]!, fullName: repository, apiUrl };
}

/** The HTTP status of an octokit RequestError, or undefined. */
export function statusOf(err: unknown): number | undefined {
  const s = (err as { status?: unknown } | null)?.status;
  return typeof s === 'number' ? s : undefined;
}

/**
 * A failed GitHub call as a message for the person running the job: which call, GitHub's status and
 * message, and what usually causes it. Never the token (octokit puts none in messages; the CLI redacts
 * anyway).
 */
export function explainGitHubError(err: unknown, what: string, gh: Pick<GitHubRepo, 'fullName' | 'apiUrl'>): UserError {
  const status = statusOf(err);
  const message = (err as { response?: { data?: { message?: unknown } } }).response?.data?.message;
  const said = typeof message === 'string' ? `: ${message}` : err instanceof Error ? `: ${err.message}` : '';
  const hint =
    status === 401
      ? 'The token is missing, expired or wrong: check GITHUB_TOKEN.'
      : status === 403
        ? 'The token lacks a permission: give the job `pull-requests: write`, `issues: write` or `contents: write` as this command needs (see docs/github.md), or it was rate limited.'
        : status === 404
          ? `Check GITHUB_REPOSITORY (${gh.fullName}) and GITHUB_API_URL (${gh.apiUrl}); a token without access also gets 404.`
          : status === undefined
            ? `Could not reach ${gh.apiUrl}.`
            : undefined;
  return new UserError(`GitHub refused to ${what} in ${gh.fullName}${status ? ` (HTTP ${status})` : ''}${said}`, { cause: err, ...(hint ? { hint } : {}) });
}

/** Runs one GitHub call, turning its failure into a UserError that names the call. */
export async function call<T>(gh: GitHubRepo, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw explainGitHubError(err, what, gh);
  }
}
