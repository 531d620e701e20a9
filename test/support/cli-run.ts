import { Writable } from 'node:stream';
import { main } from '../../reconciler/cli/main.ts';

/** Runs the CLI in-process with captured output. */
export async function runCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; tty?: boolean } = {}) {
  let stdout = '';
  let stderr = '';
  const sink = (onData: (s: string) => void) => {
    const w = new Writable({ write(chunk, _enc, cb) { onData(String(chunk)); cb(); } }) as Writable & { isTTY?: boolean };
    w.isTTY = opts.tty ?? false;
    return w;
  };
  const code = await main(args, {
    cwd: opts.cwd ?? process.cwd(),
    env: opts.env ?? {},
    stdout: sink((s) => (stdout += s)),
    stderr: sink((s) => (stderr += s)),
  });
  return { code, stdout, stderr };
}
