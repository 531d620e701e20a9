/**
 * A small seeded pseudo-random generator (mulberry32). Fault injection and emulator-side randomness draw from
 * it (and the sandbox world's generator) so a test that passes a seed sees the same sequence of decisions on every run. Not for anything secret.
 */
export interface Prng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [min, max] (both inclusive). */
  int(min: number, max: number): number;
  /** True with probability `p` (0..1). Draws nothing when p is 0 or 1, so unused faults don't shift the sequence. */
  chance(p: number): boolean;
  /** `length` lowercase hex characters. */
  hex(length: number): string;
  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T;
}

/** Pure: the caller chooses the seed (the sandbox draws one when a run did not ask for determinism). */
export function createPrng(seed: number): Prng {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  };
  return {
    next,
    int(min, max) {
      return min + Math.floor(next() * (max - min + 1));
    },
    chance(p) {
      if (p <= 0) return false;
      if (p >= 1) return true;
      return next() < p;
    },
    hex(length) {
      let out = '';
      while (out.length < length) out += Math.floor(next() * 0x1_0000_0000).toString(16).padStart(8, '0');
      return out.slice(0, length);
    },
    pick(items) {
      if (items.length === 0) throw new RangeError('pick from an empty array');
      return items[Math.floor(next() * items.length)]!;
    },
  };
}
