/**
 * tidemark as a team installs it: `npm pack`, then `npm install <tarball>` into an empty git repository,
 * then `npx tidemark init`, `validate` and `plan` there, in an environment without CI and without any
 * credential (so plan runs on the embedded sandbox). This catches what no in-repository test can: a file
 * missing from the package's `files`, a dependency that is only a devDependency, a path that only
 * resolves inside tidemark's own checkout.
 *
 * Slow (npm install builds better-sqlite3 when no prebuilt binary is at hand), hence the long timeouts;
 * nothing here measures time.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = path.resolve(import.meta.dirname, '../..');
const INSTALL_TIMEOUT_MS = 600_000;
const COMMAND_TIMEOUT_MS = 120_000;

/** The child's environment: not CI, no credential or state URL, and nothing npm set for this test run's own package. */
const childEnv: NodeJS.ProcessEnv = {
  ...Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => k !== 'CI' && k !== 'INIT_CWD' && !/^(CUSTOMERIO_|CIO_|QUALTRICS_|TIDEMARK_|WAREHOUSE_URL)/.test(k) && !/^npm_(package|lifecycle)_/.test(k),
    ),
  ),
  NO_COLOR: '1',
};

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command with stdin closed at once: anything that tried to ask would read end-of-file. */
function run(cmd: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: childEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.stderr.on('data', (d) => (stderr += String(d)));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end();
  });
}

const show = (r: Run) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

/** `npx --no`: the tidemark installed in the team's repository, never one fetched from a registry. */
const tidemark = (args: string[], cwd: string) => run('npx', ['--no', 'tidemark', ...args], cwd);

let work: string;
let team: string;

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'tidemark-pack-'));
  const packed = await run('npm', ['pack', '--json', '--pack-destination', work], repo);
  expect(packed.code, show(packed)).toBe(0);
  const tarball = path.join(work, (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename);
  expect(existsSync(tarball)).toBe(true);

  team = path.join(work, 'team-retention');
  mkdirSync(team);
  const git = await run('git', ['init', '-q'], team);
  expect(git.code, show(git)).toBe(0);
  writeFileSync(path.join(team, 'package.json'), `${JSON.stringify({ name: 'team-retention', version: '0.0.0', private: true }, null, 2)}\n`);
  const install = await run('npm', ['install', tarball, '--prefer-offline', '--no-audit', '--no-fund'], team);
  expect(install.code, show(install)).toBe(0);
}, INSTALL_TIMEOUT_MS);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the packed tidemark, installed in an empty repository', () => {
  it('ships the CLI, the schemas and the starter workflows, and no tests', () => {
    const pkg = path.join(team, 'node_modules', 'tidemark');
    for (const f of ['bin/tidemark.js', 'reconciler/cli/main.ts', 'specs/schema/workspace.json', '.github/workflows/apply.yml', 'docs/getting-started.md']) {
      expect(existsSync(path.join(pkg, f)), f).toBe(true);
    }
    const tests = (readdirSync(path.join(pkg, 'reconciler'), { recursive: true }) as string[]).filter((f) => f.endsWith('.test.ts'));
    expect(tests).toEqual([]);
    expect(existsSync(path.join(pkg, 'test'))).toBe(false);
  });

  it('init writes the starter without asking anything (stdin closed)', async () => {
    const r = await tidemark(['init'], team);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toContain('Wrote the tidemark starter for workspace "team_retention" in this folder:');
    expect(r.stdout).not.toContain('Workspace name [');
    expect(r.stdout).toContain('npx tidemark validate');
    for (const f of ['specs/workspace.yaml', 'specs/fields.yaml', 'specs/sources/example.yaml', 'specs/data/example_customers.csv', '.github/workflows/plan.yml', 'README.md']) {
      expect(existsSync(path.join(team, f)), f).toBe(true);
    }
    // The modelines point into the installed package, where the schemas are.
    const modeline = readFileSync(path.join(team, 'specs/sources/example.yaml'), 'utf8').split('\n')[0]!;
    expect(modeline).toBe('# yaml-language-server: $schema=../../node_modules/tidemark/specs/schema/source.json');
    expect(existsSync(path.join(team, 'node_modules/tidemark/specs/schema/source.json'))).toBe(true);
  }, COMMAND_TIMEOUT_MS);

  it('validate passes on the starter', async () => {
    const r = await tidemark(['validate'], team);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toContain('valid: 4 files (1 Workspace, 1 Fields, 1 Source, 1 Segment); 0 errors, 0 warnings.');
  }, COMMAND_TIMEOUT_MS);

  it('plan runs on the embedded sandbox and shows the starter segment to create', async () => {
    const r = await tidemark(['plan', '--sandbox'], team);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toContain('tidemark plan for staging');
    expect(r.stdout).toMatch(/^Against: the embedded sandbox/m);
    expect(r.stdout).toContain('+ customerio.segment.pro_customers');
    expect(r.stdout).toContain('Plan: 1 to create, 0 to update, 0 to replace, 0 to delete');
  }, COMMAND_TIMEOUT_MS);

  it('plan without --sandbox, outside CI and without credentials, falls back to the sandbox and says so', async () => {
    const r = await tidemark(['plan'], team);
    expect(r.code, show(r)).toBe(0);
    expect(r.stderr).toContain('No credentials for environment "staging" (CIO_STAGING_SITE_ID, CIO_STAGING_TRACK_API_KEY, CIO_STAGING_APP_API_KEY)');
    expect(r.stdout).toMatch(/^Against: the embedded sandbox/m);
  }, COMMAND_TIMEOUT_MS);

  it('init again refuses, names what exists and writes nothing', async () => {
    const before = readFileSync(path.join(team, 'specs/workspace.yaml'), 'utf8');
    writeFileSync(path.join(team, 'specs/workspace.yaml'), `${before}# edited by the team\n`);
    const r = await tidemark(['init'], team);
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).toContain('nothing was written');
    expect(r.stderr).toMatch(/^ {2}specs\/workspace\.yaml$/m);
    expect(r.stderr).not.toMatch(/at .*\.ts:\d+/); // no stack trace
    expect(readFileSync(path.join(team, 'specs/workspace.yaml'), 'utf8')).toBe(`${before}# edited by the team\n`);
    // README.md exists now, so a second starter README would have gone to TIDEMARK.md: it was not written either.
    expect(existsSync(path.join(team, 'TIDEMARK.md'))).toBe(false);
  }, COMMAND_TIMEOUT_MS);
});
