import { RULES } from '../../spec/rules/index.ts';
import { UsageError, type Command } from '../command.ts';
import { formatOption, parseCommandLine, renderUsage, type CommandLine } from '../options.ts';

/** The catalogue as the Markdown table the README embeds (kept in step by a test). */
export function rulesMarkdown(): string {
  const rows = RULES.map((r) => `| ${r.code} | ${r.family} | ${r.severity} | ${r.title} | ${r.harm.replace(/\|/g, '\\|')} |`);
  return ['| code | area | default | rule | what it prevents |', '|---|---|---|---|---|', ...rows].join('\n') + '\n';
}

const line = {
  command: 'rules',
  options: { format: formatOption(['text', 'markdown', 'json']) },
} as const satisfies CommandLine;

export const rulesCommand: Command = {
  name: 'rules',
  summary: 'List the policy rules: code, default severity and the harm each prevents',
  line,
  usage: renderUsage(line, {
    synopsis: ['rules [options]'],
    intro: `Severities can be changed per workspace (Workspace policy: { CODE: error|warning|off }) and a finding
can be accepted on one spec with a reason (suppress: { CODE: "why" }).`,
  }),
  async run(args, ctx) {
    const { values } = parseCommandLine(line, args);
    switch (values.format) {
      case 'markdown':
        ctx.stdout.write(rulesMarkdown());
        return 0;
      case 'json':
        ctx.stdout.write(`${JSON.stringify(RULES.map(({ code, family, severity, title, harm }) => ({ code, family, severity, title, harm })), null, 2)}\n`);
        return 0;
      case 'text':
        for (const r of RULES) ctx.stdout.write(`${r.code.padEnd(8)}${r.severity.padEnd(9)}${r.title}\n${' '.repeat(17)}${r.harm}\n`);
        return 0;
      default:
        throw new UsageError(`--format must be text, markdown or json (got "${values.format}")`);
    }
  },
};
