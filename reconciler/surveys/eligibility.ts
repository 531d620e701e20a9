/**
 * Survey eligibility: who each survey target would invite now. The audience comes from an audience
 * evaluation already run (`audience_candidates`); the moment window, the "already handled" check, the
 * frequency caps and the claims between targets are SQL in the state's database; the holdout hash is
 * computed a page at a time; opted-out people come from a hook (Qualtrics' view, wired later).
 *
 * Counts only: no customer identifier leaves this module except through `eligibleIds` / `heldOutIds`,
 * which the export step pages through.
 */
import { UserError } from '../core/user-error.ts';
import { formatLocation } from '../core/diagnostics.ts';
import { parseDuration } from '../core/duration.ts';
import { appliesTo } from '../plan/desired.ts';
import type { SpecModel } from '../spec/model.ts';
import { locate } from '../spec/parse.ts';
import type { SurveyTargetSpec } from '../spec/schema/index.ts';
import type { StateStore } from '../state/index.ts';
import { holdoutShare, inHoldout } from './holdout.ts';

export class SurveyEligibilityError extends UserError {
  override name = 'SurveyEligibilityError';
}

/** One target's funnel: each step counts the people it removed, in this order. */
export interface TargetEligibility {
  target: string;
  /** Members of the audience segment. */
  audience: number;
  /** Of those, with a trigger event inside the moment window. */
  in_window: number;
  /** Removed: this target already invited (or held out) them since the window's far edge. */
  already_invited: number;
  /** Removed: at or over their frequency cap. */
  capped: number;
  /** Removed: Qualtrics reports them unsubscribed, opted out or bounced. */
  opted_out: number;
  /** Removed: a target of higher priority takes them in this run. */
  claimed_by_other: number;
  /** Removed: in this target's holdout (recorded as such by the export, never surveyed by it). */
  held_out: number;
  /** Would be invited. */
  eligible: number;
}

export interface EligibilityResult {
  /** The injected "now" the windows and caps were computed at. */
  at: string;
  /** In priority order (the order claims were decided in). */
  targets: TargetEligibility[];
}

export interface EligibilityRequest {
  model: SpecModel;
  environment: string;
  store: StateStore;
  now: Date;
  /** The people Qualtrics reports unsubscribed, opted out or bounced for a target. Absent: nobody. */
  optedOut?: (target: string) => Promise<Set<string>>;
}

interface OrderedTarget {
  name: string;
  spec: SurveyTargetSpec;
  where: string;
}

/**
 * The targets of this environment in claim order: declared `priority` ascending (lower wins), targets
 * without one after all that have one; ties in name order, so the order never depends on file layout.
 */
export function surveyTargetOrder(model: SpecModel, environment: string): OrderedTarget[] {
  const where = (t: { pd?: Parameters<typeof locate>[0] }, path: string[]) => (t.pd ? formatLocation(locate(t.pd, path)) : '');
  return [...model.surveyTargets.values()]
    .filter((t) => appliesTo(t.spec, environment))
    .map((t) => ({ name: t.name, spec: t.spec, where: where(t, ['identifier']) }))
    .sort((a, b) => {
      const pa = a.spec.priority ?? Number.POSITIVE_INFINITY;
      const pb = b.spec.priority ?? Number.POSITIVE_INFINITY;
      if (pa !== pb) return pa < pb ? -1 : 1;
      return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
    });
}

/** The cap a target is under: its own `frequency_cap`, else the Workspace's `surveys.frequency_cap` (across all targets). */
export function effectiveCap(model: SpecModel, spec: SurveyTargetSpec, self: string): { max: number; perMs: number; targets?: string[] } | undefined {
  const own = spec.frequency_cap;
  const cap = own ?? model.workspace?.spec.surveys?.frequency_cap;
  if (!cap) return undefined;
  const perMs = parseDuration(cap.per)!;
  const scope = own?.scope ?? 'all_surveys';
  if (scope === 'all_surveys') return { max: cap.max, perMs };
  if (scope === 'this_target') return { max: cap.max, perMs, targets: [self] };
  // A list shares the cap among those targets, and this one always counts its own invitations.
  return { max: cap.max, perMs, targets: [...new Set([self, ...scope])].sort() };
}

export async function evaluateEligibility(req: EligibilityRequest): Promise<EligibilityResult> {
  const { model, environment, store, now } = req;
  const nowMs = now.getTime();
  const targets = surveyTargetOrder(model, environment);
  for (const t of targets) {
    if (t.spec.identifier !== 'id') {
      throw new SurveyEligibilityError(
        `${t.where ? `${t.where}: ` : ''}survey target ${t.name} uses identifier: ${t.spec.identifier}, which eligibility does not support yet.`,
        { hint: 'Use identifier: id (the immutable customer id the audience mirror is keyed by).' },
      );
    }
  }
  const surveys = store.surveys;
  const out: TargetEligibility[] = [];
  // One transaction: the candidates of one run are never mixed with a concurrent run's.
  await store.transaction(async () => {
    await surveys.clearCandidates();
    for (const t of targets) {
      const afterMs = parseDuration(t.spec.moment.after)!;
      const beforeMs = parseDuration(t.spec.moment.before)!;
      const fromMs = nowMs - beforeMs;
      const cap = effectiveCap(model, t.spec, t.name);
      const staged = await surveys.stage({
        target: t.name,
        segment: t.spec.audience,
        event: t.spec.moment.event,
        fromMs,
        toMs: nowMs - afterMs,
        handledSince: new Date(fromMs).toISOString(),
        ...(cap ? { cap: { max: cap.max, since: new Date(nowMs - cap.perMs).toISOString(), ...(cap.targets ? { targets: cap.targets } : {}) } } : {}),
      });
      const opted = req.optedOut ? await req.optedOut(t.name) : undefined;
      const opted_out = opted && opted.size ? await surveys.drop(t.name, opted) : 0;
      const claimed_by_other = await surveys.dropClaimed(t.name);
      const share = holdoutShare(t.spec.holdout);
      const held_out = share > 0 ? await surveys.markHoldout(t.name, (id) => inHoldout(id, t.name, share)) : 0;
      const { audience, in_window, already_invited, capped } = staged;
      out.push({ target: t.name, audience, in_window, already_invited, capped, opted_out, claimed_by_other, held_out, eligible: await surveys.count(t.name) });
    }
  });
  return { at: now.toISOString(), targets: out };
}

/** The person ids the last evaluation found eligible for a target, a page at a time (for the export). */
export function eligibleIds(store: StateStore, target: string, pageSize = 1000): AsyncGenerator<string[]> {
  return store.surveys.candidates(target, { heldOut: false, pageSize });
}

/** The person ids the last evaluation held out of a target, a page at a time (recorded as held out by the export). */
export function heldOutIds(store: StateStore, target: string, pageSize = 1000): AsyncGenerator<string[]> {
  return store.surveys.candidates(target, { heldOut: true, pageSize });
}
