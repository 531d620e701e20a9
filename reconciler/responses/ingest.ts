/**
 * Responses into the ledger, and reason codes out to Customer.io.
 *
 * Every response goes into the ledger first (`survey_responses`, keyed by survey and response id), with
 * what the mapping decided; a response already there (it came by webhook, or an earlier pull read it) is
 * a duplicate and nothing more happens to it. Then the `pending` ones are written: the target's attribute
 * (= the reason code) and/or its event (reason code, survey, target, answered_at) as Track v2 entries,
 * and only the responses whose every entry Customer.io acknowledged become `written`. The rest stay
 * pending and are sent again by the next pull, before anything new. Sending again is harmless: the
 * identify sets the same value, and the event carries a deterministic id Customer.io deduplicates on.
 */
import { deterministicUlid } from '../core/ulid.ts';
import type { CustomerioClient } from '../providers/customerio/client.ts';
import type { V2Entry } from '../providers/customerio/types.ts';
import type { QualtricsClient } from '../providers/qualtrics/client.ts';
import { responseAttributeSource, responseEventSource } from '../spec/rules/writers.ts';
import type { SurveyResponseStore } from '../state/index.ts';
import type { LedgerRow, MirrorWrite, ResponseVia } from '../state/survey-responses.ts';
import { eventData, latestAtOrBefore, mapResponse, type ResponseMapping, type ResponseRecordLike } from './mapping.ts';

/** A SurveyTarget with `responses`, as ingestion needs it. */
export interface ResponseTarget {
  name: string;
  survey: string;
  mapping: ResponseMapping;
  /** The response window (ms): a response recorded later than this after the invitation is late. */
  windowMs: number;
}

export interface IngestDeps {
  store: SurveyResponseStore;
  client: Pick<CustomerioClient, 'sendBatches'>;
}

/** Counts per target (never ids). */
export interface ResponseCounts {
  target: string;
  fetched: number;
  written: number;
  duplicate: number;
  unknown_person: number;
  late: number;
  unmapped: number;
  no_answer: number;
  /** To be written, not acknowledged (yet): sent again by the next pull. */
  not_written: number;
  /** Of `written`, pending responses of an earlier run written now. */
  retried: number;
}

export const emptyCounts = (target: string): ResponseCounts => ({ target, fetched: 0, written: 0, duplicate: 0, unknown_person: 0, late: 0, unmapped: 0, no_answer: 0, not_written: 0, retried: 0 });

export interface WriteResult {
  written: LedgerRow[];
  notWritten: LedgerRow[];
  /** Why entries were not acknowledged (the client's reason codes, never the service's message). */
  reasons: string[];
}

/**
 * Maps `records` (responses to the targets' one survey), puts them in the ledger, writes the new pending
 * ones. A record is given to the target whose invitation of its person is the latest at or before it
 * (a survey shared by several targets), else to the first target.
 */
export async function ingestResponses(deps: IngestDeps, targets: ResponseTarget | readonly ResponseTarget[], records: readonly ResponseRecordLike[], via: ResponseVia): Promise<{ counts: Map<string, ResponseCounts>; reasons: string[] }> {
  const list = Array.isArray(targets) ? (targets as readonly ResponseTarget[]) : [targets as ResponseTarget];
  const counts = new Map(list.map((t) => [t.name, emptyCounts(t.name)]));
  if (!list.length) return { counts, reasons: [] };
  const persons = records.map((r) => String(r.values['externalDataReference'] ?? '').trim()).filter(Boolean);
  const invitations = await deps.store.invitationTimes(
    list.map((t) => t.name),
    persons,
  );
  const rows: LedgerRow[] = [];
  const seen = new Set<string>();
  for (const rec of records) {
    const person = String(rec.values['externalDataReference'] ?? '').trim();
    const mine = invitations.get(person) ?? [];
    const target = pickTarget(list, mine, rec);
    const c = counts.get(target.name)!;
    c.fetched += 1;
    if (seen.has(rec.responseId)) {
      c.duplicate += 1;
      continue;
    }
    seen.add(rec.responseId);
    const m = mapResponse(
      rec,
      target.mapping,
      mine.filter((i) => i.target === target.name).map((i) => i.invited_ms),
      target.windowMs,
    );
    rows.push({ survey_id: target.survey, response_id: m.response_id, target: target.name, person_id: m.person_id, recorded_at: m.recorded_at, answer: m.answer, reason_code: m.reason_code, outcome: m.outcome, via });
  }
  const inserted = await deps.store.insert(rows);
  const toWrite: LedgerRow[] = [];
  for (const r of rows) {
    const c = counts.get(r.target)!;
    if (!inserted.has(r.response_id)) {
      c.duplicate += 1;
      continue;
    }
    if (r.outcome === 'pending') toWrite.push(r);
    else c[r.outcome as 'unknown_person' | 'late' | 'unmapped' | 'no_answer'] += 1;
  }
  const result = await writeResponses(deps, list, toWrite);
  for (const r of result.written) counts.get(r.target)!.written += 1;
  for (const r of result.notWritten) counts.get(r.target)!.not_written += 1;
  return { counts, reasons: result.reasons };
}

function pickTarget(list: readonly ResponseTarget[], invitations: ReadonlyArray<{ target: string; invited_ms: number }>, rec: ResponseRecordLike): ResponseTarget {
  if (list.length === 1) return list[0]!;
  const recorded = Date.parse(String(rec.values['recordedDate'] ?? ''));
  let best: { target: ResponseTarget; at: number } | undefined;
  for (const t of list) {
    const at = latestAtOrBefore(
      invitations.filter((i) => i.target === t.name).map((i) => i.invited_ms),
      recorded,
    );
    if (at !== undefined && (!best || at > best.at)) best = { target: t, at };
  }
  return best?.target ?? list[0]!;
}

/** The Customer.io event id of a response's event: the same response always gives the same id. */
export function responseEventId(surveyId: string, responseId: string, recordedMs: number): string {
  return deterministicUlid(`tidemark.response\0${surveyId}\0${responseId}`, recordedMs);
}

/**
 * Writes pending ledger rows to Customer.io and marks `written` those whose entries were all
 * acknowledged. A person's attribute is not sent for an answer older than the one already written
 * (responses can arrive out of order: webhook, then pull of an earlier one); the row is still written
 * (its event, if any, goes out), as Customer.io already holds the newer reason.
 */
export async function writeResponses(deps: IngestDeps, targets: readonly ResponseTarget[], pending: readonly LedgerRow[]): Promise<WriteResult> {
  const result: WriteResult = { written: [], notWritten: [], reasons: [] };
  const byName = new Map(targets.map((t) => [t.name, t]));
  // A row of a target no longer declared (or no longer writing anything) stays pending, untouched: it is
  // written if the target comes back, and never marked written without being written.
  const rows = pending.filter((r) => {
    const w = byName.get(r.target)?.mapping.write;
    return !!(w && (w.attribute || w.event));
  });
  if (!rows.length) return result;
  const newest = new Map<string, Map<string, number>>();
  for (const t of targets) {
    if (!t.mapping.write.attribute) continue;
    const ids = rows.filter((r) => r.target === t.name && r.person_id).map((r) => r.person_id!);
    newest.set(t.name, await deps.store.attributeTimes(responseAttributeSource(t.name), ids));
  }
  // Within this batch too, only the newest answer per person sets the attribute.
  const latestInBatch = new Map<string, number>();
  for (const r of rows) {
    const k = `${r.target}\0${r.person_id}`;
    latestInBatch.set(k, Math.max(latestInBatch.get(k) ?? -Infinity, Date.parse(r.recorded_at)));
  }

  const entries: V2Entry[] = [];
  const owner: number[] = [];
  const plans: MirrorWrite[] = [];
  rows.forEach((r, i) => {
    const t = byName.get(r.target)!;
    const plan: MirrorWrite = { survey_id: r.survey_id, response_id: r.response_id };
    plans.push(plan);
    if (!r.person_id || !r.reason_code) return;
    const at = Date.parse(r.recorded_at);
    const w = t.mapping.write;
    const already = newest.get(t.name)?.get(r.person_id);
    if (w.attribute && (already === undefined || already <= at) && latestInBatch.get(`${r.target}\0${r.person_id}`) === at) {
      entries.push({ type: 'person', action: 'identify', identifiers: { id: r.person_id }, attributes: { [w.attribute]: r.reason_code } });
      owner.push(i);
      plan.attribute = { source: responseAttributeSource(t.name), person_id: r.person_id, field: w.attribute, value: r.reason_code, recorded_ms: at };
    }
    if (w.event) {
      const data = eventData(r.reason_code, r.survey_id, t.name, r.recorded_at);
      entries.push({
        type: 'person',
        action: 'event',
        identifiers: { id: r.person_id },
        name: w.event,
        id: responseEventId(r.survey_id, r.response_id, at),
        timestamp: Math.floor(at / 1000),
        attributes: data,
      } as V2Entry);
      owner.push(i);
      plan.event = { source: responseEventSource(t.name), person_id: r.person_id, name: w.event, recorded_ms: at, data };
    }
  });

  const failed = new Set<number>();
  if (entries.length) {
    const summary = await deps.client.sendBatches(entries);
    for (const e of summary.results) {
      if (e.ok) continue;
      failed.add(owner[e.index]!);
      if (e.reason && !result.reasons.includes(e.reason)) result.reasons.push(e.reason);
    }
  }
  const done: MirrorWrite[] = [];
  rows.forEach((r, i) => {
    if (failed.has(i)) result.notWritten.push(r);
    else {
      result.written.push(r);
      done.push(plans[i]!);
    }
  });
  await deps.store.markWritten(done);
  return result;
}

/**
 * One response, fetched from Qualtrics and ingested (the webhook receiver calls this on a delivery). A
 * response Qualtrics does not know resolves to `undefined`; one already in the ledger is a duplicate.
 */
export async function ingestOne(
  deps: IngestDeps & { qualtrics: Pick<QualtricsClient, 'getResponse'>; targets: readonly ResponseTarget[] },
  surveyId: string,
  responseId: string,
  via: ResponseVia,
): Promise<{ counts: Map<string, ResponseCounts>; reasons: string[] } | undefined> {
  const targets = deps.targets.filter((t) => t.survey === surveyId);
  if (!targets.length) return undefined;
  if (await deps.store.get(surveyId, responseId)) {
    const c = emptyCounts(targets[0]!.name);
    c.fetched = 1;
    c.duplicate = 1;
    return { counts: new Map([[c.target, c]]), reasons: [] };
  }
  const record = await deps.qualtrics.getResponse(surveyId, responseId);
  if (!record) return undefined;
  return ingestResponses(deps, targets, [record], via);
}
