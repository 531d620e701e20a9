import { styleFor } from '../../core/style.ts';
import { DEFAULT_REJECT_RATE_THRESHOLD, formatAge } from '../../sync/monitor.ts';
import { checkFreshness } from '../../composition/sync-job.ts';
import { guardVerdicts } from '../../audiences/evaluate.ts';
import { responseMappingStatus } from '../../composition/responses-job.ts';
import { UsageError, type Command } from '../command.ts';
import { publicTarget, withEnvironment, environmentFlags } from '../environment.ts';
import { formatOption, parseCommandLine, renderUsage, type CommandLine } from '../options.ts';

/** Exit code when the command worked but found something that needs attention. */
export const ALERT_EXIT_CODE = 3;

const line = {
  command: 'status',
  options: {
    ...environmentFlags,
    format: formatOption(['text', 'json', 'github'], 'text (default), json, or github (workflow-command annotations)'),
    'max-reject-rate': {
      type: 'string',
      value: 'SHARE',
      default: String(DEFAULT_REJECT_RATE_THRESHOLD),
      description: `rejected-row share (0 to 1) over which a source that declares no max_rejected alerts (default ${DEFAULT_REJECT_RATE_THRESHOLD})`,
    },
  },
} as const satisfies CommandLine;

export const statusCommand: Command = {
  name: 'status',
  summary: 'Freshness of every source against its SLO, last runs and rejected-row rates; alerts',
  line,
  usage: renderUsage(line, {
    synopsis: ['status [options]'],
    intro: `Per source: the last successful sync, its age against the freshness SLO, the last run's outcome
(succeeded, partial, failed, interrupted), its rejected-row rate and the entries waiting for the next run.
Only a succeeded run counts for freshness. Exits ${ALERT_EXIT_CODE} with machine-readable alerts when a source is
stale, its last run failed or was partial, entries wait to be sent, or its rejected-row rate is over the
source's max_rejected (--max-reject-rate for sources that declare none); when a survey target's response
mapping has gone wrong: its question or a coded choice left the survey (CX changed it), answers in the last
30 days that no reason code names, or a reason code no published segment or survey audience uses.
1 on errors, 0 when all is well.`,
  }),
  async run(args, ctx) {
    const { values } = parseCommandLine(line, args);
    const threshold = Number(values['max-reject-rate']);
    if (!(threshold >= 0 && threshold <= 1)) throw new UsageError('--max-reject-rate must be a share between 0 and 1');
    return withEnvironment(ctx, values, async (ws) => {
      const { checkedAt: now, statuses } = await checkFreshness(ws, threshold);
      const alerts = statuses.flatMap((s) => s.alerts);
      // Guarded segments a stale source stops: they publish nothing (or are emptied) until it is fresh.
      const guards = await guardVerdicts({ model: ws.model, environment: ws.conn.environment, store: ws.conn.store, now });
      // The response mapping: answers that stopped changing anything because the survey or the specs moved.
      const responses = await responseMappingStatus(ws);
      if (values.format === 'json') {
        ctx.stdout.write(`${JSON.stringify({ format_version: 1, environment: ws.conn.environment, target: publicTarget(ws.conn.target), checked_at: now.toISOString(), sources: statuses, alerts, audiences: guards, responses }, null, 2)}\n`);
      } else if (values.format === 'github') {
        const on = ` [${ws.conn.environment} on ${ws.conn.target.label}]`;
        const escape = (t: string) => t.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
        for (const a of alerts) ctx.stdout.write(`::error title=tidemark ${a.kind} (${a.source})::${escape(`${a.message}${on}`)}\n`);
        for (const g of guards) ctx.stdout.write(`::warning title=tidemark segment ${g.verdict} (${g.segment})::${escape(`segment ${g.segment} is ${g.verdict}: ${g.reason}${on}`)}\n`);
        for (const r of responses) ctx.stdout.write(`::warning title=tidemark responses ${r.kind} (${r.target})::${escape(`${r.message}${on}`)}\n`);
      } else {
        const style = styleFor(ctx.stdout, ctx.env);
        ctx.stdout.write(`Status of ${style.bold(ws.conn.environment)} on ${ws.conn.target.label}\n`);
        for (const s of statuses) {
          const age = s.age_seconds === null ? 'never' : `${formatAge(s.age_seconds)} ago`;
          const slo = s.max_age_seconds === null ? 'no SLO' : `SLO ${formatAge(s.max_age_seconds)}`;
          const mark = s.alerts.length ? style.red('✗') : style.green('✓');
          const rate = s.reject_rate === null ? '' : `, ${(s.reject_rate * 100).toFixed(1)}% rejected`;
          const waiting = s.pending > 0 ? `, ${s.pending} entries waiting for the next run` : '';
          ctx.stdout.write(`${mark} ${style.bold(s.source)}: last success ${age} (${slo}), last run ${s.last_run_status ?? 'none'}${rate}${waiting}${s.due ? ', due' : ''}\n`);
          for (const a of s.alerts) ctx.stdout.write(`    ${style.red(a.kind)}: ${a.message}\n`);
        }
        for (const g of guards) ctx.stdout.write(`${style.yellow('⏸')} segment ${style.bold(g.segment)} is ${g.verdict}: ${g.reason}\n`);
        for (const r of responses) ctx.stdout.write(`${style.red('✗')} responses of ${style.bold(r.target)}: ${style.red(r.kind)}: ${r.message}\n`);
      }
      return alerts.length || guards.length || responses.length ? ALERT_EXIT_CODE : 0;
    });
  },
};
