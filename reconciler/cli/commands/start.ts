import { parseArgs } from 'node:util';
import { runMainJob } from '../../composition/main-job.ts';
import { whoAmI, type ApplyOutcome } from '../../composition/use-cases.ts';
import { hasErrors } from '../../core/diagnostics.ts';
import { styleFor, type Style } from '../../core/style.ts';
import { renderPlanText } from '../../plan/render/index.ts';
import { loadSpecs } from '../../spec/load.ts';
import type { Command, CommandContext } from '../command.ts';
import { renderDiagnosticsText, renderSummaryText } from '../../plan/render/diagnostics.ts';
import { withEnvironment, environmentFlags } from '../environment.ts';

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
      options: { ...environmentFlags, 'auto-approve': { type: 'boolean' }, 'allow-delete': { type: 'boolean' } },
      strict: true,
    });
    const style = styleFor(ctx.stdout, ctx.env);
    const specs = values.specs ?? ctx.env.TIDEMARK_SPECS ?? 'specs';
    ctx.stdout.write(style.bold('1. Validate specs\n'));
    const result = await loadSpecs(specs, ctx.cwd);
    ctx.stdout.write(renderDiagnosticsText(result.diagnostics, style));
    ctx.stdout.write(renderSummaryText(result, style));
    if (hasErrors(result.diagnostics) || !result.model) return 1;

    return withEnvironment(ctx, values, async (ws) => {
      let syncLines = 0;
      const result = await runMainJob(
        ws,
        {
          allowDelete: !!values['allow-delete'],
          autoApprove: !!values['auto-approve'] || ctx.env.TIDEMARK_AUTO_APPROVE === '1',
          who: whoAmI(ctx.env),
          env: ctx.env,
        },
        {
          planned: (plan) => {
            ctx.stdout.write(style.bold(`\n2. Plan the config for ${ws.conn.environment} on ${ws.conn.target.label}\n`));
            ctx.stdout.write(renderPlanText(plan, style));
          },
          applyWithheld: (reason) =>
            ctx.stdout.write(
              style.bold('\n3. Apply\n') +
                (reason === 'protected'
                  ? `Not applying: environment "${ws.conn.environment}" is protected and changes only by a reviewed saved plan (\`tidemark plan --out\`, then \`tidemark apply FILE\`).\n`
                  : 'Not applying to live services without --auto-approve (or TIDEMARK_AUTO_APPROVE=1). Review the plan above, then run `tidemark apply`.\n'),
            ),
          applied: (outcome) => {
            ctx.stdout.write(style.bold('\n3. Apply\n'));
            renderApply(outcome, ctx, style);
          },
          syncsStarting: () => ctx.stdout.write(style.bold('\n4. Run due syncs\n')),
          syncSkipped: (name, reason) => {
            syncLines++;
            ctx.stdout.write(style.dim(`  skipped ${name}: ${reason}\n`));
          },
          synced: (r) => {
            syncLines++;
            const k = r.counts;
            ctx.stdout.write(`  ${r.status === 'succeeded' ? style.green('synced') : style.red(r.status)} ${r.source}: read ${k.read}, sent ${k.sent} (new ${k.new}, changed ${k.changed}), unchanged ${k.unchanged}, rejected ${k.rejected}${r.error ? ` — ${r.error}` : ''}\n`);
          },
          freshness: (statuses, skipped) => {
            if (syncLines === 0) ctx.stdout.write('  No source is due.\n');
            ctx.stdout.write(style.bold('\n5. Freshness\n'));
            for (const st of statuses) {
              if (skipped.has(st.source)) {
                ctx.stdout.write(style.dim(`  - ${st.source}: not checked (no connection in the sandbox)\n`));
                continue;
              }
              ctx.stdout.write(`  ${st.alerts.length ? style.red('✗') : style.green('✓')} ${st.source}${st.alerts.length ? `: ${st.alerts.map((a) => a.message).join('; ')}` : ''}\n`);
            }
          },
        },
      );
      return result.status === 'failed' ? 1 : result.status === 'alerts' ? 3 : 0;
    });
  },
};

function renderApply(outcome: ApplyOutcome, ctx: CommandContext, style: Style): void {
  switch (outcome.status) {
    case 'nothing':
      ctx.stdout.write('Nothing to apply: the config is up to date.\n');
      return;
    case 'locked':
      ctx.stderr.write(`Another apply holds the lock: ${outcome.holder}\n`);
      return;
    case 'done': {
      const r = outcome.result;
      for (const c of r.results) ctx.stdout.write(`  ${c.status.padEnd(8)} ${c.address}${c.message ? ` — ${c.message}` : ''}\n`);
      ctx.stdout.write(`${r.ok ? style.green('Config applied.') : style.red('Some changes failed.')} ${r.next.join(' ')}\n`);
      return;
    }
    default:
      ctx.stdout.write(`Not applied (${outcome.status}).\n`);
  }
}
