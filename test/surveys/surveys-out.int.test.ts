/**
 * Surveys out, end to end on the sandbox (issue 12 points 2, 5 and 7): the CLI (in process) runs
 * `apply --auto-approve` → `sync run` per source → `surveys plan|run`, every command at an explicit
 * `--now`, and the assertions read what Qualtrics holds (mailing-list contacts, transaction batches,
 * distributions) and the counts `surveys plan|run --format json` print.
 *
 * Sends happen at 2027 clocks: the Qualtrics emulator refuses an expiration in its own (real) past, as
 * Qualtrics does. The DST case of 2026-11-01 only plans, so its clocks may be in the past.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { inHoldout } from '../../reconciler/surveys/holdout.ts';
import {
  DAY,
  DIRECTORY_ID,
  DISTRIBUTION,
  HOUR,
  SURVEY,
  applyAt,
  at,
  defaultTargets,
  distributionsOf,
  listIdOf,
  makeSurveyProject,
  qualtricsApi,
  seedQualtrics,
  subjectOf,
  surveysPlan,
  surveysRun,
  syncAt,
  targetYaml,
  tm,
  unsubscribe,
  useSurveySandbox,
  writeDeliveries,
  type Delivery,
  type Person,
  type TargetOptions,
} from '../support/survey-fixture.ts';

let sandbox: RunningSandbox;
useSurveySandbox(1212, (s) => (sandbox = s));

/** Tuesday 10:00 in New York. */
const T = '2027-01-12T15:00:00.000Z';

const person = (id: string, extra: Partial<Person> = {}): Person => ({ id, email: `${id}@example.com`, order_count: 1, accepts_marketing: false, ...extra });
const delivered = (id: string, when: string, n = 0): Delivery => ({ order_id: `${id}-o${n}`, customer_id: id, delivered_at: when });
const sorted = (xs: Iterable<string>) => [...xs].sort();

/** Everyone in Qualtrics' batches of a survey's distributions, per distribution. */
const sentBy = (surveyId: string) => distributionsOf(sandbox, surveyId).map((d) => sorted(d.people));

/** A target with no holdout and the Workspace cap, for tests where the holdout would only blur the sets. */
const plain = (o: Partial<TargetOptions> & Pick<TargetOptions, 'name' | 'survey' | 'audience' | 'after' | 'before'>): TargetOptions => ({ response_window: '48h', ...o });

async function setUp(people: Person[], deliveries: Delivery[], targets?: TargetOptions[], now = T): Promise<string> {
  const { dir, targets: declared } = await makeSurveyProject({ people, deliveries, ...(targets ? { targets } : {}) });
  seedQualtrics(sandbox, declared);
  await applyAt(dir, sandbox, now);
  await syncAt(dir, sandbox, now);
  return dir;
}

describe('surveys run: what Qualtrics receives', () => {
  it('imports each invited person with extRef, email and the typed payload; one distribution per target, to its batch, expiring after the response window', async () => {
    const a = ['a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7'];
    const b = ['b0', 'b1', 'b2', 'b3', 'b4', 'b5'];
    const c = ['c0', 'c1', 'c2'];
    const people: Person[] = [
      person('a0', { order_count: 12.5, accepts_marketing: true, last_order_at: '2027-01-09T10:30:00-05:00', favourite_blend: 'Dark roast' }),
      person('a1', { order_count: 0, accepts_marketing: false, last_order_at: '2027-01-08T23:59:59Z' }),
      ...a.slice(2).map((id) => person(id, { favourite_blend: 'house' })),
      ...b.map((id) => person(id, { order_count: 3, accepts_marketing: true })),
      ...c.map((id) => person(id, { accepts_marketing: true })),
      person('d0', { accepts_marketing: true }),
    ];
    const deliveries = [
      ...a.map((id) => delivered(id, at(T, -3 * DAY))), // delivery_check (2d–5d)
      ...b.map((id) => delivered(id, at(T, -6 * DAY))), // repeat_feedback (1d–7d), which nps (1d–10d) also wants
      ...c.map((id) => delivered(id, at(T, -8 * DAY))), // nps only
      delivered('d0', at(T, -20 * DAY)), // nobody's window
    ];
    const dir = await setUp(people, deliveries);

    const heldA = a.filter((id) => inHoldout(id, 'delivery_check', 0.1));
    const heldB = b.filter((id) => inHoldout(id, 'repeat_feedback', 0.2));
    const plan = await surveysPlan(dir, sandbox, T);
    expect(plan.delivery_check).toMatchObject({ audience: 18, in_window: 8, held_out: heldA.length, eligible: 8 - heldA.length, claimed_by_other: 0 });
    expect(plan.repeat_feedback).toMatchObject({ audience: 7, in_window: 7, claimed_by_other: 1, held_out: heldB.length, eligible: 6 - heldB.length });
    // nps wants a0, b*, c* (accepts marketing, delivered 1–10 days ago): a0 and b* are claimed first.
    expect(plan.nps).toMatchObject({ audience: 11, in_window: 10, claimed_by_other: 7, held_out: 0, eligible: 3 });

    sandbox.resetRequestCounts();
    const run = await surveysRun(dir, sandbox, T);
    expect(run.ok).toBe(true);
    // In bulk: one import and one distribution per target, never a call per contact.
    const requests = sandbox.requestCounts();
    expect(requests['POST /API/v3/directories/{id}/mailinglists/{id}/transactioncontacts']).toBe(3);
    expect(requests['POST /API/v3/distributions']).toBe(3);
    expect(Object.keys(requests).filter((r) => /\/contacts(\/\{id\})?$/.test(r) && !r.startsWith('GET '))).toEqual([]);
    expect(run.targets.map((t) => [t.target, t.status, t.send?.invited])).toEqual([
      ['delivery_check', 'sent', 8 - heldA.length],
      ['repeat_feedback', 'sent', 6 - heldB.length],
      ['nps', 'sent', 3],
    ]);

    // One distribution per target, each to its own batch holding exactly the people it invited.
    expect(sentBy(SURVEY.delivery)).toEqual([sorted(a.filter((id) => !heldA.includes(id)))]);
    expect(sentBy(SURVEY.repeat)).toEqual([sorted(b.filter((id) => !heldB.includes(id)))]);
    expect(sentBy(SURVEY.nps)).toEqual([sorted(c)]);
    for (const t of defaultTargets()) {
      const [d] = sandbox.qualtrics.distributions(t.survey);
      expect(d!.recipients.transactionBatchId).toMatch(/^BT_/);
      expect(d!.recipients.mailingListId).toBeNull();
      expect(d!.message).toMatchObject({ libraryId: DISTRIBUTION.library_id, messageId: DISTRIBUTION.message_id, messageType: 'Library' });
      expect(d!.headers).toEqual({ fromName: DISTRIBUTION.from_name, fromEmail: DISTRIBUTION.from_email, replyToEmail: DISTRIBUTION.reply_to, subject: subjectOf(t.name) });
      expect(d!.sendDate).toBe('2027-01-12T15:00:00Z');
      const hours = Number(t.response_window!.replace('h', ''));
      expect(d!.surveyLink).toMatchObject({ surveyId: t.survey, linkType: 'Individual', expirationDate: at(T, hours * HOUR).replace('.000Z', 'Z') });
      expect(d!.recipientCount).toBe(run.targets.find((r) => r.target === t.name)!.send!.invited);
    }

    // The contacts: extRef = the person's id, the email, the payload as embedded data formatted by type.
    const contacts = new Map(sandbox.qualtrics.contacts(listIdOf(sandbox, 'delivery_check')).map((x) => [x.extRef!, x]));
    expect(sorted(contacts.keys())).toEqual(sorted(a.filter((id) => !heldA.includes(id))));
    const show = (id: string) => ({ email: contacts.get(id)?.email, embeddedData: contacts.get(id)?.embeddedData });
    if (contacts.has('a0')) {
      expect(show('a0')).toEqual({ email: 'a0@example.com', embeddedData: { order_count: '12.5', accepts_marketing: 'true', last_order_at: '2027-01-09T15:30:00Z', favourite_blend: 'Dark roast' } });
    }
    if (contacts.has('a1')) {
      // No favourite_blend: no key at all, not an empty string.
      expect(show('a1')).toEqual({ email: 'a1@example.com', embeddedData: { order_count: '0', accepts_marketing: 'false', last_order_at: '2027-01-08T23:59:59Z' } });
    }
    expect(contacts.has('a0') || contacts.has('a1'), 'both typed examples were held out: pick other ids').toBe(true);
    for (const c of contacts.values()) expect(c.email).toBe(`${c.extRef}@example.com`);

    // Held-out people never reach Qualtrics.
    const everywhere = new Set(sandbox.qualtrics.directoryContacts(DIRECTORY_ID).map((x) => x.extRef));
    for (const id of [...heldA, ...heldB]) expect(everywhere.has(id), id).toBe(false);

    // The run recorded everyone it handled: the same clock again finds them already invited.
    const again = await surveysPlan(dir, sandbox, T);
    expect(again.delivery_check).toMatchObject({ already_invited: 8, eligible: 0, held_out: 0 });
    expect(again.repeat_feedback).toMatchObject({ already_invited: 6, eligible: 0 });
  }, 60_000);
});

describe('frequency caps', () => {
  // A (priority 1) and B (priority 2), no holdouts, the Workspace cap: 1 survey per 30 days across all.
  const targets = [
    plain({ name: 'first_look', survey: SURVEY.delivery, audience: 'recent_buyers', after: '2d', before: '5d', priority: 1 }),
    plain({ name: 'second_look', survey: SURVEY.repeat, audience: 'repeat_buyers', after: '1d', before: '7d', priority: 2 }),
  ];

  it('caps across two targets and across runs, and lifts the cap once `per` has passed', async () => {
    const people = ['x', 'z', 'w'].map((id) => person(id, { order_count: 2 }));
    const deliveries = [delivered('x', at(T, -3 * DAY)), delivered('z', at(T, -6 * DAY))];
    const dir = await setUp(people, deliveries, targets);

    // Run 1: A invites x (B wanted x too: claimed); B invites z (outside A's window).
    await surveysRun(dir, sandbox, T);
    expect(sentBy(SURVEY.delivery)).toEqual([['x']]);
    expect(sentBy(SURVEY.repeat)).toEqual([['z']]);

    // Run 2, three days later: z delivered again (A's window), w delivered for the first time.
    const T2 = at(T, 3 * DAY);
    await writeDeliveries(dir, [...deliveries, delivered('z', T, 1), delivered('w', at(T2, -2 * DAY))]);
    await syncAt(dir, sandbox, T2);
    const plan2 = await surveysPlan(dir, sandbox, T2);
    // z was invited by B 3 days ago: capped for A. x (6 days after its delivery) is in B's window: capped for B.
    expect(plan2.first_look).toMatchObject({ in_window: 2, capped: 1, eligible: 1 });
    expect(plan2.second_look).toMatchObject({ in_window: 3, already_invited: 1, capped: 1, claimed_by_other: 1, eligible: 0 });
    const run2 = await surveysRun(dir, sandbox, T2);
    expect(run2.targets.map((t) => t.status)).toEqual(['sent', 'nothing']);
    expect(sentBy(SURVEY.delivery)).toEqual([['x'], ['w']]);
    expect(sentBy(SURVEY.repeat)).toEqual([['z']]);

    // New deliveries for x and z, 3 days before the cap of x's invitation (at T) ends.
    const T3 = at(T, 30 * DAY);
    await writeDeliveries(dir, [...deliveries, delivered('z', T, 1), delivered('w', at(T2, -2 * DAY)), delivered('x', at(T3, -3 * DAY), 2), delivered('z', at(T3, -3 * DAY), 2)]);
    await syncAt(dir, sandbox, T3);
    // Exactly `per` after x's invitation: still capped (the cap's far edge is in).
    expect((await surveysPlan(dir, sandbox, T3)).first_look).toMatchObject({ in_window: 2, capped: 2, eligible: 0 });
    // 1 ms later x's cap has passed; z's (invited at T too, by B) has as well.
    const run3 = await surveysRun(dir, sandbox, at(T3, 1));
    expect(run3.targets[0]).toMatchObject({ status: 'sent', eligibility: { capped: 0, eligible: 2 } });
    expect(sentBy(SURVEY.delivery)).toEqual([['x'], ['w'], ['x', 'z']]);

    // Nobody was ever in two batches within 30 days.
    const invitedAt = new Map<string, number[]>();
    for (const s of [SURVEY.delivery, SURVEY.repeat]) {
      for (const d of distributionsOf(sandbox, s)) for (const id of d.people) invitedAt.set(id, [...(invitedAt.get(id) ?? []), Date.parse(d.sendDate)]);
    }
    for (const [id, times] of invitedAt) {
      const ts = times.sort((p, q) => p - q);
      for (let i = 1; i < ts.length; i++) expect(ts[i]! - ts[i - 1]!, id).toBeGreaterThanOrEqual(30 * DAY);
    }
  }, 60_000);
});

describe('holdout', () => {
  it('holds out the same people every run, never sends them, records them (not re-considered), and keeps the share', async () => {
    const ids = Array.from({ length: 60 }, (_, i) => `h${String(i).padStart(2, '0')}`);
    const targets = [plain({ name: 'held', survey: SURVEY.delivery, audience: 'recent_buyers', after: '2d', before: '5d', holdout: '30%' })];
    const deliveries = ids.map((id) => delivered(id, at(T, -3 * DAY)));
    const dir = await setUp(ids.map((id) => person(id)), deliveries, targets);
    const held = ids.filter((id) => inHoldout(id, 'held', 0.3));
    expect(held.length).toBeGreaterThan(5);
    expect(held.length).toBeLessThan(35);

    const run1 = await surveysRun(dir, sandbox, T);
    expect(run1.targets[0]!.send).toMatchObject({ invited: ids.length - held.length, held_out: held.length });
    expect(sentBy(SURVEY.delivery)).toEqual([sorted(ids.filter((id) => !held.includes(id)))]);

    // A day later the same deliveries are still in the window: everyone, held out or not, was handled.
    const plan2 = await surveysPlan(dir, sandbox, at(T, DAY));
    expect(plan2.held).toMatchObject({ in_window: ids.length, already_invited: ids.length, held_out: 0, eligible: 0 });

    // 31 days on, a new delivery each: the same people are held out again, and again never sent.
    const T2 = at(T, 31 * DAY);
    await writeDeliveries(dir, [...deliveries, ...ids.map((id) => delivered(id, at(T2, -3 * DAY), 1))]);
    await syncAt(dir, sandbox, T2);
    const run2 = await surveysRun(dir, sandbox, T2);
    expect(run2.targets[0]!.eligibility).toMatchObject({ capped: 0, held_out: held.length, eligible: ids.length - held.length });
    expect(sentBy(SURVEY.delivery)).toEqual([sorted(ids.filter((id) => !held.includes(id))), sorted(ids.filter((id) => !held.includes(id)))]);
    const inQualtrics = new Set(sandbox.qualtrics.directoryContacts(DIRECTORY_ID).map((c) => c.extRef));
    for (const id of held) expect(inQualtrics.has(id), id).toBe(false);
  }, 60_000);

  // A person held out by one target is claimed against every other target in that run; in later runs
  // their holdout decision counts against the caps like an invitation, so a lower-priority target does not
  // survey the control group an hour later (which would make the outcome depend on how often the job runs).
  it('does not survey a person held out by one target through another target in the next run', async () => {
    const targets = [
      plain({ name: 'control', survey: SURVEY.delivery, audience: 'recent_buyers', after: '2d', before: '5d', priority: 1, holdout: '100%' }),
      plain({ name: 'other', survey: SURVEY.nps, audience: 'marketing_ok', after: '1d', before: '10d', priority: 2 }),
    ];
    const dir = await setUp([person('ctl', { accepts_marketing: true })], [delivered('ctl', at(T, -3 * DAY))], targets);
    const first = await surveysRun(dir, sandbox, T);
    expect(first.targets.map((t) => [t.target, t.eligibility.held_out, t.eligibility.claimed_by_other])).toEqual([
      ['control', 1, 0],
      ['other', 0, 1],
    ]);
    expect(sandbox.qualtrics.distributions()).toEqual([]);
    // An hour later, the same trigger still inside both windows.
    const next = await surveysRun(dir, sandbox, at(T, HOUR));
    expect(next.targets[1]!.eligibility.eligible).toBe(0);
    expect(sentBy(SURVEY.nps)).toEqual([]);
  }, 60_000);
});

describe('moment windows', () => {
  it('takes in exactly `after` and exactly `before` elapsed, and leaves out 1 ms outside either edge', async () => {
    const D = '2027-01-05T12:00:00.000Z';
    const targets = [plain({ name: 'edges', survey: SURVEY.delivery, audience: 'recent_buyers', after: '2d', before: '5d' })];
    const dir = await setUp([person('e')], [delivered('e', D)], targets, at(D, 2 * DAY));
    const inWindow = async (now: string) => (await surveysPlan(dir, sandbox, now)).edges!.in_window;
    expect(await inWindow(at(D, 2 * DAY - 1))).toBe(0);
    expect(await inWindow(at(D, 2 * DAY))).toBe(1);
    expect(await inWindow(at(D, 5 * DAY))).toBe(1);
    expect(await inWindow(at(D, 5 * DAY + 1))).toBe(0);
    // And the send at the last instant goes out.
    await surveysRun(dir, sandbox, at(D, 5 * DAY));
    expect(sentBy(SURVEY.delivery)).toEqual([['e']]);
  }, 60_000);

  it('counts windows in UTC hours across the DST change of 2026-11-01 in New York, and opens send windows at the local hour', async () => {
    // p: delivered Thursday 2026-10-29 08:00 EDT; 7 days later is 07:00 EST (12:00Z), not 08:00 EST (13:00Z).
    // q: a send window 09:00–17:00 New York: 13:00Z before the change, 14:00Z after it.
    const targets = [
      plain({ name: 'week', survey: SURVEY.delivery, audience: 'recent_buyers', after: '1d', before: '7d', priority: 1 }),
      plain({ name: 'office_hours', survey: SURVEY.repeat, audience: 'marketing_ok', after: '8d', before: '20d', priority: 2, send_window: '{ hours: "09:00-17:00", timezone: America/New_York }' }),
    ];
    const P = '2026-10-29T12:00:00.000Z';
    const dir = await setUp([person('p'), person('q', { accepts_marketing: true })], [delivered('p', P), delivered('q', '2026-10-20T12:00:00.000Z')], targets, '2026-10-31T00:00:00.000Z');
    const plan = (now: string) => surveysPlan(dir, sandbox, now);
    expect((await plan('2026-11-05T12:00:00.000Z')).week!.in_window).toBe(1);
    expect((await plan('2026-11-05T12:00:00.001Z')).week!.in_window).toBe(0);
    expect((await plan('2026-11-05T12:30:00.000Z')).week!.in_window).toBe(0);

    // 09:30 EDT: open. 08:30 EST (13:30Z, the same UTC hour three days later): closed, waiting for 14:00Z.
    expect((await plan('2026-10-30T13:30:00.000Z')).office_hours).toMatchObject({ waiting: 0, eligible: 1 });
    const closed = (await plan('2026-11-02T13:59:59.999Z')).office_hours!;
    expect(closed).toMatchObject({ waiting: 1, eligible: 0, waiting_until: '2026-11-02T14:00:00.000Z' });
    expect((await plan('2026-11-02T14:00:00.000Z')).office_hours).toMatchObject({ waiting: 0, eligible: 1 });
  }, 60_000);
});

describe('priority', () => {
  it('gives a person two targets want one survey, from the lower priority, whatever the names and file order', async () => {
    const targets = [
      plain({ name: 'aaa_second', survey: SURVEY.delivery, audience: 'recent_buyers', after: '1d', before: '5d', priority: 7 }),
      plain({ name: 'zzz_first', survey: SURVEY.repeat, audience: 'repeat_buyers', after: '2d', before: '9d', priority: 3 }),
    ];
    const people = [person('both', { order_count: 4 }), person('only_a', { order_count: 1 })];
    const dir = await setUp(people, [delivered('both', at(T, -3 * DAY)), delivered('only_a', at(T, -3 * DAY))], targets);
    const plan = await surveysPlan(dir, sandbox, T);
    expect(Object.keys(plan)).toEqual(['zzz_first', 'aaa_second']);
    expect(plan.zzz_first).toMatchObject({ eligible: 1, claimed_by_other: 0 });
    expect(plan.aaa_second).toMatchObject({ in_window: 2, claimed_by_other: 1, eligible: 1 });
    await surveysRun(dir, sandbox, T);
    expect(sentBy(SURVEY.repeat)).toEqual([['both']]);
    expect(sentBy(SURVEY.delivery)).toEqual([['only_a']]);
  }, 60_000);
});

describe('opted out in Qualtrics', () => {
  it('counts people who unsubscribed (from the list or the whole directory) as opted out and never imports them again', async () => {
    const ids = ['o1', 'o2', 'o3', 'o4'];
    const targets = [plain({ name: 'optout', survey: SURVEY.delivery, audience: 'recent_buyers', after: '2d', before: '5d' })];
    const deliveries = ids.map((id) => delivered(id, at(T, -3 * DAY)));
    const dir = await setUp(ids.map((id) => person(id)), deliveries, targets);
    await surveysRun(dir, sandbox, T);
    expect(sentBy(SURVEY.delivery)).toEqual([ids]);

    // o1 uses the invitation's unsubscribe link (the list's opt-out); o2 opts out of everything.
    await unsubscribe(sandbox, 'optout', 'o1');
    const o2 = sandbox.qualtrics.directoryContacts(DIRECTORY_ID).find((c) => c.extRef === 'o2')!;
    await qualtricsApi(sandbox, 'PUT', `/directories/${DIRECTORY_ID}/contacts/${o2.contactId}`, { unsubscribed: true });

    // After the cap, everyone delivered again.
    const T2 = at(T, 31 * DAY);
    await writeDeliveries(dir, [...deliveries, ...ids.map((id) => delivered(id, at(T2, -3 * DAY), 1))]);
    await syncAt(dir, sandbox, T2);
    expect((await surveysPlan(dir, sandbox, T2)).optout).toMatchObject({ in_window: 4, capped: 0, opted_out: 2, eligible: 2 });
    const transactionsBefore = sandbox.qualtrics.transactions().length;
    const run = await surveysRun(dir, sandbox, T2);
    expect(run.targets[0]).toMatchObject({ status: 'sent', send: { invited: 2 } });
    expect(sentBy(SURVEY.delivery)).toEqual([ids, ['o3', 'o4']]);
    // Not imported: no new transaction for either (an import would have given them one).
    expect(sandbox.qualtrics.transactions().length - transactionsBefore).toBe(2);
    const listed = new Map(sandbox.qualtrics.contacts(listIdOf(sandbox, 'optout')).map((c) => [c.extRef, c]));
    expect(listed.get('o1')?.unsubscribed).toBe(true);
    expect(listed.get('o2')?.directoryUnsubscribed).toBe(true);
  }, 60_000);
});

describe('send windows', () => {
  it('invites nobody while the window is closed, reports them waiting, and invites them at the next opening, including one whose moment ran out in the quiet hours', async () => {
    const targets = [
      plain({ name: 'daytime', survey: SURVEY.delivery, audience: 'recent_buyers', after: '1d', before: '4d', send_window: '{ hours: "09:00-17:00", days: [mon, tue, wed, thu, fri], timezone: America/New_York }' }),
    ];
    const closedAt = '2027-01-12T23:00:00.000Z'; // Tuesday 18:00 EST
    const opening = '2027-01-13T14:00:00.000Z'; // Wednesday 09:00 EST
    // s1: comfortably inside. s2: its 4 days end at 2027-01-13T05:00Z, midnight in New York, during the quiet hours.
    const deliveries = [delivered('s1', '2027-01-10T12:00:00.000Z'), delivered('s2', '2027-01-09T05:00:00.000Z')];
    const dir = await setUp([person('s1'), person('s2')], deliveries, targets, closedAt);

    const quiet = await surveysRun(dir, sandbox, closedAt);
    expect(quiet.ok).toBe(true);
    expect(quiet.targets[0]).toMatchObject({ status: 'nothing', eligibility: { in_window: 2, waiting: 2, waiting_until: opening, eligible: 0 } });
    expect(quiet.targets[0]!.note).toContain('waiting for the send window');
    expect(sandbox.qualtrics.distributions()).toEqual([]);
    expect(sandbox.qualtrics.transactions()).toEqual([]);

    const open = await surveysRun(dir, sandbox, opening);
    expect(open.targets[0]).toMatchObject({ status: 'sent', eligibility: { waiting: 0, eligible: 2 } });
    expect(sentBy(SURVEY.delivery)).toEqual([['s1', 's2']]);
    expect(sandbox.qualtrics.distributions()[0]!.sendDate).toBe('2027-01-13T14:00:00Z');
  }, 60_000);
});

describe('send windows in each person’s zone', () => {
  it('reads each person’s zone from their field (aliases and case as Intl reads them), the fallback for blank or unknown ones', async () => {
    const targets = [
      plain({ name: 'local', survey: SURVEY.delivery, audience: 'recent_buyers', after: '1d', before: '4d', send_window: '{ hours: "09:00-17:00", field: timezone, fallback_timezone: America/New_York }' }),
    ];
    const now = '2027-01-13T01:00:00.000Z'; // Wednesday 10:00 in Tokyo, Tuesday 20:00 in New York
    const people = [
      person('tokyo', { timezone: 'Asia/Tokyo' }),
      person('newyork', { timezone: 'America/New_York' }),
      person('alias', { timezone: ' us/eastern ' }),
      person('unknown', { timezone: 'Mars/Olympus_Mons' }),
      person('blank'),
    ];
    const dir = await setUp(people, people.map((p) => delivered(p.id, at(now, -2 * DAY))), targets, now);
    const first = await surveysRun(dir, sandbox, now);
    expect(first.targets[0]!.eligibility).toMatchObject({ in_window: 5, waiting: 4, waiting_until: '2027-01-13T14:00:00.000Z', eligible: 1 });
    expect(sentBy(SURVEY.delivery)).toEqual([['tokyo']]);
    const later = await surveysRun(dir, sandbox, '2027-01-13T14:00:00.000Z');
    expect(later.targets[0]!.eligibility).toMatchObject({ already_invited: 1, waiting: 0, eligible: 4 });
    expect(sentBy(SURVEY.delivery)).toEqual([['tokyo'], ['alias', 'blank', 'newyork', 'unknown']]);
  }, 60_000);
});

describe('exit codes', () => {
  it('exits 0 with nothing to do, and 1 when a target’s mailing list was never applied', async () => {
    const targets = [plain({ name: 'quiet', survey: SURVEY.delivery, audience: 'recent_buyers', after: '2d', before: '5d' })];
    const dir = await setUp([person('n1')], [delivered('n1', at(T, -20 * DAY))], targets);
    const idle = await tm(dir, sandbox, 'surveys', 'run', '--now', T);
    expect(idle.code, idle.stdout + idle.stderr).toBe(0);
    expect(idle.stdout).toContain('nothing to send');
    expect(sandbox.qualtrics.distributions()).toEqual([]);

    // A target declared after the last apply: its list does not exist yet.
    const late = plain({ name: 'late', survey: SURVEY.nps, audience: 'recent_buyers', after: '1d', before: '30d' });
    seedQualtrics(sandbox, [late]);
    await writeFile(path.join(dir, 'specs', 'late.yaml'), targetYaml(late));
    const failed = await tm(dir, sandbox, 'surveys', 'run', '--now', T);
    expect(failed.code, failed.stdout + failed.stderr).toBe(1);
    expect(failed.stdout).toMatch(/late[\s\S]*not sent: its mailing list does not exist yet: run `tidemark apply` first/);
    expect(failed.stderr).not.toMatch(/\n\s+at /);
    expect(sandbox.qualtrics.distributions()).toEqual([]);
    expect(sandbox.qualtrics.transactions()).toEqual([]);
  }, 60_000);
});
