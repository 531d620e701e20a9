/**
 * `tidemark …` as a real child process (bin/tidemark.js), for the SIGKILL tests: the process is killed
 * after a delay, or as soon as a condition the test polls holds (e.g. "the sandbox received the request
 * the run is now waiting on"), and the test reruns it to completion.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';

const REPO = path.resolve(import.meta.dirname, '../..');

export interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

export interface ChildOptions {
  /** The whole environment of the child (PATH is added). */
  env: NodeJS.ProcessEnv;
  /** SIGKILL after this many milliseconds, if still running. */
  killAfterMs?: number;
  /** SIGKILL as soon as this returns true (polled every 5 ms), if still running. */
  killWhen?: () => boolean;
}

export function runChild(dir: string, args: string[], o: ChildOptions): Promise<ChildRun> {
  const child = spawn(process.execPath, [path.join(REPO, 'bin/tidemark.js'), ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH, ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += String(d)));
  child.stderr.on('data', (d) => (output += String(d)));
  const running = () => child.exitCode === null && child.signalCode === null;
  const timers: NodeJS.Timeout[] = [];
  if (o.killAfterMs !== undefined) timers.push(setTimeout(() => running() && child.kill('SIGKILL'), o.killAfterMs));
  if (o.killWhen) {
    const check = o.killWhen;
    timers.push(setInterval(() => running() && check() && child.kill('SIGKILL'), 5));
  }
  return new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      for (const t of timers) clearTimeout(t);
      resolve({ code, signal, output });
    }),
  );
}
