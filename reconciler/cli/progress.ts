/**
 * Progress for logs: when stderr is not a terminal (CI, a pipe, a file), long commands say what they are
 * doing as plain lines, one when a phase starts, one when it ends, and the latest counts every interval
 * in between, so a job that takes minutes is never silent and never floods the log. On a terminal
 * nothing is written here: the commands keep their own live display.
 *
 *   tidemark sync: crm_customers: started
 *   tidemark sync: crm_customers: 400,000 rows read, 12.3 s
 *   tidemark sync: crm_customers: done: 1,000,000 rows read, 998,102 sent, 31.0 s
 */

export interface ProgressClock {
  /** Milliseconds, monotonic enough for elapsed times. */
  now(): number;
  /** Calls `tick` every `ms` until the returned function is called. */
  every(ms: number, tick: () => void): () => void;
}

export const systemProgressClock: ProgressClock = {
  now: () => performance.now(),
  every: (ms, tick) => {
    const timer = setInterval(tick, ms);
    // A progress line must never keep a finished command alive.
    timer.unref();
    return () => clearInterval(timer);
  },
};

export const PROGRESS_INTERVAL_MS = 10_000;

/** The timers of writers not closed yet: a command that threw mid-phase must not leave one ticking. */
const ticking = new Set<() => void>();

/** Stops every progress timer still running (main does this when a command returns or throws). */
export function stopAllProgress(): void {
  for (const stop of [...ticking]) stop();
}

export interface Progress {
  /** A phase starts (a source, a step): one line now; the clock of "12.3 s" restarts. */
  phase(name: string, detail?: string): void;
  /** The phase's latest counts: written when the interval has passed since the last line, else kept for the next tick. */
  update(detail: string): void;
  /** The phase ended: one line with its final counts and time. */
  done(detail?: string): void;
  /** Stops the ticking (the command is over). */
  close(): void;
}

const silent: Progress = { phase: () => undefined, update: () => undefined, done: () => undefined, close: () => undefined };

export interface ProgressOptions {
  /** `sync`, as in "tidemark sync: …". */
  command: string;
  intervalMs?: number;
  clock?: ProgressClock;
}

/** Plain progress lines on `out` when it is not a terminal; nothing on a terminal. */
export function progressFor(out: NodeJS.WritableStream & { isTTY?: boolean }, opts: ProgressOptions): Progress {
  return out.isTTY ? silent : plainProgress((line) => out.write(line), opts);
}

/** The throttled writer itself (no terminal check): every line is `tidemark <command>: <phase>: <detail>, <elapsed>`. */
export function plainProgress(write: (line: string) => void, opts: ProgressOptions): Progress {
  const clock = opts.clock ?? systemProgressClock;
  const interval = opts.intervalMs ?? PROGRESS_INTERVAL_MS;
  let current: { name: string; started: number; detail: string | undefined } | undefined;
  let lastLine = clock.now();
  let stop: (() => void) | undefined;

  const say = (text: string) => {
    lastLine = clock.now();
    write(`tidemark ${opts.command}: ${text}\n`);
  };
  const elapsed = () => seconds(clock.now() - current!.started);
  const status = () => `${current!.name}: ${current!.detail ? `${current!.detail}, ` : ''}${elapsed()}`;
  const tick = () => {
    if (current && clock.now() - lastLine >= interval) say(status());
  };

  return {
    phase(name, detail) {
      current = { name, started: clock.now(), detail };
      say(`${name}: ${detail ?? 'started'}`);
      // Checked every second, so a quiet phase is heard from 10 s after its last line, not up to 20.
      if (!stop) {
        const cancel = clock.every(Math.min(1000, interval), tick);
        stop = () => {
          cancel();
          ticking.delete(stop!);
          stop = undefined;
        };
        ticking.add(stop);
      }
    },
    update(detail) {
      if (!current) return;
      current.detail = detail;
      tick();
    },
    done(detail) {
      if (!current) return;
      const d = detail ?? current.detail;
      say(`${current.name}: done${d ? `: ${d}` : ''}, ${elapsed()}`);
      current = undefined;
    },
    close() {
      stop?.();
      current = undefined;
    },
  };
}

export function seconds(ms: number): string {
  return `${(Math.max(0, ms) / 1000).toFixed(1)} s`;
}

const GROUPED = new Intl.NumberFormat('en-US');

/**
 * 400000 → "400,000", as the counts read in every line. One formatter for the process: `toLocaleString`
 * with a locale builds one per call, and a sync formats its counts after every chunk it reads (25 ms of a
 * million-row plan's engine thread).
 */
export function count(n: number): string {
  return GROUPED.format(n);
}
