/**
 * `tidemark github comment` through the CLI against the fake GitHub: the plan posted as one sticky
 * comment per environment, found again by its marker across pages of comments and edited in place; a
 * plan over GitHub's 65,536 characters posted in numbered parts, and the parts a longer plan left
 * deleted; rate limits waited out; bad calls refused with a message.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Plan } from '../../reconciler/plan/plan.ts';
import { HUMAN } from '../support/fake-github.ts';
import { editFile, personalData, tidemark, useFakeGitHub } from './support.ts';

const { gh, project } = useFakeGitHub();
const MARKER = '<!-- tidemark-plan environment=staging -->';

async function savedPlan(dir: string, env = 'staging'): Promise<void> {
  const r = await tidemark(dir, ['plan', '--env', env, '--out', 'plan.json']);
  expect(r.code, r.stderr).toBe(0);
}

describe('github comment', () => {
  it('creates one sticky comment, then edits it in place (found on the second page), and leaves other comments alone', async () => {
    const fake = gh();
    const dir = await project();
    const pr = fake.addPullRequest({ headRef: 'change-segments' });
    // 120 comments first: the plan comment lands on page 2 of 100, which only pagination finds.
    for (let i = 0; i < 120; i++) fake.addComment(pr, i === 3 ? `quoting the bot: ${MARKER}` : `review note ${i}`);
    fake.addComment(pr, '<!-- tidemark-plan environment=production -->\nproduction is another comment', HUMAN);
    await savedPlan(dir);

    const first = await tidemark(dir, ['github', 'comment', '--pr', String(pr), '--plan', 'plan.json'], fake.env());
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^Posted the plan for staging on #\d+ as one comment \(1 created, 0 updated, 0 unchanged\): https:\/\/github\.example\//);
    const ours = fake.commentsOn(pr).filter((c) => c.body.startsWith(MARKER));
    expect(ours).toHaveLength(1);
    const body = ours[0]!.body;
    expect(body).toContain('## Plan for staging: 6 to create');
    expect(body).toContain('### Data impact');
    // What moves nobody is collapsed; the held audiences are news and stay in the open table.
    expect(body).toMatch(/<details><summary>3 survey targets with nothing to change<\/summary>/);
    expect(body).toMatch(/\| vip_customers \(held: source warehouse_vip has never synced/);
    expect(personalData(body)).toEqual([]);

    // The specs change: the same comment is edited, nothing new is posted.
    await editFile(path.join(dir, 'specs/segments.yaml'), (t) => t.replace(/description: Cancelled subscribers/, 'description: Lapsed subscribers'));
    await savedPlan(dir);
    const before = fake.calls.length;
    const second = await tidemark(dir, ['github', 'comment', '--pr', String(pr), '--env', 'staging', '--plan', 'plan.json'], fake.env());
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/as one comment \(0 created, 1 updated, 0 unchanged\)/);
    const calls = fake.calls.slice(before);
    expect(calls.filter((c) => c.method === 'GET').map((c) => c.query.page ?? '1')).toEqual(['1', '2']);
    expect(calls.filter((c) => c.method !== 'GET')).toEqual([expect.objectContaining({ method: 'PATCH', path: `/repos/${fake.repository}/issues/comments/${ours[0]!.id}`, status: 200 })]);
    expect(fake.commentsOn(pr).find((c) => c.id === ours[0]!.id)!.body).toContain('Lapsed subscribers');
    expect(fake.commentsOn(pr).filter((c) => c.body.startsWith(MARKER))).toHaveLength(1);
    expect(fake.commentsOn(pr).find((c) => c.body.startsWith('quoting the bot'))!.body).toBe(`quoting the bot: ${MARKER}`);
    expect(fake.commentsOn(pr)).toHaveLength(122);

    // The same plan again: nothing to write.
    const writes = fake.writes().length;
    const third = await tidemark(dir, ['github', 'comment', '--pr', String(pr), '--plan', 'plan.json'], fake.env());
    expect(third.stdout).toMatch(/\(0 created, 0 updated, 1 unchanged\)/);
    expect(fake.writes().length).toBe(writes);
  });

  it("never takes over a comment someone pasted the marker into: the bot's own is created, then edited", async () => {
    const fake = gh();
    const dir = await project();
    const pr = fake.addPullRequest({ headRef: 'pasted-marker' });
    const pasted = fake.addComment(pr, `${MARKER}\nI copied the old plan here`, HUMAN);
    await savedPlan(dir);
    const first = await tidemark(dir, ['github', 'comment', '--pr', String(pr), '--plan', 'plan.json'], fake.env());
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain('(1 created, 0 updated, 0 unchanged)');
    const bots = fake.commentsOn(pr).filter((c) => c.user.type === 'Bot');
    expect(bots).toHaveLength(1);
    await editFile(path.join(dir, 'specs/segments.yaml'), (t) => t.replace(/description: Cancelled subscribers/, 'description: Lapsed subscribers'));
    await savedPlan(dir);
    const second = await tidemark(dir, ['github', 'comment', '--pr', String(pr), '--plan', 'plan.json'], fake.env());
    expect(second.stdout).toContain('(0 created, 1 updated, 0 unchanged)');
    expect(fake.commentsOn(pr).find((c) => c.id === bots[0]!.id)!.body).toContain('Lapsed subscribers');
    expect(fake.commentsOn(pr).find((c) => c.id === pasted)!.body).toBe(`${MARKER}\nI copied the old plan here`);
    expect(fake.writes().filter((c) => c.path.endsWith(`/comments/${pasted}`))).toEqual([expect.objectContaining({ method: 'PATCH', status: 403 })]);
  });

  it('posts a markdown plan as it is, under the marker it carries', async () => {
    const fake = gh();
    const dir = await project();
    const pr = fake.addPullRequest({ headRef: 'md-plan' });
    const r = await tidemark(dir, ['plan', '--env', 'staging', '--format', 'markdown']);
    await writeFile(path.join(dir, 'plan.md'), r.stdout);
    const posted = await tidemark(dir, ['github', 'comment', '--pr', String(pr), 'plan.md'], fake.env());
    expect(posted.code, posted.stderr).toBe(0);
    expect(fake.commentsOn(pr).map((c) => c.body)).toEqual([r.stdout]);
    const wrongEnv = await tidemark(dir, ['github', 'comment', '--pr', String(pr), '--env', 'production', 'plan.md'], fake.env());
    expect(wrongEnv.code).toBe(1);
    expect(wrongEnv.stderr).toMatch(/plan\.md is a plan for environment "staging", not "production"/);
  });

  it('splits a plan over 65,536 characters into numbered parts, then edits part 1 and deletes the rest when it shrinks', async () => {
    const fake = gh();
    const dir = await project();
    const pr = fake.addPullRequest({ headRef: 'huge-plan' });
    await savedPlan(dir);
    const plan = JSON.parse(await readFile(path.join(dir, 'plan.json'), 'utf8')) as Plan;
    // 300 segments with long descriptions: ~150,000 characters of markdown.
    const template = plan.changes.find((c) => c.action === 'create' && c.address.startsWith('customerio.segment.'))!;
    const many = Array.from({ length: 300 }, (_, i) => ({
      ...template,
      address: `customerio.segment.bulk_${String(i).padStart(3, '0')}`,
      after: { ...(template.after ?? {}), name: `tidemark: bulk_${i}`, description: `segment ${i} `.repeat(40) },
    }));
    await writeFile(path.join(dir, 'huge.json'), JSON.stringify({ ...plan, changes: [...plan.changes, ...many], summary: { ...plan.summary, create: plan.summary.create + many.length } }));

    const split = await tidemark(dir, ['github', 'comment', '--pr', String(pr), '--plan', 'huge.json'], fake.env());
    expect(split.code, split.stderr).toBe(0);
    const parts = fake.commentsOn(pr);
    expect(parts.length).toBeGreaterThanOrEqual(3);
    expect(split.stdout).toContain(`as ${parts.length} parts (${parts.length} created, 0 updated, 0 unchanged)`);
    parts.forEach((c, i) => {
      expect(c.body.length).toBeLessThanOrEqual(65_536);
      expect(c.body.split('\n')[0]).toBe(`<!-- tidemark-plan environment=staging part=${i + 1} -->`);
      expect(c.body).toContain(`part ${i + 1} of ${parts.length}`);
      // Every part renders on its own: fences and <details> are balanced, a table keeps its header.
      expect((c.body.match(/^```/gm) ?? []).length % 2).toBe(0);
      expect((c.body.match(/<details>/g) ?? []).length).toBe((c.body.match(/<\/details>/g) ?? []).length);
      if (i > 0 && /^\| (create|no change)/m.test(c.body)) expect(c.body).toContain('| Action | Address | Reason |');
    });
    const all = parts.map((c) => c.body).join('\n');
    for (let i = 0; i < 300; i += 37) expect(all).toContain(`customerio.segment.bulk_${String(i).padStart(3, '0')}`);
    expect(parts.at(-1)!.body).toContain('### Data impact');

    // Rendered again: each part edited in place, none posted or deleted.
    const again = await tidemark(dir, ['github', 'comment', '--pr', String(pr), '--plan', 'huge.json'], fake.env());
    expect(again.stdout).toContain(`(0 created, 0 updated, ${parts.length} unchanged)`);

    // A short plan: part 1 becomes the whole plan under the plain marker, the other parts are deleted.
    const ids = parts.map((c) => c.id);
    const before = fake.calls.length;
    const shrunk = await tidemark(dir, ['github', 'comment', '--pr', String(pr), '--plan', 'plan.json'], fake.env());
    expect(shrunk.code, shrunk.stderr).toBe(0);
    expect(shrunk.stdout).toContain(`as one comment (0 created, 1 updated, 0 unchanged, ${ids.length - 1} left over deleted)`);
    expect(fake.calls.slice(before).filter((c) => c.method === 'DELETE').map((c) => c.path)).toEqual(ids.slice(1).map((id) => `/repos/${fake.repository}/issues/comments/${id}`));
    expect(fake.commentsOn(pr).map((c) => [c.id, c.body.split('\n')[0]])).toEqual([[ids[0], MARKER]]);
  });

  it('waits out a secondary rate limit and a server error, then posts once', async () => {
    const fake = gh();
    const dir = await project();
    const pr = fake.addPullRequest({ headRef: 'throttled' });
    await savedPlan(dir);
    fake.fail('POST', /\/issues\/\d+\/comments$/, { status: 403, message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.', headers: { 'retry-after': '1' } });
    fake.fail('GET', /\/issues\/\d+\/comments$/, { status: 502, message: 'Server Error' });
    const r = await tidemark(dir, ['github', 'comment', '--pr', String(pr), '--plan', 'plan.json'], fake.env());
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/GitHub secondary rate limit on POST .*: retrying in 1 s/);
    const posts = fake.calls.filter((c) => c.method === 'POST' && c.path === `/repos/${fake.repository}/issues/${pr}/comments`);
    expect(posts.map((c) => c.status)).toEqual([403, 201]);
    expect(fake.commentsOn(pr)).toHaveLength(1);
  }, 30_000);

  it('refuses bad calls with a message and no stack trace', async () => {
    const fake = gh();
    const dir = await project();
    await savedPlan(dir);
    const pr = fake.addPullRequest({ headRef: 'errors' });
    const noToken = await tidemark(dir, ['github', 'comment', '--pr', String(pr), '--plan', 'plan.json'], { ...fake.env(), GITHUB_TOKEN: '' });
    expect([noToken.code, noToken.stderr]).toEqual([1, expect.stringMatching(/^tidemark github: no GitHub token: set GITHUB_TOKEN/)]);
    const badToken = await tidemark(dir, ['github', 'comment', '--pr', String(pr), '--plan', 'plan.json'], { ...fake.env(), GITHUB_TOKEN: 'ghs_wrong' });
    expect(badToken.code).toBe(1);
    expect(badToken.stderr).toMatch(/GitHub refused to list the comments of #\d+ in hearth-harvest\/retention-specs \(HTTP 401\): Bad credentials\nThe token is missing, expired or wrong/);
    expect(badToken.stderr).not.toMatch(/ghs_wrong|\n\s+at /);
    const noPr = await tidemark(dir, ['github', 'comment', '--pr', '999', '--plan', 'plan.json'], fake.env());
    expect([noPr.code, noPr.stderr]).toEqual([1, expect.stringMatching(/HTTP 404/)]);
    const badNumber = await tidemark(dir, ['github', 'comment', '--pr', 'abc', '--plan', 'plan.json'], fake.env());
    expect([badNumber.code, badNumber.stderr]).toEqual([1, expect.stringMatching(/--pr must be a pull request number \(got "abc"\)/)]);
    const notPlan = await tidemark(dir, ['github', 'comment', '--pr', String(pr), '--plan', 'specs/workspace.yaml'], fake.env());
    expect([notPlan.code, notPlan.stderr]).toEqual([1, expect.stringMatching(/specs\/workspace\.yaml is not a plan \(not JSON\)/)]);
    const remote = await tidemark(dir, ['github', 'comment', '--pr', String(pr), '--plan', 'plan.json'], { ...fake.env(), GITHUB_API_URL: 'http://example.com/api/v3' });
    expect([remote.code, remote.stderr]).toEqual([1, expect.stringMatching(/GITHUB_API_URL must be https/)]);
    expect(fake.commentsOn(pr)).toEqual([]);
  });
});
