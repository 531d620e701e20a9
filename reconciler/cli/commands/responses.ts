import { parseArgs } from 'node:util';
import { pullResponses, type ResponsesPullResult } from '../../composition/responses-job.ts';
import { whoAmI } from '../../composition/use-cases.ts';
import { styleFor, type Style } from '../../core/style.ts';
import { UsageError, type Command } from '../command.ts';
import { environmentFlags, publicTarget, withEnvironment } from '../environment.ts';
import { RESPONSES_SERVE_USAGE, runResponsesServe } from './responses-serve.ts';

export const responsesCommand: Command = {
  name: 'responses',
  summary: 'Pull survey responses from Qualtrics and write their reason codes to Customer.io (counts only); serve: receive them by webhook',
  usage: `Usage: tidemark responses pull [--env E] [--now TIME] [--format text|json]

pull   per survey of the environment's SurveyTargets that declare \`responses\`: first writes what an
       earlier pull left unwritten, then exports the responses recorded since the survey's cursor
       (up to --now), and for each response not seen before (by pull or by webhook) maps the answer
       to \`responses.question\` to its reason code and writes it to Customer.io: the attribute
       and/or the event of \`responses.write\`. Only what Customer.io acknowledged counts as written;
       the cursor then moves to the newest response read. Responses that do not tie back to an
       invitation of the target (unknown person), arrive after its response window (late), leave
       the question unanswered (no answer) or give an answer no reason code names (unmapped) are
       counted and never written. Counts only, per target.

Options:
  --env E               the environment (default: the Workspace's default_environment)
  --now TIME            the clock (ISO-8601; or TIDEMARK_NOW): the export reads up to it
  --format text|json    text (default) or JSON

Exit codes: 0 everything due was written; 1 something that should have been written was not (the
export failed, or Customer.io did not acknowledge a write: the next pull sends it), or a usage
error.

${RESPONSES_SERVE_USAGE}`,
  async run(args, ctx) {
    if (args[0] === 'serve') return runResponsesServe(args.slice(1), ctx);
    const { values, positionals } = parseArgs({ args, options: { ...environmentFlags, format: { type: 'string', default: 'text' } }, allowPositionals: true, strict: true });
    const [sub, ...rest] = positionals;
    if (sub !== 'pull' || rest.length) throw new UsageError('use `responses pull` or `responses serve`');
    if (!['text', 'json'].includes(values.format!)) throw new UsageError(`--format must be text or json (got "${values.format}")`);
    return withEnvironment(ctx, values, async (ws) => {
      const r = await pullResponses(ws, whoAmI(ctx.env));
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
