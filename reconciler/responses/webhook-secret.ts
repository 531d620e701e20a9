/**
 * The shared key Qualtrics signs webhook deliveries with. It is a secret like the API token: read only
 * from the environment variable the Workspace names (`qualtrics.responses_webhook_secret_env`), registered
 * for redaction, and never written to a plan, the state or a log: those carry its fingerprint, so a
 * rotated key shows as a replace of the event subscription without showing either key.
 *
 * On the embedded sandbox nobody has to invent one: when the variable is unset a key is generated once and
 * kept in the sandbox state folder, so plan, apply and `responses serve` agree on it across runs.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { registerSecret } from '../core/redact.ts';
import { UserError } from '../core/user-error.ts';
import { webhookSecretUnsetMessage, type WebhookSecret } from '../kinds/qualtrics-event-subscription.ts';
import type { WorkspaceSpec } from '../spec/schema/index.ts';

type EnvironmentSpec = WorkspaceSpec['environments'][string];
export type { WebhookSecret };

/** Long enough to tell keys apart in a plan, far too short (and one-way) to help anyone guess the key. */
export function webhookKeyFingerprint(key: string): string {
  return `sha256:${createHash('sha256').update(key, 'utf8').digest('hex').slice(0, 16)}`;
}

/** The sandbox's generated key: `<state folder>/sandbox/<environment>.webhook-secret`. */
export function sandboxWebhookSecretFile(stateDir: string, environment: string): string {
  return path.join(stateDir, 'sandbox', `${environment}.webhook-secret`);
}

export interface ResolveWebhookSecretOptions {
  environment: string;
  envCfg: EnvironmentSpec;
  env: NodeJS.ProcessEnv;
  /** The sandbox generates a key when the variable is unset; a live run never does. */
  mode: 'live' | 'sandbox';
  /** The state folder (`.tidemark` by default): the sandbox's key is kept under its `sandbox/`. */
  stateDir: string;
  /** Where the environment's qualtrics section is, for messages (defaults to its key path). */
  location?: string;
}

/** The environment's webhook key, or undefined when the environment has no Qualtrics. */
export function resolveWebhookSecret(o: ResolveWebhookSecretOptions): WebhookSecret | undefined {
  const q = o.envCfg.qualtrics;
  if (!q) return undefined;
  const variable = q.responses_webhook_secret_env;
  const location = o.location ?? `environments.${o.environment}.qualtrics.responses_webhook_secret_env`;
  const fromEnv = o.env[variable]?.trim();
  if (fromEnv) {
    registerSecret(o.env[variable]);
    return { variable, location, source: 'environment', fingerprint: webhookKeyFingerprint(fromEnv), key: fromEnv };
  }
  if (o.mode === 'sandbox') {
    const key = sandboxKey(sandboxWebhookSecretFile(o.stateDir, o.environment));
    registerSecret(key);
    return { variable, location, source: 'sandbox', fingerprint: webhookKeyFingerprint(key), key };
  }
  return { variable, location, source: 'unset', fingerprint: null };
}

/** The key, or the error a live run gives when the variable is unset: names the variable and where the Workspace names it. */
export function requireWebhookKey(secret: WebhookSecret): string {
  if (secret.key) return secret.key;
  throw new WebhookSecretUnsetError(secret);
}

export class WebhookSecretUnsetError extends UserError {
  override name = 'WebhookSecretUnsetError';
  constructor(secret: Pick<WebhookSecret, 'variable' | 'location'>) {
    super(webhookSecretUnsetMessage(secret), {
      hint: `Set ${secret.variable} to a long random value (e.g. \`openssl rand -hex 32\`), the same for apply and for the receiver.`,
    });
  }
}

function sandboxKey(file: string): string {
  try {
    const existing = readFileSync(file, 'utf8').trim();
    if (existing) return existing;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(path.dirname(file), { recursive: true });
  const key = randomBytes(32).toString('hex');
  // 'wx': two processes starting at once must not each write their own key; the loser reads the winner's.
  try {
    writeFileSync(file, `${key}\n`, { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readFileSync(file, 'utf8').trim();
    throw err;
  }
  chmodSync(file, 0o600);
  return key;
}
