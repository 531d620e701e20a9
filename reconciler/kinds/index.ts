/**
 * Every config kind, listed once: the registry `connect()`, the golden plan tests and the Terraform
 * export all use, so what the tests plan with is what the CLI plans with.
 *
 * A kind exists in an environment only when the environment has its service: an environment without
 * Qualtrics has no mailing lists, and a plan that needs one says so instead of calling a client it lacks.
 */
import { compareAddress } from '../core/address.ts';
import type { DesiredResource } from '../plan/desired.ts';
import type { SpecModel } from '../spec/model.ts';
import { customerioSegment } from './customerio-segment.ts';
import type { ConfigClients, ConfigKind, EnvironmentSpec, ResourceKind } from './kind.ts';
import { qualtricsEventSubscription } from './qualtrics-event-subscription.ts';
import { qualtricsMailingList } from './qualtrics-mailing-list.ts';

export type { ConfigClients, ConfigKind, EnvironmentSpec } from './kind.ts';

export const CONFIG_KINDS: readonly ConfigKind[] = [customerioSegment, qualtricsMailingList, qualtricsEventSubscription];

/** The kinds of one environment, wired to its clients. */
export function configKinds(envCfg: EnvironmentSpec, clients: ConfigClients): Record<string, ResourceKind> {
  const kinds: Record<string, ResourceKind> = {};
  for (const k of CONFIG_KINDS) {
    const bound = k.bind(envCfg, clients);
    if (bound) kinds[k.kind] = bound;
  }
  return kinds;
}

/** Every object the specs declare for one environment, in address order. Pure. */
export function desiredResources(model: SpecModel, environment: string): DesiredResource[] {
  return CONFIG_KINDS.flatMap((k) => k.desired(model, environment)).sort((a, b) => compareAddress(a.address, b.address));
}
