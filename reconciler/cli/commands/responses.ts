import { pullResponses, type ResponsesPullResult } from '../../composition/responses-job.ts';
import { whoAmI } from '../../composition/use-cases.ts';
import { styleFor, type Style } from '../../core/style.ts';
import { UsageError, type Command } from '../command.ts';
import { environmentFlags, publicTarget, withEnvironment } from '../environment.ts';
import { formatOption, parseCommandLine, renderUsage, type CommandLine } from '../options.ts';
import { progressFor } from '../progress.ts';
import { runResponsesServe, SERVE_EXIT_CODES, SERVE_INTRO, SERVE_OPTIONS } from './responses-serve.ts';

const line = {
  command: 'responses',
  subcommands: ['pull', 'serve'],
  options: {
    ...environmentFlags,
    // serve's output is its log.
    format: { ...formatOption(['text', 'json']), only: ['pull'] },
    ...SERVE_OPTIONS,
  },
} as const satisfies CommandLine;

export const responsesCommand: Command = {
  name: 'responses',
  summary: 'Pull survey responses from Qualtrics and write their reason codes to Customer.io (counts only); serve: receive them by webhook',
  line: line,
  usage: renderUsage(line, {
    synopsis: ['responses pull [options]', 'responses serve [--port N] [--host HOST] [--path P] [options]'],
    intro: `pull   per survey of the environment's SurveyTargets that declare \`responses\`: first writes what an
       earlier pull left unwritten, then exports the responses recorded since the survey's cursor
       (up to --now), and for each response not seen before (by pull or by webhook) maps the answer
       to \`responses.question\` to its reason code and writes it to Customer.io: the attribute
       and/or the event of \`responses.write\`. Only what Customer.io acknowledged counts as written;
       the cursor then moves to the newest response read. Responses that do not tie back to an
       invitation of the target (unknown person), arrive after its response window (late), leave
       the question unanswered (no answer) or give an answer no reason code names (unmapped) are
       counted and never written. Counts only, per target.

${SERVE_INTRO}

Off a terminal, pull's progress comes on stderr as plain lines (every 10 s).`,
    after: `Exit codes: pull: 0 everything due was written; 1 something that should have been written was not
(the export failed, or Customer.io did not acknowledge a write: the next pull sends it), or a usage
error. ${SERVE_EXIT_CODES}`,
  }),
  async run(args, ctx) {
    // serve parses its own options (those of `line` that are serve's), in responses-serve.ts.
    if (args[0] === 'serve') return runResponsesServe(args.slice(1), ctx);
    const { values, positionals } = parseCommandLine(line, args);
    const [sub, ...rest] = positionals;
    if (sub !== 'pull' || rest.length) throw new UsageError('use `responses pull` or `responses serve`');
    return withEnvironment(ctx, values, async (ws) => {
      const progress = progressFor(ctx.stderr, { command: 'responses' });
      progress.phase('pull', 'exporting the responses recorded since each survey\'s cursor');
      const r = await pullResponses(ws, whoAmI(ctx.env));
      progress.done(`${r.targets.reduce((n, t) => n + t.fetched, 0)} fetched, ${r.targets.reduce((n, t) => n + t.written, 0)} written`);
      progress.close();
      if (values.format === 'json') {
        ctx.stdout.write(`${JSON.stringify({ format_version: 1, environment: ws.conn.environment, target: publicTarget(ws.conn.target), mode: 'pull', ...r }, null, 2)}\n`);
      } else {
        const style = styleFor(ctx.stdout, ctx.env);
        ctx.stdout.write(`Responses pulled for ${style.bold(ws.conn.environment)} on ${ws.conn.target.label}, up to ${r.at}\n`);
        ctx.stdout.write(renderPull(r, style));
      }
      return r.ok ? 0 : 1;
    });
  },
};

export function renderPull(r: ResponsesPullResult, style: Style): string {
  if (!r.targets.length) return '  No SurveyTarget of this environment declares `responses`.\n';
  const out: string[] = [];
  for (const t of r.targets) {
    const kept = `unknown person ${t.unknown_person}, late ${t.late}, unmapped answer ${t.unmapped}, no answer ${t.no_answer}`;
    const retried = t.retried ? ` (${t.retried} left by an earlier pull)` : '';
    const line = `  ${style.bold(t.target)}: fetched ${t.fetched}, written ${t.written}${retried}, duplicate ${t.duplicate}; not written: ${kept}`;
    out.push(t.not_written ? `${line}; ${style.red(`${t.not_written} not acknowledged, sent again next pull`)}` : line);
  }
  for (const s of r.surveys) if (s.status === 'failed') out.push(`  ${style.red('✗')} survey ${s.survey}: ${s.note}`);
  return `${out.join('\n')}\n`;
}
