/**
 * Drift (someone changed Customer.io or Qualtrics by hand) and adoption of objects that already exist,
 * against the sandbox's real HTTP APIs.
 */
import { describe, expect, it } from 'vitest';
import { applyChanges, detectDrift, importObject, makePlan } from '../../reconciler/composition/use-cases.ts';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { expectExactlyDeclared, managedId, pending, PLAN, planWith, remoteNames, servicesOf, STAGING_DIRECTORY, useSandboxAndProject, withWs } from '../support/integration-fixture.ts';

let sandbox: RunningSandbox;
let dir: string;

useSandboxAndProject(37, { sandbox: (s) => (sandbox = s), dir: (d) => (dir = d) });

const HOOK = 'https://hooks.staging.hearthandharvest.example/qualtrics/responses';
const TOPIC = 'surveyengine.completedResponse.SV_3kZ8cTqQ4rPbUuG';
const converge = () => withWs(dir, sandbox, (ws) => applyChanges(ws, { options: PLAN, who: 'drift test' }));

describe('drift', () => {
  it('reports a mailing list renamed in Qualtrics with the field, and the next apply restores it', async () => {
    await converge();
    const id = await withWs(dir, sandbox, (ws) => managedId(ws, 'qualtrics.mailing_list.cancel_intent_reason'));
    await servicesOf(sandbox).renameList(id, 'Cancel intent (renamed in the UI)');

    await withWs(dir, sandbox, async (ws) => {
      const report = await detectDrift(ws);
      expect(report.environment).toBe('staging');
      expect(report.items).toEqual([
        expect.objectContaining({
          address: 'qualtrics.mailing_list.cancel_intent_reason',
          remoteId: id,
          type: 'changed',
          fields: [{ name: 'name', applied: 'tidemark: cancel intent', live: 'Cancel intent (renamed in the UI)' }],
        }),
      ]);
      expect(report.items[0]!.liveUpdatedAt).toMatch(/^\d{4}-\d\d-\d\dT/);

      const plan = await makePlan(ws, PLAN);
      expect(pending(plan)).toEqual([['qualtrics.mailing_list.cancel_intent_reason', 'update']]);
      expect(plan.changes.find((c) => c.action === 'update')?.reason).toMatch(/outside tidemark/);
      expect((await applyChanges(ws, { saved: plan, options: PLAN, who: 'drift test' })).status).toBe('done');
      expect((await detectDrift(ws)).items).toEqual([]);
    });
    expect(sandbox.qualtrics.listMailingLists(STAGING_DIRECTORY).find((l) => l.mailingListId === id)?.name).toBe('tidemark: cancel intent');
  });

  it('reports a segment deleted in Customer.io, and the next plan creates it again', async () => {
    await converge();
    const id = await withWs(dir, sandbox, (ws) => managedId(ws, 'customerio.segment.vip_customers'));
    await servicesOf(sandbox).deleteSegment(id);

    await withWs(dir, sandbox, async (ws) => {
      expect((await detectDrift(ws)).items).toEqual([
        expect.objectContaining({ address: 'customerio.segment.vip_customers', remoteId: id, type: 'deleted', fields: [] }),
      ]);
      const plan = await makePlan(ws, PLAN);
      expect(pending(plan)).toEqual([['customerio.segment.vip_customers', 'create']]);
      expect(plan.changes.find((c) => c.action === 'create')?.reason).toBe(`${id} was deleted outside tidemark since the last apply; it will be created again`);
      const outcome = await applyChanges(ws, { saved: plan, options: PLAN, who: 'drift test' });
      expect(outcome.status).toBe('done');
      expect(await managedId(ws, 'customerio.segment.vip_customers')).not.toBe(id);
      expect(pending(await makePlan(ws, PLAN))).toEqual([]);
    });
    expectExactlyDeclared(sandbox);
  });
});

describe('unmanaged objects that match a spec', () => {
  it('are reported as unmanaged_match, planned as imports with --adopt-by-name, and adopted by import', async () => {
    const services = servicesOf(sandbox);
    const segment = await services.createSegment('tidemark: vip_customers', 'made in the UI before tidemark');
    const list = await services.createList('tidemark: post-purchase fit');
    const subscription = await services.createSubscription(TOPIC, HOOK);

    await withWs(dir, sandbox, async (ws) => {
      const report = await detectDrift(ws);
      expect(report.items.map((i) => [i.type, i.address, i.remoteId])).toEqual([
        ['unmanaged_match', 'customerio.segment.vip_customers', segment],
        ['unmanaged_match', 'qualtrics.event_subscription.post_purchase_fit', subscription],
        ['unmanaged_match', 'qualtrics.mailing_list.post_purchase_fit', list],
      ]);

      // Without adoption nothing is duplicated: the creates are blocked.
      const guarded = await makePlan(ws, PLAN);
      expect(guarded.changes.filter((c) => c.blocked?.code === 'PLAN003').map((c) => c.address).sort()).toEqual([
        'customerio.segment.vip_customers',
        'qualtrics.event_subscription.post_purchase_fit',
        'qualtrics.mailing_list.post_purchase_fit',
      ]);

      const adopting = await makePlan(ws, planWith({ adoptByName: true }));
      const imports = adopting.changes.filter((c) => c.action === 'import').map((c) => [c.address, c.remote_id]);
      expect(imports).toEqual([
        ['customerio.segment.vip_customers', segment],
        ['qualtrics.mailing_list.post_purchase_fit', list],
        ['qualtrics.event_subscription.post_purchase_fit', subscription],
      ]);

      // `tidemark import` adopts one by hand ...
      const imported = await importObject(ws, 'customerio.segment.vip_customers', segment, 'drift test');
      expect(imported).toEqual({ status: 'imported', address: 'customerio.segment.vip_customers', remoteId: segment, name: 'tidemark: vip_customers' });
      expect(await importObject(ws, 'customerio.segment.vip_customers', segment, 'drift test')).toMatchObject({ status: 'refused' });
      expect(await importObject(ws, 'customerio.segment.winback_eligible', segment, 'drift test')).toMatchObject({
        status: 'refused',
        reason: `${segment} is already managed as customerio.segment.vip_customers`,
      });

      // ... and an apply with --adopt-by-name adopts the rest and creates only what is missing.
      const outcome = await applyChanges(ws, { options: planWith({ adoptByName: true }), who: 'drift test' });
      expect(outcome.status).toBe('done');
      if (outcome.status !== 'done') return;
      expect(outcome.result.results.map((r) => [r.address, r.action, r.status])).toEqual([
        ['customerio.segment.winback_eligible', 'create', 'applied'],
        ['qualtrics.mailing_list.cancel_intent_reason', 'create', 'applied'],
        ['qualtrics.mailing_list.lapsed_diagnosis', 'create', 'applied'],
        ['qualtrics.mailing_list.post_purchase_fit', 'import', 'applied'],
        ['qualtrics.event_subscription.post_purchase_fit', 'import', 'applied'],
      ]);
      expect(await managedId(ws, 'qualtrics.mailing_list.post_purchase_fit')).toBe(list);
      expect(await managedId(ws, 'qualtrics.event_subscription.post_purchase_fit')).toBe(subscription);
      expect((await detectDrift(ws)).items).toEqual([]);
    });
    expectExactlyDeclared(sandbox);
    // The adopted segment keeps its hand-written description (Customer.io cannot update it): reported, not acted on.
    await withWs(dir, sandbox, async (ws) => {
      const plan = await makePlan(ws, PLAN);
      expect(pending(plan)).toEqual([]);
      expect(plan.changes.find((c) => c.address === 'customerio.segment.vip_customers')?.ignored_changes).toEqual(['description']);
    });
  });

  it('guards the re-create of an object deleted outside when a hand-made copy exists, and import re-points to the copy', async () => {
    await converge();
    const services = servicesOf(sandbox);
    const id = await withWs(dir, sandbox, (ws) => managedId(ws, 'qualtrics.mailing_list.lapsed_diagnosis'));
    await services.deleteList(id);
    const copy = await services.createList('tidemark: lapsed diagnosis');

    await withWs(dir, sandbox, async (ws) => {
      const plan = await makePlan(ws, PLAN);
      const change = plan.changes.find((c) => c.address === 'qualtrics.mailing_list.lapsed_diagnosis')!;
      expect(change).toMatchObject({ action: 'create', blocked: { code: 'PLAN003' } });
      expect(change.blocked?.message).toContain(`tidemark import qualtrics.mailing_list.lapsed_diagnosis ${copy}`);
      // What the message suggests works: the entry whose object is gone is pointed at the copy.
      expect(await importObject(ws, 'qualtrics.mailing_list.lapsed_diagnosis', copy, 'drift test')).toMatchObject({ status: 'imported', remoteId: copy });
      expect(pending(await makePlan(ws, PLAN))).toEqual([]);
      // An entry whose object still exists is never re-pointed.
      const other = await services.createList('Another list');
      expect(await importObject(ws, 'qualtrics.mailing_list.lapsed_diagnosis', other, 'drift test')).toEqual({
        status: 'refused',
        reason: `qualtrics.mailing_list.lapsed_diagnosis already manages ${copy}`,
      });
    });
    expect(remoteNames(sandbox).lists).toEqual(['Another list', 'tidemark: cancel intent', 'tidemark: lapsed diagnosis', 'tidemark: post-purchase fit']);
  });

  it('refuses to import what is not declared, does not exist, or cannot be managed', async () => {
    const dynamic = sandbox.customerio.seedSegment({ name: 'tidemark: vip_customers', type: 'dynamic' });
    await withWs(dir, sandbox, async (ws) => {
      expect(await importObject(ws, 'customerio.segment.no_such_spec', '1', 't')).toMatchObject({ status: 'refused', reason: expect.stringMatching(/is not declared/) });
      expect(await importObject(ws, 'customerio.segment.vip_customers', '999', 't')).toMatchObject({ status: 'refused', reason: 'customerio.segment 999 does not exist' });
      expect(await importObject(ws, 'customerio.segment.vip_customers', String(dynamic.id), 't')).toMatchObject({ status: 'refused', reason: expect.stringMatching(/cannot be managed/) });
      // A data-driven segment is never a match either.
      expect((await detectDrift(ws)).items).toEqual([]);
      expect(await ws.conn.store.listManaged()).toEqual([]);
    });
    expect(remoteNames(sandbox).segments).toEqual([]);
  });
});
