/**
 * `npm start`, the README's first command: on a fresh folder with no credentials it validates the example
 * specs, applies them to the embedded sandbox, runs the syncs that are due and checks freshness. A second
 * start finds nothing to change and nothing due.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli-run.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'tidemark-start-'));
  cpSync(path.join(REPO, 'specs'), path.join(dir, 'specs'), { recursive: true });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('tidemark start on the embedded sandbox', () => {
  it('applies the example config, runs the due file syncs and reports them fresh; then has nothing left to do', async () => {
    const env = { PATH: process.env.PATH ?? '', NO_COLOR: '1' };
    const first = await runCli(['start'], { cwd: dir, env });
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).toMatch(/Plan the config for staging on the embedded sandbox/);
    expect(first.stdout).toMatch(/applied {2}customerio\.segment\.vip_customers/);
    expect(first.stdout).toMatch(/synced loyalty_tiers: read \d+, sent \d+/);
    // Warehouse sources need a connection the sandbox does not have: said plainly, not failed.
    expect(first.stdout).toMatch(/skipped warehouse_vip: WAREHOUSE_URL is not set/);
    expect(first.stdout).toMatch(/✓ loyalty_tiers/);

    const second = await runCli(['start'], { cwd: dir, env });
    expect(second.code, second.stdout + second.stderr).toBe(0);
    expect(second.stdout).toMatch(/Nothing to apply: the config is up to date/);
    expect(second.stdout).not.toMatch(/synced loyalty_tiers/);
  });
});
