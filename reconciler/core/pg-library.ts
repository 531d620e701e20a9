/**
 * node-postgres, loaded when first used. Only a run whose state, source or warehouse is on Postgres needs
 * it; importing it cost every other command 60-80 ms at start (docs/BENCHMARKS.md, "Issue 15, continued: what a
 * command loads").
 * Required rather than imported so the callers that construct pools and clients stay synchronous.
 */
import { createRequire } from 'node:module';

type PgLibrary = typeof import('pg');
let library: PgLibrary | undefined;

export function pgLibrary(): PgLibrary {
  return (library ??= createRequire(import.meta.url)('pg') as PgLibrary);
}
