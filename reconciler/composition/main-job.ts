/**
 * The main job (`tidemark start`, what the scheduled workflow runs), after the specs validated: plan the
 * config plane, apply it when that is allowed, run the due syncs, and check freshness. Each step reports
 * through `MainJobEvents`, so the CLI only renders; the verdict is data.
 */
import { hasErrors } from '../core/diagnostics.ts';
import { hasChanges, type Plan } from '../plan/plan.ts';
import { DEFAULT_REJECT_RATE_THRESHOLD, isDue, type SourceStatus } from '../sync/monitor.ts';
import { sourcesFor } from '../sync/source-statuses.ts';
import type { SyncReport } from '../sync/run.ts';
import { checkFreshness, runSyncJob, type SyncJobRequest } from './sync-job.ts';
import { applyChanges, isProtected, makePlan, type ApplyOutcome } from './use-cases.ts';
import type { OpenEnvironment } from './use-cases.ts';
import { worldOptions, type WorldOverrides } from './world.ts';
import { runAudienceJob, type AudienceJobResult } from './audiences-job.ts';
import { runSurveys, type SurveyRunResult } from './surveys-job.ts';
import { pullResponses, responseTargets, type ResponsesPullResult } from './responses-job.ts';

export interface MainJobRequest {
  allowDelete: boolean;
  /** Apply to live services without asking (the sandbox never asks). */
  autoApprove: boolean;
  who: string;
  env: NodeJS.ProcessEnv;
  /** On the sandbox: the world's size and seed. */
  world?: WorldOverrides;
}

/** Why the config was not applied although the plan had changes. */
export type ApplyWithheld = 'protected' | 'not_approved';

export interface MainJobEvents {
  planned?(plan: Plan): void;
  applyWithheld?(reason: ApplyWithheld): void;
  applied?(outcome: ApplyOutcome): void;
  syncsStarting?(): void;
  /** What the sandbox world did (embedded warehouse started, exports written). */
  world?(notes: string[]): void;
  /** A due source starts syncing; what it returns receives that source's progress (as in SyncJobRequest). */
  syncing?: SyncJobRequest['onSource'];
  synced?(report: SyncReport): void;
  audiencesStarting?(): void;
  audiences?(result: AudienceJobResult): void;
  surveysStarting?(): void;
  surveys?(result: SurveyRunResult): void;
  responsesStarting?(): void;
  responses?(result: ResponsesPullResult): void;
  freshness?(statuses: SourceStatus[]): void;
}

/** A source of this environment the job did not sync, and why. */
export interface NotRun {
  source: string;
  /** `not_due`: its schedule has not fired since its last success; `never_synced`: not due, yet it has never succeeded. */
  reason: 'not_due' | 'never_synced';
}

export interface MainJobResult {
  /** `failed`: a step did not do what it planned; `alerts`: all done, but a source needs attention. */
  status: 'ok' | 'failed' | 'alerts';
  alerts: number;
  plan?: Plan;
  apply?: ApplyOutcome;
  audiences?: AudienceJobResult;
  /** Absent when the environment has no Qualtrics or no survey target. */
  surveys?: SurveyRunResult;
  /** Absent when no survey target of the environment declares `responses`. */
  responses?: ResponsesPullResult;
  reports: SyncReport[];
  notRun: NotRun[];
  /** Sources with freshness alerts. */
  alerting: string[];
}

export async function runMainJob(ws: OpenEnvironment, req: MainJobRequest, on: MainJobEvents = {}): Promise<MainJobResult> {
  const options = { allowDelete: req.allowDelete, adoptByName: false, targets: [] };
  const empty = { reports: [], notRun: [], alerting: [] };
  // A world it cannot build is refused before anything is planned or applied.
  worldOptions(ws, req.world);
  const plan = await makePlan(ws, options);
  on.planned?.(plan);
  if (hasErrors(plan.diagnostics)) return { status: 'failed', alerts: 0, plan, ...empty };
  // The main job never applies a fresh plan to a protected environment, approved or not.
  if (isProtected(ws) && ws.conn.mode === 'live' && hasChanges(plan)) {
    on.applyWithheld?.('protected');
    return { status: 'failed', alerts: 0, plan, ...empty };
  }
  if (ws.conn.mode !== 'sandbox' && !req.autoApprove && hasChanges(plan)) {
    on.applyWithheld?.('not_approved');
    return { status: 'failed', alerts: 0, plan, ...empty };
  }
  const outcome = await applyChanges(ws, { options, who: req.who });
  on.applied?.(outcome);
  const configOk = outcome.status === 'nothing' || (outcome.status === 'done' && outcome.result.ok);

  on.syncsStarting?.();
  const now = ws.clock.now();
  const due: string[] = [];
  const notRun: NotRun[] = [];
  for (const s of sourcesFor(ws.model, ws.conn.environment)) {
    const last = await ws.conn.store.lastSuccess(s.name);
    if (isDue(s.spec, last, now)) due.push(s.name);
    else notRun.push({ source: s.name, reason: last ? 'not_due' : 'never_synced' });
  }
  const syncs = await runSyncJob(ws, {
    mode: 'run',
    sources: due,
    env: req.env,
    ...(req.world ? { world: req.world } : {}),
    ...(on.world ? { onWorld: on.world } : {}),
    ...(on.syncing ? { onSource: on.syncing } : {}),
    ...(on.synced ? { onReport: on.synced } : {}),
  });

  // Audiences after the syncs: they are evaluated from what the syncs just delivered.
  on.audiencesStarting?.();
  const audiences = await runAudienceJob(ws, { mode: 'run' });
  on.audiences?.(audiences);

  // Surveys after the audiences they are sent to; they finish what an earlier run left first.
  let surveys: SurveyRunResult | undefined;
  if (ws.conn.qualtrics && [...ws.model.surveyTargets.values()].length > 0) {
    on.surveysStarting?.();
    surveys = await runSurveys(ws, req.who);
    on.surveys?.(surveys);
  }

  // Responses last: the reason codes reach Customer.io, and the next run's audiences act on them.
  let responses: ResponsesPullResult | undefined;
  if (ws.conn.qualtrics && responseTargets(ws.model, ws.conn.environment).length > 0) {
    on.responsesStarting?.();
    responses = await pullResponses(ws, req.who);
    on.responses?.(responses);
  }

  const { statuses } = await checkFreshness(ws, DEFAULT_REJECT_RATE_THRESHOLD);
  on.freshness?.(statuses);
  const alerting = statuses.filter((st) => st.alerts.length > 0).map((st) => st.source);
  // A frozen, emptied or held audience needs attention as much as a stale source does.
  const alerts = statuses.reduce((n, st) => n + st.alerts.length, 0) + audiences.evaluation.segments.filter((s) => s.verdict !== 'publish').length;
  const result = { alerts, plan, apply: outcome, audiences, ...(surveys ? { surveys } : {}), ...(responses ? { responses } : {}), reports: syncs.reports, notRun, alerting };
  // A source that never succeeded and did not run this time should have: the job did not do its work.
  if (!configOk || !syncs.ok || !audiences.ok || (surveys && !surveys.ok) || (responses && !responses.ok) || notRun.some((n) => n.reason === 'never_synced')) return { status: 'failed', ...result };
  return { status: alerts > 0 ? 'alerts' : 'ok', ...result };
}
