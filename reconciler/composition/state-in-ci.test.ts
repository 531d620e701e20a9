import { describe, expect, it } from 'vitest';
import { checkStateInCi, ciMarker, liveTarget, sandboxTarget, type EnvironmentSpec } from './target.ts';

const envCfg = {
  customerio: { region: 'us', site_id_env: 'S', track_api_key_env: 'T', app_api_key_env: 'A' },
  qualtrics: { datacenter: 'iad1', directory_id: 'POOL_1', api_token_env: 'Q' },
} as EnvironmentSpec;
const creds = { S: 'site1', T: 'track', A: 'app', Q: 'token' };
const live = liveTarget(envCfg, creds);
const local = liveTarget(envCfg, { ...creds, CUSTOMERIO_TRACK_URL: 'http://127.0.0.1:4010', CUSTOMERIO_APP_URL: 'http://127.0.0.1:4011', QUALTRICS_BASE_URL: 'http://127.0.0.1:4012' });
const ctx = { environment: 'production', embedded: true, stateLocation: '.tidemark/state-production.sqlite', workspaceStateAt: 'specs/workspace.yaml:40' };

describe('ciMarker', () => {
  it.each([
    [{}, undefined],
    [{ CI: 'false' }, undefined],
    [{ CI: '0', GITHUB_ACTIONS: 'false' }, undefined],
    [{ CI: 'true' }, 'CI=true'],
    [{ CI: '1' }, 'CI=1'],
    [{ GITHUB_ACTIONS: 'true' }, 'GITHUB_ACTIONS=true'],
    [{ CI: 'false', GITHUB_ACTIONS: 'TRUE' }, 'GITHUB_ACTIONS=TRUE'],
  ] as Array<[NodeJS.ProcessEnv, string | undefined]>)('%o -> %s', (env, marker) => {
    expect(ciMarker(env)).toBe(marker);
  });
});

describe('checkStateInCi', () => {
  it('refuses embedded state for a live target in CI, naming the fix and the escape hatch', () => {
    for (const env of [{ CI: 'true' }, { GITHUB_ACTIONS: 'true' }]) {
      const r = checkStateInCi(live, env, ctx);
      expect(r.ok).toBe(false);
      if (r.ok) continue;
      expect(r.message).toContain(`environment "production" keeps its state in the embedded store (.tidemark/state-production.sqlite)`);
      expect(r.message).toContain(`this is a CI run (${Object.entries(env)[0]!.join('=')})`);
      expect(r.message).toContain('set TIDEMARK_DATABASE_URL');
      expect(r.message).toContain('specs/workspace.yaml:40');
      expect(r.message).toContain('TIDEMARK_ALLOW_EMBEDDED_STATE_IN_CI=1');
      expect(r.message).toContain('docs/ci-state.md');
    }
  });

  it('allows Postgres state, runs outside CI, sandboxes and services on this machine', () => {
    expect(checkStateInCi(live, { CI: 'true' }, { ...ctx, embedded: false })).toEqual({ ok: true });
    expect(checkStateInCi(live, {}, ctx)).toEqual({ ok: true });
    expect(checkStateInCi(live, { CI: 'false' }, ctx)).toEqual({ ok: true });
    expect(checkStateInCi(sandboxTarget('production'), { CI: 'true' }, ctx)).toEqual({ ok: true });
    expect(local.loopback).toBe(true);
    expect(checkStateInCi(local, { CI: 'true' }, ctx)).toEqual({ ok: true });
  });

  it('allows embedded state in CI only with the escape hatch set to exactly 1', () => {
    expect(checkStateInCi(live, { CI: 'true', TIDEMARK_ALLOW_EMBEDDED_STATE_IN_CI: '1' }, ctx)).toEqual({ ok: true });
    expect(checkStateInCi(live, { CI: 'true', TIDEMARK_ALLOW_EMBEDDED_STATE_IN_CI: ' 1\n' }, ctx)).toEqual({ ok: true });
    for (const v of ['', '0', 'true', 'yes']) expect(checkStateInCi(live, { CI: 'true', TIDEMARK_ALLOW_EMBEDDED_STATE_IN_CI: v }, ctx).ok).toBe(false);
  });
});
