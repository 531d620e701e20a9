/**
 * A service's refusal, explained in the words of the setup the user can change: which environment, which
 * variable, which Workspace key. A 401 from Customer.io is a wrong key far more often than an outage, and
 * "check CIO_STAGING_APP_API_KEY" fixes it where a stack trace does not.
 */
import { ProviderError } from '../providers/errors.ts';
import type { EnvironmentSpec, TargetIdentity } from './target.ts';

export interface ServiceErrorContext {
  environment: string;
  envCfg: EnvironmentSpec;
  /** A Workspace key of this environment with where it is declared: `environments.staging.x (specs/workspace.yaml:12)`. */
  keyAt: (path: readonly string[]) => string;
  target: TargetIdentity;
}

/** One paragraph for a provider error a user can act on, or undefined when it is not one of those. */
export function explainServiceError(err: unknown, c: ServiceErrorContext): string | undefined {
  if (!(err instanceof ProviderError)) return undefined;
  const env = c.environment;
  const key = (k: string) => c.keyAt(k.split('.'));
  const cio = c.envCfg.customerio;
  const q = c.envCfg.qualtrics;
  const where = c.target.mode === 'sandbox' ? 'the embedded sandbox' : err.provider === 'customerio' ? 'Customer.io' : 'Qualtrics';
  const app = err.operation.startsWith('app.') || !err.operation.startsWith('track.');
  const status = err.status;

  if (status === 401 || status === 403) {
    const what = status === 401 ? 'refused the credentials' : 'refused access with the credentials';
    if (err.provider === 'customerio') {
      const vars = app ? [cio.app_api_key_env] : [cio.site_id_env, cio.track_api_key_env];
      return (
        `${where} ${what} of environment "${env}" (${status} on ${err.operation}). ` +
        `Check ${vars.join(' and ')}, and that ${key('customerio.region')} (${cio.region}) is the workspace's region.`
      );
    }
    if (q) {
      return (
        `${where} ${what} of environment "${env}" (${status} on ${err.operation}). ` +
        `Check ${q.api_token_env}, and that ${key('qualtrics.datacenter')} (${q.datacenter}) is the brand's datacenter.`
      );
    }
  }
  if (status === 404 && err.provider === 'qualtrics' && q && err.operation.startsWith('mailing_lists.list')) {
    return (
      `Qualtrics has no directory ${q.directory_id} for environment "${env}" in datacenter ${q.datacenter} (404), or the token's user cannot see it. ` +
      `Check ${key('qualtrics.directory_id')} (directory ids start with POOL_) and ${q.api_token_env}.`
    );
  }
  if (err.code === 'not_connected' || err.code === 'network' || err.code === 'timeout') {
    const override = err.provider === 'customerio' ? 'CUSTOMERIO_TRACK_URL / CUSTOMERIO_APP_URL' : 'QUALTRICS_BASE_URL';
    return (
      `${where} could not be reached for environment "${env}" (${err.operation}): ${err.reason}. ` +
      `Check the network, and ${override} if set${err.provider === 'qualtrics' && q ? `, and ${key('qualtrics.datacenter')} (${q.datacenter})` : ''}.`
    );
  }
  return undefined;
}
