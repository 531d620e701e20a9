/**
 * A saved plan is applied exactly as reviewed, or not at all: when the specs, a live object or the recorded
 * state moved since it was made, apply refuses and names exactly what moved, and nothing is written.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { applyChanges, makePlan } from '../../reconciler/composition/use-cases.ts';
import type { Plan } from '../../reconciler/plan/plan.ts';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { editSpec, managedId, pending, PLAN, servicesOf, STAGING_DIRECTORY, useSandboxAndProject, withWs } from '../support/integration-fixture.ts';

let sandbox: RunningSandbox;
let dir: string;

useSandboxAndProject(23, { sandbox: (s) => (sandbox = s), dir: (d) => (dir = d) });
beforeEach(async () => {
  // Converged first; then a reviewed change: rename one mailing list in the specs.
  await withWs(dir, sandbox, (ws) => applyChanges(ws, { options: PLAN, who: 'setup' }));
  await editSpec(dir, 'surveys.yaml', 'mailing_list: { name: "tidemark: cancel intent" }', 'mailing_list: { name: "tidemark: cancel intent v2" }');
});

const savePlan = () => withWs(dir, sandbox, (ws) => makePlan(ws, PLAN));
const applySaved = (saved: Plan) => withWs(dir, sandbox, (ws) => applyChanges(ws, { saved, options: PLAN, who: 'stale test' }));
const listNames = () => sandbox.qualtrics.listMailingLists(STAGING_DIRECTORY).map((l) => l.name).sort();

describe('a saved plan', () => {
  it('applies when nothing moved', async () => {
    const saved = await savePlan();
    expect(pending(saved)).toEqual([['qualtrics.mailing_list.cancel_intent_reason', 'update']]);
    const outcome = await applySaved(saved);
    expect(outcome.status).toBe('done');
    expect(listNames()).toContain('tidemark: cancel intent v2');
  });

  it('is refused after a spec file changed, naming the file', async () => {
    const saved = await savePlan();
    // A change that does not alter what the plan would do: the reviewed specs still differ from these.
    await editSpec(dir, 'segments.yaml', 'Reactivated a subscription in the last 14 days.', 'Reactivated a subscription within 14 days.');
    const outcome = await applySaved(saved);
    expect(outcome.status).toBe('stale');
    if (outcome.status !== 'stale') return;
    expect(outcome.moved).toEqual(['spec file specs/segments.yaml changed']);
    expect(listNames()).not.toContain('tidemark: cancel intent v2');
  });

  it('is refused after a managed object changed in the service, naming the object', async () => {
    const saved = await savePlan();
    const id = await withWs(dir, sandbox, (ws) => managedId(ws, 'qualtrics.mailing_list.lapsed_diagnosis'));
    await servicesOf(sandbox).renameList(id, 'Lapsed (edited by hand)');
    const outcome = await applySaved(saved);
    expect(outcome.status).toBe('stale');
    if (outcome.status !== 'stale') return;
    expect(outcome.moved).toEqual(['qualtrics.mailing_list.lapsed_diagnosis changed outside tidemark since the plan was made']);
    expect(listNames()).not.toContain('tidemark: cancel intent v2');
  });

  it('is refused after another plan was applied first, naming what that apply changed', async () => {
    const saved = await savePlan();
    const first = await withWs(dir, sandbox, (ws) => applyChanges(ws, { options: PLAN, who: 'someone else' }));
    expect(first.status).toBe('done');
    const outcome = await applySaved(saved);
    expect(outcome.status).toBe('stale');
    if (outcome.status !== 'stale') return;
    expect(outcome.moved).toEqual(['qualtrics.mailing_list.cancel_intent_reason was changed by another apply (someone else) since the plan was made']);
  });

  it('is refused when it was made for another environment', async () => {
    const saved = await savePlan();
    const outcome = await withWs(dir, sandbox, (ws) => applyChanges(ws, { saved: { ...saved, environment: 'production' }, options: PLAN, who: 'stale test' }));
    expect(outcome.status).toBe('stale');
    if (outcome.status !== 'stale') return;
    expect(outcome.moved[0]).toBe('the plan is for environment "production", not "staging"');
  });

  it('saved by an older tidemark (`target.kind`, not `target.mode`) still compares and applies', async () => {
    const saved = await savePlan();
    const { mode, ...target } = saved.target;
    const older = JSON.parse(JSON.stringify({ ...saved, target: { kind: mode, ...target } })) as Plan;
    const elsewhere = await applySaved({ ...older, target: { ...older.target, id: 'sandbox:elsewhere', label: 'another sandbox' } });
    expect(elsewhere.status).toBe('stale');
    if (elsewhere.status !== 'stale') return;
    expect(elsewhere.moved).toEqual([`the plan was made against another sandbox, and this apply targets ${saved.target.label}`]);
    const outcome = await applySaved(older);
    expect(outcome.status).toBe('done');
    if (outcome.status !== 'done') return;
    expect(outcome.plan.target).toEqual(saved.target);
    expect(listNames()).toContain('tidemark: cancel intent v2');
  });
});
