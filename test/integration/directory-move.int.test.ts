/**
 * Moving an environment to another XM Directory: the mailing lists are replaced (created in the new
 * directory, deleted from the old one), never leaked in the old directory.
 */
import { describe, expect, it } from 'vitest';
import { applyChanges, makePlan } from '../../reconciler/composition/use-cases.ts';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { editSpec, pending, PLAN, planWith, remoteNames, STAGING_DIRECTORY, useSandboxAndProject, withWs } from '../support/integration-fixture.ts';

const NEW_DIRECTORY = 'POOL_9zNewDirectory1';

let sandbox: RunningSandbox;
let dir: string;

useSandboxAndProject(23, { sandbox: (s) => (sandbox = s), dir: (d) => (dir = d) });

describe('directory move', () => {
  it('replaces the lists in the new directory and deletes them from the old one', async () => {
    await withWs(dir, sandbox, async (ws) => {
      expect((await applyChanges(ws, { options: PLAN, who: 'test' })).status).toBe('done');
    });
    expect(remoteNames(sandbox, STAGING_DIRECTORY).lists).toHaveLength(3);
    await editSpec(dir, 'workspace.yaml', `directory_id: ${STAGING_DIRECTORY}`, `directory_id: ${NEW_DIRECTORY}`);
    await withWs(dir, sandbox, async (ws) => {
      const plan = await makePlan(ws, planWith({ allowDelete: true }));
      const lists = pending(plan).filter(([address]) => address.startsWith('qualtrics.mailing_list.'));
      expect(lists.map(([, action]) => action)).toEqual(['replace', 'replace', 'replace']);
      const outcome = await applyChanges(ws, { options: planWith({ allowDelete: true }), who: 'test' });
      expect(outcome.status).toBe('done');
      expect((await makePlan(ws, planWith({ allowDelete: true }))).changes.filter((c) => c.action !== 'noop')).toEqual([]);
    });
    expect(sandbox.qualtrics.listMailingLists(STAGING_DIRECTORY)).toEqual([]);
    expect(sandbox.qualtrics.listMailingLists(NEW_DIRECTORY).map((l) => l.name).sort()).toEqual([
      'tidemark: cancel intent',
      'tidemark: lapsed diagnosis',
      'tidemark: post-purchase fit',
    ]);
  });
});
