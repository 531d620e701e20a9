/**
 * `tidemark responses serve`: the Qualtrics webhook receiver as a long-running command. Kept in its own
 * file so `responses pull` (responses.ts) can dispatch its `serve` subcommand here.
 */
import path from 'node:path';
import { pickEnvironment, SetupError, workspaceKeyAt } from '../../composition/connect.ts';
import { chooseTarget, liveTarget } from '../../composition/target.ts';
import { styleFor } from '../../core/style.ts';
import { appliesTo } from '../../plan/desired.ts';
import { renderDiagnosticsText } from '../../plan/render/diagnostics.ts';
import { DEFAULT_WEBHOOK_PATH, startWebhookServer } from '../../responses/serve.ts';
import { webhookLedgerSink } from '../../composition/responses-job.ts';
import { openEnvironment, type OpenEnvironment } from '../../composition/use-cases.ts';
import type { WebhookSink } from '../../responses/webhook-http.ts';
import { resolveWebhookSecret, WebhookSecretUnsetError } from '../../responses/webhook-secret.ts';
import { loadSpecs } from '../../spec/load.ts';
import { sorted, type SpecModel } from '../../spec/model.ts';
import { UsageError, type CommandContext } from '../command.ts';
import { UserError } from '../../core/user-error.ts';
import { clockFrom, environmentFlags } from '../environment.ts';
import { parseCommandLine, type CommandLine, type OptionDefs } from '../options.ts';

/** The options only `responses serve` takes; `responses --help` lists them as serve's. */
export const SERVE_OPTIONS = {
  port: { type: 'string', default: '8787', value: 'N', only: ['serve'], description: 'the port to listen on (default 8787; 0 picks a free one)' },
  host: { type: 'string', default: '127.0.0.1', value: 'HOST', only: ['serve'], description: 'the address to listen on (default 127.0.0.1)' },
  path: {
    type: 'string',
    value: 'P',
    only: ['serve'],
    description: `the path deliveries are POSTed to (default: the path of the environment's responses_webhook_url, else ${DEFAULT_WEBHOOK_PATH})`,
  },
} as const satisfies OptionDefs;

/** What `responses --help` says of serve. */
export const SERVE_INTRO = `serve  receives Qualtrics webhook deliveries (completed responses) on POST P at http://HOST:PORT.
       Each delivery is verified: form-encoded, at most 64 KiB (refused while reading),
       HMAC-SHA512 of MSG under the environment's shared key (the variable
       qualtrics.responses_webhook_secret_env names; on the sandbox a generated key kept in the
       state folder), Topic, SurveyID and BrandID agreeing, a survey a target of the environment
       names, CompletedDate within 24 h. Verified deliveries are written once per response id (a
       repeat answers 200 "duplicate"). Prints the URL it listens on, then one line per delivery
       with its outcome and counts (never ids). SIGTERM or Ctrl-C stops it after the deliveries in
       flight are answered.`;

export const SERVE_EXIT_CODES = 'serve: 0 stopped by a signal; 1 setup error (no key, no webhook target, port in use) or a usage error.';

const serveLine = { command: 'responses serve', positionals: true, options: { ...environmentFlags, ...SERVE_OPTIONS } } as const satisfies CommandLine;

/** Survey ids the environment's targets that ask for webhook delivery name. */
export function webhookSurveys(model: SpecModel, environment: string): Set<string> {
  const out = new Set<string>();
  for (const t of sorted(model.surveyTargets)) if (appliesTo(t.spec, environment) && t.spec.responses?.webhook) out.add(t.spec.survey);
  return out;
}

export interface ServeHooks {
  /** Resolves when the server should stop (besides SIGTERM and SIGINT). */
  stop?: AbortSignal;
  /**
   * The sink deliveries go to. Default: the response ledger (`webhookLedgerSink`: fetched, mapped and
   * written once, as `responses pull` does); `close` runs after the server stopped.
   */
  makeSink?(at: { environment: string; mode: 'live' | 'sandbox'; stateDir: string }): Promise<WebhookSink & { close?(): Promise<void> }>;
}

/** `responses serve` after its subcommand word; resolves when the server has stopped. */
export async function runResponsesServe(args: string[], ctx: CommandContext, hooks: ServeHooks = {}): Promise<number> {
  const stop = hooks.stop;
  const { values, positionals } = parseCommandLine(serveLine, args);
  if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port!) || port > 65535) throw new UsageError(`--port must be a port number, 0 to 65535 (got "${values.port}")`);
  if (values.path !== undefined && !values.path.startsWith('/')) throw new UsageError('--path must start with /');
  const style = styleFor(ctx.stderr, ctx.env);
  const fail = (message: string, hint?: string) => {
    ctx.stderr.write(`tidemark: ${message}\n${hint ? `${hint}\n` : ''}`);
    return 1;
  };

  const load = await loadSpecs(values.specs ?? ctx.env.TIDEMARK_SPECS ?? 'specs', ctx.cwd);
  if (!load.model) {
    ctx.stderr.write(renderDiagnosticsText(load.diagnostics.filter((d) => d.severity === 'error'), style));
    return fail('the specs have errors; fix them first (`tidemark validate`)');
  }
  const model = load.model;
  let environment: string;
  try {
    environment = pickEnvironment(model, values.env);
  } catch (err) {
    if (err instanceof SetupError) return fail(err.message);
    throw err;
  }
  const ws = model.workspace!.spec;
  const envCfg = ws.environments[environment]!;
  const keyAt = workspaceKeyAt(model, environment);
  if (!envCfg.qualtrics) return fail(`environment "${environment}" has no qualtrics section in the Workspace, so nothing delivers to it`);
  const surveys = webhookSurveys(model, environment);
  if (surveys.size === 0) return fail(`no survey target of environment "${environment}" asks for webhook delivery (responses.webhook: true)`);

  const choice = chooseTarget(environment, envCfg, ctx.env, !!values.sandbox);
  if (choice.outcome === 'refused') return fail(choice.message);
  const mode = choice.outcome;
  // A run against a `tidemark sandbox` on this machine keys its webhooks the way the embedded sandbox does.
  const keyMode = mode === 'sandbox' || liveTarget(envCfg, ctx.env).loopback ? 'sandbox' : 'live';
  const stateDir = path.resolve(ctx.cwd, ws.state?.backend === 'embedded' ? ws.state.path : '.tidemark');
  const secret = resolveWebhookSecret({
    environment,
    envCfg,
    env: ctx.env,
    mode: keyMode,
    stateDir,
    location: keyAt(['qualtrics', 'responses_webhook_secret_env']),
  });
  if (!secret?.key) {
    const err = new WebhookSecretUnsetError(secret ?? { variable: envCfg.qualtrics.responses_webhook_secret_env, location: keyAt(['qualtrics']) });
    return fail(err.message, err.hint);
  }
  let clock;
  try {
    clock = clockFrom(values, ctx.env);
  } catch (err) {
    if (err instanceof SetupError) return fail(err.message);
    throw err;
  }
  const route = values.path ?? pathOf(envCfg.qualtrics.responses_webhook_url) ?? DEFAULT_WEBHOOK_PATH;
  let sink: WebhookSink & { close?(): Promise<void> };
  if (hooks.makeSink) sink = await hooks.makeSink({ environment, mode, stateDir });
  else {
    // The receiver writes through the state and the clients the other commands use; it takes no lock,
    // since the ledger's insert, not a lock, keeps a response from being written twice.
    let open: OpenEnvironment;
    try {
      open = await openEnvironment({ cwd: ctx.cwd, env: ctx.env, specs: values.specs ?? ctx.env.TIDEMARK_SPECS ?? 'specs', environment, ...(values.sandbox ? { sandbox: true } : {}), ...(clock ? { clock } : {}) });
    } catch (err) {
      if (err instanceof UserError) return fail(err.message, err.hint);
      throw err;
    }
    sink = { ...webhookLedgerSink(open, surveys), close: () => open.conn.close() };
  }

  let server;
  try {
    server = await startWebhookServer({
      host: values.host!,
      port,
      path: route,
      sharedKey: secret.key,
      surveys,
      sink,
      ...(clock ? { clock } : {}),
      log: (line) => ctx.stdout.write(`${line}\n`),
    });
  } catch (err) {
    await (sink as { close?(): Promise<void> }).close?.();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') return fail(`cannot listen on ${values.host}:${port} (${code})`);
    throw err;
  }
  ctx.stdout.write(
    `Listening on ${server.url} for environment ${environment} (${secret.source === 'sandbox' ? 'the sandbox\'s generated key' : `key from ${secret.variable}`}, ${surveys.size} survey${surveys.size === 1 ? '' : 's'}, key ${secret.fingerprint})\n`,
  );

  await new Promise<void>((resolve) => {
    const onSignal = () => resolve();
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    stop?.addEventListener('abort', onSignal, { once: true });
  });
  ctx.stdout.write('Stopping: answering the deliveries in flight.\n');
  await server.close();
  await (sink as { close?(): Promise<void> }).close?.();
  ctx.stdout.write(`Stopped (accepted ${server.counts.accepted}, duplicate ${server.counts.duplicate}, refused ${server.counts.refused}, failed ${server.counts.failed}).\n`);
  return 0;
}

function pathOf(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const p = new URL(url).pathname;
    return p && p !== '/' ? p : undefined;
  } catch {
    return undefined;
  }
}
