/**
 * A Qualtrics response record → what tidemark does with it. Pure: no I/O, no clock; the person's
 * invitations come in as an argument.
 *
 * A response is written to Customer.io only when it ties back to an invitation tidemark recorded for that
 * person (the contact's extRef is the person id), arrived within the target's response window counted
 * from that invitation, and answers the configured question with a choice that has a reason code.
 * Everything else is counted under the first of these that applies, in this order, and never written:
 * `unknown_person` (no extRef, or no invitation of the target's for it at or before the response),
 * `late` (recorded after the latest such invitation + the response window: the guide warns late answers
 * are noisy), `no_answer` (the question was not answered), `unmapped` (an answer no reason code names).
 */

/** `responses:` of a SurveyTarget, as the spec declares it. */
export interface ResponseMapping {
  question: string;
  reason_codes: Record<string, string>;
  write: { attribute?: string; event?: string };
}

/** The parts of a response record the mapping reads (an export record or `GET …/responses/{id}`). */
export interface ResponseRecordLike {
  responseId: string;
  values: Record<string, unknown>;
}

export type MappedOutcome = 'pending' | 'unknown_person' | 'late' | 'unmapped' | 'no_answer';

export interface MappedResponse {
  response_id: string;
  /** The contact's extRef, trimmed; null when it has none. */
  person_id: string | null;
  recorded_ms: number;
  /** ISO-8601 UTC, milliseconds included. */
  recorded_at: string;
  /** The answer's recode for the question, as text; null when not answered. */
  answer: string | null;
  reason_code: string | null;
  /** `pending`: to be written. */
  outcome: MappedOutcome;
}

/**
 * Recodes Qualtrics uses for a question that was shown and not answered (the export's default
 * `seenUnansweredRecode` is -99); an absent, null or empty value is not answered either.
 */
const UNANSWERED = new Set(['-99', '']);

function text(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') return v.trim();
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return null;
}

/** When the response was recorded (epoch ms), or undefined when the record carries no readable time. */
export function recordedMs(record: ResponseRecordLike): number | undefined {
  const raw = text(record.values['recordedDate']);
  if (!raw) return undefined;
  const ms = Date.parse(raw);
  return Number.isFinite(ms) ? ms : undefined;
}

/** The answer's recode: a single choice is its recode; a multiple choice's first recode; else null. */
export function answerOf(record: ResponseRecordLike, question: string): string | null {
  const v = record.values[question];
  const first = Array.isArray(v) ? v[0] : v;
  const t = text(first);
  return t === null || UNANSWERED.has(t) ? null : t;
}

/**
 * Maps one response. `invitedMs`: the times (epoch ms) the target recorded an invitation (`held_out = 0`)
 * for the record's person; `windowMs`: the target's response window.
 */
export function mapResponse(record: ResponseRecordLike, mapping: ResponseMapping, invitedMs: readonly number[], windowMs: number): MappedResponse {
  const recorded = recordedMs(record) ?? 0;
  const person = text(record.values['externalDataReference']) || null;
  const answer = answerOf(record, mapping.question);
  const code = answer !== null && Object.hasOwn(mapping.reason_codes, answer) ? mapping.reason_codes[answer]! : null;
  const base = { response_id: record.responseId, person_id: person, recorded_ms: recorded, recorded_at: new Date(recorded).toISOString(), answer, reason_code: code };
  return { ...base, outcome: outcomeOf(person, recorded, answer, code, invitedMs, windowMs) };
}

function outcomeOf(person: string | null, recorded: number, answer: string | null, code: string | null, invitedMs: readonly number[], windowMs: number): MappedOutcome {
  if (!person) return 'unknown_person';
  const invited = latestAtOrBefore(invitedMs, recorded);
  if (invited === undefined) return 'unknown_person';
  if (isLate(invited, recorded, windowMs)) return 'late';
  if (answer === null) return 'no_answer';
  if (code === null) return 'unmapped';
  return 'pending';
}

/** The latest time in `times` at or before `ms`. */
export function latestAtOrBefore(times: readonly number[], ms: number): number | undefined {
  let best: number | undefined;
  for (const t of times) if (t <= ms && (best === undefined || t > best)) best = t;
  return best;
}

/** Recorded after the window closed: exactly at `invited + window` is still in time (the link's expiry instant). */
export function isLate(invitedMs: number, recordedMs: number, windowMs: number): boolean {
  return recordedMs > invitedMs + windowMs;
}

/** The event's data: the reason code, and where and when it came from (no answer text, no person data). */
export function eventData(reasonCode: string, survey: string, target: string, recordedAt: string): Record<string, string> {
  return { reason_code: reasonCode, survey, target, answered_at: recordedAt };
}
