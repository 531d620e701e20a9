/**
 * The target is never a surprise (issue 8, points 1–4 and the service errors of 6), through the CLI as a
 * user meets it. Two emulated workspaces stand in for two real ones: "A", where the project lives, and "B",
 * a second workspace the same variables could be pointed at by mistake.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Plan } from '../../reconciler/plan/plan.ts';
import { createSandbox, type RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { runCli } from '../support/cli-run.ts';
import { editSpec, makeProject, PRODUCTION_DIRECTORY, removeProject, removeSpec, resetSandbox, servicesOf, STAGING_DIRECTORY } from '../support/integration-fixture.ts';

let a: RunningSandbox;
let b: RunningSandbox;
let dir: string;

beforeAll(async () => {
  [a, b] = await Promise.all([createSandbox({ port: 0, retryAfterSeconds: 0 }), createSandbox({ port: 0, retryAfterSeconds: 0 })]);
});
afterAll(async () => {
  await Promise.all([a.close(), b.close()]);
});
beforeEach(async () => {
  resetSandbox(a);
  resetSandbox(b);
  dir = await makeProject();
});
afterEach(async () => {
  await removeProject(dir);
});

const BASE = { PATH: process.env.PATH ?? '', NO_COLOR: '1' };

/** The variables of one environment of the example Workspace, pointed at an emulated workspace. */
function credentials(s: RunningSandbox, environment: 'staging' | 'production', over: Record<string, string> = {}): NodeJS.ProcessEnv {
  const names =
    environment === 'staging'
      ? { site: 'CIO_STAGING_SITE_ID', track: 'CIO_STAGING_TRACK_API_KEY', app: 'CIO_STAGING_APP_API_KEY', q: 'QUALTRICS_STAGING_API_TOKEN' }
      : { site: 'CUSTOMERIO_SITE_ID', track: 'CUSTOMERIO_TRACK_API_KEY', app: 'CUSTOMERIO_APP_API_KEY', q: 'QUALTRICS_API_TOKEN' };
  return {
    ...BASE,
    [names.site]: s.env.CUSTOMERIO_SITE_ID,
    [names.track]: s.env.CUSTOMERIO_TRACK_API_KEY,
    [names.app]: s.env.CUSTOMERIO_APP_API_KEY,
    [names.q]: s.env.QUALTRICS_API_TOKEN,
    CUSTOMERIO_TRACK_URL: s.urls.customerioTrack,
    CUSTOMERIO_APP_URL: s.urls.customerioApp,
    QUALTRICS_BASE_URL: s.urls.qualtrics,
    ...over,
  };
}

const cli = (env: NodeJS.ProcessEnv, ...args: string[]) => runCli(args, { cwd: dir, env });
const noStack = (text: string) => expect(text).not.toMatch(/\n\s+at .+:\d+:\d+/);

describe('the sandbox is used only when it was chosen', () => {
  it('refuses a protected environment with empty credentials, naming the variables, and writes nothing', async () => {
    const empty = { ...BASE, CUSTOMERIO_SITE_ID: '', CUSTOMERIO_TRACK_API_KEY: ' ', CUSTOMERIO_APP_API_KEY: '', QUALTRICS_API_TOKEN: '' };
    for (const args of [['plan', '--env', 'production'], ['apply', '--env', 'production', '--auto-approve']]) {
      const r = await cli(empty, ...args);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/environment "production" has no credentials in CUSTOMERIO_SITE_ID, CUSTOMERIO_TRACK_API_KEY, CUSTOMERIO_APP_API_KEY, QUALTRICS_API_TOKEN/);
      expect(r.stderr).toMatch(/is protected, so it never falls back to the sandbox/);
      expect(r.stdout).not.toMatch(/to create/);
      noStack(r.stderr);
    }
    expect(existsSync(path.join(dir, '.tidemark', 'sandbox'))).toBe(false);
  });

  it('refuses a CI run without credentials: no sync is "successful" against an emulator', async () => {
    const r = await cli({ ...BASE, CI: 'true' }, 'sync', 'run', 'returns');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/this is a CI run \(CI=true\), so it never falls back to the sandbox\. Set them, or pass --sandbox/);
    expect(r.stderr).toMatch(/CIO_STAGING_SITE_ID, CIO_STAGING_TRACK_API_KEY, CIO_STAGING_APP_API_KEY, QUALTRICS_STAGING_API_TOKEN/);
    // Nothing was opened, so no snapshot could advance.
    expect(existsSync(path.join(dir, '.tidemark'))).toBe(false);
  });

  it('refuses partial credentials instead of guessing, and names what is missing', async () => {
    const r = await cli({ ...BASE, CIO_STAGING_SITE_ID: 'abc' }, 'plan');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no credentials in CIO_STAGING_TRACK_API_KEY, CIO_STAGING_APP_API_KEY, QUALTRICS_STAGING_API_TOKEN: some of its credentials are set/);
  });

  it('uses the sandbox for an unprotected environment without credentials outside CI, and says so everywhere', async () => {
    const plan = await cli(BASE, 'plan', '--format', 'json');
    expect(plan.code).toBe(0);
    expect(plan.stderr).toMatch(/No credentials for environment "staging" .*: using the embedded sandbox/);
    expect((JSON.parse(plan.stdout) as Plan).target).toMatchObject({ mode: 'sandbox', id: 'sandbox:staging' });
    const md = await cli(BASE, 'plan', '--format', 'markdown');
    expect(md.stdout).toMatch(/> \[!NOTE\]\n> Planned against the embedded sandbox/);
    const apply = await cli(BASE, 'apply', '--auto-approve');
    expect(apply.code).toBe(0);
    expect(apply.stdout).toMatch(/^On: the embedded sandbox/m);
  });

  it('names the live target in every plan format', async () => {
    const env = credentials(a, 'staging');
    const text = await cli(env, 'plan');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^Against: Customer\\.io site ${a.env.CUSTOMERIO_SITE_ID} \\(us\\) via http://127\\.0\\.0\\.1:\\d+ · Qualtrics iad1, directory ${STAGING_DIRECTORY} via http://127\\.0\\.0\\.1:\\d+$`, 'm'));
    const json = JSON.parse((await cli(env, 'plan', '--format', 'json')).stdout) as Plan;
    expect(json.target.mode).toBe('live');
    expect(json.target.id).toContain(`directory=${STAGING_DIRECTORY}`);
    expect((await cli(env, 'plan', '--format', 'markdown')).stdout).toMatch(/^Against: Customer\.io site /m);
  });
});

describe('the state belongs to one target', () => {
  it('refuses a second workspace behind the same variables, and deletes nothing there even with --allow-delete', async () => {
    expect((await cli(credentials(a, 'staging'), 'apply', '--auto-approve')).code).toBe(0);
    // Workspace B holds a marketing segment with the same id tidemark recorded for vip_customers in A.
    const marketing = await servicesOf(b).createSegment('marketing: newsletter');
    const recorded = (await cli(credentials(a, 'staging'), 'state', 'list')).stdout;
    expect(recorded).toMatch(new RegExp(`^customerio\\.segment\\.vip_customers\\t${marketing}$`, 'm'));

    await removeSpec(dir, 'segments.yaml', 'vip_customers');
    for (const args of [['plan', '--allow-delete'], ['apply', '--allow-delete', '--auto-approve']]) {
      const r = await cli(credentials(b, 'staging'), ...args);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/the state of environment "staging" \(.*state-staging\.local\.sqlite\) belongs to Customer\.io site .* but this run targets /);
      expect(r.stderr).toMatch(/To start fresh against this target, move .*state-staging\.local\.sqlite aside/);
      noStack(r.stderr);
    }
    expect(b.customerio.listSegments().map((s) => s.name)).toContain('marketing: newsletter');
  });

  it('keeps the sandbox state apart: trying the sandbox first never blocks or feeds the live workspace', async () => {
    expect((await cli(BASE, 'apply', '--auto-approve')).code).toBe(0);
    const live = await cli(credentials(a, 'staging'), 'plan', '--format', 'json');
    expect(live.code).toBe(0);
    const plan = JSON.parse(live.stdout) as Plan;
    expect(plan.changes.filter((c) => c.action === 'create')).toHaveLength(6);
    const files = (await readdir(path.join(dir, '.tidemark'))).filter((f) => f.endsWith('.sqlite')).sort();
    expect(files).toEqual(['state-staging.local.sqlite', 'state-staging.sandbox.sqlite']);
  });

  it('refuses a saved plan made against other services', async () => {
    expect((await cli(BASE, 'plan', '--out', 'sandbox-plan.json')).code).toBe(0);
    const r = await cli(credentials(a, 'staging'), 'apply', 'sandbox-plan.json');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/- the plan was made against the embedded sandbox .*, and this apply targets Customer\.io site /);
    expect(a.customerio.listSegments().filter((s) => s.type === 'manual')).toEqual([]);
  });
});

describe('a protected environment changes only by a reviewed plan', () => {
  it('refuses a fresh --auto-approve, and applies the saved plan', async () => {
    const env = credentials(a, 'production');
    const fresh = await cli(env, 'apply', '--env', 'production', '--auto-approve');
    expect(fresh.code).toBe(1);
    expect(fresh.stderr).toMatch(/environment "production" is protected: .*tidemark plan --env production --out plan\.json.*Nothing was applied/);
    expect(a.qualtrics.listMailingLists(PRODUCTION_DIRECTORY)).toEqual([]);

    expect((await cli(env, 'plan', '--env', 'production', '--out', 'reviewed.json')).code).toBe(0);
    const applied = await cli(env, 'apply', 'reviewed.json');
    expect(applied.code).toBe(0);
    expect(a.qualtrics.listMailingLists(PRODUCTION_DIRECTORY)).toHaveLength(3);
  });

  it('does not let `start` apply a fresh plan to it either', async () => {
    const r = await cli(credentials(a, 'production'), 'start', '--env', 'production', '--auto-approve');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/Not applying: environment "production" is protected/);
    expect(a.qualtrics.listMailingLists(PRODUCTION_DIRECTORY)).toEqual([]);
  });
});

describe('apply exits 0 only when everything planned was applied', () => {
  it('is 1 when a change was blocked, and when there is no terminal to confirm on', async () => {
    const env = credentials(a, 'staging');
    const unconfirmed = await cli(env, 'apply');
    expect(unconfirmed.code).toBe(1);
    expect(unconfirmed.stderr).toMatch(/not asking for approval without a terminal/);
    expect((await cli(env, 'apply', '--auto-approve')).code).toBe(0);
    await removeSpec(dir, 'surveys.yaml', 'lapsed_diagnosis');
    const blocked = await cli(env, 'apply', '--auto-approve');
    expect(blocked.stdout).toMatch(/Apply incomplete: 0 applied, 0 failed, 0 skipped, 1 blocked\./);
    expect(blocked.code).toBe(1);
    expect((await cli(env, 'state', 'history')).stdout.split('\n')[0]).toMatch(/\tfailed\t.*\t1 change\(s\) blocked$/);
  });
});

describe('a service that refuses says what to check, without a stack trace', () => {
  it('401 from Track names the site id and Track key variables', async () => {
    const r = await cli(credentials(a, 'staging', { CIO_STAGING_TRACK_API_KEY: 'wrong-key-123' }), 'plan');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/refused the credentials of environment "staging" \(401 on track\.region\)\. Check CIO_STAGING_SITE_ID and CIO_STAGING_TRACK_API_KEY/);
    expect(r.stderr).not.toContain('wrong-key-123');
    noStack(r.stderr);
  });

  it('401 from the App API names the App key variable', async () => {
    const r = await cli(credentials(a, 'staging', { CIO_STAGING_APP_API_KEY: 'wrong-app-key-456' }), 'plan');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\(401 on app\.[a-z.]+\)\. Check CIO_STAGING_APP_API_KEY, and that environments\.staging\.customerio\.region \(specs\/workspace\.yaml:18\) \(us\)/);
    expect(r.stderr).not.toContain('wrong-app-key-456');
    noStack(r.stderr);
  });

  it('a Qualtrics directory that does not exist points at directory_id', async () => {
    await editSpec(dir, 'workspace.yaml', STAGING_DIRECTORY, 'POOL_doesNotExist00');
    const r = await cli(credentials(a, 'staging'), 'plan');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Qualtrics has no directory POOL_doesNotExist00 for environment "staging" in datacenter iad1 \(404\).*Check environments\.staging\.qualtrics\.directory_id \(specs\/workspace\.yaml:24\)/);
    noStack(r.stderr);
  });

  it('a wrong region is caught before anything is read or written', async () => {
    const text = await readFile(path.join(dir, 'specs', 'workspace.yaml'), 'utf8');
    expect(text.match(/region: us/g)).toHaveLength(2);
    await editSpec(dir, 'workspace.yaml', 'region: us', 'region: eu');
    const r = await cli(credentials(a, 'staging'), 'plan');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is in region us, but environments\.staging\.customerio\.region \(specs\/workspace\.yaml:18\) says eu\. Set it to us/);
    expect(existsSync(path.join(dir, '.tidemark'))).toBe(false);
  });

  it.each([
    ['ftp://example.com/track', /CUSTOMERIO_TRACK_URL must be an http:\/\/ or https:\/\/ URL, not ftp:\/\//],
    ['not a url', /CUSTOMERIO_TRACK_URL is not a URL \(got "not a url"\)/],
  ])('an override URL %j is named, not fetched', async (url, message) => {
    const r = await cli(credentials(a, 'staging', { CUSTOMERIO_TRACK_URL: url }), 'plan');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    noStack(r.stderr);
  });

  it('an unreachable service says it could not be reached and which variable points there', async () => {
    const r = await cli(credentials(a, 'staging', { CUSTOMERIO_TRACK_URL: 'http://127.0.0.1:9' }), 'plan');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Customer\.io could not be reached for environment "staging" \(track\.region\): .*Check the network, and CUSTOMERIO_TRACK_URL \/ CUSTOMERIO_APP_URL if set/);
    noStack(r.stderr);
  });

  it('a database URL with a broken escape in its password is explained without printing it', async () => {
    const r = await cli(credentials(a, 'staging', { TIDEMARK_DATABASE_URL: 'postgres://tidemark:s3cr%zzet@127.0.0.1:5432/test' }), 'plan');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the password in TIDEMARK_DATABASE_URL has a "%" that does not start a valid escape/);
    expect(r.stderr).not.toContain('s3cr');
    noStack(r.stderr);
  });
});
