import { runMainJob, type MainJobResult } from '../../composition/main-job.ts';
import { whoAmI, type ApplyOutcome } from '../../composition/use-cases.ts';
import { hasErrors } from '../../core/diagnostics.ts';
import { redact } from '../../core/redact.ts';
import { actionable } from '../../plan/plan.ts';
import { styleFor, type Style } from '../../core/style.ts';
import { renderPlanText } from '../../plan/render/index.ts';
import { loadSpecs } from '../../spec/load.ts';
import { UsageError, type Command, type CommandContext } from '../command.ts';
import { renderDiagnosticsText, renderSummaryText } from '../../plan/render/diagnostics.ts';
import { publicTarget, withEnvironment, environmentFlags } from '../environment.ts';
import { formatOption, parseCommandLine, renderUsage, type CommandLine } from '../options.ts';
import { progressFor } from '../progress.ts';
import { sourceProgress } from './sync.ts';
import { renderAudiences } from './audiences.ts';
import { renderRun } from './surveys.ts';
import { renderPull } from './responses.ts';

/**
 * The main job (`npm start`): what the scheduled workflow runs, in order: validate, plan, apply, the due
 * syncs, freshness, and a short summary. Against the embedded sandbox (no credentials) changes are
 * applied and the sources read the sandbox world; against live services only with --auto-approve (or
 * TIDEMARK_AUTO_APPROVE=1), and never deletes without --allow-delete.
 */
const line = {
  command: 'start',
  options: {
    ...environmentFlags,
    'auto-approve': { type: 'boolean', description: 'apply to live services without asking (also TIDEMARK_AUTO_APPROVE=1); never to a protected environment' },
    'allow-delete': { type: 'boolean', description: 'apply deletes (otherwise they are blocked)' },
    people: { type: 'string', value: 'N', description: 'customers in the sandbox world (default 5000, up to 1000000)' },
    seed: { type: 'string', value: 'N', description: "the sandbox world's seed" },
    format: formatOption(['text', 'json'], 'text (default), or json: one document on stdout at the end (where it ran, each step\'s outcome, counts only), the steps on stderr'),
  },
} as const satisfies CommandLine;

export const startCommand: Command = {
  name: 'start',
  summary: 'Run the main job: validate, plan, apply, sync what is due, check freshness (on the sandbox without credentials)',
  line,
  usage: renderUsage(line, {
    synopsis: ['start [options]'],
    intro: `The main job, as the scheduled workflow runs it:
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
  7. pull the survey responses recorded since the last pull and write their reason codes to
     Customer.io (targets with \`responses\`);
  8. report freshness, then a summary.

--now moves the clock schedules, freshness and the sandbox world read, so "delivered 7-14 days
ago" holds on any day. Off a terminal, each step's progress comes on stderr as plain lines.`,
    after: `Exit codes: 0 done; 1 a step did not do what it planned (a change or a sync failed, a source that
should have run did not); 3 done, but a source is stale, failed earlier or rejects too many rows.`,
  }),
  async run(args, ctx) {
    const { values } = parseCommandLine(line, args);
    const json = values.format === 'json';
    // With --format json stdout holds the one document; what people read goes to stderr.
    const view: CommandContext = json ? { ...ctx, stdout: ctx.stderr } : ctx;
    const progress = progressFor(ctx.stderr, { command: 'start' });
    const people = wholeNumber(values.people, '--people');
    const seed = wholeNumber(values.seed, '--seed');
    const style = styleFor(view.stdout, ctx.env);
    const specs = values.specs ?? ctx.env.TIDEMARK_SPECS ?? 'specs';
    view.stdout.write(style.bold('1. Validate specs\n'));
    progress.phase('validate');
    const result = await loadSpecs(specs, ctx.cwd);
    view.stdout.write(renderDiagnosticsText(result.diagnostics, style));
    view.stdout.write(renderSummaryText(result, style));
    const errors = result.diagnostics.filter((d) => d.severity === 'error');
    progress.done(`${errors.length} error(s)`);
    if (hasErrors(result.diagnostics) || !result.model) {
      progress.close();
      if (json) ctx.stdout.write(`${JSON.stringify({ format_version: 1, status: 'invalid', exit_code: 1, diagnostics: errors }, null, 2)}\n`);
      return 1;
    }

    return withEnvironment(ctx, values, async (ws) => {
      let synced = 0;
      let surveysShown = false;
      let responsesShown = false;
      progress.phase('plan', `refreshing ${ws.conn.target.label}`);
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
            progress.done(`${actionable(plan).length} change(s)`);
            progress.phase('apply');
            view.stdout.write(style.bold(`\n2. Plan the config for ${ws.conn.environment} on ${ws.conn.target.label}\n`));
            view.stdout.write(renderPlanText(plan, style));
          },
          applyWithheld: (reason) => {
            progress.done(`not applied (${reason === 'protected' ? 'protected environment' : 'no --auto-approve'})`);
            view.stdout.write(
              style.bold('\n3. Apply\n') +
                (reason === 'protected'
                  ? `Not applying: environment "${ws.conn.environment}" is protected and changes only by a reviewed saved plan (\`tidemark plan --out\`, then \`tidemark apply FILE\`).\n`
                  : 'Not applying to live services without --auto-approve (or TIDEMARK_AUTO_APPROVE=1). Review the plan above, then run `tidemark apply`.\n'),
            );
          },
          applied: (outcome) => {
            progress.done(outcome.status === 'done' ? `${outcome.result.results.filter((c) => c.status === 'applied').length} applied, ${outcome.result.ok ? 'complete' : 'not complete'}` : outcome.status);
            view.stdout.write(style.bold('\n3. Apply\n'));
            renderApply(outcome, view, style);
          },
          syncsStarting: () => view.stdout.write(style.bold('\n4. Run due syncs\n')),
          world: (notes) => {
            for (const n of notes) view.stdout.write(style.dim(`  sandbox world: ${n}\n`));
          },
          // Per source: the bar on a terminal, plain lines otherwise (as `tidemark sync run`).
          syncing: (name) => sourceProgress(ctx, 'start', name),
          synced: (r) => {
            synced++;
            const k = r.counts;
            view.stdout.write(`  ${r.status === 'succeeded' ? style.green('synced') : style.red(r.status)} ${r.source}: read ${k.read}, sent ${k.sent} (new ${k.new}, changed ${k.changed}), unchanged ${k.unchanged}, rejected ${k.rejected}${r.error ? ` — ${r.error}` : ''}\n`);
          },
          audiencesStarting: () => {
            if (synced === 0) view.stdout.write('  No source is due.\n');
            view.stdout.write(style.bold('\n5. Audiences\n'));
            progress.phase('audiences', 'evaluating the segments');
          },
          audiences: (r) => {
            progress.done(`${r.evaluation.segments.length} segment(s) evaluated, ${r.published.filter((p) => !p.skipped && !p.error).length} published`);
            view.stdout.write(renderAudiences(r, style));
          },
          surveysStarting: () => {
            surveysShown = true;
            view.stdout.write(style.bold('\n6. Surveys\n'));
            progress.phase('surveys', 'evaluating and sending');
          },
          surveys: (r) => {
            progress.done(`${r.targets.filter((t) => t.status === 'sent').length} of ${r.targets.length} target(s) sent`);
            view.stdout.write(renderRun(r, style));
          },
          responsesStarting: () => {
            responsesShown = true;
            view.stdout.write(style.bold(`\n${surveysShown ? 7 : 6}. Responses\n`));
            progress.phase('responses', 'pulling');
          },
          responses: (r) => {
            progress.done(`${r.targets.reduce((n, t) => n + t.written, 0)} written`);
            view.stdout.write(renderPull(r, style));
          },
          freshness: (statuses) => {
            view.stdout.write(style.bold(`\n${5 + (surveysShown ? 1 : 0) + (responsesShown ? 1 : 0) + 1}. Freshness\n`));
            for (const st of statuses) {
              view.stdout.write(`  ${st.alerts.length ? style.red('✗') : style.green('✓')} ${st.source}${st.alerts.length ? `: ${st.alerts.map((a) => a.message).join('; ')}` : ''}\n`);
            }
          },
        },
      );
      progress.close();
      renderSummary(result, ws.conn.environment, ws.conn.target.label, view, style);
      const code = result.status === 'failed' ? 1 : result.status === 'alerts' ? 3 : 0;
      if (json) ctx.stdout.write(`${JSON.stringify({ format_version: 1, environment: ws.conn.environment, target: publicTarget(ws.conn.target), ...startDocument(result), exit_code: code }, null, 2)}\n`);
      return code;
    });
  },
};

/**
 * The main job as data: each step's outcome and counts. The same objects `sync`, `audiences` and `surveys`
 * write with --format json (counts and names of sources, segments and targets; never a person).
 */
function startDocument(r: MainJobResult): Record<string, unknown> {
  const apply = r.apply;
  return {
    status: r.status,
    alerts: r.alerts,
    plan: r.plan ? { summary: r.plan.summary, errors: r.plan.diagnostics.filter((d) => d.severity === 'error').length } : null,
    apply: apply
      ? {
          status: apply.status,
          ...(apply.status === 'done'
            ? { ok: apply.result.ok, results: apply.result.results.map((c) => ({ address: c.address, action: c.action, status: c.status, remote_id: c.remoteId ?? null, ...(c.message ? { message: redact(c.message) } : {}) })) }
            : {}),
        }
      : null,
    syncs: r.reports,
    not_run: r.notRun,
    audiences: r.audiences ? { ...r.audiences.evaluation, published: r.audiences.published, ok: r.audiences.ok } : null,
    surveys: r.surveys ?? null,
    responses: r.responses ?? null,
    alerting: r.alerting,
  };
}

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
