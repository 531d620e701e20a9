/**
 * Watching the response mapping (issue 13 point 4). The mapping ties a survey question's choices to
 * reason codes, and reason codes to the segments that act on them. Each end moves without tidemark
 * noticing: CX edits the survey in the Qualtrics UI (the question goes, a choice goes or comes), and a
 * segment that used a code is rewritten. Then answers silently stop changing anything. `tidemark status`
 * raises these, from the specs, the survey definitions and the ledger's counts. Pure: the caller reads.
 *
 * Messages name targets, questions, codes and choice recodes (declared vocabulary, like enum values),
 * never a person or a free-text answer: an unmapped answer is shown only when it looks like a recode.
 */
import { appliesTo } from '../plan/desired.ts';
import { walkConditions } from '../spec/resolve.ts';
import { sorted, type SpecModel } from '../spec/model.ts';
import type { SurveyTargetSpec } from '../spec/schema/survey-target.ts';

export type ResponseAlertKind = 'question_missing' | 'choice_missing' | 'unmapped_answers' | 'code_feeds_nothing';

export interface ResponseAlert {
  kind: ResponseAlertKind;
  /** The SurveyTarget. */
  target: string;
  message: string;
}

/** A survey's questions as its definition lists them: question id → the recodes its choices export. */
export type SurveyQuestions = Map<string, string[]>;

/** What `status` could read of a survey: its questions, or that it is gone. */
export type SurveyQuestionLookup = Map<string, SurveyQuestions | 'missing' | 'unreadable'>;

/**
 * The questions of a survey definition (`GET /survey-definitions/{id}`): each question's choices exported
 * as their recode (`RecodeValues`), or their choice id when the choice has no recode. A question without
 * choices (text entry) has none.
 */
export function questionsOf(definition: { Questions?: Record<string, unknown> } | undefined): SurveyQuestions | undefined {
  if (!definition?.Questions || typeof definition.Questions !== 'object') return undefined;
  const out: SurveyQuestions = new Map();
  for (const [id, raw] of Object.entries(definition.Questions)) {
    const q = (raw ?? {}) as { QuestionID?: unknown; Choices?: unknown; RecodeValues?: unknown };
    const qid = typeof q.QuestionID === 'string' && q.QuestionID ? q.QuestionID : id;
    const choices = q.Choices && typeof q.Choices === 'object' ? Object.keys(q.Choices as object) : [];
    const recodes = q.RecodeValues && typeof q.RecodeValues === 'object' ? (q.RecodeValues as Record<string, unknown>) : {};
    out.set(
      qid,
      choices.map((c) => (recodes[c] === undefined || recodes[c] === null ? c : String(recodes[c]))),
    );
  }
  return out;
}

interface Target {
  name: string;
  spec: SurveyTargetSpec;
}

function responseTargetsOf(model: SpecModel, environment: string): Target[] {
  return sorted(model.surveyTargets)
    .filter((t) => t.spec.responses && appliesTo(t.spec, environment))
    .map((t) => ({ name: t.name, spec: t.spec }));
}

/**
 * Segments that act: published, the audience of a survey target, or named by a segment that acts.
 * A code that only reaches a segment nothing uses changes nothing.
 */
function actingSegments(model: SpecModel): Set<string> {
  const refs = new Map<string, string[]>();
  for (const seg of sorted(model.segments)) {
    const named: string[] = [];
    if (seg.spec.conditions) walkConditions(seg.spec.conditions, [], (c) => c.segment && named.push(c.segment));
    refs.set(seg.name, named);
  }
  const acting = new Set<string>();
  const visit = (name: string) => {
    if (acting.has(name)) return;
    acting.add(name);
    for (const n of refs.get(name) ?? []) visit(n);
  };
  for (const seg of sorted(model.segments)) if (seg.spec.publish) visit(seg.name);
  for (const t of sorted(model.surveyTargets)) if (typeof t.spec.audience === 'string') visit(t.spec.audience);
  return acting;
}

/**
 * The codes of a target that no acting segment can tell apart: written to an attribute no condition
 * compares with that code, and to an event no condition names. A condition that reads the attribute
 * without naming values (exists, contains, …) uses every code; eq, neq, in and not_in use the ones they
 * name. (Customer.io campaigns and segments built in its UI are invisible to tidemark: the message says so.)
 */
export function codesFeedingNothing(model: SpecModel, target: Target): string[] {
  const write = target.spec.responses!.write;
  const codes = [...new Set(Object.values(target.spec.responses!.reason_codes))];
  const acting = actingSegments(model);
  const used = new Set<string>();
  let all = false;
  for (const seg of sorted(model.segments)) {
    if (!acting.has(seg.name) || !seg.spec.conditions) continue;
    walkConditions(seg.spec.conditions, [], (c) => {
      if (write.event && c.event?.name === write.event) all = true;
      const a = c.attribute;
      if (!a || !write.attribute || a.field !== write.attribute) return;
      if (['eq', 'neq', 'in', 'not_in'].includes(a.op)) {
        for (const v of Array.isArray(a.value) ? a.value : [a.value]) used.add(String(v));
      } else all = true;
    });
  }
  return all ? [] : codes.filter((c) => !used.has(c));
}

/** A recode is a short number (or a short token): safe to show. Anything else may be typed text. */
const RECODE = /^-?[0-9A-Za-z_]{1,12}$/;

export interface ResponseMonitorInput {
  model: SpecModel;
  environment: string;
  /** By survey id; a survey absent from the map was not checked (no Qualtrics). */
  surveys: SurveyQuestionLookup;
  /** The ledger's unmapped answers in the look-back window (`SurveyResponseStore.unmappedAnswers`). */
  unmapped: ReadonlyArray<{ target: string; answer: string; n: number }>;
  /** How far back `unmapped` reaches, in words ("30 days"). */
  lookBack: string;
}

export function responseMappingAlerts(i: ResponseMonitorInput): ResponseAlert[] {
  const out: ResponseAlert[] = [];
  for (const t of responseTargetsOf(i.model, i.environment)) {
    const r = t.spec.responses!;
    const survey = i.surveys.get(t.spec.survey);
    if (survey === 'missing') {
      out.push({ kind: 'question_missing', target: t.name, message: `survey ${t.spec.survey} of target ${t.name} no longer exists in Qualtrics, so its responses cannot be read` });
    } else if (survey && survey !== 'unreadable') {
      const choices = survey.get(r.question);
      if (!choices) {
        out.push({
          kind: 'question_missing',
          target: t.name,
          message: `survey ${t.spec.survey} has no question ${r.question} any more (CX changed the survey): target ${t.name}'s answers map to no reason code until responses.question names the question again`,
        });
      } else if (choices.length > 0) {
        const gone = Object.keys(r.reason_codes).filter((k) => !choices.includes(k));
        if (gone.length) {
          out.push({
            kind: 'choice_missing',
            target: t.name,
            message: `question ${r.question} of survey ${t.spec.survey} has no choice exporting ${gone.map((k) => `"${k}"`).join(', ')} any more (CX changed the survey): reason code${gone.length === 1 ? '' : 's'} ${gone.map((k) => r.reason_codes[k]).join(', ')} of target ${t.name} can no longer be answered`,
          });
        }
      }
    }
    const unmapped = i.unmapped.filter((u) => u.target === t.name && !Object.hasOwn(r.reason_codes, u.answer));
    if (unmapped.length) {
      const n = unmapped.reduce((s, u) => s + u.n, 0);
      const shown = unmapped.filter((u) => RECODE.test(u.answer));
      const which = shown.length === unmapped.length ? ` (answer${shown.length === 1 ? '' : 's'} ${shown.map((u) => `"${u.answer}"`).join(', ')})` : '';
      out.push({
        kind: 'unmapped_answers',
        target: t.name,
        message: `${n} response${n === 1 ? '' : 's'} to target ${t.name} in the last ${i.lookBack} answered ${r.question} with a choice no reason code names${which}: add the code${unmapped.length === 1 ? '' : 's'} to responses.reason_codes`,
      });
    }
    const idle = codesFeedingNothing(i.model, t);
    if (idle.length) {
      const where = [r.write.attribute ? `attribute ${r.write.attribute}` : '', r.write.event ? `event ${r.write.event}` : ''].filter(Boolean).join(' and ');
      out.push({
        kind: 'code_feeds_nothing',
        target: t.name,
        message: `reason code${idle.length === 1 ? '' : 's'} ${idle.join(', ')} of target ${t.name} (${where}) feed${idle.length === 1 ? 's' : ''} no published segment or survey audience in the specs: the answer changes nothing tidemark sends (a Customer.io campaign built in its UI may still use it; tidemark cannot see those)`,
      });
    }
  }
  return out;
}
