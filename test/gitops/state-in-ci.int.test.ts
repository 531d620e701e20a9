/**
 * State in CI (issue 14 point 6), through bin/tidemark.js as its own process: a live run in CI refuses
 * the embedded state before it calls any service or writes a file; Postgres state, the escape hatch for
 * persistent runners and sandboxes on this machine are allowed.
 *
 * "Live" here is the emulators reached as 0.0.0.0 (this machine, but not a loopback override URL, so
 * tidemark treats it as the real services).
 */
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createSandbox, type RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { runChild } from '../support/child-cli.ts';
import { makeProject, removeProject, resetSandbox } from '../support/integration-fixture.ts';
import { postgresSkipReason, TEST_DATABASE_URL } from '../support/postgres.ts';

let sandbox: RunningSandbox;
let dir: string;

beforeAll(async () => {
  sandbox = await createSandbox({ port: 0, retryAfterSeconds: 0 });
});
afterAll(async () => {
  await sandbox.close();
});
beforeEach(async () => {
  resetSandbox(sandbox);
  dir = await makeProject();
});
afterEach(async () => {
  await removeProject(dir);
});

/** Staging's credentials, pointed at the emulators through `host` (0.0.0.0: not a loopback override). */
function staging(host: '0.0.0.0' | '127.0.0.1', over: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const via = (url: string) => url.replace('127.0.0.1', host);
  return {
    NO_COLOR: '1',
    CIO_STAGING_SITE_ID: sandbox.env.CUSTOMERIO_SITE_ID,
    CIO_STAGING_TRACK_API_KEY: sandbox.env.CUSTOMERIO_TRACK_API_KEY,
    CIO_STAGING_APP_API_KEY: sandbox.env.CUSTOMERIO_APP_API_KEY,
    QUALTRICS_STAGING_API_TOKEN: sandbox.env.QUALTRICS_API_TOKEN,
    // Live runs sign the response webhook with the environment's key (the sandbox's is generated).
    QUALTRICS_STAGING_WEBHOOK_SECRET: 'a-test-webhook-key-0123456789',
    CUSTOMERIO_TRACK_URL: via(sandbox.urls.customerioTrack),
    CUSTOMERIO_APP_URL: via(sandbox.urls.customerioApp),
    QUALTRICS_BASE_URL: via(sandbox.urls.qualtrics),
    ...over,
  };
}

const tidemark = (env: NodeJS.ProcessEnv, ...args: string[]) => runChild(dir, args, { env });

describe('embedded state in CI', () => {
  it('is refused for a live target before any service is called, naming the fix, whichever variable says CI', async () => {
    for (const ci of [{ CI: 'true' }, { GITHUB_ACTIONS: 'true' }]) {
      for (const args of [['plan'], ['sync', 'run', '--due'], ['apply', '--auto-approve']]) {
        sandbox.resetRequestCounts();
        const r = await tidemark(staging('0.0.0.0', ci), ...args);
        expect(r.code, r.output).toBe(1);
        expect(r.output).toContain(`environment "staging" keeps its state in the embedded store (.tidemark/state-staging.sqlite), but this is a CI run (${Object.entries(ci)[0]!.join('=')})`);
        expect(r.output).toContain('set TIDEMARK_DATABASE_URL from a secret');
        expect(r.output).toMatch(/state: \{ backend: postgres, url_env: … \}` in the Workspace \(specs\/workspace\.yaml:\d+\)/);
        expect(r.output).toContain('TIDEMARK_ALLOW_EMBEDDED_STATE_IN_CI=1');
        expect(r.output).not.toMatch(/\n\s+at .+:\d+:\d+/);
        expect(sandbox.requestCounts()).toEqual({});
      }
    }
    expect(existsSync(path.join(dir, '.tidemark'))).toBe(false);
  });

  it('is allowed on a persistent runner with TIDEMARK_ALLOW_EMBEDDED_STATE_IN_CI=1, and outside CI', async () => {
    const hatch = await tidemark(staging('0.0.0.0', { CI: 'true', TIDEMARK_ALLOW_EMBEDDED_STATE_IN_CI: '1' }), 'plan');
    expect(hatch.code, hatch.output).toBe(0);
    expect(hatch.output).toMatch(/^Against: Customer\.io site .* via http:\/\/0\.0\.0\.0:\d+/m);
    expect(existsSync(path.join(dir, '.tidemark', 'state-staging.sqlite'))).toBe(true);
    const local = await tidemark(staging('0.0.0.0'), 'plan');
    expect(local.code, local.output).toBe(0);
  });

  it('stays allowed for sandboxes in CI: the embedded one chosen with --sandbox, and a standalone one on 127.0.0.1', async () => {
    const embedded = await tidemark({ NO_COLOR: '1', CI: 'true' }, 'plan', '--sandbox');
    expect(embedded.code, embedded.output).toBe(0);
    expect(embedded.output).toMatch(/^Against: the embedded sandbox/m);
    const standalone = await tidemark(staging('127.0.0.1', { CI: 'true', GITHUB_ACTIONS: 'true' }), 'plan');
    expect(standalone.code, standalone.output).toBe(0);
    expect(existsSync(path.join(dir, '.tidemark', 'state-staging.local.sqlite'))).toBe(true);
  });
});

const skip = await postgresSkipReason('state in CI on Postgres');

describe.skipIf(skip !== undefined)('Postgres state in CI', () => {
  const database = `tidemark_ci_${randomBytes(4).toString('hex')}`;
  const admin = () => new pg.Client({ connectionString: TEST_DATABASE_URL });
  const urlOf = (db: string) => {
    const u = new URL(TEST_DATABASE_URL);
    u.pathname = `/${db}`;
    return u.toString();
  };
  beforeAll(async () => {
    const c = admin();
    await c.connect();
    await c.query(`create database ${database}`);
    await c.end();
  });
  afterAll(async () => {
    const c = admin();
    await c.connect();
    await c.query(`drop database if exists ${database} with (force)`);
    await c.end();
  });

  it('is used in CI with TIDEMARK_DATABASE_URL: plan and apply run, and nothing lands in .tidemark/', async () => {
    const env = staging('0.0.0.0', { CI: 'true', TIDEMARK_DATABASE_URL: urlOf(database) });
    const apply = await tidemark(env, 'apply', '--auto-approve');
    expect(apply.code, apply.output).toBe(0);
    const again = await tidemark(env, 'plan', '--detailed-exitcode');
    expect(again.code, again.output).toBe(0);
    expect(existsSync(path.join(dir, '.tidemark', 'state-staging.sqlite'))).toBe(false);
  });
});
