/**
 * A real delivery, end to end on this machine: `responses serve` runs as its own process on 127.0.0.1;
 * the sandbox's Qualtrics holds an event subscription created by the kind with the environment's shared
 * key (on the sandbox: the generated key serve also reads from the state folder); a response seeded in
 * the sandbox queues the signed delivery Qualtrics would make, and the sandbox POSTs it to serve. The sink
 * (serve's file sink) holds the response once; the same body posted again is answered `duplicate` and not
 * written; a tampered one is refused; serve's output names no id; SIGTERM stops it cleanly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qualtricsEventSubscriptionKind } from '../../reconciler/kinds/qualtrics-event-subscription.ts';
import { QualtricsClient, qualtricsConfigFromEnv } from '../../reconciler/providers/qualtrics/client.ts';
import { resolveWebhookSecret, sandboxWebhookSecretFile } from '../../reconciler/responses/webhook-secret.ts';
import { createSandbox, type RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { deliverWebhooks } from '../../reconciler/sandbox/qualtrics/routes/event-subscriptions.ts';
import { loadSpecs } from '../../reconciler/spec/load.ts';
import { EXAMPLE_SURVEYS, editSpec, makeProject, removeProject } from '../support/integration-fixture.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
/** The example's webhook target (post_purchase_fit) and its survey. */
const SURVEY = 'SV_3kZ8cTqQ4rPbUuG';
const EXAMPLE_URL = 'https://hooks.staging.hearthandharvest.example/qualtrics/responses';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** `tidemark responses serve` as its own process (bin/tidemark.js); output collected. */
function startServe(dir: string, args: string[]): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  // No credentials and not CI: the environment resolves to the sandbox, as `npm start` does.
  const child = spawn(process.execPath, [path.join(REPO, 'bin/tidemark.js'), 'responses', 'serve', ...args], { cwd: dir, env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += String(d)));
  child.stderr!.on('data', (d) => (out += String(d)));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  return { child, output: () => out, exited };
}

async function until(what: string, cond: () => boolean, output: () => string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; output so far:\n${output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('responses serve receives a signed delivery from the sandbox', () => {
  let dir: string;
  let sandbox: RunningSandbox;
  let serve: ReturnType<typeof startServe>;
  let receiver: string;

  beforeAll(async () => {
    dir = await makeProject();
    const port = await freePort();
    receiver = `http://127.0.0.1:${port}/qualtrics/responses`;
    await editSpec(dir, 'workspace.yaml', EXAMPLE_URL, receiver);
    sandbox = await createSandbox({ port: 0, retryAfterSeconds: 0 });
    sandbox.qualtrics.seedReferencedSurveys(EXAMPLE_SURVEYS);
    serve = startServe(dir, ['--port', String(port)]);
    await until('serve to listen', () => /Listening on /.test(serve.output()) || serve.child.exitCode !== null, serve.output);
    expect(serve.output()).toContain(`Listening on ${receiver} for environment staging (the sandbox's generated key, 1 survey`);
  }, 60_000);

  afterAll(async () => {
    if (serve?.child.exitCode === null) serve.child.kill('SIGKILL');
    await sandbox?.close();
    if (dir) await removeProject(dir);
  });

  it('delivers once, answers a replay as duplicate without writing it, refuses a tampered body, and stops on SIGTERM', async () => {
    // The key serve generated on the sandbox, read the way plan and apply read it.
    const model = (await loadSpecs('specs', dir)).model!;
    const envCfg = model.workspace!.spec.environments.staging!;
    const stateDir = path.join(dir, '.tidemark');
    const secret = resolveWebhookSecret({ environment: 'staging', envCfg, env: {}, mode: 'sandbox', stateDir })!;
    expect(secret.source).toBe('sandbox');
    expect((await stat(sandboxWebhookSecretFile(stateDir, 'staging'))).mode & 0o077).toBe(0);

    // The subscription as apply creates it: with the shared key; its attributes carry the fingerprint only.
    const client = new QualtricsClient(qualtricsConfigFromEnv(sandbox.env, { retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 } }));
    const kind = qualtricsEventSubscriptionKind(client, secret);
    const created = await kind.create({ topics: `surveyengine.completedResponse.${SURVEY}`, publication_url: receiver });
    expect(created.attributes).toEqual({ topics: `surveyengine.completedResponse.${SURVEY}`, publication_url: receiver, shared_key: secret.fingerprint });
    expect(JSON.stringify(created)).not.toContain(secret.key);
    expect(sandbox.qualtrics.eventSubscriptions().map((s) => s.sharedKey)).toEqual([secret.key]);

    // A completed response: the sandbox queues the signed delivery and POSTs it to serve.
    const now = new Date().toISOString();
    const [responseId] = sandbox.qualtrics.seedResponses(SURVEY, [{ recordedDate: now, endDate: now, finished: true }]);
    const deliveries = sandbox.qualtrics.drainWebhookOutbox();
    expect(deliveries).toHaveLength(1);
    expect(new URLSearchParams(deliveries[0]!.body).get('HMAC')).toMatch(/^[0-9a-f]{128}$/);
    expect(await deliverWebhooks(deliveries)).toEqual([{ subscriptionId: created.id, status: 200 }]);

    const inbox = path.join(stateDir, 'responses', 'webhook-staging.sandbox.ndjson');
    const lines = async () => (await readFile(inbox, 'utf8')).trim().split('\n');
    expect((await lines()).map((l) => JSON.parse(l))).toEqual([expect.objectContaining({ survey_id: SURVEY, response_id: responseId, via: 'webhook' })]);

    // The same body again (Qualtrics retrying, or someone replaying it): 200 so Qualtrics stops, nothing written.
    const replay = await fetch(receiver, { method: 'POST', headers: { 'content-type': deliveries[0]!.contentType }, body: deliveries[0]!.body });
    expect([replay.status, await replay.json()]).toEqual([200, { outcome: 'duplicate' }]);
    expect(await lines()).toHaveLength(1);

    // The same MSG claiming another response id, with the old signature: refused, nothing written.
    const form = new URLSearchParams(deliveries[0]!.body);
    form.set('MSG', form.get('MSG')!.replace(responseId!, 'R_forged000000'));
    const forged = await fetch(receiver, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() });
    expect([forged.status, await forged.json()]).toEqual([401, { outcome: 'refused', reason: 'bad_signature' }]);
    expect(await lines()).toHaveLength(1);

    await until('three log lines', () => (serve.output().match(/^webhook /gm) ?? []).length >= 3, serve.output);
    serve.child.kill('SIGTERM');
    expect(await serve.exited).toBe(0);
    const out = serve.output();
    expect(out).toMatch(/^webhook 200 accepted \(accepted 1, duplicate 0, refused 0, failed 0\)$/m);
    expect(out).toMatch(/^webhook 200 duplicate \(accepted 1, duplicate 1, refused 0, failed 0\)$/m);
    expect(out).toMatch(/^webhook 401 refused: bad_signature \(accepted 1, duplicate 1, refused 1, failed 0\)$/m);
    expect(out).toContain('Stopped (accepted 1, duplicate 1, refused 1, failed 0).');
    // Counts, never ids or the key.
    expect(out).not.toContain(responseId!);
    expect(out).not.toContain('R_forged');
    expect(out).not.toContain(secret.key!);
  }, 60_000);
});
