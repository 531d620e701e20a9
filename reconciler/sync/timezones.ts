/**
 * Source timestamps to UTC instants. Pure: no clock, no I/O.
 *
 * Accepted inputs, and how each is read:
 * - ISO-8601 with an offset or `Z` (`2026-03-08T07:30:00Z`, `2026-03-08 02:30:00-05`, `…+05:30`): the
 *   instant as given; the source timezone plays no part. Postgres' text form of `timestamptz` is one of these.
 * - Naive date-times (`YYYY-MM-DD HH:mm`, `YYYY-MM-DDTHH:mm:ss.SSS`, …): a wall-clock time in the source's
 *   declared IANA timezone. Without a declared timezone they are refused (`timezone_missing`): guessing UTC
 *   silently shifts every window by hours.
 * - Dates (`YYYY-MM-DD`): midnight local time in the source timezone.
 * - Numbers (and strings of at least 9 digits): epoch time. Magnitudes below 1e11 are seconds, the rest
 *   milliseconds. 1e11 seconds is the year 5138 and 1e11 milliseconds is 1973-03-03, so the only values
 *   misread are millisecond timestamps before March 1973. Shorter digit strings (`2026`, `20260308`) are
 *   refused: they are far more likely a year or a compact date than an epoch in 1970.
 * - JS `Date` objects (from drivers): the instant they hold.
 * Fractions below a millisecond are truncated.
 *
 * Daylight-saving transitions make some wall-clock times special, and both cases are resolved
 * deliberately, with a note for the run report:
 * - A nonexistent local time (the spring-forward gap, e.g. 2026-03-08 02:30 in America/New_York) is
 *   shifted forward by the length of the gap: 02:30 becomes 03:30 EDT (07:30Z). The writer almost certainly
 *   meant "30 minutes after 02:00", and the clock read 03:30 at that moment.
 * - An ambiguous local time (the fall-back overlap, e.g. 2026-11-01 01:30 in America/New_York, which
 *   happens twice) resolves to the EARLIER instant (01:30 EDT = 05:30Z, not 01:30 EST = 06:30Z). Ordering
 *   is latest-timestamp-wins, so picking the earlier reading can never let an older row beat a newer one
 *   that was read unambiguously; and a window like "within the last 7 days" errs towards excluding.
 *
 * Zone offsets come from the platform's tz database through one cached Intl.DateTimeFormat per zone,
 * with offsets cached per hour: a run converts every row, and building luxon DateTimes per value cost
 * about 50 times more. The tests check the results against luxon's readings of the same wall times.
 */

/** A successfully read instant: epoch milliseconds, plus a note when a DST rule was applied. */
export interface InstantOk {
  ok: true;
  ms: number;
  note?: string;
}

export interface InstantError {
  ok: false;
  code: 'timestamp_invalid' | 'timezone_missing' | 'timezone_invalid';
  /** Why, without the value itself (the caller names the column). */
  reason: string;
}

export type InstantResult = InstantOk | InstantError;

/** Epoch magnitudes below this are seconds, at or above it milliseconds (see the module comment). */
export const EPOCH_SECONDS_CUTOFF = 1e11;

// ECMAScript's Date range; anything outside cannot be represented or sent.
const MAX_EPOCH_MS = 8.64e15;

const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(?:([Zz])|([+-])(\d{2})(?::?(\d{2})(?::?(\d{2}))?)?)?$/;
const EPOCH_STRING = /^-?\d{9,}(?:\.\d+)?$/;

const invalid = (reason: string): InstantError => ({ ok: false, code: 'timestamp_invalid', reason });

function isDate(value: unknown): value is Date {
  // A tag check rather than instanceof: an object that merely inherits Date.prototype has no time value.
  return Object.prototype.toString.call(value) === '[object Date]';
}

function fromEpoch(n: number): InstantResult {
  if (!Number.isFinite(n)) return invalid('is not a finite number');
  const ms = Math.abs(n) < EPOCH_SECONDS_CUTOFF ? Math.round(n * 1000) : Math.floor(n);
  if (Math.abs(ms) > MAX_EPOCH_MS) return invalid('is outside the representable date range');
  return { ok: true, ms };
}

/**
 * Reads a timestamp value as an instant. `timezone` is the source's declared IANA zone for naive values;
 * it is only consulted when the value carries no offset.
 */
export function toInstant(value: unknown, timezone: string | undefined): InstantResult {
  if (typeof value === 'number') return fromEpoch(value);
  if (typeof value === 'bigint') return fromEpoch(Number(value));
  if (isDate(value)) {
    const ms = value.getTime();
    return Number.isNaN(ms) ? invalid('is an invalid date') : { ok: true, ms };
  }
  if (typeof value !== 'string') return invalid('is not a timestamp (expected an ISO-8601 string, a date, or epoch seconds/milliseconds)');
  const text = value.trim();
  if (EPOCH_STRING.test(text)) return fromEpoch(Number(text));
  const m = DATE_TIME.exec(text);
  if (!m) return invalid('is not a recognised timestamp format (use ISO-8601, e.g. 2026-03-08T14:30:00Z)');
  const [, y, mo, d, h, mi, s, frac, zulu, sign, oh, om, os] = m;
  const hasTime = h !== undefined;
  const hasOffset = zulu !== undefined || sign !== undefined;
  if (hasOffset && !hasTime) return invalid('has an offset but no time of day');
  // Truncate the fraction to milliseconds: '123456' → 123.
  const millis = frac !== undefined ? Number(frac.slice(0, 3).padEnd(3, '0')) : 0;
  const wall = wallClockMs(Number(y), Number(mo), Number(d), hasTime ? Number(h) : 0, hasTime ? Number(mi) : 0, s !== undefined ? Number(s) : 0, millis);
  if (wall === undefined) return invalid('is not a valid calendar date or time');

  if (hasOffset) {
    if (sign === undefined) return { ok: true, ms: wall };
    const [hh, mm, ss] = [Number(oh), Number(om ?? 0), Number(os ?? 0)];
    if (hh > 23 || mm > 59 || ss > 59) return invalid('has an invalid UTC offset');
    return { ok: true, ms: wall - (sign === '-' ? -1 : 1) * (hh * 3600 + mm * 60 + ss) * 1000 };
  }

  if (timezone === undefined || timezone === '') {
    return { ok: false, code: 'timezone_missing', reason: 'has no UTC offset and the source declares no timezone' };
  }
  const zone = zoneFormatter(timezone);
  if (!zone) return { ok: false, code: 'timezone_invalid', reason: `cannot be read: the source timezone "${timezone}" is not a known IANA zone` };
  return fromLocal(wall, zone, timezone);
}

/**
 * The wall-clock reading as if it were UTC, in milliseconds; undefined for an impossible calendar value
 * (Feb 30, 25:00, second 60). Years below 100 are set explicitly: Date.UTC would read them as 19xx.
 */
function wallClockMs(y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number): number | undefined {
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59) return undefined;
  const date = new Date(Date.UTC(2000, mo - 1, d, h, mi, s, ms));
  date.setUTCFullYear(y);
  if (date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d) return undefined;
  return date.getTime();
}

// One formatter per zone: creating an Intl.DateTimeFormat costs far more than using one, and a run
// converts every row with the same zone. `null` remembers a zone Intl does not know.
const formatters = new Map<string, Intl.DateTimeFormat | null>();

function zoneFormatter(zone: string): Intl.DateTimeFormat | null {
  let f = formatters.get(zone);
  if (f === undefined) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone: zone,
        hourCycle: 'h23',
        era: 'short',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
    } catch {
      f = null;
    }
    formatters.set(zone, f);
  }
  return f;
}

const HOUR_MS = 3_600_000;
const MAX_CACHED_HOURS = 100_000;
// Per zone: hour bucket → the offset, for hours whose offset is the same at both ends (no transition
// inside; zones never change twice within an hour). Rows of one run cluster in time, so most
// conversions hit the cache instead of formatting dates.
const offsetCache = new Map<Intl.DateTimeFormat, Map<number, number>>();

/** The zone's UTC offset at instant `t`, in milliseconds (east positive). */
function offsetAt(zone: Intl.DateTimeFormat, t: number): number {
  let cache = offsetCache.get(zone);
  if (!cache) offsetCache.set(zone, (cache = new Map()));
  const bucket = Math.floor(t / HOUR_MS);
  const hit = cache.get(bucket);
  if (hit !== undefined) return hit;
  const start = rawOffsetAt(zone, bucket * HOUR_MS);
  const end = rawOffsetAt(zone, (bucket + 1) * HOUR_MS - 1000);
  if (start !== end) return rawOffsetAt(zone, t);
  if (cache.size >= MAX_CACHED_HOURS) cache.clear();
  cache.set(bucket, start);
  return start;
}

/** The offset at `t` read from the zone's wall clock (formatToParts works in whole seconds). */
function rawOffsetAt(zone: Intl.DateTimeFormat, t: number): number {
  const whole = t - (((t % 1000) + 1000) % 1000);
  let y = 0;
  let mo = 0;
  let d = 0;
  let h = 0;
  let mi = 0;
  let s = 0;
  let bc = false;
  for (const p of zone.formatToParts(whole)) {
    switch (p.type) {
      case 'year': y = Number(p.value); break;
      case 'month': mo = Number(p.value); break;
      case 'day': d = Number(p.value); break;
      case 'hour': h = Number(p.value); break;
      case 'minute': mi = Number(p.value); break;
      case 'second': s = Number(p.value); break;
      case 'era': bc = p.value === 'BC' || p.value === 'B'; break;
      default: break;
    }
  }
  const date = new Date(Date.UTC(2000, mo - 1, d, h, mi, s));
  date.setUTCFullYear(bc ? 1 - y : y);
  return date.getTime() - whole;
}

function formatOffset(offsetMs: number): string {
  const sign = offsetMs < 0 ? '-' : '+';
  const minutes = Math.round(Math.abs(offsetMs) / 60_000);
  return `${sign}${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}

const DAY_MS = 86_400_000;

/**
 * A wall-clock time in a zone → the instant. The offsets a day before and a day after bracket any
 * transition near this time (zones change offset at most once in two days): each gives a candidate
 * instant, which is real if the zone has that offset at that instant. Two real candidates: an overlap;
 * none: a gap.
 */
function fromLocal(wall: number, zone: Intl.DateTimeFormat, name: string): InstantResult {
  const early = offsetAt(zone, wall - DAY_MS);
  const late = offsetAt(zone, wall + DAY_MS);
  const fromEarly = wall - early;
  const fromLate = wall - late;
  const earlyReal = offsetAt(zone, fromEarly) === early;
  const lateReal = offsetAt(zone, fromLate) === late;
  if (earlyReal && lateReal && fromEarly !== fromLate) {
    // An overlap: pin the earlier instant (see the module comment).
    const ms = Math.min(fromEarly, fromLate);
    return {
      ok: true,
      ms,
      note: `is ambiguous in ${name} (the clocks went back and that local time happened twice); used the earlier instant (UTC offset ${formatOffset(wall - ms)})`,
    };
  }
  if (earlyReal) return { ok: true, ms: fromEarly };
  if (lateReal) return { ok: true, ms: fromLate };
  // A gap: read with the offset in force before it, the wall time lands after the jump, moved forward by
  // exactly the gap (02:30 EST = 07:30Z = 03:30 EDT).
  const gapMinutes = Math.round((late - early) / 60_000);
  return {
    ok: true,
    ms: fromEarly,
    note: `falls in the daylight-saving gap of ${name} (that local time never happened); shifted forward by ${gapMinutes} minutes (UTC offset ${formatOffset(late)})`,
  };
}
