/**
 * Checks on the arguments of a Customer.io request, made before anything is sent: a value the API would
 * refuse, or one that would change the path it is put into, fails here as `not-applied`.
 */
import { clientErrors } from '../client-errors.ts';

const { localError } = clientErrors('customerio');

/** Person ID values are limited to 150 bytes (§2). */
const PERSON_ID_LIMIT_BYTES = 150;

/** URL-encodes a v1 path identifier after basic checks (§4.1). */
export function personPath(op: string, identifier: string): string {
  if (typeof identifier !== 'string' || identifier.trim() === '') throw localError(op, 'identifier must be a non-empty string', 'invalid_request');
  const looksLikeEmail = identifier.includes('@');
  if (!looksLikeEmail && Buffer.byteLength(identifier, 'utf8') > PERSON_ID_LIMIT_BYTES) {
    throw localError(op, `identifier is longer than ${PERSON_ID_LIMIT_BYTES} bytes`, 'invalid_request');
  }
  return encodeURIComponent(identifier);
}

export function assertSegmentId(op: string, id: number): void {
  // segment_id is an int32 in the path (§4.2).
  if (!Number.isInteger(id) || id < 0 || id > 2_147_483_647) throw localError(op, 'segment id must be a non-negative 32-bit integer', 'invalid_request');
}
