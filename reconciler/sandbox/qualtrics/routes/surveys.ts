/** Surveys (read-only over the API: they are built in the Qualtrics UI, here by seeding) and single responses. */
import { param, type HandlerContext, type Route } from '../context.ts';
import { invalidParam, notFound, ok, type ApiResult } from '../envelope.ts';
import { nextPageUrl, readPageRequest, takePage } from '../pagination.ts';
import type { Survey } from '../state.ts';
import {
  ALL_FIELDS,
  buildResponseRecord,
  questionDefinition,
  surveyDefinitionView,
  surveyListElement,
  surveyView,
} from '../survey-views.ts';

export function requireSurvey(ctx: HandlerContext): Survey {
  const id = param(ctx, 'surveyId');
  const s = ctx.store.surveys.get(id);
  if (!s) throw notFound('Survey', id);
  return s;
}

function listSurveys(ctx: HandlerContext): ApiResult {
  const req = readPageRequest(ctx.url, 'sv', { defaultSize: 100, maxSize: 100, allowOffset: true });
  const page = takePage([...ctx.store.surveys.values()], req);
  return ok({ elements: page.items.map(surveyListElement), nextPage: nextPageUrl(ctx.url, 'sv', page.nextAfterSeq) });
}

function getSurvey(ctx: HandlerContext): ApiResult {
  const s = requireSurvey(ctx);
  return ok(surveyView(s, ctx.store.config, ctx.store.responsesOf(s.id).length));
}

function getSurveyDefinition(ctx: HandlerContext): ApiResult {
  const s = requireSurvey(ctx);
  const format = ctx.url.searchParams.get('format');
  // The QSF variant is a different document (the survey-builder export file); not emulated.
  if (format !== null && format !== 'json') throw invalidParam('format', 'this sandbox serves the JSON definition only');
  return ok(surveyDefinitionView(s, ctx.store.config));
}

function getSurveyQuestions(ctx: HandlerContext): ApiResult {
  const s = requireSurvey(ctx);
  return ok({ elements: s.questions.map(questionDefinition) });
}

function getResponse(ctx: HandlerContext): ApiResult {
  const s = requireSurvey(ctx);
  const id = param(ctx, 'responseId');
  const r = ctx.store.responses.get(id);
  if (!r || r.surveyId !== s.id) throw notFound('Response', id);
  return ok(buildResponseRecord(s, r, ALL_FIELDS));
}

export const surveyRoutes: Route[] = [
  { method: 'GET', pattern: '/surveys', handler: listSurveys },
  { method: 'GET', pattern: '/surveys/{surveyId}', handler: getSurvey },
  { method: 'GET', pattern: '/survey-definitions/{surveyId}', handler: getSurveyDefinition },
  { method: 'GET', pattern: '/survey-definitions/{surveyId}/questions', handler: getSurveyQuestions },
  { method: 'GET', pattern: '/surveys/{surveyId}/responses/{responseId}', handler: getResponse },
];
