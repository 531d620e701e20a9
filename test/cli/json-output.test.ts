/**
 * The CLI as CI sees it (issue 14 point 7), through bin/tidemark.js as its own process on the embedded
 * sandbox, stdout and stderr pipes (not terminals): `--format json` on apply, state, import and start
 * writes one JSON document on stdout that says where it ran, with no secret and no customer identifier,
 * and the exit codes of the text runs; progress comes on stderr as plain lines.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SANDBOX_CREDENTIALS } from '../../reconciler/sandbox/index.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(REPO, 'bin/tidemark.js');
const NOW = '2026-12-02T12:00:00Z';
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'tidemark-json-'));
  cpSync(path.join(REPO, 'specs'), path.join(dir, 'specs'), { recursive: true, filter: (src) => !/specs\/data\/.+\.(csv|ndjson)$/.test(src) });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function tidemark(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: dir, env: { PATH: process.env.PATH, NO_COLOR: '1' }, timeout: 240_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** stdout is exactly one JSON document (nothing before or after it), saying where it ran. */
function documentOf(r: Run): Record<string, unknown> & { target: { mode: string; id: string; label: string }; environment: string } {
  const doc = JSON.parse(r.stdout) as ReturnType<typeof documentOf>;
  expect(r.stdout.trimStart().startsWith('{')).toBe(true);
  expect(doc.format_version).toBe(1);
  expect(doc.environment).toBe('staging');
  expect(doc.target).toEqual({ mode: 'sandbox', id: 'sandbox:staging', label: expect.stringContaining('embedded sandbox') });
  return doc;
}

const EMAIL = /[\w.+-]+@[\w-]+\.[a-z]{2,}/i;
// The sandbox world's customer ids (e.g. 6011000000002).
const CUSTOMER_ID = /\b6011\d{9}\b/;

function expectNothingPrivate(what: string, text: string): void {
  expect(text, `${what}: an email`).not.toMatch(EMAIL);
  expect(text, `${what}: a customer id`).not.toMatch(CUSTOMER_ID);
  const secrets = Object.entries(SANDBOX_CREDENTIALS).filter(([name]) => /KEY|TOKEN|SITE_ID/.test(name));
  for (const [name, secret] of secrets) expect(text, `${what}: ${name}`).not.toContain(secret);
}

describe('--format json through the CLI, on the sandbox', () => {
  it('apply: one document with each change, the plan and progress on stderr; again: nothing to do', async () => {
    const r = await tidemark(['apply', '--auto-approve', '--format', 'json', '--now', NOW]);
    expect(r.code, r.stderr).toBe(0);
    const doc = documentOf(r) as ReturnType<typeof documentOf> & { status: string; ok: boolean; results: Array<{ address: string; status: string; action: string; remote_id: string }>; summary: Record<string, number>; exit_code: number };
    expect(doc.status).toBe('done');
    expect(doc.ok).toBe(true);
    expect(doc.exit_code).toBe(0);
    expect(doc.results.length).toBe(doc.summary.create);
    expect(doc.results.every((c) => c.status === 'applied' && c.action === 'create' && c.remote_id)).toBe(true);
    expect(doc.results.map((c) => c.address)).toContain('customerio.segment.vip_customers');
    // What people read went to stderr: the plan, each change, and the progress lines (not a terminal).
    expect(r.stderr).toContain('Plan: ');
    expect(r.stderr).toMatch(/^✓ customerio\.segment\.vip_customers: applied/m);
    expect(r.stderr).toMatch(/^tidemark apply: plan: done: \d+ change\(s\) to apply, \d+\.\d s$/m);
    expect(r.stderr).toMatch(/^tidemark apply: apply: done: (\d+) of \1 change\(s\) done, complete, \d+\.\d s$/m);
    expectNothingPrivate('apply json', r.stdout + r.stderr);

    const again = await tidemark(['apply', '--auto-approve', '--format', 'json', '--now', NOW]);
    expect(again.code).toBe(0);
    expect(documentOf(again)).toMatchObject({ status: 'nothing', ok: true, results: [], exit_code: 0 });
    // The text run says the same with the same code.
    const text = await tidemark(['apply', '--auto-approve', '--now', NOW]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('No changes');
  });

  it('state list, history and unprotect; import refused keeps its exit code', async () => {
    const list = await tidemark(['state', 'list', '--format', 'json']);
    expect(list.code).toBe(0);
    const objects = (documentOf(list) as unknown as { objects: Array<{ address: string; remote_id: string; prevent_destroy: boolean }> }).objects;
    expect(objects.map((o) => o.address)).toContain('customerio.segment.vip_customers');
    const textList = await tidemark(['state', 'list']);
    expect(textList.stdout.trim().split('\n').length).toBe(objects.length);

    const history = await tidemark(['state', 'history', '--format', 'json']);
    expect(history.code).toBe(0);
    const runs = (documentOf(history) as unknown as { runs: Array<{ status: string; started_at: string }> }).runs;
    expect(runs.length).toBeGreaterThanOrEqual(1);
    expect(runs.map((x) => x.status)).toContain('succeeded');

    const unprotect = await tidemark(['state', 'unprotect', 'customerio.segment.nope', '--format', 'json']);
    expect(unprotect.code).toBe(1);
    expect(documentOf(unprotect)).toMatchObject({ address: 'customerio.segment.nope', unprotected: false });
    const ok = await tidemark(['state', 'unprotect', 'customerio.segment.vip_customers', '--format', 'json']);
    expect(ok.code).toBe(0);
    expect(documentOf(ok)).toMatchObject({ unprotected: true });

    const vip = objects.find((o) => o.address === 'customerio.segment.vip_customers')!;
    const imported = await tidemark(['import', 'customerio.segment.vip_customers', vip.remote_id, '--format', 'json']);
    expect(imported.code).toBe(1);
    expect(documentOf(imported)).toMatchObject({ status: 'refused', address: 'customerio.segment.vip_customers', reason: expect.stringContaining('already manages') });
    expect(imported.stderr).toContain('tidemark import: customerio.segment.vip_customers already manages');
  });

  it('start: one document with every step (counts only), the steps and progress lines on stderr', async () => {
    const r = await tidemark(['start', '--format', 'json', '--now', NOW]);
    expect([0, 3], r.stderr.slice(-3000)).toContain(r.code);
    const doc = documentOf(r) as ReturnType<typeof documentOf> & {
      status: string;
      exit_code: number;
      apply: { status: string };
      syncs: Array<{ source: string; status: string; counts: { sent: number } }>;
      audiences: { segments: Array<{ segment: string }> };
      surveys: { targets: Array<{ target: string; status: string }> };
    };
    expect(doc.exit_code).toBe(r.code);
    expect(doc.status).toBe(r.code === 0 ? 'ok' : 'alerts');
    expect(doc.apply.status).toBe('nothing');
    expect(doc.syncs.map((s) => s.source).sort()).toEqual(['loyalty_tiers', 'recharge_cancel_requests', 'recharge_subscriptions', 'returns', 'shopify_deliveries', 'shopify_orders', 'warehouse_vip']);
    expect(doc.syncs.every((s) => s.status === 'succeeded' && s.counts.sent > 0)).toBe(true);
    expect(doc.audiences.segments.length).toBeGreaterThan(0);
    expect(doc.surveys.targets.length).toBeGreaterThan(0);
    // The human steps are on stderr, with a plain line per step and per source.
    expect(r.stderr).toContain('1. Validate specs');
    expect(r.stderr).toContain('Summary (staging on');
    for (const s of doc.syncs) expect(r.stderr).toMatch(new RegExp(`^tidemark start: ${s.source}: done: [\\d,]+ rows read.*, [\\d,]+ sent, \\d+\\.\\d s$`, 'm'));
    expect(r.stderr).toMatch(/^tidemark start: audiences: done: \d+ segment\(s\) evaluated, \d+ published, \d+\.\d s$/m);
    expect(r.stderr).toMatch(/^tidemark start: surveys: done: \d+ of \d+ target\(s\) sent, \d+\.\d s$/m);
    expectNothingPrivate('start json', r.stdout);
  }, 300_000);

  it('sync run off a terminal: a line per source on stderr, the report on stdout', async () => {
    const r = await tidemark(['sync', 'run', 'returns', '--now', '2026-12-03T12:00:00Z']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^tidemark sync: returns: started$/m);
    expect(r.stderr).toMatch(/^tidemark sync: returns: done: [\d,]+ rows read \(100%\), \d+\.\d s$|^tidemark sync: returns: done: [\d,]+ rows read \(100%\), [\d,]+ sent, \d+\.\d s$/m);
    expect(r.stdout).toContain('Sync run of returns');
    expect(r.stdout).not.toContain('tidemark sync:');
  });
});
