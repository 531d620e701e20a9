import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { changedSinceRef, planScope } from '../../composition/changed-specs.ts';
import { makePlan } from '../../composition/use-cases.ts';
import { hasErrors } from '../../core/diagnostics.ts';
import { styleFor } from '../../core/style.ts';
import { hasChanges } from '../../plan/plan.ts';
import { renderPlanJson, renderPlanMarkdown, renderPlanText } from '../../plan/render/index.ts';
import { UsageError, type Command } from '../command.ts';
import { withEnvironment, environmentFlags } from '../environment.ts';
import { formatOption, parseCommandLine, renderUsage, type CommandLine } from '../options.ts';

const line = {
  command: 'plan',
  options: {
    ...environmentFlags,
    out: { type: 'string', value: 'FILE', description: 'also save the plan as JSON, for `tidemark apply FILE`' },
    format: formatOption(['text', 'markdown', 'json'], 'text (default), markdown (for PR comments) or json'),
    'detailed-exitcode': {
      type: 'boolean',
      description: 'exit 0 when there are no config changes, 2 when there are, 1 on error (a survey that no longer reads its target\'s payload shows as REF011; `drift` exits 2 for it)',
    },
    'allow-delete': { type: 'boolean', description: 'plan deletes as applicable (otherwise they are shown as blocked)' },
    'adopt-by-name': { type: 'boolean', description: 'adopt unmanaged objects whose names match specs instead of creating duplicates' },
    target: { type: 'string', multiple: true, value: 'ADDRESS', description: 'limit the plan to this object and what it depends on' },
    'changed-since': {
      type: 'string',
      value: 'REF',
      description: 'plan only the objects whose specs changed since the merge base with REF (default on a pull request: origin/$GITHUB_BASE_REF), their dependants and what they depend on',
    },
    full: { type: 'boolean', description: 'plan every object, even on a pull request' },
  },
} as const satisfies CommandLine;

export const planCommand: Command = {
  name: 'plan',
  summary: 'Show what apply would change in Customer.io and Qualtrics',
  line,
  usage: renderUsage(line, {
    synopsis: ['plan [options]'],
    intro: 'Refreshes the live objects tidemark manages, compares them with the specs and prints the changes.',
  }),
  async run(args, ctx) {
    const { values } = parseCommandLine(line, args);
    if (values.full && values['changed-since'] !== undefined) throw new UsageError('--full and --changed-since cannot be used together');
    if (values.target?.length && (values.full || values['changed-since'] !== undefined)) throw new UsageError('--target chooses the objects itself: leave out --full and --changed-since');
    return withEnvironment(ctx, values, async (ws) => {
      const targets = values.target ?? [];
      // Explicit targets are their own scope; otherwise a pull request plans what it changed.
      const scope = targets.length ? undefined : await planScope(ws, { full: !!values.full, ref: changedSinceRef(values['changed-since'], ctx.env) });
      const plan = await makePlan(ws, { allowDelete: !!values['allow-delete'], adoptByName: !!values['adopt-by-name'], targets }, scope);
      if (values.out) await writeFile(path.resolve(ctx.cwd, values.out), renderPlanJson(plan));
      if (values.format === 'json') ctx.stdout.write(renderPlanJson(plan));
      else if (values.format === 'markdown') ctx.stdout.write(renderPlanMarkdown(plan));
      else ctx.stdout.write(renderPlanText(plan, styleFor(ctx.stdout, ctx.env)));
      if (values.out && values.format !== 'json') ctx.stdout.write(`\nSaved the plan to ${values.out}. Apply exactly this plan with: tidemark apply ${values.out}\n`);
      if (hasErrors(plan.diagnostics)) return 1;
      // Survey drift (a field the survey no longer reads) needs action as a change does, though apply cannot make it.
      // Config changes only, as Terraform does: the apply workflow waits for reviewers on 2. A survey that
      // drifted from its payload is shown above (REF011), stops its sends, and is what `drift` exits 2 for.
      if (values['detailed-exitcode']) return hasChanges(plan) ? 2 : 0;
      return 0;
    });
  },
};
