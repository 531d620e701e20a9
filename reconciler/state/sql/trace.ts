/**
 * `TIDEMARK_SQL_TRACE=<ms>`: every statement (and every outermost transaction, its COMMIT included) that
 * takes at least that long is written to stderr with its duration, for profiling a run from outside the
 * way `auto_explain` would, on either backend. The statement text only: parameters, which hold customer
 * identifiers, are never written.
 */
import { performance } from 'node:perf_hooks';
import type { SqlDriver, SqlValue } from './executor.ts';

const STATEMENTS = new Set(['run', 'all', 'get', 'exec']);

/** The trace threshold from the environment, or undefined when tracing is off (unset, empty, not a number). */
export function traceThreshold(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env.TIDEMARK_SQL_TRACE?.trim();
  if (!raw) return undefined;
  const ms = Number(raw);
  return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

/** `driver`, with statements and transactions at or over `thresholdMs` reported through `write`. */
export function traceStatements<D extends SqlDriver>(driver: D, thresholdMs: number, write: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): D {
  const report = (started: number, what: string) => {
    const ms = performance.now() - started;
    if (ms >= thresholdMs) write(`tidemark sql ${ms.toFixed(1)} ms ${what}`);
  };
  return new Proxy(driver, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      if (typeof prop === 'string' && STATEMENTS.has(prop)) {
        return async (sql: string, params?: readonly SqlValue[]) => {
          const started = performance.now();
          try {
            return await (value as (s: string, p?: readonly SqlValue[]) => Promise<unknown>).call(target, sql, params);
          } finally {
            report(started, sql.replace(/\s+/g, ' ').trim());
          }
        };
      }
      if (prop === 'transaction') {
        return async <T>(fn: () => Promise<T>) => {
          // Outermost when called outside any transaction's async context: asked of the driver, not
          // counted here, since transactions run side by side (two segments at once on Postgres; SQLite
          // queues one behind another) and a shared count would hide all but the last to end.
          const outermost = !target.inTransaction();
          const started = performance.now();
          try {
            return await target.transaction(fn);
          } finally {
            if (outermost) report(started, 'transaction (all its statements and the COMMIT)');
          }
        };
      }
      return (value as (...a: unknown[]) => unknown).bind(target);
    },
  });
}
