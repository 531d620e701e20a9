/**
 * The contract between connectors and the normaliser for rows that could not be read. A connector never
 * throws for one bad line: it yields a row whose values hold these markers, and `normalize` turns it
 * into a reject with the message as the reason. Messages must not contain row content (it may be PII).
 */
import type { SourceRow } from '../types.ts';

/** Present on a row the connector could not parse; the value is a PII-free explanation. */
export const ROW_ERROR_KEY = '__error';
/** Optionally beside ROW_ERROR_KEY: the reject code (default `row_malformed`), e.g. `invalid_encoding`. */
export const ROW_CODE_KEY = '__code';

export function errorRow(location: string, message: string, code?: string): SourceRow {
  return { location, values: code ? { [ROW_ERROR_KEY]: message, [ROW_CODE_KEY]: code } : { [ROW_ERROR_KEY]: message } };
}
