import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { applyChanges, whoAmI, type ApplyOutcome } from '../../composition/use-cases.ts';
import { redact } from '../../core/redact.ts';
import { styleFor } from '../../core/style.ts';
import { actionable, PLAN_FORMAT_VERSION, type Plan } from '../../plan/plan.ts';
import { renderPlanText } from '../../plan/render/index.ts';
import { UsageError, type Command } from '../command.ts';
import { publicTarget, withEnvironment, environmentFlags } from '../environment.ts';
import { formatOption, parseCommandLine, renderUsage, type CommandLine } from '../options.ts';
import { progressFor } from '../progress.ts';

const SYMBOL: Record<string, string> = { applied: '✓', failed: '✗', skipped: '-', blocked: '!', unchanged: '=' };

const line = {
  command: 'apply',
  positionals: true,
  options: {
    ...environmentFlags,
    'auto-approve': { type: 'boolean', description: 'apply a fresh plan without asking (never on a protected environment)' },
    'allow-delete': { type: 'boolean', description: 'apply deletes (otherwise they are blocked); not with FILE' },
    'adopt-by-name': { type: 'boolean', description: 'adopt unmanaged objects whose names match specs instead of creating duplicates; not with FILE' },
    target: { type: 'string', multiple: true, value: 'ADDRESS', description: 'limit the apply to this object and what it depends on; not with FILE' },
    format: formatOption(['text', 'json'], 'text (default), or json: one document on stdout at the end (what ran where, each change\'s outcome), the plan and progress on stderr'),
  },
} as const satisfies CommandLine;

export const applyCommand: Command = {
  name: 'apply',
  summary: 'Apply the changes (a fresh plan after approval, or exactly a saved plan)',
  line,
  usage: renderUsage(line, {
    synopsis: ['apply [FILE] [options]'],
    intro: `Without FILE: makes a plan, shows it and asks for approval ("yes"), unless --auto-approve.
With FILE (from \`tidemark plan --out\`): applies exactly that plan, and refuses when the specs, the
live objects or the recorded state moved since it was made, naming what moved.
Only one apply runs at a time per environment (\`tidemark unlock\` shows and clears a stuck lock).`,
  }),
  async run(args, ctx) {
    const { values, positionals } = parseCommandLine(line, args);
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
    const json = values.format === 'json';
    // With --format json stdout holds the one document; what people read goes to stderr.
    const human = json ? ctx.stderr : ctx.stdout;
    const style = styleFor(human, ctx.env);
    const progress = progressFor(ctx.stderr, { command: 'apply' });
    return withEnvironment(ctx, { ...values, env: values.env ?? saved?.environment }, async (ws) => {
      const where = { format_version: 1, environment: ws.conn.environment, target: publicTarget(ws.conn.target) };
      let total = 0;
      let finished = 0;
      progress.phase('plan', saved ? `checking ${positionals[0]} against the live objects` : 'refreshing the live objects');
      const outcome = await applyChanges(ws, {
        ...(saved ? { saved } : {}),
        options: { allowDelete: !!values['allow-delete'], adoptByName: !!values['adopt-by-name'], targets: values.target ?? [] },
        who: whoAmI(ctx.env),
        confirm: async (plan) => {
          progress.done(`${actionable(plan).length} change(s) to apply`);
          human.write(renderPlanText(plan, style));
          if (saved || values['auto-approve']) return start(plan);
          const input = process.stdin as NodeJS.ReadStream;
          if (!input.isTTY) {
            ctx.stderr.write('tidemark apply: not asking for approval without a terminal; use --auto-approve, or apply a saved plan.\n');
            return false;
          }
          const rl = createInterface({ input, output: human });
          const answer = await rl.question(`\nApply these changes to ${ws.conn.environment} on ${ws.conn.target.label}? Only "yes" is accepted: `);
          rl.close();
          return answer.trim() === 'yes' && start(plan);
        },
        onChange: (r) => {
          human.write(`${SYMBOL[r.status] ?? '?'} ${r.address}: ${r.status}${r.remoteId ? ` (${r.remoteId})` : ''}${r.message ? ` — ${r.message}` : ''}\n`);
          progress.update(`${++finished} of ${total} change(s) done, last ${r.address} ${r.status}`);
        },
      });
      progress.done(outcome.status === 'done' ? `${finished} of ${total} change(s) done, ${outcome.result.ok ? 'complete' : 'not complete'}` : outcome.status);
      progress.close();
      const code = exitCode(outcome);
      if (json) ctx.stdout.write(`${JSON.stringify({ ...where, ...applyDocument(outcome), exit_code: code }, null, 2)}\n`);
      switch (outcome.status) {
        case 'locked':
          ctx.stderr.write(`tidemark apply: ${outcome.holder}\n`);
          break;
        case 'protected':
          human.write(renderPlanText(outcome.plan, style));
          ctx.stderr.write(
            `tidemark apply: environment "${ws.conn.environment}" is protected: it is changed only by a plan that was reviewed. ` +
              `Save one with \`tidemark plan --env ${ws.conn.environment} --out plan.json\`, have it reviewed, then run \`tidemark apply plan.json\`. Nothing was applied.\n`,
          );
          break;
        case 'stale':
          ctx.stderr.write(`tidemark apply: refusing to apply ${positionals[0]}: it is stale.\n${outcome.moved.map((m) => `  - ${m}`).join('\n')}\nMake a new plan with \`tidemark plan --out FILE\` and review it.\n`);
          break;
        case 'nothing':
          human.write(`No changes: ${ws.conn.target.label} matches the specs.\n`);
          break;
        case 'invalid':
          human.write(renderPlanText(outcome.plan, style));
          ctx.stderr.write('tidemark apply: the plan has errors (above); nothing was applied.\n');
          break;
        case 'declined':
          human.write('Apply cancelled: nothing was changed.\n');
          break;
        case 'done': {
          const r = outcome.result;
          const count = (s: string) => r.results.filter((x) => x.status === s).length;
          const verdict = r.ok ? style.green('complete') : count('failed') + count('skipped') > 0 ? style.red('failed') : style.red('incomplete');
          human.write(`\nApply ${verdict}: ${count('applied')} applied, ${count('failed')} failed, ${count('skipped')} skipped, ${count('blocked')} blocked.\nOn: ${ws.conn.target.label}\n`);
          for (const n of r.next) human.write(`${n}\n`);
          break;
        }
      }
      return code;

      function start(plan: Plan): true {
        total = actionable(plan).length;
        progress.phase('apply', `${total} change(s)`);
        return true;
      }
    });
  },
};

function exitCode(outcome: ApplyOutcome): number {
  if (outcome.status === 'nothing') return 0;
  if (outcome.status === 'done') return outcome.result.ok ? 0 : 1;
  return 1;
}

/**
 * The JSON outcome: per change its address, action, status and the remote object's id (a segment's or a
 * mailing list's, never a person's); messages redacted as on screen.
 */
function applyDocument(outcome: ApplyOutcome): Record<string, unknown> {
  const base = { status: outcome.status };
  switch (outcome.status) {
    case 'locked':
      return { ...base, ok: false, message: redact(outcome.holder) };
    case 'stale':
      return { ...base, ok: false, moved: outcome.moved.map(redact) };
    case 'invalid':
      return { ...base, ok: false, summary: outcome.plan.summary, diagnostics: outcome.plan.diagnostics.filter((d) => d.severity === 'error') };
    case 'nothing':
      return { ...base, ok: true, summary: outcome.plan.summary, results: [] };
    case 'protected':
    case 'declined':
      return { ...base, ok: false, summary: outcome.plan.summary, results: [] };
    case 'done':
      return {
        ...base,
        ok: outcome.result.ok,
        run_id: outcome.result.runId,
        summary: outcome.plan.summary,
        results: outcome.result.results.map((r) => ({ address: r.address, action: r.action, status: r.status, remote_id: r.remoteId ?? null, ...(r.message ? { message: redact(r.message) } : {}) })),
        next: outcome.result.next,
      };
  }
}
