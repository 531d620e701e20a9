/**
 * Survey eligibility: who each survey target would invite now. The audience comes from an audience
 * evaluation already run (`audience_candidates`); the moment window, the "already handled" check, the
 * frequency caps and the claims between targets are SQL in the state's database; the holdout hash is
 * computed a page at a time. What only Qualtrics knows comes from hooks the job wires to it: who opted
 * out, whose address bounced, and the invitations it sent that tidemark did not (they count in the caps).
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
  /**
   * Removed: at or over their frequency cap, counting the decisions tidemark recorded plus the
   * invitations Qualtrics reports it sent them outside tidemark (`qualtrics_capped` of these).
   */
  capped: number;
  /** Of `capped`, those only the invitations Qualtrics reported (sent from its UI or another tool) put over the cap. */
  qualtrics_capped: number;
  /** Removed: Qualtrics reports them unsubscribed or opted out. */
  opted_out: number;
  /** Removed: Qualtrics reports that their current email address bounced. */
  bounced: number;
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
  /** The people Qualtrics reports unsubscribed or opted out for a target. Absent: nobody. */
  optedOut?: (target: string) => Promise<Set<string>>;
  /**
   * The people whose address Qualtrics reports bounced, for a target: person id → the addresses that
   * bounced (lowercase; `''` when Qualtrics did not say which, read as any). A person is removed only
   * while the mirror still holds one of those addresses (with `emailField`): a new address is tried.
   * Absent: nobody.
   */
  bounced?: (target: string) => Promise<Map<string, ReadonlySet<string>>>;
  /**
   * The invitations Qualtrics reports it sent these people that tidemark did not create (the UI, another
   * tool): sent and not skipped or bounced, each with its instant and survey. Asked a page of candidates
   * at a time, only for targets under a cap and only for candidates tidemark's own records left under it
   * (the moment window, not the audience). Absent: tidemark's records alone.
   */
  qualtricsInvites?: (people: ReadonlyArray<{ id: string; email: string | null }>) => Promise<Map<string, ReadonlyArray<QualtricsInvite>>>;
  /**
   * The attribute holding the email address invitations go to. Given: people without a sendable one in
   * the mirror are removed (counted as `no_email`) before they can claim anyone. Absent: not checked.
   */
  emailField?: string;
}

/** An invitation Qualtrics sent a person outside tidemark. */
export interface QualtricsInvite {
  /** When it was sent, epoch ms. */
  at_ms: number;
  /** Its survey, when Qualtrics says. */
  survey: string | null;
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

/**
 * The surveys whose invitations count against a cap scoped to `targets` (their declared surveys): a
 * Qualtrics send of one of those surveys is one of those targets' invitations, whoever created it.
 * Undefined: every survey counts (`all_surveys`).
 */
function capSurveys(model: SpecModel, targets: readonly string[] | undefined): Set<string> | undefined {
  if (!targets) return undefined;
  const out = new Set<string>();
  for (const name of targets) {
    const survey = model.surveyTargets.get(name)?.spec.survey;
    if (survey) out.add(survey);
  }
  return out;
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
      const qualtrics_capped = cap && req.qualtricsInvites ? await dropCappedInQualtrics(req, t.name, cap, nowMs) : 0;
      const opted = req.optedOut ? await req.optedOut(t.name) : undefined;
      const opted_out = opted && opted.size ? await surveys.drop(t.name, opted) : 0;
      const bouncedAddresses = req.bounced ? await req.bounced(t.name) : undefined;
      const bounced = bouncedAddresses && bouncedAddresses.size ? await dropBounced(store, t.name, bouncedAddresses, req.emailField) : 0;
      const no_email = req.emailField ? await surveys.dropWithoutEmail(t.name, req.emailField) : 0;
      const w = win ? await applyWindow(store, t.name, win, beforeMs) : { late: 0, waiting: 0 };
      const claimed_by_other = await surveys.dropClaimed(t.name);
      const share = holdoutShare(t.spec.holdout);
      const held_out = share > 0 ? await surveys.markHoldout(t.name, (id) => inHoldout(id, t.name, share)) : 0;
      const { audience, already_invited } = staged;
      const capped = staged.capped + qualtrics_capped;
      const in_window = staged.in_window - w.late;
      out.push({ target: t.name, audience, in_window, already_invited, capped, qualtrics_capped, opted_out, bounced, no_email, waiting: w.waiting, ...(w.until !== undefined ? { waiting_until: new Date(w.until).toISOString() } : {}), claimed_by_other, held_out, eligible: await surveys.count(t.name) });
    }
  });
  return { at: now.toISOString(), targets: out };
}

/**
 * Removes the candidates whose invitations Qualtrics reports (outside tidemark) bring them to the cap:
 * tidemark's recorded decisions under the cap plus Qualtrics' invitations of the cap's surveys sent at
 * or after `now − per`. Asked a page at a time; resolves to how many were removed.
 */
async function dropCappedInQualtrics(req: EligibilityRequest, target: string, cap: { max: number; perMs: number; targets?: string[] }, nowMs: number): Promise<number> {
  const surveys = req.store.surveys;
  const since = nowMs - cap.perMs;
  const counted = capSurveys(req.model, cap.targets);
  const over: string[] = [];
  const opts = { ...(req.emailField ? { emailField: req.emailField } : {}), cap: { since: new Date(since).toISOString(), ...(cap.targets ? { targets: cap.targets } : {}) } };
  for await (const page of surveys.candidateContacts(target, opts)) {
    const sends = await req.qualtricsInvites!(page.map((c) => ({ id: c.person_id, email: c.email })));
    for (const c of page) {
      const theirs = (sends.get(c.person_id) ?? []).filter((s) => s.at_ms >= since && (!counted || (s.survey !== null && counted.has(s.survey)))).length;
      if (theirs && c.decisions + theirs >= cap.max) over.push(c.person_id);
    }
  }
  return over.length ? surveys.drop(target, over) : 0;
}

/** Removes the candidates whose current address (the mirror's) is one Qualtrics reports bounced. */
async function dropBounced(store: StateStore, target: string, bounced: Map<string, ReadonlySet<string>>, emailField: string | undefined): Promise<number> {
  const gone: string[] = [];
  for await (const page of store.surveys.candidateContacts(target, emailField ? { emailField } : {})) {
    for (const c of page) {
      const addresses = bounced.get(c.person_id);
      if (!addresses) continue;
      // Without an email field the bounce is taken as theirs; with one, only while they still have that address.
      if (!emailField || addresses.has('') || (c.email !== null && addresses.has(c.email.trim().toLowerCase()))) gone.push(c.person_id);
    }
  }
  return gone.length ? store.surveys.drop(target, gone) : 0;
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
