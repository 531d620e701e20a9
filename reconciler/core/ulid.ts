/**
 * ULIDs, the form Customer.io requires for an event's dedupe `id` (Track API §4.4: "a valid ULID used to
 * deduplicate events"). Pure: the time and the random bytes come from the caller, so the client draws
 * them from its clock and `crypto`, and the sync engine derives them from a row's key.
 */
import { createHash } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A ULID: 48-bit millisecond time + 80 random bits, Crockford base32 (26 chars). */
export function generateUlid(nowMs: number, random: Uint8Array): string {
  if (random.length < 10) throw new RangeError('a ULID needs 10 random bytes');
  let time = '';
  let t = Math.floor(nowMs);
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32]! + time;
    t = Math.floor(t / 32);
  }
  let bits = 0n;
  for (let i = 0; i < 10; i++) bits = (bits << 8n) | BigInt(random[i]!);
  let rand = '';
  for (let i = 0; i < 16; i++) {
    rand = CROCKFORD[Number(bits & 31n)]! + rand;
    bits >>= 5n;
  }
  return time + rand;
}

const ULID_PATTERN = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/i;

export function isUlid(value: string): boolean {
  return ULID_PATTERN.test(value);
}

/**
 * A ULID derived from a key: the same key and time always give the same id, so a re-run of a job (not
 * just a retry of one request) sends the same dedupe id and Customer.io ignores the repeat.
 */
export function deterministicUlid(key: string, timeMs: number): string {
  return generateUlid(timeMs, createHash('sha256').update(key, 'utf8').digest().subarray(0, 10));
}
