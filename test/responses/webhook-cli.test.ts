/**
 * `responses serve` refusing to start: a live environment whose shared-key variable is unset (the message
 * names the variable and the Workspace line that names it), bad flags, and an environment with no webhook
 * target. Nothing listens in these cases, so no port is opened.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runResponsesServe } from '../../reconciler/cli/commands/responses-serve.ts';
import { UsageError } from '../../reconciler/cli/command.ts';
import { editSpec, makeProject, removeProject } from '../support/integration-fixture.ts';

const LIVE_CREDENTIALS = {
  CIO_STAGING_SITE_ID: 'site-1',
  CIO_STAGING_TRACK_API_KEY: 'track-key-1',
  CIO_STAGING_APP_API_KEY: 'app-key-1',
  QUALTRICS_STAGING_API_TOKEN: 'q-token-1',
};

async function serve(dir: string, args: string[], env: NodeJS.ProcessEnv) {
  let stdout = '';
  let stderr = '';
  const sink = (on: (s: string) => void) => new Writable({ write(chunk, _e, cb) { on(String(chunk)); cb(); } });
  const code = await runResponsesServe(args, { cwd: dir, env, stdout: sink((s) => (stdout += s)), stderr: sink((s) => (stderr += s)) });
  return { code, stdout, stderr };
}

describe('responses serve refuses to start', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await makeProject();
  });
  afterEach(async () => removeProject(dir));

  it('live, with the shared-key variable unset: names the variable and where the Workspace names it', async () => {
    const r = await serve(dir, ['--port', '0'], { ...LIVE_CREDENTIALS, QUALTRICS_STAGING_WEBHOOK_SECRET: ' ' });
    const line = (await readFile(path.join(dir, 'specs', 'workspace.yaml'), 'utf8')).split('\n').findIndex((l) => l.includes('QUALTRICS_STAGING_WEBHOOK_SECRET')) + 1;
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(line).toBeGreaterThan(0);
    expect(r.stderr).toContain(
      `tidemark: the webhook shared key is not set: environment variable QUALTRICS_STAGING_WEBHOOK_SECRET (named by environments.staging.qualtrics.responses_webhook_secret_env (specs/workspace.yaml:${line})) is unset or empty`,
    );
    expect(r.stderr).toContain('Set QUALTRICS_STAGING_WEBHOOK_SECRET to a long random value');
  });

  it('in a protected environment without credentials: never falls back to the sandbox key', async () => {
    const r = await serve(dir, ['--env', 'production', '--port', '0'], {});
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/environment "production" has no credentials in .*: environment "production" is protected/);
  });

  it('with no survey target asking for webhook delivery', async () => {
    await editSpec(dir, 'surveys.yaml', 'webhook: true', 'webhook: false');
    const r = await serve(dir, ['--port', '0'], {});
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no survey target of environment "staging" asks for webhook delivery (responses.webhook: true)');
  });

  it('on bad flags', async () => {
    await expect(serve(dir, ['--port', 'http'], {})).rejects.toThrow(UsageError);
    await expect(serve(dir, ['--port', '70000'], {})).rejects.toThrow('--port must be a port number');
    await expect(serve(dir, ['--path', 'hooks'], {})).rejects.toThrow('--path must start with /');
    await expect(serve(dir, ['extra'], {})).rejects.toThrow('unexpected argument extra');
  });
});
