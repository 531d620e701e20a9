import fc from 'fast-check';
import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { toInstant } from './timezones.ts';

const ZONES = ['America/New_York', 'Europe/London', 'Australia/Sydney', 'Australia/Lord_Howe', 'America/Santiago', 'Asia/Kolkata', 'Pacific/Apia', 'UTC'];

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
          if (inGap) {
            expect(r.ms).toBe(local.toMillis());
            expect(r.note).toMatch(/gap/);
          } else {
            expect(r.ms).toBe(Math.min(...candidates));
            expect(r.note === undefined).toBe(candidates.length === 1);
          }
        },
      ),
      { numRuns: 3000 },
    );
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
