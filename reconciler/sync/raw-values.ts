/**
 * Reading raw column values, shared by the identity readers and the field converters. Pure.
 *
 * A refusal is a `Failure` (allocated only on failure) rather than a result object per value: a million
 * rows of a dozen fields each would otherwise allocate a dozen million results that say "ok".
 */

export type Converted<T> = { ok: true; value: T } | { ok: false; code: string; reason: string };

export const fail = (code: string, reason: string): { ok: false; code: string; reason: string } => ({ ok: false, code, reason });

/** Why a value was refused, as a converter returns it (values themselves are never objects). */
export interface Failure {
  code: string;
  reason: string;
}

export const failure = (code: string, reason: string): Failure => ({ code, reason });

/** A column's own value: `values` may come from JSON, so inherited names like `constructor` must not leak in. */
export function readColumn(values: Record<string, unknown>, column: string): unknown {
  return Object.hasOwn(values, column) ? values[column] : undefined;
}

export function isBlank(value: unknown): boolean {
  if (typeof value === 'string') {
    if (value.length === 0) return true;
    // Printable ASCII other than the space is never trimmed, so most values need no trim() to tell.
    const c = value.charCodeAt(0);
    return c > 32 && c < 127 ? false : value.trim() === '';
  }
  return value === null || value === undefined;
}

function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/**
 * Whether `text` fits in `limit` UTF-8 bytes. A UTF-16 code unit takes 1 to 3 bytes (a surrogate pair,
 * two units, takes 4), so only lengths between limit/3 and limit need counting.
 */
export function fitsBytes(text: string, limit: number): boolean {
  const n = text.length;
  return n * 3 <= limit || (n <= limit && utf8Bytes(text) <= limit);
}

/**
 * An integer as plain decimal digits. `String(1e21)` is `1e+21`; BigInt prints every digit of the
 * double's exact value instead.
 */
export function integerToDecimal(n: number): string {
  return Math.abs(n) < 1e21 ? String(n === 0 ? 0 : n) : BigInt(n).toString();
}
