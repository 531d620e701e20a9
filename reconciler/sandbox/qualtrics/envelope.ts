/**
 * The Qualtrics v3 response envelope. Every JSON answer, errors included, is
 * `{result?, meta: {httpStatus: "<code> - <Reason>", requestId, notice?, error?}}`; errors carry
 * `meta.error.{errorMessage, errorCode}` and no `result`. File downloads are the only non-envelope bodies.
 */
import type { SandboxResponse } from '../common/types.ts';

const REASONS: Record<number, string> = {
  200: 'OK',
  202: 'Accepted',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  413: 'Request Entity Too Large',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  // Seen verbatim in a client that matches on the string (ropensci-era Python exporter).
  503: 'Temporary Internal Server Error',
};

/** `"200 - OK"`: a string, not a number, as the real API sends it. */
export function httpStatusText(status: number): string {
  return `${status} - ${REASONS[status] ?? 'Unknown'}`;
}

/**
 * Error codes. Qualtrics documents no catalogue; codes marked "observed" were seen in real traffic
 * (see the reference), the others are this emulator's choice in the same style. Clients must not
 * branch on the chosen ones; they exist so that every error carries a code, as the documented
 * error schema requires.
 */
export const ErrorCode = {
  /** observed: "Expected authorization in headers, but none provided." */
  missingAuth: 'ATP_2',
  /** observed: "Unrecognized X-API-TOKEN." */
  badToken: 'DCD_7',
  /** observed: "Unexpected json key provided: sendDate" */
  unexpectedKey: 'RP_9',
  /** observed: "Expected param not found: sendDate" */
  missingParam: 'RP_10',
  /** chosen: a present parameter with a wrong type or value ("Invalid request. Missing or invalid parameter …"). */
  invalidParam: 'RP_1',
  /** chosen: the body is not JSON, or not JSON content. */
  malformedBody: 'RP_2',
  /** observed: paging past the first 10 000 directory contacts. */
  pagingLimit: 'BRE_0.5',
  /** observed: an email distribution that resolves to nobody. */
  noRecipients: 'CP_TD_GER_NP',
  /** chosen */
  notFound: 'RP_4',
  /** chosen */
  routeNotFound: 'RP_0',
  /** chosen */
  forbidden: 'AUTH_3',
  /** chosen */
  tooLarge: 'RP_13',
  /** chosen */
  rateLimited: 'RL_1',
  /** chosen: request served through another datacenter's host where the real API refuses it. */
  wrongDatacenter: 'DC_1',
} as const;

/** Thrown by handlers for every expected failure; turned into the error envelope by the dispatcher. */
export class QualtricsApiError extends Error {
  override name = 'QualtricsApiError';

  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function badRequest(code: string, message: string): QualtricsApiError {
  return new QualtricsApiError(400, code, message);
}

export function invalidParam(name: string, why?: string): QualtricsApiError {
  return new QualtricsApiError(
    400,
    ErrorCode.invalidParam,
    `Invalid request. Missing or invalid parameter ${name}${why ? `: ${why}` : ''}.`,
  );
}

export function missingParam(name: string): QualtricsApiError {
  return new QualtricsApiError(400, ErrorCode.missingParam, `Expected param not found: ${name}`);
}

export function notFound(what: string, id: string): QualtricsApiError {
  return new QualtricsApiError(404, ErrorCode.notFound, `${what} not found: ${id}`);
}

/** What a handler produces: the status and the `result` (absent for the meta-only answers). */
export interface ApiResult {
  status: number;
  result?: unknown;
  /** Non-envelope answers (file downloads) bypass the wrapping. */
  raw?: { body: Buffer; headers: Record<string, string> };
}

export function ok(result?: unknown, status = 200): ApiResult {
  return result === undefined ? { status } : { status, result };
}

export function envelope(status: number, requestId: string, result: unknown, notice: string | undefined): SandboxResponse {
  const meta: Record<string, unknown> = { requestId, httpStatus: httpStatusText(status) };
  if (notice !== undefined) meta['notice'] = notice;
  const json: Record<string, unknown> = {};
  if (result !== undefined) json['result'] = result;
  json['meta'] = meta;
  return { status, json };
}

export function errorEnvelope(err: QualtricsApiError, requestId: string, notice: string | undefined): SandboxResponse {
  const meta: Record<string, unknown> = {
    httpStatus: httpStatusText(err.status),
    error: { errorMessage: err.message, errorCode: err.errorCode },
    requestId,
  };
  if (notice !== undefined) meta['notice'] = notice;
  const res: SandboxResponse = { status: err.status, json: { meta } };
  if (Object.keys(err.headers).length > 0) res.headers = { ...err.headers };
  return res;
}
