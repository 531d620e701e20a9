/** Shared plumbing for commands that open an environment: flags, errors users can fix, cleanup. */
import { SetupError, workspaceKeyAt } from '../composition/connect.ts';
import { explainServiceError } from '../composition/service-errors.ts';
import type { TargetIdentity } from '../composition/target.ts';
import { redact } from '../core/redact.ts';
import { openEnvironment, SpecsInvalidError, type OpenEnvironment } from '../composition/use-cases.ts';
import { styleFor } from '../core/style.ts';
import { LockHeldError, StateError } from '../state/index.ts';
import type { CommandContext } from './command.ts';
import { renderDiagnosticsText } from '../plan/render/diagnostics.ts';

export const environmentFlags = {
  env: { type: 'string' },
  specs: { type: 'string' },
  sandbox: { type: 'boolean' },
} as const;

export interface EnvironmentFlags {
  env?: string;
  specs?: string;
  sandbox?: boolean;
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
    ws = await openEnvironment({
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
