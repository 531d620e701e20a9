/**
 * `tidemark drift --adopt` (issue 14 point 4) through bin/tidemark.js as its own process, against the
 * sandbox's HTTP APIs as the live services: someone renames a mailing list in Qualtrics, drift --adopt
 * writes the new name into the spec that declares it (that line only, comments and formatting kept),
 * and the next plan and drift are clean. What cannot be adopted writes nothing.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createSandbox, type RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { runChild } from '../support/child-cli.ts';
import { makeProject, removeProject, resetSandbox, servicesOf, STAGING_DIRECTORY } from '../support/integration-fixture.ts';

let sandbox: RunningSandbox;
let dir: string;

beforeAll(async () => {
  sandbox = await createSandbox({ port: 0, retryAfterSeconds: 0 });
});
afterAll(async () => {
  await sandbox.close();
});
beforeEach(async () => {
  resetSandbox(sandbox);
  dir = await makeProject();
  const apply = await tidemark('apply', '--auto-approve');
  expect(apply.code, apply.output).toBe(0);
});
afterEach(async () => {
  await removeProject(dir);
});

function credentials(): NodeJS.ProcessEnv {
  return {
    NO_COLOR: '1',
    CIO_STAGING_SITE_ID: sandbox.env.CUSTOMERIO_SITE_ID,
    CIO_STAGING_TRACK_API_KEY: sandbox.env.CUSTOMERIO_TRACK_API_KEY,
    CIO_STAGING_APP_API_KEY: sandbox.env.CUSTOMERIO_APP_API_KEY,
    QUALTRICS_STAGING_API_TOKEN: sandbox.env.QUALTRICS_API_TOKEN,
    CUSTOMERIO_TRACK_URL: sandbox.urls.customerioTrack,
    CUSTOMERIO_APP_URL: sandbox.urls.customerioApp,
    QUALTRICS_BASE_URL: sandbox.urls.qualtrics,
  };
}
const tidemark = (...args: string[]) => runChild(dir, args, { env: credentials() });
const listId = (name: string) => sandbox.qualtrics.listMailingLists(STAGING_DIRECTORY).find((l) => l.name === name)!.mailingListId;
const specsNow = async () => Object.fromEntries(await Promise.all((await readdir(path.join(dir, 'specs'), { recursive: true })).filter((f) => f.endsWith('.yaml')).map(async (f) => [f, await readFile(path.join(dir, 'specs', f), 'utf8')] as const)));
const lineOf = (text: string, needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

describe('drift --adopt', () => {
  it('writes a list renamed in Qualtrics into its spec, that line only, and the next plan and drift are clean', async () => {
    const before = await specsNow();
    const line = lineOf(before['surveys.yaml']!, 'mailing_list: { name: "tidemark: post-purchase fit" }');
    expect(line).toBeGreaterThan(0);
    await servicesOf(sandbox).renameList(listId('tidemark: post-purchase fit'), 'Post-purchase fit (renamed by CX)');
    // And a segment deleted by hand: reported, not adopted (apply creates it again).
    await servicesOf(sandbox).deleteSegment(String(sandbox.customerio.listSegments().find((s) => s.name === 'tidemark: vip_customers')!.id));

    const r = await tidemark('drift', '--adopt');
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain('Adopted into the specs (they now ask for what is live): 1 value(s) in 1 file(s)');
    expect(r.output).toContain(`specs/surveys.yaml:${line}  qualtrics.mailing_list.post_purchase_fit name: "tidemark: post-purchase fit" -> "Post-purchase fit (renamed by CX)"`);
    expect(r.output).toMatch(/Not adopted:\n {2}customerio\.segment\.vip_customers: deleted outside tidemark: the next apply creates it again/);

    const after = await specsNow();
    expect(Object.keys(after)).toEqual(Object.keys(before));
    for (const f of Object.keys(before)) if (f !== 'surveys.yaml') expect(after[f], f).toBe(before[f]);
    const was = before['surveys.yaml']!.split('\n');
    const now = after['surveys.yaml']!.split('\n');
    expect(now).toHaveLength(was.length);
    expect(now.flatMap((l, i) => (l === was[i] ? [] : [[i + 1, l]]))).toEqual([[line, 'mailing_list: { name: "Post-purchase fit (renamed by CX)" }']]);
    // The comments are all still there.
    expect(now.filter((l) => l.trim().startsWith('#'))).toEqual(was.filter((l) => l.trim().startsWith('#')));

    const plan = await tidemark('plan', '--format', 'json');
    expect(plan.code, plan.output).toBe(0);
    const changes = (JSON.parse(plan.output.slice(plan.output.indexOf('{'))) as { changes: Array<{ address: string; action: string }> }).changes;
    expect(changes.find((c) => c.address === 'qualtrics.mailing_list.post_purchase_fit')?.action).toBe('noop');
    expect(changes.filter((c) => c.action !== 'noop').map((c) => c.address)).toEqual(['customerio.segment.vip_customers']);

    const drift = await tidemark('drift', '--format', 'json', '--detailed-exitcode');
    const items = (JSON.parse(drift.output.slice(drift.output.indexOf('{'))) as { items: Array<{ address: string }> }).items;
    expect(items.map((i) => i.address)).toEqual(['customerio.segment.vip_customers']);

    // Once the deleted segment is back, nothing is left: plan and drift are clean.
    expect((await tidemark('apply', '--auto-approve')).code).toBe(0);
    expect((await tidemark('plan', '--detailed-exitcode')).code).toBe(0);
    const clean = await tidemark('drift', '--detailed-exitcode');
    expect(clean.code, clean.output).toBe(0);
    expect(clean.output).toContain('No drift in staging');
    expect((await tidemark('drift', '--adopt')).output).not.toContain('Adopted');
  });

  it('reports in JSON what it adopted, and adopts nothing twice', async () => {
    await servicesOf(sandbox).renameList(listId('tidemark: cancel intent'), "Cancel intent: why they're leaving");
    const r = await tidemark('drift', '--adopt', '--format', 'json');
    expect(r.code, r.output).toBe(0);
    const json = JSON.parse(r.output.slice(r.output.indexOf('{'))) as { adopt: unknown };
    const text = await readFile(path.join(dir, 'specs', 'surveys.yaml'), 'utf8');
    const line = lineOf(text, `mailing_list: { name: "Cancel intent: why they're leaving" }`);
    expect(json.adopt).toEqual({
      status: 'adopted',
      changes: [
        {
          file: 'specs/surveys.yaml',
          line,
          address: 'qualtrics.mailing_list.cancel_intent_reason',
          attribute: 'name',
          from: 'tidemark: cancel intent',
          to: "Cancel intent: why they're leaving",
        },
      ],
      not_adopted: [],
      problems: [],
    });
    expect(line).toBeGreaterThan(0);
    expect((await tidemark('plan', '--detailed-exitcode')).code).toBe(0);
  });

  it('refuses, writing nothing, when a live value cannot be represented in the specs', async () => {
    const before = await specsNow();
    await servicesOf(sandbox).renameList(listId('tidemark: post-purchase fit'), 'Fit (CX)');
    // The specs' names are trimmed before they are compared: a padded live name cannot be asked for.
    await servicesOf(sandbox).renameList(listId('tidemark: lapsed diagnosis'), '  padded by hand  ');
    const r = await tidemark('drift', '--adopt');
    expect(r.code).toBe(1);
    expect(r.output).toContain('tidemark: drift --adopt wrote nothing:');
    expect(r.output).toMatch(/qualtrics\.mailing_list\.lapsed_diagnosis name: the live value cannot be represented in the specs \(written at specs\/surveys\.yaml:\d+, they would ask for "padded by hand", not " {2}padded by hand {2}"\)/);
    expect(r.output).not.toMatch(/\n\s+at .+:\d+:\d+/);
    expect(await specsNow()).toEqual(before);
    const entries = await readdir(path.join(dir, 'specs'));
    expect(entries.filter((e) => e.includes('tidemark-adopt'))).toEqual([]);
  });
});
