/**
 * The incremental pull of one survey's responses (`tidemark responses pull`).
 *
 * 1. The ledger's pending responses of the survey are written first: a pull that was killed, or whose
 *    writes Customer.io did not acknowledge, is finished before anything new is read.
 * 2. A JSON export from the survey's cursor less `PULL_OVERLAP` (`startDate`, inclusive, to the second) to
 *    the run's clock (`endDate`, exclusive); the client starts it, polls it and unzips the file. The
 *    overlap is there because a response can reach the export after a later one did (Qualtrics indexes
 *    responses asynchronously); reading it again costs a duplicate in the ledger, missing it loses it.
 * 3. Every record goes into the ledger (duplicates skipped), the new pending ones are written.
 * 4. The cursor moves to the newest `recordedDate` read, once the ledger holds every record up to it.
 *    A run killed before that reads the same records again and finds them in the ledger.
 */
import type { QualtricsClient } from '../providers/qualtrics/client.ts';
import { emptyCounts, ingestResponses, writeResponses, type IngestDeps, type ResponseCounts, type ResponseTarget } from './ingest.ts';
import { recordedMs } from './mapping.ts';

export interface PullDeps extends IngestDeps {
  qualtrics: Pick<QualtricsClient, 'exportResponses'>;
  /** The run's clock. */
  now: Date;
  pollIntervalMs?: number;
}

export interface SurveyPull {
  survey: string;
  /** Per target of the survey, counts only. */
  targets: ResponseCounts[];
  /** The cursor before and after (ISO-8601 UTC); equal when nothing new was read. */
  cursor_before: string | null;
  cursor_after: string | null;
  reasons: string[];
}

/** How far before the cursor each export starts again; what it reads twice the ledger skips. */
export const PULL_OVERLAP_MS = 60 * 60 * 1000;

/** Second precision, rounded down: Qualtrics documents `startDate`/`endDate` to the second. */
const toSecond = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.000Z$/, 'Z');

export async function pullSurvey(deps: PullDeps, surveyId: string, targets: readonly ResponseTarget[]): Promise<SurveyPull> {
  const counts = new Map(targets.map((t) => [t.name, emptyCounts(t.name)]));
  const reasons: string[] = [];

  const pending = await deps.store.pending([surveyId]);
  if (pending.length) {
    const retried = await writeResponses(deps, targets, pending);
    for (const r of retried.written) {
      const c = counts.get(r.target);
      if (c) {
        c.written += 1;
        c.retried += 1;
      }
    }
    for (const r of retried.notWritten) {
      const c = counts.get(r.target);
      if (c) c.not_written += 1;
    }
    reasons.push(...retried.reasons);
  }

  const before = (await deps.store.cursor(surveyId)) ?? null;
  const nowMs = deps.now.getTime();
  const startMs = before ? Date.parse(before) : undefined;
  if (startMs !== undefined && toSecond(startMs) >= toSecond(nowMs)) {
    return { survey: surveyId, targets: [...counts.values()], cursor_before: before, cursor_after: before, reasons };
  }
  const result = await deps.qualtrics.exportResponses(
    surveyId,
    { format: 'json', ...(startMs !== undefined ? { startDate: toSecond(startMs - PULL_OVERLAP_MS) } : {}), endDate: toSecond(nowMs) },
    deps.pollIntervalMs !== undefined ? { pollIntervalMs: deps.pollIntervalMs } : {},
  );
  const records = result.format === 'json' || result.format === 'ndjson' ? result.responses : [];
  const ingested = await ingestResponses(deps, targets, records, 'pull');
  for (const [name, c] of ingested.counts) {
    const into = counts.get(name)!;
    for (const k of ['fetched', 'written', 'duplicate', 'unknown_person', 'late', 'unmapped', 'no_answer', 'not_written'] as const) into[k] += c[k];
  }
  for (const r of ingested.reasons) if (!reasons.includes(r)) reasons.push(r);

  // Every record read is in the ledger now (pending ones included): the cursor may pass them all.
  let newest = startMs;
  for (const r of records) {
    const ms = recordedMs(r);
    if (ms !== undefined && ms < nowMs && (newest === undefined || ms > newest)) newest = ms;
  }
  let after = before;
  if (newest !== undefined && newest !== startMs) {
    after = new Date(newest).toISOString();
    await deps.store.advanceCursor(surveyId, after);
  }
  return { survey: surveyId, targets: [...counts.values()], cursor_before: before, cursor_after: after, reasons };
}
