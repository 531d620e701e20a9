/**
 * Changed-spec detection (issue 14 point 5) on a git fixture repository built here: the example project
 * committed on `main`, a feature branch that changes one survey target and leaves one segment removed
 * but not committed. `tidemark plan` runs as its own process (bin/tidemark.js) on the embedded sandbox.
 */
import { execFileSync } from 'node:child_process';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Plan } from '../../reconciler/plan/plan.ts';
import { runChild } from '../support/child-cli.ts';
import { editSpec, makeProject, removeProject, removeSpec } from '../support/integration-fixture.ts';

let dir: string;
let scratch: string;
let base: string;

const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', HOME: scratch } }).trim();
const ENV = { NO_COLOR: '1' };
const tidemark = async (cwd: string, args: string[], env: NodeJS.ProcessEnv = {}) => {
  const r = await runChild(cwd, args, { env: { ...ENV, ...env } });
  return { ...r, json: () => JSON.parse(r.output.slice(r.output.indexOf('{'))) as Plan };
};
const addresses = (plan: Plan) => plan.changes.map((c) => [c.address, c.action, c.blocked?.code ?? null]);

beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'tidemark-git-'));
  dir = await makeProject();
  await writeFile(path.join(dir, '.gitignore'), '.tidemark/\nspecs/data/\n');
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'config', 'user.email', 'fixture@tidemark.invalid');
  git(dir, 'config', 'user.name', 'fixture');
  git(dir, 'add', '.');
  git(dir, 'commit', '-q', '-m', 'the example specs');
  base = git(dir, 'rev-parse', 'HEAD');
  // What main has is applied: the state manages every object the specs declare.
  const apply = await tidemark(dir, ['apply', '--auto-approve']);
  expect(apply.code, apply.output).toBe(0);

  git(dir, 'checkout', '-q', '-b', 'rename-fit-list');
  await editSpec(dir, 'surveys.yaml', 'mailing_list: { name: "tidemark: post-purchase fit" }', 'mailing_list: { name: "tidemark: post-purchase fit v2" }');
  git(dir, 'commit', '-q', '-am', 'rename the fit list');
  // Not committed yet: the VIP segment is dropped.
  await removeSpec(dir, 'segments.yaml', 'vip_customers');
}, 60_000);

afterAll(async () => {
  await removeProject(dir);
  await rm(scratch, { recursive: true, force: true });
});

describe('plan on a pull request', () => {
  it('plans the objects whose documents changed since the merge base, committed or not, with their dependants, and says so', async () => {
    const r = await tidemark(dir, ['plan', '--changed-since', 'main', '--format', 'json']);
    expect(r.code, r.output).toBe(0);
    const plan = r.json();
    expect(plan.scope).toEqual({
      mode: 'changed',
      reason: `changed since main (merge base ${base.slice(0, 12)})`,
      base: { ref: 'main', commit: base },
      changed_files: ['specs/segments.yaml', 'specs/surveys.yaml'],
      changed_documents: ['Segment.vip_customers', 'SurveyTarget.post_purchase_fit'],
      planned: 3,
      total: 6,
    });
    // The list's webhook depends on it, so it is planned with it; the removed segment's delete is planned (and gated).
    expect(addresses(plan)).toEqual([
      ['qualtrics.mailing_list.post_purchase_fit', 'update', null],
      ['qualtrics.event_subscription.post_purchase_fit', 'noop', null],
      ['customerio.segment.vip_customers', 'delete', 'PLAN005'],
    ]);
    expect(plan.specs.revision).toBe(git(dir, 'rev-parse', 'HEAD'));
    expect(plan.specs.dirty).toBe(true);
  });

  it('says the scope in text and markdown', async () => {
    const text = await tidemark(dir, ['plan', '--changed-since', 'main']);
    expect(text.output).toContain(`Scope: planned 3 of 6 objects: changed since main (merge base ${base.slice(0, 12)}) in specs/segments.yaml, specs/surveys.yaml (with their dependants and what they depend on); --full plans everything`);
    expect(text.output).not.toMatch(/customerio\.segment\.winback_eligible|qualtrics\.mailing_list\.lapsed_diagnosis/);
    const md = await tidemark(dir, ['plan', '--changed-since', 'main', '--format', 'markdown']);
    expect(md.output).toContain('Scope: planned 3 of 6 objects: changed since main');
  });

  it("takes the base from GITHUB_BASE_REF (origin/<base>, or the branch when there is no remote)", async () => {
    const plan = (await tidemark(dir, ['plan', '--format', 'json'], { GITHUB_BASE_REF: 'main' })).json();
    expect(plan.scope?.mode).toBe('changed');
    expect(plan.scope?.planned).toBe(3);
  });

  it('plans everything with --full, and says so', async () => {
    const r = await tidemark(dir, ['plan', '--full', '--format', 'json'], { GITHUB_BASE_REF: 'main' });
    const plan = r.json();
    expect(plan.scope).toMatchObject({ mode: 'full', reason: '--full', planned: 6, total: 6 });
    expect(plan.changes).toHaveLength(6);
    expect((await tidemark(dir, ['plan', '--full'])).output).toContain('Scope: planned all 6 objects: --full');
    for (const args of [['--full', '--changed-since', 'main'], ['--target', 'customerio.segment.vip_customers', '--full']]) {
      const r = await tidemark(dir, ['plan', ...args]);
      expect(r.code).toBe(1);
      expect(r.output).toMatch(/tidemark plan: (--full and --changed-since cannot be used together|--target chooses the objects itself)/);
    }
  });

  it('plans nothing, and says so, when no spec document changed in a way that matters (a comment)', async () => {
    const other = await mkdtemp(path.join(scratch, 'comment-'));
    await cp(dir, other, { recursive: true });
    git(other, 'checkout', '-q', '--', '.');
    git(other, 'checkout', '-q', '-b', 'comment-only', 'main');
    await editSpec(other, 'segments.yaml', 'name: vip_customers', 'name: vip_customers   # the best customers');
    const plan = (await tidemark(other, ['plan', '--changed-since', 'main', '--format', 'json'])).json();
    expect(plan.scope).toMatchObject({ mode: 'changed', changed_files: ['specs/segments.yaml'], changed_documents: [], planned: 0, total: 6 });
    expect(plan.changes).toEqual([]);
    expect((await tidemark(other, ['plan', '--changed-since', 'main'])).output).toContain('Scope: planned 0 of 6 objects');
  });

  it('applies a saved scoped plan exactly, and the next scoped plan is clean', async () => {
    const other = await mkdtemp(path.join(scratch, 'apply-'));
    await cp(dir, other, { recursive: true });
    const saved = await tidemark(other, ['plan', '--changed-since', 'main', '--allow-delete', '--out', 'plan.json']);
    expect(saved.code, saved.output).toBe(0);
    const apply = await tidemark(other, ['apply', 'plan.json']);
    expect(apply.code, apply.output).toBe(0);
    const after = await tidemark(other, ['plan', '--changed-since', 'main', '--detailed-exitcode', '--format', 'json']);
    expect(after.code, after.output).toBe(0);
    expect(after.json().scope).toMatchObject({ planned: 2, total: 5 });
  });
});

describe('when git cannot tell what changed, everything is planned and the plan says why', () => {
  it('a shallow clone that does not reach the base', async () => {
    const clone = path.join(scratch, 'shallow');
    git(scratch, 'clone', '-q', '--depth', '1', '--branch', 'rename-fit-list', `file://${dir}`, clone);
    const r = await tidemark(clone, ['plan', '--format', 'json'], { GITHUB_BASE_REF: 'main' });
    expect(r.code, r.output).toBe(0);
    const plan = r.json();
    expect(plan.scope?.mode).toBe('full');
    expect(plan.scope?.reason).toBe('origin/main is not in this clone (a shallow clone), so what changed since it cannot be told: fetch it (actions/checkout with fetch-depth: 0); so every object is planned');
    expect(plan.changes).toHaveLength(plan.scope!.total);
    expect((await tidemark(clone, ['plan'], { GITHUB_BASE_REF: 'main' })).output).toMatch(/Scope: planned all 6 objects: origin\/main is not in this clone/);
  });

  it('specs outside git', async () => {
    const plain = await makeProject();
    try {
      const plan = (await tidemark(plain, ['plan', '--changed-since', 'main', '--format', 'json'])).json();
      expect(plan.scope).toMatchObject({ mode: 'full', planned: 6, total: 6 });
      expect(plan.scope?.reason).toMatch(/is not in a git repository, so what changed since main cannot be told; so every object is planned$/);
    } finally {
      await removeProject(plain);
    }
  });
});
