/**
 * `tidemark surveys report TARGET` (issue 13 point 3): did the people a SurveyTarget invited reach its
 * declared `outcome` more often than the people it held out? The counts come from the state
 * (`state/survey-lift.ts`: each person's first decision, the outcome event from the mirror of what
 * Customer.io acknowledged), the figures from `surveys/lift.ts` (rates, difference, Newcombe's 95%
 * interval). Read-only: the mirror is brought up to the snapshots inside a transaction that is rolled
 * back, so the report sees every acknowledged event without writing anything.
 */
import { refreshMirror } from '../audiences/evaluate.ts';
import { formatLocation } from '../core/diagnostics.ts';
import { parseDuration } from '../core/duration.ts';
import { UserError } from '../core/user-error.ts';
import type { Located, SpecModel } from '../spec/model.ts';
import { locate } from '../spec/parse.ts';
import type { SurveyTargetSpec } from '../spec/schema/index.ts';
import { didYouMean } from '../spec/suggest.ts';
import type { StateStore } from '../state/index.ts';
import type { LiftGroupCounts } from '../state/survey-lift.ts';
import { computeLift, type Lift } from '../surveys/lift.ts';
import { rolledBack } from './dry-run.ts';
import type { OpenEnvironment } from './use-cases.ts';

/** The target named is not one the report can measure: a mistake in the call or the spec, not a failure. */
export class SurveyReportTargetError extends UserError {
  override name = 'SurveyReportTargetError';
}

export interface SurveyOutcome {
  event: string;
  within: string;
  withinMs: number;
  /** The spec's label, else "<event> within <within>". */
  label: string;
}

export interface LiftGroupReport extends LiftGroupCounts {
  /** reached / closed; null when nobody's window has closed. */
  rate: number | null;
}

export interface SurveyLiftReport {
  /** The report's clock (ISO). */
  at: string;
  survey_target: string;
  outcome: { event: string; within: string; label: string };
  invited: LiftGroupReport;
  holdout: LiftGroupReport;
  status: Lift['status'];
  difference: Lift['difference'];
  ci: Lift['ci'];
  relative_lift: Lift['relative_lift'];
}

/** The target and its outcome, or a SurveyReportTargetError saying what is missing and where. */
export function reportTarget(model: SpecModel, name: string): { target: Located<SurveyTargetSpec>; outcome: SurveyOutcome } {
  const target = model.surveyTargets.get(name);
  if (!target) {
    const known = [...model.surveyTargets.keys()].sort();
    throw new SurveyReportTargetError(
      `no SurveyTarget named "${name}" in the specs.${didYouMean(name, known)}${known.length ? ` Survey targets: ${known.join(', ')}.` : ' The specs declare none.'}`,
    );
  }
  const where = formatLocation(locate(target.pd, ['name']));
  const o = target.spec.outcome;
  if (!o) {
    throw new SurveyReportTargetError(
      `${where ? `${where}: ` : ''}survey target ${name} declares no outcome, so there is nothing to compare invited with held out on; add e.g. \`outcome: { event: order_placed, within: 30d, label: "second order within 30 days" }\`.`,
    );
  }
  const withinMs = parseDuration(o.within);
  if (withinMs === undefined) throw new SurveyReportTargetError(`${where ? `${where}: ` : ''}outcome.within "${o.within}" is not a duration`);
  return { target, outcome: { event: o.event, within: o.within, withinMs, label: o.label ?? `${o.event} within ${o.within}` } };
}

/** The report from a state store's tables at `now` (the mirror as it stands: `reportSurveyLift` refreshes it first). */
export async function liftFromStore(store: StateStore, target: string, outcome: SurveyOutcome, now: Date): Promise<SurveyLiftReport> {
  const counts = await store.surveys.lift({ target, event: outcome.event, withinMs: outcome.withinMs, nowMs: now.getTime() });
  const lift = computeLift({ n: counts.invited.closed, x: counts.invited.reached }, { n: counts.holdout.closed, x: counts.holdout.reached });
  return {
    at: now.toISOString(),
    survey_target: target,
    outcome: { event: outcome.event, within: outcome.within, label: outcome.label },
    invited: { ...counts.invited, rate: lift.invited.rate },
    holdout: { ...counts.holdout, rate: lift.holdout.rate },
    status: lift.status,
    difference: lift.difference,
    ci: lift.ci,
    relative_lift: lift.relative_lift,
  };
}

/** `surveys report TARGET`: the lift of the target's outcome at the environment's clock. */
export async function reportSurveyLift(ws: OpenEnvironment, name: string): Promise<SurveyLiftReport> {
  const { outcome } = reportTarget(ws.model, name);
  const now = ws.clock.now();
  const store = ws.conn.store;
  return rolledBack(store, async () => {
    // As an audience evaluation builds it, so the rebuild here is incremental and the mirror matches what the audiences read.
    await refreshMirror(ws.model, ws.conn.environment, store);
    return liftFromStore(store, name, outcome, now);
  });
}
