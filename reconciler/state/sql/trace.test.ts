import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteDriver } from './sqlite-driver.ts';
import { traceStatements, traceThreshold } from './trace.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function driver(): SqliteDriver {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tm-trace-'));
  dirs.push(dir);
  return new SqliteDriver(path.join(dir, 'db.sqlite'));
}

describe('TIDEMARK_SQL_TRACE', () => {
  it('reads the threshold from the environment, and is off unless it is a number', () => {
    expect(traceThreshold({})).toBeUndefined();
    expect(traceThreshold({ TIDEMARK_SQL_TRACE: '' })).toBeUndefined();
    expect(traceThreshold({ TIDEMARK_SQL_TRACE: 'yes' })).toBeUndefined();
    expect(traceThreshold({ TIDEMARK_SQL_TRACE: '-1' })).toBeUndefined();
    expect(traceThreshold({ TIDEMARK_SQL_TRACE: ' 20 ' })).toBe(20);
  });

  it('reports statements and outermost transactions over the threshold, never their parameters', async () => {
    const lines: string[] = [];
    const inner = driver();
    const db = traceStatements(inner, 0, (l) => lines.push(l));
    try {
      expect(db).toBeInstanceOf(SqliteDriver);
      await db.exec('CREATE TABLE t (id TEXT PRIMARY KEY)');
      await db.transaction(async () => {
        await db.run('INSERT INTO t (id) VALUES ($1)', ['cust_secret_42']);
        await db.transaction(async () => db.run('INSERT INTO t (id) VALUES ($1)', ['cust_secret_43']));
      });
      expect(await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM t')).toEqual({ n: 2 });
      expect(lines.filter((l) => /transaction/.test(l))).toHaveLength(1);
      expect(lines.filter((l) => /INSERT INTO t \(id\) VALUES \(\$1\)$/.test(l))).toHaveLength(2);
      expect(lines.every((l) => /^tidemark sql \d+\.\d ms /.test(l))).toBe(true);
      expect(lines.join('\n')).not.toContain('cust_secret');
      // Side by side (SQLite queues the second behind the first): each is outermost, each reported.
      lines.length = 0;
      await Promise.all(['side_1', 'side_2'].map((id) => db.transaction(async () => db.run('INSERT INTO t (id) VALUES ($1)', [id]))));
      expect(lines.filter((l) => /transaction/.test(l))).toHaveLength(2);
      lines.length = 0;
      const quiet = traceStatements(inner, 60_000, (l) => lines.push(l));
      await quiet.run('INSERT INTO t (id) VALUES ($1)', ['x']);
      expect(lines).toEqual([]);
    } finally {
      await inner.close();
    }
  });
});
