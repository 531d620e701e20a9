/**
 * Customer.io configuration: the settings read from `CUSTOMERIO_*` variables, the hosts they point at,
 * and the credentials every message must hide. Validated here, once, so a bad setting fails before any
 * request instead of as a confusing HTTP error.
 */
import { registerSecret } from '../../core/redact.ts';
import { clientErrors } from '../client-errors.ts';
import type { CustomerioConfig, CustomerioRegion } from './types.ts';

const { configError } = clientErrors('customerio');

const TRACK_HOSTS: Record<CustomerioRegion, string> = {
  us: 'https://track.customer.io',
  eu: 'https://track-eu.customer.io',
};
const APP_HOSTS: Record<CustomerioRegion, string> = {
  us: 'https://api.customer.io',
  eu: 'https://api-eu.customer.io',
};

/**
 * Builds a config from `CUSTOMERIO_*` variables. Required: `CUSTOMERIO_SITE_ID`,
 * `CUSTOMERIO_TRACK_API_KEY`. Optional: `CUSTOMERIO_REGION` (`us` default, or `eu`),
 * `CUSTOMERIO_APP_API_KEY`, `CUSTOMERIO_TRACK_URL` / `CUSTOMERIO_APP_URL` (host bases overriding the
 * region, e.g. the sandbox), `CUSTOMERIO_TRACK_RATE_PER_SECOND`. Credentials are registered as secrets.
 */
export function customerioConfigFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  overrides: Partial<CustomerioConfig> = {},
): CustomerioConfig {
  const missing = ['CUSTOMERIO_SITE_ID', 'CUSTOMERIO_TRACK_API_KEY'].filter((k) => !env[k]);
  if (missing.length > 0) {
    throw configError(`missing environment variable${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
  }
  const region = (env.CUSTOMERIO_REGION ?? 'us').trim().toLowerCase();
  if (region !== 'us' && region !== 'eu') throw configError(`CUSTOMERIO_REGION must be "us" or "eu", got "${region}"`);
  const config: CustomerioConfig = {
    region,
    siteId: env.CUSTOMERIO_SITE_ID!,
    trackApiKey: env.CUSTOMERIO_TRACK_API_KEY!,
  };
  if (env.CUSTOMERIO_APP_API_KEY) config.appApiKey = env.CUSTOMERIO_APP_API_KEY;
  if (env.CUSTOMERIO_TRACK_URL) config.trackUrl = env.CUSTOMERIO_TRACK_URL;
  if (env.CUSTOMERIO_APP_URL) config.appUrl = env.CUSTOMERIO_APP_URL;
  if (env.CUSTOMERIO_TRACK_RATE_PER_SECOND) {
    const rate = Number(env.CUSTOMERIO_TRACK_RATE_PER_SECOND);
    if (!(rate > 0)) throw configError('CUSTOMERIO_TRACK_RATE_PER_SECOND must be a positive number');
    config.trackRatePerSecond = rate;
  }
  // For workspaces whose App API limit Customer.io raised (and for the sandbox in benchmarks).
  if (env.CUSTOMERIO_APP_RATE_PER_SECOND) {
    const rate = Number(env.CUSTOMERIO_APP_RATE_PER_SECOND);
    if (!(rate > 0)) throw configError('CUSTOMERIO_APP_RATE_PER_SECOND must be a positive number');
    config.appRatePerSecond = rate;
  }
  const merged = { ...config, ...overrides };
  registerCredentials(merged);
  return merged;
}

/** Registers every form in which a credential could appear in a message (the Basic token included). */
export function registerCredentials(config: CustomerioConfig): void {
  registerSecret(config.trackApiKey);
  registerSecret(config.appApiKey);
  registerSecret(basicToken(config.siteId, config.trackApiKey));
}

export function basicToken(siteId: string, apiKey: string): string {
  return Buffer.from(`${siteId}:${apiKey}`, 'utf8').toString('base64');
}

/** The Track host base (v1 and v2 paths are appended per call): the override, or the region's host. */
export function trackBaseUrl(config: CustomerioConfig): string {
  return stripSuffix(config.trackUrl ?? TRACK_HOSTS[config.region], '/api/v1');
}

/** The App host base (`/v1/…` is appended per call): the override, or the region's host. */
export function appBaseUrl(config: CustomerioConfig): string {
  return stripSuffix(config.appUrl ?? APP_HOSTS[config.region], '/v1');
}

function stripSuffix(url: string, suffix: string): string {
  const trimmed = url.replace(/\/+$/, '');
  return trimmed.endsWith(suffix) ? trimmed.slice(0, -suffix.length) : trimmed;
}
