import { runAudienceJob, type AudienceJobResult } from '../../composition/audiences-job.ts';
import { styleFor, type Style } from '../../core/style.ts';
import { UsageError, type Command } from '../command.ts';
import { publicTarget, withEnvironment, environmentFlags } from '../environment.ts';
import { formatOption, parseCommandLine, renderUsage, type CommandLine } from '../options.ts';
import { progressFor } from '../progress.ts';

const line = {
  command: 'audiences',
  subcommands: ['plan', 'run'],
  options: {
    ...environmentFlags,
    accept: { type: 'boolean', only: ['run'], description: 'publish segments whose membership moved outside their `expect` too' },
    format: formatOption(['text', 'json']),
  },
} as const satisfies CommandLine;

export const audiencesCommand: Command = {
  name: 'audiences',
  summary: 'Evaluate the declared segments from what Customer.io acknowledged; plan shows counts, run publishes',
  line,
  usage: renderUsage(line, {
    synopsis: ['audiences plan [options]', 'audiences run [--accept] [options]'],
    intro: `plan   evaluates every declared segment (conditions compiled to SQL, run in the state's database
       against the mirror of what Customer.io acknowledged) and shows, per segment, members,
       entering and leaving: counts only, never who.
run    publishes: to the segment's Customer.io manual segment (add/remove, 1,000 ids per request)
       and/or its boolean attribute. Only acknowledged requests advance the published state.

Guards: a segment with a freshness_guard is frozen (or emptied, with on_stale: empty) while a
source it depends on is staler than allowed; a segment whose membership moves outside its
\`expect\` is held (--accept publishes it anyway). Both are said, with why.
Off a terminal, progress comes on stderr as plain lines (every 10 s while evaluating and publishing).`,
    after: `Exit codes: 0 done; 1 a publish failed or could not start; 3 done, but a segment is frozen,
emptied or held.`,
  }),
  async run(args, ctx) {
    const { values, positionals } = parseCommandLine(line, args);
    const [sub, ...rest] = positionals;
    if ((sub !== 'plan' && sub !== 'run') || rest.length) throw new UsageError('use `audiences plan` or `audiences run [--accept]`');
    return withEnvironment(ctx, values, async (ws) => {
      const progress = progressFor(ctx.stderr, { command: 'audiences' });
      progress.phase(sub === 'run' ? 'evaluate and publish' : 'evaluate');
      const result = await runAudienceJob(ws, { mode: sub, ...(values.accept ? { accept: true } : {}) });
      progress.done(`${result.evaluation.segments.length} segment(s)${sub === 'run' ? `, ${result.published.filter((p) => !p.skipped && !p.error).length} published` : ''}`);
      progress.close();
      if (values.format === 'json') {
        ctx.stdout.write(`${JSON.stringify({ format_version: 1, environment: ws.conn.environment, target: publicTarget(ws.conn.target), mode: sub, ...result.evaluation, published: result.published, ok: result.ok }, null, 2)}\n`);
      } else {
        const style = styleFor(ctx.stdout, ctx.env);
        ctx.stdout.write(`Audiences for ${style.bold(ws.conn.environment)} on ${ws.conn.target.label}, evaluated at ${result.evaluation.at}\n`);
        ctx.stdout.write(renderAudiences(result, style));
      }
      if (!result.ok) return 1;
      return result.evaluation.segments.some((s) => s.verdict !== 'publish') ? 3 : 0;
    });
  },
};

export function renderAudiences(r: AudienceJobResult, style: Style): string {
  const m = r.evaluation.mirror;
  const out = [style.dim(`  mirror: ${m.people} people, ${m.attributes} attributes, ${m.events} events acknowledged by Customer.io`)];
  for (const n of r.evaluation.notes) out.push(style.dim(`  ${n}`));
  if (!r.evaluation.segments.length) out.push('  No declared segment has conditions to evaluate here.');
  for (const s of r.evaluation.segments) {
    const counts = `${s.members} members, +${s.entering} entering, -${s.leaving} leaving`;
    const targets = [s.publish.customerio_segment ? 'Customer.io segment' : '', s.publish.attribute ? `attribute ${s.publish.attribute}` : ''].filter(Boolean).join(' + ') || 'not published';
    const verdict = s.verdict === 'publish' ? '' : ` ${style.yellow(s.verdict.toUpperCase())}: ${s.reason}`;
    out.push(`  ${s.segment}: ${counts} (${targets})${verdict}`);
  }
  for (const g of r.evaluation.groups) {
    const line = `  exclusive group ${g.group} (${g.segments.join(', ')}): ${g.overlap} ${g.overlap === 1 ? 'person is' : 'people are'} in more than one segment`;
    out.push(g.overlap ? style.red(line) : style.dim(line));
  }
  for (const p of r.published) {
    if (p.skipped) out.push(style.dim(`  ${p.segment}: not published: ${p.skipped}`));
    else out.push(`  ${p.error ? style.red('✗') : style.green('✓')} ${p.segment}: added ${p.added}, removed ${p.removed} in ${p.requests} request(s)${p.error ? ` — ${p.error}` : ''}`);
  }
  return `${out.join('\n')}\n`;
}
