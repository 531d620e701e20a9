/**
 * A config kind, whole: the objects the specs declare for it, its diff traits, its plan guard and its client
 * calls, in one module (kinds/<service>-<kind>.ts) listed once in kinds/index.ts.
 *
 * What the reconciler needs from a managed resource kind. A kind module maps between the service's API
 * and the flat attribute model the planner diffs, and normalises both sides the same way so a converged
 * workspace plans as no changes (gitops-engine's normaliser idea).
 */
import type { Attributes } from '../core/attributes.ts';
import type { DesiredResource } from '../plan/desired.ts';
import type { KindTraits } from '../plan/diff.ts';
import type { CustomerioClient } from '../providers/customerio/client.ts';
import type { QualtricsClient } from '../providers/qualtrics/client.ts';
import type { SpecModel } from '../spec/model.ts';
import type { WorkspaceSpec } from '../spec/schema/index.ts';
import type { WebhookSecret } from './qualtrics-event-subscription.ts';

export type EnvironmentSpec = WorkspaceSpec['environments'][string];

/** The clients of one environment. */
export interface ConfigClients {
  customerio: CustomerioClient;
  /** Present when the environment declares Qualtrics. */
  qualtrics?: QualtricsClient;
  /** The key Qualtrics signs webhook deliveries with (responses/webhook-secret.ts); absent without Qualtrics. */
  webhookSecret?: WebhookSecret;
}

export interface ConfigKind {
  /** `customerio.segment`. */
  kind: string;
  /** The objects of this kind the specs declare for one environment. Pure. */
  desired(model: SpecModel, environment: string): DesiredResource[];
  /** Its traits and client calls in an environment, or undefined where the environment lacks its service. */
  bind(envCfg: EnvironmentSpec, clients: ConfigClients): ResourceKind | undefined;
}

export interface LiveObject {
  /** The service's id, as a string. */
  id: string;
  /** Human name used for adoption by name. */
  name: string;
  /** Normalised attributes, the same keys as the desired side. */
  attributes: Attributes;
  /** When the service says the object last changed, if it says so (ISO-8601). */
  updatedAt?: string;
  /** False when tidemark must never manage it (e.g. a data-driven Customer.io segment). */
  manageable: boolean;
}

/** A kind's traits (what the planner needs: see plan/diff.ts) and its client calls. */
export interface ResourceKind extends KindTraits {
  /**
   * Every live object of this kind (all pages). `managed` lists the objects tidemark manages, so a kind
   * whose objects live in several containers can look wherever they are.
   */
  list(managed?: ReadonlyArray<{ id: string; attributes: Attributes }>): Promise<LiveObject[]>;
  /** Read one object, or undefined when it no longer exists. */
  read(id: string): Promise<LiveObject | undefined>;
  create(desired: Attributes): Promise<LiveObject>;
  update(id: string, desired: Attributes, changed: readonly string[]): Promise<LiveObject>;
  /** True if deleted, false if it was already gone. */
  delete(id: string): Promise<boolean>;
}
