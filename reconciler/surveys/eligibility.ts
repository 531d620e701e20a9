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
import { sendWindowClock, type WindowAt } from './send-window.ts';

/** The most two zones' local clocks differ by (UTC−12 to UTC+14), for bounding per-person windows. */
const ZONE_SPREAD_MS = 26 * 3_600_000;

/** How a target's send window reads at `now`: one zone for everyone, or each person's own. */
interface WindowPlan {
  /** The far edge of the moment window, moved back so a deadline that fell in quiet hours still counts. */
  fromMs: number;
  /** One zone for everyone: its answer. */
  single?: WindowAt;
  /** Each person's zone: the field, and the answers by zone value. */
  field?: string;
  clock?: (zone: string | null | undefined) => WindowAt;
}

function windowPlan(model: SpecModel, spec: SurveyTargetSpec, nowMs: number, beforeMs: number): WindowPlan | undefined {
  const sw = spec.send_window;
  if (!sw) return undefined;
  const brand = model.workspace?.spec.timezone;
  if (sw.field) {
    const clock = sendWindowClock(sw, nowMs, sw.fallback_timezone ?? brand ?? 'UTC');
    // Any person's quiet span ended within a zone spread of the fallback zone's.
    return { fromMs: Math.min(nowMs, clock(null).quietSince - ZONE_SPREAD_MS) - beforeMs, field: sw.field, clock };
  }
  const single = sendWindowClock(sw, nowMs, sw.timezone ?? brand ?? 'UTC')(null);
  return { fromMs: Math.min(nowMs, single.quietSince) - beforeMs, single };
}

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
  /** Removed: Customer.io holds no email address for them that Qualtrics could send to. */
  no_email: number;
  /**
   * Outside their send window now: not invited this run and never dropped; the next run inside the
   * window decides (they still count as this target's, so no lower-priority target takes them).
   */
  waiting: number;
  /** When the earliest of the waiting people's window opens (ISO), if anyone waits. */
  waiting_until?: string;
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
  /**
   * The attribute holding the email address invitations go to. Given: people without a sendable one in
   * the mirror are removed (counted as `no_email`) before they can claim anyone. Absent: not checked.
   */
  emailField?: string;
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
      const win = windowPlan(model, t.spec, nowMs, beforeMs);
      const fromMs = win ? win.fromMs : nowMs - beforeMs;
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
      const no_email = req.emailField ? await surveys.dropWithoutEmail(t.name, req.emailField) : 0;
      const w = win ? await applyWindow(store, t.name, win, beforeMs) : { late: 0, waiting: 0 };
      const claimed_by_other = await surveys.dropClaimed(t.name);
      const share = holdoutShare(t.spec.holdout);
      const held_out = share > 0 ? await surveys.markHoldout(t.name, (id) => inHoldout(id, t.name, share)) : 0;
      const { audience, already_invited, capped } = staged;
      const in_window = staged.in_window - w.late;
      out.push({ target: t.name, audience, in_window, already_invited, capped, opted_out, no_email, waiting: w.waiting, ...(w.until !== undefined ? { waiting_until: new Date(w.until).toISOString() } : {}), claimed_by_other, held_out, eligible: await surveys.count(t.name) });
    }
  });
  return { at: now.toISOString(), targets: out };
}

/**
 * Applies a target's send window to its staged candidates: those whose moment ran out before the last
 * quiet span ended are late (removed: their window closed while sending was open); those whose window is
 * closed now wait. One zone: no per-person reads. Each person's zone: a page at a time.
 */
async function applyWindow(store: StateStore, target: string, win: WindowPlan, beforeMs: number): Promise<{ late: number; waiting: number; until?: number }> {
  const surveys = store.surveys;
  if (win.single) {
    // The SQL edge was exactly this zone's: nobody staged is late.
    if (win.single.open) return { late: 0, waiting: 0 };
    const waiting = await surveys.markWaiting(target);
    return { late: 0, waiting, ...(waiting ? { until: win.single.opensAt } : {}) };
  }
  let late = 0;
  let waiting = 0;
  let until: number | undefined;
  for await (const page of surveys.moments(target, win.field)) {
    const gone: string[] = [];
    const wait: string[] = [];
    for (const c of page) {
      const at = win.clock!(c.zone);
      if (c.moment_ms + beforeMs < at.quietSince) gone.push(c.person_id);
      else if (!at.open) {
        wait.push(c.person_id);
        until = until === undefined ? at.opensAt : Math.min(until, at.opensAt);
      }
    }
    if (gone.length) late += await surveys.drop(target, gone);
    if (wait.length) waiting += await surveys.markWaiting(target, wait);
  }
  return { late, waiting, ...(until !== undefined ? { until } : {}) };
}

/** The person ids the last evaluation found eligible for a target, a page at a time (for the export). */
export function eligibleIds(store: StateStore, target: string, pageSize = 1000): AsyncGenerator<string[]> {
  return store.surveys.candidates(target, { heldOut: false, pageSize });
}

/** The person ids the last evaluation held out of a target, a page at a time (recorded as held out by the export). */
export function heldOutIds(store: StateStore, target: string, pageSize = 1000): AsyncGenerator<string[]> {
  return store.surveys.candidates(target, { heldOut: true, pageSize });
}
