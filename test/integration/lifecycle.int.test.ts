/**
 * The config plane's life against the sandbox: first apply, convergence, a spec change, gated deletes,
 * prevent_destroy and its release, and the promise that objects tidemark does not manage are never touched.
 */
import { describe, expect, it } from 'vitest';
import { applyChanges, makePlan } from '../../reconciler/composition/use-cases.ts';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { runCli } from '../support/cli-run.ts';
import { DECLARED, editSpec, expectExactlyDeclared, managedId, pending, PLAN, planWith, remoteNames, removeSpec, servicesOf, STAGING_DIRECTORY, useSandboxAndProject, withWs } from '../support/integration-fixture.ts';

let sandbox: RunningSandbox;
let dir: string;

useSandboxAndProject(11, { sandbox: (s) => (sandbox = s), dir: (d) => (dir = d) });

const applyAll = (options = PLAN) => withWs(dir, sandbox, (ws) => applyChanges(ws, { options, who: 'lifecycle test' }));

describe('plan, apply, converge', () => {
  it('creates every declared object once, then plans and applies nothing', async () => {
    await withWs(dir, sandbox, async (ws) => {
      const plan = await makePlan(ws, PLAN);
      expect(plan.environment).toBe('staging');
      expect(pending(plan)).toEqual(Object.keys(DECLARED).map((a) => [a, 'create']));
      expect(plan.summary.blocked).toBe(0);

      const outcome = await applyChanges(ws, { options: PLAN, who: 'lifecycle test' });
      expect(outcome.status).toBe('done');
      if (outcome.status !== 'done') return;
      expect(outcome.result.ok).toBe(true);
      expect(outcome.result.results.map((r) => [r.address, r.status])).toEqual(Object.keys(DECLARED).map((a) => [a, 'applied']));
    });
    expectExactlyDeclared(sandbox);

    await withWs(dir, sandbox, async (ws) => {
      const again = await makePlan(ws, PLAN);
      expect(pending(again)).toEqual([]);
      expect(again.summary.noop).toBe(Object.keys(DECLARED).length);
      // State and emulator agree on every id.
      const segment = sandbox.customerio.listSegments().find((s) => s.name === 'tidemark: vip_customers')!;
      expect(await managedId(ws, 'customerio.segment.vip_customers')).toBe(String(segment.id));
      const list = sandbox.qualtrics.listMailingLists(STAGING_DIRECTORY).find((l) => l.name === 'tidemark: cancel intent')!;
      expect(await managedId(ws, 'qualtrics.mailing_list.cancel_intent_reason')).toBe(list.mailingListId);

      const second = await applyChanges(ws, { options: PLAN, who: 'lifecycle test' });
      expect(second.status).toBe('nothing');
    });
    expectExactlyDeclared(sandbox);
  });

  it('renames a mailing list in place when its spec changes, keeping its id', async () => {
    await applyAll();
    const before = sandbox.qualtrics.listMailingLists(STAGING_DIRECTORY).find((l) => l.name === 'tidemark: post-purchase fit')!;
    await editSpec(dir, 'surveys.yaml', 'mailing_list: { name: "tidemark: post-purchase fit" }', 'mailing_list: { name: "tidemark: post-purchase fit check" }');

    await withWs(dir, sandbox, async (ws) => {
      const plan = await makePlan(ws, PLAN);
      expect(pending(plan)).toEqual([['qualtrics.mailing_list.post_purchase_fit', 'update']]);
      const change = plan.changes.find((c) => c.action === 'update')!;
      expect(change).toMatchObject({ remote_id: before.mailingListId, changed: ['name'], reason: 'the specs changed' });
      const outcome = await applyChanges(ws, { saved: plan, options: PLAN, who: 'lifecycle test' });
      expect(outcome.status).toBe('done');
      expect(pending(await makePlan(ws, PLAN))).toEqual([]);
    });
    const after = sandbox.qualtrics.listMailingLists(STAGING_DIRECTORY);
    expect(after.find((l) => l.mailingListId === before.mailingListId)?.name).toBe('tidemark: post-purchase fit check');
    expect(after).toHaveLength(3);
  });
});

describe('renames', () => {
  it('moves the state entry of a spec renamed with moved_from and keeps the remote object', async () => {
    await applyAll();
    const id = await withWs(dir, sandbox, (ws) => managedId(ws, 'qualtrics.mailing_list.cancel_intent_reason'));
    await editSpec(dir, 'surveys.yaml', 'name: cancel_intent_reason\n', 'name: cancel_reason\nmoved_from: cancel_intent_reason\n');

    await withWs(dir, sandbox, async (ws) => {
      const plan = await makePlan(ws, PLAN);
      expect(pending(plan)).toEqual([['qualtrics.mailing_list.cancel_reason', 'update']]);
      expect(plan.changes.find((c) => c.action === 'update')).toMatchObject({ remote_id: id, moved_from: 'qualtrics.mailing_list.cancel_intent_reason', changed: [] });
      expect((await applyChanges(ws, { saved: plan, options: PLAN, who: 'lifecycle test' })).status).toBe('done');
      expect(await managedId(ws, 'qualtrics.mailing_list.cancel_reason')).toBe(id);
      expect(await ws.conn.store.getManaged('qualtrics.mailing_list.cancel_intent_reason')).toBeUndefined();
      expect(pending(await makePlan(ws, planWith({ allowDelete: true })))).toEqual([]);
    });
    expectExactlyDeclared(sandbox);
  });

  it('creates a renamed spec whose object was deleted meanwhile under its new address, leaving nothing behind', async () => {
    await applyAll();
    const id = await withWs(dir, sandbox, (ws) => managedId(ws, 'qualtrics.mailing_list.cancel_intent_reason'));
    await servicesOf(sandbox).deleteList(id);
    await editSpec(dir, 'surveys.yaml', 'name: cancel_intent_reason\n', 'name: cancel_reason\nmoved_from: cancel_intent_reason\n');

    await withWs(dir, sandbox, async (ws) => {
      const plan = await makePlan(ws, PLAN);
      expect(pending(plan)).toEqual([['qualtrics.mailing_list.cancel_reason', 'create']]);
      const outcome = await applyChanges(ws, { saved: plan, options: PLAN, who: 'lifecycle test' });
      expect(outcome.status).toBe('done');
      expect(await ws.conn.store.getManaged('qualtrics.mailing_list.cancel_intent_reason')).toBeUndefined();
      expect(await managedId(ws, 'qualtrics.mailing_list.cancel_reason')).not.toBe(id);
      // No forget or delete left over for the old address.
      expect(pending(await makePlan(ws, planWith({ allowDelete: true })))).toEqual([]);
    });
    expectExactlyDeclared(sandbox);
  });
});

describe('deletes', () => {
  it('blocks the delete of a removed spec without --allow-delete, and deletes it with it', async () => {
    await applyAll();
    const listId = sandbox.qualtrics.listMailingLists(STAGING_DIRECTORY).find((l) => l.name === 'tidemark: lapsed diagnosis')!.mailingListId;
    await removeSpec(dir, 'surveys.yaml', 'lapsed_diagnosis');

    await withWs(dir, sandbox, async (ws) => {
      const plan = await makePlan(ws, PLAN);
      expect(pending(plan)).toEqual([['qualtrics.mailing_list.lapsed_diagnosis', 'delete']]);
      expect(plan.changes.find((c) => c.action === 'delete')?.blocked?.code).toBe('PLAN005');
      const outcome = await applyChanges(ws, { options: PLAN, who: 'lifecycle test' });
      expect(outcome.status).toBe('done');
      if (outcome.status !== 'done') return;
      expect(outcome.result.results).toEqual([expect.objectContaining({ address: 'qualtrics.mailing_list.lapsed_diagnosis', status: 'blocked' })]);
      expect(outcome.result.next.join(' ')).toMatch(/--allow-delete/);
    });
    expect(sandbox.qualtrics.listMailingLists(STAGING_DIRECTORY).map((l) => l.mailingListId)).toContain(listId);

    await withWs(dir, sandbox, async (ws) => {
      const outcome = await applyChanges(ws, { options: planWith({ allowDelete: true }), who: 'lifecycle test' });
      expect(outcome.status).toBe('done');
      if (outcome.status !== 'done') return;
      expect(outcome.result.results).toEqual([expect.objectContaining({ address: 'qualtrics.mailing_list.lapsed_diagnosis', action: 'delete', status: 'applied' })]);
      expect(await ws.conn.store.getManaged('qualtrics.mailing_list.lapsed_diagnosis')).toBeUndefined();
      expect(pending(await makePlan(ws, planWith({ allowDelete: true })))).toEqual([]);
    });
    expect(remoteNames(sandbox).lists).toEqual(['tidemark: cancel intent', 'tidemark: post-purchase fit']);
  });

  it('keeps a prevent_destroy segment after its spec is removed until `state unprotect` releases it', async () => {
    await applyAll();
    await removeSpec(dir, 'segments.yaml', 'winback_eligible');

    await withWs(dir, sandbox, async (ws) => {
      const outcome = await applyChanges(ws, { options: planWith({ allowDelete: true }), who: 'lifecycle test' });
      expect(outcome.status).toBe('done');
      if (outcome.status !== 'done') return;
      const change = outcome.plan.changes.find((c) => c.address === 'customerio.segment.winback_eligible')!;
      expect(change).toMatchObject({ action: 'delete', blocked: { code: 'PLAN004' } });
      expect(outcome.result.results).toEqual([expect.objectContaining({ address: 'customerio.segment.winback_eligible', status: 'blocked' })]);
    });
    expect(remoteNames(sandbox).segments).toContain('tidemark: winback_eligible');

    // The CLI command only touches the state store, which the project's .tidemark holds.
    const unprotect = await runCli(['state', 'unprotect', 'customerio.segment.winback_eligible', '--sandbox'], { cwd: dir });
    expect(unprotect.stderr).not.toMatch(/error/i);
    expect(unprotect.code).toBe(0);
    expect(unprotect.stdout).toMatch(/no longer protected/);

    await withWs(dir, sandbox, async (ws) => {
      const plan = await makePlan(ws, planWith({ allowDelete: true }));
      expect(pending(plan)).toEqual([['customerio.segment.winback_eligible', 'delete']]);
      expect(plan.summary.blocked).toBe(0);
      const outcome = await applyChanges(ws, { saved: plan, options: PLAN, who: 'lifecycle test' });
      expect(outcome.status).toBe('done');
    });
    expect(remoteNames(sandbox).segments).toEqual(['tidemark: vip_customers']);
  });
});

describe('objects tidemark does not manage', () => {
  it('are never updated or deleted, even with --allow-delete and every spec removed', async () => {
    const services = servicesOf(sandbox);
    // A person's own objects, some under names close to (or equal to a removed spec's) tidemark's.
    const handSegment = await services.createSegment('Spring promo');
    const dynamic = sandbox.customerio.seedSegment({ name: 'Newsletter engaged', type: 'dynamic' });
    const handList = await services.createList('Panel recruits');
    const otherDirectory = sandbox.qualtrics.seedDirectory({ name: 'Research team' });
    const foreignList = await services.createList('tidemark: cancel intent', otherDirectory);
    const handSub = await services.createSubscription('surveyengine.completedResponse.SV_0ther5urvey0001', 'https://elsewhere.example/hook');

    await applyAll();
    // Drop every tidemark-published object from the specs and delete with the gate open.
    await removeSpec(dir, 'segments.yaml', 'vip_customers');
    await editSpec(dir, 'segments.yaml', 'prevent_destroy: true', 'prevent_destroy: false');
    await applyAll(planWith({ allowDelete: true }));
    for (const name of ['post_purchase_fit', 'cancel_intent_reason', 'lapsed_diagnosis']) await removeSpec(dir, 'surveys.yaml', name);
    await removeSpec(dir, 'segments.yaml', 'winback_eligible');
    const outcome = await applyAll(planWith({ allowDelete: true }));
    expect(outcome.status).toBe('done');

    // Only what tidemark created is gone.
    expect(sandbox.customerio.listSegments().map((s) => [String(s.id), s.name, s.type]).sort()).toEqual(
      [
        [handSegment, 'Spring promo', 'manual'],
        [String(dynamic.id), 'Newsletter engaged', 'dynamic'],
        // The UI-built segment the example references by id (seeded by the fixture).
        ['42', 'Newsletter engaged', 'dynamic'],
      ].sort(),
    );
    expect(sandbox.qualtrics.listMailingLists(STAGING_DIRECTORY).map((l) => [l.mailingListId, l.name])).toEqual([[handList, 'Panel recruits']]);
    expect(sandbox.qualtrics.listMailingLists(otherDirectory).map((l) => [l.mailingListId, l.name])).toEqual([[foreignList, 'tidemark: cancel intent']]);
    expect(sandbox.qualtrics.eventSubscriptions().map((s) => s.id)).toEqual([handSub]);
    await withWs(dir, sandbox, async (ws) => {
      expect(await ws.conn.store.listManaged()).toEqual([]);
      expect(pending(await makePlan(ws, planWith({ allowDelete: true })))).toEqual([]);
    });
  });
});
