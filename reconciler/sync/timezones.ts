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
 * with offsets cached per UTC day (in a fixed-size table per zone): a run converts every row, and building luxon DateTimes per value cost
 * about 50 times more. The tests check the results against luxon's readings of the same wall times.
 *
 * The per-row path avoids the general machinery where it can: `instantReader` resolves the zone once per
 * source column, the common ISO shapes are scanned by hand (the regex stays the definition and reads
 * everything the scanner does not claim), and the calendar arithmetic needs no Date object.
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
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(?:([Zz])|([+-])(\d{2})(?::?(\d{2})(?::?(\d{2}))?)?)?$/;
const EPOCH_STRING = /^-?\d{9,}(?:\.\d+)?$/;

const invalid = (reason: string): InstantError => ({ ok: false, code: 'timestamp_invalid', reason });

/**
 * A real Date, from any realm (driver values may come from another context). Neither instanceof (an
 * object that merely inherits Date.prototype has no time value) nor the toString tag (Symbol.toStringTag
 * can claim "Date") proves it; reading the time value through Date.prototype does, and throws otherwise.
 */
export function isDate(value: unknown): value is Date {
  if (value === null || typeof value !== 'object') return false;
  try {
    Date.prototype.getTime.call(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * What the readers below return: a plain number is an instant read without a note (no result object per
 * value on the usual path), anything else the full result.
 */
type Read = number | InstantResult;

function fromEpoch(n: number): Read {
  if (!Number.isFinite(n)) return invalid('is not a finite number');
  const ms = Math.abs(n) < EPOCH_SECONDS_CUTOFF ? Math.round(n * 1000) : Math.floor(n);
  if (Math.abs(ms) > MAX_EPOCH_MS) return invalid('is outside the representable date range');
  return ms;
}

/**
 * Reads a timestamp value as an instant. `timezone` is the source's declared IANA zone for naive values;
 * it is only consulted when the value carries no offset.
 */
export function toInstant(value: unknown, timezone: string | undefined): InstantResult {
  const r = readInstant(value, timezone, undefined);
  return typeof r === 'number' ? { ok: true, ms: r } : r;
}

/**
 * `toInstant` with the timezone bound, for reading many values (the normaliser, per column): the zone
 * is looked up once, and an instant without a note comes back as its plain epoch milliseconds rather
 * than a result object. Otherwise the same result as `toInstant` for every value.
 */
export function instantReader(timezone: string | undefined): (value: unknown) => number | InstantResult {
  const zone = timezone === undefined || timezone === '' ? null : zoneOf(timezone);
  return (value) => readInstant(value, timezone, zone);
}

/** `zone`: the zone of `timezone` when the caller has resolved it already, else undefined. */
function readInstant(value: unknown, timezone: string | undefined, zone: Zone | null | undefined): Read {
  if (typeof value === 'string') return readText(value, timezone, zone);
  if (typeof value === 'number') return fromEpoch(value);
  if (typeof value === 'bigint') return fromEpoch(Number(value));
  if (isDate(value)) {
    const ms = Date.prototype.getTime.call(value);
    return Number.isNaN(ms) ? invalid('is an invalid date') : ms;
  }
  return invalid('is not a timestamp (expected an ISO-8601 string, a date, or epoch seconds/milliseconds)');
}

/**
 * The fields of a DATE_TIME match, as numbers. One scratch record: reading is synchronous and never
 * re-entered, and a fresh array of captures per value was a measurable share of the parse.
 */
const parts = { y: 0, mo: 0, d: 0, hasTime: false, h: 0, mi: 0, s: 0, millis: 0, zulu: false, sign: 0, oh: 0, om: 0, os: 0 };

function readText(value: string, timezone: string | undefined, zone: Zone | null | undefined): Read {
  if (!scanDateTime(value)) {
    const text = value.trim();
    if (EPOCH_STRING.test(text)) return fromEpoch(Number(text));
    if (!matchDateTime(text)) return invalid('is not a recognised timestamp format (use ISO-8601, e.g. 2026-03-08T14:30:00Z)');
  }
  const p = parts;
  const hasOffset = p.zulu || p.sign !== 0;
  if (hasOffset && !p.hasTime) return invalid('has an offset but no time of day');
  const wall = wallClockMs(p.y, p.mo, p.d, p.h, p.mi, p.s, p.millis);
  if (wall === undefined) return invalid('is not a valid calendar date or time');

  if (hasOffset) {
    if (p.zulu) return wall;
    if (p.oh > 23 || p.om > 59 || p.os > 59) return invalid('has an invalid UTC offset');
    return wall - p.sign * (p.oh * 3600 + p.om * 60 + p.os) * 1000;
  }

  if (timezone === undefined || timezone === '') {
    return { ok: false, code: 'timezone_missing', reason: 'has no UTC offset and the source declares no timezone' };
  }
  const known = zone === undefined ? zoneOf(timezone) : zone;
  if (!known) return { ok: false, code: 'timezone_invalid', reason: `cannot be read: the source timezone "${timezone}" is not a known IANA zone` };
  return fromLocal(wall, known, timezone);
}

/** DATE_TIME by regex into `parts` (the definition of what is accepted); false when it does not match. */
function matchDateTime(text: string): boolean {
  const m = DATE_TIME.exec(text);
  if (!m) return false;
  const [, y, mo, d, h, mi, s, frac, zulu, sign, oh, om, os] = m;
  const p = parts;
  p.y = Number(y);
  p.mo = Number(mo);
  p.d = Number(d);
  p.hasTime = h !== undefined;
  p.h = h !== undefined ? Number(h) : 0;
  p.mi = mi !== undefined ? Number(mi) : 0;
  p.s = s !== undefined ? Number(s) : 0;
  // Truncate the fraction to milliseconds: '123456' → 123.
  p.millis = frac !== undefined ? Number(frac.slice(0, 3).padEnd(3, '0')) : 0;
  p.zulu = zulu !== undefined;
  p.sign = sign === undefined ? 0 : sign === '-' ? -1 : 1;
  p.oh = oh !== undefined ? Number(oh) : 0;
  p.om = om !== undefined ? Number(om) : 0;
  p.os = os !== undefined ? Number(os) : 0;
  return true;
}

const ZERO = 48;
/** The value of the ASCII digits text[i], text[i + 1]; negative when either is not a digit. */
function two(text: string, i: number): number {
  const a = text.charCodeAt(i) - ZERO;
  const b = text.charCodeAt(i + 1) - ZERO;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

/**
 * The usual shapes of DATE_TIME, scanned by hand into `parts`: `YYYY-MM-DD`, then optionally a T, t or
 * space and `HH:mm`, `:ss`, a fraction of 1 to 9 digits, and `Z`/`z` or an offset `±HH`, `±HH[:]mm`,
 * `±HH[:]mm[:]ss` right after. Nothing around it (no whitespace to trim, none before the offset). Returns
 * false for anything else, which then goes through the trim, the epoch check and the regex: every string
 * this accepts is one the regex reads the same way and that is not an epoch, so the result is the same.
 */
function scanDateTime(text: string): boolean {
  const n = text.length;
  if (n < 10 || text.charCodeAt(4) !== 45 || text.charCodeAt(7) !== 45) return false;
  const hi = two(text, 0);
  const lo = two(text, 2);
  const mo = two(text, 5);
  const d = two(text, 8);
  if (hi < 0 || lo < 0 || mo < 0 || d < 0) return false;
  const p = parts;
  p.y = hi * 100 + lo;
  p.mo = mo;
  p.d = d;
  p.hasTime = false;
  p.h = 0;
  p.mi = 0;
  p.s = 0;
  p.millis = 0;
  p.zulu = false;
  p.sign = 0;
  p.oh = 0;
  p.om = 0;
  p.os = 0;
  let i = 10;
  if (i === n) return true;
  let c = text.charCodeAt(i);
  // 'T', 't', ' '
  if (c === 84 || c === 116 || c === 32) {
    if (n < i + 6 || text.charCodeAt(i + 3) !== 58) return false;
    const h = two(text, i + 1);
    const mi = two(text, i + 4);
    if (h < 0 || mi < 0) return false;
    p.hasTime = true;
    p.h = h;
    p.mi = mi;
    i += 6;
    if (i < n && text.charCodeAt(i) === 58) {
      const s = two(text, i + 1);
      if (s < 0) return false;
      p.s = s;
      i += 3;
      c = text.charCodeAt(i);
      // '.' or ','
      if (i < n && (c === 46 || c === 44)) {
        let j = i + 1;
        let millis = 0;
        while (j < n) {
          const digit = text.charCodeAt(j) - ZERO;
          if (digit < 0 || digit > 9) break;
          if (j - i <= 3) millis = millis * 10 + digit;
          j++;
        }
        const digits = j - i - 1;
        if (digits < 1 || digits > 9) return false;
        for (let k = digits; k < 3; k++) millis *= 10;
        p.millis = millis;
        i = j;
      }
    }
  }
  if (i === n) return true;
  c = text.charCodeAt(i);
  // 'Z', 'z'
  if (c === 90 || c === 122) {
    p.zulu = true;
    return i + 1 === n;
  }
  // '+', '-'
  if (c !== 43 && c !== 45) return false;
  p.sign = c === 45 ? -1 : 1;
  const oh = two(text, i + 1);
  if (oh < 0) return false;
  p.oh = oh;
  i += 3;
  if (i === n) return true;
  if (text.charCodeAt(i) === 58) i++;
  const om = two(text, i);
  if (om < 0) return false;
  p.om = om;
  i += 2;
  if (i === n) return true;
  if (text.charCodeAt(i) === 58) i++;
  const os = two(text, i);
  if (os < 0) return false;
  p.os = os;
  return i + 2 === n;
}

/** Days from 1970-01-01 to a proleptic Gregorian date (month 1-12), by the civil-calendar formula. */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

const isLeap = (y: number): boolean => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * The wall-clock reading as if it were UTC, in milliseconds; undefined for an impossible calendar value
 * (Feb 30, 25:00, second 60). Plain arithmetic: Date.UTC would read years below 100 as 19xx.
 */
function wallClockMs(y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number): number | undefined {
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59) return undefined;
  if (d > (mo === 2 && isLeap(y) ? 29 : MONTH_DAYS[mo - 1]!)) return undefined;
  return daysFromCivil(y, mo, d) * DAY_MS + h * HOUR_MS + mi * 60_000 + s * 1000 + ms;
}

/**
 * A zone Intl knows: its formatter, plus its per-day offset cache. The cache holds, for UTC days whose
 * offset is the same at both ends, that offset: no transition inside, since zones never change offset
 * twice within two days (what `fromLocal` relies on too, so the cache adds no assumption of its own).
 * It is a fixed table indexed by a hash of the day, each slot remembering its day: rows of one run
 * cluster in time, so most conversions hit it instead of formatting dates, and a lookup costs no more
 * than reading two array slots (a Map lookup per offset was most of a naive conversion's time). Days,
 * not hours: each miss formats two dates (about 10 µs), and a run over a year of hourly timestamps
 * missed on every one of its 8,760 hours in each worker, and again in the next run's fresh workers.
 */
interface Zone {
  format: Intl.DateTimeFormat;
  days: Float64Array;
  offsets: Float64Array;
  /** The same per hour, for the days with a transition (both ends of such an hour agree). */
  hours: Float64Array;
  hourOffsets: Float64Array;
}

const CACHE_BITS = 14;
const HOUR_CACHE_BITS = 10;

// One zone per name: creating an Intl.DateTimeFormat costs far more than using one, and a run converts
// every row with the same zone. `null` remembers a zone Intl does not know.
const zones = new Map<string, Zone | null>();

function zoneOf(name: string): Zone | null {
  let z = zones.get(name);
  if (z === undefined) {
    try {
      const format = new Intl.DateTimeFormat('en-US', {
        timeZone: name,
        hourCycle: 'h23',
        era: 'short',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
      z = {
        format,
        days: new Float64Array(1 << CACHE_BITS).fill(Number.NaN),
        offsets: new Float64Array(1 << CACHE_BITS),
        hours: new Float64Array(1 << HOUR_CACHE_BITS).fill(Number.NaN),
        hourOffsets: new Float64Array(1 << HOUR_CACHE_BITS),
      };
    } catch {
      z = null;
    }
    zones.set(name, z);
  }
  return z;
}

/** The zone's UTC offset at instant `t`, in milliseconds (east positive). */
function offsetAt(zone: Zone, t: number): number {
  const bucket = Math.floor(t / DAY_MS);
  // Fibonacci hashing spreads neighbouring days over the whole table.
  const slot = Math.imul(bucket, 0x9e3779b1) >>> (32 - CACHE_BITS);
  if (zone.days[slot] === bucket) {
    const known = zone.offsets[slot]!;
    // NaN: a day with a transition.
    return known === known ? known : hourOffsetAt(zone, t);
  }
  const start = rawOffsetAt(zone.format, bucket * DAY_MS);
  const end = rawOffsetAt(zone.format, (bucket + 1) * DAY_MS - 1000);
  zone.days[slot] = bucket;
  zone.offsets[slot] = start === end ? start : Number.NaN;
  return start === end ? start : hourOffsetAt(zone, t);
}

/** `offsetAt` on a day with a transition: cached per hour whose ends agree (zones never change twice within an hour). */
function hourOffsetAt(zone: Zone, t: number): number {
  const bucket = Math.floor(t / HOUR_MS);
  const slot = Math.imul(bucket, 0x9e3779b1) >>> (32 - HOUR_CACHE_BITS);
  if (zone.hours[slot] === bucket) return zone.hourOffsets[slot]!;
  const start = rawOffsetAt(zone.format, bucket * HOUR_MS);
  const end = rawOffsetAt(zone.format, (bucket + 1) * HOUR_MS - 1000);
  if (start !== end) return rawOffsetAt(zone.format, t);
  zone.hours[slot] = bucket;
  zone.hourOffsets[slot] = start;
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

/**
 * A wall-clock time in a zone → the instant. The offsets a day before and a day after bracket any
 * transition near this time (zones change offset at most once in two days): each gives a candidate
 * instant, which is real if the zone has that offset at that instant. Two real candidates: an overlap;
 * none: a gap.
 */
function fromLocal(wall: number, zone: Zone, name: string): Read {
  const early = offsetAt(zone, wall - DAY_MS);
  const late = offsetAt(zone, wall + DAY_MS);
  const fromEarly = wall - early;
  const fromLate = wall - late;
  const earlyReal = offsetAt(zone, fromEarly) === early;
  // Far from a transition both candidates are the same instant: one lookup answers both.
  const lateReal = fromLate === fromEarly ? earlyReal : offsetAt(zone, fromLate) === late;
  if (earlyReal && lateReal && fromEarly !== fromLate) {
    // An overlap: pin the earlier instant (see the module comment).
    const ms = Math.min(fromEarly, fromLate);
    return {
      ok: true,
      ms,
      note: `is ambiguous in ${name} (the clocks went back and that local time happened twice); used the earlier instant (UTC offset ${formatOffset(wall - ms)})`,
    };
  }
  if (earlyReal) return fromEarly;
  if (lateReal) return fromLate;
  // A gap: read with the offset in force before it, the wall time lands after the jump, moved forward by
  // exactly the gap (02:30 EST = 07:30Z = 03:30 EDT).
  const gapMinutes = Math.round((late - early) / 60_000);
  return {
    ok: true,
    ms: fromEarly,
    note: `falls in the daylight-saving gap of ${name} (that local time never happened); shifted forward by ${gapMinutes} minutes (UTC offset ${formatOffset(late)})`,
  };
}
