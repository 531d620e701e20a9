import type { Migration } from './migration.ts';

/**
 * Which fields of a changed person changed (issue 11, point 8).
 *
 * - `mirror_touched_fields`: per person in `mirror_touched`, the attributes whose mirrored value an update
 *   found different (written, changed or removed). An update that can tell exactly (the change log gave
 *   both versions of the person's attributes) marks the person `attrs = 4` in `mirror_touched` and lists
 *   the fields here; one that cannot marks `attrs = 2` (anything may have changed), as before. A segment
 *   that reads no event then decides again only the people of `attrs = 2` and those of `attrs = 4` with a
 *   listed field it reads: a sync that moved one field no longer re-decides every segment for everyone it
 *   touched. Emptied with `mirror_touched`.
 *
 * Unlogged on Postgres, as the rest of the mirror (migration 11).
 */
export const mirrorTouchedFields: Migration = {
  version: 12,
  name: 'mirror-touched-fields',
  sql: `
CREATE {{UNLOGGED}}TABLE mirror_touched_fields (
  env TEXT NOT NULL,
  person_id TEXT NOT NULL,
  field TEXT NOT NULL,
  PRIMARY KEY (env, person_id, field)
){{WITHOUT_ROWID}};
`,
};
