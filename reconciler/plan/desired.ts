/**
 * The desired config plane's shape: a remote object tidemark should manage, with the attributes it owns
 * on it. Pure. Each config kind derives its own from the specs (reconciler/kinds/); the reconciler diffs
 * them against live state, and the cdktf stack in stacks/ exports the same list to Terraform JSON.
 */
import type { Address } from '../core/address.ts';
import { formatAddress } from '../core/address.ts';
import type { SourceRange } from '../core/diagnostics.ts';
import type { Located } from '../spec/model.ts';
import { locate } from '../spec/parse.ts';

export interface DesiredResource {
  address: Address;
  /** Attributes tidemark owns on the remote object, normalised (see the kind modules). */
  attributes: Record<string, string | number | boolean | string[] | null>;
  dependsOn: Address[];
  /** Where the object is declared, for diagnostics and plan output. */
  source: SourceRange;
  preventDestroy: boolean;
  /** A previous name: the object is renamed, never deleted and created again. */
  movedFrom?: Address;
}

/** Specs that apply to an environment: those without an `environments` list, or that list it. */
export function appliesTo(spec: { environments?: string[] }, env: string): boolean {
  return !spec.environments || spec.environments.includes(env);
}

/** Where a spec declares its object, for diagnostics and plan output: its `name`. */
export function declaredAt(spec: Located<unknown>): SourceRange {
  return locate(spec.pd, ['name']);
}

export function resourceKey(r: { address: Address }): string {
  return formatAddress(r.address);
}
