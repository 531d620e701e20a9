/**
 * An evaluation widens the embedded store's page cache for its own duration only (state/audiences.ts
 * `withEvaluationCache`): the sync, which shares the connection in `tidemark run`, keeps its 64 MB.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EVALUATION_CACHE_KIB, withEvaluationCache } from './audiences.ts';
import { SqliteDriver } from './sql/sqlite-driver.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function driver(): Promise<SqliteDriver> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tidemark-cache-'));
  dirs.push(dir);
  return new SqliteDriver(path.join(dir, 'state.sqlite'));
}

const cacheSize = async (db: SqliteDriver) => Number((await db.get<{ cache_size: number }>('PRAGMA cache_size'))?.cache_size);

describe('the evaluation page cache', () => {
  it('is widened while an evaluation runs, nested or not, and put back after it, also when it fails', async () => {
    const db = await driver();
    try {
      const own = await cacheSize(db);
      expect(own).not.toBe(-EVALUATION_CACHE_KIB);
      const ctx = { db, env: 'staging' };
      const seen = await withEvaluationCache(ctx, async () => {
        const outer = await cacheSize(db);
        const inner = await withEvaluationCache(ctx, () => cacheSize(db));
        return [outer, inner, await cacheSize(db)];
      });
      expect(seen).toEqual([-EVALUATION_CACHE_KIB, -EVALUATION_CACHE_KIB, -EVALUATION_CACHE_KIB]);
      expect(await cacheSize(db)).toBe(own);
      await expect(withEvaluationCache(ctx, async () => { throw new Error('segment failed'); })).rejects.toThrow('segment failed');
      expect(await cacheSize(db)).toBe(own);
      // Inside a caller's transaction (`audiences plan` evaluates in one and rolls it back) as well.
      await db.transaction(async () => {
        expect(await withEvaluationCache(ctx, () => cacheSize(db))).toBe(-EVALUATION_CACHE_KIB);
      });
      expect(await cacheSize(db)).toBe(own);
    } finally {
      await db.close();
    }
  });
});
