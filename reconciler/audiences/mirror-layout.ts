/**
 * The mirror tables the segment compiler targets: what tidemark delivered to Customer.io, per environment.
 * Pure: only text. The state store's migrations create the real tables (with bookkeeping columns the
 * compiler never reads) and its mirror writer keeps to the rules in README.md (one row per present
 * attribute, blank = no row, every person in mirror_people).
 */

export type Dialect = 'sqlite' | 'postgres';

/** CREATE statements for the layout, in order; each is idempotent. */
export function mirrorDdl(dialect: Dialect): string[] {
  const real = dialect === 'postgres' ? 'DOUBLE PRECISION' : 'REAL';
  const int = dialect === 'postgres' ? 'BIGINT' : 'INTEGER';
  return [
    `CREATE TABLE IF NOT EXISTS mirror_people (env TEXT NOT NULL, person_id TEXT NOT NULL, PRIMARY KEY (env, person_id))`,
    `CREATE TABLE IF NOT EXISTS mirror_attributes (env TEXT NOT NULL, person_id TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL, num ${real}, ts_ms ${int}, PRIMARY KEY (env, field, person_id))`,
    `CREATE TABLE IF NOT EXISTS mirror_events (env TEXT NOT NULL, person_id TEXT NOT NULL, name TEXT NOT NULL, occurred_ms ${int} NOT NULL)`,
    // The people whose mirror changed since the last evaluation: where an incremental one starts.
    `CREATE TABLE IF NOT EXISTS mirror_touched (env TEXT NOT NULL, person_id TEXT NOT NULL, attrs INTEGER NOT NULL, PRIMARY KEY (env, person_id))`,
    // Of a person touched with attrs 4, the attributes that changed (only those segments reading one decide them again).
    `CREATE TABLE IF NOT EXISTS mirror_touched_fields (env TEXT NOT NULL, person_id TEXT NOT NULL, field TEXT NOT NULL, PRIMARY KEY (env, person_id, field))`,
    `CREATE TABLE IF NOT EXISTS ui_segment_members (env TEXT NOT NULL, segment TEXT NOT NULL, person_id TEXT NOT NULL, PRIMARY KEY (env, segment, person_id))`,
    // Attributes are keyed field first (a condition reads one field of everyone); events both by person
    // (one person's probes) and by name and time (everyone's events in a window): see compile.ts.
    `CREATE INDEX IF NOT EXISTS mirror_events_person ON mirror_events (env, person_id, name, occurred_ms)`,
    `CREATE INDEX IF NOT EXISTS mirror_events_name ON mirror_events (env, name, occurred_ms, person_id)`,
  ];
}
