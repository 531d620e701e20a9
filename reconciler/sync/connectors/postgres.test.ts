import net from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { redact } from '../../core/redact.ts';
import type { SourceRow } from '../types.ts';
import { ConnectorError } from './errors.ts';
import { createConnector } from './index.ts';
import { bindLastSyncAt, createPostgresConnector, describeDatabaseError, timestamptzToIso } from './postgres.ts';
import { postgresSkipReason, TEST_DATABASE_URL } from '../../../test/support/postgres.ts';

describe('describeDatabaseError', () => {
  const pgError = (message: string, fields: Record<string, string> = {}) => Object.assign(new Error(message), fields);

  it('replaces a quoted row value, and keeps the SQLSTATE, the position and the column', () => {
    expect(describeDatabaseError(pgError('invalid input syntax for type bigint: "alice@example.com"', { code: '22P02', position: '8' }))).toBe(
      'invalid input syntax for type bigint: "<value>" (SQLSTATE 22P02, at character 8 of the query)',
    );
    expect(describeDatabaseError(pgError('value "123456789012" is out of range for type integer', { code: '22003', column: 'n' }))).toBe(
      'value "<value>" is out of range for type integer (SQLSTATE 22003, column n)',
    );
    expect(describeDatabaseError(pgError('invalid input value for enum tier: "bob ""the"" builder"'))).toBe('invalid input value for enum tier: "<value>"');
  });

  it('keeps the names of columns, relations and tokens of the query: they are what the fix needs', () => {
    expect(describeDatabaseError(pgError('column "nope" does not exist', { code: '42703' }))).toBe('column "nope" does not exist (SQLSTATE 42703)');
    expect(describeDatabaseError(pgError('relation "public.vip" does not exist'))).toBe('relation "public.vip" does not exist');
    expect(describeDatabaseError(pgError('syntax error at or near "selec"'))).toBe('syntax error at or near "selec"');
    expect(describeDatabaseError(pgError('password authentication failed for user "reader"'))).toBe('password authentication failed for user "reader"');
  });

  it('leaves a message without quotes as it is', () => {
    expect(describeDatabaseError(pgError('division by zero', { code: '22012' }))).toBe('division by zero (SQLSTATE 22012)');
    expect(describeDatabaseError(new Error('Connection terminated unexpectedly'))).toBe('Connection terminated unexpectedly');
  });
});

describe('bindLastSyncAt', () => {
  it.each<[string, string, string]>([
    ['a plain comparison', 'select * from t where updated_at > :last_sync_at', 'select * from t where updated_at > $1::timestamptz'],
    ['several occurrences', 'where a > :last_sync_at or b > :last_sync_at', 'where a > $1::timestamptz or b > $1::timestamptz'],
    ['followed by a cast', 'where d >= :last_sync_at::date', 'where d >= $1::timestamptz::date'],
    ['in parentheses at the end', 'where (x > :last_sync_at)', 'where (x > $1::timestamptz)'],
    ['not inside a string literal', "select ':last_sync_at' as s where x > :last_sync_at", "select ':last_sync_at' as s where x > $1::timestamptz"],
    ['not inside a literal with a doubled quote', "select 'it''s :last_sync_at' where x > :last_sync_at", "select 'it''s :last_sync_at' where x > $1::timestamptz"],
    ['not inside an E-string with an escaped quote', "select E'\\' :last_sync_at' where x > :last_sync_at", "select E'\\' :last_sync_at' where x > $1::timestamptz"],
    ['not inside a quoted identifier', 'select 1 as ":last_sync_at" where x > :last_sync_at', 'select 1 as ":last_sync_at" where x > $1::timestamptz'],
    ['not inside a line comment', 'select 1 -- since :last_sync_at\nwhere x > :last_sync_at', 'select 1 -- since :last_sync_at\nwhere x > $1::timestamptz'],
    ['not inside a nested block comment', 'select /* a /* :last_sync_at */ :last_sync_at */ 1 where x > :last_sync_at', 'select /* a /* :last_sync_at */ :last_sync_at */ 1 where x > $1::timestamptz'],
    ['not inside a dollar-quoted string', 'select $$:last_sync_at$$, $q$ :last_sync_at $q$ where x > :last_sync_at', 'select $$:last_sync_at$$, $q$ :last_sync_at $q$ where x > $1::timestamptz'],
    ['not a longer name', 'select :last_sync_at_local', 'select :last_sync_at_local'],
    ['not after a cast operator', 'select x::last_sync_at', 'select x::last_sync_at'],
    ['an identifier containing $ is not a dollar quote', 'select a$b$ from t where x > :last_sync_at', 'select a$b$ from t where x > $1::timestamptz'],
  ])('%s', (_name, sql, expected) => {
    expect(bindLastSyncAt(sql).text).toBe(expected);
  });

  it('says whether the parameter occurs', () => {
    expect(bindLastSyncAt('select 1 where x > :last_sync_at').usesParameter).toBe(true);
    expect(bindLastSyncAt("select ':last_sync_at'").usesParameter).toBe(false);
  });

  it('refuses a query with positional parameters', () => {
    expect(() => bindLastSyncAt('select * from t where id = $1')).toThrow(ConnectorError);
    expect(() => createPostgresConnector({ type: 'postgres', url_env: 'X', query: 'select $2' })).toThrow(/positional parameter/);
  });
});

describe('timestamptzToIso', () => {
  it.each<[string, string]>([
    ['2026-03-08 07:30:00+00', '2026-03-08T07:30:00+00:00'],
    ['2026-11-23 04:14:43.883633-05', '2026-11-23T04:14:43.883633-05:00'],
    ['2026-03-08 12:00:00+05:30', '2026-03-08T12:00:00+05:30'],
    ['1883-11-18 12:03:58-04:56:02', '1883-11-18T12:03:58-04:56:02'],
    ['infinity', 'infinity'],
    ['0044-03-15 12:00:00+00 BC', '0044-03-15 12:00:00+00 BC'],
  ])('%s → %s', (text, iso) => {
    expect(timestamptzToIso(text)).toBe(iso);
  });
});

describe('postgres connector without a server', () => {
  let refusedPort: number;
  beforeAll(async () => {
    // A port that was just free: connecting to it is refused at once.
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    refusedPort = (server.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('names the missing environment variable', async () => {
    const connector = createConnector({ type: 'postgres', url_env: 'WAREHOUSE_URL', query: 'select 1' });
    const err = await connector.read({ lastSyncAt: null, cwd: '.', env: {} })[Symbol.asyncIterator]().next().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectorError);
    expect(err).toMatchObject({ code: 'config', message: expect.stringContaining('WAREHOUSE_URL is not set') });
  });

  it('never shows the URL or its password when the connection fails, and registers both as secrets', async () => {
    const url = `postgres://reader:Sup3r%2Fsecret@127.0.0.1:${refusedPort}/warehouse`;
    const connector = createPostgresConnector({ type: 'postgres', url_env: 'WAREHOUSE_URL', query: 'select 1' }, { connectTimeoutMs: 5000 });
    const err = await connector.read({ lastSyncAt: null, cwd: '.', env: { WAREHOUSE_URL: url } })[Symbol.asyncIterator]().next().catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ConnectorError', code: 'io' });
    const message = (err as Error).message;
    expect(message).toContain('WAREHOUSE_URL');
    expect(message).not.toContain('Sup3r');
    expect(message).not.toContain(url);
    // Both are registered: neither the URL's credentials nor the decoded password survive redaction anywhere.
    const redacted = redact(`at ${url} with Sup3r/secret`);
    expect(redacted).not.toMatch(/Sup3r|reader:/);
    expect(redacted).toMatch(/ with \[redacted\]$/);
  });
});

// The same server as test/sync/connectors-postgres.test.ts; these queries need no tables.
const DATABASE_URL = TEST_DATABASE_URL;


const skipReason = await postgresSkipReason('readBatches tests in reconciler/sync/connectors/postgres.test.ts');

describe.skipIf(skipReason !== undefined)('postgres connector: readBatches (real server)', () => {
  const ctx = { lastSyncAt: null, cwd: '.', env: { WAREHOUSE_URL: DATABASE_URL } };
  const rowsQuery = (n: number) =>
    `select g as id, 'person' || g || '@example.com' as email, (g * 1.5)::numeric as ltv from generate_series(1, ${n}) g where now() > :last_sync_at order by g`;

  async function batchesOf(n: number, pageSize: number): Promise<SourceRow[][]> {
    const connector = createPostgresConnector({ type: 'postgres', url_env: 'WAREHOUSE_URL', query: rowsQuery(n) }, { pageSize });
    const batches: SourceRow[][] = [];
    for await (const b of connector.readBatches!(ctx)) batches.push(b);
    return batches;
  }

  async function rowsOfRead(n: number, pageSize: number): Promise<SourceRow[]> {
    const connector = createPostgresConnector({ type: 'postgres', url_env: 'WAREHOUSE_URL', query: rowsQuery(n) }, { pageSize });
    const rows: SourceRow[] = [];
    for await (const r of connector.read(ctx)) rows.push(r);
    return rows;
  }

  it('gives one batch per FETCH page, holding the same rows as read', async () => {
    const batches = await batchesOf(2500, 1000);
    expect(batches.map((b) => b.length)).toEqual([1000, 1000, 500]);
    const flat = batches.flat();
    expect(flat[0]).toEqual({ location: 'query row 1', values: { id: 1, email: 'person1@example.com', ltv: '1.5' } });
    expect(flat.at(-1)).toEqual({ location: 'query row 2500', values: { id: 2500, email: 'person2500@example.com', ltv: '3750.0' } });
    expect(flat.map((r) => r.location)).toEqual(Array.from({ length: 2500 }, (_, i) => `query row ${i + 1}`));
    expect(await rowsOfRead(2500, 1000)).toEqual(flat);
  });

  it('yields no empty batch when the rows fill the last page exactly, and none at all for no rows', async () => {
    expect((await batchesOf(2000, 1000)).map((b) => b.length)).toEqual([1000, 1000]);
    expect(await batchesOf(0, 1000)).toEqual([]);
    expect(await rowsOfRead(0, 1000)).toEqual([]);
  });
});
