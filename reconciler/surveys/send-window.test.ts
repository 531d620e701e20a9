import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WEEKDAYS, type Weekday } from '../spec/rules/send-windows.ts';
import { compileWindow, isOpen, localToInstant, nextOpening, quietSpanBefore, sendWindowClock, SendWindowError, type SendWindow } from './send-window.ts';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();
const NY = 'America/New_York';
const BERLIN = 'Europe/Berlin';
const WEEKDAYS_ONLY: Weekday[] = ['mon', 'tue', 'wed', 'thu', 'fri'];
const office: SendWindow = { hours: '09:00-20:00', days: WEEKDAYS_ONLY };
const daily: SendWindow = { hours: '09:00-20:00' };

describe('send windows: edges', () => {
  it('is open from the opening instant, closed from the closing instant (end excluded)', () => {
    // Friday 2026-03-06, New York on EST (UTC−5): 09:00 is 14:00Z, 20:00 is 01:00Z on Saturday.
    expect(isOpen(at('2026-03-06T13:59:59.999Z'), office, NY)).toBe(false);
    expect(isOpen(at('2026-03-06T14:00:00.000Z'), office, NY)).toBe(true);
    expect(isOpen(at('2026-03-07T00:59:59.999Z'), office, NY)).toBe(true);
    expect(isOpen(at('2026-03-07T01:00:00.000Z'), office, NY)).toBe(false);
    expect(nextOpening(at('2026-03-06T14:00:00.000Z'), office, NY)).toBe(at('2026-03-06T14:00:00.000Z'));
    expect(nextOpening(at('2026-03-06T13:59:59.999Z'), office, NY)).toBe(at('2026-03-06T14:00:00.000Z'));
  });

  it('waits over the weekend, and across the US spring change the opening moves from 14:00Z to 13:00Z', () => {
    // Closed Friday 20:00 EST; Sunday 2026-03-08 clocks jump; Monday 09:00 is EDT (UTC−4).
    for (const t of ['2026-03-07T01:00:00Z', '2026-03-07T15:00:00Z', '2026-03-08T15:00:00Z', '2026-03-09T12:59:59.999Z']) {
      expect(isOpen(at(t), office, NY), t).toBe(false);
      expect(iso(nextOpening(at(t), office, NY)), t).toBe('2026-03-09T13:00:00.000Z');
    }
    expect(isOpen(at('2026-03-09T13:00:00Z'), office, NY)).toBe(true);
    // The quiet span before Monday's opening began at Friday's close.
    expect(iso(quietSpanBefore(at('2026-03-09T13:30:00Z'), office, NY))).toBe('2026-03-07T01:00:00.000Z');
    // While closed: the start of the quiet span now running.
    expect(iso(quietSpanBefore(at('2026-03-08T15:00:00Z'), office, NY))).toBe('2026-03-07T01:00:00.000Z');
    // Exactly at the opening, the quiet span before it; exactly at the close, the span that starts there.
    expect(iso(quietSpanBefore(at('2026-03-09T13:00:00Z'), office, NY))).toBe('2026-03-07T01:00:00.000Z');
    expect(iso(quietSpanBefore(at('2026-03-10T00:00:00Z'), office, NY))).toBe('2026-03-10T00:00:00.000Z');
  });

  it('across the US autumn change a daily 09:00 opening moves from 13:00Z to 14:00Z', () => {
    expect(iso(nextOpening(at('2026-10-31T05:00:00Z'), daily, NY))).toBe('2026-10-31T13:00:00.000Z');
    expect(iso(nextOpening(at('2026-11-01T05:00:00Z'), daily, NY))).toBe('2026-11-01T14:00:00.000Z');
    // Saturday closes at 20:00 EDT (00:00Z), Sunday's quiet night is 25 hours... of which 14 are quiet.
    expect(iso(quietSpanBefore(at('2026-11-01T15:00:00Z'), daily, NY))).toBe('2026-11-01T00:00:00.000Z');
    expect(isOpen(at('2026-11-01T13:30:00Z'), daily, NY)).toBe(false); // 08:30 EST
    expect(isOpen(at('2026-11-02T00:59:59Z'), daily, NY)).toBe(true); // 19:59:59 EST
    expect(isOpen(at('2026-11-02T01:00:00Z'), daily, NY)).toBe(false);
  });

  it('across the EU autumn change (2026-10-25) a Berlin 09:00 opening moves from 07:00Z to 08:00Z', () => {
    expect(iso(nextOpening(at('2026-10-24T00:00:00Z'), daily, BERLIN))).toBe('2026-10-24T07:00:00.000Z');
    expect(iso(nextOpening(at('2026-10-24T18:00:00Z'), daily, BERLIN))).toBe('2026-10-25T08:00:00.000Z');
    expect(isOpen(at('2026-10-25T07:30:00Z'), daily, BERLIN)).toBe(false); // 08:30 CET
    expect(isOpen(at('2026-10-25T18:59:59.999Z'), daily, BERLIN)).toBe(true); // 19:59:59.999 CET
  });

  it('reads a skipped wall time as the moment the clocks jump, a repeated one as its first occurrence', () => {
    // 2026-03-08 New York: 02:00–03:00 does not exist; 02:30 is read as 03:00 EDT (07:00Z).
    expect(iso(localToInstant(Date.UTC(2026, 2, 8, 2, 30), NY))).toBe('2026-03-08T07:00:00.000Z');
    const night: SendWindow = { hours: '02:30-04:00', days: ['sun'] };
    expect(iso(nextOpening(at('2026-03-08T05:00:00Z'), night, NY))).toBe('2026-03-08T07:00:00.000Z');
    expect(iso(quietSpanBefore(at('2026-03-08T07:30:00Z'), night, NY))).toBe('2026-03-01T09:00:00.000Z');
    // A window entirely inside the skipped hour does not open that day: the next one is a week later.
    const skipped: SendWindow = { hours: '02:00-02:30', days: ['sun'] };
    expect(iso(nextOpening(at('2026-03-08T05:00:00Z'), skipped, NY))).toBe('2026-03-15T06:00:00.000Z');
    // 2026-11-01 New York: 01:00–02:00 happens twice; 01:30 is the first time, EDT (05:30Z).
    expect(iso(localToInstant(Date.UTC(2026, 10, 1, 1, 30), NY))).toBe('2026-11-01T05:30:00.000Z');
    const early: SendWindow = { hours: '01:30-03:00', days: ['sun'] };
    expect(iso(nextOpening(at('2026-11-01T00:00:00Z'), early, NY))).toBe('2026-11-01T05:30:00.000Z');
    expect(isOpen(at('2026-11-01T07:59:59Z'), early, NY)).toBe(true); // 02:59:59 EST
    expect(isOpen(at('2026-11-01T08:00:00Z'), early, NY)).toBe(false);
  });

  it('joins whole days into one open period, and a window open all week never closes', () => {
    const weekend: SendWindow = { hours: '00:00-24:00', days: ['sat', 'sun'] };
    // Saturday 00:00 to Monday 00:00 Berlin (CEST, UTC+2) is one period.
    expect(isOpen(at('2026-06-05T21:59:59.999Z'), weekend, BERLIN)).toBe(false); // Friday 23:59:59.999
    expect(isOpen(at('2026-06-05T22:00:00Z'), weekend, BERLIN)).toBe(true); // Saturday 00:00
    expect(isOpen(at('2026-06-06T22:00:00Z'), weekend, BERLIN)).toBe(true); // Sunday 00:00: no gap at midnight
    expect(isOpen(at('2026-06-07T21:59:59.999Z'), weekend, BERLIN)).toBe(true);
    expect(isOpen(at('2026-06-07T22:00:00Z'), weekend, BERLIN)).toBe(false); // Monday 00:00
    expect(iso(quietSpanBefore(at('2026-06-06T12:00:00Z'), weekend, BERLIN))).toBe('2026-05-31T22:00:00.000Z');
    const always: SendWindow = { hours: '00:00-24:00' };
    const t = at('2026-11-01T06:30:00Z');
    expect(isOpen(t, always, NY)).toBe(true);
    expect(nextOpening(t, always, NY)).toBe(t);
    expect(quietSpanBefore(t, always, NY)).toBe(t);
  });

  it('a compiled window answers like the uncompiled one, also far from the instant it was compiled around', () => {
    const c = compileWindow(office, NY, at('2026-03-08T12:00:00Z'));
    for (const t of ['2026-03-06T13:59:59Z', '2026-03-09T13:00:00Z', '2026-03-13T23:00:00Z', '2026-04-20T12:00:00Z', '2025-12-31T23:00:00Z']) {
      expect(isOpen(at(t), c), t).toBe(isOpen(at(t), office, NY));
      expect(nextOpening(at(t), c), t).toBe(nextOpening(at(t), office, NY));
      expect(quietSpanBefore(at(t), c), t).toBe(quietSpanBefore(at(t), office, NY));
    }
  });
});

describe('sendWindowClock', () => {
  it('answers per person zone, compiled once per zone; a blank or unknown zone uses the fallback', () => {
    const now = at('2026-03-09T13:30:00Z'); // Monday 09:30 in New York, 06:30 in Los Angeles, 14:30 in Berlin
    const clock = sendWindowClock(office, now, NY);
    expect(clock('America/Los_Angeles')).toMatchObject({ zone: 'America/Los_Angeles', open: false, opensAt: at('2026-03-09T16:00:00Z') });
    expect(clock(BERLIN)).toMatchObject({ open: true, opensAt: now, quietSince: at('2026-03-06T19:00:00Z') });
    for (const v of [null, undefined, '', '   ', 'Mars/Olympus_Mons', 'New York']) {
      expect(clock(v), String(v)).toMatchObject({ zone: NY, open: true, quietSince: at('2026-03-07T01:00:00Z') });
    }
    // Padding, case and aliases name the zone they spell, compiled once.
    expect(clock(' america/los_angeles ')).toBe(clock('America/Los_Angeles'));
    expect(clock('US/Eastern')).toMatchObject({ zone: NY });
    expect(clock(BERLIN)).toBe(clock(BERLIN));
  });
});

describe('send windows: properties', () => {
  const zones = [NY, BERLIN, 'America/Los_Angeles', 'Australia/Lord_Howe', 'Asia/Kolkata', 'UTC', 'Pacific/Chatham'];
  const windowArb = fc
    .record({
      open: fc.integer({ min: 0, max: 1439 }),
      length: fc.integer({ min: 1, max: 1440 }),
      days: fc.subarray([...WEEKDAYS], { minLength: 1 }),
    })
    .map(({ open, length, days }) => {
      const close = Math.min(1440, open + length);
      const hhmm = (m: number) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
      return { hours: `${hhmm(open)}-${hhmm(close)}`, days } as SendWindow;
    });
  const instant = fc.integer({ min: at('2026-01-01T00:00:00Z'), max: at('2027-01-01T00:00:00Z') });

  /** Independent oracle: the wall clock of the instant, read with Intl, against the hours and days. */
  const wallOpen = (ms: number, w: SendWindow, zone: string) => {
    const parts = Object.fromEntries(
      new Intl.DateTimeFormat('en-US', { timeZone: zone, weekday: 'short', hour: 'numeric', minute: 'numeric', hourCycle: 'h23' }).formatToParts(ms).map((p) => [p.type, p.value]),
    );
    const day = parts.weekday!.toLowerCase().slice(0, 3) as Weekday;
    const minute = Number(parts.hour) * 60 + Number(parts.minute);
    const [o, c] = w.hours.split('-').map((x) => Number(x.slice(0, 2)) * 60 + Number(x.slice(3)));
    return (w.days ?? WEEKDAYS).includes(day) && minute >= o! && minute < c!;
  };
  const offset = (ms: number, zone: string) => {
    const p = Object.fromEntries(new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset' }).formatToParts(ms).map((x) => [x.type, x.value]));
    return p.timeZoneName;
  };

  it('nextOpening(t) is open, and nothing between t and it is', () => {
    fc.assert(
      fc.property(windowArb, fc.constantFrom(...zones), instant, fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 20, maxLength: 20 }), (w, zone, t, samples) => {
        const n = nextOpening(t, w, zone);
        expect(n).toBeGreaterThanOrEqual(t);
        expect(isOpen(n, w, zone)).toBe(true);
        if (n > t) {
          expect(isOpen(n - 1, w, zone)).toBe(false);
          expect(isOpen(t, w, zone)).toBe(false);
          for (const s of samples) expect(isOpen(t + Math.floor(s * (n - t)), w, zone)).toBe(false);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('quietSpanBefore(t) is a close: open just before it, and closed from it to the next opening', () => {
    fc.assert(
      fc.property(windowArb, fc.constantFrom(...zones), instant, fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 20, maxLength: 20 }), (w, zone, t, samples) => {
        // A minute-long window inside a DST gap (02:45-02:46 on Chatham's spring-forward Sunday, seed
        // 1124101037) never opens around some instants: compiling it there is refused, which the window's
        // own tests cover; such draws are discarded here.
        try {
          check();
        } catch (e) {
          if (e instanceof SendWindowError) fc.pre(false);
          throw e;
        }
        function check() {
          const q = quietSpanBefore(t, w, zone);
          // Open all day every day (00:00-24:00 on all seven days) never closes: no quiet span, so t itself.
          if (compileWindow(w, zone, t).always) {
            expect(q).toBe(t);
            return;
          }
          expect(q).toBeLessThanOrEqual(t);
          expect(isOpen(q - 1, w, zone)).toBe(true);
          expect(isOpen(q, w, zone)).toBe(false);
          // The quiet span ends where t's own period opens (t open) or at t's next opening (t closed).
          const opening = nextOpening(q, w, zone);
          if (isOpen(t, w, zone)) {
            expect(opening).toBeLessThanOrEqual(t);
            for (const s of samples) expect(isOpen(opening + Math.floor(s * (t - opening)), w, zone)).toBe(true);
          } else {
            expect(opening).toBe(nextOpening(t, w, zone));
          }
          for (const s of samples) expect(isOpen(q + Math.floor(s * (opening - q)), w, zone)).toBe(false);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('agrees with the wall clock away from offset changes', () => {
    fc.assert(
      fc.property(windowArb, fc.constantFrom(...zones), instant, (w, zone, t) => {
        fc.pre(offset(t - 86_400_000, zone) === offset(t + 86_400_000, zone));
        expect(isOpen(t, w, zone)).toBe(wallOpen(t, w, zone));
      }),
      { numRuns: 500 },
    );
  });
});
