import { describe, expect, it } from 'vitest';
import { checkStateTarget, chooseTarget, liveTarget, sandboxTarget, type EnvironmentSpec } from './target.ts';

const envCfg = (over: Partial<EnvironmentSpec> = {}): EnvironmentSpec =>
  ({
    customerio: { region: 'us', site_id_env: 'S', track_api_key_env: 'T', app_api_key_env: 'A' },
    qualtrics: { datacenter: 'iad1', directory_id: 'POOL_1', api_token_env: 'Q' },
    ...over,
  }) as EnvironmentSpec;
const all = { S: 'site1', T: 'track', A: 'app', Q: 'token' };

describe('chooseTarget', () => {
  it('goes live with every credential, and to the sandbox when chosen even then', () => {
    expect(chooseTarget('staging', envCfg(), all, false)).toEqual({ outcome: 'live' });
    expect(chooseTarget('staging', envCfg({ protected: true }), {}, true)).toEqual({ outcome: 'sandbox', reason: 'chosen' });
  });

  it('falls back to the sandbox only for an unprotected environment outside CI with no credentials at all', () => {
    expect(chooseTarget('staging', envCfg(), {}, false)).toEqual({ outcome: 'sandbox', reason: 'no-credentials' });
    expect(chooseTarget('staging', envCfg(), { CI: 'false' }, false)).toEqual({ outcome: 'sandbox', reason: 'no-credentials' });
    for (const [cfg, env] of [[envCfg({ protected: true }), {}], [envCfg(), { CI: 'true' }], [envCfg(), { CI: '1' }]] as const) {
      const c = chooseTarget('staging', cfg, env, false);
      expect(c.outcome).toBe('refused');
    }
  });

  it('treats whitespace-only values as missing and names them', () => {
    const c = chooseTarget('staging', envCfg(), { ...all, T: '  \n' }, false);
    expect(c).toEqual({ outcome: 'refused', message: expect.stringContaining('no credentials in T (T is set but empty)') });
  });
});

describe('checkStateTarget', () => {
  const ctx = { environment: 'staging', stateLocation: '.tidemark/state-staging.sqlite', now: new Date('2026-12-01T00:00:00Z') };
  const a = liveTarget(envCfg(), all);
  const b = liveTarget(envCfg(), { ...all, S: 'site2' });

  it('claims an empty state, and accepts the same target again', () => {
    const first = checkStateTarget(undefined, a, true, ctx);
    expect(first).toEqual({ ok: true, record: { id: a.id, label: a.label, recorded_at: '2026-12-01T00:00:00.000Z' } });
    expect(checkStateTarget(first.ok ? first.record : undefined, a, false, ctx)).toEqual({ ok: true });
  });

  it('refuses another target, and a non-empty state that never recorded one', () => {
    const record = { id: a.id, label: a.label, recorded_at: 'x' };
    expect(checkStateTarget(record, b, false, ctx)).toMatchObject({ ok: false, message: expect.stringContaining('belongs to Customer.io site site1 (us)') });
    expect(checkStateTarget(record, sandboxTarget('staging'), false, ctx).ok).toBe(false);
    expect(checkStateTarget(undefined, a, false, ctx)).toMatchObject({ ok: false, message: expect.stringContaining('did not record which services') });
  });

  it('says what differs when the two targets read the same (an override only the identity holds)', () => {
    const track = 'http://127.0.0.1:4010';
    const before = liveTarget(envCfg(), { ...all, CUSTOMERIO_TRACK_URL: track, CUSTOMERIO_APP_URL: 'http://127.0.0.1:4011' });
    const now = liveTarget(envCfg(), { ...all, CUSTOMERIO_TRACK_URL: track, CUSTOMERIO_APP_URL: 'http://127.0.0.1:5011' });
    expect(now.label).toBe(before.label);
    const check = checkStateTarget({ id: before.id, label: before.label, recorded_at: 'x' }, now, false, ctx);
    expect(check).toMatchObject({ ok: false, message: expect.stringContaining(`(recorded as ${before.id}, now ${now.id})`) });
    expect(before.id).toContain('@http://127.0.0.1:4011');
    expect(now.id).toContain('@http://127.0.0.1:5011');
    // Labels that differ already say it: no identities then.
    expect(checkStateTarget({ id: a.id, label: a.label, recorded_at: 'x' }, b, false, ctx)).toMatchObject({ ok: false, message: expect.not.stringContaining('recorded as') });
  });

  it('identifies a target by site, region, datacenter, directory and override host, never by secrets or URL paths', () => {
    expect(a.id).toBe('customerio:us:site=site1|qualtrics:iad1:directory=POOL_1');
    const via = liveTarget(envCfg(), { ...all, CUSTOMERIO_TRACK_URL: 'http://127.0.0.1:4010/api?token=abc' });
    expect(via.id).toBe('customerio:us:site=site1@http://127.0.0.1:4010|qualtrics:iad1:directory=POOL_1');
    expect(`${via.id}${via.label}`).not.toMatch(/track|app|token=abc/);
  });
});
