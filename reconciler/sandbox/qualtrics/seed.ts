/**
 * Seeding inputs: surveys and their responses cannot be created through the public API (surveys are
 * built in the Qualtrics UI, responses come from respondents), so tests and the admin route put them in
 * directly. The same schemas serve the in-process methods and `POST /__sandbox/qualtrics/...`.
 */
import { z } from 'zod';
import { parseIsoDateTime } from './body.ts';
import type { SeededRandom } from './random.ts';
import type { Answer, DedupCriteria, Directory, QualtricsStore, Question, Survey, SurveyResponse } from './state.ts';

const isoDateTime = z.string().refine((s) => parseIsoDateTime(s) !== undefined, {
  message: 'expected an ISO-8601 date-time with zone, e.g. 2024-07-08T16:00:23Z',
});

const choiceInput = z.union([z.string(), z.object({ text: z.string(), recode: z.string().optional() })]);

export const seedQuestionSchema = z.object({
  /** `QID<n>`; defaults to `QID<position>`. */
  id: z.string().regex(/^QID\d+$/).optional(),
  /** CSV column name; defaults to `Q<n>` from the id. */
  exportTag: z.string().min(1).optional(),
  text: z.string(),
  /** single: one choice (MC/SAVR) · multi: several (MC/MAVR) · text: text entry (TE/SL) · nps: 0–10 (MC/NPS). */
  type: z.enum(['single', 'multi', 'text', 'nps']),
  forceResponse: z.boolean().optional(),
  /** Choice id → text (or text + recode). An array numbers the choices from 1. Not used by text and nps. */
  choices: z.union([z.array(choiceInput), z.record(z.string(), choiceInput)]).optional(),
});

export const seedSurveySchema = z.object({
  id: z.string().regex(/^SV_\w+$/).optional(),
  name: z.string().min(1),
  isActive: z.boolean().optional(),
  ownerId: z.string().optional(),
  creationDate: isoDateTime.optional(),
  lastModifiedDate: isoDateTime.optional(),
  expiration: z.object({ startDate: isoDateTime.nullable().optional(), endDate: isoDateTime.nullable().optional() }).optional(),
  questions: z.array(seedQuestionSchema).optional(),
  /** Embedded data fields declared in the survey flow. */
  embeddedData: z.array(z.union([z.string(), z.object({ name: z.string(), defaultValue: z.string().nullable().optional() })])).optional(),
});
export type SeedSurveyInput = z.input<typeof seedSurveySchema>;

export const seedResponseSchema = z.object({
  responseId: z.string().regex(/^R_\w+$/).optional(),
  /** When the response was recorded; export date filters apply to this. */
  recordedDate: isoDateTime,
  startDate: isoDateTime.optional(),
  endDate: isoDateTime.optional(),
  /** Seconds; defaults to endDate − startDate. */
  duration: z.number().int().nonnegative().optional(),
  finished: z.boolean().optional(),
  progress: z.number().int().min(0).max(100).optional(),
  /** 0 normal (IP Address), 1 preview, 2 test, 4 imported, 16 offline, 256 synthetic. */
  status: z.number().int().optional(),
  ipAddress: z.string().nullable().optional(),
  locationLatitude: z.string().nullable().optional(),
  locationLongitude: z.string().nullable().optional(),
  /** Defaults to `email` when the response came from a distribution or a recipient, else `anonymous`. */
  distributionChannel: z.string().optional(),
  userLanguage: z.string().optional(),
  distributionId: z.string().regex(/^(EMD|SMSD)_\w+$/).optional(),
  /** A directory contact (CID_); fills in the recipient fields it does not set explicitly. */
  contactId: z.string().regex(/^CID_\w+$/).optional(),
  recipient: z
    .object({
      email: z.string().optional(),
      firstName: z.string().optional(),
      lastName: z.string().optional(),
      externalDataReference: z.string().optional(),
    })
    .optional(),
  /**
   * Answers keyed by QID: a choice id for single (number or string), an array of choice ids for multi,
   * a string for text, an integer 0–10 for nps.
   */
  values: z.record(z.string(), z.union([z.string(), z.number(), z.array(z.union([z.string(), z.number()]))])).optional(),
  /** Text typed into a choice's text box, keyed `QID<n>_<choiceId>_TEXT`. */
  choiceTexts: z.record(z.string(), z.string()).optional(),
  /** QIDs shown to the respondent; defaults to the answered ones. */
  displayed: z.array(z.string()).optional(),
  embeddedData: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
});
export type SeedResponseInput = z.input<typeof seedResponseSchema>;

export const seedDirectorySchema = z.object({
  directoryId: z.string().regex(/^POOL_\w+$/).optional(),
  name: z.string().nullable().optional(),
  isDefault: z.boolean().optional(),
  deduplicationCriteria: z
    .object({
      email: z.boolean().optional(),
      firstName: z.boolean().optional(),
      lastName: z.boolean().optional(),
      externalDataReference: z.boolean().optional(),
      phone: z.boolean().optional(),
    })
    .optional(),
});
export type SeedDirectoryInput = z.input<typeof seedDirectorySchema>;

/** A seeding input that does not fit the survey or the store; the message names the offending field. */
export class SeedError extends Error {
  override name = 'SeedError';
}

function parseWith<T extends z.ZodType>(schema: T, input: unknown, what: string): z.output<T> {
  const r = schema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new SeedError(`${what}: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'}`);
  }
  return r.data;
}

function buildQuestion(q: z.output<typeof seedQuestionSchema>, position: number): Question {
  const id = q.id ?? `QID${position}`;
  const exportTag = q.exportTag ?? `Q${id.slice(3)}`;
  let choices: Question['choices'] = [];
  if (q.type === 'nps') {
    choices = Array.from({ length: 11 }, (_, i) => ({ id: String(i), text: String(i), recode: String(i) }));
  } else if (q.type !== 'text') {
    if (!q.choices) throw new SeedError(`question ${id}: choices are required for ${q.type} questions`);
    const entries: [string, z.output<typeof choiceInput>][] = Array.isArray(q.choices)
      ? q.choices.map((c, i) => [String(i + 1), c])
      : Object.entries(q.choices);
    if (entries.length === 0) throw new SeedError(`question ${id}: at least one choice is required`);
    choices = entries.map(([cid, c]) => {
      if (!/^\d+$/.test(cid)) throw new SeedError(`question ${id}: choice ids are numbers, got ${cid}`);
      return typeof c === 'string' ? { id: cid, text: c, recode: cid } : { id: cid, text: c.text, recode: c.recode ?? cid };
    });
    for (const c of choices) {
      if (!/^-?\d+$/.test(c.recode)) throw new SeedError(`question ${id}: recode values are integers, got ${c.recode}`);
    }
  }
  return { id, exportTag, text: q.text, type: q.type, forceResponse: q.forceResponse ?? false, choices };
}

export function seedSurvey(store: QualtricsStore, rng: SeededRandom, now: Date, raw: unknown): Survey {
  const input = parseWith(seedSurveySchema, raw, 'survey');
  const id = input.id ?? rng.id('SV');
  if (store.surveys.has(id)) throw new SeedError(`survey ${id} already exists`);
  const questions = (input.questions ?? []).map((q, i) => buildQuestion(q, i + 1));
  const seen = new Set<string>();
  for (const q of questions) {
    if (seen.has(q.id)) throw new SeedError(`question ${q.id} is declared twice`);
    seen.add(q.id);
  }
  const nowIso = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const survey: Survey = {
    seq: store.nextSeq(),
    id,
    name: input.name,
    ownerId: input.ownerId ?? store.config.userId,
    isActive: input.isActive ?? true,
    creationDate: input.creationDate ?? nowIso,
    lastModifiedDate: input.lastModifiedDate ?? input.creationDate ?? nowIso,
    expiration: { startDate: input.expiration?.startDate ?? null, endDate: input.expiration?.endDate ?? null },
    questions,
    embeddedData: (input.embeddedData ?? []).map((e) =>
      typeof e === 'string' ? { name: e, defaultValue: null } : { name: e.name, defaultValue: e.defaultValue ?? null },
    ),
  };
  store.surveys.set(id, survey);
  return survey;
}

const embeddedFieldInput = z.union([z.string().min(1), z.object({ name: z.string().min(1), defaultValue: z.string().nullable().optional() })]);

/**
 * What someone editing the survey flow in the Qualtrics UI does to its embedded data (the API cannot):
 * rename fields (the position and any value stay), remove them, add new ones. Applied in that order.
 */
export const embeddedDataEditSchema = z
  .object({
    /** Old name → new name. */
    rename: z.record(z.string().min(1), z.string().min(1)).optional(),
    remove: z.array(z.string().min(1)).optional(),
    add: z.array(embeddedFieldInput).optional(),
  })
  .strict();
export type EmbeddedDataEditInput = z.input<typeof embeddedDataEditSchema>;

/** Edits a survey's embedded-data fields; names are matched exactly (Qualtrics keeps the case it was given). */
export function editEmbeddedData(store: QualtricsStore, now: Date, surveyId: string, raw: unknown): Survey {
  const survey = store.surveys.get(surveyId);
  if (!survey) throw new SeedError(`survey ${surveyId} does not exist`);
  const edit = parseWith(embeddedDataEditSchema, raw, 'embedded data edit');
  // Work on a copy so a bad edit leaves the survey as it was.
  let fields = survey.embeddedData.map((e) => ({ ...e }));
  const has = (name: string) => fields.some((e) => e.name === name);
  for (const [from, to] of Object.entries(edit.rename ?? {})) {
    if (!has(from)) throw new SeedError(`survey ${surveyId} has no embedded data field ${from}`);
    if (from !== to && has(to)) throw new SeedError(`survey ${surveyId} already has an embedded data field ${to}`);
    fields = fields.map((e) => (e.name === from ? { ...e, name: to } : e));
  }
  for (const name of edit.remove ?? []) {
    if (!has(name)) throw new SeedError(`survey ${surveyId} has no embedded data field ${name}`);
    fields = fields.filter((e) => e.name !== name);
  }
  for (const e of edit.add ?? []) {
    const field = typeof e === 'string' ? { name: e, defaultValue: null } : { name: e.name, defaultValue: e.defaultValue ?? null };
    if (has(field.name)) throw new SeedError(`survey ${surveyId} already has an embedded data field ${field.name}`);
    fields.push(field);
  }
  survey.embeddedData = fields;
  survey.lastModifiedDate = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return survey;
}

function normaliseAnswer(q: Question, value: unknown): Answer {
  const choiceIds = new Set(q.choices.map((c) => c.id));
  switch (q.type) {
    case 'single': {
      const id = String(value);
      if ((typeof value !== 'string' && typeof value !== 'number') || !choiceIds.has(id)) {
        throw new SeedError(`${q.id}: ${String(value)} is not one of its choices`);
      }
      return id;
    }
    case 'multi': {
      if (!Array.isArray(value)) throw new SeedError(`${q.id}: a multi-answer question takes an array of choice ids`);
      const ids = value.map(String);
      for (const id of ids) if (!choiceIds.has(id)) throw new SeedError(`${q.id}: ${id} is not one of its choices`);
      return ids;
    }
    case 'text':
      if (typeof value !== 'string') throw new SeedError(`${q.id}: a text question takes a string`);
      return value;
    case 'nps':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 10) {
        throw new SeedError(`${q.id}: an NPS question takes an integer 0–10`);
      }
      return value;
  }
}

export function seedResponses(
  store: QualtricsStore,
  rng: SeededRandom,
  surveyId: string,
  raws: readonly unknown[],
): SurveyResponse[] {
  const survey = store.surveys.get(surveyId);
  if (!survey) throw new SeedError(`survey ${surveyId} does not exist`);
  const questions = new Map(survey.questions.map((q) => [q.id, q]));
  // Validate everything before storing anything, so a bad batch leaves no partial state.
  const built = raws.map((raw, i) => {
    const r = parseWith(seedResponseSchema, raw, `responses[${i}]`);
    const responseId = r.responseId ?? rng.id('R');
    if (store.responses.has(responseId)) throw new SeedError(`response ${responseId} already exists`);
    const answers: Record<string, Answer> = {};
    for (const [qid, value] of Object.entries(r.values ?? {})) {
      const q = questions.get(qid);
      if (!q) throw new SeedError(`responses[${i}]: survey ${surveyId} has no question ${qid}`);
      answers[qid] = normaliseAnswer(q, value);
    }
    for (const key of Object.keys(r.choiceTexts ?? {})) {
      const m = /^(QID\d+)_(\d+)_TEXT$/.exec(key);
      if (!m || !questions.get(m[1] ?? '')?.choices.some((c) => c.id === m[2])) {
        throw new SeedError(`responses[${i}]: ${key} does not name a choice of this survey`);
      }
    }
    const displayed = r.displayed ?? Object.keys(answers);
    for (const qid of displayed) {
      if (!questions.has(qid)) throw new SeedError(`responses[${i}]: displayed ${qid} is not a question of this survey`);
    }
    const contact = r.contactId ? store.contacts.get(r.contactId) : undefined;
    if (r.contactId && !contact) throw new SeedError(`responses[${i}]: contact ${r.contactId} does not exist`);
    if (r.distributionId && !store.distributions.has(r.distributionId)) {
      throw new SeedError(`responses[${i}]: distribution ${r.distributionId} does not exist`);
    }
    const recordedMs = parseIsoDateTime(r.recordedDate) ?? 0;
    const endMs = r.endDate ? (parseIsoDateTime(r.endDate) ?? recordedMs) : recordedMs;
    const startMs = r.startDate ? (parseIsoDateTime(r.startDate) ?? endMs) : endMs - (r.duration ?? 60) * 1000;
    if (startMs > endMs) throw new SeedError(`responses[${i}]: startDate is after endDate`);
    const recipientEmail = r.recipient?.email ?? contact?.email ?? null;
    const recipientFirstName = r.recipient?.firstName ?? contact?.firstName ?? null;
    const recipientLastName = r.recipient?.lastName ?? contact?.lastName ?? null;
    const externalDataReference = r.recipient?.externalDataReference ?? contact?.extRef ?? null;
    const distributed = Boolean(r.distributionId || contact || r.recipient);
    const finished = r.finished ?? true;
    const embeddedData: Record<string, string> = {};
    for (const [k, v] of Object.entries(r.embeddedData ?? {})) embeddedData[k] = String(v);
    const response: SurveyResponse = {
      seq: 0,
      responseId,
      surveyId,
      startDate: new Date(startMs).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      endDate: new Date(endMs).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      recordedDate: new Date(recordedMs).toISOString(),
      lastModifiedDate: new Date(recordedMs).toISOString(),
      status: r.status ?? 0,
      finished,
      progress: r.progress ?? (finished ? 100 : 50),
      duration: r.duration ?? Math.round((endMs - startMs) / 1000),
      ipAddress: r.ipAddress === undefined ? null : r.ipAddress,
      locationLatitude: r.locationLatitude ?? null,
      locationLongitude: r.locationLongitude ?? null,
      distributionChannel: r.distributionChannel ?? (distributed ? 'email' : 'anonymous'),
      userLanguage: r.userLanguage ?? 'EN',
      distributionId: r.distributionId ?? null,
      contactId: r.contactId ?? null,
      recipientEmail,
      recipientFirstName,
      recipientLastName,
      externalDataReference,
      answers,
      choiceTexts: { ...(r.choiceTexts ?? {}) },
      displayed,
      embeddedData,
    };
    return response;
  });
  const seen = new Set<string>();
  for (const r of built) {
    if (seen.has(r.responseId)) throw new SeedError(`response ${r.responseId} is given twice`);
    seen.add(r.responseId);
  }
  for (const r of built) {
    r.seq = store.nextSeq();
    store.addResponse(r);
  }
  return built;
}

const DEFAULT_DEDUP: DedupCriteria = {
  email: true,
  firstName: false,
  lastName: false,
  externalDataReference: false,
  phone: false,
};

export function seedDirectory(store: QualtricsStore, rng: SeededRandom, raw: unknown): Directory {
  const input = parseWith(seedDirectorySchema, raw ?? {}, 'directory');
  const directoryId = input.directoryId ?? rng.id('POOL');
  if (store.directories.has(directoryId)) throw new SeedError(`directory ${directoryId} already exists`);
  // Brands get up to 5 directories by default (20 on some licences).
  if (store.directories.size >= 20) throw new SeedError('a brand has at most 20 directories');
  const isDefault = input.isDefault ?? store.directories.size === 0;
  if (isDefault) for (const d of store.directories.values()) d.isDefault = false;
  const directory: Directory = {
    seq: store.nextSeq(),
    directoryId,
    name: input.name ?? null,
    isDefault,
    deduplicationCriteria: { ...DEFAULT_DEDUP, ...input.deduplicationCriteria },
  };
  store.directories.set(directoryId, directory);
  return directory;
}
