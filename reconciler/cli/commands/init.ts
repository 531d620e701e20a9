import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { UserError } from '../../core/user-error.ts';
import { initProject } from '../../starter/init-project.ts';
import { checkWorkspaceName, workspaceNameFrom } from '../../starter/templates.ts';
import { UsageError, type Command, type CommandContext } from '../command.ts';
import { parseCommandLine, renderUsage, type CommandLine } from '../options.ts';

const line = {
  command: 'init',
  positionals: true,
  options: {
    name: { type: 'string', value: 'NAME', description: 'Workspace name, snake_case (default: from the folder name; asked on a terminal)' },
    force: { type: 'boolean', description: 'overwrite the files that exist (an existing README.md is never touched)' },
  },
} as const satisfies CommandLine;

const usage = renderUsage(line, {
  synopsis: ['init [DIR] [options]'],
  intro: `Writes a starter into DIR (default: the current folder), the root of your team's repository: a
Workspace with a staging and a protected production environment, Fields, an example Segment and Source
(with its CSV), the GitHub workflows (plan, apply, sync, drift) calling \`npx tidemark\`, a README
(TIDEMARK.md when a README.md exists) and .gitignore entries. Every spec starts with a modeline that
points editors at the JSON Schemas of the installed tidemark.

Nothing is overwritten: when a file exists, init lists them and writes nothing (exit 1).`,
});

/** On a terminal, the Workspace name is asked once, with the folder's as the default; never otherwise. */
async function askName(suggested: string, ctx: CommandContext): Promise<string> {
  const input = process.stdin as NodeJS.ReadStream;
  if (!input.isTTY || !ctx.stdout.isTTY) return suggested;
  const rl = createInterface({ input, output: ctx.stdout });
  try {
    for (;;) {
      // Ctrl+D or Ctrl+C at the prompt rejects the question: the user left, which is no bug.
      const answer = (
        await rl.question(`Workspace name [${suggested}]: `).catch(() => {
          throw new UserError('cancelled at the Workspace name prompt; nothing was written.');
        })
      ).trim();
      if (answer === '') return suggested;
      const valid = checkWorkspaceName(answer);
      if (valid === true) return answer;
      ctx.stdout.write(`  ${valid}\n`);
    }
  } finally {
    rl.close();
  }
}

export const initCommand: Command = {
  name: 'init',
  summary: "Start a team's repository: starter specs, GitHub workflows and a README (never overwrites)",
  line,
  usage,
  async run(args, ctx) {
    const { values, positionals } = parseCommandLine(line, args);
    if (positionals.length > 1) throw new UsageError(`init takes one folder (got ${positionals.join(', ')})`);
    const dir = path.resolve(ctx.cwd, positionals[0] ?? '.');
    if (values.name !== undefined) {
      const valid = checkWorkspaceName(values.name);
      if (valid !== true) throw new UsageError(`--name "${values.name}": ${valid}`);
    }
    const name = values.name ?? (await askName(workspaceNameFrom(path.basename(dir)), ctx));
    const result = await initProject({ dir, name, force: values.force ?? false });

    const where = path.relative(ctx.cwd, result.dir);
    const lines = [`Wrote the tidemark starter for workspace "${result.name}" in ${where === '' ? 'this folder' : where}:`];
    for (const f of result.written) lines.push(`  ${f}${result.overwritten.includes(f) ? ' (overwritten)' : ''}`);
    if (result.gitignore !== 'unchanged') lines.push(`  .gitignore (${result.gitignore}: node_modules/, .tidemark/)`);
    const cd = where === '' ? '' : `cd ${/\s/.test(where) ? JSON.stringify(where) : where} && `;
    lines.push(
      '',
      'Next:',
      `  ${cd}npx tidemark validate`,
      `  ${cd}npx tidemark plan      # on the embedded sandbox until the staging credentials are set`,
      `  ${cd}git add . && git commit -m "tidemark: starter specs and workflows"`,
      '',
      `${result.readme} says which credentials and GitHub environments the workflows need.`,
      '',
    );
    ctx.stdout.write(lines.join('\n'));
    return 0;
  },
};
