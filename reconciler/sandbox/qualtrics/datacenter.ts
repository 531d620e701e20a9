/**
 * Datacenter routing. A brand lives in one datacenter; a request sent to another datacenter's host is
 * proxied and its answer carries `meta.notice: "Request proxied. For faster response times, use this
 * host instead: <host>"` (real `/whoami` answer in the reference). Clients are expected to switch to the
 * named host. On loopback every host reaches the same server, so "another host" means another spelling
 * of it (e.g. `localhost:4010` when the home host is `127.0.0.1:4010`), or a `<dc>.qualtrics.com` Host.
 */
import type { QualtricsConfig } from './state.ts';

const QUALTRICS_HOST = /^(?:[a-z0-9-]+\.)?([a-z0-9]+)\.qualtrics\.com$/;

/** The host a proxied request should have used, or undefined when the request reached the home host. */
export function homeHostFor(config: QualtricsConfig, url: URL): string | undefined {
  if (config.homeHost !== null) {
    return url.host.toLowerCase() === config.homeHost.toLowerCase() ? undefined : config.homeHost;
  }
  const m = QUALTRICS_HOST.exec(url.hostname.toLowerCase());
  if (m && m[1] !== config.datacenter.toLowerCase()) return `${config.datacenter}.qualtrics.com`;
  return undefined;
}

export function proxiedNotice(homeHost: string): string {
  return `Request proxied. For faster response times, use this host instead: ${homeHost}`;
}
