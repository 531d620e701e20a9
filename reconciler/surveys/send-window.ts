/**
 * Send windows in a time zone (issue 12 point 5). Pure: no I/O, no clock; every instant is an argument
 * (epoch milliseconds). Zone rules come from Intl, the same tables luxon and the sync engine use.
 *
 * A window opens at `hours`' start and closes at its end (end excluded) on each listed local day. Wall
 * times that a daylight-saving change skips or repeats are read as the earliest instant whose local time
 * is at or after them: a skipped 02:30 is the moment the clocks jump (03:00 new time), a repeated 01:30
 * is its first occurrence.
 *
 * For many people, compile once per zone per run (`compileWindow`, or `sendWindowClock` which memoises by
 * zone) and ask the compiled window: each answer is then a binary search over epoch-ms bounds.
 */
import { MINUTES_PER_DAY, WEEKDAYS, openDays, parseHours, type Weekday } from '../spec/rules/send-windows.ts';
import { isTimeZone } from '../spec/schema/common.ts';

/** What the spec's `send_window` holds that decides the instants (the zone is chosen separately). */
export interface SendWindow {
  hours: string;
  days?: readonly Weekday[];
}

/**
 * A window's open periods in one zone for the local days from `from` to `to` (epoch ms): `bounds` is
 * open₀, close₀, open₁, …, sorted, with no two periods touching (adjacent days of "00:00-24:00" are one
 * period). The first opening and the last close may be the range's edges, not the period's.
 */
export interface CompiledWindow {
  readonly window: SendWindow;
  readonly zone: string;
  readonly from: number;
  readonly to: number;
  readonly bounds: Float64Array;
  /** Every day, 00:00-24:00: never closes, so there is no quiet span to find. */
  readonly always: boolean;
}

const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;
/** Days compiled either side of the instant asked about: a run's queries all fall well inside. */
export const DEFAULT_SPAN_DAYS = 10;

export class SendWindowError extends Error {
  override name = 'SendWindowError';
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(zone, f);
  }
  return f;
}

/** Local wall time of an instant, as if it were UTC ms (so Date.UTC arithmetic works on it). */
function wallMs(ms: number, zone: string): number {
  let y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  for (const p of formatter(zone).formatToParts(ms)) {
    switch (p.type) {
      case 'year': y = Number(p.value); break;
      case 'month': mo = Number(p.value); break;
      case 'day': d = Number(p.value); break;
      case 'hour': h = Number(p.value); break;
      case 'minute': mi = Number(p.value); break;
      case 'second': s = Number(p.value); break;
    }
  }
  return Date.UTC(y, mo - 1, d, h, mi, s) + (((ms % 1000) + 1000) % 1000);
}

/** UTC offset of the zone at an instant, in ms (New York in winter: −5 h). */
function offsetAt(ms: number, zone: string): number {
  return wallMs(ms, zone) - ms;
}

/**
 * The earliest instant whose local time in `zone` is at or after the wall time `local` (UTC-style ms).
 * Assumes at most one offset change within a day either side, which holds for every IANA zone.
 */
export function localToInstant(local: number, zone: string): number {
  const before = offsetAt(local - DAY_MS, zone);
  const after = offsetAt(local + DAY_MS, zone);
  const candidates = [...new Set([before, after])]
    .map((o) => local - o)
    .filter((t) => offsetAt(t, zone) === local - t)
    .sort((a, b) => a - b);
  if (candidates.length) return candidates[0]!;
  // In a gap (clocks jumped forward over `local`): the instant of the jump, the first local time after it.
  let lo = local - after; // still on the old offset
  let hi = local - before; // already on the new one
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (offsetAt(mid, zone) === after) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** Open periods of `window` in `zone` for the local days around `aroundMs` (± spanDays). */
export function compileWindow(window: SendWindow, zone: string, aroundMs: number, spanDays = DEFAULT_SPAN_DAYS): CompiledWindow {
  const hours = parseHours(window.hours);
  if (!hours || hours.open >= hours.close) throw new SendWindowError(`send window hours "${window.hours}" are not a forward HH:MM-HH:MM range`);
  if (!isTimeZone(zone)) throw new SendWindowError(`"${zone}" is not a known IANA time zone`);
  const days = openDays(window.days);
  if (days.size === 0) throw new SendWindowError('a send window needs at least one day');
  const wall = wallMs(aroundMs, zone);
  const today = wall - (((wall % DAY_MS) + DAY_MS) % DAY_MS); // local midnight, UTC-style
  const out: number[] = [];
  for (let i = -spanDays; i <= spanDays; i++) {
    const midnight = today + i * DAY_MS;
    if (!days.has(new Date(midnight).getUTCDay())) continue;
    const open = localToInstant(midnight + hours.open * MINUTE_MS, zone);
    const close = localToInstant(midnight + hours.close * MINUTE_MS, zone);
    if (close <= open) continue; // the whole period fell in a skipped hour
    if (out.length && out[out.length - 1]! >= open) out[out.length - 1] = close;
    else out.push(open, close);
  }
  const from = localToInstant(today - spanDays * DAY_MS, zone);
  const to = localToInstant(today + (spanDays + 1) * DAY_MS, zone);
  return { window, zone, from, to, bounds: Float64Array.from(out), always: alwaysOpen(window) };
}

/** Index of the last bound ≤ ms, or −1. Even: inside an open period; odd: in the quiet after one. */
function lastBoundAtOrBefore(bounds: Float64Array, ms: number): number {
  let lo = 0;
  let hi = bounds.length; // answer in [lo - 1, hi - 1]
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (bounds[mid]! <= ms) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** Whether the window never closes (every day, 00:00-24:00): no instant is quiet. */
function alwaysOpen(window: SendWindow): boolean {
  const h = parseHours(window.hours);
  return !!h && h.open === 0 && h.close === MINUTES_PER_DAY && openDays(window.days).size === WEEKDAYS.length;
}

/**
 * The position of `ms` among the open periods of a compiled window that knows the periods on both sides
 * of it: the one given when it does, else one compiled around `ms` (queries far from the run's instant
 * stay correct, only slower). `i` is the index of the last bound at or before ms: even inside an open
 * period, odd in the quiet after one.
 */
function locate(ms: number, window: SendWindow | CompiledWindow, zone: string | undefined): { c: CompiledWindow; i: number } {
  let c: CompiledWindow;
  if ('bounds' in window) c = window;
  else if (zone === undefined) throw new SendWindowError('a zone is needed with an uncompiled send window');
  else c = compileWindow(window, zone, ms);
  for (let attempt = 0; attempt < 2; attempt++) {
    if (ms >= c.from && ms < c.to) {
      const i = lastBoundAtOrBefore(c.bounds, ms);
      // A period before (for the quiet span) and an opening after (for the next opening) must be compiled.
      if (i >= 1 && i + 1 < c.bounds.length) return { c, i };
    }
    c = compileWindow(c.window, c.zone, ms);
  }
  throw new SendWindowError(`the send window "${c.window.hours}" never opens around this instant in ${c.zone}`);
}

const neverCloses = (window: SendWindow | CompiledWindow) => ('bounds' in window ? window.always : alwaysOpen(window));

/** Is `ms` inside an open period (open ≤ ms < close)? */
export function isOpen(ms: number, window: SendWindow | CompiledWindow, zone?: string): boolean {
  if (neverCloses(window)) return true;
  return locate(ms, window, zone).i % 2 === 0;
}

/** The first instant at or after `ms` the window is open: `ms` itself when open, else the next opening. */
export function nextOpening(ms: number, window: SendWindow | CompiledWindow, zone?: string): number {
  if (neverCloses(window)) return ms;
  const { c, i } = locate(ms, window, zone);
  if (i % 2 === 0) return ms;
  return c.bounds[i + 1]!;
}

/**
 * The start of the quiet span before the current (or, when closed, the next) open period: the end of
 * the last open period that ended at or before `ms`. An invitation whose moment ran out (trigger +
 * moment.before) at or after this instant ran out during quiet hours, or has not yet: it is still due.
 * A window that never closes has no quiet span: `ms` itself, so the moment window applies unchanged.
 */
export function quietSpanBefore(ms: number, window: SendWindow | CompiledWindow, zone?: string): number {
  if (neverCloses(window)) return ms;
  const { c, i } = locate(ms, window, zone);
  // Inside period k (i = 2k): the close before it is bounds[i - 1]. In the quiet after period k (i = 2k + 1): bounds[i].
  return i % 2 === 0 ? c.bounds[i - 1]! : c.bounds[i]!;
}

/** One zone's answers at a run's instant. */
export interface WindowAt {
  /** The zone the answers are in (the person's own, or the fallback). */
  zone: string;
  open: boolean;
  /** `now` when open, else when it opens. */
  opensAt: number;
  /** quietSpanBefore(now): a moment that ran out at or after it is still due. */
  quietSince: number;
}

/**
 * For one run at `now`: a function from a person's zone value (a field that may be blank, mistyped or
 * missing) to that zone's answers, each zone compiled once. A value is trimmed and read as Intl reads
 * it (any case, aliases such as US/Eastern); one that is still not a known zone uses `fallbackZone`. Memoised by the raw value, so a million people in a handful of zones cost a handful of
 * compilations and a map lookup each.
 */
export function sendWindowClock(window: SendWindow, now: number, fallbackZone: string): (zone: string | null | undefined) => WindowAt {
  if (!isTimeZone(fallbackZone)) throw new SendWindowError(`fallback zone "${fallbackZone}" is not a known IANA time zone`);
  const byZone = new Map<string, WindowAt>();
  const byValue = new Map<string, WindowAt>();
  const answer = (zone: string): WindowAt => {
    let a = byZone.get(zone);
    if (!a) {
      const c = compileWindow(window, zone, now);
      a = { zone, open: isOpen(now, c), opensAt: nextOpening(now, c), quietSince: quietSpanBefore(now, c) };
      byZone.set(zone, a);
    }
    return a;
  };
  const fallback = answer(fallbackZone);
  return (value) => {
    if (value === null || value === undefined || value === '') return fallback;
    let a = byValue.get(value);
    if (!a) {
      // Field values are typed by people and tools: padding, case and aliases (US/Eastern) name the same zone.
      const v = value.trim();
      a = v !== '' && isTimeZone(v) ? answer(new Intl.DateTimeFormat('en-US', { timeZone: v }).resolvedOptions().timeZone) : fallback;
      byValue.set(value, a);
    }
    return a;
  };
}
