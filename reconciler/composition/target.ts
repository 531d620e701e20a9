/**
 * Which services a run talks to, decided before anything is opened, and said in every output.
 *
 * Two rules keep the target from ever being a surprise:
 * - the embedded sandbox is used only when it was chosen: `--sandbox`, or no credentials at all for an
 *   environment that is neither `protected` nor running in CI (`CI=true`). Anywhere else missing or empty
 *   credentials are an error that names the variables;
 * - the state belongs to the target it was made against (see `checkStateTarget`): a state made against
 *   one Customer.io site must never be read as the truth about another, or tidemark would take that
 *   workspace's objects for its own, and update or delete them.
 *
 * Pure: the caller passes the environment variables in.
 */
import type { WorkspaceSpec } from '../spec/schema/index.ts';

export type EnvironmentSpec = WorkspaceSpec['environments'][string];

/** The identity of what a run talks to; `id` is what the state records, `label` what outputs say. */
export interface TargetIdentity {
  mode: 'sandbox' | 'live';
  /** Stable across runs against the same services (no ports of the embedded sandbox, no secrets). */
  id: string;
  /** One line for people: "the embedded sandbox" or "Customer.io site … (us) · Qualtrics iad1, directory …". */
  label: string;
  /** Some service is reached through an override URL on this machine (a standalone sandbox, an emulator). */
  loopback?: true;
  customerio?: { region: string; site_id: string; track_url?: string; app_url?: string };
  qualtrics?: { datacenter: string; directory_id: string; base_url?: string };
}

export type TargetChoice =
  | { outcome: 'sandbox'; reason: 'chosen' | 'no-credentials' }
  | { outcome: 'live' }
  | { outcome: 'refused'; message: string };

/** Names of the variables holding the credentials of one environment, Customer.io first. */
export function credentialNames(envCfg: EnvironmentSpec): string[] {
  const cio = envCfg.customerio;
  return [cio.site_id_env, cio.track_api_key_env, cio.app_api_key_env, ...(envCfg.qualtrics ? [envCfg.qualtrics.api_token_env] : [])];
}

/** A value that is only whitespace is as good as unset: a pasted secret with a newline is trimmed. */
export function credentialValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

export function isCi(env: NodeJS.ProcessEnv): boolean {
  const v = env.CI?.trim().toLowerCase();
  return v !== undefined && v !== '' && v !== 'false' && v !== '0';
}

/** The variable that makes this a CI run, as `NAME=value` for messages; undefined outside CI. */
export function ciMarker(env: NodeJS.ProcessEnv): string | undefined {
  if (isCi(env)) return `CI=${env.CI!.trim()}`;
  if (env.GITHUB_ACTIONS?.trim().toLowerCase() === 'true') return `GITHUB_ACTIONS=${env.GITHUB_ACTIONS.trim()}`;
  return undefined;
}

/** Set to `1` on a persistent self-hosted runner whose disk (and so the embedded state) outlives each job. */
export const ALLOW_EMBEDDED_STATE_IN_CI = 'TIDEMARK_ALLOW_EMBEDDED_STATE_IN_CI';

/**
 * Whether a run may keep its state in the embedded store. In CI, against the live services, it may not:
 * an ephemeral runner starts every job with an empty `.tidemark/`, so each sync would send every row
 * again (the snapshot is gone), the apply lock would guard nothing (each job has its own), and the
 * state would forget which objects tidemark manages. Runs against a sandbox (embedded, or a standalone
 * one on this machine) keep their own state and are allowed.
 */
export function checkStateInCi(
  target: TargetIdentity,
  env: NodeJS.ProcessEnv,
  ctx: { environment: string; embedded: boolean; stateLocation: string; workspaceStateAt: string },
): { ok: true } | { ok: false; message: string } {
  const ci = ciMarker(env);
  if (!ci || !ctx.embedded || target.mode !== 'live' || target.loopback) return { ok: true };
  if (env[ALLOW_EMBEDDED_STATE_IN_CI]?.trim() === '1') return { ok: true };
  return {
    ok: false,
    message:
      `environment "${ctx.environment}" keeps its state in the embedded store (${ctx.stateLocation}), but this is a CI run (${ci}) against ${target.label}. ` +
      `On a runner that starts empty, that state is lost with every job: each sync would send every row again and the apply lock would guard nothing. ` +
      `Keep the state in PostgreSQL: set TIDEMARK_DATABASE_URL from a secret, or set \`state: { backend: postgres, url_env: … }\` in the Workspace (${ctx.workspaceStateAt}). ` +
      `On a persistent self-hosted runner whose disk outlives each job, set ${ALLOW_EMBEDDED_STATE_IN_CI}=1 instead. See docs/ci-state.md.`,
  };
}

/** Where a run goes, before anything is opened. */
export function chooseTarget(environment: string, envCfg: EnvironmentSpec, env: NodeJS.ProcessEnv, sandboxChosen: boolean): TargetChoice {
  if (sandboxChosen) return { outcome: 'sandbox', reason: 'chosen' };
  const names = credentialNames(envCfg);
  const missing = names.filter((n) => credentialValue(env, n) === undefined);
  if (missing.length === 0) return { outcome: 'live' };
  const none = missing.length === names.length;
  if (none && !envCfg.protected && !isCi(env)) return { outcome: 'sandbox', reason: 'no-credentials' };
  const why = envCfg.protected
    ? `environment "${environment}" is protected, so it never falls back to the sandbox`
    : none
      ? `this is a CI run (CI=${env.CI}), so it never falls back to the sandbox`
      : `some of its credentials are set, so it is meant for the live services`;
  const empty = missing.filter((n) => env[n] !== undefined);
  return {
    outcome: 'refused',
    message:
      `environment "${environment}" has no credentials in ${missing.join(', ')}${empty.length ? ` (${empty.join(', ')} ${empty.length > 1 ? 'are' : 'is'} set but empty)` : ''}: ${why}. ` +
      `Set ${missing.length > 1 ? 'them' : 'it'}, or pass --sandbox to run on the embedded sandbox instead.`,
  };
}

/** The identity of the live services one environment's credentials point at. */
export function liveTarget(envCfg: EnvironmentSpec, env: NodeJS.ProcessEnv): TargetIdentity {
  const cio = envCfg.customerio;
  const siteId = credentialValue(env, cio.site_id_env) ?? '';
  const trackUrl = originOf(env.CUSTOMERIO_TRACK_URL);
  const appUrl = originOf(env.CUSTOMERIO_APP_URL);
  const customerio = { region: cio.region, site_id: siteId, ...(trackUrl ? { track_url: trackUrl } : {}), ...(appUrl ? { app_url: appUrl } : {}) };
  const q = envCfg.qualtrics;
  const baseUrl = originOf(env.QUALTRICS_BASE_URL);
  const qualtrics = q ? { datacenter: q.datacenter, directory_id: q.directory_id, ...(baseUrl ? { base_url: baseUrl } : {}) } : undefined;
  const via = (url: string | undefined) => (url ? ` via ${url}` : '');
  const idParts = [`customerio:${cio.region}:site=${siteId}${trackUrl ? `@${trackUrl}` : ''}${appUrl ? `@${appUrl}` : ''}`];
  const labelParts = [`Customer.io site ${siteId} (${cio.region})${via(trackUrl ?? appUrl)}`];
  if (qualtrics) {
    idParts.push(`qualtrics:${qualtrics.datacenter}:directory=${qualtrics.directory_id}${baseUrl ? `@${baseUrl}` : ''}`);
    labelParts.push(`Qualtrics ${qualtrics.datacenter}, directory ${qualtrics.directory_id}${via(baseUrl)}`);
  }
  const loopback = [trackUrl, appUrl, baseUrl].some(isLoopback);
  return { mode: 'live', id: idParts.join('|'), label: labelParts.join(' · '), ...(loopback ? { loopback: true as const } : {}), customerio, ...(qualtrics ? { qualtrics } : {}) };
}

/** The embedded (or attached) sandbox: one identity per environment, whatever ports it listens on. */
export function sandboxTarget(environment: string, where?: string): TargetIdentity {
  return { mode: 'sandbox', id: `sandbox:${environment}`, label: `the embedded sandbox${where ? ` (${where})` : ''}` };
}

function isLoopback(origin: string | undefined): boolean {
  if (!origin) return false;
  try {
    const host = new URL(origin).hostname;
    return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
  } catch {
    return false;
  }
}

/** Only the scheme, host and port of an override URL: a path or query could carry a token. */
function originOf(url: string | undefined): string | undefined {
  const v = url?.trim();
  if (!v) return undefined;
  try {
    return new URL(v).origin;
  } catch {
    return v.replace(/[?#].*$/, '');
  }
}

export interface RecordedTarget {
  id: string;
  label: string;
  recorded_at: string;
}

export type TargetCheck = { ok: true; record?: RecordedTarget } | { ok: false; message: string };

/**
 * Whether a state may be used against `target`. A state with no recorded target is claimed by the first
 * run only when it is empty; a non-empty one from before targets were recorded is refused, because
 * nothing can tell which workspace its ids belong to.
 */
export function checkStateTarget(
  recorded: RecordedTarget | undefined,
  target: TargetIdentity,
  stateIsEmpty: boolean,
  ctx: { environment: string; stateLocation: string; now: Date },
): TargetCheck {
  const fresh = startFresh(ctx.environment, ctx.stateLocation);
  if (recorded) {
    if (recorded.id === target.id) return { ok: true };
    // A label leaves out part of the identity (the App API's URL, say): the same label twice would read as
    // no difference at all, so then the identities themselves are shown (sites, regions and origins only).
    const targets = recorded.label === target.label ? `${target.label} (recorded as ${recorded.id}, now ${target.id})` : target.label;
    return {
      ok: false,
      message:
        `the state of environment "${ctx.environment}" (${ctx.stateLocation}) belongs to ${recorded.label}, recorded ${recorded.recorded_at}, ` +
        `but this run targets ${targets}. tidemark refuses to read one workspace's state as the truth about another: it would take that workspace's objects for its own. ${fresh}`,
    };
  }
  if (!stateIsEmpty) {
    return {
      ok: false,
      message:
        `the state of environment "${ctx.environment}" (${ctx.stateLocation}) was made by an older tidemark that did not record which services it belongs to, ` +
        `so it cannot be used against ${target.label}. ${fresh}`,
    };
  }
  return { ok: true, record: { id: target.id, label: target.label, recorded_at: ctx.now.toISOString() } };
}

function startFresh(environment: string, location: string): string {
  return location.endsWith('.sqlite')
    ? `To start fresh against this target, move ${location} aside (keep it if it still belongs to the other one), then run \`tidemark plan --env ${environment} --adopt-by-name\` to adopt objects that already exist.`
    : `To start fresh against this target, give it its own state (another database or \`schema\`), then run \`tidemark plan --env ${environment} --adopt-by-name\` to adopt objects that already exist.`;
}
