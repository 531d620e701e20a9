/**
 * Each SurveyTarget's payload checked against the survey it names (issue 12, point 3). The survey is
 * built and edited in the Qualtrics UI, so when CX renames or removes an embedded-data field there, the
 * payload tidemark sends stops reaching the answers: `tidemark plan` shows it as drift, and
 * `tidemark surveys run` must not send that target until the two match again.
 *
 * - `readSurveyFields`: one `GET /survey-definitions/{id}` per survey the environment's targets name
 *   (read-only; two targets on one survey share the call).
 * - `surveyPayloadFindings`, `surveyPayloadDiagnostics`: what the answers mean, per target (pure).
 * - `checkSurveyPayloads(ws)`: both, for the plan and for the send.
 * - `sandboxSurveys`: the surveys a sandbox must have so the example starts clean.
 *
 * A mismatch does not block `apply`: apply changes mailing lists, segments and webhooks, none of which a
 * renamed field makes wrong, and blocking it would hold back unrelated fixes. The harm happens when
 * contacts are sent, so the send is what stops.
 */
import type { Diagnostic } from '../core/diagnostics.ts';
import { appliesTo } from '../plan/desired.ts';
import type { Plan } from '../plan/plan.ts';
import type { CallOptions, QualtricsClient } from '../providers/qualtrics/client.ts';
import type { SeedSurveyInput } from '../sandbox/qualtrics/index.ts';
import { sorted, type Located, type SpecModel } from '../spec/model.ts';
import { locate } from '../spec/parse.ts';
import type { SurveyTargetSpec } from '../spec/schema/survey-target.ts';
import { compareSurveyPayload, surveyEmbeddedFields, type SurveyEmbeddedField, type UnreadField } from '../surveys/payload-mapping.ts';
import { WORLD_SURVEYS } from '../world/surveys.ts';
import type { OpenEnvironment } from './use-cases.ts';

/** The survey a target names does not exist on the target (error: the plan has errors). */
export const SURVEY_MISSING_CODE = 'REF010';
/** A payload field the survey does not read, or a survey whose flow could not be read: drift, the send stops. */
export const SURVEY_DRIFT_CODE = 'REF011';
/** The survey reads embedded data nobody sends (warning only). */
export const SURVEY_UNFILLED_CODE = 'REF012';

/** By survey id: the embedded-data fields its flow declares, or why there are none to compare. */
export type SurveyFieldLookup = Map<string, SurveyEmbeddedField[] | 'missing' | 'unreadable'>;

/** The environment's survey targets, in name order. */
function targetsOf(model: SpecModel, environment: string): Located<SurveyTargetSpec>[] {
  return sorted(model.surveyTargets).filter((t) => appliesTo(t.spec, environment));
}

/**
 * Reads the flow of every survey the environment's targets name, once per survey. Service errors (a
 * wrong token, the service down) are thrown as they come: a plan that could not check must not pass as
 * checked. A 404 is `missing`; an answer without a survey flow is `unreadable`.
 */
export async function readSurveyFields(
  model: SpecModel,
  environment: string,
  client: Pick<QualtricsClient, 'getSurveyDefinition'>,
  options: CallOptions = {},
): Promise<SurveyFieldLookup> {
  const out: SurveyFieldLookup = new Map();
  for (const t of targetsOf(model, environment)) {
    if (out.has(t.spec.survey)) continue;
    const definition = await client.getSurveyDefinition(t.spec.survey, options);
    out.set(t.spec.survey, definition === undefined ? 'missing' : (surveyEmbeddedFields(definition) ?? 'unreadable'));
  }
  return out;
}

/** What one target's payload meets in its survey. Names only: never a value, never a person. */
export interface SurveyPayloadFinding {
  /** The SurveyTarget's name. */
  target: string;
  /** `survey_target.<name>`. */
  address: string;
  survey: string;
  /**
   * ok: every payload field is read · drift: some are not (`notRead`) · missing_survey: the survey does not
   * exist · unreadable: its definition had no flow to compare · unchecked: the environment has no Qualtrics.
   */
  status: 'ok' | 'drift' | 'missing_survey' | 'unreadable' | 'unchecked';
  /** Payload fields the survey does not read under that exact name, in payload order. */
  notRead: UnreadField[];
  /** Fields the survey reads from the contact that the payload does not send (a warning, not drift). */
  unfilled: string[];
  /** `surveys run` must not send this target: anything but `ok`. */
  blocksSend: boolean;
}

/** Per target of the environment, in name order (pure). Targets whose survey is not in `lookup` are `unchecked`. */
export function surveyPayloadFindings(model: SpecModel, environment: string, lookup: SurveyFieldLookup | undefined): SurveyPayloadFinding[] {
  return targetsOf(model, environment).map((t) => {
    const base = { target: t.name, address: t.address, survey: t.spec.survey, notRead: [], unfilled: [] };
    const fields = lookup?.get(t.spec.survey);
    if (fields === undefined) return { ...base, status: 'unchecked', blocksSend: true };
    if (fields === 'missing') return { ...base, status: 'missing_survey', blocksSend: true };
    if (fields === 'unreadable') return { ...base, status: 'unreadable', blocksSend: true };
    const { notRead, unfilled } = compareSurveyPayload(t.spec.payload, fields);
    return { ...base, notRead, unfilled, status: notRead.length > 0 ? 'drift' : 'ok', blocksSend: notRead.length > 0 };
  });
}

const STOPS = '`tidemark surveys run` does not send this target until they match.';
const quoteList = (names: readonly string[]) => names.map((n) => `"${n}"`).join(', ');

/**
 * The findings as plan diagnostics, located in the target's spec (pure): an error for a missing survey,
 * drift warnings (one per payload field, on its line) and a warning for fields nobody fills.
 * `targetLabel` is `Connection.target.label`.
 */
export function surveyPayloadDiagnostics(model: SpecModel, findings: readonly SurveyPayloadFinding[], targetLabel: string): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const f of findings) {
    const t = model.surveyTargets.get(f.target);
    if (!t) continue;
    const at = (path: Array<string | number>) => ({ address: t.address, path, source: locate(t.pd, path) });
    if (f.status === 'missing_survey') {
      out.push({
        severity: 'error',
        code: SURVEY_MISSING_CODE,
        summary: `Survey target "${f.target}" names Qualtrics survey ${f.survey}, which does not exist in ${targetLabel}.`,
        detail:
          'Surveys are built in the Qualtrics UI; tidemark cannot create one. Check the id (it is in the survey’s URL), that the survey ' +
          'was not deleted, and that this environment’s API token belongs to the brand that has it. Nothing is sent for this target meanwhile.',
        ...at(['survey']),
      });
      continue;
    }
    if (f.status === 'unreadable') {
      out.push({
        severity: 'warning',
        code: SURVEY_DRIFT_CODE,
        summary: `Qualtrics returned the definition of survey ${f.survey} (survey target "${f.target}") without a survey flow, so its embedded data cannot be checked.`,
        detail: `tidemark compares the payload with the EmbeddedData elements of the survey flow. ${STOPS}`,
        ...at(['survey']),
      });
      continue;
    }
    const candidates = f.unfilled;
    for (const miss of f.notRead) {
      const index = t.spec.payload.indexOf(miss.field);
      const where = at(index >= 0 ? ['payload', index] : ['payload']);
      if (miss.reason === 'case') {
        out.push({
          severity: 'warning',
          code: SURVEY_DRIFT_CODE,
          summary: `Drift: survey ${f.survey} reads embedded-data field "${miss.surveyField}", but survey target "${f.target}" sends "${miss.field}" (the names differ only in case).`,
          detail: `Qualtrics advises matching the case of embedded data names: some accounts still treat them as two fields, and the answer would lose this value. Spell it the same on both sides. ${STOPS}`,
          ...where,
        });
      } else {
        const hint =
          candidates.length > 0
            ? `The survey reads ${quoteList(candidates)}, which nothing sends: if CX renamed "${miss.field}" in the survey flow, rename the payload field to match (declared in Fields) or ask CX to rename it back.`
            : `If CX removed it from the survey flow, remove it from the payload or ask CX to add it back.`;
        out.push({
          severity: 'warning',
          code: SURVEY_DRIFT_CODE,
          summary: `Drift: survey ${f.survey} does not read embedded-data field "${miss.field}", which survey target "${f.target}" sends.`,
          detail: `The value would be stored on the contact but never reach the response, so the answer loses that context. ${hint} ${STOPS}`,
          ...where,
        });
      }
    }
    if (f.unfilled.length > 0) {
      const one = f.unfilled.length === 1;
      out.push({
        severity: 'warning',
        code: SURVEY_UNFILLED_CODE,
        summary: `Survey ${f.survey} reads embedded-data ${one ? 'field' : 'fields'} ${quoteList(f.unfilled)}, which survey target "${f.target}" does not send: the survey sees ${one ? 'it' : 'them'} empty.`,
        detail: 'Send it in the payload (a field declared in Fields), or ask CX to remove it from the survey flow if nothing uses it.',
        ...at(['payload']),
      });
    }
  }
  return out;
}

export interface SurveyPayloadCheck {
  /** One per survey target of the environment, in name order. */
  findings: SurveyPayloadFinding[];
  /** For the plan: see `surveyPayloadDiagnostics`. */
  diagnostics: Diagnostic[];
}

/**
 * Reads each survey the environment's targets name and compares it with their payloads. The send calls
 * this right before sending and skips every finding with `blocksSend`; the plan shows the diagnostics.
 * Without Qualtrics in the environment every target is `unchecked` (and nothing can be sent anyway).
 */
export async function checkSurveyPayloads(ws: OpenEnvironment, options: CallOptions = {}): Promise<SurveyPayloadCheck> {
  const environment = ws.conn.environment;
  if (targetsOf(ws.model, environment).length === 0) return { findings: [], diagnostics: [] };
  const lookup = ws.conn.qualtrics ? await readSurveyFields(ws.model, environment, ws.conn.qualtrics, options) : undefined;
  const findings = surveyPayloadFindings(ws.model, environment, lookup);
  return { findings, diagnostics: surveyPayloadDiagnostics(ws.model, findings, ws.conn.target.label) };
}

/** Whether a plan shows survey drift (`plan --detailed-exitcode` exits 2 for it, as `drift` does). */
export function hasSurveyDrift(plan: Pick<Plan, 'diagnostics'>): boolean {
  return plan.diagnostics.some((d) => d.code === SURVEY_DRIFT_CODE);
}

/**
 * The surveys a sandbox gives the brand, as a real one already has them: the seeded world's (when the
 * Workspace names it), and for any other survey a target names a stand-in whose flow reads exactly the
 * payloads of the targets on it, and whose response question carries their reason codes. Every target is
 * covered, whatever its environments, so switching `--env` against one sandbox finds them all.
 */
export function sandboxSurveys(model: SpecModel): SeedSurveyInput[] {
  const world = model.workspace?.spec.sandbox?.world === 'hearth_and_harvest' ? WORLD_SURVEYS : [];
  const out: SeedSurveyInput[] = world.map((s) => ({ id: s.id, name: s.name, questions: s.questions, embeddedData: [...s.embeddedData] }));
  const standIns = new Map<string, { name: string; fields: string[]; question?: SurveyTargetSpec['responses'] }>();
  for (const t of sorted(model.surveyTargets)) {
    if (world.some((s) => s.id === t.spec.survey)) continue;
    const s = standIns.get(t.spec.survey) ?? { name: `${t.name} (sandbox stand-in)`, fields: [] };
    for (const f of t.spec.payload) if (!s.fields.includes(f)) s.fields.push(f);
    s.question ??= t.spec.responses;
    standIns.set(t.spec.survey, s);
  }
  for (const [id, s] of standIns) {
    const codes = Object.entries(s.question?.reason_codes ?? {});
    // Choice ids are numbers in Qualtrics; reason codes keyed otherwise get no stand-in question.
    const question =
      s.question && codes.length > 0 && codes.every(([k]) => /^\d+$/.test(k))
        ? [{ id: s.question.question, text: 'Sandbox stand-in: the question the reason codes read', type: 'single' as const, choices: Object.fromEntries(codes.map(([k, code]) => [k, { text: code, recode: k }])) }]
        : [];
    out.push({ id, name: s.name, questions: question, embeddedData: s.fields });
  }
  return out;
}
