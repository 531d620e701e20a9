/**
 * Issue 12 point 3 through the command line, every step its own process: `tidemark sandbox` serves the
 * emulators, and `tidemark plan` checks each survey target's payload against its survey. The example is
 * clean; CX renaming a field in the survey flow (the sandbox's admin route) shows as drift, with the
 * target's spec location, the survey id and both names (`plan --detailed-exitcode` keeps 2 for config
 * changes: it exits 0, and `drift --detailed-exitcode` exits 2 for it); a survey that does not exist is an
 * error (exit 1).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { editSpec, makeProject, removeProject } from '../support/integration-fixture.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(REPO, 'bin', 'tidemark.js');
const FIT = 'SV_3kZ8cTqQ4rPbUuG';

/** The 1-based line of the example's surveys.yaml holding `needle` (the file grows; the test follows it). */
const SURVEYS_YAML = await readFile(path.join(REPO, 'specs/surveys.yaml'), 'utf8');
const lineOf = (needle: string) => SURVEYS_YAML.split('\n').findIndex((l) => l.includes(needle)) + 1;
const FIT_PAYLOAD_LINE = lineOf('payload: [last_purchase_at, order_count, product_category_last_purchased, vip_tier]');

const children = new Set<ChildProcess>();
let project: string;
let sandbox: ChildProcess;
let exports: Record<string, string> = {};

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

function shellEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME ?? os.tmpdir(), NO_COLOR: '1', ...extra };
}

/** `tidemark …` as its own process with only the sandbox's exports in the environment. */
function tidemark(...args: string[]): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: project, env: shellEnv(exports), stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`tidemark ${args.join(' ')} did not finish within 90 s\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, 90_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

/** CX editing the survey flow in the Qualtrics UI: the sandbox's admin route, over HTTP. */
async function editSurveyFlow(surveyId: string, edit: unknown): Promise<void> {
  const res = await fetch(`${exports.QUALTRICS_BASE_URL}/__sandbox/qualtrics/surveys/${surveyId}/embedded-data`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(edit),
  });
  expect(res.status, await res.clone().text()).toBe(200);
}

interface JsonDiagnostic {
  severity: string;
  code: string;
  summary: string;
  detail?: string;
  address?: string;
  path?: Array<string | number>;
  source?: { file: string; start: { line: number; col: number } };
}

beforeAll(async () => {
  project = await makeProject();
  sandbox = spawn(process.execPath, [BIN, 'sandbox', '--port', '0'], { cwd: project, env: shellEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(sandbox);
  let out = '';
  let err = '';
  sandbox.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  sandbox.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const deadline = Date.now() + 60_000;
  while (!/Ctrl-C/.test(err) || !out.endsWith('\n')) {
    if (sandbox.exitCode !== null) throw new Error(`tidemark sandbox exited early (${sandbox.exitCode}): ${err}`);
    if (Date.now() > deadline) throw new Error(`tidemark sandbox printed no exports within 60 s: ${err}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  for (const line of out.split('\n')) {
    const m = /^export ([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m) exports[m[1]!] = m[2]!.replace(/^'(.*)'$/, '$1');
  }
  expect(exports.QUALTRICS_BASE_URL).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
}, 90_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (project) await removeProject(project);
});

describe('tidemark plan checks each survey target’s payload against its survey', () => {
  it('finds the example clean: no survey diagnostics, and after apply no changes (exit 0)', async () => {
    const first = await tidemark('plan');
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).not.toMatch(/REF01[012]/);
    const applied = await tidemark('apply', '--auto-approve');
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
    const again = await tidemark('plan', '--detailed-exitcode');
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toContain('No changes. Live Customer.io and Qualtrics match the specs.');
  }, 240_000);

  it('shows a field CX renamed as drift, with the spec location, the survey id and the names; `drift --detailed-exitcode` exits 2', async () => {
    await editSurveyFlow(FIT, { rename: { vip_tier: 'vip_level' } });

    // Config changes decide plan's exit code (the apply workflow waits for reviewers on 2): there are none.
    const text = await tidemark('plan', '--detailed-exitcode');
    expect(text.code, text.stdout + text.stderr).toBe(0);
    expect(text.stderr).not.toMatch(/\n\s+at /);
    expect(text.stdout).toMatch(
      new RegExp(`specs/surveys\\.yaml:${FIT_PAYLOAD_LINE}:\\d+: warning REF011 Drift: survey ${FIT} does not read embedded-data field "vip_tier", which survey target "post_purchase_fit" sends\\.`),
    );
    expect(text.stdout).toContain('The survey reads "vip_level", which nothing sends');
    expect(text.stdout).toContain('REF012');
    expect(text.stdout).toContain('No changes to apply, but 1 survey target drifted from its survey in Qualtrics (REF011 above)');

    const json = await tidemark('plan', '--format', 'json');
    expect(json.code, json.stderr).toBe(0);
    const plan = JSON.parse(json.stdout) as { diagnostics: JsonDiagnostic[]; changes: Array<{ action: string }> };
    expect(plan.changes.every((c) => c.action === 'noop')).toBe(true);
    const drift = plan.diagnostics.filter((d) => d.code === 'REF011');
    expect(drift).toEqual([
      expect.objectContaining({ severity: 'warning', address: 'survey_target.post_purchase_fit', path: ['payload', 3], source: expect.objectContaining({ file: 'specs/surveys.yaml', start: expect.objectContaining({ line: FIT_PAYLOAD_LINE }) }) }),
    ]);
    expect(drift[0]!.summary).toContain(FIT);
    // Names and ids only: no person, no value.
    expect(JSON.stringify(plan.diagnostics.filter((d) => d.code.startsWith('REF01')))).not.toMatch(/@|CID_|cust-/);

    // The nightly drift check is what exits 2 for it, naming the target and the survey.
    const drift2 = await tidemark('drift', '--detailed-exitcode');
    expect(drift2.code, drift2.stdout + drift2.stderr).toBe(2);
    expect(drift2.stdout).toMatch(new RegExp(`changed survey_target\\.post_purchase_fit: survey ${FIT} no longer reads vip_tier`));

    // Apply is not held back by it: there is nothing to apply, and nothing fails.
    const apply = await tidemark('apply', '--auto-approve');
    expect(apply.code, apply.stdout + apply.stderr).toBe(0);

    // CX renames it back: clean again.
    await editSurveyFlow(FIT, { rename: { vip_level: 'vip_tier' } });
    const fixed = await tidemark('plan', '--detailed-exitcode');
    expect(fixed.code, fixed.stdout + fixed.stderr).toBe(0);
    expect(fixed.stdout).not.toMatch(/REF01[012]/);
    expect((await tidemark('drift', '--detailed-exitcode')).code).toBe(0);
  }, 240_000);

  it('makes a survey that does not exist an error (exit 1), located at the target’s survey key', async () => {
    await editSpec(project, 'surveys.yaml', 'survey: SV_1pXv7KdN3sGa9Lq', 'survey: SV_0doesNotExist00');
    const text = await tidemark('plan', '--detailed-exitcode');
    expect(text.code, text.stdout + text.stderr).toBe(1);
    const line = lineOf('survey: SV_1pXv7KdN3sGa9Lq');
    expect(line).toBeGreaterThan(0);
    expect(text.stdout).toMatch(new RegExp(`specs/surveys\\.yaml:${line}:\\d+: error REF010`));
    expect(text.stdout).toMatch(/error REF010 Survey target "lapsed_diagnosis" names Qualtrics survey SV_0doesNotExist00, which does not exist in /);
  }, 120_000);
});
