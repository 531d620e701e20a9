/**
 * Collection paging: `result.elements` plus `result.nextPage`, a full URL carrying an opaque `skipToken`
 * (null on the last page). Tokens name the collection they belong to and the last `seq` served, so a
 * token replayed against another collection is refused instead of silently paging the wrong thing.
 */
import { ErrorCode, QualtricsApiError, invalidParam } from './envelope.ts';

export interface PageRequest {
  pageSize: number;
  afterSeq: number;
  /** Legacy `offset` (distributions): rows to skip after `afterSeq`. */
  offset: number;
}

export interface PageLimits {
  defaultSize: number;
  maxSize: number;
  /** Whether the legacy `offset` parameter is accepted. */
  allowOffset?: boolean;
}

interface TokenBody {
  c: string;
  s: number;
}

export function encodeSkipToken(collection: string, afterSeq: number): string {
  const body: TokenBody = { c: collection, s: afterSeq };
  return Buffer.from(JSON.stringify(body), 'utf8').toString('base64url');
}

export function decodeSkipToken(token: string, collection: string): number {
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw invalidParam('skipToken');
  }
  if (
    typeof body !== 'object' ||
    body === null ||
    !('c' in body) ||
    !('s' in body) ||
    body.c !== collection ||
    typeof body.s !== 'number' ||
    !Number.isInteger(body.s) ||
    body.s < 0
  ) {
    throw invalidParam('skipToken');
  }
  return body.s;
}

function readPositiveInt(url: URL, name: string): number | undefined {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return undefined;
  if (!/^\d+$/.test(raw)) throw invalidParam(name, 'expected a positive integer');
  return Number(raw);
}

export function readPageRequest(url: URL, collection: string, limits: PageLimits): PageRequest {
  const requested = readPositiveInt(url, 'pageSize');
  if (requested === 0) throw invalidParam('pageSize', 'must be at least 1');
  // Over-large page sizes are clamped rather than refused: the documented maximum is a cap on what a
  // page holds, and a client must keep following nextPage either way.
  const pageSize = Math.min(requested ?? limits.defaultSize, limits.maxSize);
  const token = url.searchParams.get('skipToken');
  const afterSeq = token ? decodeSkipToken(token, collection) : 0;
  let offset = 0;
  if (limits.allowOffset) offset = readPositiveInt(url, 'offset') ?? 0;
  return { pageSize, afterSeq, offset };
}

/** First index whose seq is greater than `afterSeq` (items sorted by seq). */
function firstAfter(items: readonly { seq: number }[], afterSeq: number): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((items[mid]?.seq ?? 0) <= afterSeq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export interface Page<T> {
  items: T[];
  /** seq of the last item served when more follow, else null. */
  nextAfterSeq: number | null;
}

export function takePage<T extends { seq: number }>(items: readonly T[], req: PageRequest): Page<T> {
  const start = firstAfter(items, req.afterSeq) + req.offset;
  const slice = items.slice(start, start + req.pageSize);
  const more = start + req.pageSize < items.length;
  const last = slice[slice.length - 1];
  return { items: slice, nextAfterSeq: more && last ? last.seq : null };
}

/** The request URL with `skipToken` replaced (and `offset` dropped: the token now carries the position). */
export function nextPageUrl(url: URL, collection: string, afterSeq: number | null): string | null {
  if (afterSeq === null) return null;
  const next = new URL(url.href);
  next.searchParams.delete('offset');
  next.searchParams.set('skipToken', encodeSkipToken(collection, afterSeq));
  return next.href;
}

/** Directory contact search stops at 10 000 rows, as documented (`BRE_0.5`). */
export const SEARCH_PAGING_LIMIT = 10_000;

export function pagingLimitError(): QualtricsApiError {
  return new QualtricsApiError(
    400,
    ErrorCode.pagingLimit,
    `Paging beyond the first ${SEARCH_PAGING_LIMIT} results is not supported; narrow the search filter.`,
  );
}
