/**
 * Response exports: start (`POST /surveys/{id}/export-responses`) → poll
 * (`GET …/export-responses/{progressId}`, inProgress → complete with a fileId, or failed) → download
 * (`GET …/export-responses/{fileId}/file`). The file is built from the responses present when the job
 * completes, as on the real service.
 */
import { IANAZone } from 'luxon';
import { BodyReader, parseJsonBody } from '../body.ts';
import { param, type HandlerContext, type Route } from '../context.ts';
import { ErrorCode, QualtricsApiError, badRequest, invalidParam, missingParam, notFound, ok, type ApiResult } from '../envelope.ts';
import { renderExport } from '../export-files.ts';
import type { SeededRandom } from '../random.ts';
import { exportFormatSchema, type ExportJob, type ExportRequest, type QualtricsStore, type SurveyResponse } from '../state.ts';
import { METADATA_COLUMNS } from '../survey-views.ts';
import { requireSurvey } from './surveys.ts';

/** Continuation tokens expire after a week (documented). */
const CONTINUATION_TTL_MS = 7 * 24 * 60 * 60 * 1000;

const REQUEST_KEYS = [
  'format',
  'startDate',
  'endDate',
  'limit',
  'useLabels',
  'timeZone',
  'questionIds',
  'embeddedDataIds',
  'surveyMetadataIds',
  'seenUnansweredRecode',
  'multiselectSeenUnansweredRecode',
  'includeDisplayOrder',
  'compress',
  'breakoutSets',
  'formatDecimalAsComma',
  'newlineReplacement',
  'sortByLastModifiedDate',
  'allowContinuation',
  'continuationToken',
  'filterId',
];

/**
 * Reported in real threads: exports called through a proxying (non-home) datacenter host fail with 400
 * until the client uses the host the notice names. ⚠ The exact error text is not documented.
 */
function refuseIfProxied(ctx: HandlerContext): void {
  if (ctx.proxied && ctx.store.config.rejectProxiedExports) {
    throw new QualtricsApiError(
      400,
      ErrorCode.wrongDatacenter,
      'Response exports must be requested from the brand datacenter; use the host named in meta.notice.',
    );
  }
}

function readExportRequest(ctx: HandlerContext, surveyQuestionIds: Set<string>, surveyId: string): ExportRequest {
  const body = new BodyReader(parseJsonBody(ctx.req)).allowOnly(REQUEST_KEYS);
  const formatRaw = body.optionalString('format');
  if (formatRaw === undefined) throw missingParam('format');
  if (formatRaw === 'spss') throw invalidParam('format', 'spss exports are not produced by this sandbox');
  const format = exportFormatSchema.safeParse(formatRaw);
  if (!format.success) throw invalidParam('format', 'expected one of csv, tsv, json, ndjson, spss, xml');

  const start = body.optionalDateTime('startDate');
  const end = body.optionalDateTime('endDate');
  if (start && end && start.ms >= end.ms) throw invalidParam('endDate', 'must be after startDate');
  const limit = body.optionalInteger('limit', { min: 1 }) ?? null;

  const useLabels = body.optionalBoolean('useLabels') ?? false;
  // ⚠ Reported as not valid with JSON (JSON records always carry `labels`); refusing it is the safe reading.
  if (useLabels && (format.data === 'json' || format.data === 'ndjson')) {
    throw invalidParam('useLabels', 'not valid with the json format, whose records carry labels already');
  }
  const timeZone = body.optionalString('timeZone') ?? 'UTC';
  if (!IANAZone.isValidZone(timeZone)) throw invalidParam('timeZone', 'expected an IANA time zone such as America/Denver');

  const questionIds = body.optionalStringArray('questionIds') ?? null;
  for (const qid of questionIds ?? []) {
    if (!surveyQuestionIds.has(qid)) throw invalidParam('questionIds', `${qid} is not a question of ${surveyId}`);
  }
  const surveyMetadataIds = body.optionalStringArray('surveyMetadataIds') ?? null;
  const knownMeta = new Set(METADATA_COLUMNS.map((m) => m.id));
  for (const id of surveyMetadataIds ?? []) {
    if (!knownMeta.has(id)) throw invalidParam('surveyMetadataIds', `unknown metadata field ${id}`);
  }
  const embeddedDataIds = body.optionalStringArray('embeddedDataIds') ?? null;
  const seenUnansweredRecode = body.optionalInteger('seenUnansweredRecode') ?? null;
  const multiselectSeenUnansweredRecode = body.optionalInteger('multiselectSeenUnansweredRecode') ?? null;
  // Display-order columns exist only for randomised blocks/choices, which seeded surveys do not have.
  body.optionalBoolean('includeDisplayOrder');
  const compress = body.optionalBoolean('compress') ?? true;
  const breakoutSets = body.optionalBoolean('breakoutSets') ?? true;
  const formatDecimalAsComma = body.optionalBoolean('formatDecimalAsComma') ?? false;
  const newlineReplacement = body.optionalString('newlineReplacement') ?? null;
  const sortByLastModifiedDate = body.optionalBoolean('sortByLastModifiedDate') ?? false;
  const allowContinuation = body.optionalBoolean('allowContinuation') ?? false;
  const filterId = body.optionalString('filterId');
  if (filterId !== undefined) {
    if (allowContinuation) throw badRequest(ErrorCode.invalidParam, 'allowContinuation cannot be combined with filterId.');
    if (sortByLastModifiedDate) throw badRequest(ErrorCode.invalidParam, 'sortByLastModifiedDate cannot be combined with filterId.');
    // Saved filters are built in the UI; none exist in the sandbox, so every filter id is unknown.
    throw invalidParam('filterId', `no filter ${filterId} exists for ${surveyId}`);
  }
  let afterSeq: number | null = null;
  const token = body.optionalString('continuationToken');
  if (token !== undefined) {
    const c = ctx.store.continuations.get(token);
    if (!c || c.surveyId !== surveyId) throw invalidParam('continuationToken', 'unknown token');
    if (c.expiresAt <= ctx.now().getTime()) throw invalidParam('continuationToken', 'the token has expired');
    afterSeq = c.afterSeq;
  }
  return {
    format: format.data,
    startDate: start?.text ?? null,
    endDate: end?.text ?? null,
    limit,
    useLabels,
    timeZone,
    questionIds,
    embeddedDataIds,
    surveyMetadataIds,
    seenUnansweredRecode,
    multiselectSeenUnansweredRecode,
    compress,
    breakoutSets,
    formatDecimalAsComma,
    newlineReplacement,
    sortByLastModifiedDate,
    allowContinuation,
    afterSeq,
  };
}

function startExport(ctx: HandlerContext): ApiResult {
  refuseIfProxied(ctx);
  const survey = requireSurvey(ctx);
  const request = readExportRequest(ctx, new Set(survey.questions.map((q) => q.id)), survey.id);
  const config = ctx.store.config;
  const willFail = config.exportFailuresPending > 0;
  if (willFail) config.exportFailuresPending -= 1;
  const job: ExportJob = {
    seq: ctx.store.nextSeq(),
    progressId: ctx.rng.id('ES'),
    surveyId: survey.id,
    createdAt: ctx.now().getTime(),
    stepsDone: 0,
    stepsTotal: config.jobSteps,
    status: 'inProgress',
    willFail,
    request,
    fileId: null,
    continuationToken: null,
  };
  ctx.store.exports.set(job.progressId, job);
  return ok({ progressId: job.progressId, percentComplete: 0.0, status: job.status });
}

/**
 * Responses in the export: after the continuation point, recorded in [startDate, endDate) (start
 * inclusive, end exclusive, as documented; no endDate: up to the emulator's now), at most `limit` (the earliest seeded first, so a continued
 * export picks up the rest), in recorded-date order. Returns them with the new continuation point.
 */
function selectResponses(all: readonly SurveyResponse[], req: ExportRequest, nowMs: number): { picked: SurveyResponse[]; highWater: number } {
  const fromMs = req.startDate ? Date.parse(req.startDate) : -Infinity;
  const toMs = req.endDate ? Date.parse(req.endDate) : Infinity;
  const after = req.afterSeq ?? 0;
  // A response drawn for the future (answers.ts) exists once its time has come: before the client's
  // endDate (its clock) when it gives one, else by the emulator's clock.
  const candidates = all.filter((r) => r.seq > after && (!r.drawn || req.endDate !== null || Date.parse(r.recordedDate) <= nowMs));
  let picked = candidates.filter((r) => {
    const t = Date.parse(r.recordedDate);
    return t >= fromMs && t < toMs;
  });
  let highWater = candidates.reduce((m, r) => Math.max(m, r.seq), after);
  if (req.limit !== null && picked.length > req.limit) {
    picked = picked.slice(0, req.limit);
    highWater = picked[picked.length - 1]?.seq ?? after;
  }
  const key = req.sortByLastModifiedDate ? 'lastModifiedDate' : 'recordedDate';
  picked = [...picked].sort((a, b) => Date.parse(a[key]) - Date.parse(b[key]) || a.seq - b.seq);
  return { picked, highWater };
}

/** One step of background work; the last step builds the file (or fails the job, when injected). */
export function advanceExport(store: QualtricsStore, rng: SeededRandom, job: ExportJob, now: Date): void {
  if (job.status !== 'inProgress') return;
  job.stepsDone = Math.min(job.stepsTotal, job.stepsDone + 1);
  if (job.stepsDone < job.stepsTotal) return;
  const survey = store.surveys.get(job.surveyId);
  if (job.willFail || !survey) {
    job.status = 'failed';
    return;
  }
  const { picked, highWater } = selectResponses(store.responsesOf(survey.id), job.request, now.getTime());
  const file = renderExport(survey, picked, job.request, now);
  const fileId = rng.uuid();
  store.files.set(fileId, {
    fileId,
    surveyId: survey.id,
    fileName: file.fileName,
    contentType: file.contentType,
    dataBase64: file.bytes.toString('base64'),
  });
  job.fileId = fileId;
  if (job.request.allowContinuation) {
    const token = rng.uuid().replace(/-/g, '');
    store.continuations.set(token, { token, surveyId: survey.id, afterSeq: highWater, expiresAt: now.getTime() + CONTINUATION_TTL_MS });
    job.continuationToken = token;
  }
  job.status = 'complete';
}

function getExportProgress(ctx: HandlerContext): ApiResult {
  refuseIfProxied(ctx);
  const survey = requireSurvey(ctx);
  const id = param(ctx, 'exportProgressId');
  const job = ctx.store.exports.get(id);
  // Documented: clients stop polling on 404.
  if (!job || job.surveyId !== survey.id) throw notFound('Export', id);
  if (job.status === 'failed') return ok({ fileId: null, percentComplete: 100, status: 'failed' });
  const percent = Math.round((job.stepsDone / job.stepsTotal) * 1000) / 10;
  const result: Record<string, unknown> = { percentComplete: percent, status: job.status };
  if (job.status === 'complete') {
    result['fileId'] = job.fileId;
    if (job.continuationToken) result['continuationToken'] = job.continuationToken;
  }
  return ok(result);
}

function getExportFile(ctx: HandlerContext): ApiResult {
  refuseIfProxied(ctx);
  const survey = requireSurvey(ctx);
  const id = param(ctx, 'fileId');
  const file = ctx.store.files.get(id);
  if (!file || file.surveyId !== survey.id) throw notFound('File', id);
  return {
    status: 200,
    raw: {
      body: Buffer.from(file.dataBase64, 'base64'),
      headers: {
        'content-type': file.contentType,
        'content-disposition': `attachment; filename="${file.fileName.replace(/"/g, '')}"`,
      },
    },
  };
}

export const EXPORT_START_PATTERN = '/surveys/{surveyId}/export-responses';
export const EXPORT_PROGRESS_PATTERN = '/surveys/{surveyId}/export-responses/{exportProgressId}';
export const EXPORT_FILE_PATTERN = '/surveys/{surveyId}/export-responses/{fileId}/file';

export const exportRoutes: Route[] = [
  { method: 'POST', pattern: EXPORT_START_PATTERN, handler: startExport },
  { method: 'GET', pattern: EXPORT_PROGRESS_PATTERN, handler: getExportProgress },
  { method: 'GET', pattern: EXPORT_FILE_PATTERN, handler: getExportFile },
];
