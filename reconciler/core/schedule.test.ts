import { describe, expect, it } from 'vitest';
import { maxGapMs, isValidCron, neverFires, previousRun } from './schedule.ts';

const H = 3_600_000;

describe('cron schedules', () => {
  it.each([
    ['15 * * * *', 1 * H],
    ['*/5 * * * *', 5 * 60_000],
    ['0 3 * * *', 24 * H],
    ['0 3,15 * * *', 12 * H],
    ['0 9 * * 1', 168 * H],
    ['0 9 * * MON-FRI', 72 * H],
    ['0 0 1 * *', 31 * 24 * H],
    ['30 4 29 2 *', undefined],
  ])('%s leaves at most the expected gap between runs', (expr, gap) => {
    const got = maxGapMs(expr);
    if (expr === '30 4 29 2 *') expect(got).toBeGreaterThan(365 * 24 * H);
    else expect(got).toBe(gap);
  });

  it('rejects what is not a 5-field cron expression', () => {
    for (const bad of ['61 * * * *', '* * *', '0 0 * * * *', 'every hour', '0 25 * * *']) expect(isValidCron(bad), bad).toBe(false);
    expect(maxGapMs('nope')).toBeUndefined();
  });

  it('knows a schedule that names no real date never fires', () => {
    for (const never of ['0 4 30 2 *', '0 0 31 4 *', '0 0 31 2,4,6,9,11 *', '0 0 30,31 FEB *']) expect(neverFires(never), never).toBe(true);
    // Rare is not never: 29 February comes every four years; with a weekday too, either day field may match.
    for (const fires of ['30 4 29 2 *', '0 0 31 * *', '0 0 30 2 1', '15 * * * *']) expect(neverFires(fires), fires).toBe(false);
    expect(neverFires('not cron')).toBe(false); // invalid is SYNC008's other message
  });

  it('finds the last scheduled time before now', () => {
    expect(previousRun('15 * * * *', new Date('2026-11-23T10:10:00Z'))?.toISOString()).toBe('2026-11-23T09:15:00.000Z');
  });
});
