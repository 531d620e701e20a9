/**
 * Wire shapes of surveys and responses: `GET /surveys/{id}` (camelCase, keyed objects),
 * `GET /survey-definitions/{id}` (PascalCase, the survey-builder model), and the response record used by
 * exports and `GET /surveys/{id}/responses/{responseId}`.
 */
import type { QualtricsConfig, Question, Survey, SurveyResponse } from './state.ts';

function questionType(q: Question): { type: string; selector: string; subSelector: string | null } {
  switch (q.type) {
    case 'single':
      return { type: 'MC', selector: 'SAVR', subSelector: 'TX' };
    case 'multi':
      return { type: 'MC', selector: 'MAVR', subSelector: 'TX' };
    case 'text':
      return { type: 'TE', selector: 'SL', subSelector: null };
    case 'nps':
      return { type: 'MC', selector: 'NPS', subSelector: null };
  }
}

/** Surveys built by seeding have one default block holding every question. */
export function defaultBlockId(survey: Survey): string {
  return `BL_${survey.id.slice(3)}`;
}

export function surveyListElement(s: Survey): Record<string, unknown> {
  return { id: s.id, name: s.name, ownerId: s.ownerId, lastModified: s.lastModifiedDate, creationDate: s.creationDate, isActive: s.isActive };
}

/** `GET /surveys/{surveyId}` result, after the real response recorded in the reference. */
export function surveyView(s: Survey, config: QualtricsConfig, responseCount: number): Record<string, unknown> {
  const questions: Record<string, unknown> = {};
  const exportColumnMap: Record<string, unknown> = {};
  for (const q of s.questions) {
    const choices: Record<string, unknown> = {};
    for (const c of q.choices) {
      choices[c.id] = {
        recode: c.recode,
        description: c.text,
        choiceText: c.text,
        imageDescription: null,
        variableName: null,
        analyze: true,
      };
    }
    questions[q.id] = {
      questionType: questionType(q),
      questionText: q.text,
      questionLabel: null,
      validation: { doesForceResponse: q.forceResponse },
      questionName: q.exportTag,
      ...(q.type === 'text' ? {} : { choices }),
    };
    if (q.type === 'multi') {
      for (const c of q.choices) exportColumnMap[`${q.exportTag}_${c.id}`] = { question: q.id, choice: `${q.id}.choices.${c.id}` };
    } else {
      exportColumnMap[q.exportTag] = { question: q.id };
    }
    if (q.type === 'nps') exportColumnMap[`${q.exportTag}_NPS_GROUP`] = { question: q.id };
  }
  const blockId = defaultBlockId(s);
  return {
    id: s.id,
    name: s.name,
    ownerId: s.ownerId,
    organizationId: config.brandId,
    isActive: s.isActive,
    creationDate: s.creationDate,
    lastModifiedDate: s.lastModifiedDate,
    expiration: { startDate: s.expiration.startDate, endDate: s.expiration.endDate },
    questions,
    exportColumnMap,
    blocks: {
      [blockId]: {
        description: 'Default Question Block',
        elements: s.questions.map((q) => ({ type: 'Question', questionId: q.id })),
      },
    },
    flow: [
      ...(s.embeddedData.length > 0 ? [{ id: 'FL_2', type: 'EmbeddedData' }] : []),
      { id: blockId, type: 'Block' },
    ],
    embeddedData: s.embeddedData.map((e) => ({ name: e.name, ...(e.defaultValue !== null ? { defaultValue: e.defaultValue } : {}) })),
    comments: {},
    loopAndMerge: {},
    responseCounts: { auditable: responseCount, generated: 0, deleted: 0 },
  };
}

export function questionDefinition(q: Question): Record<string, unknown> {
  const t = questionType(q);
  const def: Record<string, unknown> = {
    QuestionID: q.id,
    QuestionText: q.text,
    DataExportTag: q.exportTag,
    QuestionType: t.type,
    Selector: t.selector,
    ...(t.subSelector ? { SubSelector: t.subSelector } : {}),
    Configuration: { QuestionDescriptionOption: 'UseText' },
    QuestionDescription: q.text,
    Validation: { Settings: { ForceResponse: q.forceResponse ? 'ON' : 'OFF', ForceResponseType: 'ON', Type: 'None' } },
    Language: [],
    DataVisibility: { Private: false, Hidden: false },
  };
  if (q.type !== 'text') {
    const choices: Record<string, unknown> = {};
    for (const c of q.choices) choices[c.id] = { Display: c.text };
    def['Choices'] = choices;
    def['ChoiceOrder'] = q.choices.map((c) => c.id);
    def['NextChoiceId'] = Math.max(0, ...q.choices.map((c) => Number(c.id))) + 1;
    def['NextAnswerId'] = 1;
    if (q.choices.some((c) => c.recode !== c.id)) {
      const recodes: Record<string, string> = {};
      for (const c of q.choices) recodes[c.id] = c.recode;
      def['RecodeValues'] = recodes;
    }
  }
  return def;
}

/** `GET /survey-definitions/{surveyId}` result (survey-builder model, PascalCase). */
export function surveyDefinitionView(s: Survey, config: QualtricsConfig): Record<string, unknown> {
  const blockId = defaultBlockId(s);
  const questions: Record<string, unknown> = {};
  for (const q of s.questions) questions[q.id] = questionDefinition(q);
  const flow: Record<string, unknown>[] = [];
  if (s.embeddedData.length > 0) {
    flow.push({
      Type: 'EmbeddedData',
      FlowID: 'FL_2',
      // As in exported survey flows: a field whose value comes from the contact (or the link) is of type
      // Recipient; one the flow gives a value is Custom, with the value in `Value`.
      EmbeddedData: s.embeddedData.map((e) => ({
        Description: e.name,
        Type: e.defaultValue !== null ? 'Custom' : 'Recipient',
        Field: e.name,
        VariableType: 'String',
        DataVisibility: [],
        AnalyzeText: false,
        ...(e.defaultValue !== null ? { Value: e.defaultValue } : {}),
      })),
    });
  }
  flow.push({ ID: blockId, Type: 'Block', FlowID: 'FL_3' });
  return {
    QuestionCount: String(s.questions.length),
    SurveyOptions: {
      BackButton: 'false',
      SaveAndContinue: 'true',
      SurveyProtection: 'PublicSurvey',
      NoIndex: 'Yes',
      SecureResponseFiles: 'true',
      SurveyExpiration: s.expiration.endDate ? 'On' : 'None',
      SurveyTermination: 'DefaultMessage',
      ProgressBarDisplay: 'None',
    },
    SurveyID: s.id,
    SurveyName: s.name,
    SurveyStatus: s.isActive ? 'Active' : 'Inactive',
    LastModified: s.lastModifiedDate,
    BrandID: config.brandId,
    OwnerID: s.ownerId,
    LastAccessed: s.lastModifiedDate,
    CreatorID: s.ownerId,
    LastActivated: s.isActive ? s.lastModifiedDate : null,
    Questions: questions,
    Blocks: {
      [blockId]: {
        Type: 'Default',
        Description: 'Default Question Block',
        ID: blockId,
        BlockElements: s.questions.map((q) => ({ Type: 'Question', QuestionID: q.id })),
      },
    },
    ResponseSets: {},
    SurveyFlow: { Flow: flow, Properties: { Count: flow.length + 1 }, FlowID: 'FL_1', Type: 'Root' },
    Scoring: { ScoringCategories: [], ScoringCategoryGroups: [], ScoringSummaryCategory: null },
    ProjectInfo: { SurveyID: s.id, ProjectCategory: 'CORE', SchemaVersion: null },
    BrandBaseURL: `https://${config.brandId}.qualtrics.com`,
  };
}

/** Net Promoter group of a 0–10 score: 1 detractor, 2 passive, 3 promoter. */
export function npsGroup(score: number): { value: number; label: string } {
  if (score <= 6) return { value: 1, label: 'Detractor' };
  if (score <= 8) return { value: 2, label: 'Passive' };
  return { value: 3, label: 'Promoter' };
}

/** Metadata columns in export order: ImportId, CSV column name, CSV label row. */
export const METADATA_COLUMNS: readonly { id: string; column: string; label: string }[] = [
  { id: 'startDate', column: 'StartDate', label: 'Start Date' },
  { id: 'endDate', column: 'EndDate', label: 'End Date' },
  { id: 'status', column: 'Status', label: 'Response Type' },
  { id: 'ipAddress', column: 'IPAddress', label: 'IP Address' },
  { id: 'progress', column: 'Progress', label: 'Progress' },
  { id: 'duration', column: 'Duration (in seconds)', label: 'Duration (in seconds)' },
  { id: 'finished', column: 'Finished', label: 'Finished' },
  { id: 'recordedDate', column: 'RecordedDate', label: 'Recorded Date' },
  { id: '_recordId', column: 'ResponseId', label: 'Response ID' },
  { id: 'recipientLastName', column: 'RecipientLastName', label: 'Recipient Last Name' },
  { id: 'recipientFirstName', column: 'RecipientFirstName', label: 'Recipient First Name' },
  { id: 'recipientEmail', column: 'RecipientEmail', label: 'Recipient Email' },
  { id: 'externalDataReference', column: 'ExternalReference', label: 'External Data Reference' },
  { id: 'locationLatitude', column: 'LocationLatitude', label: 'Location Latitude' },
  { id: 'locationLongitude', column: 'LocationLongitude', label: 'Location Longitude' },
  { id: 'distributionChannel', column: 'DistributionChannel', label: 'Distribution Channel' },
  { id: 'userLanguage', column: 'UserLanguage', label: 'User Language' },
];

const STATUS_LABELS: Record<number, string> = {
  0: 'IP Address',
  1: 'Survey Preview',
  2: 'Survey Test',
  4: 'Imported',
  16: 'Offline',
  256: 'Synthetic',
};

export type RecordValue = string | number | number[] | null;

/** One response as exported: `values`, `labels`, `displayedFields`, `displayedValues`. */
export interface ResponseRecord {
  responseId: string;
  values: Record<string, RecordValue>;
  labels: Record<string, string | string[]>;
  displayedFields: string[];
  displayedValues: Record<string, number[]>;
}

export interface RecordOptions {
  questionIds: readonly string[] | null;
  embeddedDataIds: readonly string[] | null;
  surveyMetadataIds: readonly string[] | null;
  seenUnansweredRecode: number | null;
  multiselectSeenUnansweredRecode: number | null;
  /** Adds `lastModifiedDate` to the metadata (export option `sortByLastModifiedDate`). */
  includeLastModified: boolean;
}

export const ALL_FIELDS: RecordOptions = {
  questionIds: null,
  embeddedDataIds: null,
  surveyMetadataIds: null,
  seenUnansweredRecode: null,
  multiselectSeenUnansweredRecode: null,
  includeLastModified: false,
};

function metadataValue(r: SurveyResponse, id: string): RecordValue {
  switch (id) {
    case 'startDate':
      return r.startDate;
    case 'endDate':
      return r.endDate;
    case 'status':
      return r.status;
    case 'ipAddress':
      return r.ipAddress;
    case 'progress':
      return r.progress;
    case 'duration':
      return r.duration;
    case 'finished':
      return r.finished ? 1 : 0;
    case 'recordedDate':
      return r.recordedDate;
    case '_recordId':
      return r.responseId;
    case 'recipientLastName':
      return r.recipientLastName;
    case 'recipientFirstName':
      return r.recipientFirstName;
    case 'recipientEmail':
      return r.recipientEmail;
    case 'externalDataReference':
      return r.externalDataReference;
    case 'locationLatitude':
      return r.locationLatitude;
    case 'locationLongitude':
      return r.locationLongitude;
    case 'distributionChannel':
      return r.distributionChannel;
    case 'userLanguage':
      return r.userLanguage;
    default:
      return null;
  }
}

/** Embedded-data field names exported for a survey: declared ones, then any others responses carry. */
export function embeddedFieldNames(survey: Survey, responses: readonly SurveyResponse[]): string[] {
  const names = survey.embeddedData.map((e) => e.name);
  const seen = new Set(names);
  for (const r of responses) {
    for (const k of Object.keys(r.embeddedData)) {
      if (!seen.has(k)) {
        seen.add(k);
        names.push(k);
      }
    }
  }
  return names;
}

/**
 * Builds a response record. Keys with no value are left out of `values`, as in real JSON exports; the
 * recipient fields appear only on distributed responses.
 */
export function buildResponseRecord(survey: Survey, r: SurveyResponse, opts: RecordOptions): ResponseRecord {
  const values: Record<string, RecordValue> = {};
  const labels: Record<string, string | string[]> = {};
  const metadataIds = opts.surveyMetadataIds ?? METADATA_COLUMNS.map((m) => m.id);
  for (const id of metadataIds) {
    const v = metadataValue(r, id);
    if (v !== null) values[id] = v;
  }
  if (opts.includeLastModified) values['lastModifiedDate'] = r.lastModifiedDate;
  if ('status' in values) labels['status'] = STATUS_LABELS[r.status] ?? String(r.status);
  if ('finished' in values) labels['finished'] = r.finished ? 'True' : 'False';

  const displayedFields: string[] = [];
  const displayedValues: Record<string, number[]> = {};
  const wanted = opts.questionIds ? new Set(opts.questionIds) : undefined;
  for (const q of survey.questions) {
    if (wanted && !wanted.has(q.id)) continue;
    const shown = r.displayed.includes(q.id);
    const answer = r.answers[q.id];
    if (shown) {
      displayedFields.push(q.id);
      if (q.type !== 'text') displayedValues[q.id] = q.choices.map((c) => Number(c.recode));
    }
    switch (q.type) {
      case 'single': {
        const choice = q.choices.find((c) => c.id === answer);
        if (choice) {
          values[q.id] = Number(choice.recode);
          labels[q.id] = choice.text;
        } else if (shown && opts.seenUnansweredRecode !== null) {
          values[q.id] = opts.seenUnansweredRecode;
        }
        break;
      }
      case 'multi': {
        const picked = Array.isArray(answer) ? q.choices.filter((c) => answer.includes(c.id)) : [];
        if (picked.length > 0) {
          values[q.id] = picked.map((c) => Number(c.recode));
          labels[q.id] = picked.map((c) => c.text);
        } else if (shown && opts.multiselectSeenUnansweredRecode !== null) {
          values[q.id] = [opts.multiselectSeenUnansweredRecode];
        }
        break;
      }
      case 'text':
        if (typeof answer === 'string') values[`${q.id}_TEXT`] = answer;
        break;
      case 'nps':
        if (typeof answer === 'number') {
          const g = npsGroup(answer);
          values[q.id] = answer;
          values[`${q.id}_NPS_GROUP`] = g.value;
          labels[q.id] = String(answer);
          labels[`${q.id}_NPS_GROUP`] = g.label;
        } else if (shown && opts.seenUnansweredRecode !== null) {
          values[q.id] = opts.seenUnansweredRecode;
        }
        break;
    }
    for (const c of q.choices) {
      const text = r.choiceTexts[`${q.id}_${c.id}_TEXT`];
      if (text !== undefined) values[`${q.id}_${c.id}_TEXT`] = text;
    }
  }
  const embeddedNames = opts.embeddedDataIds ?? [...survey.embeddedData.map((e) => e.name), ...Object.keys(r.embeddedData)];
  for (const name of embeddedNames) {
    const v = r.embeddedData[name] ?? survey.embeddedData.find((e) => e.name === name)?.defaultValue ?? undefined;
    if (v !== undefined && v !== null) values[name] = v;
  }
  return { responseId: r.responseId, values, labels, displayedFields, displayedValues };
}
