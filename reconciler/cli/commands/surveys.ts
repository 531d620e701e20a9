import { parseArgs } from 'node:util';
import { planSurveys } from '../../composition/surveys-job.ts';
import { styleFor } from '../../core/style.ts';
import { UsageError, type Command } from '../command.ts';
import { publicTarget, withEnvironment, environmentFlags } from '../environment.ts';

export const surveysCommand: Command = {
  name: 'surveys',
  summary: 'Who each survey target would invite now: audience, moment window, caps, holdout, priority (counts only)',
  usage: `Usage: tidemark surveys plan [--env E] [--now TIME] [--format text|json]

plan   evaluates the audiences, then each SurveyTarget at the clock, in priority order:
       audience members → with the trigger event inside the moment window → not already invited
       by this target in that window → under the frequency cap → not opted out → not claimed by a
       target of higher priority → outside the holdout (a stable hash of target and id) → would be
       invited. Counts only; nothing is written or sent.

Sending (contacts, distributions, recorded invitations) is not built yet; Qualtrics opt-outs are
not read yet, so "opted out" counts only what tidemark knows (nothing, today).
`,
  async run(args, ctx) {
    const { values, positionals } = parseArgs({ args, options: { ...environmentFlags, format: { type: 'string', default: 'text' } }, allowPositionals: true, strict: true });
    if (positionals.length !== 1 || positionals[0] !== 'plan') throw new UsageError('use `surveys plan` (sending is not built yet)');
    if (!['text', 'json'].includes(values.format!)) throw new UsageError(`--format must be text or json (got "${values.format}")`);
    return withEnvironment(ctx, values, async (ws) => {
      const r = await planSurveys(ws);
      if (values.format === 'json') {
        ctx.stdout.write(`${JSON.stringify({ format_version: 1, environment: ws.conn.environment, target: publicTarget(ws.conn.target), ...r }, null, 2)}\n`);
        return 0;
      }
      const style = styleFor(ctx.stdout, ctx.env);
      ctx.stdout.write(`Survey targets for ${style.bold(ws.conn.environment)} on ${ws.conn.target.label}, at ${r.at} (in priority order)\n`);
      if (!r.targets.length) ctx.stdout.write('  No SurveyTarget applies to this environment.\n');
      for (const t of r.targets) {
        ctx.stdout.write(
          `  ${style.bold(t.target)}: audience ${t.audience} → in the moment window ${t.in_window} → ` +
            `already invited −${t.already_invited}, capped −${t.capped}, opted out −${t.opted_out}, claimed by another target −${t.claimed_by_other}, held out −${t.held_out} → ${style.green(`would invite ${t.eligible}`)}\n`,
        );
      }
      return 0;
    });
  },
};
