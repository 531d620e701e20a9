/**
 * Failures that stop a connector's read as a whole: a missing file or environment variable, a database
 * that refuses the connection or the query, a header that cannot be mapped. Problems confined to one row
 * are not errors: they travel as rows carrying `__error` so the rest of the source still syncs.
 */

import { UserError } from '../../core/user-error.ts';

export type ConnectorErrorCode =
  /** The connector spec or environment is incomplete (e.g. the URL variable is unset). */
  | 'config'
  /** The file does not exist or cannot be opened. */
  | 'not_found'
  /** Reading failed midway (I/O error, lost connection). */
  | 'io'
  /** The file could not be read to its end (a quote never closed, a line over the limit). */
  | 'truncated'
  /** The database rejected the query. */
  | 'query'
  /** The data cannot be read at all (e.g. duplicate CSV header names). */
  | 'format';

/** A setup or source the user can fix: the CLI prints it as a paragraph, never as a likely bug. */
export class ConnectorError extends UserError {
  override name = 'ConnectorError';
  readonly code: ConnectorErrorCode;
  /** The connector type (`postgres`, `csv`, `ndjson`). */
  readonly connector: string;
  /** The message must already be redacted: it is shown to users and written to logs. */
  constructor(connector: string, code: ConnectorErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.connector = connector;
    this.code = code;
  }
}
