/**
 * Durations in specs are written the way operators say them: `90s`, `15m`, `2h`, `7d`, `2w`.
 * Kept as strings in the spec (so diagnostics can quote what the user wrote) and parsed here.
 */

const UNIT_MS: Record<string, number> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

export const DURATION_PATTERN = /^(\d+(?:\.\d+)?)(s|m|h|d|w)$/;

export function parseDuration(text: string): number | undefined {
  const m = DURATION_PATTERN.exec(text.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * UNIT_MS[m[2]!]!);
}

export function formatDuration(ms: number): string {
  for (const [unit, size] of [['w', UNIT_MS.w!], ['d', UNIT_MS.d!], ['h', UNIT_MS.h!], ['m', UNIT_MS.m!]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${Math.round(ms / 1000)}s`;
}

export const HOUR_MS = UNIT_MS.h!;
export const DAY_MS = UNIT_MS.d!;
