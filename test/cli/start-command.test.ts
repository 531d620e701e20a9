/**
 * `npm start`, the README's first command: on a fresh folder with no credentials it validates the example
 * specs, applies them to the embedded sandbox, runs every source against the sandbox world (the Postgres
 * sources on the embedded warehouse, the file sources on the world's exports), checks freshness and ends
 * with a summary. A second start at the same clock sends nothing; a later clock sends only what happened.
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli-run.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const SOURCES = ['loyalty_tiers', 'recharge_cancel_requests', 'recharge_subscriptions', 'returns', 'shopify_deliveries', 'shopify_orders', 'warehouse_vip'];
const env = { PATH: process.env.PATH ?? '', NO_COLOR: '1' };
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'tidemark-start-'));
  cpSync(path.join(REPO, 'specs'), path.join(dir, 'specs'), { recursive: true, filter: (src) => !/specs\/data\/.+\.(csv|ndjson)$/.test(src) });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sentOf = (out: string, source: string) => Number(new RegExp(`synced ${source}: read \\d+, sent (\\d+)`).exec(out)?.[1]);

describe('tidemark start on the embedded sandbox', () => {
  it('runs the whole main job on the Hearth & Harvest world; a second start sends nothing; a later clock sends only what changed', async () => {
    const first = await runCli(['start', '--now', '2026-12-02T12:00:00Z'], { cwd: dir, env });
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).toMatch(/Plan the config for staging on the embedded sandbox/);
    expect(first.stdout).toMatch(/applied {2}customerio\.segment\.vip_customers/);
    expect(first.stdout).toMatch(/embedded warehouse \(PGlite\) on 127\.0\.0\.1 with 5,000 customers/);
    for (const s of SOURCES) {
      expect(sentOf(first.stdout, s), s).toBeGreaterThan(0);
      expect(first.stdout).toMatch(new RegExp(`✓ ${s}`));
    }
    // The world's traps reach the engine: unusable phones are rejected, and the summary says where to read why.
    const rejects = /shopify_orders: sent \d+ of 5000 read, (\d+) rejected \((\.tidemark\/rejects\/shopify_orders\/[^)]+)\)/.exec(first.stdout);
    expect(rejects, first.stdout).not.toBeNull();
    const lines = readFileSync(path.join(dir, rejects![2]!), 'utf8').trim().split('\n');
    expect(lines.length).toBe(Number(rejects![1]));
    expect(first.stdout).toMatch(/Summary \(staging on the embedded sandbox/);
    expect(first.stdout).toMatch(/config: created customerio\.segment\.vip_customers/);
    expect(first.stdout).toMatch(/Next:/);
    expect(existsSync(path.join(dir, 'specs/data/loyalty_export.csv'))).toBe(true);
    // The sandbox's Qualtrics holds the surveys the SurveyTargets name, with the questions they read.
    const sandboxData = readFileSync(path.join(dir, '.tidemark/sandbox/staging.json'), 'utf8');
    for (const survey of ['SV_3kZ8cTqQ4rPbUuG', 'SV_8mWq2ZcR5tYhJ1n', 'SV_1pXv7KdN3sGa9Lq']) expect(sandboxData).toContain(survey);
    expect(sandboxData).toContain('What is the main reason you want to cancel?');
    // The published segments are no longer empty: evaluated from what was delivered, then published.
    const vip = /✓ vip_customers: added (\d+), removed 0/.exec(first.stdout);
    expect(vip, first.stdout).not.toBeNull();
    expect(Number(vip![1])).toBeGreaterThan(100);
    const segments = (JSON.parse(sandboxData) as { services: { customerio: { segments: Array<{ name: string; members: unknown[] }> } } }).services.customerio.segments;
    expect(segments.find((g) => g.name === 'tidemark: vip_customers')?.members.length).toBe(Number(vip![1]));
    expect(first.stdout).toMatch(/winback_eligible: \d+ members, \+\d+ entering/);

    // The surveys went out: per target, the people eligible now were imported into its Qualtrics list and
    // sent one distribution; the invitations are recorded, counts only on screen.
    const sent = (t: string) => Number(new RegExp(`${t}: audience \\d+ → in the moment window \\d+ → .*\\n {4}✓ invited (\\d+), held out \\d+`).exec(first.stdout)?.[1]);
    for (const t of ['post_purchase_fit', 'lapsed_diagnosis']) expect(sent(t), first.stdout).toBeGreaterThan(10);
    const qualtrics = (JSON.parse(readFileSync(path.join(dir, '.tidemark/sandbox/staging.json'), 'utf8')) as { services: { qualtrics: { distributions: Array<{ recipients: { transactionBatchId: string | null } }> } } }).services.qualtrics;
    expect(qualtrics.distributions.length).toBe(3);
    for (const d of qualtrics.distributions) expect(d.recipients.transactionBatchId).toMatch(/^BT_/);
    expect(first.stdout).not.toMatch(/6011\d{9}/);

    // Afterwards nobody is left to invite at the same clock, and planning writes nothing.
    const surveys = await runCli(['surveys', 'plan', '--now', '2026-12-02T12:00:00Z'], { cwd: dir, env });
    expect(surveys.code, surveys.stdout + surveys.stderr).toBe(0);
    const invite = (t: string) => Number(new RegExp(`${t}: audience \\d+ → in the moment window \\d+ → .* would invite (\\d+)`).exec(surveys.stdout)?.[1]);
    for (const t of ['post_purchase_fit', 'lapsed_diagnosis', 'cancel_intent_reason']) expect(invite(t), surveys.stdout).toBe(0);
    const again = await runCli(['surveys', 'plan', '--now', '2026-12-02T12:00:00Z'], { cwd: dir, env });
    expect(again.stdout).toBe(surveys.stdout);

    const second = await runCli(['start', '--now', '2026-12-02T12:00:00Z'], { cwd: dir, env });
    expect(second.code, second.stdout + second.stderr).toBe(0);
    expect(second.stdout).toMatch(/Nothing to apply: the config is up to date/);
    expect(second.stdout).toMatch(/No source is due/);
    expect(second.stdout).not.toMatch(/synced /);
    expect(second.stdout).toMatch(/✓ vip_customers: added 0, removed 0 in 0 request/);
    for (const s of SOURCES) expect(second.stdout).toMatch(new RegExp(`${s}: not due`));

    // Three hours on: the hourly sources run again and send only what happened since.
    const later = await runCli(['start', '--now', '2026-12-02T15:00:00Z'], { cwd: dir, env });
    expect(later.code, later.stdout + later.stderr).toBe(0);
    expect(sentOf(later.stdout, 'shopify_orders')).toBeLessThan(sentOf(first.stdout, 'shopify_orders') / 20);
    expect(sentOf(later.stdout, 'shopify_deliveries')).toBeLessThan(sentOf(first.stdout, 'shopify_deliveries') / 20);
    expect(later.stdout).toMatch(/synced returns: read \d+, sent 0 /);
    expect(later.stdout).toMatch(/loyalty_tiers: not due/);
  }, 300_000);

  it('exits 1 and names the source when one that should have run could not: a warehouse source with no world and no connection', async () => {
    const bare = mkdtempSync(path.join(os.tmpdir(), 'tidemark-start-bare-'));
    try {
      cpSync(path.join(REPO, 'specs'), path.join(bare, 'specs'), { recursive: true });
      const ws = path.join(bare, 'specs/workspace.yaml');
      writeFileSync(ws, readFileSync(ws, 'utf8').replace(/^sandbox:[\s\S]*?(?=^surveys:)/m, ''));
      const run = await runCli(['start', '--now', '2026-12-02T12:00:00Z'], { cwd: bare, env });
      expect(run.code, run.stdout + run.stderr).toBe(1);
      expect(run.stdout).toMatch(/warehouse_vip: sent 0 of 0 read — failed: .*WAREHOUSE_URL is not set/);
    } finally {
      rmSync(bare, { recursive: true, force: true });
    }
  }, 120_000);

  it('refuses a clock or a world size it cannot use, before doing anything', async () => {
    const badNow = await runCli(['start', '--now', 'yesterday'], { cwd: dir, env });
    expect(badNow.code).toBe(1);
    expect(badNow.stderr).toMatch(/--now must be an ISO-8601 time with a zone/);
    const badPeople = await runCli(['start', '--now', '2026-12-02T16:00:00Z', '--people', '0'], { cwd: dir, env });
    expect(badPeople.code).not.toBe(0);
    expect(badPeople.stdout + badPeople.stderr).toMatch(/people must be a whole number from 1 to 1,000,000/);
    expect(badPeople.stdout + badPeople.stderr).not.toMatch(/\n\s+at /);
  }, 120_000);
});
