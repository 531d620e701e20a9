/**
 * Cron helpers shared by validation (how stale can a schedule let data get?) and the scheduler (is a
 * source due?). Pure: the reference time is always passed in.
 */
import { Cron } from 'croner';

export function parseCron(expr: string): Cron<unknown> | undefined {
  const fields = expr.trim().split(/\s+/);
  // Five fields only: seconds-level or year-level cron would be a different contract from GitHub Actions'.
  if (fields.length !== 5) return undefined;
  try {
    return new Cron(expr, { paused: true, timezone: 'UTC', mode: '5-part' } as ConstructorParameters<typeof Cron>[1]);
  } catch {
    return undefined;
  }
}

export function isValidCron(expr: string): boolean {
  return parseCron(expr) !== undefined;
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

/** Values a cron field allows, e.g. "1-5", "*\/15", "MON,WED". undefined when it does not parse. */
function fieldValues(text: string, min: number, max: number, names?: string[]): Set<number> | undefined {
  const out = new Set<number>();
  const num = (t: string) => {
    const i = names ? names.indexOf(t.toUpperCase()) : -1;
    if (i >= 0) return i + (min === 1 ? 1 : 0);
    return /^\d+$/.test(t) ? Number(t) : NaN;
  };
  for (const part of text.split(',')) {
    const [range, stepText] = part.split('/');
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!range || !Number.isInteger(step) || step < 1) return undefined;
    let lo: number;
    let hi: number;
    if (range === '*' || range === '?') {
      lo = min;
      hi = max;
    } else if (range.includes('-')) {
      const [a, b] = range.split('-');
      lo = num(a ?? '');
      hi = num(b ?? '');
    } else {
      lo = num(range);
      hi = stepText === undefined ? lo : max;
    }
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < min || hi > max || lo > hi) return undefined;
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return out;
}

interface CronSets {
  times: number[];
  months: Set<number>;
  doms: Set<number>;
  dows: Set<number>;
  domRestricted: boolean;
  dowRestricted: boolean;
}

function cronSets(expr: string): CronSets | undefined {
  if (!parseCron(expr)) return undefined;
  const [mi, ho, dm, mo, dw] = expr.trim().split(/\s+/) as [string, string, string, string, string];
  const minutes = fieldValues(mi, 0, 59);
  const hours = fieldValues(ho, 0, 23);
  const doms = fieldValues(dm, 1, 31);
  const months = fieldValues(mo, 1, 12, MONTHS);
  const dowsRaw = fieldValues(dw, 0, 7, DAYS);
  if (!minutes || !hours || !doms || !months || !dowsRaw) return undefined;
  const times = [...hours].flatMap((h) => [...minutes].map((m) => h * 60 + m)).sort((a, b) => a - b);
  if (times.length === 0) return undefined;
  return {
    times,
    months,
    doms,
    dows: new Set([...dowsRaw].map((d) => d % 7)),
    domRestricted: !/^[*?]$/.test(dm),
    dowRestricted: !/^[*?]$/.test(dw),
  };
}

function dayMatches(c: CronSets, d: Date): boolean {
  if (!c.months.has(d.getUTCMonth() + 1)) return false;
  const domOk = c.doms.has(d.getUTCDate());
  const dowOk = c.dows.has(d.getUTCDay());
  // Vixie cron: when both day fields are restricted, either may match.
  return c.domRestricted && c.dowRestricted ? domOk || dowOk : domOk && dowOk;
}

/**
 * True for a valid cron expression that names no real date (`0 4 30 2 *`: February never has a 30th), so
 * the schedule never runs. Checked over five years from a fixed date, which includes leap days: the
 * calendar repeats, so a date that does not come up in five years does not come up at all (short of a
 * 29 February in a century year, which no one schedules on purpose).
 */
export function neverFires(expr: string): boolean {
  const c = cronSets(expr);
  if (!c) return false;
  const start = Date.UTC(2028, 0, 1);
  for (let day = 0; day < 366 * 5; day++) if (dayMatches(c, new Date(start + day * 86_400_000))) return false;
  return true;
}

const gapCache = new Map<string, number | undefined>();

/**
 * The longest gap between two consecutive runs: the worst-case age of data fed by this schedule.
 * Walks four calendar years (a leap cycle) day by day instead of enumerating runs, so a per-minute
 * schedule costs the same as a monthly one. Pure and memoised.
 */
export function maxGapMs(expr: string): number | undefined {
  if (gapCache.has(expr)) return gapCache.get(expr);
  const result = computeMaxGap(expr);
  gapCache.set(expr, result);
  return result;
}

function computeMaxGap(expr: string): number | undefined {
  const c = cronSets(expr);
  if (!c) return undefined;
  const { times } = c;
  let intra = 0;
  for (let i = 1; i < times.length; i++) intra = Math.max(intra, times[i]! - times[i - 1]!);

  const MINUTE = 60_000;
  const DAY = 86_400_000;
  const start = Date.UTC(2028, 0, 1);
  let prevDay: number | undefined;
  let inter = 0;
  let matches = 0;
  for (let day = 0; day < 366 * 4 + 31; day++) {
    if (!dayMatches(c, new Date(start + day * DAY))) continue;
    matches++;
    if (prevDay !== undefined) inter = Math.max(inter, (day - prevDay) * 1440 + times[0]! - times[times.length - 1]!);
    prevDay = day;
  }
  if (matches === 0) return undefined;
  if (matches === 1) return Infinity;
  return Math.max(matches > 0 ? intra : 0, inter) * MINUTE;
}

/** The most recent scheduled time at or before `now`, or undefined if none in the last year. */
export function previousRun(expr: string, now: Date): Date | undefined {
  const cron = parseCron(expr);
  if (!cron) return undefined;
  const prev = cron.previousRuns(1, now);
  return prev[0];
}
