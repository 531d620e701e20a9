/**
 * What Qualtrics reports about the emails it sent (issue 12 point 1), through `tidemark` run as its own
 * process against the sandbox:
 * - "Qualtrics does not report them … bounced": an address that bounced (hard, at tidemark's own send, or
 *   reported later) is not invited again while the person still has it, and the funnel counts them;
 * - "Caps count the invitations tidemark recorded, plus what Qualtrics reports for the contact": another
 *   team's distribution from the Qualtrics UI (here: created through the API to a list tidemark does not
 *   manage, as the UI does) caps a person inside the cap period, not outside it, and tidemark's own
 *   distributions, which Qualtrics reports too, are never counted twice.
 * Setup (apply, sync) runs in process; the commands under test run as child processes.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import {
  DAY,
  DIRECTORY_ID,
  HOUR,
  SURVEY,
  applyAt,
  at,
  distributionsOf,
  makeSurveyProject,
  qualtricsApi,
  seedQualtrics,
  surveyEnv,
  syncAt,
  useSurveySandbox,
  writeDeliveries,
  writePeople,
  type Delivery,
  type Person,
  type SurveyPlanJson,
  type SurveyRunJson,
  type TargetOptions,
} from '../support/survey-fixture.ts';

let sandbox: RunningSandbox;
useSurveySandbox(7331, (s) => (sandbox = s));

const REPO = path.resolve(import.meta.dirname, '../..');

/** `tidemark …` as a child process (bin/tidemark.js) with the sandbox's environment; stdout and stderr apart. */
function tidemark(dir: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [path.join(REPO, 'bin/tidemark.js'), ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH, ...surveyEnv(sandbox) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += String(d)));
  child.stderr.on('data', (d) => (stderr += String(d)));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

async function tidemarkJson<T>(dir: string, args: string[], expected = 0): Promise<T> {
  const r = await tidemark(dir, [...args, '--format', 'json']);
  if (r.code !== expected) throw new Error(`tidemark ${args.join(' ')} exited ${r.code} (expected ${expected})\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

async function plan(dir: string, now: string) {
  const p = await tidemarkJson<SurveyPlanJson>(dir, ['surveys', 'plan', '--now', now]);
  return Object.fromEntries(p.targets.map((t) => [t.target, t as typeof t & { bounced: number; qualtrics_capped: number }]));
}

const run = (dir: string, now: string) => tidemarkJson<SurveyRunJson>(dir, ['surveys', 'run', '--now', now]);

/** Another team emails `people` from the Qualtrics UI: its own list (contacts as given) and a distribution sent at `sendDate`. */
async function uiSend(surveyId: string, sendDate: string, people: Array<{ email: string; extRef?: string }>): Promise<string> {
  const list = (await qualtricsApi(sandbox, 'POST', `/directories/${DIRECTORY_ID}/mailinglists`, { name: `CX team ${sendDate}` })) as { result: { id: string } };
  for (const p of people) await qualtricsApi(sandbox, 'POST', `/directories/${DIRECTORY_ID}/mailinglists/${list.result.id}/contacts`, p);
  const d = (await qualtricsApi(sandbox, 'POST', '/distributions', {
    message: { libraryId: 'UR_cxT3amL1brary', messageId: 'MS_cxT3amPr0m0' },
    recipients: { mailingListId: list.result.id },
    header: { fromEmail: 'cx@tidemark-tests.example', fromName: 'CX team', subject: 'How are we doing?' },
    surveyLink: { surveyId, expirationDate: at(sendDate, 3 * DAY), type: 'Individual' },
    sendDate,
  })) as { result: { id: string } };
  return d.result.id;
}

const UI_SURVEY = 'SV_cxT3amPu1seCh3';

function seedUiSurvey(): void {
  sandbox.qualtrics.seedSurvey({ id: UI_SURVEY, name: 'CX team pulse', questions: [{ text: 'How are we doing?', type: 'nps' }] });
}

const T = '2027-03-10T15:00:00.000Z';

describe('bounced addresses', () => {
  // second's window (8–20 days after delivery) opens a week after first's (2–5 days); its cap is its own.
  const targets: TargetOptions[] = [
    { name: 'first', survey: SURVEY.delivery, audience: 'recent_buyers', after: '2d', before: '5d', priority: 1, response_window: '48h' },
    { name: 'second', survey: SURVEY.repeat, audience: 'recent_buyers', after: '8d', before: '20d', priority: 2, response_window: '48h', frequency_cap: '{ max: 1, per: 30d, scope: this_target }' },
  ];
  const people: Person[] = [
    { id: 'a', email: 'a@example.com', order_count: 1 },
    // Undeliverable (RFC 2606 reserves .invalid): Qualtrics bounces it hard at the first send.
    { id: 'c', email: 'c@mailbox.invalid', order_count: 1 },
    { id: 'd', email: 'd@example.com', order_count: 1 },
  ];
  const deliveries: Delivery[] = people.map((p) => ({ order_id: `${p.id}-1`, customer_id: p.id, delivered_at: at(T, -3 * DAY) }));

  it('are not invited again and are counted as bounced (surveys plan, tidemark plan, the send), until the person has a new address', async () => {
    const { dir } = await makeSurveyProject({ people, deliveries, targets });
    seedQualtrics(sandbox, targets);
    await applyAt(dir, sandbox, T);
    await syncAt(dir, sandbox, T);
    const first = await run(dir, T);
    expect(first.ok).toBe(true);
    expect(distributionsOf(sandbox, SURVEY.delivery).map((d) => d.people.sort())).toEqual([['a', 'c', 'd']]);
    expect(sandbox.qualtrics.distributions(SURVEY.delivery)[0]!.recipientCount).toBe(3);

    // A mail server reports later that d's mailbox is gone (the sandbox's bounce hook, over HTTP).
    const res = await fetch(`${sandbox.env.QUALTRICS_BASE_URL}/__sandbox/qualtrics/bounces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ directoryId: DIRECTORY_ID, email: 'd@example.com' }),
    });
    expect(res.status).toBe(200);

    const T2 = at(T, 7 * DAY);
    await syncAt(dir, sandbox, T2);
    expect((await plan(dir, T2)).second).toMatchObject({ in_window: 3, capped: 0, opted_out: 0, bounced: 2, eligible: 1 });

    // The same column in tidemark plan's data impact: JSON, text and markdown.
    const planJson = await tidemarkJson<{ data_impact: { surveys: Array<{ name: string; bounced: number; would_invite: number }> } }>(dir, ['plan', '--now', T2]);
    expect(planJson.data_impact.surveys.find((s) => s.name === 'second')).toMatchObject({ bounced: 2, would_invite: 1 });
    const text = await tidemark(dir, ['plan', '--now', T2]);
    expect(text.stdout).toMatch(/Survey target\s+Would invite\s+Held out\s+In window\s+Already invited\s+Capped\s+Opted out\s+Bounced\s+No email/);
    expect(text.stdout).toMatch(/second\s+1\s+0\s+3\s+0\s+0\s+0\s+2\s+0/);
    const md = await tidemark(dir, ['plan', '--format', 'markdown', '--now', T2]);
    expect(md.stdout).toContain('| second | 1 | 0 | 3 | 0 | 0 | 0 | 2 | 0 | 0 | 0 |');

    const second = await run(dir, T2);
    expect(second.targets.find((t) => t.target === 'second')).toMatchObject({ status: 'sent', eligibility: { bounced: 2, eligible: 1 } });
    expect(distributionsOf(sandbox, SURVEY.repeat).map((d) => d.people)).toEqual([['a']]);

    // c gives a working address: the bounce was the old address's, so the new one is tried.
    const T3 = at(T2, HOUR);
    await writePeople(dir, people.map((p) => (p.id === 'c' ? { ...p, email: 'c@example.com' } : p)));
    await syncAt(dir, sandbox, T3);
    expect((await plan(dir, T3)).second).toMatchObject({ already_invited: 1, bounced: 1, eligible: 1 });
  }, 120_000);
});

describe('invitations Qualtrics sent outside tidemark', () => {
  it('cap a person emailed by a Qualtrics-UI distribution inside the cap period, found by extRef or by address, and not one emailed before it', async () => {
    const targets: TargetOptions[] = [{ name: 'check', survey: SURVEY.delivery, audience: 'recent_buyers', after: '2d', before: '5d', frequency_cap: '{ max: 1, per: 30d }', response_window: '48h' }];
    const people: Person[] = [
      { id: 'ui_recent', email: 'ui_recent@example.com', order_count: 1 },
      { id: 'ui_by_address', email: 'Ui_By_Address@example.com', order_count: 1 },
      { id: 'ui_long_ago', email: 'ui_long_ago@example.com', order_count: 1 },
      { id: 'ui_bounced', email: 'ui_bounced@example.com', order_count: 1 },
      { id: 'fresh', email: 'fresh@example.com', order_count: 1 },
    ];
    // More candidates than one search covers (50) in a directory of a few dozen contacts: reading the
    // directory once (one page) is cheaper than two searches, so this run reads it instead.
    const fillers = Array.from({ length: 50 }, (_, i) => `f${String(i).padStart(2, '0')}`);
    people.push(...fillers.map((id) => ({ id, email: `${id}@example.com`, order_count: 1 })));
    const { dir } = await makeSurveyProject({ people, deliveries: people.map((p) => ({ order_id: `${p.id}-1`, customer_id: p.id, delivered_at: at(T, -3 * DAY) })), targets });
    seedQualtrics(sandbox, targets);
    seedUiSurvey();
    await applyAt(dir, sandbox, T);
    await syncAt(dir, sandbox, T);

    // Inside the 30-day period: one contact with the person's id as extRef, one made from the address alone
    // (the UI's usual import). Before it: 31 days ago. A send to a stale address bounced: it reached nobody.
    await uiSend(UI_SURVEY, at(T, -5 * DAY), [{ email: 'ui_recent@example.com', extRef: 'ui_recent' }, { email: 'ui_by_address@example.com' }]);
    await uiSend(UI_SURVEY, at(T, -31 * DAY), [{ email: 'ui_long_ago@example.com', extRef: 'ui_long_ago' }]);
    await uiSend(UI_SURVEY, at(T, -2 * DAY), [{ email: 'ui_bounced@old-mailbox.invalid', extRef: 'ui_bounced' }]);

    sandbox.resetRequestCounts();
    expect((await plan(dir, T)).check).toMatchObject({ in_window: 55, capped: 2, qualtrics_capped: 2, bounced: 0, eligible: 53 });
    const requests = sandbox.requestCounts();
    expect(requests['GET /API/v3/directories/{id}/contacts']).toBe(1);
    expect(requests['POST /API/v3/directories/{id}/contacts/search']).toBeUndefined();
    // One history per contact Qualtrics holds for a candidate (the three UI lists' four contacts), none for the others.
    expect(requests['GET /API/v3/directories/{id}/contacts/{id}/history']).toBe(4);
    const r = await run(dir, T);
    expect(r.targets[0]).toMatchObject({ status: 'sent', eligibility: { capped: 2, qualtrics_capped: 2, eligible: 53 } });
    expect(distributionsOf(sandbox, SURVEY.delivery).map((d) => d.people.sort())).toEqual([[...fillers, 'fresh', 'ui_bounced', 'ui_long_ago'].sort()]);
    // An hour later the three invited are already handled; the two the UI emailed are still capped, and said why.
    const text = await tidemark(dir, ['surveys', 'plan', '--now', at(T, HOUR)]);
    expect(text.stdout).toContain('already invited −53, capped −2 (2 by emails sent outside tidemark), opted out −0, bounced −0');
  }, 120_000);

  it("never counts tidemark's own distribution twice (Qualtrics reports it too), and adds a UI send of the same survey under a this_target cap", async () => {
    // Two invitations per 30 days of this target: tidemark's first one leaves room for a second moment.
    const targets: TargetOptions[] = [{ name: 'again', survey: SURVEY.delivery, audience: 'recent_buyers', after: '2d', before: '5d', frequency_cap: '{ max: 2, per: 30d, scope: this_target }', response_window: '48h' }];
    const people: Person[] = [
      { id: 'p', email: 'p@example.com', order_count: 2 },
      { id: 'q', email: 'q@example.com', order_count: 2 },
    ];
    const first: Delivery[] = people.map((x) => ({ order_id: `${x.id}-1`, customer_id: x.id, delivered_at: at(T, -3 * DAY) }));
    const { dir } = await makeSurveyProject({ people, deliveries: first, targets });
    seedQualtrics(sandbox, targets);
    seedUiSurvey();
    await applyAt(dir, sandbox, T);
    await syncAt(dir, sandbox, T);
    await run(dir, T);
    expect(distributionsOf(sandbox, SURVEY.delivery).map((d) => d.people.sort())).toEqual([['p', 'q']]);
    // Qualtrics reports tidemark's send in each contact's email history.
    const pContact = sandbox.qualtrics.directoryContacts(DIRECTORY_ID).find((c) => c.extRef === 'p')!;
    expect(sandbox.qualtrics.emailHistory(pContact.contactId).map((e) => e.result)).toEqual(['Success']);

    // A second delivery a week later: a new moment for both.
    const T2 = at(T, 7 * DAY);
    await writeDeliveries(dir, [...first, ...people.map((x) => ({ order_id: `${x.id}-2`, customer_id: x.id, delivered_at: at(T2, -3 * DAY) }))]);
    await syncAt(dir, sandbox, T2);
    sandbox.resetRequestCounts();
    expect((await plan(dir, T2)).again).toMatchObject({ in_window: 2, already_invited: 0, capped: 0, qualtrics_capped: 0, eligible: 2 });
    // Nobody but tidemark sent an invite in the cap period: the surveys' distributions say so, and no
    // person is looked up.
    const quiet = sandbox.requestCounts();
    expect(quiet['GET /API/v3/distributions']).toBeGreaterThanOrEqual(1);
    expect(quiet['POST /API/v3/directories/{id}/contacts/search']).toBeUndefined();
    expect(quiet['GET /API/v3/directories/{id}/contacts/{id}/history']).toBeUndefined();

    // The CX team sends p this target's survey from the UI, and q another survey: under this_target only
    // the same survey counts, so p reaches 2 (tidemark's 1 + the UI's 1) and q stays at 1.
    await uiSend(SURVEY.delivery, at(T2, -DAY), [{ email: 'p@example.com', extRef: 'p' }]);
    await uiSend(UI_SURVEY, at(T2, -DAY), [{ email: 'q@example.com', extRef: 'q' }]);
    sandbox.resetRequestCounts();
    expect((await plan(dir, T2)).again).toMatchObject({ capped: 1, qualtrics_capped: 1, eligible: 1 });
    // Two candidates: one search finds their contacts (tidemark's two, and the UI lists' duplicates).
    expect(sandbox.requestCounts()['POST /API/v3/directories/{id}/contacts/search']).toBe(1);
    expect(sandbox.requestCounts()['GET /API/v3/directories/{id}/contacts']).toBeUndefined();
    await run(dir, T2);
    const sends = distributionsOf(sandbox, SURVEY.delivery).filter((d) => d.recipients.transactionBatchId);
    expect(sends.map((d) => d.people.sort())).toEqual([['p', 'q'], ['q']]);
  }, 120_000);
});
