import { InternalError } from '../../core/diagnostics.ts';
import type { SqlDriver } from '../sql/executor.ts';
import { StateSchemaError } from '../errors.ts';
import { migrationChecksum, renderMigrationSql, type Migration } from './migration.ts';

export interface AppliedMigration {
  version: number;
  name: string;
  checksum: string;
  appliedAt: string;
}

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER NOT NULL PRIMARY KEY,
  name TEXT NOT NULL,
  checksum TEXT NOT NULL,
  applied_at TEXT NOT NULL
)`;

export async function readAppliedMigrations(db: SqlDriver): Promise<AppliedMigration[]> {
  const rows = await db.all<{ version: number; name: string; checksum: string; applied_at: string }>(
    'SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version',
  );
  return rows.map((r) => ({ version: r.version, name: r.name, checksum: r.checksum, appliedAt: r.applied_at }));
}

/**
 * Brings the schema up to the newest known migration. Refuses a database that records a version this
 * tidemark does not know (a newer tidemark wrote it: touching it could corrupt it), and one whose
 * recorded checksum differs from the migration shipped here (the migration was edited after release).
 * Each pending migration runs in its own transaction, under a cross-process migration lock, and
 * re-checks what is applied once it holds the lock, so concurrent openers apply each step exactly once.
 */
export async function migrate(
  db: SqlDriver,
  migrations: readonly Migration[],
  location: string,
  now: () => string,
): Promise<void> {
  checkSequence(migrations);
  const pending = await db.transaction(async () => {
    await db.lockForMigrations();
    await db.exec(CREATE_TABLE);
    const applied = await readAppliedMigrations(db);
    verify(applied, migrations, location);
    return migrations.filter((m) => !applied.some((a) => a.version === m.version));
  });
  for (const m of pending) {
    await db.transaction(async () => {
      await db.lockForMigrations();
      const applied = await readAppliedMigrations(db);
      verify(applied, migrations, location);
      if (applied.some((a) => a.version === m.version)) return;
      await db.exec(renderMigrationSql(m.sql, db.dialect));
      await db.run('INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)', [
        m.version,
        m.name,
        migrationChecksum(m),
        now(),
      ]);
    });
  }
}

function verify(applied: readonly AppliedMigration[], migrations: readonly Migration[], location: string): void {
  const latest = migrations.at(-1)?.version ?? 0;
  const newest = applied.at(-1);
  if (newest && newest.version > latest) {
    throw new StateSchemaError(
      'STATE001',
      `The state in ${location} has schema version ${newest.version} ("${newest.name}"), but this tidemark only knows ` +
        `versions up to ${latest}. A newer tidemark wrote it; upgrade tidemark instead of letting an older one touch it.`,
    );
  }
  for (const a of applied) {
    const m = migrations[a.version - 1];
    if (m && migrationChecksum(m) !== a.checksum) {
      throw new StateSchemaError(
        'STATE002',
        `Migration ${a.version} ("${a.name}") applied to ${location} differs from the one this tidemark ships ` +
          `(checksum ${a.checksum.slice(0, 12)}… recorded, ${migrationChecksum(m).slice(0, 12)}… expected). ` +
          'Migrations must never change once released; this tidemark build is inconsistent with the state.',
      );
    }
  }
}

function checkSequence(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new InternalError(`migration list is not numbered 1..n without gaps: found ${m.version} at position ${i + 1}`);
  });
}
