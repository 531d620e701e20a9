/**
 * A create-before-destroy replace (the Qualtrics response webhook) whose old object cannot be deleted:
 * both subscriptions are live, so every response would be delivered twice. The old one must not slip out
 * of tidemark's sight: it stays in the state under a leftover address, every plan shows its delete, and
 * the next apply with --allow-delete removes it.
 */
import { describe, expect, it } from 'vitest';
import { applyChanges, makePlan } from '../../reconciler/composition/use-cases.ts';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { editSpec, PLAN, planWith, useSandboxAndProject, withWs } from '../support/integration-fixture.ts';

const ADDRESS = 'qualtrics.event_subscription.post_purchase_fit';
const OLD_URL = 'https://hooks.staging.hearthandharvest.example/qualtrics/responses';
const NEW_URL = 'https://hooks.staging.hearthandharvest.example/qualtrics/responses-v2';

let sandbox: RunningSandbox;
let dir: string;

useSandboxAndProject(29, { sandbox: (s) => (sandbox = s), dir: (d) => (dir = d) });

describe('a replace whose old object cannot be deleted', () => {
  it('keeps the old object in the state and deletes it on the next apply with --allow-delete', async () => {
    await withWs(dir, sandbox, async (ws) => {
      expect((await applyChanges(ws, { options: PLAN, who: 'test' })).status).toBe('done');
    });
    const [first] = sandbox.qualtrics.eventSubscriptions();
    expect(first?.publicationUrl).toBe(OLD_URL);

    await editSpec(dir, 'workspace.yaml', OLD_URL, NEW_URL);
    sandbox.faults.set({ service: 'qualtrics', methods: ['DELETE'], pathPattern: '/eventsubscriptions/', errorRate: 1 });
    await withWs(dir, sandbox, async (ws) => {
      const plan = await makePlan(ws, PLAN);
      expect(plan.changes.find((c) => c.address === ADDRESS)).toMatchObject({ action: 'replace', create_before_destroy: true });
      const outcome = await applyChanges(ws, { saved: plan, options: PLAN, who: 'test' });
      expect(outcome.status).toBe('done');
      if (outcome.status !== 'done') return;
      const failed = outcome.result.results.find((r) => r.address === ADDRESS);
      expect(failed?.status).toBe('failed');
      expect(failed?.message).toMatch(/deleting the old object .* failed.*tidemark apply --allow-delete/);
    });
    // Both are live now: the state knows both.
    expect(sandbox.qualtrics.eventSubscriptions().map((s) => s.publicationUrl).sort()).toEqual([OLD_URL, NEW_URL]);

    sandbox.faults.clear();
    await withWs(dir, sandbox, async (ws) => {
      const leftover = `${ADDRESS}__replaced_${first!.id.replace(/[^A-Za-z0-9_]/g, '_')}`;
      expect((await ws.conn.store.getManaged(leftover))?.remoteId).toBe(first!.id);
      // Without --allow-delete the leftover's delete is shown and held back; with it, it goes.
      const held = await makePlan(ws, PLAN);
      expect(held.changes.find((c) => c.address === leftover)).toMatchObject({ action: 'delete', blocked: { code: 'PLAN005' } });
      expect(held.changes.find((c) => c.address === ADDRESS)?.action).toBe('noop');
      const outcome = await applyChanges(ws, { options: planWith({ allowDelete: true }), who: 'test' });
      expect(outcome.status).toBe('done');
      expect((await makePlan(ws, planWith({ allowDelete: true }))).changes.filter((c) => c.action !== 'noop')).toEqual([]);
    });
    expect(sandbox.qualtrics.eventSubscriptions().map((s) => s.publicationUrl)).toEqual([NEW_URL]);
  });
});
