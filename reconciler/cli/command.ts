/**
 * A command parses its own flags, calls a use case and renders the result. It holds no diff, rule or
 * HTTP logic. It returns the process exit code.
 */
import type { CommandLine } from './options.ts';

export interface CommandContext {
  cwd: string;
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

export interface Command {
  name: string;
  /** One line for `tidemark --help`. */
  summary: string;
  /** Full usage text for `tidemark <name> --help`, its option list rendered from `line`. */
  usage: string;
  /** The options (and subcommands) the parser accepts: the one definition both parsing and `--help` read. */
  line: CommandLine;
  run(args: string[], ctx: CommandContext): Promise<number>;
}

/** A mistake in how the CLI was called (unknown flag, missing argument): exit 1 with one line pointing at `--help`. */
export class UsageError extends Error {
  override name = 'UsageError';
}
