/**
 * The sandbox's respondents: when a distribution is created, a share of its recipients answer it, so that
 * a later `tidemark responses pull` has something to read (issue 13).
 *
 * Deterministic, with no randomness drawn from the emulator's generator (which would shift every id the
 * sandbox makes afterwards): whether a contact answers, when, and what, are a hash of the survey, the
 * contact's extRef and the distribution's send date. About `ANSWER_SHARE` of the recipients answer, at
 * an instant spread over the link's lifetime (most soon after the send, a few near its expiry, never
 * after it), each question answered with a choice of its own (a few left unanswered).
 *
 * The responses are stored at once with their future `recordedDate`, marked `drawn`; an export shows
 * such a response only once its time has come: recorded before the export's `endDate` when the client gives one (the client's
 * clock, e.g. tidemark's `--now`), else at or before the emulator's clock (see routes/exports.ts).
 */
import { createHash } from 'node:crypto';
import type { SeededRandom } from './random.ts';
import { seedResponses, type SeedResponseInput } from './seed.ts';
import type { Distribution, QualtricsStore, Question } from './state.ts';

/** Share of a distribution's recipients who answer. */
export const ANSWER_SHARE = 0.35;
/** Share of the questions a respondent leaves unanswered. */
const UNANSWERED_SHARE = 0.06;
/** Without an expiration, answers spread over the default response window. */
const DEFAULT_SPAN_MS = 72 * 3_600_000;
const FIRST_ANSWER_MS = 10 * 60_000;

/** Uniform numbers in [0, 1) drawn from `key`: 6 bytes each. */
function uniforms(key: string, n: number): number[] {
  const out: number[] = [];
  for (let block = 0; out.length < n; block++) {
    const d = createHash('sha256').update(`${key}\0${block}`).digest();
    for (let i = 0; i + 6 <= d.length && out.length < n; i += 6) out.push(d.readUIntBE(i, 6) / 2 ** 48);
  }
  return out;
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function responseIdFor(key: string): string {
  const d = createHash('sha256').update(`response\0${key}`).digest();
  let id = 'R_';
  for (let i = 0; i < 15; i++) id += BASE62[d[i]! % 62];
  return id;
}

/** The contacts a distribution went to (opted-out ones excluded), with their extRef. */
function recipientsOf(store: QualtricsStore, d: Distribution): Array<{ contactId: string; extRef: string }> {
  const contactIds: string[] = [];
  const r = d.recipients;
  if (r.transactionBatchId) {
    for (const tid of store.batches.get(r.transactionBatchId)?.transactionIds ?? []) {
      const tx = store.transactions.get(tid);
      const m = tx ? store.membershipFor(tx.mailingListId, tx.contactId) : undefined;
      if (tx && m && !m.unsubscribed) contactIds.push(tx.contactId);
    }
  } else if (r.mailingListId) {
    for (const m of store.membersOf(r.mailingListId)) {
      if (r.contactId && m.contactLookupId !== r.contactId) continue;
      if (!m.unsubscribed) contactIds.push(m.contactId);
    }
  }
  const out: Array<{ contactId: string; extRef: string }> = [];
  for (const id of new Set(contactIds)) {
    const c = store.contacts.get(id);
    // An email that bounced was never read, so nobody answers it.
    if (c && !c.directoryUnsubscribed && c.bouncedDate === null && c.extRef) out.push({ contactId: id, extRef: c.extRef });
  }
  return out;
}

function answerFor(q: Question, u: number): string | number | string[] | undefined {
  switch (q.type) {
    case 'single':
      return q.choices.length ? q.choices[Math.floor(u * q.choices.length)]!.id : undefined;
    case 'multi':
      return q.choices.length ? [q.choices[Math.floor(u * q.choices.length)]!.id] : undefined;
    case 'nps':
      return Math.floor(u * 11);
    case 'text':
      return undefined;
  }
}

/** The responses a distribution draws (none when its survey is gone). Stored by `answerDistribution`. */
export function plannedAnswers(store: QualtricsStore, d: Distribution): SeedResponseInput[] {
  const survey = store.surveys.get(d.surveyLink.surveyId);
  if (!survey) return [];
  const sendMs = Date.parse(d.sendDate);
  const expires = d.surveyLink.expirationDate ? Date.parse(d.surveyLink.expirationDate) : sendMs + DEFAULT_SPAN_MS;
  const span = Math.max(FIRST_ANSWER_MS, Math.floor((expires - sendMs) * 0.95));
  const out: SeedResponseInput[] = [];
  for (const c of recipientsOf(store, d)) {
    const key = `${survey.id}\0${c.extRef}\0${d.sendDate}`;
    const responseId = responseIdFor(key);
    if (store.responses.has(responseId)) continue;
    const [answers, when, ...perQuestion] = uniforms(key, 2 + 2 * survey.questions.length);
    if (answers! >= ANSWER_SHARE) continue;
    // Squared: most answers come soon after the invitation, fewer as the link ages.
    const recorded = sendMs + FIRST_ANSWER_MS + Math.floor(when! * when! * (span - FIRST_ANSWER_MS));
    const values: Record<string, string | number | string[]> = {};
    survey.questions.forEach((q, i) => {
      if (perQuestion[2 * i]! < UNANSWERED_SHARE) return;
      const a = answerFor(q, perQuestion[2 * i + 1]!);
      if (a !== undefined) values[q.id] = a;
    });
    out.push({
      responseId,
      recordedDate: new Date(recorded).toISOString(),
      duration: 30 + Math.floor(when! * 150),
      distributionId: d.id,
      contactId: c.contactId,
      values,
      displayed: survey.questions.map((q) => q.id),
    });
  }
  return out;
}

/** Stores the answers a new distribution draws; resolves to how many. */
export function answerDistribution(store: QualtricsStore, rng: SeededRandom, d: Distribution): number {
  const planned = plannedAnswers(store, d);
  if (planned.length) for (const r of seedResponses(store, rng, d.surveyLink.surveyId, planned)) r.drawn = true;
  return planned.length;
}
