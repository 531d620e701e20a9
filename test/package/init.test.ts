/**
 * `tidemark init`, in-process: what it writes, that it never overwrites without --force (all or nothing),
 * and that what it writes works: the specs validate and plan on the embedded sandbox, their modelines
 * reach the schemas, and the workflows are the ones test/workflows.test.ts checks, as GitHub parses them.
 * test/package/pack.int.test.ts does the same through `npm pack` and a real install.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tsImport } from 'tsx/esm/api';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli-run.ts';

const repo = path.resolve(import.meta.dirname, '../..');
const { parseWorkflow, NoOperationTraceWriter } = (await tsImport('@actions/workflow-parser', import.meta.url)) as typeof import('@actions/workflow-parser');

const SPECS = ['specs/workspace.yaml', 'specs/fields.yaml', 'specs/segments.yaml', 'specs/sources/example.yaml'];
const WORKFLOWS = ['plan.yml', 'plan-production.yml', 'apply.yml', 'sync.yml', 'drift.yml'];

const dirs: string[] = [];
function tempRepo(name = 'team-repo'): string {
  const parent = mkdtempSync(path.join(os.tmpdir(), 'tidemark-init-'));
  dirs.push(parent);
  const dir = path.join(parent, name);
  mkdirSync(dir);
  return dir;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Every file under `dir`, relative, sorted. */
function listFiles(dir: string, prefix = ''): string[] {
  return readdirSync(path.join(dir, prefix), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? listFiles(dir, path.join(prefix, e.name)) : [path.join(prefix, e.name).split(path.sep).join('/')]))
    .sort();
}

const env = { NO_COLOR: '1' };

describe('tidemark init', () => {
  it('writes the starter, names the files and the next three commands', async () => {
    const dir = tempRepo('Acme Retention');
    const r = await runCli(['init'], { cwd: dir, env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Wrote the tidemark starter for workspace "acme_retention" in this folder:');
    const files = [...SPECS, 'specs/data/example_customers.csv', ...WORKFLOWS.map((w) => `.github/workflows/${w}`), 'README.md', '.gitignore'];
    expect(listFiles(dir)).toEqual([...files].sort());
    for (const f of files.filter((f) => f !== '.gitignore')) expect(r.stdout).toContain(`  ${f}\n`);
    const next = r.stdout.split('Next:\n')[1]!.split('\n\n')[0]!.split('\n');
    expect(next.map((l) => l.trim().split('#')[0]!.trim())).toEqual([
      'npx tidemark validate',
      'npx tidemark plan',
      'git add . && git commit -m "tidemark: starter specs and workflows"',
    ]);
    expect(readFileSync(path.join(dir, 'specs/workspace.yaml'), 'utf8')).toMatch(/^name: acme_retention$/m);
    expect(readFileSync(path.join(dir, '.gitignore'), 'utf8').split('\n')).toEqual(expect.arrayContaining(['node_modules/', '.tidemark/']));
  });

  it('writes specs that validate and plan on the embedded sandbox, each with a modeline that reaches its schema', async () => {
    const dir = tempRepo();
    expect((await runCli(['init', '--name', 'acme'], { cwd: dir, env })).code).toBe(0);
    // Where npm would install tidemark in the team's repository.
    mkdirSync(path.join(dir, 'node_modules'));
    symlinkSync(repo, path.join(dir, 'node_modules', 'tidemark'), 'dir');
    for (const spec of SPECS) {
      const text = readFileSync(path.join(dir, spec), 'utf8');
      const docs = text.split(/^---$/m);
      for (const doc of docs) {
        const m = /^\s*# yaml-language-server: \$schema=(\S+)\n/.exec(doc);
        expect(m, `${spec}: a document without a modeline`).not.toBeNull();
        expect(m![1]).toMatch(/^(\.\.\/)+node_modules\/tidemark\/specs\/schema\/[a-z-]+\.json$/);
        expect(existsSync(path.resolve(path.dirname(path.join(dir, spec)), m![1]!)), `${spec} → ${m![1]}`).toBe(true);
      }
    }
    const validate = await runCli(['validate'], { cwd: dir, env });
    expect(validate.stdout).toContain('valid: 4 files (1 Workspace, 1 Fields, 1 Source, 1 Segment); 0 errors, 0 warnings.');
    expect(validate.code).toBe(0);
    const plan = await runCli(['plan'], { cwd: dir, env });
    expect(plan.stdout).toContain('Against: the embedded sandbox');
    expect(plan.stdout).toContain('+ customerio.segment.pro_customers');
    expect(plan.stdout).toContain('Plan: 1 to create, 0 to update, 0 to replace, 0 to delete');
    expect(plan.code).toBe(0);
    // The examples are for staging: production plans nothing from them.
    const production = await runCli(['plan', '--env', 'production', '--sandbox'], { cwd: dir, env });
    expect(production.stdout).toContain('No changes.');
    expect(production.code).toBe(0);
    const sync = await runCli(['sync', 'plan', 'example_customers'], { cwd: dir, env });
    expect(sync.stdout).toMatch(/read 3, rejected 0/);
    expect(sync.code).toBe(0);
  });

  it("writes tidemark's own checked workflows, calling npx tidemark, valid for GitHub's parser", async () => {
    const dir = tempRepo();
    expect((await runCli(['init'], { cwd: dir, env })).code).toBe(0);
    for (const file of WORKFLOWS) {
      const written = readFileSync(path.join(dir, '.github/workflows', file), 'utf8');
      const shipped = readFileSync(path.join(repo, '.github/workflows', file), 'utf8');
      // Below its header line, the repository's workflow (which test/workflows.test.ts checks) word for word.
      const [header, ...body] = written.split('\n');
      expect(header).toMatch(/^# Written by `tidemark init`/);
      expect(body.slice(1)).toEqual(shipped.split('\n').slice(1));
      expect(body[0]!.toLowerCase()).toBe(shipped.split('\n')[0]!.replace('For users of tidemark: ', '').toLowerCase());
      const result = parseWorkflow({ name: file, content: written }, new NoOperationTraceWriter());
      expect(result.context.errors.getErrors().map((e) => e.message), file).toEqual([]);
      // The team's repository has tidemark only as an installed package: no path into its repository, no npm script.
      expect(written.match(/\bnpx tidemark (validate|plan|apply|drift|sync|status|github)\b/g)?.length ?? 0, file).toBeGreaterThan(0);
      expect(written, file).not.toMatch(/\bnode \S*tidemark|\bnpm run\b/);
      expect(written).not.toContain('bin/tidemark.js');
    }
  });

  it('overwrites nothing: lists every file that exists and writes none of the others', async () => {
    const dir = tempRepo();
    mkdirSync(path.join(dir, 'specs'));
    writeFileSync(path.join(dir, 'specs/fields.yaml'), 'mine\n');
    mkdirSync(path.join(dir, '.github/workflows'), { recursive: true });
    writeFileSync(path.join(dir, '.github/workflows/plan.yml'), 'ours\n');
    const r = await runCli(['init'], { cwd: dir, env });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('2 files the starter would write already exist');
    expect(r.stderr).toContain('nothing was written');
    expect(r.stderr).toMatch(/^ {2}specs\/fields\.yaml$/m);
    expect(r.stderr).toMatch(/^ {2}\.github\/workflows\/plan\.yml$/m);
    expect(r.stderr).toContain('--force');
    expect(listFiles(dir)).toEqual(['.github/workflows/plan.yml', 'specs/fields.yaml']);
    expect(readFileSync(path.join(dir, 'specs/fields.yaml'), 'utf8')).toBe('mine\n');
  });

  it('with --force overwrites the starter files, but never a README.md of the team (TIDEMARK.md goes beside it)', async () => {
    const dir = tempRepo();
    writeFileSync(path.join(dir, 'README.md'), '# Our team\n');
    mkdirSync(path.join(dir, 'specs'));
    writeFileSync(path.join(dir, 'specs/fields.yaml'), 'mine\n');
    const r = await runCli(['init', '--force'], { cwd: dir, env });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('  specs/fields.yaml (overwritten)');
    expect(r.stdout).toContain('  TIDEMARK.md\n');
    expect(readFileSync(path.join(dir, 'README.md'), 'utf8')).toBe('# Our team\n');
    expect(readFileSync(path.join(dir, 'TIDEMARK.md'), 'utf8')).toContain('## GitHub setup');
    expect(readFileSync(path.join(dir, 'specs/fields.yaml'), 'utf8')).toContain('kind: Fields');
  });

  it('adds to an existing .gitignore only what it lacks', async () => {
    const dir = tempRepo();
    writeFileSync(path.join(dir, '.gitignore'), 'dist/\n/.tidemark\n');
    const r = await runCli(['init', '.'], { cwd: dir, env });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('.gitignore (updated');
    const lines = readFileSync(path.join(dir, '.gitignore'), 'utf8').split('\n');
    expect(lines.slice(0, 2)).toEqual(['dist/', '/.tidemark']);
    expect(lines.filter((l) => l === 'node_modules/')).toHaveLength(1);
    expect(lines.filter((l) => l.includes('.tidemark') && !l.startsWith('#'))).toEqual(['/.tidemark']);
  });

  it('writes into DIR, created when missing, and says to cd there first', async () => {
    const parent = tempRepo();
    const r = await runCli(['init', 'retention', '--name', 'acme'], { cwd: parent, env });
    expect(r.code).toBe(0);
    expect(existsSync(path.join(parent, 'retention/specs/workspace.yaml'))).toBe(true);
    expect(r.stdout).toContain('  cd retention && npx tidemark validate');
  });

  it('refuses a Workspace name that is not snake_case, before writing anything', async () => {
    const dir = tempRepo();
    const r = await runCli(['init', '--name', 'Acme Retention'], { cwd: dir, env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--name "Acme Retention": use snake_case/);
    expect(listFiles(dir)).toEqual([]);
  });
});
