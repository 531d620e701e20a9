/** Shared plumbing for commands that open an environment: flags, errors users can fix, cleanup. */
import { SetupError, workspaceKeyAt } from '../composition/connect.ts';
import { explainServiceError } from '../composition/service-errors.ts';
import type { TargetIdentity } from '../composition/target.ts';
import { redact } from '../core/redact.ts';
import { fixedClock, type Clock } from '../core/clock.ts';
import { openEnvironment, SpecsInvalidError, type OpenEnvironment } from '../composition/environment.ts';
import { styleFor } from '../core/style.ts';
import { LockHeldError, StateError } from '../state/index.ts';
import type { CommandContext } from './command.ts';
import type { OptionDefs } from './options.ts';
import { renderDiagnosticsText } from '../plan/render/diagnostics.ts';

/** The flags of every command that opens an environment, described once for all their `--help`s. */
export const environmentFlags = {
  env: { type: 'string', value: 'E', description: "the Workspace environment (default: the Workspace's default_environment)" },
  specs: { type: 'string', value: 'DIR', description: 'the specs folder (default specs, or $TIDEMARK_SPECS)' },
  sandbox: { type: 'boolean', description: 'use the embedded sandbox even when credentials are set' },
  now: { type: 'string', value: 'TIME', description: 'the clock, ISO-8601 with a zone (or TIDEMARK_NOW): schedules, freshness and the sandbox world read it' },
} as const satisfies OptionDefs;

export interface EnvironmentFlags {
  env?: string;
  specs?: string;
  sandbox?: boolean;
  /** The clock, as an ISO-8601 time (or TIDEMARK_NOW): schedules, freshness and the sandbox world read it. */
  now?: string;
}

/** `--now` / TIDEMARK_NOW as a fixed clock; the system clock when neither is given. */
export function clockFrom(flags: EnvironmentFlags, env: NodeJS.ProcessEnv): Clock | undefined {
  const text = flags.now ?? env.TIDEMARK_NOW;
  if (text === undefined || text.trim() === '') return undefined;
  const ms = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(text) || !/(Z|[+-]\d{2}:?\d{2})$/.test(text) || Number.isNaN(ms)) {
    throw new SetupError(`${flags.now !== undefined ? '--now' : 'TIDEMARK_NOW'} must be an ISO-8601 time with a zone, e.g. 2026-12-02T09:00:00Z (got "${text}")`);
  }
  return fixedClock(new Date(ms).toISOString());
}

/** What machine-readable outputs say about where they ran: the identity, never a credential. */
export function publicTarget(t: TargetIdentity): { mode: TargetIdentity['mode']; id: string; label: string } {
  return { mode: t.mode, id: t.id, label: t.label };
}

/** Opens the environment, runs `fn`, always closes; turns problems a user can fix into a message and exit 1. */
export async function withEnvironment(ctx: CommandContext, flags: EnvironmentFlags, fn: (ws: OpenEnvironment) => Promise<number>): Promise<number> {
  const style = styleFor(ctx.stderr, ctx.env);
  let ws: OpenEnvironment;
  try {
    const clock = clockFrom(flags, ctx.env);
    ws = await openEnvironment({
      ...(clock ? { clock } : {}),
      cwd: ctx.cwd,
      env: ctx.env,
      specs: flags.specs ?? ctx.env.TIDEMARK_SPECS ?? 'specs',
      ...(flags.env ? { environment: flags.env } : {}),
      ...(flags.sandbox ? { sandbox: true } : {}),
    });
  } catch (err) {
    if (err instanceof SpecsInvalidError) {
      ctx.stderr.write(renderDiagnosticsText(err.diagnostics.filter((d) => d.severity === 'error'), style));
      ctx.stderr.write(`tidemark: ${err.message}\n`);
      return 1;
    }
    if (err instanceof SetupError || err instanceof StateError) {
      ctx.stderr.write(`tidemark: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  try {
    for (const n of ws.conn.notes) ctx.stderr.write(`${style.dim(n)}\n`);
    const r = ws.recovery;
    if (r.runs > 0) {
      ctx.stderr.write(
        `${style.yellow('Recovered')} ${r.runs} interrupted apply run(s): ${r.adopted.length} object(s) created before the interruption were adopted${r.adopted.length ? ` (${r.adopted.join(', ')})` : ''}, ${r.forgotten.length} deletion(s) confirmed.\n`,
      );
      if (r.unresolved.length) ctx.stderr.write(`${style.red('Unresolved')}: ${r.unresolved.join(', ')}: check them with \`tidemark drift\`.\n`);
    }
    return await fn(ws);
  } catch (err) {
    if (err instanceof LockHeldError || err instanceof SetupError) {
      ctx.stderr.write(`tidemark: ${err.message}\n`);
      return 1;
    }
    const envCfg = ws.model.workspace!.spec.environments[ws.conn.environment]!;
    const why = explainServiceError(err, { environment: ws.conn.environment, envCfg, keyAt: workspaceKeyAt(ws.model, ws.conn.environment), target: ws.conn.target });
    if (why) {
      ctx.stderr.write(`tidemark: ${why}\n`);
      if (ctx.env.TIDEMARK_DEBUG === '1' && err instanceof Error) ctx.stderr.write(`${redact(err.stack ?? err.message)}\n`);
      return 1;
    }
    throw err;
  } finally {
    await ws.conn.close();
  }
}
