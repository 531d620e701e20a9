import { parseArgs } from 'node:util';
import { applyChanges, isProtected, makePlan, whoAmI } from '../../composition/use-cases.ts';
import { hasChanges } from '../../plan/plan.ts';
import { hasErrors } from '../../core/diagnostics.ts';
import { styleFor } from '../../core/style.ts';
import { renderPlanText } from '../../plan/render/index.ts';
import { loadSpecs } from '../../spec/load.ts';
import type { Command } from '../command.ts';
import { renderDiagnosticsText, renderSummaryText } from '../render/diagnostics.ts';
import { withWorkspace, workspaceFlags } from '../workspace.ts';
import { DEFAULT_REJECT_RATE_THRESHOLD, isDue } from '../../sync/monitor.ts';
import { readSourceStatuses, sourcesFor } from '../../sync/source-statuses.ts';
import { syncSource } from '../../sync/run.ts';
import type { OpenWorkspace } from '../../composition/use-cases.ts';
import type { CommandContext } from '../command.ts';
import type { Style } from '../../core/style.ts';

/**
 * The main job (`npm start`): what the scheduled workflow runs, in order. Today: validate the specs,
 * then reconcile the config plane. Against the embedded sandbox (no credentials) changes are applied;
 * against live services only with --auto-approve (or TIDEMARK_AUTO_APPROVE=1), and never deletes
 * without --allow-delete.
 */
export const startCommand: Command = {
  name: 'start',
  summary: 'Run the main job: validate, then plan and apply the config (on the sandbox without credentials)',
  usage: `Usage: tidemark start [--env E] [--specs DIR] [--auto-approve] [--allow-delete] [--sandbox]

The main job, as the scheduled workflow runs it:
  1. validate the specs (stops on errors);
  2. plan the config plane (Customer.io segments, Qualtrics mailing lists and webhooks);
  3. apply it: always on the embedded sandbox; on live services only with --auto-approve
     (or TIDEMARK_AUTO_APPROVE=1). Deletes need --allow-delete;
  4. run the syncs that are due (on the sandbox, warehouse sources whose connection variable is not
     set are skipped);
  5. report freshness: exits 3 when a source is stale, failed or rejects too many rows.
`,
  async run(args, ctx) {
    const { values } = parseArgs({
      args,
      options: { ...workspaceFlags, 'auto-approve': { type: 'boolean' }, 'allow-delete': { type: 'boolean' } },
      strict: true,
    });
    const style = styleFor(ctx.stdout, ctx.env);
    const specs = values.specs ?? ctx.env.TIDEMARK_SPECS ?? 'specs';
    ctx.stdout.write(style.bold('1. Validate specs\n'));
    const result = await loadSpecs(specs, ctx.cwd);
    ctx.stdout.write(renderDiagnosticsText(result.diagnostics, style));
    ctx.stdout.write(renderSummaryText(result, style));
    if (hasErrors(result.diagnostics) || !result.model) return 1;

    return withWorkspace(ctx, values, async (ws) => {
      const options = { allowDelete: !!values['allow-delete'], adoptByName: false, targets: [] };
      ctx.stdout.write(style.bold(`\n2. Plan the config for ${ws.conn.environment} on ${ws.conn.target.label}\n`));
      const plan = await makePlan(ws, options);
      ctx.stdout.write(renderPlanText(plan, style));
      if (hasErrors(plan.diagnostics)) return 1;
      const approved = ws.conn.mode === 'sandbox' || values['auto-approve'] || ctx.env.TIDEMARK_AUTO_APPROVE === '1';
      ctx.stdout.write(style.bold('\n3. Apply\n'));
      if (isProtected(ws) && ws.conn.mode === 'live' && hasChanges(plan)) {
        // The main job never applies a fresh plan to a protected environment, approved or not.
        ctx.stdout.write(`Not applying: environment "${ws.conn.environment}" is protected and changes only by a reviewed saved plan (\`tidemark plan --out\`, then \`tidemark apply FILE\`).\n`);
        return 1;
      }
      if (!approved && hasChanges(plan)) {
        // The job did not do what it planned: say so in the exit code too.
        ctx.stdout.write('Not applying to live services without --auto-approve (or TIDEMARK_AUTO_APPROVE=1). Review the plan above, then run `tidemark apply`.\n');
        return 1;
      }
      const outcome = await applyChanges(ws, { options, who: whoAmI(ctx.env) });
      let configOk = true;
      switch (outcome.status) {
        case 'nothing':
          ctx.stdout.write('Nothing to apply: the config is up to date.\n');
          break;
        case 'locked':
          ctx.stderr.write(`Another apply holds the lock: ${outcome.holder}\n`);
          configOk = false;
          break;
        case 'done': {
          const r = outcome.result;
          for (const c of r.results) ctx.stdout.write(`  ${c.status.padEnd(8)} ${c.address}${c.message ? ` — ${c.message}` : ''}\n`);
          ctx.stdout.write(`${r.ok ? style.green('Config applied.') : style.red('Some changes failed.')} ${r.next.join(' ')}\n`);
          configOk = r.ok;
          break;
        }
        default:
          configOk = false;
      }
      const { ok: syncsOk, skipped } = await runDueSyncs(ws, ctx, style);
      const alerts = await reportFreshness(ws, ctx, style, skipped);
      if (!configOk || !syncsOk) return 1;
      return alerts > 0 ? 3 : 0;
    });
  },
};

async function runDueSyncs(ws: OpenWorkspace, ctx: CommandContext, style: Style): Promise<{ ok: boolean; skipped: Set<string> }> {
  const skipped = new Set<string>();
  ctx.stdout.write(style.bold('\n4. Run due syncs\n'));
  const now = ws.clock.now();
  let ok = true;
  let ran = 0;
  for (const s of sourcesFor(ws.model, ws.conn.environment)) {
    if (!isDue(s.spec, await ws.conn.store.lastSuccess(s.name), now)) continue;
    const c = s.spec.connector;
    if (c.type === 'postgres' && !ctx.env[c.url_env] && ws.conn.mode === 'sandbox') {
      ctx.stdout.write(style.dim(`  skipped ${s.name}: ${c.url_env} is not set (no warehouse connection in the sandbox)\n`));
      skipped.add(s.name);
      continue;
    }
    ran++;
    const r = await syncSource(
      { model: ws.model, store: ws.conn.store, client: ws.conn.customerio, cwd: ctx.cwd, env: ctx.env, clock: ws.clock, stateDir: ws.conn.stateDir },
      s.name,
      { mode: 'run' },
    );
    const k = r.counts;
    ctx.stdout.write(`  ${r.status === 'succeeded' ? style.green('synced') : style.red('failed')} ${s.name}: read ${k.read}, sent ${k.sent} (new ${k.new}, changed ${k.changed}), unchanged ${k.unchanged}, rejected ${k.rejected}${r.error ? ` — ${r.error}` : ''}\n`);
    if (r.status !== 'succeeded') ok = false;
  }
  if (ran === 0 && skipped.size === 0) ctx.stdout.write('  No source is due.\n');
  return { ok, skipped };
}

async function reportFreshness(ws: OpenWorkspace, ctx: CommandContext, style: Style, skipped: Set<string>): Promise<number> {
  ctx.stdout.write(style.bold('\n5. Freshness\n'));
  let alerts = 0;
  for (const st of await readSourceStatuses(ws.model, ws.conn.store, ws.conn.environment, ws.clock.now(), DEFAULT_REJECT_RATE_THRESHOLD)) {
    if (skipped.has(st.source)) {
      ctx.stdout.write(style.dim(`  - ${st.source}: not checked (no connection in the sandbox)\n`));
      continue;
    }
    alerts += st.alerts.length;
    ctx.stdout.write(`  ${st.alerts.length ? style.red('✗') : style.green('✓')} ${st.source}${st.alerts.length ? `: ${st.alerts.map((a) => a.message).join('; ')}` : ''}\n`);
  }
  return alerts;
}
