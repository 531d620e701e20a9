/**
 * A fake GitHub REST API on 127.0.0.1 for the `tidemark github …` tests: the routes tidemark uses, with
 * GitHub's wire shapes (ids and numbers, `user`, `labels`, `pull_request` on issues that are pull requests,
 * `merge_commit_sha`, git refs/commits/trees/blobs), pagination by `per_page`/`page` with a `Link` header,
 * GitHub's error bodies (`{ message, documentation_url }`), token authentication, and faults a test can
 * queue (a secondary rate limit, a 5xx). It records every call, so tests assert on what tidemark sent.
 *
 * It serves under a path prefix (`/api/v3`, as GitHub Enterprise Server does), so a client that ignored
 * GITHUB_API_URL's path would get 404s. It shares no code with reconciler/github.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedCall {
  method: string;
  /** Path without the prefix and query: `/repos/o/r/issues/7/comments`. */
  path: string;
  query: Record<string, string>;
  body: unknown;
  status: number;
}

export interface FakeUser {
  login: string;
  id: number;
  type: 'User' | 'Bot';
}

export const BOT: FakeUser = { login: 'github-actions[bot]', id: 41898282, type: 'Bot' };
export const HUMAN: FakeUser = { login: 'octo-reviewer', id: 583231, type: 'User' };

interface Comment {
  id: number;
  issue: number;
  body: string;
  user: FakeUser;
  created_at: string;
  updated_at: string;
}

interface Issue {
  number: number;
  id: number;
  title: string;
  body: string;
  state: 'open' | 'closed';
  labels: string[];
  user: FakeUser;
  created_at: string;
  updated_at: string;
  closed_at: string | null;
  pull?: { head_ref: string; head_sha: string; head_repo: string; base_ref: string; merged: boolean; merge_commit_sha: string | null };
}

interface GitCommit {
  sha: string;
  tree: string;
  parents: string[];
  message: string;
}

interface Fault {
  method: string;
  path: RegExp;
  status: number;
  message: string;
  headers: Record<string, string>;
  times: number;
}

export const PREFIX = '/api/v3';

export class FakeGitHub {
  readonly calls: RecordedCall[] = [];
  readonly owner = 'hearth-harvest';
  readonly repo = 'retention-specs';
  readonly token = 'ghs_faketoken0123456789';
  /** Who the token acts as: what comments and issues it creates are authored by. */
  actor: FakeUser = BOT;
  private server?: Server;
  private nextId = 1000;
  private nextNumber = 1;
  private clock = Date.parse('2026-12-01T09:00:00Z');
  readonly comments: Comment[] = [];
  readonly issues: Issue[] = [];
  readonly labels = new Map<string, { id: number; name: string; color: string; description: string | null }>();
  readonly refs = new Map<string, string>();
  readonly commits = new Map<string, GitCommit>();
  /** Tree sha → path → blob sha (flat: what a tree and its subtrees hold, by full path). */
  readonly trees = new Map<string, Map<string, string>>();
  readonly blobs = new Map<string, string>();
  private faults: Fault[] = [];

  constructor() {
    const tree = this.putTree(new Map([['README.md', this.putBlob('# specs\n')]]));
    const sha = this.putCommit({ tree, parents: [], message: 'initial' });
    this.refs.set('heads/main', sha);
  }

  get url(): string {
    const a = this.server?.address() as AddressInfo | undefined;
    if (!a) throw new Error('fake GitHub not started');
    return `http://127.0.0.1:${a.port}${PREFIX}`;
  }

  get repository(): string {
    return `${this.owner}/${this.repo}`;
  }

  /** The environment that points `tidemark github` at this fake. */
  env(): Record<string, string> {
    return { GITHUB_API_URL: this.url, GITHUB_TOKEN: this.token, GITHUB_REPOSITORY: this.repository };
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** Makes the next `times` calls matching method and path fail (e.g. 403 secondary rate limit). */
  fail(method: string, path: RegExp, o: { status: number; message: string; headers?: Record<string, string>; times?: number }): void {
    this.faults.push({ method, path, status: o.status, message: o.message, headers: o.headers ?? {}, times: o.times ?? 1 });
  }

  /** Calls that changed something (every method but GET). */
  writes(): RecordedCall[] {
    return this.calls.filter((c) => c.method !== 'GET');
  }

  // ——— seeding, as the tests' world ———

  addPullRequest(o: { headRef: string; headSha?: string; headRepo?: string; title?: string; merged?: boolean; mergeCommitSha?: string }): number {
    const number = this.nextNumber++;
    const headSha = o.headSha ?? sha1(`head ${number}`);
    this.issues.push({
      number,
      id: this.nextId++,
      title: o.title ?? `change specs ${number}`,
      body: '',
      state: o.merged ? 'closed' : 'open',
      labels: [],
      user: HUMAN,
      created_at: this.now(),
      updated_at: this.now(),
      closed_at: o.merged ? this.now() : null,
      pull: { head_ref: o.headRef, head_sha: headSha, head_repo: o.headRepo ?? this.repository, base_ref: 'main', merged: !!o.merged, merge_commit_sha: o.mergeCommitSha ?? null },
    });
    return number;
  }

  addIssue(o: { title: string; body: string; labels?: string[]; user?: FakeUser }): number {
    const number = this.nextNumber++;
    for (const l of o.labels ?? []) if (!this.labels.has(l)) this.labels.set(l, { id: this.nextId++, name: l, color: 'ededed', description: null });
    this.issues.push({ number, id: this.nextId++, title: o.title, body: o.body, state: 'open', labels: o.labels ?? [], user: o.user ?? HUMAN, created_at: this.now(), updated_at: this.now(), closed_at: null });
    return number;
  }

  merge(number: number, mergeCommitSha: string): void {
    const pr = this.issue(number);
    if (!pr?.pull) throw new Error(`no pull request #${number}`);
    pr.pull.merged = true;
    pr.pull.merge_commit_sha = mergeCommitSha;
    pr.state = 'closed';
    pr.closed_at = this.now();
  }

  addComment(issue: number, body: string, user: FakeUser = HUMAN): number {
    const c: Comment = { id: this.nextId++, issue, body, user, created_at: this.now(), updated_at: this.now() };
    this.comments.push(c);
    return c.id;
  }

  commentsOn(issue: number): Comment[] {
    return this.comments.filter((c) => c.issue === issue).sort((a, b) => a.id - b.id);
  }

  issue(number: number): Issue | undefined {
    return this.issues.find((i) => i.number === number);
  }

  pullRequests(): Issue[] {
    return this.issues.filter((i) => i.pull);
  }

  /** The files of a branch: path → content. */
  filesOf(branch: string): Map<string, string> {
    const sha = this.refs.get(`heads/${branch}`);
    if (!sha) throw new Error(`no branch ${branch}`);
    const tree = this.trees.get(this.commits.get(sha)!.tree)!;
    return new Map([...tree].map(([p, b]) => [p, this.blobs.get(b)!]));
  }

  // ——— the server ———

  private now(): string {
    this.clock += 1000;
    return new Date(this.clock).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  private putBlob(content: string): string {
    const sha = sha1(`blob ${content}`);
    this.blobs.set(sha, content);
    return sha;
  }

  private putTree(entries: Map<string, string>): string {
    const sha = sha1(`tree ${JSON.stringify([...entries].sort())}`);
    this.trees.set(sha, entries);
    return sha;
  }

  private putCommit(c: Omit<GitCommit, 'sha'>): string {
    const sha = sha1(`commit ${c.tree} ${c.parents.join(',')} ${c.message} ${this.nextId++}`);
    this.commits.set(sha, { ...c, sha });
    return sha;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      body = raw;
    }
    const path = url.pathname.startsWith(PREFIX) ? url.pathname.slice(PREFIX.length) : url.pathname;
    const call: RecordedCall = { method: req.method ?? 'GET', path: decodeURIComponent(path), query: Object.fromEntries(url.searchParams), body, status: 0 };
    this.calls.push(call);
    const send = (status: number, payload?: unknown, headers: Record<string, string> = {}) => {
      call.status = status;
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-github-media-type': 'github.v3', 'x-ratelimit-remaining': '4999', ...headers });
      res.end(payload === undefined ? '' : JSON.stringify(payload));
    };
    const error = (status: number, message: string, headers: Record<string, string> = {}) =>
      send(status, { message, documentation_url: 'https://docs.github.com/rest', status: String(status) }, headers);

    if (!url.pathname.startsWith(PREFIX)) return error(404, 'Not Found');
    const auth = req.headers.authorization ?? '';
    if (auth !== `token ${this.token}` && auth !== `Bearer ${this.token}`) return error(401, 'Bad credentials');
    const fault = this.faults.find((f) => f.times > 0 && f.method === call.method && f.path.test(call.path));
    if (fault) {
      fault.times--;
      return error(fault.status, fault.message, fault.headers);
    }
    const repoPrefix = `/repos/${this.owner}/${this.repo}`;
    if (!call.path.startsWith(`${repoPrefix}`)) return error(404, 'Not Found');
    const p = call.path.slice(repoPrefix.length);
    const b = (body ?? {}) as Record<string, unknown>;
    const m = call.method;
    let g: RegExpMatchArray | null;

    if (m === 'GET' && p === '') return send(200, this.repoJson());

    // Issue comments (pull requests are issues here too)
    if ((g = p.match(/^\/issues\/(\d+)\/comments$/))) {
      const issue = this.issue(Number(g[1]));
      if (!issue) return error(404, 'Not Found');
      if (m === 'GET') return this.page(req, res, call, this.commentsOn(issue.number).map((c) => this.commentJson(c)));
      if (m === 'POST') {
        if (typeof b.body !== 'string' || b.body === '') return error(422, 'Validation Failed');
        if (b.body.length > 65536) return error(422, 'Validation Failed: body is too long (maximum is 65536 characters)');
        const c: Comment = { id: this.nextId++, issue: issue.number, body: b.body, user: this.actor, created_at: this.now(), updated_at: this.now() };
        this.comments.push(c);
        return send(201, this.commentJson(c));
      }
    }
    if ((g = p.match(/^\/issues\/comments\/(\d+)$/))) {
      const c = this.comments.find((x) => x.id === Number(g![1]));
      if (!c) return error(404, 'Not Found');
      if (m === 'GET') return send(200, this.commentJson(c));
      if (m === 'PATCH') {
        if (typeof b.body !== 'string' || b.body === '') return error(422, 'Validation Failed');
        if (b.body.length > 65536) return error(422, 'Validation Failed: body is too long (maximum is 65536 characters)');
        if (c.user.login !== this.actor.login) return error(403, 'Resource not accessible by integration');
        c.body = b.body;
        c.updated_at = this.now();
        return send(200, this.commentJson(c));
      }
      if (m === 'DELETE') {
        if (c.user.login !== this.actor.login) return error(403, 'Resource not accessible by integration');
        this.comments.splice(this.comments.indexOf(c), 1);
        return send(204);
      }
    }

    // Pull requests
    if ((g = p.match(/^\/pulls\/(\d+)$/))) {
      const pr = this.issue(Number(g[1]));
      if (!pr?.pull) return error(404, 'Not Found');
      if (m === 'GET') return send(200, this.pullJson(pr));
      if (m === 'PATCH') {
        if (typeof b.title === 'string') pr.title = b.title;
        if (typeof b.body === 'string') pr.body = b.body;
        if (b.state === 'closed' || b.state === 'open') {
          pr.state = b.state;
          pr.closed_at = b.state === 'closed' ? this.now() : null;
        }
        pr.updated_at = this.now();
        return send(200, this.pullJson(pr));
      }
    }
    if (p === '/pulls') {
      if (m === 'GET') {
        const state = call.query.state ?? 'open';
        const head = call.query.head;
        const list = this.pullRequests().filter(
          (pr) => (state === 'all' || pr.state === state) && (!head || `${pr.pull!.head_repo.split('/')[0]}:${pr.pull!.head_ref}` === head) && (!call.query.base || pr.pull!.base_ref === call.query.base),
        );
        return this.page(req, res, call, list.map((pr) => this.pullJson(pr)));
      }
      if (m === 'POST') {
        const head = String(b.head ?? '');
        const base = String(b.base ?? '');
        const headSha = this.refs.get(`heads/${head}`);
        const baseSha = this.refs.get(`heads/${base}`);
        if (!headSha || !baseSha || typeof b.title !== 'string') return error(422, 'Validation Failed');
        if (this.commits.get(headSha)!.tree === this.commits.get(baseSha)!.tree && headSha === baseSha) return error(422, `Validation Failed: No commits between ${base} and ${head}`);
        if (this.pullRequests().some((pr) => pr.state === 'open' && pr.pull!.head_ref === head)) return error(422, `Validation Failed: A pull request already exists for ${this.owner}:${head}.`);
        const number = this.nextNumber++;
        const pr: Issue = {
          number,
          id: this.nextId++,
          title: b.title,
          body: typeof b.body === 'string' ? b.body : '',
          state: 'open',
          labels: [],
          user: this.actor,
          created_at: this.now(),
          updated_at: this.now(),
          closed_at: null,
          pull: { head_ref: head, head_sha: headSha, head_repo: this.repository, base_ref: base, merged: false, merge_commit_sha: null },
        };
        this.issues.push(pr);
        return send(201, this.pullJson(pr));
      }
    }
    if ((g = p.match(/^\/commits\/([0-9a-f]{7,40})\/pulls$/)) && m === 'GET') {
      const list = this.pullRequests().filter((pr) => pr.pull!.merge_commit_sha === g![1] || pr.pull!.head_sha === g![1]);
      return this.page(req, res, call, list.map((pr) => this.pullJson(pr)));
    }

    // Issues
    if (p === '/issues') {
      if (m === 'GET') {
        const state = call.query.state ?? 'open';
        const labels = (call.query.labels ?? '').split(',').filter(Boolean);
        const list = this.issues
          .filter((i) => (state === 'all' || i.state === state) && labels.every((l) => i.labels.includes(l)))
          .sort((a, c) => c.number - a.number);
        return this.page(req, res, call, list.map((i) => this.issueJson(i)));
      }
      if (m === 'POST') {
        if (typeof b.title !== 'string' || b.title === '') return error(422, 'Validation Failed');
        const labels = Array.isArray(b.labels) ? b.labels.map(String) : [];
        for (const l of labels) if (!this.labels.has(l)) this.labels.set(l, { id: this.nextId++, name: l, color: 'ededed', description: null });
        const issue: Issue = {
          number: this.nextNumber++,
          id: this.nextId++,
          title: b.title,
          body: typeof b.body === 'string' ? b.body : '',
          state: 'open',
          labels,
          user: this.actor,
          created_at: this.now(),
          updated_at: this.now(),
          closed_at: null,
        };
        this.issues.push(issue);
        return send(201, this.issueJson(issue));
      }
    }
    if ((g = p.match(/^\/issues\/(\d+)$/))) {
      const issue = this.issue(Number(g[1]));
      if (!issue) return error(404, 'Not Found');
      if (m === 'GET') return send(200, this.issueJson(issue));
      if (m === 'PATCH') {
        if (typeof b.title === 'string') issue.title = b.title;
        if (typeof b.body === 'string') issue.body = b.body;
        if (Array.isArray(b.labels)) issue.labels = b.labels.map(String);
        if (b.state === 'closed' || b.state === 'open') {
          issue.state = b.state;
          issue.closed_at = b.state === 'closed' ? this.now() : null;
        }
        issue.updated_at = this.now();
        return send(200, this.issueJson(issue));
      }
    }
    if ((g = p.match(/^\/labels\/(.+)$/)) && m === 'GET') {
      const l = this.labels.get(g[1]!);
      return l ? send(200, l) : error(404, 'Not Found');
    }
    if (p === '/labels' && m === 'POST') {
      const name = String(b.name ?? '');
      if (!name) return error(422, 'Validation Failed');
      if (this.labels.has(name)) return send(422, { message: 'Validation Failed', errors: [{ resource: 'Label', code: 'already_exists', field: 'name' }] });
      const l = { id: this.nextId++, name, color: String(b.color ?? 'ededed'), description: typeof b.description === 'string' ? b.description : null };
      this.labels.set(name, l);
      return send(201, l);
    }

    // Git data
    if ((g = p.match(/^\/git\/ref\/(heads\/.+)$/)) && m === 'GET') {
      const sha = this.refs.get(g[1]!);
      return sha ? send(200, this.refJson(g[1]!, sha)) : error(404, 'Not Found');
    }
    if (p === '/git/refs' && m === 'POST') {
      const ref = String(b.ref ?? '');
      const sha = String(b.sha ?? '');
      if (!ref.startsWith('refs/heads/') || !this.commits.has(sha)) return error(422, 'Validation Failed');
      const name = ref.slice('refs/'.length);
      if (this.refs.has(name)) return error(422, 'Reference already exists');
      this.refs.set(name, sha);
      return send(201, this.refJson(name, sha));
    }
    if ((g = p.match(/^\/git\/refs\/(heads\/.+)$/)) && m === 'PATCH') {
      const name = g[1]!;
      const current = this.refs.get(name);
      const sha = String(b.sha ?? '');
      if (!current) return error(422, 'Reference does not exist');
      if (!this.commits.has(sha)) return error(422, 'Object does not exist');
      if (!b.force && !this.isAncestor(current, sha)) return error(422, 'Update is not a fast forward');
      this.refs.set(name, sha);
      return send(200, this.refJson(name, sha));
    }
    if ((g = p.match(/^\/git\/commits\/([0-9a-f]{40})$/)) && m === 'GET') {
      const c = this.commits.get(g[1]!);
      return c ? send(200, this.commitJson(c)) : error(404, 'Not Found');
    }
    if (p === '/git/blobs' && m === 'POST') {
      if (typeof b.content !== 'string') return error(422, 'Validation Failed');
      const content = b.encoding === 'base64' ? Buffer.from(b.content, 'base64').toString('utf8') : b.content;
      const sha = this.putBlob(content);
      return send(201, { sha, url: `${this.url}${repoPrefix}/git/blobs/${sha}` });
    }
    if (p === '/git/trees' && m === 'POST') {
      const base = typeof b.base_tree === 'string' ? this.trees.get(b.base_tree) : new Map<string, string>();
      if (!base) return error(422, 'Invalid tree info');
      const entries = new Map(base);
      for (const e of Array.isArray(b.tree) ? (b.tree as Record<string, unknown>[]) : []) {
        const path = String(e.path ?? '');
        if (!path || e.mode !== '100644' || e.type !== 'blob') return error(422, 'Invalid tree info');
        if (e.sha === null) entries.delete(path);
        else if (typeof e.sha === 'string' && this.blobs.has(e.sha)) entries.set(path, e.sha);
        else if (typeof e.content === 'string') entries.set(path, this.putBlob(e.content));
        else return error(422, 'Invalid tree info');
      }
      const sha = this.putTree(entries);
      return send(201, { sha, truncated: false, tree: [...entries].map(([path, s]) => ({ path, mode: '100644', type: 'blob', sha: s })) });
    }
    if (p === '/git/commits' && m === 'POST') {
      const tree = String(b.tree ?? '');
      const parents = Array.isArray(b.parents) ? b.parents.map(String) : [];
      if (!this.trees.has(tree) || parents.some((x) => !this.commits.has(x)) || typeof b.message !== 'string') return error(422, 'Validation Failed');
      const sha = this.putCommit({ tree, parents, message: b.message });
      return send(201, this.commitJson(this.commits.get(sha)!));
    }
    return error(404, 'Not Found');
  }

  private isAncestor(ancestor: string, of: string): boolean {
    const seen = new Set<string>();
    const queue = [of];
    while (queue.length) {
      const s = queue.pop()!;
      if (s === ancestor) return true;
      if (seen.has(s)) continue;
      seen.add(s);
      queue.push(...(this.commits.get(s)?.parents ?? []));
    }
    return false;
  }

  /** GitHub's pagination: `per_page` (default 30, at most 100), `page`, and a Link header with next/last. */
  private page(req: IncomingMessage, res: ServerResponse, call: RecordedCall, items: unknown[]): void {
    const perPage = Math.min(100, Math.max(1, Number(call.query.per_page ?? 30) || 30));
    const page = Math.max(1, Number(call.query.page ?? 1) || 1);
    const last = Math.max(1, Math.ceil(items.length / perPage));
    const link = (n: number, rel: string) => {
      const u = new URL(`${PREFIX}${call.path}`, `http://${req.headers.host}`);
      for (const [k, v] of Object.entries(call.query)) u.searchParams.set(k, v);
      u.searchParams.set('per_page', String(perPage));
      u.searchParams.set('page', String(n));
      return `<${u.toString()}>; rel="${rel}"`;
    };
    const links = [];
    if (page < last) links.push(link(page + 1, 'next'), link(last, 'last'));
    if (page > 1) links.push(link(1, 'first'), link(page - 1, 'prev'));
    call.status = 200;
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', ...(links.length ? { link: links.join(', ') } : {}) });
    res.end(JSON.stringify(items.slice((page - 1) * perPage, page * perPage)));
  }

  private repoJson() {
    return { id: 7001, name: this.repo, full_name: this.repository, owner: { login: this.owner, id: 7000, type: 'Organization' }, default_branch: 'main', private: true };
  }

  private userJson(u: FakeUser) {
    return { login: u.login, id: u.id, type: u.type };
  }

  private commentJson(c: Comment) {
    const base = `https://github.example/${this.repository}`;
    return {
      id: c.id,
      node_id: `IC_${c.id}`,
      url: `${this.url}/repos/${this.repository}/issues/comments/${c.id}`,
      html_url: `${base}/pull/${c.issue}#issuecomment-${c.id}`,
      issue_url: `${this.url}/repos/${this.repository}/issues/${c.issue}`,
      body: c.body,
      user: this.userJson(c.user),
      created_at: c.created_at,
      updated_at: c.updated_at,
      author_association: c.user.type === 'Bot' ? 'NONE' : 'MEMBER',
    };
  }

  private issueJson(i: Issue) {
    return {
      id: i.id,
      number: i.number,
      title: i.title,
      body: i.body,
      state: i.state,
      labels: i.labels.map((name) => this.labels.get(name) ?? { id: 0, name, color: 'ededed', description: null }),
      user: this.userJson(i.user),
      html_url: `https://github.example/${this.repository}/${i.pull ? 'pull' : 'issues'}/${i.number}`,
      created_at: i.created_at,
      updated_at: i.updated_at,
      closed_at: i.closed_at,
      ...(i.pull ? { pull_request: { url: `${this.url}/repos/${this.repository}/pulls/${i.number}`, merged_at: i.pull.merged ? i.closed_at : null } } : {}),
    };
  }

  private pullJson(i: Issue) {
    const pr = i.pull!;
    return {
      id: i.id,
      number: i.number,
      state: i.state,
      title: i.title,
      body: i.body,
      user: this.userJson(i.user),
      html_url: `https://github.example/${this.repository}/pull/${i.number}`,
      labels: i.labels.map((name) => this.labels.get(name) ?? { id: 0, name, color: 'ededed', description: null }),
      merged: pr.merged,
      merged_at: pr.merged ? i.closed_at : null,
      merge_commit_sha: pr.merge_commit_sha,
      head: { ref: pr.head_ref, sha: pr.head_sha, label: `${pr.head_repo.split('/')[0]}:${pr.head_ref}`, repo: { full_name: pr.head_repo } },
      base: { ref: pr.base_ref, sha: this.refs.get(`heads/${pr.base_ref}`) ?? null, repo: { full_name: this.repository } },
      created_at: i.created_at,
      updated_at: i.updated_at,
      closed_at: i.closed_at,
    };
  }

  private refJson(name: string, sha: string) {
    return { ref: `refs/${name}`, node_id: `REF_${name}`, url: `${this.url}/repos/${this.repository}/git/refs/${name}`, object: { type: 'commit', sha, url: `${this.url}/repos/${this.repository}/git/commits/${sha}` } };
  }

  private commitJson(c: GitCommit) {
    return {
      sha: c.sha,
      url: `${this.url}/repos/${this.repository}/git/commits/${c.sha}`,
      message: c.message,
      tree: { sha: c.tree, url: `${this.url}/repos/${this.repository}/git/trees/${c.tree}` },
      parents: c.parents.map((sha) => ({ sha, url: `${this.url}/repos/${this.repository}/git/commits/${sha}` })),
      author: { name: 'tidemark', email: 'tidemark@users.noreply.github.example', date: new Date(this.clock).toISOString() },
    };
  }
}

function sha1(s: string): string {
  return createHash('sha1').update(s).digest('hex');
}
