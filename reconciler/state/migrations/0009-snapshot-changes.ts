import type { Migration } from './migration.ts';

/**
 * The snapshot's change log, for the audience mirror (issue 11, point 8).
 *
 * - `snapshot_changes`: per snapshot source, the keys whose entry an acknowledgement wrote or removed since
 *   the environment's mirror last read them. The merge of an ack session (and the response loop's writes)
 *   adds its keys in the transaction that changes the entries, but only once the environment has a mirror
 *   (a `mirror_builds` row): before that the first evaluation fills the mirror whole and needs no log, so a
 *   first sync of a million rows pays nothing for it. The mirror update reads these keys instead of
 *   comparing every snapshot entry with `mirror_rows` (three million rows joined to find ten thousand), and
 *   empties them in its own transaction. A set, not a journal: a key written twice between two updates is
 *   one row, and the update reads the entry as it is now. `old_payload` is the key's payload when it was
 *   first logged (NULL: it had none), so the payload the mirror was built from: the update finds a changed
 *   person's attributes as they were from it, and compares old with new without reading the mirror.
 * - `mirror_attr_before`: scratch space of one update, those attributes as they were.
 * - `audience_affected`: scratch space of one incremental segment evaluation, the people whose membership may
 *   have moved (state/audiences.ts `storeCandidates`). Found once into here, where the store used to run
 *   that query four times (to count, delete, select and count again); emptied before the transaction ends.
 * - `mirror_attr_work` is keyed field first now, as `mirror_attributes` is, and holds one row per changed
 *   person and field the mirror knows, `value` NULL where the person no longer has it, and `state`: how it
 *   compares with the mirror (0 the same, 1 different or to delete, 2 new). One pass in key order compares
 *   them all, where three passes in person order (count, delete, insert) read most pages of a 30-million-row
 *   table three times.
 *
 * The scratch tables are unlogged on Postgres (migration.ts).
 *
 * Mirrors built before this migration never had their changes logged, so they are forgotten here: the next
 * evaluation fills the mirror whole, once.
 */
export const snapshotChanges: Migration = {
  version: 9,
  name: 'snapshot-changes',
  sql: `
CREATE TABLE snapshot_changes (
  sid INTEGER NOT NULL,
  row_key TEXT NOT NULL,
  old_payload TEXT,
  PRIMARY KEY (sid, row_key)
){{WITHOUT_ROWID}};
CREATE {{UNLOGGED}}TABLE mirror_attr_before (
  env TEXT NOT NULL,
  field TEXT NOT NULL,
  person_id TEXT NOT NULL,
  value TEXT NOT NULL,
  num DOUBLE PRECISION,
  ts_ms BIGINT,
  PRIMARY KEY (env, field, person_id)
){{WITHOUT_ROWID}};
CREATE {{UNLOGGED}}TABLE audience_affected (
  env TEXT NOT NULL,
  person_id TEXT NOT NULL,
  PRIMARY KEY (env, person_id)
){{WITHOUT_ROWID}};
DROP TABLE mirror_attr_work;
CREATE {{UNLOGGED}}TABLE mirror_attr_work (
  env TEXT NOT NULL,
  field TEXT NOT NULL,
  person_id TEXT NOT NULL,
  value TEXT,
  num DOUBLE PRECISION,
  ts_ms BIGINT,
  state INTEGER,
  PRIMARY KEY (env, field, person_id)
){{WITHOUT_ROWID}};
DELETE FROM mirror_builds;
`,
};
