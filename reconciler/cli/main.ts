import { statSync } from 'node:fs';
import path from 'node:path';
import { InternalError } from '../core/diagnostics.ts';
import { redact } from '../core/redact.ts';
import { UserError } from '../core/user-error.ts';
import { TIDEMARK_VERSION } from '../core/version.ts';
import { ProviderError } from '../providers/errors.ts';
import { UsageError, type Command, type CommandContext } from './command.ts';
import { commands } from './commands/index.ts';
import { oneLine } from './options.ts';
import { stopAllProgress } from './progress.ts';

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
  const output = watchOutput(context.stdout);
  // Where stderr goes is gone too (`2>&1 | head`): nothing can be said, and it must not crash.
  const errors = watchOutput(context.stderr);
  let code: number;
  try {
    code = await dispatch(argv, context);
  } finally {
    stopAllProgress();
  }
  await settle(context.stdout);
  output.stop();
  errors.stop();
  if (output.failure && output.failure.code !== 'EPIPE') {
    context.stderr.write(`tidemark: could not write the output: ${redact(output.failure.message)}${output.failure.code ? ` (${output.failure.code})` : ''}\n`);
    return code === 0 ? 1 : code;
  }
  return code;
}

async function dispatch(argv: string[], context: CommandContext): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    context.stdout.write(globalHelp());
    return 0;
  }
  if (name === '--version' || name === '-v') {
    context.stdout.write(`tidemark ${TIDEMARK_VERSION}\n`);
    return 0;
  }
  const entry = commands.find((c) => c.name === name);
  if (!entry) {
    context.stderr.write(`tidemark: unknown command "${name}"\n\n${globalHelp()}`);
    return 1;
  }
  try {
    const command: Command = await entry.load();
    if (rest.includes('--help') || rest.includes('-h')) {
      context.stdout.write(command.usage.endsWith('\n') ? command.usage : `${command.usage}\n`);
      return 0;
    }
    return await command.run(rest, context);
  } catch (err) {
    context.stderr.write(describeFailure(`tidemark ${name}`, err, context.env));
    return 1;
  }
}

/**
 * The one place an error that escaped a command becomes text: a short paragraph (what failed, what to
 * check), never a stack trace unless TIDEMARK_DEBUG=1. A user's mistake (a UserError, a usage error, a
 * file system refusal) reads as such; anything else is said to be a likely bug. Everything is redacted.
 */
export function describeFailure(prefix: string, err: unknown, env: NodeJS.ProcessEnv): string {
  const debug = env.TIDEMARK_DEBUG === '1';
  const stack = debug ? debugTrace(err) : '';
  // One line, so a CI log shows the flag and where the options are listed together.
  if (err instanceof UsageError || isParseArgsError(err)) {
    return `${prefix}: ${redact(oneLine((err as Error).message))}; see \`${prefix} --help\`\n${stack}`;
  }
  if (err instanceof UserError) {
    const hint = err.hint ?? (err instanceof ProviderError && err.retryable ? TRANSIENT_HINT : undefined);
    return `${prefix}: ${redact(err.message)}\n${hint ? `${redact(hint)}\n` : ''}${stack}`;
  }
  const local = describeSystemError(err);
  if (local) return `${prefix}: ${redact(local)}\n${stack}`;
  const message = err instanceof Error ? err.message : String(err);
  const label = err instanceof InternalError ? 'internal error (a bug in tidemark)' : 'unexpected error (likely a bug in tidemark)';
  const next = debug ? stack : 'Set TIDEMARK_DEBUG=1 for the stack trace, and include it when you report this.\n';
  return `${prefix}: ${label}: ${redact(message)}\n${next}`;
}

/** The stack, and those of the causes behind it (where the root cause usually is), redacted. */
function debugTrace(err: unknown): string {
  let out = '';
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    out += `${depth > 0 ? 'Caused by: ' : ''}${current.stack ?? `${current.name}: ${current.message}`}\n`;
    current = current.cause;
  }
  return redact(out);
}

const TRANSIENT_HINT = 'The service failed or was busy, which is usually temporary: run the command again later.';

function isParseArgsError(err: unknown): boolean {
  const code = err instanceof Error ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}

const SYSTEM_WORDS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is exceeded',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EISDIR: 'it is a folder, not a file',
  EEXIST: 'it already exists',
  ENOENT: 'it does not exist',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files',
  ELOOP: 'too many symbolic links (a loop?)',
  ENAMETOOLONG: 'the path is too long',
};

/**
 * A refusal of the file system (a read-only or full disk, a file where a folder should be) is the
 * machine's state, not a bug: say what could not be done where, and what to check.
 */
function describeSystemError(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const { code, path: where, syscall } = err as { code?: unknown; path?: unknown; syscall?: unknown };
  if (typeof code !== 'string' || !(code in SYSTEM_WORDS)) return undefined;
  const target = typeof where === 'string' ? ` ${where}` : '';
  const action = typeof syscall === 'string' ? `${syscall}` : 'use';
  const blocker = code === 'ENOTDIR' && typeof where === 'string' ? fileInTheWay(where) : undefined;
  if (blocker) {
    return (
      `cannot ${action}${target}: ${blocker} is a file, not a folder (ENOTDIR). Move or delete that file, or point ` +
      "tidemark elsewhere; the state folder is the Workspace's `state.path` setting (default .tidemark)."
    );
  }
  return (
    `cannot ${action}${target}: ${SYSTEM_WORDS[code]} (${code}). ` +
    'Check that the path exists, is of the right kind and is writable by this user; the state folder is the Workspace\'s `state.path` setting (default .tidemark).'
  );
}

/** The nearest existing ancestor of `p` when it is a file: what makes a path under it fail with ENOTDIR. */
function fileInTheWay(p: string): string | undefined {
  for (let at = path.dirname(p); at !== path.dirname(at); at = path.dirname(at)) {
    let st;
    try {
      st = statSync(at, { throwIfNoEntry: false });
    } catch {
      continue; // ENOTDIR again: the file is further up
    }
    if (st) return st.isDirectory() ? undefined : at;
  }
  return undefined;
}

/**
 * A reader that goes away (`tidemark rules | head -1`) makes the next write fail with EPIPE, emitted as
 * an 'error' event that would crash the process. Once that happens the output has nowhere to go: further
 * writes are dropped, and the command still finishes (an apply or a sync must not stop halfway because
 * its pager closed) and exits with its own code. Any other write error is reported at the end.
 */
function watchOutput(stream: NodeJS.WritableStream): { failure?: NodeJS.ErrnoException; stop(): void } {
  // A write still queued when main returns can fail after it: one silent listener per stream, for good.
  if (!guarded.has(stream)) {
    guarded.add(stream);
    stream.on('error', () => undefined);
  }
  const state: { failure?: NodeJS.ErrnoException; stop(): void } = { stop: () => stream.off('error', onError) };
  const onError = (e: NodeJS.ErrnoException) => {
    state.failure ??= e;
  };
  stream.on('error', onError);
  return state;
}

const guarded = new WeakSet<NodeJS.WritableStream>();

/**
 * Resolves once what was written has been handed on, and the error events of those writes (emitted a
 * tick later) have fired: a full disk under `> plan.txt` must be known before the exit code is chosen.
 */
function settle(stream: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve) => {
    const done = () => setImmediate(resolve);
    try {
      stream.write('', done);
    } catch {
      done();
    }
  });
}
