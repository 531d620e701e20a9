/**
 * A real delivery, end to end on this machine (issue 13 point 2): `tidemark apply` creates the event
 * subscription with the environment's shared key (against a sandbox on 127.0.0.1: the generated key kept
 * in the state folder); `surveys run` invites; `tidemark responses serve` runs as its own process against
 * the same sandbox; a completed response queues the signed delivery Qualtrics would make, and the sandbox
 * POSTs it to serve, which fetches the response and writes its reason code to Customer.io. The same body
 * again is answered `duplicate`; a tampered one is refused; then `responses pull` reads the same response
 * from the export and does not write it again. Serve's output names no id; SIGTERM stops it cleanly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSpecs } from '../../reconciler/spec/load.ts';
import { resolveWebhookSecret, sandboxWebhookSecretFile, webhookKeyFingerprint } from '../../reconciler/responses/webhook-secret.ts';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { deliverWebhooks } from '../../reconciler/sandbox/qualtrics/routes/event-subscriptions.ts';
import {
  DAY,
  HOUR,
  SURVEY,
  applyAt,
  at,
  distributionsOf,
  makeSurveyProject,
  seedQualtrics,
  surveyEnv,
  surveysRun,
  syncAt,
  tm,
  useSurveySandbox,
  type Person,
  type TargetOptions,
} from '../support/survey-fixture.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const T = '2027-01-12T15:00:00.000Z';
const TARGET: TargetOptions = { name: 'delivery_check', survey: SURVEY.delivery, audience: 'recent_buyers', after: '2d', before: '5d', response_window: '48h' };

let sandbox: RunningSandbox;
useSurveySandbox(2424, (s) => (sandbox = s));

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

/** `tidemark responses serve` as its own process (bin/tidemark.js), pointed at the test's sandbox. */
function startServe(dir: string, args: string[]): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const env = { ...surveyEnv(sandbox), PATH: process.env.PATH };
  const child = spawn(process.execPath, [path.join(REPO, 'bin/tidemark.js'), 'responses', 'serve', ...args], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
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

const people = (n: number): Person[] => Array.from({ length: n }, (_, i) => ({ id: `w${String(i + 1).padStart(3, '0')}`, email: `w${i + 1}@example.com`, order_count: 1, accepts_marketing: false }));

describe('responses serve: a signed delivery, verified and written once', () => {
  it('writes a delivered response once, answers a replay as duplicate, refuses a tampered body; the pull of the same response writes nothing; SIGTERM stops it', async () => {
    const port = await freePort();
    const receiver = `http://127.0.0.1:${port}/qualtrics/responses`;
    const ps = people(12);
    const { dir } = await makeSurveyProject({ people: ps, deliveries: ps.map((p) => ({ order_id: `${p.id}-o1`, customer_id: p.id, delivered_at: at(T, -3 * DAY) })), targets: [TARGET] });
    const specs = path.join(dir, 'specs');
    const surveys = (await readFile(path.join(specs, 'surveys.yaml'), 'utf8')).replace('  question: QID1\n', '  question: QID1\n  webhook: true\n');
    await writeFile(path.join(specs, 'surveys.yaml'), surveys.replace('write: { attribute: survey_reason }', 'write: { attribute: survey_reason, event: survey_answered }'));
    await writeFile(path.join(specs, 'fields.yaml'), `${await readFile(path.join(specs, 'fields.yaml'), 'utf8')}  survey_answered: { owner: qualtrics, stage: engagement }\n`);
    await writeFile(path.join(specs, 'workspace.yaml'), (await readFile(path.join(specs, 'workspace.yaml'), 'utf8')).replace(/(\n      directory_id: .*\n)/, `$1      responses_webhook_url: ${receiver}\n`));
    seedQualtrics(sandbox, [TARGET]);
    await applyAt(dir, sandbox, T);

    // apply created the subscription with the key serve will verify against; state and plans carry its fingerprint.
    const model = (await loadSpecs('specs', dir)).model!;
    const stateDir = path.join(dir, '.tidemark');
    const secret = resolveWebhookSecret({ environment: 'test', envCfg: model.workspace!.spec.environments.test!, env: {}, mode: 'sandbox', stateDir })!;
    expect(secret.source).toBe('sandbox');
    expect((await stat(sandboxWebhookSecretFile(stateDir, 'test'))).mode & 0o077).toBe(0);
    expect(sandbox.qualtrics.eventSubscriptions().map((s) => [s.publicationUrl, s.sharedKey])).toEqual([[receiver, secret.key]]);
    const state = await tm(dir, sandbox, 'state', 'list');
    expect(state.stdout + state.stderr).not.toContain(secret.key!);
    const plan = await tm(dir, sandbox, 'plan', '--format', 'json', '--now', T);
    expect(plan.stdout).not.toContain(secret.key!);
    expect(plan.stdout).toContain(webhookKeyFingerprint(secret.key!));

    await syncAt(dir, sandbox, T);
    expect((await surveysRun(dir, sandbox, T)).targets[0]?.status).toBe('sent');
    const [d] = distributionsOf(sandbox, SURVEY.delivery);
    const silent = d!.people.filter((id) => !sandbox.qualtrics.responses(SURVEY.delivery).some((r) => r.externalDataReference === id)).sort();
    const person = silent[0]!;

    const now = at(T, 5 * HOUR);
    const serve = startServe(dir, ['--port', String(port), '--now', now]);
    try {
      await until('serve to listen', () => /Listening on /.test(serve.output()) || serve.child.exitCode !== null, serve.output);
      expect(serve.output()).toContain(`Listening on ${receiver} for environment test (the sandbox's generated key, 1 survey`);

      // The person answers "bad": Qualtrics queues the signed delivery, the sandbox POSTs it to serve.
      const [responseId] = sandbox.qualtrics.seedResponses(SURVEY.delivery, [{ recordedDate: at(T, 4 * HOUR), endDate: at(T, 4 * HOUR), finished: true, recipient: { externalDataReference: person }, values: { QID1: 2 } }]);
      const deliveries = sandbox.qualtrics.drainWebhookOutbox();
      expect(deliveries).toHaveLength(1);
      expect(new URLSearchParams(deliveries[0]!.body).get('HMAC')).toMatch(/^[0-9a-f]{128}$/);
      expect((await deliverWebhooks(deliveries)).map((r) => r.status)).toEqual([200]);
      const eventsOf = () => sandbox.customerio.eventsFor(person).filter((e) => e.name === 'survey_answered');
      expect(sandbox.customerio.getPerson(person)?.attributes['survey_reason']).toBe('bad');
      expect(eventsOf().map((e) => e.data)).toEqual([expect.objectContaining({ reason_code: 'bad', survey: SURVEY.delivery, target: 'delivery_check' })]);

      // The same body again (Qualtrics retrying, or a replay): 200 so Qualtrics stops, nothing written.
      sandbox.resetRequestCounts();
      const replay = await fetch(receiver, { method: 'POST', headers: { 'content-type': deliveries[0]!.contentType }, body: deliveries[0]!.body });
      expect([replay.status, await replay.json()]).toEqual([200, { outcome: 'duplicate' }]);
      expect(sandbox.requestCounts()['POST /api/v2/batch'] ?? 0).toBe(0);

      // The same MSG claiming another response id, with the old signature: refused, nothing fetched.
      const form = new URLSearchParams(deliveries[0]!.body);
      form.set('MSG', form.get('MSG')!.replace(responseId!, 'R_forged000000'));
      const forged = await fetch(receiver, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() });
      expect([forged.status, await forged.json()]).toEqual([401, { outcome: 'refused', reason: 'bad_signature' }]);

      // The pull reads the same response from the export: a duplicate, not a second write.
      const pulled = await tm(dir, sandbox, 'responses', 'pull', '--format', 'json', '--now', at(T, DAY));
      expect(pulled.code, pulled.stdout + pulled.stderr).toBe(0);
      const counts = (JSON.parse(pulled.stdout) as { targets: Array<{ duplicate: number; written: number }> }).targets[0]!;
      expect(counts.duplicate).toBeGreaterThanOrEqual(1);
      expect(sandbox.customerio.getPerson(person)?.attributes['survey_reason']).toBe('bad');
      expect(eventsOf()).toHaveLength(1);

      await until('three log lines', () => (serve.output().match(/^webhook /gm) ?? []).length >= 3, serve.output);
      serve.child.kill('SIGTERM');
      expect(await serve.exited).toBe(0);
      const out = serve.output();
      expect(out).toMatch(/^webhook 200 accepted \(accepted 1, duplicate 0, refused 0, failed 0\)$/m);
      expect(out).toMatch(/^webhook 200 duplicate \(accepted 1, duplicate 1, refused 0, failed 0\)$/m);
      expect(out).toMatch(/^webhook 401 refused: bad_signature \(accepted 1, duplicate 1, refused 1, failed 0\)$/m);
      expect(out).toContain('Stopped (accepted 1, duplicate 1, refused 1, failed 0).');
      expect(out).not.toContain(responseId!);
      expect(out).not.toContain(person);
      expect(out).not.toContain(secret.key!);
    } finally {
      if (serve.child.exitCode === null) serve.child.kill('SIGKILL');
    }
  }, 120_000);
});
