import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import { applyChanges, whoAmI } from '../../composition/use-cases.ts';
import { styleFor } from '../../core/style.ts';
import { PLAN_FORMAT_VERSION, type Plan } from '../../plan/plan.ts';
import { renderPlanText } from '../../plan/render/index.ts';
import { UsageError, type Command } from '../command.ts';
import { withEnvironment, environmentFlags } from '../environment.ts';

const SYMBOL: Record<string, string> = { applied: '✓', failed: '✗', skipped: '-', blocked: '!', unchanged: '=' };

export const applyCommand: Command = {
  name: 'apply',
  summary: 'Apply the changes (a fresh plan after approval, or exactly a saved plan)',
  usage: `Usage: tidemark apply [FILE] [--env E] [--auto-approve] [--allow-delete] [--adopt-by-name] [--target ADDRESS]...

Without FILE: makes a plan, shows it and asks for approval ("yes"), unless --auto-approve.
With FILE (from \`tidemark plan --out\`): applies exactly that plan, and refuses when the specs, the
live objects or the recorded state moved since it was made, naming what moved.
Only one apply runs at a time per environment (\`tidemark unlock\` shows and clears a stuck lock).
`,
  async run(args, ctx) {
    const { values, positionals } = parseArgs({
      args,
      options: {
        ...environmentFlags,
        'auto-approve': { type: 'boolean' },
        'allow-delete': { type: 'boolean' },
        'adopt-by-name': { type: 'boolean' },
        target: { type: 'string', multiple: true },
      },
      allowPositionals: true,
      strict: true,
    });
    if (positionals.length > 1) throw new UsageError('give at most one plan file');
    let saved: Plan | undefined;
    if (positionals[0]) {
      const file = path.resolve(ctx.cwd, positionals[0]);
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch {
        throw new UsageError(`cannot read plan file ${positionals[0]}`);
      }
      try {
        saved = JSON.parse(text) as Plan;
      } catch {
        throw new UsageError(`${positionals[0]} is not a plan (not JSON)`);
      }
      if (saved?.format_version !== PLAN_FORMAT_VERSION) throw new UsageError(`${positionals[0]} is not a tidemark plan of format ${PLAN_FORMAT_VERSION}`);
      if (values['allow-delete'] || values['adopt-by-name'] || values.target) throw new UsageError('a saved plan keeps the options it was made with: make a new plan to change them');
    }
    const style = styleFor(ctx.stdout, ctx.env);
    return withEnvironment(ctx, { ...values, env: values.env ?? saved?.environment }, async (ws) => {
      const outcome = await applyChanges(ws, {
        ...(saved ? { saved } : {}),
        options: { allowDelete: !!values['allow-delete'], adoptByName: !!values['adopt-by-name'], targets: values.target ?? [] },
        who: whoAmI(ctx.env),
        confirm: async (plan) => {
          if (saved || values['auto-approve']) {
            ctx.stdout.write(renderPlanText(plan, style));
            return true;
          }
          ctx.stdout.write(renderPlanText(plan, style));
          const input = process.stdin as NodeJS.ReadStream;
          if (!input.isTTY) {
            ctx.stderr.write('tidemark apply: not asking for approval without a terminal; use --auto-approve, or apply a saved plan.\n');
            return false;
          }
          const rl = createInterface({ input, output: ctx.stdout });
          const answer = await rl.question(`\nApply these changes to ${ws.conn.environment} on ${ws.conn.target.label}? Only "yes" is accepted: `);
          rl.close();
          return answer.trim() === 'yes';
        },
        onChange: (r) => ctx.stdout.write(`${SYMBOL[r.status] ?? '?'} ${r.address}: ${r.status}${r.remoteId ? ` (${r.remoteId})` : ''}${r.message ? ` — ${r.message}` : ''}\n`),
      });
      switch (outcome.status) {
        case 'locked':
          ctx.stderr.write(`tidemark apply: ${outcome.holder}\n`);
          return 1;
        case 'protected':
          ctx.stdout.write(renderPlanText(outcome.plan, style));
          ctx.stderr.write(
            `tidemark apply: environment "${ws.conn.environment}" is protected: it is changed only by a plan that was reviewed. ` +
              `Save one with \`tidemark plan --env ${ws.conn.environment} --out plan.json\`, have it reviewed, then run \`tidemark apply plan.json\`. Nothing was applied.\n`,
          );
          return 1;
        case 'stale':
          ctx.stderr.write(`tidemark apply: refusing to apply ${positionals[0]}: it is stale.\n${outcome.moved.map((m) => `  - ${m}`).join('\n')}\nMake a new plan with \`tidemark plan --out FILE\` and review it.\n`);
          return 1;
        case 'nothing':
          ctx.stdout.write(`No changes: ${ws.conn.target.label} matches the specs.\n`);
          return 0;
        case 'invalid':
          ctx.stdout.write(renderPlanText(outcome.plan, style));
          ctx.stderr.write('tidemark apply: the plan has errors (above); nothing was applied.\n');
          return 1;
        case 'declined':
          ctx.stdout.write('Apply cancelled: nothing was changed.\n');
          return 1;
        default:
          return 1;
        case 'done': {
          const r = outcome.result;
          const count = (s: string) => r.results.filter((x) => x.status === s).length;
          const verdict = r.ok ? style.green('complete') : count('failed') + count('skipped') > 0 ? style.red('failed') : style.red('incomplete');
          ctx.stdout.write(`\nApply ${verdict}: ${count('applied')} applied, ${count('failed')} failed, ${count('skipped')} skipped, ${count('blocked')} blocked.\nOn: ${ws.conn.target.label}\n`);
          for (const n of r.next) ctx.stdout.write(`${n}\n`);
          return r.ok ? 0 : 1;
        }
      }
    });
  },
};
