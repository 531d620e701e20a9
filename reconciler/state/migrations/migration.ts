import { createHash } from 'node:crypto';
import type { Dialect } from '../sql/executor.ts';

/**
 * One step of the schema. Migrations are numbered from 1 without gaps, applied once each in a
 * transaction, and recorded with a checksum of their SQL: editing a migration after release is refused
 * (write a new one instead).
 *
 * The SQL is the common subset of SQLite and Postgres. The first dialect token is `{{WITHOUT_ROWID}}`,
 * a storage option: SQLite stores such a table clustered on its primary key (one B-tree instead of
 * table plus index, which halves the work of probing a million-row snapshot); Postgres has no such
 * option and gets nothing. `{{UNLOGGED}}` (written before TABLE) is the other, for scratch tables that are
 * emptied before the transaction that fills them ends: Postgres then writes no WAL for them (it empties
 * them after a crash, which is what they hold anyway); SQLite gets nothing. `{{SET_UNLOGGED:table}}` turns
 * an existing table unlogged on Postgres (a rewrite of the table, once) and is nothing on SQLite.
 * `{{SET_FILLFACTOR:table:percent}}` leaves that share of each new page of a Postgres table free, so an
 * update can write the new version of a row on the row's own page (a HOT update: no index entry, one page
 * dirtied instead of two or three); SQLite, which rewrites a row in place, gets nothing. The logical schema
 * is identical on both.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function renderMigrationSql(sql: string, dialect: Dialect): string {
  return sql
    .replaceAll('{{WITHOUT_ROWID}}', dialect === 'sqlite' ? ' WITHOUT ROWID' : '')
    .replaceAll('{{UNLOGGED}}', dialect === 'postgres' ? 'UNLOGGED ' : '')
    .replaceAll(/\{\{SET_UNLOGGED:([a-z_]+)\}\}/g, (_, table: string) => (dialect === 'postgres' ? `ALTER TABLE ${table} SET UNLOGGED;` : ''))
    .replaceAll(/\{\{SET_FILLFACTOR:([a-z_]+):(\d+)\}\}/g, (_, table: string, percent: string) => (dialect === 'postgres' ? `ALTER TABLE ${table} SET (fillfactor = ${percent});` : ''));
}

/** Checksum of the dialect-neutral text, so both backends record the same value. */
export function migrationChecksum(m: Migration): string {
  return createHash('sha256').update(m.sql).digest('hex');
}
