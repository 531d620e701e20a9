/**
 * Send windows (issue 12 point 5): when a survey target's invitations may go out, as wall-clock hours and
 * days in the brand's time zone or each person's. The weekly arithmetic here is wall-clock minutes, the
 * same in every zone; reconciler/surveys/send-window.ts turns a window into instants in a zone.
 */
import { formatDuration, parseDuration } from '../../core/duration.ts';
import { sorted, type SpecModel } from '../model.ts';
import { isTimeZone } from '../schema/common.ts';
import { HOURS_PATTERN } from '../schema/survey-target.ts';
import { didYouMean } from '../suggest.ts';
import type { Finding, Rule } from './rule.ts';

/** Indexed like Date#getUTCDay, so a civil date's weekday is WEEKDAYS[date.getUTCDay()]. */
export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export const MINUTES_PER_DAY = 1440;
const MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY;

/** The daily sending hours, as minutes after local midnight: open ≤ t < close. `close` may be 1440 (24:00). */
export interface DailyHours {
  open: number;
  close: number;
}

/** "09:00-20:00" → { open: 540, close: 1200 }; undefined when it is not written that way. Reversed ranges come back as written. */
export function parseHours(hours: string): DailyHours | undefined {
  const m = HOURS_PATTERN.exec(hours);
  if (!m) return undefined;
  const open = Number(m[1]) * 60 + Number(m[2]);
  const close = m[5] !== undefined ? MINUTES_PER_DAY : Number(m[3]) * 60 + Number(m[4]);
  return { open, close };
}

/** The days a window opens on, as getUTCDay indexes; no `days` means every day. */
export function openDays(days: readonly Weekday[] | undefined): Set<number> {
  return new Set((days ?? WEEKDAYS).map((d) => WEEKDAYS.indexOf(d)));
}

/** A point in the week, for messages: "fri 20:00". */
export function weekPoint(minuteOfWeek: number): string {
  const m = ((minuteOfWeek % MINUTES_PER_WEEK) + MINUTES_PER_WEEK) % MINUTES_PER_WEEK;
  const day = WEEKDAYS[Math.floor(m / MINUTES_PER_DAY)]!;
  const t = m % MINUTES_PER_DAY;
  return `${day} ${String(Math.floor(t / 60)).padStart(2, '0')}:${String(t % 60).padStart(2, '0')}`;
}

/**
 * The longest stretch of the week the window is closed, in wall-clock minutes, and where it starts
 * (minute of the week, Sunday 00:00 = 0). 0 when the window never closes. Wall clock: across a
 * daylight-saving change the real span is up to an hour longer or shorter.
 */
export function longestQuietSpan(hours: DailyHours, days: Set<number>): { minutes: number; start: number } {
  if (hours.close <= hours.open || days.size === 0) return { minutes: MINUTES_PER_WEEK, start: 0 };
  const open: [number, number][] = [];
  for (let d = 0; d < 7; d++) {
    if (!days.has(d)) continue;
    const s = d * MINUTES_PER_DAY + hours.open;
    const e = d * MINUTES_PER_DAY + hours.close;
    const last = open[open.length - 1];
    if (last && last[1] >= s) last[1] = e; // 00:00-24:00 on consecutive days is one open stretch
    else open.push([s, e]);
  }
  // The week wraps: the last stretch may run into the first.
  if (open.length > 1 && open[open.length - 1]![1] - MINUTES_PER_WEEK >= open[0]![0]) {
    const last = open.pop()!;
    open[0] = [last[0] - MINUTES_PER_WEEK, open[0]![1]];
  }
  if (open.length === 1 && open[0]![1] - open[0]![0] >= MINUTES_PER_WEEK) return { minutes: 0, start: 0 };
  let best = { minutes: 0, start: 0 };
  for (let i = 0; i < open.length; i++) {
    const end = open[i]![1];
    const nextStart = i + 1 < open.length ? open[i + 1]![0] : open[0]![0] + MINUTES_PER_WEEK;
    if (nextStart - end > best.minutes) best = { minutes: nextStart - end, start: end };
  }
  return best;
}

const MINUTE_MS = 60_000;

export const sendWindowRules: Rule[] = [
  {
    code: 'SURV012',
    family: 'surveys',
    severity: 'error',
    title: 'Send window hours empty or reversed',
    harm: 'A send window that never opens holds every invitation forever, and quiet hours written in its place would send at night.',
    check(model) {
      const out: Finding[] = [];
      for (const t of sorted(model.surveyTargets)) {
        const w = t.spec.send_window;
        const h = w ? parseHours(w.hours) : undefined;
        if (!w || !h || h.open < h.close) continue;
        out.push({
          spec: t,
          path: ['send_window', 'hours'],
          summary:
            h.open === h.close
              ? `Send window hours "${w.hours}" of "${t.name}" open and close at the same time: it never opens.`
              : `Send window hours "${w.hours}" of "${t.name}" end before they start: write the hours invitations may go out, e.g. "09:00-20:00" (a window across midnight is not supported).`,
          detail: '`hours` are the sending hours, start before end in the 24-hour clock; "00:00-24:00" is the whole day.',
        });
      }
      return out;
    },
  },
  {
    code: 'SURV013',
    family: 'surveys',
    severity: 'error',
    title: 'Send window without days',
    harm: 'A send window with no days never opens: every invitation waits forever and the survey silently never goes out.',
    check(model) {
      return sorted(model.surveyTargets)
        .filter((t) => t.spec.send_window?.days?.length === 0)
        .map((t) => ({
          spec: t,
          path: ['send_window', 'days'],
          summary: `Send window of "${t.name}" lists no days.`,
          detail: 'List the days invitations may go out, e.g. `days: [mon, tue, wed, thu, fri]`, or leave `days` out for every day.',
        }));
    },
  },
  {
    code: 'SURV014',
    family: 'surveys',
    severity: 'error',
    title: 'Send window without a time zone',
    harm: 'Hours mean nothing without a zone: read in UTC, a 09:00 opening would land at 04:00 in New York and people would be invited at night.',
    check(model) {
      const brand = model.workspace?.spec.timezone;
      const out: Finding[] = [];
      for (const t of sorted(model.surveyTargets)) {
        const w = t.spec.send_window;
        if (!w || w.timezone || brand) continue;
        if (w.field && w.fallback_timezone) continue;
        out.push({
          spec: t,
          path: ['send_window'],
          key: true,
          summary: w.field
            ? `Send window of "${t.name}" reads each person's zone from "${w.field}", but has no zone for people whose field is blank or not a zone: set send_window.fallback_timezone or the Workspace's timezone.`
            : `Send window of "${t.name}" has no time zone: set send_window.timezone (e.g. America/New_York), send_window.field, or the Workspace's timezone.`,
        });
      }
      return out;
    },
  },
  {
    code: 'SURV015',
    family: 'surveys',
    severity: 'error',
    title: 'Send window zone field not a declared text field',
    harm: 'A per-person zone read from a field that is not registered as text cannot hold an IANA zone name: every person would fall back to one zone.',
    check(model) {
      const out: Finding[] = [];
      for (const t of sorted(model.surveyTargets)) {
        const name = t.spec.send_window?.field;
        if (name === undefined) continue;
        const f = model.fields.get(name);
        if (!f) {
          out.push({
            spec: t,
            path: ['send_window', 'field'],
            summary: `Send window field "${name}" of "${t.name}" is not in the field registry.${didYouMean(name, [...model.fields.keys()])}`,
            detail: 'Register it in a Fields spec as `type: string`, holding IANA zone names such as America/New_York.',
          });
          continue;
        }
        const ok = f.def.type === 'string' || (f.def.type === 'enum' && (f.def.values ?? []).every((v) => typeof v === 'string' && isTimeZone(v)));
        if (!ok) {
          out.push({
            spec: t,
            path: ['send_window', 'field'],
            summary:
              f.def.type === 'enum'
                ? `Send window field "${name}" of "${t.name}" is an enum whose values are not all IANA time zones.`
                : `Send window field "${name}" of "${t.name}" is a ${f.def.type} field; a time zone is a string such as America/New_York.`,
          });
        }
      }
      return out;
    },
  },
  {
    code: 'SURV016',
    family: 'surveys',
    severity: 'warning',
    title: 'Moment window shorter than the send window’s quiet span',
    harm: 'When the moment window can pass entirely in quiet hours, those people are invited late, at the next opening, after the moment the survey was timed for.',
    check(model) {
      const out: Finding[] = [];
      for (const t of sorted(model.surveyTargets)) {
        const w = t.spec.send_window;
        const h = w ? parseHours(w.hours) : undefined;
        if (!w || !h || h.open >= h.close || w.days?.length === 0) continue;
        const after = parseDuration(t.spec.moment.after);
        const before = parseDuration(t.spec.moment.before);
        if (after === undefined || before === undefined || before <= after) continue;
        const quiet = longestQuietSpan(h, openDays(w.days));
        if (quiet.minutes * MINUTE_MS <= before - after) continue;
        out.push({
          spec: t,
          path: ['send_window'],
          key: true,
          summary:
            `"${t.name}" may send for ${formatDuration(before - after)} after each moment opens (moment ${t.spec.moment.after}–${t.spec.moment.before}), ` +
            `but its send window is closed for ${formatDuration(quiet.minutes * MINUTE_MS)} at a time (${weekPoint(quiet.start)} to ${weekPoint(quiet.start + quiet.minutes)}): ` +
            'a moment that falls in that span is invited at the next opening, after moment.before.',
          detail: 'Widen the send window (hours or days) or the moment window, or suppress SURV016 here with a reason if late invitations are fine.',
        });
      }
      return out;
    },
  },
];
