/**
 * The holdout: a deterministic share of each target's eligible people who are never surveyed by it, so
 * the effect of acting on the answers can be measured against them. Pure: no clock, no state; the same
 * identifier and target always give the same answer, so a person is always in or always out.
 */
import { createHash } from 'node:crypto';

/**
 * The position of (target, identifier) in [0, 1): the first 52 bits of sha256(`${target}\0${identifier}`).
 * The target is part of the hash so one person is not held out of every survey at once; the NUL keeps
 * ("ab", "c") and ("a", "bc") apart. 52 bits fit a double exactly.
 */
export function holdoutPosition(identifier: string, target: string): number {
  const digest = createHash('sha256').update(target).update('\0').update(identifier).digest();
  const high = digest.readUIntBE(0, 6); // 48 bits
  const low = digest[6]! >> 4; // 4 more
  return (high * 16 + low) / 2 ** 52;
}

/** Whether this person is in the target's holdout. `share` is a fraction in [0, 1] (10% → 0.1). */
export function inHoldout(identifier: string, target: string, share: number): boolean {
  if (!(share > 0)) return false;
  return holdoutPosition(identifier, target) < share;
}

/** `10%` → 0.1; undefined → 0 (no holdout). */
export function holdoutShare(percentage: string | undefined): number {
  if (percentage === undefined) return 0;
  const n = Number(percentage.replace('%', ''));
  return Number.isFinite(n) ? Math.min(1, Math.max(0, n / 100)) : 0;
}
