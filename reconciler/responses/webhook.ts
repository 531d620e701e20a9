/**
 * Verifying a Qualtrics webhook delivery, pure: the body and the clock are handed in, nothing is read or
 * written. The contract (status codes, what is refused and why) is in WEBHOOK.md beside this file.
 *
 * Qualtrics posts `application/x-www-form-urlencoded` with `Topic=<brandId>.surveyengine.completedResponse.
 * <SurveyID>`, `MSG=<JSON {Status, SurveyID, ResponseID, CompletedDate, BrandID}>` and `HMAC=<hex
 * HMAC-SHA512 of MSG keyed with the subscription's sharedKey>`. Only this signed shape is accepted: the
 * flat, unsigned one (no sharedKey) proves nothing about who sent it.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Deliveries are a few hundred bytes; anything near this is not Qualtrics. */
export const WEBHOOK_MAX_BODY_BYTES = 64 * 1024;
/**
 * The replay window: a signed delivery older than this is refused even with a good signature, so a
 * captured body cannot be replayed later. A genuine response that old is caught up by `responses pull`.
 */
export const WEBHOOK_MAX_AGE_MS = 24 * 60 * 60 * 1000;
/** Clock skew allowed for a CompletedDate ahead of our clock; further ahead is refused like a stale one. */
export const WEBHOOK_MAX_SKEW_MS = 5 * 60 * 1000;

const FORM = 'application/x-www-form-urlencoded';
const HEX_HMAC = /^[0-9a-fA-F]{128}$/;
const SURVEY_ID = /^SV_[A-Za-z0-9]+$/;
const RESPONSE_ID = /^R_[A-Za-z0-9]+$/;
const BRAND_ID = /^[A-Za-z0-9_-]+$/;
/** Qualtrics writes `2019-06-26 13:28:11` (UTC); an ISO-8601 time with a zone is read too. */
const QUALTRICS_DATE = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d+)?)(Z|[+-]\d{2}:?\d{2})?$/;

/** A verified delivery: ids only (the response itself is fetched by the sink). */
export interface WebhookDelivery {
  surveyId: string;
  responseId: string;
  brandId: string;
  /** CompletedDate as ISO-8601 UTC. */
  completedAt: string;
}

export type WebhookRefusalReason =
  | 'unsupported_media_type'
  | 'too_large'
  | 'malformed'
  | 'missing_fields'
  | 'bad_signature'
  | 'mismatch'
  | 'unknown_survey'
  | 'stale';

/** The HTTP status each refusal is answered with (WEBHOOK.md says why each). */
export const REFUSAL_STATUS: Readonly<Record<WebhookRefusalReason, number>> = {
  unsupported_media_type: 415,
  too_large: 413,
  malformed: 400,
  missing_fields: 400,
  bad_signature: 401,
  mismatch: 400,
  unknown_survey: 422,
  stale: 410,
};

export type WebhookVerification =
  | { ok: true; delivery: WebhookDelivery }
  | { ok: false; reason: WebhookRefusalReason; status: number; /** Safe to log: names fields, never values. */ message: string };

export interface WebhookVerifyOptions {
  /** The subscription's shared key. */
  sharedKey: string;
  /** The survey ids the environment's targets name; any other survey is refused. */
  surveys: ReadonlySet<string>;
  now: Date;
  /** Default WEBHOOK_MAX_AGE_MS. */
  maxAgeMs?: number;
  /** Default WEBHOOK_MAX_BODY_BYTES. */
  maxBodyBytes?: number;
}

export interface WebhookRequest {
  /** The Content-Type header as sent. */
  contentType: string | undefined;
  /** The raw body. */
  body: Uint8Array | string;
}

function refuse(reason: WebhookRefusalReason, message: string): WebhookVerification {
  return { ok: false, reason, status: REFUSAL_STATUS[reason], message };
}

/** `application/x-www-form-urlencoded`, with or without parameters (`; charset=UTF-8`), any case. */
export function isFormContentType(contentType: string | undefined): boolean {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase() === FORM;
}

/** HMAC-SHA512 of the MSG string as it arrived (after form decoding), hex. */
export function signWebhookMessage(msg: string, sharedKey: string): string {
  return createHmac('sha512', sharedKey).update(msg, 'utf8').digest('hex');
}

/** Whether `hmac` is the signature of `msg`, compared in constant time. */
export function isValidSignature(msg: string, hmac: string, sharedKey: string): boolean {
  if (!HEX_HMAC.test(hmac)) return false;
  const expected = createHmac('sha512', sharedKey).update(msg, 'utf8').digest();
  const given = Buffer.from(hmac, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** CompletedDate as epoch ms, or undefined when it is not a time. */
export function parseCompletedDate(text: string): number | undefined {
  const m = QUALTRICS_DATE.exec(text.trim());
  if (!m) return undefined;
  const zone = m[3] ?? 'Z';
  const ms = Date.parse(`${m[1]}T${m[2]}${zone.length === 5 ? `${zone.slice(0, 3)}:${zone.slice(3)}` : zone}`);
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * Checks one delivery, cheapest and most telling first: media type, size, form fields, signature (before
 * anything in MSG is trusted), then what MSG says against the Topic, the environment's surveys and the
 * replay window. Whether the response was already received is the sink's to say (see webhook-http.ts).
 */
export function verifyWebhook(req: WebhookRequest, opts: WebhookVerifyOptions): WebhookVerification {
  if (!isFormContentType(req.contentType)) return refuse('unsupported_media_type', `expected Content-Type ${FORM}`);
  const bytes = typeof req.body === 'string' ? Buffer.byteLength(req.body, 'utf8') : req.body.byteLength;
  const max = opts.maxBodyBytes ?? WEBHOOK_MAX_BODY_BYTES;
  if (bytes > max) return refuse('too_large', `the body is over ${max} bytes`);

  const text = typeof req.body === 'string' ? req.body : Buffer.from(req.body.buffer, req.body.byteOffset, req.body.byteLength).toString('utf8');
  const form = new URLSearchParams(text);
  for (const name of ['Topic', 'MSG', 'HMAC']) {
    // A field given twice could be read one way here and another way by whoever reads the form next.
    if (form.getAll(name).length > 1) return refuse('malformed', `${name} appears more than once`);
  }
  const missing = ['Topic', 'MSG', 'HMAC'].filter((n) => !form.get(n));
  if (missing.length) return refuse('missing_fields', `missing ${missing.join(', ')}`);
  const topic = form.get('Topic')!;
  const msg = form.get('MSG')!;
  const hmac = form.get('HMAC')!.trim();
  if (!isValidSignature(msg, hmac, opts.sharedKey)) return refuse('bad_signature', 'HMAC does not match MSG under the shared key');

  let parsed: unknown;
  try {
    parsed = JSON.parse(msg);
  } catch {
    return refuse('malformed', 'MSG is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return refuse('malformed', 'MSG is not a JSON object');
  const m = parsed as Record<string, unknown>;
  const fields = ['SurveyID', 'ResponseID', 'CompletedDate', 'BrandID'] as const;
  const absent = fields.filter((f) => typeof m[f] !== 'string' || m[f] === '');
  if (absent.length) return refuse('missing_fields', `MSG has no ${absent.join(', ')}`);
  const surveyId = m.SurveyID as string;
  const responseId = m.ResponseID as string;
  const brandId = m.BrandID as string;
  if (!SURVEY_ID.test(surveyId) || !RESPONSE_ID.test(responseId) || !BRAND_ID.test(brandId)) {
    return refuse('malformed', 'SurveyID, ResponseID or BrandID is not an id');
  }
  if (m.Status !== undefined && m.Status !== 'Complete') return refuse('mismatch', 'Status is not Complete');
  if (topic !== `${brandId}.surveyengine.completedResponse.${surveyId}`) {
    return refuse('mismatch', 'Topic does not name the BrandID and SurveyID that MSG carries');
  }
  if (!opts.surveys.has(surveyId)) return refuse('unknown_survey', 'the survey is not one a survey target of this environment names');

  const completed = parseCompletedDate(m.CompletedDate as string);
  if (completed === undefined) return refuse('malformed', 'CompletedDate is not a time');
  const now = opts.now.getTime();
  const maxAge = opts.maxAgeMs ?? WEBHOOK_MAX_AGE_MS;
  if (now - completed > maxAge) return refuse('stale', `CompletedDate is older than the replay window (${Math.round(maxAge / 3_600_000)}h)`);
  if (completed - now > WEBHOOK_MAX_SKEW_MS) return refuse('stale', 'CompletedDate is in the future');

  return { ok: true, delivery: { surveyId, responseId, brandId, completedAt: new Date(completed).toISOString() } };
}
