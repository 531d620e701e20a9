import { InternalError } from '../core/diagnostics.ts';
import { redact } from '../core/redact.ts';
import { UsageError, type Command, type CommandContext } from './command.ts';
import { commands } from './commands/index.ts';

function globalHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    'tidemark: Customer.io and Qualtrics setup as code, for retention teams.',
    '',
    'Usage: tidemark <command> [options]',
    '',
    'Commands:',
    ...lines,
    '',
    'Run `tidemark <command> --help` for the options of one command.',
    '',
  ].join('\n');
}

export async function main(argv: string[], ctx?: Partial<CommandContext>): Promise<number> {
  const context: CommandContext = {
    cwd: ctx?.cwd ?? process.cwd(),
    env: ctx?.env ?? process.env,
    stdout: ctx?.stdout ?? process.stdout,
    stderr: ctx?.stderr ?? process.stderr,
  };
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    context.stdout.write(globalHelp());
    return 0;
  }
  if (name === '--version' || name === '-v') {
    context.stdout.write('tidemark 0.1.0\n');
    return 0;
  }
  const entry = commands.find((c) => c.name === name);
  if (!entry) {
    context.stderr.write(`tidemark: unknown command "${name}"\n\n${globalHelp()}`);
    return 1;
  }
  const command: Command = await entry.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    context.stdout.write(command.usage.endsWith('\n') ? command.usage : `${command.usage}\n`);
    return 0;
  }
  try {
    return await command.run(rest, context);
  } catch (err) {
    if (err instanceof UsageError) {
      context.stderr.write(`tidemark ${name}: ${err.message}\nRun \`tidemark ${name} --help\` for usage.\n`);
      return 1;
    }
    if (err instanceof Error && 'code' in err && typeof (err as { code: unknown }).code === 'string' &&
        (err as { code: string }).code.startsWith('ERR_PARSE_ARGS')) {
      context.stderr.write(`tidemark ${name}: ${redact(err.message)}\nRun \`tidemark ${name} --help\` for usage.\n`);
      return 1;
    }
    // Anything else is a bug or an outage: print it whole (secrets masked) so it can be reported.
    const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
    const label = err instanceof InternalError ? 'internal error (a bug in tidemark)' : 'error';
    context.stderr.write(`tidemark ${name}: ${label}: ${redact(text)}\n`);
    return 1;
  }
}
