/**
 * `tidemark github drift-pr` through the CLI against the fake GitHub and the embedded sandbox: no drift,
 * no pull request; drift opens one pull request on `tidemark/drift-staging` (one commit on main through
 * the git data API, carrying the drift report), a later run updates that same pull request, with
 * `--adopt` its branch carries the specs `tidemark drift --adopt` rewrote to match live, a run with
 * nothing new writes nothing, and the pull request is closed once nothing drifts.
 */
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tidemark, useFakeGitHub } from './support.ts';

const { gh, project } = useFakeGitHub();

function git(dir: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t.invalid', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t.invalid', HOME: dir } });
}

/** Someone edits the segment's description in the Customer.io UI (the sandbox keeps its state in this file). */
async function editInCustomerIo(dir: string, name: string, description: string): Promise<void> {
  const file = path.join(dir, '.tidemark/sandbox/staging.json');
  const data = JSON.parse(await readFile(file, 'utf8')) as { services: { customerio: { segments: Array<{ name: string; description: string; updatedAt: number }> } } };
  const segment = data.services.customerio.segments.find((s) => s.name === name)!;
  segment.description = description;
  segment.updatedAt += 3600;
  await writeFile(file, JSON.stringify(data));
}

describe('github drift-pr', () => {
  it('opens one pull request for drift, updates it with the adopted specs, and closes it when nothing drifts', async () => {
    const fake = gh();
    const dir = await project();
    git(dir, 'init', '-q', '-b', 'main');
    await writeFile(path.join(dir, '.gitignore'), '.tidemark/\nspecs/data/\n');
    git(dir, 'add', '.');
    git(dir, 'commit', '-q', '-m', 'specs');
    expect((await tidemark(dir, ['apply', '--env', 'staging', '--auto-approve'])).code).toBe(0);

    const calm = await tidemark(dir, ['github', 'drift-pr', '--env', 'staging'], fake.env());
    expect([calm.code, calm.stdout]).toEqual([0, 'No drift in staging: no pull request needed.\n']);
    expect(fake.pullRequests()).toEqual([]);
    const mainSha = fake.refs.get('heads/main')!;

    await editInCustomerIo(dir, 'tidemark: vip_customers', 'VIPs (edited in the UI)');
    const opened = await tidemark(dir, ['github', 'drift-pr', '--env', 'staging'], fake.env());
    expect(opened.code, opened.stderr).toBe(0);
    expect(opened.stdout).toMatch(/^Drift in staging \(1 object\(s\)\): opened #\d+ on tidemark\/drift-staging: https:\/\/github\.example\//);
    const [pr] = fake.pullRequests();
    expect(pr!.title).toBe('tidemark: drift in staging');
    expect(pr!.pull!.base_ref).toBe('main');
    expect(pr!.body).toContain('## Drift in staging');
    expect(pr!.body).toMatch(/\| `customerio\.segment\.vip_customers` \| .*changed/);
    expect(pr!.body).toContain('+ description: "VIPs (edited in the UI)"');
    const branch = fake.refs.get('heads/tidemark/drift-staging')!;
    expect(fake.commits.get(branch)!.parents).toEqual([mainSha]);
    expect([...fake.filesOf('tidemark/drift-staging').keys()].sort()).toEqual(['README.md', 'tidemark-drift/staging.md']);
    expect(fake.filesOf('tidemark/drift-staging').get('tidemark-drift/staging.md')).toBe(pr!.body);

    // With --adopt: `tidemark drift --adopt` rewrites the spec, and the same pull request carries it
    // (and nothing untracked that happens to lie in specs/).
    await writeFile(path.join(dir, 'specs/notes.md'), 'scratch\n');
    const adopted = await tidemark(dir, ['github', 'drift-pr', '--env', 'staging', '--adopt'], fake.env());
    expect(adopted.code, adopted.stderr).toBe(0);
    expect(adopted.stdout).toMatch(new RegExp(`updated #${pr!.number} on tidemark/drift-staging, carrying specs/segments\\.yaml`));
    expect(fake.pullRequests()).toHaveLength(1);
    const files = fake.filesOf('tidemark/drift-staging');
    expect(files.get('specs/segments.yaml')).toBe(await readFile(path.join(dir, 'specs/segments.yaml'), 'utf8'));
    expect(files.get('specs/segments.yaml')).toContain('VIPs (edited in the UI)');
    expect([...files.keys()].sort()).toEqual(['README.md', 'specs/segments.yaml', 'tidemark-drift/staging.md']);
    const moved = fake.refs.get('heads/tidemark/drift-staging')!;
    expect(moved).not.toBe(branch);
    expect(fake.commits.get(moved)!.parents).toEqual([mainSha]);
    expect(fake.calls.filter((c) => c.method === 'PATCH' && c.path.endsWith('/git/refs/heads/tidemark/drift-staging')).map((c) => (c.body as { force: boolean }).force)).toEqual([true]);
    expect(fake.pullRequests()[0]!.body).toContain('This branch rewrites `specs/segments.yaml` to match live');

    // The next night, from a fresh checkout, the same drift: no commit, no update.
    git(dir, 'checkout', '--', 'specs');
    const writes = fake.writes().length;
    const same = await tidemark(dir, ['github', 'drift-pr', '--env', 'staging', '--adopt'], fake.env());
    expect(same.stdout).toMatch(/unchanged #\d+/);
    expect(fake.writes().slice(writes).map((c) => `${c.method} ${c.path.split('/').slice(4).join('/')}`)).toEqual(['POST git/trees']);

    // The edit is undone in Customer.io (a description cannot be changed through the API): drift is gone,
    // the pull request is closed with a comment.
    git(dir, 'checkout', '--', 'specs');
    await editInCustomerIo(dir, 'tidemark: vip_customers', 'Managed by tidemark from specs/segments.yaml');
    const closed = await tidemark(dir, ['github', 'drift-pr', '--env', 'staging'], fake.env());
    expect([closed.code, closed.stdout]).toEqual([0, `No drift in staging any more: closed #${pr!.number}.\n`]);
    expect(fake.pullRequests()[0]!.state).toBe('closed');
    expect(fake.commentsOn(pr!.number).map((c) => c.body)).toEqual([expect.stringMatching(/^No drift in staging any more \(checked 20.*\): closing\.$/)]);
  }, 120_000);

  it('stops before GitHub when drift --adopt cannot run', async () => {
    const fake = gh();
    const dir = await project();
    const before = fake.calls.length;
    const r = await tidemark(dir, ['github', 'drift-pr', '--env', 'nowhere', '--adopt'], fake.env());
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/`tidemark drift --adopt` failed \(exit 1\); no pull request was opened/);
    expect(fake.calls.length).toBe(before);
  }, 60_000);
});
