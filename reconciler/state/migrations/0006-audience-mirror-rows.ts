import type { Migration } from './migration.ts';

/**
 * Audiences: the mirror is brought up to date from what changed in the snapshots instead of rebuilt
 * whole on every evaluation (a million people took minutes).
 *
 * - `mirror_rows`: per source and snapshot key, the snapshot entry's `hash` and `sent_at` the mirror was
 *   last built from (only keys that had a payload). A run compares the snapshot's entries with these and
 *   rebuilds only the keys that differ, appeared or disappeared. Both values move with every
 *   acknowledgement, and the snapshot's merge writes entries and payloads in one transaction, so a key
 *   whose content changed always differs here.
 * - `mirror_builds`: per environment, what the mirror was built with (the timestamp fields, the sources
 *   and their record kinds) and its row counts, so a changed model rebuilds what it must and counts need
 *   no scan of thirty million rows.
 * - `mirror_work`, `mirror_attr_work`: scratch space of one update (the differing keys; the changed
 *   people's attributes as rebuilt), emptied before the update's transaction commits.
 * - `mirror_touched`: the people whose mirror an update changed (`attrs = 1` for those whose attributes
 *   may have changed). Since incremental evaluation (state/audiences.ts) they are kept until an
 *   evaluation has read them, so a segment is re-evaluated for exactly these people plus those a time
 *   window passed over.
 * - `mirror_events.source`, `.row_key`: which snapshot row an event came from, so a removed or corrected
 *   event row removes exactly its own event.
 * - `mirror_events_name`: an event condition reads the events of one name within a window, a range of
 *   this index, where the person index made it a read of every event.
 * - `mirror_attributes` is keyed by field first: a segment condition reads one field of everyone, a
 *   contiguous range (the embedded store keeps the table clustered on that key), where the person-first
 *   key made it one probe per person. Probing one person's field is the same seek either way, and a
 *   whole fill still appends (one insertion point per field).
 *
 * The mirror is derived data: it is emptied here, and the next evaluation fills it again with its
 * bookkeeping.
 */
export const audienceMirrorRows: Migration = {
  version: 6,
  name: 'audience-mirror-rows',
  sql: `
DROP TABLE mirror_attributes;
CREATE TABLE mirror_attributes (
  env TEXT NOT NULL,
  person_id TEXT NOT NULL,
  field TEXT NOT NULL,
  value TEXT NOT NULL,
  num DOUBLE PRECISION,
  ts_ms BIGINT,
  PRIMARY KEY (env, field, person_id)
){{WITHOUT_ROWID}};
DELETE FROM mirror_events;
DELETE FROM mirror_people;
ALTER TABLE mirror_events ADD COLUMN source TEXT;
ALTER TABLE mirror_events ADD COLUMN row_key TEXT;
CREATE INDEX mirror_events_row ON mirror_events (env, source, row_key);
CREATE INDEX mirror_events_name ON mirror_events (env, name, occurred_ms, person_id);
CREATE TABLE mirror_rows (
  env TEXT NOT NULL,
  source TEXT NOT NULL,
  row_key TEXT NOT NULL,
  hash TEXT NOT NULL,
  sent_at TEXT NOT NULL,
  PRIMARY KEY (env, source, row_key)
){{WITHOUT_ROWID}};
CREATE TABLE mirror_builds (
  env TEXT NOT NULL PRIMARY KEY,
  config TEXT NOT NULL,
  people BIGINT NOT NULL,
  attributes BIGINT NOT NULL,
  events BIGINT NOT NULL
);
CREATE TABLE mirror_work (
  env TEXT NOT NULL,
  source TEXT NOT NULL,
  row_key TEXT NOT NULL,
  hash TEXT,
  sent_at TEXT,
  known INTEGER NOT NULL,
  PRIMARY KEY (env, source, row_key)
){{WITHOUT_ROWID}};
CREATE TABLE mirror_touched (
  env TEXT NOT NULL,
  person_id TEXT NOT NULL,
  attrs INTEGER NOT NULL,
  PRIMARY KEY (env, person_id)
){{WITHOUT_ROWID}};
CREATE TABLE mirror_attr_work (
  env TEXT NOT NULL,
  person_id TEXT NOT NULL,
  field TEXT NOT NULL,
  value TEXT NOT NULL,
  num DOUBLE PRECISION,
  ts_ms BIGINT,
  PRIMARY KEY (env, person_id, field)
){{WITHOUT_ROWID}};
`,
};
