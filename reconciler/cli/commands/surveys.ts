import { planSurveys, runSurveys, type SurveyRunResult } from '../../composition/surveys-job.ts';
import { reportSurveyLift, SurveyReportTargetError, type SurveyLiftReport } from '../../composition/surveys-report.ts';
import { whoAmI } from '../../composition/use-cases.ts';
import { styleFor, type Style } from '../../core/style.ts';
import type { EligibilityResult, TargetEligibility } from '../../surveys/eligibility.ts';
import type { SendOutcome } from '../../surveys/send.ts';
import { UsageError, type Command, type CommandContext } from '../command.ts';
import { publicTarget, withEnvironment, environmentFlags, type EnvironmentFlags } from '../environment.ts';
import { formatOption, parseCommandLine, renderUsage, type CommandLine } from '../options.ts';
import { progressFor } from '../progress.ts';

const line = {
  command: 'surveys',
  subcommands: ['plan', 'run', 'report'],
  positionals: true,
  options: {
    ...environmentFlags,
    format: formatOption(['text', 'markdown', 'json'], 'text (default), json, or markdown for report'),
  },
} as const satisfies CommandLine;

export const surveysCommand: Command = {
  name: 'surveys',
  summary: 'Who each survey target invites now (plan: counts only), and sending them through Qualtrics (run)',
  line,
  usage: renderUsage(line, {
    synopsis: ['surveys plan [options]', 'surveys run [options]', 'surveys report TARGET [options]'],
    intro: `plan   evaluates the audiences, then each SurveyTarget at the clock, in priority order:
       audience members → with the trigger event inside the moment window → not already invited
       by this target in that window → under the frequency cap (counting the invitations
       Qualtrics reports it sent outside tidemark) → not opted out in Qualtrics → address not
       reported bounced by Qualtrics → not claimed by a target of higher priority → outside
       the holdout (a stable hash of target and id) → would be invited. Counts only; nothing
       is written or sent.
run    first finishes any send an earlier run left unfinished, then evaluates as plan does and,
       per target: imports the contacts into the target's mailing list in bulk (extRef = the
       person's id, the payload as embedded data), creates one distribution of the declared
       library message to this run's contacts (expiring after the response window), and records
       each invitation and holdout decision once Qualtrics acknowledged it. Killed at any point,
       the next run resumes without inviting anyone twice.
report compares the people TARGET invited with those it held out on its declared outcome (an
       event within a window after each person's first invitation or holdout decision): counts,
       rates, the difference with a 95% confidence interval (Newcombe's hybrid score interval),
       and the relative lift. People whose window is still open at the clock are counted apart,
       not in the rates. Counts only; nothing is written or sent.

Off a terminal, run's progress comes on stderr as plain lines (each step of a send, every 10 s).`,
    after: `Exit codes: 0 done (report: whatever the figures say); 1 a target could not be sent (or a resumed
send was abandoned), or a usage error.`,
  }),
  async run(args, ctx) {
    const { values, positionals } = parseCommandLine(line, args);
    const [sub, ...rest] = positionals;
    if (sub === 'report') return report(rest, values, ctx);
    if ((sub !== 'plan' && sub !== 'run') || rest.length) throw new UsageError('use `surveys plan`, `surveys run` or `surveys report TARGET`');
    if (!['text', 'json'].includes(values.format!)) throw new UsageError(`--format must be text or json (got "${values.format}")`);
    return withEnvironment(ctx, values, async (ws) => {
      const style = styleFor(ctx.stdout, ctx.env);
      if (sub === 'plan') {
        const r = await planSurveys(ws);
        if (values.format === 'json') {
          ctx.stdout.write(`${JSON.stringify({ format_version: 1, environment: ws.conn.environment, target: publicTarget(ws.conn.target), mode: 'plan', ...r }, null, 2)}\n`);
          return 0;
        }
        ctx.stdout.write(`Survey targets for ${style.bold(ws.conn.environment)} on ${ws.conn.target.label}, at ${r.at} (in priority order)\n`);
        ctx.stdout.write(renderFunnel(r, style));
        return 0;
      }
      const progress = progressFor(ctx.stderr, { command: 'surveys' });
      progress.phase('run', 'finishing earlier sends, then evaluating');
      const r = await runSurveys(ws, whoAmI(ctx.env), { onStep: (step) => progress.update(`send step ${step}`) });
      progress.done(`${r.targets.filter((t) => t.status === 'sent').length} of ${r.targets.length} target(s) sent`);
      progress.close();
      if (values.format === 'json') {
        ctx.stdout.write(`${JSON.stringify({ format_version: 1, environment: ws.conn.environment, target: publicTarget(ws.conn.target), mode: 'run', ...r }, null, 2)}\n`);
      } else {
        ctx.stdout.write(`Surveys sent for ${style.bold(ws.conn.environment)} on ${ws.conn.target.label}, at ${r.at} (in priority order)\n`);
        ctx.stdout.write(renderRun(r, style));
      }
      return r.ok ? 0 : 1;
    });
  },
};

function funnelLine(t: TargetEligibility, style: Style, tail: string): string {
  return (
    `  ${style.bold(t.target)}: audience ${t.audience} → in the moment window ${t.in_window} → ` +
    `already invited −${t.already_invited}, capped −${t.capped}${t.qualtrics_capped ? ` (${t.qualtrics_capped} by emails sent outside tidemark)` : ''}, opted out −${t.opted_out}, bounced −${t.bounced}, no email −${t.no_email}, ${t.waiting ? `waiting for the send window −${t.waiting} (opens ${t.waiting_until}), ` : ''}claimed by another target −${t.claimed_by_other}, held out −${t.held_out} → ${tail}\n`
  );
}

export function renderFunnel(r: EligibilityResult, style: Style): string {
  if (!r.targets.length) return '  No SurveyTarget applies to this environment.\n';
  return r.targets.map((t) => funnelLine(t, style, style.green(`would invite ${t.eligible}`))).join('');
}

function sendLine(s: SendOutcome): string {
  const parts = [`invited ${s.invited}`, `held out ${s.held_out}`];
  if (s.failed) parts.push(`import failed ${s.failed}`);
  if (s.no_email) parts.push(`no sendable email ${s.no_email}`);
  if (s.distribution_id) parts.push(`distribution ${s.distribution_id}`);
  return parts.join(', ');
}

export function renderRun(r: SurveyRunResult, style: Style): string {
  const out: string[] = [];
  for (const s of r.resumed) {
    const line = `  resumed ${s.target} (send of ${s.send_id.slice(s.target.length + 1)}): ${s.phase === 'recorded' ? sendLine(s) : `${s.phase}${s.note ? `: ${s.note}` : ''}`}`;
    out.push(s.phase === 'recorded' ? line : style.yellow(line));
  }
  if (!r.targets.length) out.push('  No SurveyTarget applies to this environment.');
  for (const t of r.targets) {
    out.push(funnelLine(t.eligibility, style, `eligible ${t.eligibility.eligible}`).trimEnd());
    if (t.status === 'sent' && t.send) out.push(`    ${style.green('✓')} ${sendLine(t.send)}`);
    else if (t.status === 'failed') out.push(`    ${style.red('✗')} not sent: ${t.note ?? 'failed'}`);
    else if (t.status === 'skipped') out.push(style.dim(`    not sent: ${t.note}`));
    else out.push(style.dim(`    nothing to send${t.note ? ` (${t.note})` : ''}`));
  }
  return `${out.join('\n')}\n`;
}

async function report(rest: string[], values: EnvironmentFlags & { format?: string }, ctx: CommandContext): Promise<number> {
  if (rest.length !== 1) throw new UsageError('use `surveys report TARGET` (one survey target name)');
  const format = values.format!;
  if (!['text', 'markdown', 'json'].includes(format)) throw new UsageError(`--format must be text, markdown or json (got "${format}")`);
  return withEnvironment(ctx, values, async (ws) => {
    let r: SurveyLiftReport;
    try {
      r = await reportSurveyLift(ws, rest[0]!);
    } catch (err) {
      if (err instanceof SurveyReportTargetError) throw new UsageError(err.message);
      throw err;
    }
    const where = { environment: ws.conn.environment, label: ws.conn.target.label };
    if (format === 'json') ctx.stdout.write(`${JSON.stringify({ format_version: 1, environment: ws.conn.environment, target: publicTarget(ws.conn.target), mode: 'report', ...r }, null, 2)}\n`);
    else ctx.stdout.write(format === 'markdown' ? renderLiftMarkdown(r, where) : renderLift(r, where, styleFor(ctx.stdout, ctx.env)));
    return 0;
  });
}

const UNIT_WORDS: Record<string, string> = { s: 'second', m: 'minute', h: 'hour', d: 'day', w: 'week' };

/** "30d" → "30-day", as in "their 30-day window". */
function windowWords(within: string): string {
  const m = /^(\d+(?:\.\d+)?)([smhdw])$/.exec(within);
  return m ? `${m[1]}-${UNIT_WORDS[m[2]!]}` : within;
}

const percent = (x: number | null) => (x === null ? 'n/a' : `${(x * 100).toFixed(1)}%`);
const signed = (x: number) => `${x < 0 ? '−' : '+'}${Math.abs(x * 100).toFixed(1)}`;

function openLine(r: SurveyLiftReport): string | undefined {
  if (!r.invited.open && !r.holdout.open) return undefined;
  return `${r.invited.open} invited and ${r.holdout.open} held out still inside their ${windowWords(r.outcome.within)} window: not counted yet`;
}

/** The comparison in words: difference, interval, relative lift; or why there is none. */
function verdict(r: SurveyLiftReport): string[] {
  if (r.status === 'no_data' || r.difference === null || !r.ci) {
    const empty = [r.invited.closed ? undefined : 'invited', r.holdout.closed ? undefined : 'held-out'].filter(Boolean).join(' or ');
    return [`No comparison yet: no ${empty} person's window has closed`];
  }
  return [
    `Difference (invited − held out): ${signed(r.difference)} percentage points, 95% CI ${signed(r.ci.lower)} to ${signed(r.ci.upper)} (Newcombe's hybrid score interval)`,
    `Relative lift: ${r.relative_lift === null ? 'none (the holdout rate is 0)' : `${signed(r.relative_lift)}%`}`,
  ];
}

function outcomeLine(r: SurveyLiftReport): string {
  return `${r.outcome.label} (${r.outcome.event} within ${r.outcome.within} of each person's first invitation or holdout decision)`;
}

export function renderLift(r: SurveyLiftReport, where: { environment: string; label: string }, style: Style): string {
  const row = (name: string, g: SurveyLiftReport['invited']) => `  ${name.padEnd(9)} ${String(g.closed).padStart(7)} counted, ${String(g.reached).padStart(7)} reached: ${percent(g.rate)}`;
  const out = [
    `Lift of ${style.bold(r.survey_target)} for ${style.bold(where.environment)} on ${where.label}, at ${r.at}`,
    `Outcome: ${outcomeLine(r)}`,
    row('invited', r.invited),
    row('held out', r.holdout),
    ...verdict(r).map((l) => `  ${l}`),
  ];
  const open = openLine(r);
  if (open) out.push(style.yellow(`  ${open}.`));
  return `${out.join('\n')}\n`;
}

export function renderLiftMarkdown(r: SurveyLiftReport, where: { environment: string; label: string }): string {
  const row = (name: string, g: SurveyLiftReport['invited']) => `| ${name} | ${g.closed} | ${g.reached} | ${percent(g.rate)} | ${g.open} |`;
  const open = openLine(r);
  return [
    `### Lift: \`${r.survey_target}\``,
    '',
    `Against: ${where.environment} on ${where.label}, at ${r.at}. Outcome: ${outcomeLine(r)}.`,
    '',
    '| group | counted | reached | rate | still in window |',
    '| --- | ---: | ---: | ---: | ---: |',
    row('invited', r.invited),
    row('held out', r.holdout),
    '',
    verdict(r).join('. ') + '.',
    ...(open ? ['', `_${open}._`] : []),
    '',
  ].join('\n');
}
