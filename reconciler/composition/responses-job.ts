/**
 * The response job: `tidemark responses pull`. Per survey of this environment's SurveyTargets with
 * `responses`: finish the writes an earlier pull left pending, export what was recorded since the survey's
 * cursor, put it in the ledger, write the reason codes to Customer.io, move the cursor. Holds the
 * environment's lock, so two pulls never interleave. `responseTargets` and `ingestDeps` are what the
 * webhook receiver needs to call `ingestOne`.
 */
import { parseDuration } from '../core/duration.ts';
import { UserError } from '../core/user-error.ts';
import { appliesTo } from '../plan/desired.ts';
import { ProviderError } from '../providers/errors.ts';
import { emptyCounts, ingestOne, type IngestDeps, type ResponseCounts, type ResponseTarget } from '../responses/ingest.ts';
import type { WebhookSink } from '../responses/webhook-http.ts';
import { questionsOf, responseMappingAlerts, type ResponseAlert, type SurveyQuestionLookup } from '../responses/monitor.ts';
import { pullSurvey } from '../responses/pull.ts';
import type { SpecModel } from '../spec/model.ts';
import { DEFAULT_RESPONSE_WINDOW } from './surveys-job.ts';
import type { OpenEnvironment } from './use-cases.ts';

export class ResponsesPullError extends UserError {
  override name = 'ResponsesPullError';
}

/** The environment's SurveyTargets that declare `responses`, in name order. */
export function responseTargets(model: SpecModel, environment: string): ResponseTarget[] {
  return [...model.surveyTargets.values()]
    .filter((t) => t.spec.responses && appliesTo(t.spec, environment))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((t) => ({
      name: t.name,
      survey: t.spec.survey,
      mapping: { question: t.spec.responses!.question, reason_codes: t.spec.responses!.reason_codes, write: t.spec.responses!.write },
      windowMs: parseDuration(t.spec.response_window ?? DEFAULT_RESPONSE_WINDOW)!,
    }));
}

export function ingestDeps(ws: OpenEnvironment): IngestDeps {
  return { store: ws.conn.store.responses, client: ws.conn.customerio };
}

export interface SurveyPullResult {
  survey: string;
  /** ok: read and everything due written; failed: the export or a write failed (why in `note`). */
  status: 'ok' | 'failed';
  note?: string;
  cursor_before: string | null;
  cursor_after: string | null;
}

export interface ResponsesPullResult {
  at: string;
  targets: ResponseCounts[];
  surveys: SurveyPullResult[];
  /** Every response due to be written was acknowledged by Customer.io. */
  ok: boolean;
}

export interface ResponsesPullOptions {
  pollIntervalMs?: number;
}

/** Why a service call failed, without the service's message (it may quote an id). */
function failure(err: unknown): string {
  if (err instanceof ProviderError) return `${err.operation} failed (${err.status ? `HTTP ${err.status}` : (err.code ?? 'no answer')})`;
  return (err as Error).message;
}

export async function pullResponses(ws: OpenEnvironment, who: string, opts: ResponsesPullOptions = {}): Promise<ResponsesPullResult> {
  const qualtrics = ws.conn.qualtrics;
  if (!qualtrics) throw new ResponsesPullError(`environment ${ws.conn.environment} declares no qualtrics section, so there are no responses to pull`);
  const now = ws.clock.now();
  const targets = responseTargets(ws.model, ws.conn.environment);
  const bySurvey = new Map<string, ResponseTarget[]>();
  for (const t of targets) bySurvey.set(t.survey, [...(bySurvey.get(t.survey) ?? []), t]);

  const lock = await ws.conn.store.acquireLock({ operation: 'responses pull', who });
  try {
    const counts = new Map(targets.map((t) => [t.name, emptyCounts(t.name)]));
    const surveys: SurveyPullResult[] = [];
    for (const [survey, ts] of [...bySurvey].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const cursorBefore = (await ws.conn.store.responses.cursor(survey)) ?? null;
      try {
        const r = await pullSurvey({ ...ingestDeps(ws), qualtrics, now, ...(opts.pollIntervalMs !== undefined ? { pollIntervalMs: opts.pollIntervalMs } : {}) }, survey, ts);
        for (const c of r.targets) counts.set(c.target, c);
        const notWritten = r.targets.reduce((n, c) => n + c.not_written, 0);
        surveys.push({
          survey,
          status: notWritten ? 'failed' : 'ok',
          ...(notWritten ? { note: `${notWritten} response(s) not acknowledged by Customer.io (${r.reasons.join(', ') || 'no reason given'}); they are sent again by the next pull` } : {}),
          cursor_before: r.cursor_before,
          cursor_after: r.cursor_after,
        });
      } catch (err) {
        if (!(err instanceof UserError)) throw err;
        surveys.push({ survey, status: 'failed', note: `${failure(err)}; the next pull starts again from the cursor`, cursor_before: cursorBefore, cursor_after: (await ws.conn.store.responses.cursor(survey)) ?? null });
      }
    }
    return { at: now.toISOString(), targets: [...counts.values()], surveys, ok: surveys.every((s) => s.status === 'ok') };
  } finally {
    await lock.release();
  }
}

/**
 * The webhook receiver's sink: each verified delivery is fetched from Qualtrics and put through the same
 * ledger as `responses pull`, so a response that arrives both ways is written once (the ledger's insert
 * is the one place that decides). A response Qualtrics cannot return yet throws, and the receiver
 * answers 503 so Qualtrics delivers it again; one whose write Customer.io did not acknowledge stays
 * pending in the ledger and the next pull sends it.
 */
export function webhookLedgerSink(ws: OpenEnvironment, surveys: ReadonlySet<string>): WebhookSink {
  const qualtrics = ws.conn.qualtrics;
  if (!qualtrics) throw new ResponsesPullError(`environment ${ws.conn.environment} declares no qualtrics section, so no responses can be fetched`);
  const targets = responseTargets(ws.model, ws.conn.environment).filter((t) => surveys.has(t.survey));
  const deps = { ...ingestDeps(ws), qualtrics, targets };
  return {
    async receive(d) {
      const r = await ingestOne(deps, d.surveyId, d.responseId, 'webhook');
      if (!r) throw new ResponsesPullError('Qualtrics does not return this response (yet); it will deliver it again');
      const counts = [...r.counts.values()];
      return counts.every((c) => c.duplicate === c.fetched) ? 'duplicate' : 'new';
    },
  };
}

/** How far back `status` looks for answers no reason code names. */
export const UNMAPPED_LOOK_BACK_DAYS = 30;

/**
 * `status`'s view of the response mapping: the question each target reads still exists with the choices
 * its codes name (one `GET /survey-definitions/{id}` per survey), answers in the last 30 days that no code
 * names, and codes nothing in the specs acts on. Without Qualtrics, the survey checks are skipped.
 */
export async function responseMappingStatus(ws: OpenEnvironment): Promise<ResponseAlert[]> {
  const targets = responseTargets(ws.model, ws.conn.environment);
  if (!targets.length) return [];
  const surveys: SurveyQuestionLookup = new Map();
  const qualtrics = ws.conn.qualtrics;
  if (qualtrics) {
    for (const survey of new Set(targets.map((t) => t.survey))) {
      const definition = await qualtrics.getSurveyDefinition(survey);
      surveys.set(survey, definition === undefined ? 'missing' : (questionsOf(definition) ?? 'unreadable'));
    }
  }
  const since = new Date(ws.clock.now().getTime() - UNMAPPED_LOOK_BACK_DAYS * 86_400_000).toISOString();
  const unmapped = await ws.conn.store.responses.unmappedAnswers(since);
  return responseMappingAlerts({ model: ws.model, environment: ws.conn.environment, surveys, unmapped, lookBack: `${UNMAPPED_LOOK_BACK_DAYS} days` });
}
