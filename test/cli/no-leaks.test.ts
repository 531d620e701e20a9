/**
 * A planted email and planted tokens never reach a user-visible output: every command's stdout and
 * stderr in every format, the sync report, and the errors recorded in the state. Only the rejects file
 * may hold the email (it is where rejected rows go, kept out of logs on purpose).
 *
 * The credentials are set (with a trailing newline, as a pasted `.env` line has them) and point at the
 * test's sandbox server, so every command runs the live code path.
 */
import Database from 'better-sqlite3';
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { cli, CREDENTIAL_VARS, makeProject, ndjson, personSource, sandboxEnv, useSandbox, type CliResult } from '../support/sync-fixture.ts';

let sandbox: RunningSandbox;
useSandbox(8_008, (s) => (sandbox = s));

const EMAIL = 'planted.person@example.com';
const WRONG_TOKEN = 'planted-token-Qx7Vw2Zr9Lm4';

const SEGMENT = `kind: Segment
name: frequent_buyers
conditions:
  attribute: { field: order_count, op: gte, value: 3 }
publish:
  customerio_segment: true
`;

/** The sandbox's own credentials are the tokens here: they are what the commands really send. */
function tokens(): string[] {
  const env = sandboxEnv(sandbox);
  const track = env[CREDENTIAL_VARS.track]!;
  const app = env[CREDENTIAL_VARS.app]!;
  const basic = Buffer.from(`${env[CREDENTIAL_VARS.site]}:${track}`).toString('base64');
  return [track, app, basic, WRONG_TOKEN];
}

function withNewlines(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const name of Object.values(CREDENTIAL_VARS)) out[name] = `${out[name]}\n`;
  return out;
}

function expectClean(what: string, text: string): void {
  expect(text.toLowerCase(), `${what} shows the planted email`).not.toContain(EMAIL);
  for (const t of tokens()) expect(text, `${what} shows a token`).not.toContain(t);
}

describe('no leaks', () => {
  it('no command output, sync report or recorded error holds the planted email or a token', async () => {
    const dir = await makeProject({
      sources: [personSource({ fields: { email: 'email', order_count: 'orders' } })],
      data: {
        'customers.ndjson': ndjson([
          { customer_id: '1001', email: EMAIL, orders: 3 },
          // Rejected: the email sits in a number column, and as a malformed identity.
          { customer_id: '1002', email: 'someone@example.com', orders: EMAIL },
          { customer_id: EMAIL, email: EMAIL, orders: 1 },
          { customer_id: '1003', email: `${EMAIL} <${EMAIL}>`, orders: 1 },
        ]),
      },
    });
    await writeFile(path.join(dir, 'specs', 'segments.yaml'), SEGMENT);
    const env = withNewlines({});
    const run = (args: string[], extra: NodeJS.ProcessEnv = {}) => cli(dir, sandbox, args, { ...env, ...withNewlines(sandboxEnv(sandbox)), ...extra });
    const outputs: Array<[string, CliResult]> = [];
    const step = async (args: string[], extra: NodeJS.ProcessEnv = {}) => {
      const r = await run(args, extra);
      outputs.push([args.join(' '), r]);
      return r;
    };

    for (const f of ['text', 'json', 'github']) await step(['validate', '--format', f]);
    for (const f of ['text', 'markdown', 'json']) await step(['plan', '--format', f]);
    const applied = await step(['apply', '--auto-approve', '--format', 'json']);
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
    expect(JSON.parse(applied.stdout)).toMatchObject({ status: 'done', ok: true });
    await step(['apply', '--auto-approve']);
    const synced = await step(['sync', 'run', 'customers']);
    expect(synced.stdout + synced.stderr).toMatch(/rejected/i);
    await step(['sync', 'run', 'customers', '--format', 'json']);
    await step(['sync', 'plan', 'customers']);
    for (const f of ['text', 'json', 'github']) await step(['status', '--format', f]);
    for (const f of ['text', 'json']) {
      await step(['state', 'list', '--format', f]);
      await step(['state', 'history', '--format', f]);
      await step(['import', 'customerio.segment.frequent_buyers', '999999', '--format', f]);
      await step(['audiences', 'run', '--format', f]);
    }

    // Failing commands: a wrong key (401), and a Track API that is down while the email is being sent.
    const denied = await step(['plan'], { [CREDENTIAL_VARS.app]: `${WRONG_TOKEN}\n` });
    expect(denied.code).toBe(1);
    const deniedJson = await step(['apply', '--auto-approve', '--format', 'json'], { [CREDENTIAL_VARS.app]: `${WRONG_TOKEN}\n` });
    expect(deniedJson.code).toBe(1);
    await writeFile(path.join(dir, 'data', 'customers.ndjson'), ndjson([{ customer_id: '1001', email: EMAIL, orders: 4 }]));
    sandbox.faults.set({ errorRate: 1, service: 'track', pathPattern: 'batch' });
    const down = await step(['sync', 'run', 'customers', '--format', 'json']);
    expect(down.code).not.toBe(0);
    const downText = await step(['sync', 'run', 'customers']);
    expect(downText.code).not.toBe(0);
    // The failure keeps its root cause.
    expect(downText.stdout).toMatch(/Sending stopped: customerio track API track\.v2\.batch: HTTP 5\d\d [A-Za-z ]+ after \d+ attempts/);
    await step(['status', '--format', 'github']);
    sandbox.faults.clear();

    // A debug run shows the stack of an error, and still nothing planted.
    await step(['plan'], { [CREDENTIAL_VARS.app]: `${WRONG_TOKEN}\n`, TIDEMARK_DEBUG: '1' });

    for (const [what, r] of outputs) {
      expectClean(`${what} (stdout)`, r.stdout);
      expectClean(`${what} (stderr)`, r.stderr);
    }

    // What the state recorded about runs: errors and notes, never values.
    const stateDir = path.join(dir, '.tidemark');
    for (const file of readdirSync(stateDir).filter((f) => f.endsWith('.sqlite'))) {
      const db = new Database(path.join(stateDir, file), { readonly: true });
      try {
        for (const table of ['sync_runs', 'apply_runs', 'apply_changes']) {
          const exists = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?").get(table);
          if (!exists) continue;
          expectClean(`${file} ${table}`, JSON.stringify(db.prepare(`SELECT * FROM ${table}`).all()));
        }
      } finally {
        db.close();
      }
    }

    // The rejects files are the one place rejected rows are kept (with the email), as the README says.
    const rejectsDir = path.join(stateDir, 'rejects', 'customers');
    const rejects = readdirSync(rejectsDir).map((f) => readFileSync(path.join(rejectsDir, f), 'utf8')).join('');
    expect(rejects).not.toBe('');
    for (const t of tokens()) expect(rejects).not.toContain(t);
  });
});
