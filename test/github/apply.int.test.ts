/**
 * The reviewed plan, applied on merge, through the CLI against the fake GitHub and the embedded sandbox:
 * `github plan` keeps the plan made for the pull request's head commit and posts it; after the merge
 * `github apply` applies exactly that plan and comments the result; a stale plan applies nothing, says
 * what moved and posts a fresh plan, which the next run applies; a protected environment is applied this
 * way; a fork's pull request is not planned; exit codes say whether everything planned was done.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createSandbox } from '../../reconciler/sandbox/index.ts';
import { resetSandbox } from '../support/integration-fixture.ts';
import { editFile, personalData, tidemark, useFakeGitHub } from './support.ts';

const { gh, project } = useFakeGitHub();
const sha = (c: string) => c.repeat(40).slice(0, 40);

describe('github plan, then github apply after the merge', () => {
  it('applies exactly the plan kept for the head commit, comments the result, and says so when run again', async () => {
    const fake = gh();
    const dir = await project();
    const pr = fake.addPullRequest({ headRef: 'new-segments', headSha: sha('a1') });

    const planned = await tidemark(dir, ['github', 'plan', '--pr', String(pr), '--env', 'staging'], fake.env());
    expect(planned.code, planned.stderr).toBe(0);
    expect(planned.stdout).toContain(`Kept for the merge: staging @ ${sha('a1')}.`);
    const [planComment] = fake.commentsOn(pr);
    expect(planComment!.body).toMatch(/^<!-- tidemark-plan environment=staging -->\n## Plan for staging: 6 to create/);
    expect(planComment!.body).toContain(`Planned for head commit \`${sha('a1').slice(0, 12)}\`; deletes are shown blocked`);

    // Applying before the merge is refused.
    const early = await tidemark(dir, ['github', 'apply', '--pr', String(pr), '--env', 'staging'], fake.env());
    expect([early.code, early.stderr]).toEqual([1, expect.stringMatching(/pull request #\d+ is not merged/)]);

    fake.merge(pr, sha('f1'));
    const applied = await tidemark(dir, ['github', 'apply', '--commit', sha('f1'), '--env', 'staging'], fake.env());
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toMatch(/^applied customerio\.segment\.vip_customers/m);
    expect(applied.stdout).toContain(`Apply of the plan reviewed on #${pr} (${sha('a1').slice(0, 12)}) complete`);
    const applyComment = fake.commentsOn(pr).find((c) => c.body.startsWith('<!-- tidemark-apply environment=staging -->'))!;
    expect(applyComment.body).toContain('## Apply to staging: complete');
    expect(applyComment.body).toContain('6 applied, 0 failed, 0 skipped, 0 blocked');
    expect(personalData(applyComment.body)).toEqual([]);
    const state = await tidemark(dir, ['state', 'list', '--env', 'staging']);
    expect(state.stdout).toContain('customerio.segment.vip_customers');

    // The merge job run again: nothing applied twice.
    const again = await tidemark(dir, ['github', 'apply', '--pr', String(pr), '--env', 'staging'], fake.env());
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/was already applied at 20/);
  }, 60_000);

  it('applies nothing when the plan is stale: comments what moved, posts a fresh plan, and the next run applies that', async () => {
    const fake = gh();
    const dir = await project();
    const pr = fake.addPullRequest({ headRef: 'stale', headSha: sha('b2') });
    expect((await tidemark(dir, ['github', 'plan', '--pr', String(pr), '--env', 'staging'], fake.env())).code).toBe(0);
    // main moved before the merge: the merged specs are not the ones reviewed.
    await editFile(path.join(dir, 'specs/segments.yaml'), (t) => t.replace(/description: Cancelled subscribers/, 'description: Lapsed subscribers'));
    fake.merge(pr, sha('f2'));

    const stale = await tidemark(dir, ['github', 'apply', '--commit', sha('f2'), '--env', 'staging'], fake.env());
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(/the plan reviewed on #\d+ is stale; nothing was applied:\n {2}- spec file specs\/segments\.yaml changed/);
    expect((await tidemark(dir, ['state', 'list', '--env', 'staging'])).stdout).not.toContain('customerio.segment.vip_customers');
    const bodies = fake.commentsOn(pr).map((c) => c.body);
    expect(bodies.find((b) => b.startsWith('<!-- tidemark-apply environment=staging -->'))).toMatch(/nothing applied, the plan reviewed for `b2b2b2b2b2b2` is stale\n\nWhat moved since it was made:\n\n- spec file specs\/segments\.yaml changed\n/);
    const fresh = bodies.filter((b) => b.startsWith('<!-- tidemark-plan environment=staging -->'));
    expect(fresh).toHaveLength(1);
    expect(fresh[0]).toContain(`**Fresh plan for the merge commit \`${sha('f2').slice(0, 12)}\`**: the reviewed plan was stale. Nothing was applied.`);
    expect(fresh[0]).toContain('Lapsed subscribers');

    // Run again (after reading the fresh plan): it is applied.
    const rerun = await tidemark(dir, ['github', 'apply', '--commit', sha('f2'), '--env', 'staging'], fake.env());
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stdout).toContain(`Apply of the plan reviewed on #${pr} (${sha('f2').slice(0, 12)}) complete`);
    expect(fake.commentsOn(pr).find((c) => c.body.startsWith('<!-- tidemark-apply'))!.body).toContain('## Apply to staging: complete');
  }, 60_000);

  it('exits 1 and comments the failure when the apply could not do all it planned', async () => {
    const fake = gh();
    const dir = await project();
    // The services as a live target (credentials set, URLs on a sandbox this test controls), so a fault can be injected.
    const sandbox = await createSandbox({ port: 0, retryAfterSeconds: 0, seed: 14 });
    try {
      resetSandbox(sandbox);
      const env: Record<string, string> = {
        ...fake.env(),
        CIO_STAGING_SITE_ID: sandbox.env.CUSTOMERIO_SITE_ID!,
        CIO_STAGING_TRACK_API_KEY: sandbox.env.CUSTOMERIO_TRACK_API_KEY!,
        CIO_STAGING_APP_API_KEY: sandbox.env.CUSTOMERIO_APP_API_KEY!,
        QUALTRICS_STAGING_API_TOKEN: sandbox.env.QUALTRICS_API_TOKEN!,
        CUSTOMERIO_TRACK_URL: sandbox.env.CUSTOMERIO_TRACK_URL!,
        CUSTOMERIO_APP_URL: sandbox.env.CUSTOMERIO_APP_URL!,
        QUALTRICS_BASE_URL: sandbox.env.QUALTRICS_BASE_URL!,
      };
      const pr = fake.addPullRequest({ headRef: 'failing', headSha: sha('a5') });
      const planned = await tidemark(dir, ['github', 'plan', '--pr', String(pr), '--env', 'staging'], env);
      expect(planned.code, planned.stderr).toBe(0);
      fake.merge(pr, sha('f5'));
      sandbox.faults.set({ service: 'app', methods: ['POST'], pathPattern: '^/v1/segments$', burst5xx: 1000 });
      const applied = await tidemark(dir, ['github', 'apply', '--pr', String(pr), '--env', 'staging'], env);
      expect(applied.code, applied.stdout + applied.stderr).toBe(1);
      expect(applied.stdout).toMatch(/^failed customerio\.segment\.vip_customers/m);
      expect(applied.stdout).toContain(`Apply of the plan reviewed on #${pr} (${sha('a5').slice(0, 12)}) failed`);
      const body = fake.commentsOn(pr).find((c) => c.body.startsWith('<!-- tidemark-apply environment=staging -->'))!.body;
      expect(body).toMatch(/## Apply to staging: \*\*failed\*\*\n\nApplied the plan reviewed for `a5a5a5a5a5a5` on Customer\.io site .*: \d+ applied, [1-9]\d* failed/);
      expect(body).toMatch(/\| failed \| `customerio\.segment\.vip_customers` \|/);
      expect(personalData(body)).toEqual([]);
    } finally {
      await sandbox.close();
    }
  }, 90_000);

  it('applies a protected environment only through the plan reviewed on the pull request', async () => {
    const fake = gh();
    const dir = await project();
    const direct = await tidemark(dir, ['apply', '--env', 'production', '--sandbox', '--auto-approve']);
    expect([direct.code, direct.stderr]).toEqual([1, expect.stringMatching(/environment "production" is protected/)]);
    const pr = fake.addPullRequest({ headRef: 'prod', headSha: sha('c3') });
    expect((await tidemark(dir, ['github', 'plan', '--pr', String(pr), '--env', 'production', '--sandbox'], fake.env())).code).toBe(0);
    fake.merge(pr, sha('f3'));
    const applied = await tidemark(dir, ['github', 'apply', '--pr', String(pr), '--env', 'production', '--sandbox'], fake.env());
    expect(applied.code, applied.stderr).toBe(0);
    expect(fake.commentsOn(pr).find((c) => c.body.startsWith('<!-- tidemark-apply environment=production -->'))!.body).toContain('## Apply to production: complete');
  }, 60_000);

  it('refuses a merge without a kept plan (exit 1, commented, a fresh plan posted) and does not plan a fork', async () => {
    const fake = gh();
    const dir = await project();
    const pr = fake.addPullRequest({ headRef: 'unplanned', headSha: sha('d4') });
    fake.merge(pr, sha('f4'));
    const none = await tidemark(dir, ['github', 'apply', '--pr', String(pr), '--env', 'staging'], fake.env());
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no plan was kept for head commit `d4d4d4d4d4d4` of #\d+ in staging; nothing was applied\. A fresh plan is posted/);
    expect(fake.commentsOn(pr).map((c) => c.body.split('\n')[0])).toEqual(['<!-- tidemark-apply environment=staging -->', '<!-- tidemark-plan environment=staging -->']);
    expect(fake.commentsOn(pr)[0]!.body).toContain('## Apply to staging: nothing applied\n\nNo plan was kept for head commit `d4d4d4d4d4d4`');
    expect(fake.commentsOn(pr)[1]!.body).toContain(`**Fresh plan for the merge commit \`${sha('f4').slice(0, 12)}\`**: no plan had been kept for the reviewed head commit. Nothing was applied. Read it`);
    expect((await tidemark(dir, ['state', 'list', '--env', 'staging'])).stdout).not.toContain('customerio.segment');

    const fork = fake.addPullRequest({ headRef: 'patch-1', headRepo: 'someone/retention-specs' });
    const skipped = await tidemark(dir, ['github', 'plan', '--pr', String(fork), '--env', 'staging'], fake.env());
    expect(skipped.code).toBe(0);
    expect(skipped.stderr).toMatch(/comes from someone\/retention-specs, not hearth-harvest\/retention-specs: tidemark plans protected environments for same-repository pull requests only/);
    expect(fake.commentsOn(fork)).toEqual([]);

    const moved = fake.addPullRequest({ headRef: 'moved', headSha: sha('e5') });
    const old = await tidemark(dir, ['github', 'plan', '--pr', String(moved), '--env', 'staging', '--sha', sha('e4')], fake.env());
    expect([old.code, old.stderr]).toEqual([0, expect.stringMatching(/moved on to e5e5e5e5e5e5; this run was for e4e4e4e4e4e4/)]);
    expect(fake.commentsOn(moved)).toEqual([]);
  }, 60_000);
});
