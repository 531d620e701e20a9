import { parseArgs } from 'node:util';
import { runMainJob, type MainJobResult } from '../../composition/main-job.ts';
import { whoAmI, type ApplyOutcome } from '../../composition/use-cases.ts';
import { hasErrors } from '../../core/diagnostics.ts';
import { styleFor, type Style } from '../../core/style.ts';
import { renderPlanText } from '../../plan/render/index.ts';
import { loadSpecs } from '../../spec/load.ts';
import { UsageError, type Command, type CommandContext } from '../command.ts';
import { renderDiagnosticsText, renderSummaryText } from '../../plan/render/diagnostics.ts';
import { withEnvironment, environmentFlags } from '../environment.ts';
import { renderAudiences } from './audiences.ts';
import { renderRun } from './surveys.ts';

/**
 * The main job (`npm start`): what the scheduled workflow runs, in order: validate, plan, apply, the due
 * syncs, freshness, and a short summary. Against the embedded sandbox (no credentials) changes are
 * applied and the sources read the sandbox world; against live services only with --auto-approve (or
 * TIDEMARK_AUTO_APPROVE=1), and never deletes without --allow-delete.
 */
export const startCommand: Command = {
  name: 'start',
  summary: 'Run the main job: validate, plan, apply, sync what is due, check freshness (on the sandbox without credentials)',
  usage: `Usage: tidemark start [--env E] [--specs DIR] [--auto-approve] [--allow-delete] [--sandbox]
                      [--now TIME] [--people N] [--seed N]

The main job, as the scheduled workflow runs it:
  1. validate the specs (stops on errors);
  2. plan the config plane (Customer.io segments, Qualtrics mailing lists and webhooks);
  3. apply it: always on the embedded sandbox; on live services only with --auto-approve
     (or TIDEMARK_AUTO_APPROVE=1). Deletes need --allow-delete;
  4. run the syncs that are due. On the sandbox, when the Workspace names a world
     (sandbox.world), Postgres sources whose connection variable is unset read the embedded
     warehouse (PGlite on 127.0.0.1) and file sources read the world's exports;
  5. evaluate the declared segments from what Customer.io acknowledged and publish them
     (frozen while a guarded source is stale; held when membership leaves its \`expect\`);
  6. send the surveys: per SurveyTarget, the people eligible now (audience, moment window,
     caps, holdout, priority, send window) are imported into its Qualtrics mailing list and
     sent one distribution; a send an earlier run left unfinished is finished first;
  7. report freshness, then a summary.

  --now TIME   the clock (ISO-8601 with a zone; also TIDEMARK_NOW): schedules, freshness and
               the sandbox world read it, so "delivered 7-14 days ago" holds on any day
  --people N   customers in the sandbox world (default 5000, up to 1000000)
  --seed N     the sandbox world's seed

Exit codes: 0 done; 1 a step did not do what it planned (a change or a sync failed, a source that
should have run did not); 3 done, but a source is stale, failed earlier or rejects too many rows.
`,
  async run(args, ctx) {
    const { values } = parseArgs({
      args,
      options: { ...environmentFlags, 'auto-approve': { type: 'boolean' }, 'allow-delete': { type: 'boolean' }, people: { type: 'string' }, seed: { type: 'string' } },
      strict: true,
    });
    const people = wholeNumber(values.people, '--people');
    const seed = wholeNumber(values.seed, '--seed');
    const style = styleFor(ctx.stdout, ctx.env);
    const specs = values.specs ?? ctx.env.TIDEMARK_SPECS ?? 'specs';
    ctx.stdout.write(style.bold('1. Validate specs\n'));
    const result = await loadSpecs(specs, ctx.cwd);
    ctx.stdout.write(renderDiagnosticsText(result.diagnostics, style));
    ctx.stdout.write(renderSummaryText(result, style));
    if (hasErrors(result.diagnostics) || !result.model) return 1;

    return withEnvironment(ctx, values, async (ws) => {
      let synced = 0;
      let surveysShown = false;
      const result = await runMainJob(
        ws,
        {
          allowDelete: !!values['allow-delete'],
          autoApprove: !!values['auto-approve'] || ctx.env.TIDEMARK_AUTO_APPROVE === '1',
          who: whoAmI(ctx.env),
          env: ctx.env,
          world: { ...(people !== undefined ? { people } : {}), ...(seed !== undefined ? { seed } : {}) },
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
          world: (notes) => {
            for (const n of notes) ctx.stdout.write(style.dim(`  sandbox world: ${n}\n`));
          },
          synced: (r) => {
            synced++;
            const k = r.counts;
            ctx.stdout.write(`  ${r.status === 'succeeded' ? style.green('synced') : style.red(r.status)} ${r.source}: read ${k.read}, sent ${k.sent} (new ${k.new}, changed ${k.changed}), unchanged ${k.unchanged}, rejected ${k.rejected}${r.error ? ` — ${r.error}` : ''}\n`);
          },
          audiencesStarting: () => {
            if (synced === 0) ctx.stdout.write('  No source is due.\n');
            ctx.stdout.write(style.bold('\n5. Audiences\n'));
          },
          audiences: (r) => ctx.stdout.write(renderAudiences(r, style)),
          surveysStarting: () => {
            surveysShown = true;
            ctx.stdout.write(style.bold('\n6. Surveys\n'));
          },
          surveys: (r) => ctx.stdout.write(renderRun(r, style)),
          freshness: (statuses) => {
            ctx.stdout.write(style.bold(`\n${surveysShown ? 7 : 6}. Freshness\n`));
            for (const st of statuses) {
              ctx.stdout.write(`  ${st.alerts.length ? style.red('✗') : style.green('✓')} ${st.source}${st.alerts.length ? `: ${st.alerts.map((a) => a.message).join('; ')}` : ''}\n`);
            }
          },
        },
      );
      renderSummary(result, ws.conn.environment, ws.conn.target.label, ctx, style);
      return result.status === 'failed' ? 1 : result.status === 'alerts' ? 3 : 0;
    });
  },
};

function wholeNumber(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^-?\d+$/.test(text.trim())) throw new UsageError(`${flag} must be a whole number (got "${text}")`);
  return Number(text);
}

const PAST = { create: 'created', import: 'imported', update: 'updated', replace: 'replaced', delete: 'deleted', forget: 'forgot' } as const;

/** The last thing on screen: what happened, where to look, what to do next. */
function renderSummary(r: MainJobResult, environment: string, where: string, ctx: CommandContext, style: Style): void {
  const out: string[] = [style.bold(`\nSummary (${environment} on ${where})`)];
  if (r.apply?.status === 'done') {
    const results = r.apply.result.results;
    const applied = (action: string) => results.filter((c) => c.status === 'applied' && c.action === action).map((c) => c.address);
    const parts = (['create', 'import', 'update', 'replace', 'delete', 'forget'] as const).flatMap((a) => {
      const list = applied(a);
      return list.length ? [`${PAST[a]} ${list.join(', ')}`] : [];
    });
    const notDone = results.filter((c) => c.status !== 'applied' && c.status !== 'unchanged');
    out.push(`  config: ${parts.length ? parts.join('; ') : 'nothing changed'}${notDone.length ? style.red(`; ${notDone.map((c) => `${c.status} ${c.address}`).join(', ')}`) : ''}`);
  } else if (r.apply?.status === 'nothing') out.push('  config: up to date, nothing applied');
  else if (r.plan) out.push('  config: not applied (see step 3)');
  for (const rep of r.reports) {
    const k = rep.counts;
    const tail = rep.status === 'succeeded' ? '' : style.red(` — ${rep.status}${rep.problems?.length ? `: ${rep.problems.join(' ')}` : ''}`);
    out.push(`  ${rep.source}: sent ${k.sent} of ${k.read} read${k.rejected ? `, ${k.rejected} rejected (${rep.rejects_file ?? 'see `tidemark status`'})` : ''}${tail}`);
  }
  for (const p of r.audiences?.published ?? []) {
    if (p.skipped) out.push(style.dim(`  audience ${p.segment}: not published (${p.skipped})`));
    else out.push(`  audience ${p.segment}: +${p.added} −${p.removed}${p.error ? style.red(` — ${p.error}`) : ''}`);
  }
  for (const t of r.surveys?.targets ?? []) {
    if (t.status === 'sent' && t.send) out.push(`  survey ${t.target}: invited ${t.send.invited}, held out ${t.send.held_out}`);
    else if (t.status === 'failed') out.push(style.red(`  survey ${t.target}: not sent — ${t.note ?? 'failed'}`));
    else if (t.status === 'skipped') out.push(style.dim(`  survey ${t.target}: not sent (${t.note})`));
  }
  for (const n of r.notRun) {
    out.push(n.reason === 'never_synced' ? style.red(`  ${n.source}: never synced, and not run now`) : style.dim(`  ${n.source}: not due (its schedule has not fired since the last run)`));
  }
  if (r.alerting.length) out.push(style.red(`  freshness alerts: ${r.alerting.join(', ')} (\`tidemark status\` says why)`));
  const stopped = (r.audiences?.evaluation.segments ?? []).filter((s) => s.verdict !== 'publish');
  if (stopped.length) out.push(style.yellow(`  audiences not published: ${stopped.map((s) => `${s.segment} (${s.verdict})`).join(', ')} (\`tidemark audiences plan\` says why)`));
  out.push('', 'Next:');
  const rejected = r.reports.some((rep) => rep.counts.rejected > 0);
  if (rejected) out.push('  - read why rows were rejected in the rejects files above (one JSON line per row: location, field, reason)');
  out.push('  - `tidemark sync plan SOURCE` shows what a sync would send, per field, without sending');
  out.push('  - edit specs/segments.yaml, then `tidemark plan` shows the change; `tidemark status` shows freshness');
  out.push('  - `npm start -- --now <later ISO time>` moves the clock: the world moves with it and only what changed is sent');
  ctx.stdout.write(`${out.join('\n')}\n`);
}

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
