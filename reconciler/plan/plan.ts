/**
 * The plan is data before it is text. Every renderer (text, markdown, json) reads only this JSON shape,
 * so a plan made in a pull request can be stored as an artifact, rendered anywhere, and re-checked at
 * apply time against the specs and live state it was made from.
 *
 * What `before` and `after` mean per action:
 *
 * | action  | before                  | after                    |
 * |---------|-------------------------|--------------------------|
 * | create  | null                    | desired                  |
 * | import  | live (unmanaged)        | desired                  |
 * | update  | live                    | desired                  |
 * | replace | live                    | desired                  |
 * | delete  | live                    | null                     |
 * | forget  | last applied (from state)| null (object already gone)|
 * | noop    | live (equal to after)   | desired                  |
 *
 * `reason` is for people only: apply never branches on it.
 */
import type { Attributes } from '../core/attributes.ts';
import type { Diagnostic, SourceRange } from '../core/diagnostics.ts';

export const PLAN_FORMAT_VERSION = 1;

export type Action = 'noop' | 'create' | 'import' | 'update' | 'replace' | 'delete' | 'forget';

export type { AttributeValue, Attributes } from '../core/attributes.ts';

export interface Change {
  /** `customerio.segment.vip_customers`. */
  address: string;
  /** `customerio.segment`, `qualtrics.mailing_list`, … */
  kind: string;
  action: Action;
  /** Remote id the change acts on; absent for a create. */
  remote_id?: string;
  before: Attributes | null;
  after: Attributes | null;
  /** Attribute names whose value differs between before and after (sorted). */
  changed: string[];
  /** Attributes that force a replace (the service cannot update them in place). */
  requires_replace?: string[];
  /** Replace order: create the new object before deleting the old one (kinds that can coexist). */
  create_before_destroy?: boolean;
  /** Previous address when the object was renamed with `moved_from`: the state entry moves, the object stays. */
  moved_from?: string;
  /** Why this change: for people only. */
  reason: string;
  /** Set when the change will not be applied as planned, and why (e.g. a delete without --allow-delete). */
  blocked?: { code: string; message: string };
  depends_on: string[];
  /** Where the object is declared (absent for objects whose spec was removed). */
  source?: SourceRange;
  /** Attributes the service cannot change after creation, that differ: reported, never acted on. */
  ignored_changes?: string[];
}

/**
 * Counts only: PR comments never carry customer identifiers. Nothing computes it yet (every plan says
 * `not_computed`); the count names are the sync engine's (`null_blocked` as in a sync run's counts).
 */
export interface DataImpact {
  status: 'not_computed' | 'computed';
  note?: string;
  sources: Array<{ name: string; new: number; changed: number; unchanged: number; rejected: number; null_blocked: number }>;
  /** `held`: not published this run (frozen by a stale source, emptied, or outside its `expect`), with why. */
  audiences: Array<{ name: string; joining: number; leaving: number; held?: string }>;
  /**
   * Per survey target, what the next `surveys run` would do at the plan's clock: `would_invite`, and why
   * the others in the moment window are not (absent in plans written before surveys were planned).
   */
  surveys?: Array<{
    name: string;
    would_invite: number;
    held_out: number;
    in_window: number;
    already_invited: number;
    /** Includes the people only invitations Qualtrics sent outside tidemark put over the cap. */
    capped: number;
    opted_out: number;
    /** Qualtrics reports their current address bounced (absent in plans written before it was counted). */
    bounced?: number;
    no_email: number;
    claimed_by_other: number;
    waiting: number;
  }>;
}

export interface PlanTarget {
  mode: 'sandbox' | 'live';
  /** Stable identity (no secrets): a saved plan is refused against any other. */
  id: string;
  /** For people: "the embedded sandbox", "Customer.io site … (us) · Qualtrics …". */
  label: string;
}

/**
 * A plan as read back from a saved file. Plans saved by older versions name the target's mode `kind`
 * (`target.kind`); they read as `target.mode`, so they compare and apply as they did.
 */
export function readSavedPlan(saved: Plan): Plan {
  const target = saved.target as (Partial<PlanTarget> & { kind?: PlanTarget['mode'] }) | undefined;
  if (!target || target.mode !== undefined || target.kind === undefined) return saved;
  const { kind, ...rest } = target;
  return { ...saved, target: { ...rest, mode: kind } as PlanTarget };
}

/**
 * Which objects a plan covers. A pull request's plan covers the objects whose spec documents changed since
 * the merge base, their dependants and what they depend on (`mode: changed`, its addresses in
 * `options.targets`); a plan of everything says why (`--full`, or why git could not tell what changed).
 * Absent in plans made without a scope (no pull request, `--target`): they cover everything or their targets.
 */
export interface PlanScope {
  mode: 'changed' | 'full';
  /** For people: `changed since origin/main (merge base 1a2b3c4d5e6f)`, `--full`, or why git could not answer. */
  reason: string;
  /** The ref compared against, as given, and the merge base commit. */
  base?: { ref: string; commit: string };
  /** Spec files changed since the merge base, committed or not (sorted). */
  changed_files: string[];
  /** Spec documents added, changed or removed, as `Kind.name` (sorted). */
  changed_documents: string[];
  /** Objects in this plan, and in a plan of everything (declared or in the state). */
  planned: number;
  total: number;
}

export interface Plan {
  format_version: typeof PLAN_FORMAT_VERSION;
  tool: { name: 'tidemark'; version: string };
  environment: string;
  /** Where the plan was made: the services it was refreshed from and would be applied to. */
  target: PlanTarget;
  /** When the plan was made (from the injected clock). */
  created_at: string;
  specs: {
    /** git revision of the specs (HEAD), or null outside git. */
    revision: string | null;
    /** Whether the working tree had uncommitted spec changes. */
    dirty: boolean;
    /** sha256 over all spec files; per-file digests name what moved. */
    digest: string;
    files: Record<string, string>;
  };
  live: {
    /** sha256 over the normalised live objects the plan was made from; per-object digests name what moved. */
    digest: string;
    objects: Record<string, string>;
  };
  options: { allow_delete: boolean; adopt_by_name: boolean; targets: string[] };
  /** Sorted by dependency wave, then address. */
  changes: Change[];
  summary: Record<Action, number> & { blocked: number };
  diagnostics: Diagnostic[];
  data_impact: DataImpact;
  /** Which objects the plan covers, when a scope was asked for (see PlanScope). */
  scope?: PlanScope;
}

export function hasChanges(plan: Plan): boolean {
  return plan.changes.some((c) => c.action !== 'noop');
}

export function actionable(plan: Plan): Change[] {
  return plan.changes.filter((c) => c.action !== 'noop' && !c.blocked);
}
