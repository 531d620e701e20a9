/**
 * Cursor paging, as both services do it: each answer names where the next page starts (Customer.io a
 * `next` cursor, Qualtrics a `nextPage` link or token) until one names none. A service that hands back
 * a cursor it gave before would keep us reading the same pages forever, so that fails instead.
 */

/**
 * Yields each page as soon as it is read; `nextOf` is asked only when the caller wants the next page, so
 * a caller that stops early never triggers its checks.
 */
export async function* followPages<P>(
  fetchPage: (cursor: string | undefined) => Promise<P>,
  nextOf: (page: P) => string | undefined,
  repeated: () => Error,
): AsyncGenerator<P> {
  const seen = new Set<string>();
  let cursor: string | undefined;
  for (;;) {
    const page = await fetchPage(cursor);
    yield page;
    const next = nextOf(page);
    if (next === undefined) return;
    if (seen.has(next)) throw repeated();
    seen.add(next);
    cursor = next;
  }
}
