/**
 * Shared plumbing for the sandbox-backed integration tests: a temporary copy of the example specs with
 * its own embedded state, workspaces attached to the test file's sandbox, spec edits, raw calls to the
 * emulated APIs (to play someone working in the Customer.io or Qualtrics UI), and inspection helpers.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import { openEnvironment, type OpenEnvironment, type EnvironmentRequest } from '../../reconciler/composition/use-cases.ts';
import type { PlanOptions } from '../../reconciler/plan/diff.ts';
import type { Plan } from '../../reconciler/plan/plan.ts';
import { createSandbox, type RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { WORLD_SURVEYS } from '../../reconciler/world/surveys.ts';

const REPO = path.resolve(import.meta.dirname, '../..');

/** The example workspace's environments and their XM directories (from specs/workspace.yaml). */
export const STAGING_DIRECTORY = 'POOL_2kXbQ9v1RzT0aLs';
export const PRODUCTION_DIRECTORY = 'POOL_7hNcW3p5YqE2dVu';

/** What the example specs declare for staging, by address, with the remote names tidemark gives them. */
export const DECLARED = {
  'customerio.segment.vip_customers': 'tidemark: vip_customers',
  'customerio.segment.winback_eligible': 'tidemark: winback_eligible',
  'qualtrics.mailing_list.cancel_intent_reason': 'tidemark: cancel intent',
  'qualtrics.mailing_list.lapsed_diagnosis': 'tidemark: lapsed diagnosis',
  'qualtrics.mailing_list.post_purchase_fit': 'tidemark: post-purchase fit',
  'qualtrics.event_subscription.post_purchase_fit': 'surveyengine.completedResponse.SV_3kZ8cTqQ4rPbUuG',
} as const;

/** Backoff in milliseconds instead of seconds: injected faults are retried without real waiting. */
export const FAST_RETRY = { maxAttempts: 8, baseDelayMs: 1, maxDelayMs: 4, maxRetryAfterMs: 5, maxTotalDelayMs: 1_000 };

export const PLAN: PlanOptions = { allowDelete: false, adoptByName: false, targets: [] };
export const planWith = (o: Partial<PlanOptions>): PlanOptions => ({ ...PLAN, ...o });

/** A throwaway project: a copy of the repository's example specs; state lands in its `.tidemark/`. */
export async function makeProject(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tidemark-int-'));
  await cp(path.join(REPO, 'specs'), path.join(dir, 'specs'), { recursive: true });
  return dir;
}

export async function removeProject(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Opens the project's workspace against the test file's sandbox, with no credentials in the environment. */
export function open(dir: string, sandbox: RunningSandbox, extra: Partial<EnvironmentRequest> = {}): Promise<OpenEnvironment> {
  return openEnvironment({ cwd: dir, env: {}, specs: 'specs', attachSandbox: sandbox, retry: FAST_RETRY, ...extra });
}

/** Opens, runs `fn`, always closes (the sandbox stays up: it belongs to the test file). */
export async function withWs<T>(dir: string, sandbox: RunningSandbox, fn: (ws: OpenEnvironment) => Promise<T>, extra: Partial<EnvironmentRequest> = {}): Promise<T> {
  const ws = await open(dir, sandbox, extra);
  try {
    return await fn(ws);
  } finally {
    await ws.conn.close();
  }
}

/** Replaces exact text in a spec file; fails the test when the text is not there (the example specs moved). */
export async function editSpec(dir: string, file: string, from: string, to: string): Promise<void> {
  const p = path.join(dir, 'specs', file);
  const text = await readFile(p, 'utf8');
  expect(text.includes(from), `${file} should contain ${JSON.stringify(from)}`).toBe(true);
  await writeFile(p, text.replace(from, to));
}

/** Removes the YAML document `name: <name>` from a multi-document spec file. */
export async function removeSpec(dir: string, file: string, name: string): Promise<void> {
  const p = path.join(dir, 'specs', file);
  const docs = (await readFile(p, 'utf8')).split(/^---[ \t]*$/m);
  const kept = docs.filter((d) => !new RegExp(`^name:\\s*${name}\\s*$`, 'm').test(d));
  expect(kept.length, `${file} should declare ${name} exactly once`).toBe(docs.length - 1);
  await writeFile(p, kept.join('---').replace(/^\s*---\s*\n/, ''));
}

/** Remaining non-noop changes, by address and action. */
export function pending(plan: Plan): Array<[string, string]> {
  return plan.changes.filter((c) => c.action !== 'noop').map((c) => [c.address, c.action]);
}

/** Tidemark-relevant remote objects, as a person browsing the services would list them. */
export function remoteNames(sandbox: RunningSandbox, directory = STAGING_DIRECTORY) {
  return {
    segments: sandbox.customerio.listSegments().filter((s) => s.type === 'manual').map((s) => s.name).sort(),
    lists: sandbox.qualtrics.listMailingLists(directory).map((l) => l.name ?? '').sort(),
    subscriptions: sandbox.qualtrics.eventSubscriptions().map((s) => `${s.topics} -> ${s.publicationUrl}`).sort(),
  };
}

/** Exactly one remote object per declared staging object, under the expected names. */
export function expectExactlyDeclared(sandbox: RunningSandbox): void {
  expect(remoteNames(sandbox)).toEqual({
    segments: ['tidemark: vip_customers', 'tidemark: winback_eligible'],
    lists: ['tidemark: cancel intent', 'tidemark: lapsed diagnosis', 'tidemark: post-purchase fit'],
    subscriptions: ['surveyengine.completedResponse.SV_3kZ8cTqQ4rPbUuG -> https://hooks.staging.hearthandharvest.example/qualtrics/responses'],
  });
}

/** Forgets every emulated object, fault and request count, so each test starts from fresh services. */
export function resetSandbox(sandbox: RunningSandbox): void {
  sandbox.faults.clear();
  sandbox.customerio.reset();
  sandbox.qualtrics.reset();
  // The brand's XM directories exist before tidemark runs (connect() seeds them too, idempotently).
  sandbox.qualtrics.seedDirectory({ directoryId: STAGING_DIRECTORY, name: 'staging directory' });
  sandbox.qualtrics.seedDirectory({ directoryId: PRODUCTION_DIRECTORY, name: 'production directory' });
  // So does the segment the example builds in Customer.io's UI and references by id (newsletter_engaged).
  sandbox.customerio.seedReferencedSegments(EXAMPLE_UI_SEGMENTS);
  // And the Qualtrics surveys the example's survey targets name (built in the Qualtrics UI; plan checks them).
  sandbox.qualtrics.seedReferencedSurveys(EXAMPLE_SURVEYS);
  sandbox.resetRequestCounts();
}

/** The surveys the example survey targets name, as the brand has them: flows that read exactly their payloads. */
export const EXAMPLE_SURVEYS = WORLD_SURVEYS.map((s) => ({ id: s.id, name: s.name, questions: s.questions, embeddedData: [...s.embeddedData] }));

/** The UI-built segments the example specs reference by id: a real workspace has them before tidemark runs. */
export const EXAMPLE_UI_SEGMENTS = [{ id: 42, name: 'Newsletter engaged' }] as const;

export interface ApiAnswer {
  status: number;
  body: unknown;
}

async function call(url: string, method: string, headers: Record<string, string>, body?: unknown): Promise<ApiAnswer> {
  const res = await fetch(url, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

/**
 * The emulated services' public HTTP APIs with the sandbox credentials: what a person clicking in the
 * Customer.io or Qualtrics UI does to the same objects tidemark manages.
 */
export function servicesOf(sandbox: RunningSandbox) {
  const appAuth = { authorization: `Bearer ${sandbox.env.CUSTOMERIO_APP_API_KEY}` };
  const qAuth = { 'x-api-token': sandbox.env.QUALTRICS_API_TOKEN! };
  const cio = (method: string, p: string, body?: unknown) => call(`${sandbox.urls.customerioApp}${p}`, method, appAuth, body);
  const q = (method: string, p: string, body?: unknown) => call(`${sandbox.urls.qualtrics}/API/v3${p}`, method, qAuth, body);
  const ok = (a: ApiAnswer, what: string) => {
    expect(a.status, `${what}: ${JSON.stringify(a.body)}`).toBeLessThan(300);
    return a.body as Record<string, unknown>;
  };
  return {
    async createSegment(name: string, description = 'made by hand'): Promise<string> {
      const body = ok(await cio('POST', '/v1/segments', { segment: { name, description } }), 'create segment');
      return String((body.segment as { id: number }).id);
    },
    async deleteSegment(id: string): Promise<void> {
      ok(await cio('DELETE', `/v1/segments/${id}`), 'delete segment');
    },
    async createList(name: string, directory = STAGING_DIRECTORY): Promise<string> {
      const body = ok(await q('POST', `/directories/${directory}/mailinglists`, { name }), 'create mailing list');
      return (body.result as { id: string }).id;
    },
    async renameList(id: string, name: string, directory = STAGING_DIRECTORY): Promise<void> {
      ok(await q('PUT', `/directories/${directory}/mailinglists/${id}`, { name }), 'rename mailing list');
    },
    async deleteList(id: string, directory = STAGING_DIRECTORY): Promise<void> {
      ok(await q('DELETE', `/directories/${directory}/mailinglists/${id}`), 'delete mailing list');
    },
    async createSubscription(topics: string, publicationUrl: string): Promise<string> {
      const body = ok(await q('POST', '/eventsubscriptions', { topics, publicationUrl }), 'create event subscription');
      return (body.result as { id: string }).id;
    },
  };
}

/** The remote id tidemark recorded for an address. */
export async function managedId(ws: OpenEnvironment, address: string): Promise<string> {
  const m = await ws.conn.store.getManaged(address);
  expect(m, `${address} should be managed`).toBeDefined();
  return m!.remoteId;
}

/**
 * The fixture of the sandbox-backed integration files: one sandbox per file (its faults and data reset
 * before each test) and a fresh copy of the example project per test, handed to the file's own variables.
 * Hooks the file registers after this call run after these.
 */
export function useSandboxAndProject(seed: number, bind: { sandbox: (s: RunningSandbox) => void; dir: (d: string) => void }): void {
  let sandbox: RunningSandbox | undefined;
  let dir: string | undefined;
  beforeAll(async () => {
    sandbox = await createSandbox({ port: 0, retryAfterSeconds: 0, seed });
    bind.sandbox(sandbox);
  });
  afterAll(async () => {
    await sandbox?.close();
  });
  beforeEach(async () => {
    resetSandbox(sandbox!);
    dir = await makeProject();
    bind.dir(dir);
  });
  afterEach(async () => {
    if (dir) await removeProject(dir);
  });
}
