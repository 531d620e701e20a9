/**
 * Customer.io wire envelopes (REFERENCE.md §3) and auth checks, in one place so every route answers with the
 * same shapes the live service uses.
 */
import type { SandboxRequest, SandboxResponse } from '../common/types.ts';

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * Live Track writes answer 200 with `content-length: 3` and body `{}` [S6]; three bytes suggests `{}` plus a
 * newline (⚠ inferred), so that is what we send.
 */
export function trackOk(): SandboxResponse {
  return { status: 200, headers: { 'content-type': JSON_TYPE }, raw: Buffer.from('{}\n', 'utf8') };
}

export function ok(json: unknown, status = 200): SandboxResponse {
  return { status, json };
}

/** Track v1 validation error: `{"meta":{"errors":["…"]}}` [S1 components.responses.400]. */
export function v1Error(status: number, messages: string[]): SandboxResponse {
  return { status, json: { meta: { errors: messages } } };
}

export interface V2Issue {
  reason: string;
  field: string;
  message: string;
}

/** Track v2 error: `{"errors":[{"reason","field","message"}]}` [S1 components.schemas.errors]. */
export function v2Error(status: number, issues: V2Issue[]): SandboxResponse {
  return { status, json: { errors: issues } };
}

/** App API error: `{"errors":[{"detail","status"}]}`, status as a string [S2]. */
export function appError(status: number, detail: string, code?: string): SandboxResponse {
  return { status, json: { errors: [{ detail, status: String(status), ...(code ? { code } : {}) }] } };
}

export const UNAUTHORIZED_MESSAGE = 'Unauthorized request. Make sure that you provided the right credentials.';

/**
 * Track 401. ⚠ No body is documented; we send the v1 error envelope with the documented description, which
 * customerio-node turns into a readable message.
 */
export function trackUnauthorized(): SandboxResponse {
  return { status: 401, headers: { 'www-authenticate': 'Basic realm="Customer.io Track API"' }, json: { meta: { errors: [UNAUTHORIZED_MESSAGE] } } };
}

export function appUnauthorized(): SandboxResponse {
  return appError(401, UNAUTHORIZED_MESSAGE, 'invalid_credentials');
}

/** `Authorization: Basic base64(site_id:api_key)`; the scheme name is case-insensitive (RFC 7235). */
export function checkBasic(req: SandboxRequest, siteId: string, apiKey: string): boolean {
  const header = req.headers.authorization;
  if (!header) return false;
  const m = /^basic\s+(\S+)\s*$/i.exec(header);
  if (!m) return false;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  return decoded === `${siteId}:${apiKey}`;
}

export function checkBearer(req: SandboxRequest, token: string): boolean {
  const header = req.headers.authorization;
  if (!header) return false;
  const m = /^bearer\s+(\S+)\s*$/i.exec(header);
  return m !== null && m[1] === token;
}

export type JsonBody = { ok: true; value: unknown } | { ok: false; message: string };

/** Parses a JSON body; an empty body is `undefined` (customerio-node sends none on GET/DELETE). */
export function readJson(req: SandboxRequest): JsonBody {
  const text = req.body.toString('utf8');
  if (text.trim() === '') return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    return { ok: false, message: `request body is not valid JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses an integer path or query value (segment ids are int32); undefined when it is not one. */
export function parseIntStrict(s: string | null | undefined): number | undefined {
  if (s === null || s === undefined || !/^-?\d+$/.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : undefined;
}
