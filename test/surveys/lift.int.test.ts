/**
 * A survey target's lift from the state, on both backends (the embedded SQLite store, and Postgres when a
 * test server answers): invitations, holdout decisions and the mirror's events are written straight into
 * the state's tables (what `surveys run` and the mirror rebuild leave there), then counted by
 * `store.surveys.lift` and turned into figures by the report, which must match a hand-computed example.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { liftFromStore, reportTarget, SurveyReportTargetError } from '../../reconciler/composition/surveys-report.ts';
import type { SpecModel } from '../../reconciler/spec/model.ts';
import { validateSpecs } from '../../reconciler/spec/validate.ts';
import type { StateStore } from '../../reconciler/state/index.ts';
import { baseSpecs, toFiles } from '../support/spec-fixtures.ts';
import { stateBackends, type Backend } from '../support/state-backends.ts';

const ENV = 'test';
const DAY = 86_400_000;
const WITHIN = 30 * DAY;
const OUTCOME = { event: 'order_placed', within: '30d', withinMs: WITHIN, label: 'second order within 30 days' };
/** Decisions at T0 have a window closing at T0 + 30d, well before NOW; those at LATE are still open at NOW. */
const T0 = Date.parse('2026-10-01T00:00:00.000Z');
const LATE = Date.parse('2026-11-15T00:00:00.000Z');
const NOW = new Date('2026-12-01T00:00:00.000Z');

const backends = await stateBackends('lift');
afterAll(async () => {
  for (const b of backends) await b.cleanup();
});
let backend: Backend;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

const q = (v: string) => `'${v.replaceAll("'", "''")}'`;
const iso = (ms: number) => new Date(ms).toISOString();

interface Seed {
  /** [target, person, decided at (ms), held out] */
  decisions: Array<[string, string, number, 0 | 1]>;
  /** [person, event name, occurred (ms)] */
  events: Array<[string, string, number]>;
}

async function store(seed: Seed): Promise<StateStore> {
  const loc = await backend.newLocation();
  const s = await backend.open(loc, { env: ENV, clock: { now: () => NOW } });
  const raw = await backend.raw(loc, ENV);
  cleanups.push(async () => {
    await raw.close();
    await s.close();
  });
  const sql: string[] = [];
  for (let i = 0; i < seed.decisions.length; i += 500) {
    const rows = seed.decisions.slice(i, i + 500).map(([t, p, at, h]) => `(${q(ENV)}, ${q(t)}, ${q(p)}, ${q(iso(at))}, ${h}, NULL)`);
    sql.push(`INSERT INTO survey_invitations (env, target, person_id, invited_at, held_out, distribution_id) VALUES ${rows.join(', ')}`);
  }
  for (let i = 0; i < seed.events.length; i += 500) {
    const rows = seed.events.slice(i, i + 500).map(([p, name, ms]) => `(${q(ENV)}, ${q(p)}, ${q(name)}, ${ms})`);
    sql.push(`INSERT INTO mirror_events (env, person_id, name, occurred_ms) VALUES ${rows.join(', ')}`);
  }
  if (sql.length) await raw.exec(sql.join(';\n'));
  return s;
}

for (const b of backends) {
  describe.skipIf(!b.available)(`survey lift on ${b.name}`, () => {
    beforeEach(() => {
      backend = b;
    });

    it('counts each person once, by their first decision, with the window’s edges exact', async () => {
      const s = await store({
        decisions: [
          ['fit', 'i1', T0, 0], // order a day later: reached
          ['fit', 'i2', T0, 0], // order at the very instant of the invitation: not its effect
          ['fit', 'i3', T0, 0], // order exactly 30 days later: the last instant counts
          ['fit', 'i4', T0, 0], // 1 ms after the window: not counted
          ['fit', 'i5', T0, 0], // another event inside the window: not the outcome
          ['fit', 'i6', T0, 0], // nothing
          ['fit', 'i7', T0, 0], // two orders inside the window: one person reached
          ['fit', 'i8', T0, 0], // invited again later; only the first decision's window counts
          ['fit', 'i8', T0 + 40 * DAY, 0],
          ['fit', 'i9', LATE, 0], // window still open at NOW, even with an order: not counted yet
          ['fit', 'h1', T0, 1], // held out, ordered: reached
          ['fit', 'h2', T0, 1], // held out, nothing
          ['fit', 'h3', LATE, 1], // held out, window still open
          ['fit', 'h4', T0, 1], // held out first, invited later: stays in the holdout
          ['fit', 'h4', T0 + 45 * DAY, 0],
          ['other', 'x1', T0, 0], // another target's decision: not this one's
          ['other', 'i6', T0 - 5 * DAY, 1], // i6 held out of another target first: irrelevant here
        ],
        events: [
          ['i1', 'order_placed', T0 + DAY],
          ['i2', 'order_placed', T0],
          ['i3', 'order_placed', T0 + WITHIN],
          ['i4', 'order_placed', T0 + WITHIN + 1],
          ['i5', 'order_delivered', T0 + DAY],
          ['i7', 'order_placed', T0 + 2 * DAY],
          ['i7', 'order_placed', T0 + 9 * DAY],
          ['i8', 'order_placed', T0 + 41 * DAY],
          ['i9', 'order_placed', LATE + DAY],
          ['h1', 'order_placed', T0 + 2 * DAY],
          ['h3', 'order_placed', LATE + DAY],
          ['h4', 'order_placed', T0 + 3 * DAY],
          ['x1', 'order_placed', T0 + DAY],
        ],
      });
      const counts = await s.surveys.lift({ target: 'fit', event: 'order_placed', withinMs: WITHIN, nowMs: NOW.getTime() });
      expect(counts).toEqual({
        invited: { decided: 9, open: 1, closed: 8, reached: 3 }, // i1, i3, i7 of i1–i8
        holdout: { decided: 4, open: 1, closed: 3, reached: 2 }, // h1, h4 of h1, h2, h4
      });
      // At the instant a window closes it is closed: i9's and h3's close at LATE + 30d.
      const atClose = await s.surveys.lift({ target: 'fit', event: 'order_placed', withinMs: WITHIN, nowMs: LATE + WITHIN });
      expect(atClose.invited).toEqual({ decided: 9, open: 0, closed: 9, reached: 4 });
      expect(atClose.holdout).toEqual({ decided: 4, open: 0, closed: 4, reached: 3 });
      expect(await s.surveys.lift({ target: 'nobody', event: 'order_placed', withinMs: WITHIN, nowMs: NOW.getTime() })).toEqual({
        invited: { decided: 0, open: 0, closed: 0, reached: 0 },
        holdout: { decided: 0, open: 0, closed: 0, reached: 0 },
      });
    });

    /*
     * End to end against a hand-computed example (Newcombe 1998, Table II (a); the steps are in
     * reconciler/surveys/lift.test.ts): 70 invited people whose window closed, 56 of whom ordered again,
     * against 80 held out, 48 of whom did. Rates 0.8 and 0.6, difference 0.2000, 95% interval 0.0524 to
     * 0.3339, relative lift 0.2 / 0.6 = 0.3333. Plus people the report must leave out of the rates: 7
     * invited and 3 held out still inside their window (some already ordered), and orders outside windows.
     */
    it('gives the hand-computed figures end to end, with open windows apart', async () => {
      const decisions: Seed['decisions'] = [];
      const events: Seed['events'] = [];
      for (let i = 0; i < 70; i++) {
        decisions.push(['fit', `inv_${i}`, T0 + i * 60_000, 0]);
        if (i < 56) events.push([`inv_${i}`, 'order_placed', T0 + i * 60_000 + 10 * DAY]);
        else events.push([`inv_${i}`, 'order_placed', T0 + i * 60_000 - DAY]); // before the invitation
      }
      for (let i = 0; i < 80; i++) {
        decisions.push(['fit', `hold_${i}`, T0 + i * 60_000, 1]);
        if (i < 48) events.push([`hold_${i}`, 'order_placed', T0 + i * 60_000 + 20 * DAY]);
        else events.push([`hold_${i}`, 'order_placed', T0 + i * 60_000 + 31 * DAY]); // after the window
      }
      for (let i = 0; i < 7; i++) {
        decisions.push(['fit', `open_inv_${i}`, LATE, 0]);
        if (i < 4) events.push([`open_inv_${i}`, 'order_placed', LATE + DAY]);
      }
      for (let i = 0; i < 3; i++) decisions.push(['fit', `open_hold_${i}`, LATE, 1]);
      const s = await store({ decisions, events });
      const r = await liftFromStore(s, 'fit', OUTCOME, NOW);
      expect(r).toMatchObject({
        at: '2026-12-01T00:00:00.000Z',
        survey_target: 'fit',
        outcome: { event: 'order_placed', within: '30d', label: 'second order within 30 days' },
        invited: { decided: 77, open: 7, closed: 70, reached: 56 },
        holdout: { decided: 83, open: 3, closed: 80, reached: 48 },
        status: 'ok',
      });
      expect(r.invited.rate).toBeCloseTo(0.8, 12);
      expect(r.holdout.rate).toBeCloseTo(0.6, 12);
      expect(r.difference).toBeCloseTo(0.2, 12);
      expect(r.ci!.lower).toBeCloseTo(0.0524, 4);
      expect(r.ci!.upper).toBeCloseTo(0.3339, 4);
      expect(r.relative_lift).toBeCloseTo(1 / 3, 12);
      // Counts only: no person id anywhere in what the report returns.
      expect(JSON.stringify(r)).not.toMatch(/inv_|hold_/);
    });

    it('is "no data" while every window is still open', async () => {
      const s = await store({ decisions: [['fit', 'a', LATE, 0], ['fit', 'b', LATE, 1]], events: [['a', 'order_placed', LATE + DAY]] });
      const r = await liftFromStore(s, 'fit', OUTCOME, NOW);
      expect(r.status).toBe('no_data');
      expect(r.invited).toEqual({ decided: 1, open: 1, closed: 0, reached: 0, rate: null });
      expect(r.difference).toBeNull();
      expect(r.ci).toBeNull();
    });
  });
}

describe('the report’s target', () => {
  function model(mutate: (s: ReturnType<typeof baseSpecs>) => void = () => {}): SpecModel {
    const s = baseSpecs();
    mutate(s);
    const r = validateSpecs(toFiles(s));
    expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    return r.model!;
  }

  it('reads the outcome, with a default label', () => {
    const m = model((s) => {
      s.surveys[0]!.outcome = { event: 'order_placed', within: '30d' };
      const orders = structuredClone(s.sources[0]!);
      delete orders.ordering;
      s.sources.push({ ...orders, name: 'placed', records: 'event', fields: {}, event: { name: 'order_placed', timestamp_column: 'at', id_columns: ['id'] } });
    });
    expect(reportTarget(m, 'fit').outcome).toEqual({ event: 'order_placed', within: '30d', withinMs: WITHIN, label: 'order_placed within 30d' });
  });

  it('refuses an unknown target, suggesting the closest, and one without an outcome, at its location', () => {
    const m = model();
    expect(() => reportTarget(m, 'fitt')).toThrow(SurveyReportTargetError);
    expect(() => reportTarget(m, 'fitt')).toThrow(/no SurveyTarget named "fitt".*Did you mean "fit"\?/);
    expect(() => reportTarget(m, 'fit')).toThrow(/^specs\/surveys\.yaml:\d+:\d+: survey target fit declares no outcome/);
  });
});
