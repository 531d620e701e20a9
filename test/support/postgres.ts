/**
 * The PostgreSQL server the tests use, and the one way they find out whether it answers. Tests that need
 * it skip with a loud banner (printed here) when it does not, e.g. on a laptop without a server. In CI
 * (`CI` set, and not `false` or `0`) they fail instead: there a skip would let a green run hide that the
 * Postgres paths were never tested.
 */
import pg from 'pg';

export const TEST_DATABASE_URL = process.env.TIDEMARK_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Why the server cannot be used, or undefined when it answers. */
export async function probePostgres(url: string = TEST_DATABASE_URL): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message || e.name : String(e);
  } finally {
    await client.end().catch(() => {});
  }
}

/** The same reading of `CI` as the CLI's: GitHub Actions and most CI services set `CI=true`. */
export function isCi(env: NodeJS.ProcessEnv): boolean {
  const v = env.CI?.trim().toLowerCase();
  return v !== undefined && v !== '' && v !== 'false' && v !== '0';
}

export class PostgresUnreachableInCi extends Error {
  override name = 'PostgresUnreachableInCi';
}

/**
 * Probes the test server; when it does not answer, prints a banner naming what is skipped and resolves to the
 * reason. In CI it rejects instead, so the test file that asked fails (callers await it at module top level).
 */
export async function postgresSkipReason(what: string, url: string = TEST_DATABASE_URL, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const reason = await probePostgres(url);
  if (reason !== undefined && isCi(env)) {
    throw new PostgresUnreachableInCi(
      `${what}: no PostgreSQL server answered at ${url.replace(/:[^:@/]*@/, ':***@')} (${reason}). ` +
        `This is a CI run (CI=${env.CI}), where the Postgres tests must run: start the server (.ci/run does) or set TIDEMARK_TEST_DATABASE_URL.`,
    );
  }
  if (reason !== undefined) {
    const bar = '!'.repeat(100);
    console.warn(
      `\n${bar}\n!! SKIPPED (${what}): no PostgreSQL server answered at ${url.replace(/:[^:@/]*@/, ':***@')}\n!! reason: ${reason}\n` +
        `!! Start one or set TIDEMARK_TEST_DATABASE_URL.\n${bar}\n`,
    );
  }
  return reason;
}
