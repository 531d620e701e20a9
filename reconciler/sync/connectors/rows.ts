/**
 * The contract between connectors and the normaliser for rows that could not be read. A connector never
 * throws for one bad line: it yields a row whose values hold these markers, and `normalize` turns it
 * into a reject with the message as the reason. Messages must not contain row content (it may be PII).
 */
import type { SourceRow } from '../types.ts';

/** Present on a row the connector could not parse; the value is a PII-free explanation. */
export const ROW_ERROR_KEY = '__error';
/**
 * Present (true) on the last row of a read that could not continue (an unclosed quote swallowed the rest
 * of a CSV file): the source was NOT read completely, so nothing may be concluded from absent rows.
 */
export const ROW_TRUNCATED_KEY = '__truncated';

export function errorRow(location: string, message: string, options: { truncated?: boolean } = {}): SourceRow {
  const values: Record<string, unknown> = { [ROW_ERROR_KEY]: message };
  if (options.truncated) values[ROW_TRUNCATED_KEY] = true;
  return { location, values };
}
