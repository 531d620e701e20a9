/** A seed for sandbox runs that did not ask for determinism (the PRNG itself is pure, in core/prng.ts). */
export function randomSeed(): number {
  return Math.floor(Math.random() * 0x1_0000_0000) >>> 0;
}
