/**
 * Survey eligibility on both state backends (the embedded SQLite store, and Postgres when a test server
 * answers): the mirror and the audience candidates are written straight into the state's tables (what
 * `rebuildMirror` and an audience evaluation would leave there; the store has no API to write them
 * otherwise), the survey targets are parsed from YAML, and the funnel is asserted person by person.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stateBackends, type Backend } from '../../test/support/state-backends.ts';
import { DAY_MS } from '../core/duration.ts';
import type { Located, SpecModel } from '../spec/model.ts';
import { parseYamlFile } from '../spec/parse.ts';
import { SurveyTargetSpec, type WorkspaceSpec } from '../spec/schema/index.ts';
import type { StateStore } from '../state/index.ts';
import { eligibleIds, evaluateEligibility, heldOutIds, SurveyEligibilityError, type TargetEligibility } from './eligibility.ts';
import { inHoldout } from './holdout.ts';

const ENV = 'test';
const backends = await stateBackends('surveys');
let backend: Backend;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

interface World {
  store: StateStore;
  clock: { at: Date; now(): Date };
  /** Test-only: writes the mirror and the audience candidates the way an evaluation leaves them. */
  person(id: string | string[], opts: { segments?: string[]; events?: Array<[name: string, occurredMs: number]>; email?: string }): Promise<void>;
  /** Test-only: a decision tidemark recorded (what a send writes once Qualtrics acknowledged it). */
  invited(id: string, target: string, atMs: number, distributionId?: string): Promise<void>;
}

const q = (v: string) => `'${v.replaceAll("'", "''")}'`;

async function world(): Promise<World> {
  const loc = await backend.newLocation();
  const clock = { at: new Date('2026-12-01T12:00:00Z'), now() { return new Date(this.at.getTime()); } };
  const store = await backend.open(loc, { env: ENV, clock });
  const raw = await backend.raw(loc, ENV);
  cleanups.push(async () => {
    await raw.close();
    await store.close();
  });
  return {
    store,
    clock,
    async invited(id, t, atMs, distributionId) {
      await raw.exec(
        `INSERT INTO survey_invitations (env, target, person_id, invited_at, held_out, distribution_id) VALUES (${q(ENV)}, ${q(t)}, ${q(id)}, ${q(new Date(atMs).toISOString())}, 0, ${distributionId ? q(distributionId) : 'NULL'})`,
      );
    },
    async person(id, { segments = ['buyers'], events = [], email }) {
      const people: string[] = [];
      const members: string[] = [];
      const evs: string[] = [];
      for (const p of Array.isArray(id) ? id : [id]) {
        people.push(`(${q(ENV)}, ${q(p)})`);
        for (const seg of segments) members.push(`(${q(ENV)}, ${q(seg)}, ${q(p)})`);
        for (const [name, ms] of events) evs.push(`(${q(ENV)}, ${q(p)}, ${q(name)}, ${ms})`);
      }
      const sql = [`INSERT INTO mirror_people (env, person_id) VALUES ${people.join(', ')} ON CONFLICT DO NOTHING`];
      if (members.length) sql.push(`INSERT INTO audience_candidates (env, segment, person_id) VALUES ${members.join(', ')} ON CONFLICT DO NOTHING`);
      if (evs.length) sql.push(`INSERT INTO mirror_events (env, person_id, name, occurred_ms) VALUES ${evs.join(', ')}`);
      if (email !== undefined) {
        const rows = (Array.isArray(id) ? id : [id]).map((p) => `(${q(ENV)}, ${q(p)}, 'email', ${q(email)})`);
        sql.push(`INSERT INTO mirror_attributes (env, person_id, field, value) VALUES ${rows.join(', ')}`);
      }
      await raw.exec(sql.join(';\n'));
    },
  };
}

function target(yaml: string, i = 0): Located<SurveyTargetSpec> {
  const doc = parseYamlFile('specs/surveys.yaml', yaml).documents[i]!;
  const spec = SurveyTargetSpec.parse(doc.data);
  return { kind: 'SurveyTarget', name: spec.name, address: `survey_target.${spec.name}`, spec, pd: doc };
}

/** A survey target with the fields eligibility ignores filled in. */
function targetYaml(name: string, extra: string): string {
  return `kind: SurveyTarget
name: ${name}
survey: SV_abc123
purpose: other
identifier: id
mailing_list: { name: "tidemark: ${name}" }
${extra}
`;
}

function model(targets: Array<Located<SurveyTargetSpec>>, surveys?: WorkspaceSpec['surveys']): SpecModel {
  return {
    surveyTargets: new Map(targets.map((t) => [t.name, t])),
    ...(surveys ? { workspace: { spec: { surveys } } } : {}),
  } as unknown as SpecModel;
}

async function ids(pages: AsyncGenerator<string[]>): Promise<string[]> {
  const out: string[] = [];
  for await (const p of pages) out.push(...p);
  return out.sort();
}

const byTarget = (rows: TargetEligibility[]) => Object.fromEntries(rows.map((r) => [r.target, r]));

for (const b of backends) {
  describe.skipIf(!b.available)(`survey eligibility on ${b.name}`, () => {
    afterAll(() => b.cleanup());
    beforeEach(() => {
      backend = b;
    });
    describe('moment window', () => {
      const now = Date.parse('2026-12-01T12:00:00Z');
      // after: 7d, before: 14d → now − 14d ≤ occurred_ms ≤ now − 7d, both edges in.
      const cases: Array<[person: string, events: Array<[string, number]>, inWindow: boolean]> = [
        ['exactly_after', [['order_delivered', now - 7 * DAY_MS]], true],
        ['just_too_recent', [['order_delivered', now - 7 * DAY_MS + 1]], false],
        ['exactly_before', [['order_delivered', now - 14 * DAY_MS]], true],
        ['just_too_old', [['order_delivered', now - 14 * DAY_MS - 1]], false],
        ['middle', [['order_delivered', now - 10 * DAY_MS]], true],
        ['other_event', [['order_placed', now - 10 * DAY_MS]], false],
        ['future', [['order_delivered', now + DAY_MS]], false],
        ['no_events', [], false],
        // The latest event in the window counts; a newer one outside it does not hide it.
        ['old_and_new', [['order_delivered', now - 10 * DAY_MS], ['order_delivered', now - DAY_MS]], true],
      ];

      it('takes in the trigger events from now − before to now − after, both edges in', async () => {
        const w = await world();
        for (const [id, events] of cases) await w.person(id, { events });
        await w.person('outside_audience', { segments: ['others'], events: [['order_delivered', now - 10 * DAY_MS]] });
        const m = model([target(targetYaml('fit', 'audience: buyers\nmoment: { event: order_delivered, after: 7d, before: 14d }'))]);
        const r = await evaluateEligibility({ model: m, environment: ENV, store: w.store, now: new Date(now) });
        const expected = cases.filter(([, , inside]) => inside).map(([id]) => id).sort();
        expect(await ids(eligibleIds(w.store, 'fit'))).toEqual(expected);
        expect(r.targets).toEqual([
          { target: 'fit', audience: cases.length, in_window: expected.length, already_invited: 0, capped: 0, qualtrics_capped: 0, opted_out: 0, bounced: 0, no_email: 0, waiting: 0, claimed_by_other: 0, held_out: 0, eligible: expected.length },
        ]);
      });

      it('counts a 7-day window across the 2026-11-01 US DST change as exactly 7 × 24 h of UTC', async () => {
        // The sync converts a naive local event time to UTC epoch ms before it reaches the mirror, so the
        // window is pure UTC arithmetic. In New York, 2026-10-31 is EDT (UTC−4) and 2026-11-07 is EST (UTC−5).
        const offset = (iso: string) =>
          new Intl.DateTimeFormat('en-US', { timeZone: 'America/New_York', timeZoneName: 'shortOffset' }).formatToParts(new Date(iso)).find((p) => p.type === 'timeZoneName')!.value;
        expect(offset('2026-10-31T17:00:00Z')).toBe('GMT-4');
        expect(offset('2026-11-07T17:00:00Z')).toBe('GMT-5');

        const now = Date.parse('2026-11-07T12:00:00-05:00'); // noon local, after the change
        const w = await world();
        // Local 13:00 on Oct 31 is 17:00Z: 168 h of UTC before now, though the wall clock says 6 days 23 hours.
        await w.person('exactly_168h', { events: [['order_delivered', Date.parse('2026-10-31T13:00:00-04:00')]] });
        // Local 12:00 on Oct 31 (a calendar week by the wall clock) is 169 h of UTC before now.
        await w.person('wall_clock_week', { events: [['order_delivered', Date.parse('2026-10-31T12:00:00-04:00')]] });
        // One second later than 168 h: not yet 7 days of UTC.
        await w.person('one_second_short', { events: [['order_delivered', Date.parse('2026-10-31T13:00:01-04:00')]] });
        expect(now - Date.parse('2026-10-31T13:00:00-04:00')).toBe(7 * 24 * 3_600_000);

        const m = model([target(targetYaml('fit', 'audience: buyers\nmoment: { event: order_delivered, after: 7d, before: 169h }'))]);
        await evaluateEligibility({ model: m, environment: ENV, store: w.store, now: new Date(now) });
        expect(await ids(eligibleIds(w.store, 'fit'))).toEqual(['exactly_168h', 'wall_clock_week']);
      });
    });

    describe('frequency caps', () => {
      it('count invitations across targets (all_surveys) or only their own (this_target), across runs', async () => {
        const w = await world();
        const day0 = Date.parse('2026-12-01T12:00:00Z');
        for (const id of ['p1', 'p2', 'p3', 'p4', 'p5', 'p6']) await w.person(id, { events: [['order_delivered', day0 - 10 * DAY_MS]] });
        const moment = 'moment: { event: order_delivered, after: 1d, before: 20d }';
        const m = model([
          target(targetYaml('first', `audience: buyers\n${moment}\npriority: 1\nfrequency_cap: { max: 1, per: 30d }`)),
          target(targetYaml('second', `audience: buyers\n${moment}\npriority: 2\nfrequency_cap: { max: 1, per: 30d, scope: this_target }`)),
        ]);
        // Before this run: `second` invited p1 and p2 five days ago; `first` invited p3 forty days ago (outside 30d).
        w.clock.at = new Date(day0 - 40 * DAY_MS);
        await w.store.surveys.recordInvitations('first', ['p3'], { heldOut: false });
        w.clock.at = new Date(day0 - 5 * DAY_MS);
        await w.store.surveys.recordInvitations('second', ['p1', 'p2'], { heldOut: false });

        const run1 = byTarget((await evaluateEligibility({ model: m, environment: ENV, store: w.store, now: new Date(day0) })).targets);
        // first: p1, p2 are capped by second's invitations (all_surveys); p3's is older than 30 days.
        expect(run1.first).toMatchObject({ in_window: 6, already_invited: 0, capped: 2, claimed_by_other: 0, eligible: 4 });
        expect(await ids(eligibleIds(w.store, 'first'))).toEqual(['p3', 'p4', 'p5', 'p6']);
        // second: it handled p1, p2 already; first claims p3..p6 in this run.
        expect(run1.second).toMatchObject({ in_window: 6, already_invited: 2, capped: 0, claimed_by_other: 4, eligible: 0 });

        // The export invites first's four; the next day nobody is invited twice by first, but second's cap is
        // its own (this_target), so first's invitations do not cap it.
        w.clock.at = new Date(day0);
        await w.store.surveys.recordInvitations('first', await ids(eligibleIds(w.store, 'first')), { heldOut: false, distributionId: 'EMD_1' });
        const run2 = byTarget((await evaluateEligibility({ model: m, environment: ENV, store: w.store, now: new Date(day0 + DAY_MS) })).targets);
        expect(run2.first).toMatchObject({ in_window: 6, already_invited: 4, capped: 2, eligible: 0 });
        expect(run2.second).toMatchObject({ in_window: 6, already_invited: 2, capped: 0, claimed_by_other: 0, eligible: 4 });
        expect(await ids(eligibleIds(w.store, 'second'))).toEqual(['p3', 'p4', 'p5', 'p6']);
      });

      it('falls back to the Workspace cap, counted across every target; holdout decisions count like invitations', async () => {
        const w = await world();
        const now = Date.parse('2026-12-01T12:00:00Z');
        for (const id of ['twice', 'once', 'held_twice']) await w.person(id, { events: [['cancel_requested', now - 2 * 3_600_000]] });
        w.clock.at = new Date(now - 50 * DAY_MS);
        await w.store.surveys.recordInvitations('elsewhere', ['twice', 'once'], { heldOut: false });
        await w.store.surveys.recordInvitations('elsewhere', ['held_twice'], { heldOut: true });
        w.clock.at = new Date(now - 20 * DAY_MS);
        await w.store.surveys.recordInvitations('other', ['twice'], { heldOut: false });
        await w.store.surveys.recordInvitations('other', ['held_twice'], { heldOut: true });
        const m = model([target(targetYaml('cancel', 'audience: buyers\nmoment: { event: cancel_requested, after: 1h, before: 2d }'))], { frequency_cap: { max: 2, per: '60d' }, max_payload_fields: 8 });
        const r = await evaluateEligibility({ model: m, environment: ENV, store: w.store, now: new Date(now) });
        // held_twice was held out twice: a control group is left alone as long as an invited person would be.
        expect(r.targets[0]).toMatchObject({ in_window: 3, capped: 2, eligible: 1 });
        expect(await ids(eligibleIds(w.store, 'cancel'))).toEqual(['once']);
      });
    });

    describe('priority between overlapping targets', () => {
      const cases: Array<[label: string, alpha: number | undefined, beta: number | undefined, winner: string]> = [
        ['no priorities: name order', undefined, undefined, 'alpha'],
        ['the lower number wins', 5, 1, 'beta'],
        ['a declared priority comes before none', undefined, 3, 'beta'],
        ['equal priorities: name order', 2, 2, 'alpha'],
      ];
      it.each(cases)('%s', async (_label, alpha, beta, winner) => {
        const w = await world();
        const now = Date.parse('2026-12-01T12:00:00Z');
        const ev: Array<[string, number]> = [['order_delivered', now - 3 * DAY_MS]];
        for (const id of ['both1', 'both2', 'both3']) await w.person(id, { segments: ['a', 'b'], events: ev });
        await w.person('only_a', { segments: ['a'], events: ev });
        await w.person('only_b', { segments: ['b'], events: ev });
        const moment = 'moment: { event: order_delivered, after: 1d, before: 7d }';
        const prio = (p: number | undefined) => (p === undefined ? '' : `\npriority: ${p}`);
        // Declared beta first: the declaration order must not matter.
        const m = model([target(targetYaml('beta', `audience: b\n${moment}${prio(beta)}`)), target(targetYaml('alpha', `audience: a\n${moment}${prio(alpha)}`))]);
        const r = await evaluateEligibility({ model: m, environment: ENV, store: w.store, now: new Date(now) });
        const loser = winner === 'alpha' ? 'beta' : 'alpha';
        expect(r.targets.map((t) => t.target)).toEqual([winner, loser]);
        const got = byTarget(r.targets);
        expect(got[winner]).toMatchObject({ eligible: 4, claimed_by_other: 0 });
        expect(got[loser]).toMatchObject({ eligible: 1, claimed_by_other: 3 });
        const a = await ids(eligibleIds(w.store, 'alpha'));
        const b = await ids(eligibleIds(w.store, 'beta'));
        expect(a.filter((id) => b.includes(id))).toEqual([]); // one survey per person
        expect([...a, ...b].sort()).toEqual(['both1', 'both2', 'both3', 'only_a', 'only_b']);
      });
    });

    describe('holdout', () => {
      it('holds out the hash-chosen share, the same people on every run, and they stay claimed', async () => {
        const w = await world();
        const now = Date.parse('2026-12-01T12:00:00Z');
        const people = Array.from({ length: 2000 }, (_, i) => `c${String(i).padStart(5, '0')}`);
        await w.person(people, { segments: ['a', 'b'], events: [['order_delivered', now - 3 * DAY_MS]] });
        const moment = 'moment: { event: order_delivered, after: 1d, before: 7d }';
        const m = model([target(targetYaml('first', `audience: a\n${moment}\npriority: 1\nholdout: 15%`)), target(targetYaml('second', `audience: b\n${moment}\npriority: 2`))]);
        const expectedHeld = people.filter((id) => inHoldout(id, 'first', 0.15));
        const runs = [];
        for (let i = 0; i < 2; i++) {
          const r = byTarget((await evaluateEligibility({ model: m, environment: ENV, store: w.store, now: new Date(now) })).targets);
          runs.push({ held: await ids(heldOutIds(w.store, 'first')), eligible: await ids(eligibleIds(w.store, 'first')), r });
        }
        for (const run of runs) {
          expect(run.held).toEqual(expectedHeld);
          expect(run.r.first).toMatchObject({ held_out: expectedHeld.length, eligible: people.length - expectedHeld.length });
          // A held-out person is first's control group: no other target surveys them in this run.
          expect(run.r.second).toMatchObject({ claimed_by_other: people.length, eligible: 0 });
        }
        expect(expectedHeld.length).toBeGreaterThan(200);
        expect(expectedHeld.length).toBeLessThan(400);
      });
    });

    describe('opted out', () => {
      it('excludes the people the hook reports for a target; a person opted out of one target only stays open to the others', async () => {
        const w = await world();
        const now = Date.parse('2026-12-01T12:00:00Z');
        for (const id of ['p1', 'p2', 'p3', 'p4']) await w.person(id, { segments: ['a', 'b'], events: [['order_delivered', now - 3 * DAY_MS]] });
        const moment = 'moment: { event: order_delivered, after: 1d, before: 7d }';
        const m = model([target(targetYaml('first', `audience: a\n${moment}\npriority: 1`)), target(targetYaml('second', `audience: b\n${moment}\npriority: 2`))]);
        const asked: string[] = [];
        const optedOut = async (t: string) => {
          asked.push(t);
          return new Set(t === 'first' ? ['p1', 'p2', 'unknown'] : ['p1']);
        };
        const r = byTarget((await evaluateEligibility({ model: m, environment: ENV, store: w.store, now: new Date(now), optedOut })).targets);
        expect(asked).toEqual(['first', 'second']);
        expect(r.first).toMatchObject({ opted_out: 2, eligible: 2 });
        expect(await ids(eligibleIds(w.store, 'first'))).toEqual(['p3', 'p4']);
        // p1 opted out of both; p2 only of first, so second may ask them.
        expect(r.second).toMatchObject({ opted_out: 1, claimed_by_other: 2, eligible: 1 });
        expect(await ids(eligibleIds(w.store, 'second'))).toEqual(['p2']);

        const none = byTarget((await evaluateEligibility({ model: m, environment: ENV, store: w.store, now: new Date(now) })).targets);
        expect(none.first).toMatchObject({ opted_out: 0, eligible: 4 });
      });
    });

    describe('bounced', () => {
      it('excludes a person while the mirror still holds an address Qualtrics reports bounced, counted apart from opted out', async () => {
        const w = await world();
        const now = Date.parse('2026-12-01T12:00:00Z');
        const ev: Array<[string, number]> = [['order_delivered', now - 3 * DAY_MS]];
        await w.person('same', { segments: ['a'], events: ev, email: 'Same@Example.com' });
        await w.person('moved', { segments: ['a'], events: ev, email: 'new@example.com' });
        await w.person('unknown_address', { segments: ['a'], events: ev, email: 'x@example.com' });
        await w.person('clean', { segments: ['a'], events: ev, email: 'clean@example.com' });
        const m = model([target(targetYaml('first', 'audience: a\nmoment: { event: order_delivered, after: 1d, before: 7d }'))]);
        const bounced = async () =>
          new Map<string, ReadonlySet<string>>([
            ['same', new Set(['same@example.com'])],
            // The person changed address since: the new one is tried.
            ['moved', new Set(['old@example.com'])],
            // Qualtrics did not say which address: taken as the current one.
            ['unknown_address', new Set([''])],
          ]);
        const r = byTarget((await evaluateEligibility({ model: m, environment: ENV, store: w.store, now: new Date(now), bounced, emailField: 'email' })).targets);
        expect(r.first).toMatchObject({ in_window: 4, opted_out: 0, bounced: 2, eligible: 2 });
        expect(await ids(eligibleIds(w.store, 'first'))).toEqual(['clean', 'moved']);
        // Without an email field the bounce is read by person.
        const byPerson = byTarget((await evaluateEligibility({ model: m, environment: ENV, store: w.store, now: new Date(now), bounced })).targets);
        expect(byPerson.first).toMatchObject({ bounced: 3, eligible: 1 });
      });
    });

    describe('invitations Qualtrics reports (sent outside tidemark)', () => {
      const now = Date.parse('2026-12-01T12:00:00Z');
      const moment = 'moment: { event: order_delivered, after: 1d, before: 7d }';
      const ev: Array<[string, number]> = [['order_delivered', now - 3 * DAY_MS]];

      it('adds them to the decisions tidemark recorded under the cap, inside its period only, and asks only for the candidates left under it', async () => {
        const w = await world();
        for (const id of ['ui_recent', 'ui_old', 'tm_and_ui', 'tm_capped', 'none']) await w.person(id, { segments: ['a'], events: ev, email: `${id}@example.com` });
        await w.invited('tm_and_ui', 'other', now - 20 * DAY_MS);
        await w.invited('tm_capped', 'other', now - 20 * DAY_MS);
        await w.invited('tm_capped', 'other', now - 10 * DAY_MS);
        const m = model([target(targetYaml('first', `audience: a\n${moment}\nfrequency_cap: { max: 2, per: 30d }`))]);
        const asked: string[][] = [];
        const qualtricsInvites = async (people: ReadonlyArray<{ id: string; email: string | null }>) => {
          asked.push(people.map((p) => `${p.id}<${p.email}>`));
          return new Map([
            ['ui_recent', [{ at_ms: now - 2 * DAY_MS, survey: 'SV_ui' }, { at_ms: now - 29 * DAY_MS, survey: 'SV_ui' }]],
            ['ui_old', [{ at_ms: now - 31 * DAY_MS, survey: 'SV_ui' }, { at_ms: now - 5 * DAY_MS, survey: 'SV_ui' }]],
            ['tm_and_ui', [{ at_ms: now - DAY_MS, survey: null }]],
          ]);
        };
        const r = byTarget((await evaluateEligibility({ model: m, environment: ENV, store: w.store, now: new Date(now), qualtricsInvites, emailField: 'email' })).targets);
        // tm_capped is capped by tidemark's own records and never asked about.
        expect(asked).toEqual([['none<none@example.com>', 'tm_and_ui<tm_and_ui@example.com>', 'ui_old<ui_old@example.com>', 'ui_recent<ui_recent@example.com>']]);
        expect(r.first).toMatchObject({ in_window: 5, capped: 3, qualtrics_capped: 2, eligible: 2 });
        expect(await ids(eligibleIds(w.store, 'first'))).toEqual(['none', 'ui_old']);
      });

      it('counts only the scoped targets\' surveys under a this_target cap, and every survey under all_surveys', async () => {
        const w = await world();
        await w.person('u', { segments: ['a'], events: ev });
        const qualtricsInvites = async () => new Map([['u', [{ at_ms: now - DAY_MS, survey: 'SV_other' }]]]);
        const own = model([target(targetYaml('first', `audience: a\n${moment}\nfrequency_cap: { max: 1, per: 30d, scope: this_target }`))]);
        expect(byTarget((await evaluateEligibility({ model: own, environment: ENV, store: w.store, now: new Date(now), qualtricsInvites })).targets).first).toMatchObject({ capped: 0, eligible: 1 });
        const sameSurvey = async () => new Map([['u', [{ at_ms: now - DAY_MS, survey: 'SV_abc123' }]]]);
        expect(byTarget((await evaluateEligibility({ model: own, environment: ENV, store: w.store, now: new Date(now), qualtricsInvites: sameSurvey })).targets).first).toMatchObject({ capped: 1, qualtrics_capped: 1, eligible: 0 });
        const all = model([target(targetYaml('first', `audience: a\n${moment}\nfrequency_cap: { max: 1, per: 30d }`))]);
        expect(byTarget((await evaluateEligibility({ model: all, environment: ENV, store: w.store, now: new Date(now), qualtricsInvites })).targets).first).toMatchObject({ capped: 1, eligible: 0 });
        // No cap at all: Qualtrics is not asked.
        let calls = 0;
        const counting = async () => (calls++, new Map());
        const uncapped = model([target(targetYaml('first', `audience: a\n${moment}`))]);
        await evaluateEligibility({ model: uncapped, environment: ENV, store: w.store, now: new Date(now), qualtricsInvites: counting });
        expect(calls).toBe(0);
      });
    });

    describe('identifiers', () => {
      it('refuses identifier: email with a UserError naming the spec location', async () => {
        const w = await world();
        const yaml = targetYaml('by_email', 'audience: a\nmoment: { event: e, after: 1d, before: 2d }').replace('identifier: id', 'identifier: email');
        const run = evaluateEligibility({ model: model([target(yaml)]), environment: ENV, store: w.store, now: new Date() });
        await expect(run).rejects.toBeInstanceOf(SurveyEligibilityError);
        await expect(run).rejects.toThrow(/^specs\/surveys\.yaml:5:\d+: survey target by_email uses identifier: email, which eligibility does not support yet/);
      });
    });
  });
}
