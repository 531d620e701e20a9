import { randomBytes } from 'node:crypto';
import type { Clock } from '../core/clock.ts';

let counter = 0;

/**
 * A new opaque id that sorts by creation time: clock milliseconds, then a per-process counter (so ids
 * made within one millisecond, or under a fixed test clock, still sort in creation order), then random
 * bits (so two processes never collide).
 */
export function newId(clock: Clock): string {
  counter = (counter + 1) % 36 ** 6;
  const ms = Math.max(0, clock.now().getTime());
  return `${ms.toString(36).padStart(9, '0')}${counter.toString(36).padStart(6, '0')}${randomBytes(5).toString('hex')}`;
}
