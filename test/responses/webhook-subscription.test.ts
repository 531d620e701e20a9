/**
 * The webhook's shared key on the config side: where it comes from (the variable the Workspace names, or
 * the sandbox's generated key), that plans compare its fingerprint and never show the key, that a rotated
 * key is a replace and an unset one blocks with the variable and where the Workspace names it.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fixedClock } from '../../reconciler/core/clock.ts';
import { clearSecretsForTest, redact } from '../../reconciler/core/redact.ts';
import { qualtricsEventSubscription, qualtricsEventSubscriptionKind, type WebhookSecret } from '../../reconciler/kinds/qualtrics-event-subscription.ts';
import { computePlan, type LiveEntry, type StateEntry } from '../../reconciler/plan/diff.ts';
import type { Plan } from '../../reconciler/plan/plan.ts';
import { renderPlanJson, renderPlanText } from '../../reconciler/plan/render/index.ts';
import { plainStyle } from '../../reconciler/core/style.ts';
import type { QualtricsClient } from '../../reconciler/providers/qualtrics/client.ts';
import { requireWebhookKey, resolveWebhookSecret, sandboxWebhookSecretFile, webhookKeyFingerprint } from '../../reconciler/responses/webhook-secret.ts';
import { WorkspaceSpec } from '../../reconciler/spec/schema/workspace.ts';

const ENV_CFG = WorkspaceSpec.parse({
  kind: 'Workspace',
  name: 'w',
  identity: { primary: 'id' },
  environments: {
    staging: {
      customerio: { region: 'us' },
      qualtrics: { datacenter: 'iad1', directory_id: 'POOL_abc123', responses_webhook_url: 'https://hooks.example/q', responses_webhook_secret_env: 'Q_STAGING_WEBHOOK_SECRET' },
    },
  },
}).environments.staging!;

/** A client whose every use throws: the planner's side of the kind must not touch it. */
const noClient = new Proxy({}, { get: (_t, p) => { throw new Error(`touched the client (${String(p)})`); } }) as QualtricsClient;

afterEach(() => clearSecretsForTest());

describe('resolveWebhookSecret', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('reads the variable the Workspace names, registers it for redaction and gives its fingerprint', () => {
    const s = resolveWebhookSecret({ environment: 'staging', envCfg: ENV_CFG, env: { Q_STAGING_WEBHOOK_SECRET: ' k3y-from-the-environment\n' }, mode: 'live', stateDir: '/nowhere' })!;
    expect(s).toMatchObject({ variable: 'Q_STAGING_WEBHOOK_SECRET', source: 'environment', key: 'k3y-from-the-environment', fingerprint: webhookKeyFingerprint('k3y-from-the-environment') });
    expect(s.fingerprint).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(redact('signing with k3y-from-the-environment')).toBe('signing with [redacted]');
  });

  it('live with the variable unset: no key, and an error naming the variable and where the Workspace names it', () => {
    const s = resolveWebhookSecret({ environment: 'staging', envCfg: ENV_CFG, env: { Q_STAGING_WEBHOOK_SECRET: '  ' }, mode: 'live', stateDir: '/nowhere', location: 'environments.staging.qualtrics.responses_webhook_secret_env (specs/workspace.yaml:9)' })!;
    expect(s).toMatchObject({ source: 'unset', fingerprint: null });
    expect(() => requireWebhookKey(s)).toThrow(
      'the webhook shared key is not set: environment variable Q_STAGING_WEBHOOK_SECRET (named by environments.staging.qualtrics.responses_webhook_secret_env (specs/workspace.yaml:9)) is unset or empty',
    );
  });

  it('on the sandbox generates a key once, kept in the state folder (owner-only), and reads the same one after', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tidemark-webhook-'));
    const a = resolveWebhookSecret({ environment: 'staging', envCfg: ENV_CFG, env: {}, mode: 'sandbox', stateDir: dir })!;
    const b = resolveWebhookSecret({ environment: 'staging', envCfg: ENV_CFG, env: {}, mode: 'sandbox', stateDir: dir })!;
    expect(a.source).toBe('sandbox');
    expect(a.key).toMatch(/^[0-9a-f]{64}$/);
    expect(b.key).toBe(a.key);
    expect((await stat(sandboxWebhookSecretFile(dir, 'staging'))).mode & 0o777).toBe(0o600);
    // A variable that is set wins on the sandbox too.
    expect(resolveWebhookSecret({ environment: 'staging', envCfg: ENV_CFG, env: { Q_STAGING_WEBHOOK_SECRET: 'explicit-key-1' }, mode: 'sandbox', stateDir: dir })!.key).toBe('explicit-key-1');
  });

  it('defaults the variable name to QUALTRICS_WEBHOOK_SECRET', () => {
    const cfg = WorkspaceSpec.parse({ kind: 'Workspace', name: 'w', identity: { primary: 'id' }, environments: { e: { customerio: { region: 'us' }, qualtrics: { datacenter: 'iad1', directory_id: 'POOL_abc123' } } } }).environments.e!;
    expect(cfg.qualtrics!.responses_webhook_secret_env).toBe('QUALTRICS_WEBHOOK_SECRET');
  });
});

const secretOf = (key: string | undefined): WebhookSecret => ({
  variable: 'Q_STAGING_WEBHOOK_SECRET',
  location: 'environments.staging.qualtrics.responses_webhook_secret_env (specs/workspace.yaml:9)',
  source: key ? 'environment' : 'unset',
  fingerprint: key ? webhookKeyFingerprint(key) : null,
  ...(key ? { key } : {}),
});

const ADDRESS = 'qualtrics.event_subscription.post_purchase_fit';
const TOPICS = 'surveyengine.completedResponse.SV_abc';
const URL = 'https://hooks.example/q';

/** One webhook desired, managed since an apply made with `stateKey`, live as Qualtrics lists it. */
function planWith(secret: WebhookSecret | undefined, stateKey: string | null | undefined): Plan {
  const kind = qualtricsEventSubscriptionKind(noClient, secret);
  const stateAttrs = { topics: TOPICS, publication_url: URL, ...(stateKey !== undefined ? { shared_key: stateKey } : {}) };
  const state: StateEntry[] = stateKey === undefined && secret === undefined ? [] : [{ address: ADDRESS, kind: kind.kind, remoteId: 'SUB_1', attributes: stateAttrs, dependsOn: [], preventDestroy: false }];
  // What list() would say: Qualtrics gives topics and URL; the fingerprint comes from the state entry.
  const live: LiveEntry[] = state.length
    ? [{ id: 'SUB_1', name: `${TOPICS} -> ${URL}`, attributes: secret ? { topics: TOPICS, publication_url: URL, shared_key: stateKey ?? null } : { topics: TOPICS, publication_url: URL }, manageable: true }]
    : [];
  return computePlan({
    environment: 'staging',
    target: { mode: 'sandbox', id: 'sandbox:staging', label: 'the embedded sandbox' },
    desired: [{ address: { provider: 'qualtrics', type: 'event_subscription', name: 'post_purchase_fit' }, attributes: { topics: TOPICS, publication_url: URL }, dependsOn: [], preventDestroy: false, source: { file: 'specs/surveys.yaml', start: { line: 1, col: 1 }, end: { line: 1, col: 5 } } }],
    kinds: { [kind.kind]: kind },
    state,
    live: { [kind.kind]: live },
    options: { allowDelete: false, adoptByName: false, targets: [] },
    specs: { revision: null, dirty: false, digest: 'd', files: {} },
    clock: fixedClock('2026-12-02T09:00:00Z'),
    version: '0.0.0',
  });
}

describe('qualtrics.event_subscription with a shared key', () => {
  it('plans nothing when the key is the one it was created with', () => {
    const p = planWith(secretOf('key-one-aaaaaaaa'), webhookKeyFingerprint('key-one-aaaaaaaa'));
    expect(p.changes.map((c) => c.action)).toEqual(['noop']);
  });

  it('a rotated key is a replace, new before old, and the plan shows fingerprints, never a key', () => {
    const p = planWith(secretOf('key-two-bbbbbbbb'), webhookKeyFingerprint('key-one-aaaaaaaa'));
    expect(p.changes[0]).toMatchObject({ action: 'replace', requires_replace: ['shared_key'], create_before_destroy: true });
    const shown = renderPlanText(p, plainStyle) + renderPlanJson(p);
    expect(shown).toContain(webhookKeyFingerprint('key-two-bbbbbbbb'));
    expect(shown).not.toContain('key-two-bbbbbbbb');
    expect(shown).not.toContain('key-one-aaaaaaaa');
  });

  it('a subscription created without a key (before this) is replaced by a signed one', () => {
    const p = planWith(secretOf('key-one-aaaaaaaa'), undefined);
    expect(p.changes[0]).toMatchObject({ action: 'replace', requires_replace: ['shared_key'] });
  });

  it('with the variable unset the change is blocked, naming the variable and the Workspace setting', () => {
    const p = planWith(secretOf(undefined), webhookKeyFingerprint('key-one-aaaaaaaa'));
    expect(p.changes[0]!.blocked).toEqual({
      code: 'PLAN008',
      message:
        'the webhook shared key is not set: environment variable Q_STAGING_WEBHOOK_SECRET (named by environments.staging.qualtrics.responses_webhook_secret_env (specs/workspace.yaml:9)) is unset or empty; set it, the same for apply and for the receiver',
    });
  });

  it('without a key handed in, plans exactly as before (topics and URL only)', () => {
    const kind = qualtricsEventSubscription.bind(ENV_CFG, { customerio: noClient as never, qualtrics: noClient })!;
    expect(kind.replaceOn).toEqual(['topics', 'publication_url']);
    expect(kind.normalize({ topics: TOPICS, publication_url: URL })).toEqual({ topics: TOPICS, publication_url: URL });
    const withKey = qualtricsEventSubscription.bind(ENV_CFG, { customerio: noClient as never, qualtrics: noClient, webhookSecret: secretOf('key-one-aaaaaaaa') } as never)!;
    expect(withKey.normalize({ topics: TOPICS, publication_url: URL })).toEqual({ topics: TOPICS, publication_url: URL, shared_key: webhookKeyFingerprint('key-one-aaaaaaaa') });
  });
});
