import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, writeFile, cp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli-run.ts';

const repo = path.resolve(import.meta.dirname, '../..');
/** The temp projects made, removed when the file is done. */
const made: string[] = [];
afterAll(() => Promise.all(made.map((d) => rm(d, { recursive: true, force: true }))));

async function brokenWorkspace(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tidemark-validate-'));
  made.push(dir);
  await cp(path.join(repo, 'specs'), path.join(dir, 'specs'), { recursive: true });
  // A typo'd key and a product survey timed from order placement.
  await writeFile(
    path.join(dir, 'specs', 'extra.yaml'),
    [
      'kind: SurveyTarget',
      'name: too_early',
      'survey: SV_3kZ8cTqQ4rPbUuG',
      'purpose: product_feedback',
      'audience: delivered_consumables',
      'moment: { event: order_placed, after: 1d, before: 3d }',
      'identifier: id',
      'mailing_list: { name: "early, too: early" }',
      'holdout: 10%',
      'response_window: 72h',
      'responses: { question: QID1, reason_codes: { "1": x }, write: { event: survey_answered } }',
      'frequncy_cap: { max: 1, per: 30d }',
      '',
    ].join('\n'),
  );
  return dir;
}

describe('tidemark validate', () => {
  it('exits 0 on the example specs and prints a summary', async () => {
    const r = await runCli(['validate'], { cwd: repo });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^valid: 10 files \(1 Workspace, 1 Fields, 7 Source, 8 Segment, 3 SurveyTarget\); 0 errors, 0 warnings\.$/m);
  });

  it('exits 1 with located errors, "did you mean", and no stack trace', async () => {
    const dir = await brokenWorkspace();
    const r = await runCli(['validate'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('specs/extra.yaml:12:1: error SPEC004 Unknown key "frequncy_cap" in this spec. Did you mean "frequency_cap"?');
    expect(r.stdout).toContain('specs/extra.yaml:6:18: error SURV003');
    expect(r.stdout + r.stderr).not.toMatch(/\bat .*\.ts:\d+/);
    expect(r.stdout).not.toContain('\u001b['); // no colour when not a TTY
  });

  it('uses colour on a TTY unless NO_COLOR is set', async () => {
    const dir = await brokenWorkspace();
    expect((await runCli(['validate'], { cwd: dir, tty: true })).stdout).toContain('\u001b[31merror');
    expect((await runCli(['validate'], { cwd: dir, tty: true, env: { NO_COLOR: '1' } })).stdout).not.toContain('\u001b[');
  });

  it('--format json is machine-readable with positions', async () => {
    const dir = await brokenWorkspace();
    const r = await runCli(['validate', '--format', 'json'], { cwd: dir });
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout);
    expect(out.valid).toBe(false);
    expect(out.summary.errors).toBe(2);
    expect(out.diagnostics[1]).toMatchObject({ code: 'SPEC004', severity: 'error', source: { file: 'specs/extra.yaml', start: { line: 12, col: 1 } } });
  });

  it('--format github prints workflow-command annotations with escaped properties', async () => {
    const dir = await brokenWorkspace();
    const r = await runCli(['validate', '--format', 'github'], { cwd: dir });
    expect(r.code).toBe(1);
    const lines = r.stdout.split('\n').filter((l) => l.startsWith('::'));
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/^::error file=specs\/extra\.yaml,line=12,col=1,endLine=12,endColumn=13,title=SPEC004::Unknown key "frequncy_cap"/);
    expect(lines[0]).toMatch(/^::error file=specs\/extra\.yaml,line=6,col=18,.*title=SURV003::.*%0ATime it from the delivery event/);
  });

  it('reports a missing specs folder as a located error, not a crash', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tidemark-empty-'));
    made.push(dir);
    const r = await runCli(['validate', '--specs', 'nowhere'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('nowhere:1:1: error SPEC000 No specs found: "nowhere" does not exist.');
    await mkdir(path.join(dir, 'empty'));
    expect((await runCli(['validate', '--specs', 'empty'], { cwd: dir })).stdout).toContain('SPEC000 No .yaml or .yml spec files');
  });

  it('rejects bad flags with usage, exit 1', async () => {
    const r = await runCli(['validate', '--format', 'xml'], { cwd: repo });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--format must be text, json or github');
    const u = await runCli(['validate', '--frmat', 'json'], { cwd: repo });
    expect(u.code).toBe(1);
    expect(u.stderr).toContain("Unknown option '--frmat'");
  });

  it('schema --check passes on the committed schemas and fails on stale ones', async () => {
    expect((await runCli(['schema', '--check'], { cwd: repo })).code).toBe(0);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tidemark-schema-'));
    made.push(dir);
    await mkdir(path.join(dir, 'specs/schema'), { recursive: true });
    await writeFile(path.join(dir, 'specs/schema/segment.json'), '{}');
    const r = await runCli(['schema', '--check'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('segment.json');
    expect((await runCli(['schema', '--write'], { cwd: dir })).code).toBe(0);
    expect((await runCli(['schema', '--check'], { cwd: dir })).code).toBe(0);
  });

  it('the installed bin runs: tidemark --help lists the commands', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [path.join(repo, 'bin/tidemark.js'), '--help'], { cwd: repo });
    expect(stdout).toContain('Usage: tidemark <command>');
    expect(stdout).toMatch(/^\s+validate\s+/m);
    expect(stdout).toMatch(/^\s+start\s+/m);
  });
});

describe('command registry', () => {
  it('lists each command with the summary the command itself declares', async () => {
    const { commands } = await import('../../reconciler/cli/commands/index.ts');
    for (const entry of commands) {
      const cmd = await entry.load();
      expect(cmd.name).toBe(entry.name);
      expect(cmd.summary).toBe(entry.summary);
      expect(cmd.usage).toMatch(/^Usage: tidemark /);
    }
  });
});
