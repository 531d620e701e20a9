/**
 * The CLI end to end, in process, against the embedded sandbox that `--sandbox` keeps next to the state
 * (one persisted sandbox per environment): plan, apply, saved plans and their refusal, drift, state,
 * and separate environments. The tests share one project and build on each other, in order, like a
 * person's session would.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Plan } from '../../reconciler/plan/plan.ts';
import { runCli } from '../support/cli-run.ts';
import { DECLARED, editSpec, makeProject, removeProject } from '../support/integration-fixture.ts';

let dir: string;
const cli = (...args: string[]) => runCli([...args, '--sandbox'], { cwd: dir });

beforeAll(async () => {
  dir = await makeProject();
});
afterAll(async () => {
  await removeProject(dir);
});

interface Snapshot {
  services: {
    customerio: unknown;
    qualtrics: unknown;
  };
}

/** What the persisted sandbox of an environment holds, as JSON text (the emulators' own snapshot format). */
async function persisted(environment: string): Promise<string> {
  const doc = JSON.parse(await readFile(path.join(dir, '.tidemark', 'sandbox', `${environment}.json`), 'utf8')) as Snapshot;
  return JSON.stringify(doc.services);
}

describe('tidemark CLI with --sandbox', () => {
  it('plans, applies, and then plans no changes across invocations', async () => {
    const first = await cli('plan', '--detailed-exitcode');
    expect(first.stderr).toMatch(/using the embedded sandbox/i);
    expect(first.stdout).toMatch(/^Against: the embedded sandbox/m);
    expect(first.code).toBe(2);
    expect(first.stdout).toMatch(/Plan: 6 to create, 0 to update, 0 to replace, 0 to delete, 0 to import\. 0 unchanged\.\n$/);

    const apply = await cli('apply', '--auto-approve');
    expect(apply.code).toBe(0);
    for (const address of Object.keys(DECLARED)) expect(apply.stdout).toContain(`✓ ${address}: applied`);
    expect(apply.stdout).toMatch(/Apply complete: 6 applied, 0 failed, 0 skipped, 0 blocked\./);

    const again = await cli('plan', '--detailed-exitcode');
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/No changes\. Live Customer\.io and Qualtrics match the specs\.\n$/);
    expect((await cli('apply', '--auto-approve')).stdout).toMatch(/^No changes: the embedded sandbox/m);

    const drift = await cli('drift', '--detailed-exitcode');
    expect(drift.code).toBe(0);
    expect(drift.stdout).toMatch(/No drift in staging/);

    const list = await cli('state', 'list');
    expect(list.stdout.trim().split('\n').map((l) => l.split('\t')[0])).toEqual(Object.keys(DECLARED).sort());
    expect(list.stdout).toMatch(/customerio\.segment\.winback_eligible\t\d+\tprevent_destroy/);
    // The emulated services really hold the objects, under tidemark's names.
    const staging = await persisted('staging');
    for (const name of Object.values(DECLARED)) expect(staging).toContain(name);
  });

  it('keeps environments apart: staging is applied, production still plans every create', async () => {
    const production = await cli('plan', '--env', 'production', '--format', 'json', '--detailed-exitcode');
    expect(production.code).toBe(2);
    const plan = JSON.parse(production.stdout) as Plan;
    expect(plan.environment).toBe('production');
    expect(plan.changes.map((c) => [c.address, c.action, c.blocked ?? null])).toEqual(Object.keys(DECLARED).map((a) => [a, 'create', null]));
    expect(plan.changes.find((c) => c.address === 'qualtrics.mailing_list.post_purchase_fit')?.after?.directory_id).toBe('POOL_7hNcW3p5YqE2dVu');
    expect((await cli('state', 'list', '--env', 'production')).stdout).toBe('Nothing is managed in production yet.\n');
    expect((await cli('plan', '--detailed-exitcode')).code).toBe(0);
  });

  it('applies a saved plan exactly, and refuses a stale one naming what moved', async () => {
    await editSpec(dir, 'surveys.yaml', 'mailing_list: { name: "tidemark: lapsed diagnosis" }', 'mailing_list: { name: "tidemark: lapsed 60-120 diagnosis" }');
    const saved = await cli('plan', '--out', 'reviewed.json');
    expect(saved.code).toBe(0);
    expect(saved.stdout).toMatch(/Saved the plan to reviewed\.json/);
    const reviewed = JSON.parse(await readFile(path.join(dir, 'reviewed.json'), 'utf8')) as Plan;
    expect(reviewed.changes.filter((c) => c.action !== 'noop').map((c) => [c.address, c.action])).toEqual([['qualtrics.mailing_list.lapsed_diagnosis', 'update']]);

    await editSpec(dir, 'segments.yaml', 'Reactivated a subscription in the last 14 days.', 'Reactivated within the last 14 days.');
    const refused = await cli('apply', 'reviewed.json');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/refusing to apply reviewed\.json: it is stale\.\n {2}- spec file specs\/segments\.yaml changed\n/);
    expect(await persisted('staging')).not.toContain('lapsed 60-120');

    expect((await cli('plan', '--out', 'reviewed.json')).code).toBe(0);
    const applied = await cli('apply', 'reviewed.json');
    expect(applied.code).toBe(0);
    expect(applied.stdout).toMatch(/✓ qualtrics\.mailing_list\.lapsed_diagnosis: applied/);
    expect(await persisted('staging')).toContain('tidemark: lapsed 60-120 diagnosis');
    expect((await cli('plan', '--detailed-exitcode')).code).toBe(0);
  });
});
