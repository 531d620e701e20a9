import type { Migration } from './migration.ts';

/**
 * The people an update's event part found concerned (issue 11, point 8).
 *
 * On Postgres a mirror update commits its person part and its event part each in a transaction of its own,
 * side by side on two connections (state/audiences.ts `updatePart`). The person part writes
 * `mirror_touched`; had the event part inserted its people there too, the two could each hold a person the
 * other was about to insert and wait for each other. The event part lists them here instead, and the
 * update's last step moves them to `mirror_touched`. Rows left here by an interrupted update are moved over
 * by the next, marked "anything may have changed".
 *
 * Unlogged on Postgres, as the rest of the mirror (migration 11).
 */
export const mirrorTouchedEvents: Migration = {
  version: 14,
  name: 'mirror-touched-events',
  sql: `
CREATE {{UNLOGGED}}TABLE mirror_touched_events (
  env TEXT NOT NULL,
  person_id TEXT NOT NULL,
  PRIMARY KEY (env, person_id)
){{WITHOUT_ROWID}};
`,
};
