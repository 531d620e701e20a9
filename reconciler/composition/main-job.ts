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
import { checkFreshness, runSyncJob } from './sync-job.ts';
import { applyChanges, isProtected, makePlan, type ApplyOutcome } from './use-cases.ts';
import type { OpenEnvironment } from './use-cases.ts';

export interface MainJobRequest {
  allowDelete: boolean;
  /** Apply to live services without asking (the sandbox never asks). */
  autoApprove: boolean;
  who: string;
  env: NodeJS.ProcessEnv;
}

/** Why the config was not applied although the plan had changes. */
export type ApplyWithheld = 'protected' | 'not_approved';

export interface MainJobEvents {
  planned?(plan: Plan): void;
  applyWithheld?(reason: ApplyWithheld): void;
  applied?(outcome: ApplyOutcome): void;
  syncsStarting?(): void;
  syncSkipped?(source: string, reason: string): void;
  synced?(report: SyncReport): void;
  freshness?(statuses: SourceStatus[], skipped: ReadonlySet<string>): void;
}

export interface MainJobResult {
  /** `failed`: a step did not do what it planned; `alerts`: all done, but a source needs attention. */
  status: 'ok' | 'failed' | 'alerts';
  alerts: number;
}

export async function runMainJob(ws: OpenEnvironment, req: MainJobRequest, on: MainJobEvents = {}): Promise<MainJobResult> {
  const options = { allowDelete: req.allowDelete, adoptByName: false, targets: [] };
  const plan = await makePlan(ws, options);
  on.planned?.(plan);
  if (hasErrors(plan.diagnostics)) return { status: 'failed', alerts: 0 };
  // The main job never applies a fresh plan to a protected environment, approved or not.
  if (isProtected(ws) && ws.conn.mode === 'live' && hasChanges(plan)) {
    on.applyWithheld?.('protected');
    return { status: 'failed', alerts: 0 };
  }
  if (ws.conn.mode !== 'sandbox' && !req.autoApprove && hasChanges(plan)) {
    on.applyWithheld?.('not_approved');
    return { status: 'failed', alerts: 0 };
  }
  const outcome = await applyChanges(ws, { options, who: req.who });
  on.applied?.(outcome);
  const configOk = outcome.status === 'nothing' || (outcome.status === 'done' && outcome.result.ok);

  on.syncsStarting?.();
  const now = ws.clock.now();
  const skipped = new Set<string>();
  const due: string[] = [];
  for (const s of sourcesFor(ws.model, ws.conn.environment)) {
    if (!isDue(s.spec, await ws.conn.store.lastSuccess(s.name), now)) continue;
    const c = s.spec.connector;
    if (c.type === 'postgres' && !req.env[c.url_env] && ws.conn.mode === 'sandbox') {
      skipped.add(s.name);
      on.syncSkipped?.(s.name, `${c.url_env} is not set (no warehouse connection in the sandbox)`);
      continue;
    }
    due.push(s.name);
  }
  const syncs = await runSyncJob(ws, { mode: 'run', sources: due, env: req.env, ...(on.synced ? { onReport: on.synced } : {}) });

  const { statuses } = await checkFreshness(ws, DEFAULT_REJECT_RATE_THRESHOLD);
  on.freshness?.(statuses, skipped);
  const alerts = statuses.filter((st) => !skipped.has(st.source)).reduce((n, st) => n + st.alerts.length, 0);
  if (!configOk || !syncs.ok) return { status: 'failed', alerts };
  return { status: alerts > 0 ? 'alerts' : 'ok', alerts };
}
