/**
 * `tidemark sandbox [--port N] [--data FILE]`: starts the emulated Customer.io and Qualtrics on 127.0.0.1,
 * prints the environment that points tidemark (or any client) at them, and runs until SIGINT/SIGTERM, then
 * flushes persistence and exits 0.
 */
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { UsageError, type Command, type CommandContext } from '../command.ts';
import { parseFaultConfig } from '../../sandbox/common/faults.ts';
import { createSandbox, type RunningSandbox, type SandboxOptions } from '../../sandbox/index.ts';

export const DEFAULT_SANDBOX_PORT = 4010;

const usage = `Usage: tidemark sandbox [--port N] [--data FILE] [--faults JSON] [--seed N]

Start the Customer.io and Qualtrics emulators on 127.0.0.1 and print the environment to point
tidemark at them (eval "$(tidemark sandbox)" works, or copy the export lines).

  --port N       base port (default ${DEFAULT_SANDBOX_PORT}): Customer.io Track on N, App on N+1, Qualtrics on N+2;
                 0 picks free ports
  --data FILE    keep all emulator state in FILE (restored on start, saved after writes and on exit)
  --faults JSON  initial fault injection, e.g. '{"errorRate":0.1,"latencyMs":[20,200]}'
  --seed N       seed for fault injection, so a run can be replayed

Admin endpoint on every listener: GET|PUT|DELETE /__sandbox/faults, GET /__sandbox/requests,
POST /__sandbox/reset, POST /__sandbox/customerio/segments, GET /__sandbox/customerio/people/{id}.
Stops on Ctrl-C (SIGINT) or SIGTERM.`;

function parseIntFlag(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} must be an integer, got "${value}"`);
  const n = Number(value);
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** Parses the flags into sandbox options; throws UsageError on bad input. */
export function parseSandboxArgs(args: string[], cwd: string): SandboxOptions {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      port: { type: 'string' },
      data: { type: 'string' },
      faults: { type: 'string' },
      seed: { type: 'string' },
    },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  // Three consecutive ports are needed, so the base must leave room for +2.
  const port = parseIntFlag('port', values.port, 0, 65533) ?? DEFAULT_SANDBOX_PORT;
  const seed = parseIntFlag('seed', values.seed, 0, 0xffff_ffff);
  let faults: SandboxOptions['faults'];
  if (values.faults !== undefined) {
    let raw: unknown;
    try {
      raw = JSON.parse(values.faults);
    } catch {
      throw new UsageError('--faults must be a JSON object');
    }
    const parsed = parseFaultConfig(raw);
    if (!parsed.ok) throw new UsageError(`--faults: ${parsed.message}`);
    faults = parsed.value;
  }
  return {
    port,
    ...(values.data !== undefined ? { dataFile: resolve(cwd, values.data) } : {}),
    ...(faults !== undefined ? { faults } : {}),
    ...(seed !== undefined ? { seed } : {}),
  };
}

/** Shell-safe `export NAME=value` lines. */
export function formatEnv(env: Record<string, string>): string {
  const quote = (v: string): string => (/^[A-Za-z0-9_./:@-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`);
  return Object.entries(env)
    .map(([k, v]) => `export ${k}=${quote(v)}\n`)
    .join('');
}

/**
 * Runs the sandbox until `stop` fires. Split from the command so tests can stop it without sending signals to
 * the test runner's process.
 */
export async function runSandbox(options: SandboxOptions, ctx: CommandContext, stop: AbortSignal): Promise<number> {
  let sandbox: RunningSandbox;
  try {
    sandbox = await createSandbox(options);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      ctx.stderr.write(`tidemark sandbox: port ${options.port ?? DEFAULT_SANDBOX_PORT} (or the next two) is already in use; pick another with --port\n`);
      return 1;
    }
    throw err;
  }
  // stdout carries only the env lines, so `eval "$(tidemark sandbox)"`-style use and scripts can parse it.
  ctx.stdout.write(formatEnv(sandbox.env));
  ctx.stderr.write(
    `tidemark sandbox: Customer.io Track ${sandbox.urls.customerioTrack}, App ${sandbox.urls.customerioApp}, ` +
      `Qualtrics ${sandbox.urls.qualtrics}${options.dataFile ? `, state in ${options.dataFile}` : ''}. Ctrl-C to stop.\n`,
  );
  await new Promise<void>((resolveStop) => {
    if (stop.aborted) resolveStop();
    else stop.addEventListener('abort', () => resolveStop(), { once: true });
  });
  await sandbox.close();
  ctx.stderr.write('tidemark sandbox: stopped\n');
  return 0;
}

export const sandboxCommand: Command = {
  name: 'sandbox',
  summary: 'Start the emulated Customer.io and Qualtrics APIs on 127.0.0.1 and print their environment',
  usage,
  async run(args, ctx) {
    const options = parseSandboxArgs(args, ctx.cwd);
    const controller = new AbortController();
    const onSignal = (): void => controller.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      return await runSandbox(options, ctx, controller.signal);
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};
