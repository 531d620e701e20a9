/**
 * ULIDs: Customer.io event `id`s are "a valid ULID used to deduplicate events" (Track OpenAPI `dedupe_id`).
 */
import type { Prng } from '../../core/prng.ts';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** 26 Crockford base32 characters; the first is at most 7 because a ULID is 128 bits. Case-insensitive. */
export const ULID_PATTERN = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/i;

export function isUlid(s: string): boolean {
  return ULID_PATTERN.test(s);
}

export function makeUlid(timeMs: number, prng: Prng): string {
  let t = Math.max(0, Math.floor(timeMs));
  let time = '';
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32]! + time;
    t = Math.floor(t / 32);
  }
  let rand = '';
  for (let i = 0; i < 16; i++) rand += ALPHABET[prng.int(0, 31)]!;
  return time + rand;
}
