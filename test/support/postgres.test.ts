/** The PostgreSQL probe: a loud skip on a developer machine, a failure in CI. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isCi, postgresSkipReason, PostgresUnreachableInCi } from './postgres.ts';

// Port 1 on loopback: nothing listens, so the connection is refused at once.
const NOWHERE = 'postgres://postgres:secret@127.0.0.1:1/test';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('postgresSkipReason', () => {
  it('outside CI resolves to the reason and prints a banner (password masked)', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const reason = await postgresSkipReason('probe test', NOWHERE, {});
    expect(reason).toBeTruthy();
    expect(warn).toHaveBeenCalledOnce();
    expect(String(warn.mock.calls[0]![0])).toContain('SKIPPED (probe test)');
    expect(String(warn.mock.calls[0]![0])).not.toContain('secret');
  });

  it('in CI rejects, so the test file that needs the server fails instead of skipping', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const probe = postgresSkipReason('probe test', NOWHERE, { CI: 'true' });
    await expect(probe).rejects.toThrow(PostgresUnreachableInCi);
    await expect(probe).rejects.toThrow(/probe test: no PostgreSQL server answered at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/test .*CI=true/);
    expect(warn).not.toHaveBeenCalled();
  });

  it.each([
    [{ CI: 'true' }, true],
    [{ CI: '1' }, true],
    [{ CI: 'TRUE ' }, true],
    [{ CI: 'false' }, false],
    [{ CI: '0' }, false],
    [{ CI: '' }, false],
    [{}, false],
  ])('reads %j as CI: %s', (env, expected) => {
    expect(isCi(env)).toBe(expected);
  });
});
