import { describe, expect, it } from 'vitest';
import { ProviderError } from '../providers/errors.ts';
import { explainServiceError, type ServiceErrorContext } from './service-errors.ts';
import { liveTarget, type EnvironmentSpec } from './target.ts';

const envCfg = {
  customerio: { region: 'eu', site_id_env: 'S', track_api_key_env: 'T', app_api_key_env: 'A' },
  qualtrics: { datacenter: 'fra1', directory_id: 'POOL_1', api_token_env: 'Q' },
} as EnvironmentSpec;
const ctx: ServiceErrorContext = {
  environment: 'production',
  envCfg,
  keyAt: (p) => `environments.production.${p.join('.')} (specs/workspace.yaml:9)`,
  target: liveTarget(envCfg, { S: 'site1', T: 't', A: 'a', Q: 'q' }),
};
const err = (provider: 'customerio' | 'qualtrics', operation: string, status: number) =>
  new ProviderError({ provider, operation, message: `HTTP ${status}`, status, retryable: false });

describe('explainServiceError', () => {
  it('names the variables to check for a 403, per API', () => {
    expect(explainServiceError(err('customerio', 'app.segments.list', 403), ctx)).toBe(
      'Customer.io refused access with the credentials of environment "production" (403 on app.segments.list). Check A, and that environments.production.customerio.region (specs/workspace.yaml:9) (eu) is the workspace\'s region.',
    );
    expect(explainServiceError(err('customerio', 'track.v2.batch', 403), ctx)).toMatch(/\(403 on track\.v2\.batch\)\. Check S and T,/);
    expect(explainServiceError(err('qualtrics', 'mailing_lists.list', 403), ctx)).toMatch(
      /^Qualtrics refused access with the credentials of environment "production" \(403 on mailing_lists\.list\)\. Check Q, and that environments\.production\.qualtrics\.datacenter \(specs\/workspace\.yaml:9\) \(fra1\)/,
    );
  });

  it('leaves what the user cannot fix to the caller', () => {
    expect(explainServiceError(err('customerio', 'app.segments.list', 500), ctx)).toBeUndefined();
    expect(explainServiceError(new Error('boom'), ctx)).toBeUndefined();
  });
});
