import fc from 'fast-check';
import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { instantReader, toInstant } from './timezones.ts';

const ZONES = ['America/New_York', 'Europe/London', 'Australia/Sydney', 'Australia/Lord_Howe', 'America/Santiago', 'Asia/Kolkata', 'Pacific/Apia', 'UTC'];

const walls = new Map<string, Intl.DateTimeFormat>();
/** The wall-clock reading of an instant in a zone, as the runtime's own time-zone data gives it. */
function wallOf(ms: number, zone: string): string {
  let f = walls.get(zone);
  if (!f) walls.set(zone, (f = new Intl.DateTimeFormat('en-US', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' })));
  const p = Object.fromEntries(f.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

describe('toInstant against luxon as an oracle', () => {
  it('picks the earliest real reading of any local time, or luxon\'s forward shift in a gap', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ZONES),
        fc.date({ min: new Date('1900-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }),
        (zone, when) => {
          // Any wall-clock reading (taken from a random instant as if it were UTC), including gap and overlap times.
          const wall = DateTime.fromJSDate(when, { zone: 'UTC' });
          const text = wall.toFormat('yyyy-LL-dd HH:mm:ss');
          const local = DateTime.fromObject(
            { year: wall.year, month: wall.month, day: wall.day, hour: wall.hour, minute: wall.minute, second: wall.second },
            { zone },
          );
          const candidates = local.getPossibleOffsets().map((d) => d.toMillis());
          const r = toInstant(text, zone);
          expect(r.ok).toBe(true);
          if (!r.ok) return;
          const inGap = local.hour !== wall.hour || local.minute !== wall.minute || local.day !== wall.day;
          // Luxon's offset guess misses some real readings next to an old transition (Pacific/Apia,
          // 1950-01-02 00:29:59 is a plain -11:00 reading a day after the -11:30 → -11:00 change; luxon
          // calls it a gap). The oracle there is the runtime's data: our instant must read back as the wall time.
          if (inGap && r.note === undefined && wallOf(r.ms, zone) === text) return;
          if (inGap) {
            expect(r.ms).toBe(local.toMillis());
            expect(r.note).toMatch(/gap/);
          } else {
            expect(r.ms).toBe(Math.min(...candidates));
            expect(r.note === undefined).toBe(candidates.length === 1);
          }
        },
      ),
      { numRuns: 3000, examples: [['Pacific/Apia', new Date('1950-01-02T00:29:59.999Z')]] },
    );
  });

  it('reads a wall time luxon wrongly calls a gap as the runtime does (Pacific/Apia, 1950)', () => {
    const r = toInstant('1950-01-02 00:29:59', 'Pacific/Apia');
    expect(r).toEqual({ ok: true, ms: Date.parse('1950-01-02T11:29:59Z') });
    expect(wallOf(Date.parse('1950-01-02T11:29:59Z'), 'Pacific/Apia')).toBe('1950-01-02 00:29:59');
    // The real gap of that change, the day before: 00:00–00:29:59 never happened.
    const gap = toInstant('1950-01-01 00:10:00', 'Pacific/Apia');
    expect(gap.ok && gap.note).toMatch(/gap/);
  });

  it('reads instants near every transition of a year correctly', () => {
    // Every 15 minutes across 2026 in New York: converting the local reading back must give the instant,
    // except for the second pass through an overlap, which resolves to the first.
    const zone = 'America/New_York';
    let mismatches = 0;
    for (let t = Date.UTC(2026, 0, 1); t < Date.UTC(2027, 0, 1); t += 15 * 60_000) {
      const local = DateTime.fromMillis(t, { zone }).toFormat('yyyy-LL-dd HH:mm');
      const r = toInstant(local, zone);
      if (!r.ok) throw new Error(r.reason);
      if (r.ms !== t) {
        mismatches++;
        expect(r.ms).toBe(t - 3_600_000);
        expect(r.note).toMatch(/ambiguous/);
      }
    }
    // 01:00, 01:15, 01:30 and 01:45 EST on 2026-11-01 repeat an EDT reading.
    expect(mismatches).toBe(4);
  });
});

describe('toInstant on ISO text', () => {
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');

  it('reads every written form of a date-time with an offset as the instant it names', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }),
        fc.constantFrom('T', 't', ' '),
        fc.integer({ min: 0, max: 9 }),
        fc.constantFrom('Z', 'z', '+', '-'),
        fc.integer({ min: 0, max: 23 }),
        fc.integer({ min: 0, max: 59 }),
        fc.integer({ min: 0, max: 59 }),
        fc.constantFrom('hh', 'hhmm', 'hh:mm', 'hh:mm:ss', 'hhmmss'),
        fc.constantFrom('', ' '),
        (when, sep, fractionDigits, zone, oh, om, os, form, gap) => {
          const d = when;
          const date = `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
          const digits = `${pad(d.getUTCMilliseconds(), 3)}987654`.slice(0, fractionDigits);
          const time = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}${fractionDigits > 0 ? `.${digits}` : ''}`;
          let offsetMs = 0;
          let offset = zone;
          if (zone === '+' || zone === '-') {
            const parts = { hh: [oh], hhmm: [oh, om], 'hh:mm': [oh, om], 'hh:mm:ss': [oh, om, os], hhmmss: [oh, om, os] }[form]!;
            offset = zone + parts.map((n) => pad(n)).join(form.includes(':') ? ':' : '');
            offsetMs = (zone === '-' ? -1 : 1) * ((parts[0] ?? 0) * 3600 + (parts[1] ?? 0) * 60 + (parts[2] ?? 0)) * 1000;
          }
          const text = `${date}${sep}${time}${gap}${offset}`;
          // The wall time as written (milliseconds truncated to the digits given), less the offset.
          const shown = fractionDigits >= 3 ? d.getUTCMilliseconds() : Number(digits.padEnd(3, '0'));
          const expected = d.getTime() - d.getUTCMilliseconds() + shown - offsetMs;
          // The source timezone plays no part when the text carries its offset.
          expect(toInstant(text, 'Australia/Lord_Howe')).toStrictEqual({ ok: true, ms: expected });
          expect(toInstant(text, undefined)).toStrictEqual({ ok: true, ms: expected });
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('accepts exactly the calendar dates that exist, at the instant luxon gives them', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: 0, max: 9999 }), fc.constantFrom(0, 1, 4, 100, 400, 1600, 1900, 2000, 2024, 2100, 9996, 9999)),
        fc.oneof(fc.integer({ min: 0, max: 13 }), fc.constant(2)),
        fc.oneof(fc.integer({ min: 0, max: 32 }), fc.integer({ min: 28, max: 31 })),
        (year, month, day) => {
          const r = toInstant(`${pad(year, 4)}-${pad(month)}-${pad(day)}T06:07:08.009Z`, 'UTC');
          const oracle = DateTime.fromObject({ year, month, day, hour: 6, minute: 7, second: 8, millisecond: 9 }, { zone: 'UTC' });
          if (year >= 1 && oracle.isValid) expect(r).toStrictEqual({ ok: true, ms: oracle.toMillis() });
          else expect(r).toMatchObject({ ok: false, code: 'timestamp_invalid' });
        },
      ),
      { numRuns: 5000 },
    );
  });

  it.each<[string, string, string | undefined]>([
    ['padded with spaces', ' 2026-03-08T07:30:00Z\t', '2026-03-08T07:30:00.000Z'],
    ['a space before Z', '2026-03-08 07:30:00 Z', '2026-03-08T07:30:00.000Z'],
    ['a space before an offset', '2026-03-08 02:30:00 -05:00', '2026-03-08T07:30:00.000Z'],
    ['nine fraction digits', '2026-03-08T07:30:00.123456789Z', '2026-03-08T07:30:00.123Z'],
    ['ten fraction digits', '2026-03-08T07:30:00.1234567890Z', undefined],
    ['a comma before the fraction', '2026-03-08T07:30:00,5Z', '2026-03-08T07:30:00.500Z'],
    ['a fraction without seconds', '2026-03-08T07:30.5Z', undefined],
    ['two spaces before the time', '2026-03-08  07:30Z', undefined],
    ['a one-digit offset', '2026-03-08T07:30:00+5', undefined],
    ['an offset cut short', '2026-03-08T07:30:00+05:', undefined],
    ['a colon after the offset minutes', '2026-03-08T07:30:00+05:30:', undefined],
    ['a colon after a compact offset', '2026-03-08T07:30:00+0530:', undefined],
    ['offset seconds of one digit', '2026-03-08T07:30:00+05:30:1', undefined],
    ['a date with Z only', '2026-03-08Z', undefined],
    ['an epoch in text with a fraction', '1700000000.5', '2023-11-14T22:13:20.500Z'],
  ])('%s', (_name, text, expected) => {
    const r = toInstant(text, 'UTC');
    if (expected === undefined) expect(r).toMatchObject({ ok: false, code: 'timestamp_invalid' });
    else expect(r.ok && new Date(r.ms).toISOString()).toBe(expected);
  });
});

describe('instantReader', () => {
  const ZONES_OR_NONE = [...ZONES, undefined, '', 'Mars/Olympus_Mons'];
  const value = fc.oneof(
    fc.date({ min: new Date('1900-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }).chain((d) =>
      fc.constantFrom(d.toISOString(), d.toISOString().slice(0, 19).replace('T', ' '), d.toISOString().slice(0, 10), d, d.getTime(), String(Math.floor(d.getTime() / 1000))),
    ),
    fc.string(),
    fc.double(),
    fc.bigInt(),
    fc.constantFrom(null, undefined, true, -0, new Date(Number.NaN), '2026-11-01 01:30', '2026-03-08 02:30'),
  );

  it('reads every value as toInstant does, a plain number standing for an instant without a note', () => {
    fc.assert(
      fc.property(fc.constantFrom(...ZONES_OR_NONE), fc.array(value, { maxLength: 5 }), (zone, values) => {
        const read = instantReader(zone);
        for (const v of values) {
          const r = read(v);
          expect(typeof r === 'number' ? { ok: true, ms: r } : r).toStrictEqual(toInstant(v, zone));
        }
      }),
      { numRuns: 3000 },
    );
  });
});
