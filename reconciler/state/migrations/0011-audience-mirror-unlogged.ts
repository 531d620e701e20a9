import type { Migration } from './migration.ts';

/**
 * The audience mirror is unlogged on Postgres (issue 11, point 8): `mirror_people`, `mirror_attributes`,
 * `mirror_events`, `mirror_rows`, `mirror_touched`, `mirror_work` and `mirror_builds`.
 *
 * The mirror is derived data: every row of it is rebuilt from the snapshots (which stay logged) by the
 * next evaluation. Logged, each update after a sync wrote its changed rows twice, and after every
 * checkpoint a full image of each page it first touched: with 1,000,000 people and 1% changed, the
 * update's ~80,000 changed values lie each on its own page. Measured on one kept 1,000,000-people schema,
 * one re-sync round apart: the mirror update 7.91 s logged, 5.61 s unlogged.
 *
 * What a crash does: Postgres empties every unlogged table when it recovers from a crash (never on a clean
 * shutdown, never when a client dies). `mirror_builds` is among them, so an emptied mirror has no build
 * record, and the next evaluation fills it whole, drops every segment's evaluation mark and decides every
 * segment over everyone (state/audiences.ts `fillMirror`); the change logs are not written while there is
 * no build record (state/snapshot-changes.ts). The tables that are not derived stay logged: the snapshots,
 * the candidates, the published membership, the marks. Every reader of the mirror brings it up to date
 * first (audiences/evaluate.ts `refreshMirror`), so none reads an emptied one. A standby has no copy of an
 * unlogged table; tidemark reads its state from the primary.
 *
 * SQLite has no such thing: nothing changes there.
 */
export const audienceMirrorUnlogged: Migration = {
  version: 11,
  name: 'audience-mirror-unlogged',
  sql: `
{{SET_UNLOGGED:mirror_builds}}
{{SET_UNLOGGED:mirror_rows}}
{{SET_UNLOGGED:mirror_people}}
{{SET_UNLOGGED:mirror_attributes}}
{{SET_UNLOGGED:mirror_events}}
{{SET_UNLOGGED:mirror_touched}}
{{SET_UNLOGGED:mirror_work}}
`,
};
