/**
 * Scheduling and freshness, from the run history. Pure: the clock and the history are passed in.
 *
 * A source is due when its cron schedule fired since the start of its last successful run (or it never
 * succeeded). A source is stale when its last success is older than its freshness SLO; a failed last run,
 * or a rejected-row rate over the threshold, also raise an alert. Alerts are machine-readable so a
 * workflow can open an issue from them.
 */
import { parseDuration } from '../core/duration.ts';
import { previousRun } from '../core/schedule.ts';
import type { SourceSpec } from '../spec/schema/index.ts';

export interface RunFacts {
  status: 'running' | 'succeeded' | 'partial' | 'failed' | 'interrupted';
  startedAt: string;
  finishedAt?: string;
  counts: Record<string, number>;
  error?: string;
}

export function isDue(source: SourceSpec, lastSuccess: RunFacts | undefined, now: Date): boolean {
  if (!lastSuccess) return true;
  // A firing at exactly `now` counts (a scheduler that starts on the dot must find the source due);
  // previousRun returns firings strictly before the time it is given.
  const fired = previousRun(source.schedule, new Date(now.getTime() + 1));
  return fired !== undefined && fired.getTime() > new Date(lastSuccess.startedAt).getTime();
}

/** Share of rows rejected (or refused by Customer.io for good) above which a run fails and a source raises an alert, unless told otherwise. */
export const DEFAULT_REJECT_RATE_THRESHOLD = 0.05;

/**
 * The source's `max_rejected` as a share of the rows read (`5%` or `0.05`), or `fallback` when the
 * source does not declare one.
 */
export function rejectThreshold(source: Pick<SourceSpec, 'max_rejected'>, fallback = DEFAULT_REJECT_RATE_THRESHOLD): number {
  const m = source.max_rejected;
  if (m === undefined) return fallback;
  return typeof m === 'number' ? m : Number(m.slice(0, -1)) / 100;
}

export type AlertKind = 'stale' | 'never_synced' | 'run_failed' | 'run_incomplete' | 'reject_rate';

export interface Alert {
  source: string;
  kind: AlertKind;
  message: string;
}

export interface SourceStatus {
  source: string;
  last_success: string | null;
  /** Seconds since the last success started (data is as old as the run that read it). */
  age_seconds: number | null;
  max_age_seconds: number | null;
  fresh: boolean | null;
  last_run_status: RunFacts['status'] | null;
  last_run_error?: string;
  /**
   * Rows that did not reach Customer.io for a reason in the data (rejected by tidemark, or refused by
   * Customer.io in a 207) / rows read, in the last finished run.
   */
  reject_rate: number | null;
  /** The share `reject_rate` is held against: the source's `max_rejected`, or the command's default. */
  reject_threshold: number;
  /** Entries waiting to be sent on the next run (refused for a transient reason, or not acknowledged). */
  pending: number;
  due: boolean;
  alerts: Alert[];
}

export function sourceStatus(
  name: string,
  source: SourceSpec,
  history: { lastSuccess?: RunFacts; lastRun?: RunFacts; pending?: number },
  now: Date,
  defaultRejectThreshold: number,
): SourceStatus {
  const rejectRateThreshold = rejectThreshold(source, defaultRejectThreshold);
  const pending = history.pending ?? 0;
  const alerts: Alert[] = [];
  const maxAge = source.freshness ? parseDuration(source.freshness.max_age) : undefined;
  const successAt = history.lastSuccess ? new Date(history.lastSuccess.startedAt) : undefined;
  const ageSeconds = successAt ? Math.max(0, Math.round((now.getTime() - successAt.getTime()) / 1000)) : null;
  let fresh: boolean | null = null;
  if (maxAge !== undefined) {
    fresh = ageSeconds !== null && ageSeconds * 1000 <= maxAge;
    if (ageSeconds === null) alerts.push({ source: name, kind: 'never_synced', message: `${name} has never synced successfully` });
    else if (!fresh) alerts.push({ source: name, kind: 'stale', message: `${name} last synced ${formatAge(ageSeconds)} ago, over its freshness SLO of ${source.freshness!.max_age}` });
  }
  const last = history.lastRun;
  if (last?.status === 'failed') alerts.push({ source: name, kind: 'run_failed', message: `the last run of ${name} failed${last.error ? `: ${last.error}` : ''}` });
  // A partial run read everything but left entries for the next run: not a success, whatever its freshness.
  if (last?.status === 'partial') alerts.push({ source: name, kind: 'run_incomplete', message: `the last run of ${name} did not deliver everything${last.error ? `: ${last.error}` : ''}` });
  else if (pending > 0 && last?.status !== 'failed') {
    alerts.push({ source: name, kind: 'run_incomplete', message: `${pending} entries of ${name} wait to be sent on its next run` });
  }
  const read = last?.counts.read ?? 0;
  // A run still marked running is either in progress or was killed; it has no final counts.
  const finished = last && last.status !== 'running' ? last : undefined;
  const rejectRate = finished && read > 0 ? ((finished.counts.rejected ?? 0) + (finished.counts.refused ?? 0)) / read : null;
  if (rejectRate !== null && rejectRate > rejectRateThreshold) {
    alerts.push({ source: name, kind: 'reject_rate', message: `${(rejectRate * 100).toFixed(1)}% of the rows ${name} read were rejected or refused by Customer.io (threshold ${(rejectRateThreshold * 100).toFixed(1)}%)` });
  }
  return {
    source: name,
    last_success: history.lastSuccess?.startedAt ?? null,
    age_seconds: ageSeconds,
    max_age_seconds: maxAge !== undefined ? maxAge / 1000 : null,
    fresh,
    last_run_status: last?.status ?? null,
    ...(last?.error ? { last_run_error: last.error } : {}),
    reject_rate: rejectRate,
    reject_threshold: rejectRateThreshold,
    pending,
    due: isDue(source, history.lastSuccess, now),
    alerts,
  };
}

export function formatAge(seconds: number): string {
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86_400)}d`;
}
