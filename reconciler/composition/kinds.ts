/**
 * The config kinds of one environment, wired to its clients: the one registry both `connect()` and the
 * golden plan tests use, so what the tests plan with is what the CLI plans with.
 *
 * A kind exists in an environment only when the environment has its service: an environment without
 * Qualtrics has no mailing lists, and a plan that needs one says so instead of calling a client it lacks.
 */
import { customerioSegmentKind } from '../providers/customerio/kinds/segment.ts';
import type { CustomerioClient } from '../providers/customerio/client.ts';
import type { ResourceKind } from '../providers/provider.ts';
import type { QualtricsClient } from '../providers/qualtrics/client.ts';
import { qualtricsEventSubscriptionKind } from '../providers/qualtrics/kinds/event-subscription.ts';
import { qualtricsMailingListKind } from '../providers/qualtrics/kinds/mailing-list.ts';
import type { EnvironmentSpec } from './target.ts';

export interface ConfigClients {
  customerio: CustomerioClient;
  /** Present when the environment declares Qualtrics. */
  qualtrics?: QualtricsClient;
}

export function configKinds(envCfg: EnvironmentSpec, clients: ConfigClients): Record<string, ResourceKind> {
  const kinds: Record<string, ResourceKind> = { 'customerio.segment': customerioSegmentKind(clients.customerio) };
  if (envCfg.qualtrics && clients.qualtrics) {
    kinds['qualtrics.mailing_list'] = qualtricsMailingListKind(clients.qualtrics, envCfg.qualtrics.directory_id);
    kinds['qualtrics.event_subscription'] = qualtricsEventSubscriptionKind(clients.qualtrics);
  }
  return kinds;
}
