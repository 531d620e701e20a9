/**
 * Surveys out survive SIGKILL (issue 12 point 6). `tidemark surveys run` runs as a child process against
 * this file's sandbox, with latency on Qualtrics' import and distribution routes so a run takes a while,
 * and is killed at a seeded random moment; a rerun then completes. Counted in the sandbox after each
 * rerun: every eligible person imported exactly once per send (one transaction in the send's batch),
 * exactly one distribution per (target, run), the invitations recorded in state equal the people in
 * Qualtrics' batches (with the distribution id), and nobody invited twice.
 *
 * The three default targets get disjoint people here (group a only in delivery_check's window, b only in
 * repeat_feedback's audience, c only in nps's), so what each send must hold is known without re-running
 * the claims; the interplay of targets is surveys-out.int.test.ts's subject.
 *
 * Two deterministic cases kill the run while it waits on `POST /distributions`: before Qualtrics created
 * the distribution (the contacts are imported, the distribution is not), and after it did but before the
 * answer came back (a create whose answer was lost). Each rerun must leave exactly one distribution. A
 * third reruns only after the send's response window closed: the send is abandoned (no distribution,
 * nobody recorded, exit 1 that once). And a kill while Qualtrics' answer to an accepted import is in
 * flight: one distribution, everyone recorded once, and one transaction per person in the send's batch
 * (the lost import's transactions stay in the chunk's own batch).
 *
 * The default suite runs 3 random iterations; `TIDEMARK_SLOW_TESTS=1` runs 12.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { createPrng } from '../../reconciler/core/prng.ts';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { inHoldout } from '../../reconciler/surveys/holdout.ts';
import { runChild } from '../support/child-cli.ts';
import {
  DAY,
  DIRECTORY_ID,
  SURVEY,
  applyAt,
  at,
  defaultTargets,
  distributionsOf,
  makeSurveyProject,
  seedQualtrics,
  surveyEnv,
  syncAt,
  useSurveySandbox,
  writeDeliveries,
  type Delivery,
  type Person,
} from '../support/survey-fixture.ts';

const SLOW = process.env.TIDEMARK_SLOW_TESTS === '1';
const ITERATIONS = SLOW ? 12 : 3;
const PER_GROUP = 40;
const T0 = '2027-03-02T15:00:00.000Z';

let sandbox: RunningSandbox;
useSurveySandbox(606, (s) => (sandbox = s));

const ids = (g: string) => Array.from({ length: PER_GROUP }, (_, i) => `${g}${String(i).padStart(3, '0')}`);
const A = ids('a');
const B = ids('b');
const C = ids('c');
const PEOPLE: Person[] = [
  ...A.map((id) => ({ id, email: `${id}@example.com`, order_count: 1, accepts_marketing: false })),
  ...B.map((id) => ({ id, email: `${id}@example.com`, order_count: 3, accepts_marketing: false })),
  ...C.map((id) => ({ id, email: `${id}@example.com`, order_count: 1, accepts_marketing: true })),
];
/** Each iteration's deliveries: a in delivery_check's window (2–5d), b in repeat_feedback's (1–7d), c in nps's (1–10d) only. */
const deliveriesAt = (now: string, n: number): Delivery[] => [
  ...A.map((id) => ({ order_id: `${id}-${n}`, customer_id: id, delivered_at: at(now, -3 * DAY) })),
  ...B.map((id) => ({ order_id: `${id}-${n}`, customer_id: id, delivered_at: at(now, -6 * DAY) })),
  ...C.map((id) => ({ order_id: `${id}-${n}`, customer_id: id, delivered_at: at(now, -8 * DAY) })),
];
/** Who each send must reach: its group minus the target's holdout (the pure hash). */
const EXPECTED: Record<string, { survey: string; people: string[] }> = {
  delivery_check: { survey: SURVEY.delivery, people: A.filter((id) => !inHoldout(id, 'delivery_check', 0.1)) },
  repeat_feedback: { survey: SURVEY.repeat, people: B.filter((id) => !inHoldout(id, 'repeat_feedback', 0.2)) },
  nps: { survey: SURVEY.nps, people: [...C] },
};

/** Person ids of each transaction in a batch, duplicates kept (a re-import would show twice). */
function batchTransactions(batchId: string): string[] {
  const contacts = new Map(sandbox.qualtrics.directoryContacts(DIRECTORY_ID).map((c) => [c.contactId, c.extRef]));
  return sandbox.qualtrics
    .batchTransactions(batchId)
    .map((t) => contacts.get(t.contactId) ?? `?${t.contactId}`)
    .sort();
}

interface Recorded {
  target: string;
  person_id: string;
  invited_at: string;
  distribution_id: string | null;
}

function recorded(dir: string): Recorded[] {
  const db = new Database(path.join(dir, '.tidemark', 'state-test.local.sqlite'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare(`SELECT target, person_id, invited_at, distribution_id FROM survey_invitations WHERE held_out = 0 ORDER BY target, person_id`).all() as Recorded[];
  } finally {
    db.close();
  }
}

/** Everything the rerun must leave, for the runs at `clocks` (one send per target per clock). */
function checkSends(dir: string, clocks: string[], context: string): void {
  const rec = recorded(dir);
  const seen = new Map<string, string>();
  for (const [target, want] of Object.entries(EXPECTED)) {
    const dists = sandbox.qualtrics.distributions(want.survey);
    expect(dists.length, `${context}: distributions of ${target}`).toBe(clocks.length);
    for (const [i, clock] of clocks.entries()) {
      const d = dists.find((x) => x.sendDate === clock.replace('.000Z', 'Z'));
      expect(d, `${context}: ${target}'s distribution of the run at ${clock}`).toBeDefined();
      // Imported exactly once: one transaction per person in the send's batch, exactly the expected people.
      expect(batchTransactions(d!.recipients.transactionBatchId!), `${context}: batch of ${target} run ${i}`).toEqual([...want.people].sort());
      // Recorded once, after Qualtrics acknowledged them, with the distribution that reached them.
      const mine = rec.filter((r) => r.target === target && r.invited_at === clock);
      expect(mine.map((r) => r.person_id).sort(), `${context}: recorded invitations of ${target} run ${i}`).toEqual([...want.people].sort());
      expect(new Set(mine.map((r) => r.distribution_id)), `${context}: distribution ids recorded for ${target} run ${i}`).toEqual(new Set([d!.id]));
      for (const id of want.people) {
        const key = `${id}@${clock}`;
        expect(seen.get(key), `${context}: ${id} invited twice at ${clock}`).toBeUndefined();
        seen.set(key, target);
      }
    }
  }
  expect(rec.length, `${context}: invitations recorded in all`).toBe(clocks.length * Object.values(EXPECTED).reduce((n, e) => n + e.people.length, 0));
}

async function project(now: string): Promise<string> {
  const { dir, targets } = await makeSurveyProject({ people: PEOPLE, deliveries: deliveriesAt(now, 0) });
  seedQualtrics(sandbox, targets);
  await applyAt(dir, sandbox, now);
  await syncAt(dir, sandbox, now);
  return dir;
}

const surveysRun = (dir: string, now: string, kill: { killAfterMs?: number; killWhen?: () => boolean } = {}) =>
  runChild(dir, ['surveys', 'run', '--now', now], { env: surveyEnv(sandbox), ...kill });

describe('surveys run under SIGKILL', () => {
  it(`imports, distributes and records exactly once across ${ITERATIONS} killed runs`, async () => {
    const rnd = createPrng(1212);
    // Two job steps: each import is polled once more after a second, so kills land inside the polling too.
    sandbox.qualtrics.configure({ jobSteps: 2 });
    const dir = await project(T0);
    const clocks: string[] = [];
    const kills: string[] = [];
    let deliveries = deliveriesAt(T0, 0);
    for (let it = 0; it < ITERATIONS; it++) {
      // 31 days apart: every cap (30 days) has passed, every person has a new moment.
      const now = at(T0, it * 31 * DAY);
      if (it > 0) {
        deliveries = [...deliveries, ...deliveriesAt(now, it)];
        await writeDeliveries(dir, deliveries);
        await syncAt(dir, sandbox, now);
      }
      clocks.push(now);
      sandbox.faults.set({ service: 'qualtrics', pathPattern: '/(transactioncontacts|api-import|distributions)', latencyMs: [60, 180] });
      const killAt = 1500 + Math.floor(rnd.next() * 6000);
      const killed = await surveysRun(dir, now, { killAfterMs: killAt });
      const atKill = Object.values(EXPECTED).map((e) => sandbox.qualtrics.distributions(e.survey).length).join('/');
      kills.push(`iteration ${it}: ${killed.signal === 'SIGKILL' ? `killed after ${killAt} ms (distributions ${atKill}, transactions ${sandbox.qualtrics.transactions().length})` : `finished (${killed.code}) before ${killAt} ms`}`);
      sandbox.faults.clear();
      const rerun = await surveysRun(dir, now);
      expect(rerun.code, `${kills.join('\n')}\n${rerun.output}`).toBe(0);
      checkSends(dir, clocks, kills.join('\n'));
    }
    if (SLOW || process.env.TIDEMARK_SURVEY_CRASH_LOG === '1') console.log(kills.join('\n'));
    expect(kills.filter((k) => k.includes('killed')).length, kills.join('\n')).toBeGreaterThan(0);
  }, 240_000);

  it.each([
    ['before Qualtrics created the distribution', { latencyMs: 60_000 }],
    ['after Qualtrics created it, before the answer came back', { latencyAfterApplyMs: 60_000 }],
  ])('killed while waiting on POST /distributions %s: the rerun leaves one distribution and records everyone once', async (_when, fault) => {
    const dir = await project(T0);
    sandbox.faults.set({ service: 'qualtrics', pathPattern: '^/API/v3/distributions$', methods: ['POST'], ...fault });
    const created = () => sandbox.qualtrics.distributions().length;
    const killed = await surveysRun(dir, T0, {
      killWhen: () => (sandbox.requestCounts()['POST /API/v3/distributions'] ?? 0) >= 1 && ('latencyMs' in fault || created() >= 1),
    });
    expect(killed.signal, killed.output).toBe('SIGKILL');
    // The first send's contacts are in Qualtrics; its distribution exists only if Qualtrics made it.
    const first = EXPECTED.delivery_check!;
    expect(sandbox.qualtrics.transactions().length).toBe(first.people.length);
    expect(created()).toBe('latencyMs' in fault ? 0 : 1);
    sandbox.faults.clear();

    const rerun = await surveysRun(dir, T0);
    expect(rerun.code, rerun.output).toBe(0);
    expect(rerun.output).toMatch(/resumed delivery_check/);
    checkSends(dir, [T0], 'rerun');
    // No re-import: the first send's transactions were not made again.
    expect(sandbox.qualtrics.transactions().length).toBe(Object.values(EXPECTED).reduce((n, e) => n + e.people.length, 0));
  }, 120_000);

  /** Kills the run while Qualtrics has accepted the first import but its answer has not come back, then reruns. */
  async function killedAfterImportApplied(): Promise<{ dir: string; rerun: Awaited<ReturnType<typeof surveysRun>> }> {
    const dir = await project(T0);
    sandbox.faults.set({ service: 'qualtrics', pathPattern: '/transactioncontacts$', methods: ['POST'], latencyAfterApplyMs: 60_000 });
    const killed = await surveysRun(dir, T0, { killWhen: () => (sandbox.requestCounts()['POST /API/v3/directories/{id}/mailinglists/{id}/transactioncontacts'] ?? 0) >= 1 });
    expect(killed.signal, killed.output).toBe('SIGKILL');
    sandbox.faults.clear();
    return { dir, rerun: await surveysRun(dir, T0) };
  }

  it('killed after Qualtrics accepted an import but before its answer: one distribution per target and everyone recorded once', async () => {
    const { dir, rerun } = await killedAfterImportApplied();
    expect(rerun.code, rerun.output).toBe(0);
    const rec = recorded(dir);
    for (const [target, want] of Object.entries(EXPECTED)) {
      const dists = distributionsOf(sandbox, want.survey);
      expect(dists.length, target).toBe(1);
      // Qualtrics (the sandbox) sends one invitation per contact of the batch.
      expect(dists[0]!.recipientCount, target).toBe(want.people.length);
      expect(rec.filter((r) => r.target === target).map((r) => r.person_id).sort(), target).toEqual([...want.people].sort());
    }
  }, 120_000);

  // The chunk is imported again on resume (the import id was never journaled), but each chunk imports into
  // a batch of its own and only the journaled import's transactions join the send's batch: whether
  // Qualtrics emails once per contact or once per transaction of a batch, nobody is in it twice.
  it('killed after Qualtrics accepted an import but before its answer: each person has one transaction in the batch', async () => {
    await killedAfterImportApplied();
    const [d] = sandbox.qualtrics.distributions(SURVEY.delivery);
    expect(batchTransactions(d!.recipients.transactionBatchId!)).toEqual([...EXPECTED.delivery_check!.people].sort());
  }, 120_000);

  it('abandons a send resumed after its response window closed: no distribution, nobody recorded, exit 1 once, then the runs go on', async () => {
    const dir = await project(T0);
    sandbox.faults.set({ service: 'qualtrics', pathPattern: '^/API/v3/distributions$', methods: ['POST'], latencyMs: 60_000 });
    const killed = await surveysRun(dir, T0, { killWhen: () => (sandbox.requestCounts()['POST /API/v3/distributions'] ?? 0) >= 1 });
    expect(killed.signal, killed.output).toBe('SIGKILL');
    sandbox.faults.clear();

    // delivery_check's link would have stayed open 48 hours; the rerun comes after that.
    const late = at(T0, 49 * 3_600_000);
    const rerun = await surveysRun(dir, late);
    expect(rerun.code, rerun.output).toBe(1);
    expect(rerun.output).toMatch(/resumed delivery_check \(send of 2027-03-02T15:00:00.000Z\): abandoned: resumed after its response window had closed/);
    expect(sandbox.qualtrics.distributions()).toEqual([]);
    expect(recorded(dir)).toEqual([]);
    // Abandoned once: the next run does not resume it again.
    const next = await surveysRun(dir, at(late, 3_600_000));
    expect(next.code, next.output).toBe(0);
    expect(next.output).not.toMatch(/resumed/);
  }, 120_000);
});
