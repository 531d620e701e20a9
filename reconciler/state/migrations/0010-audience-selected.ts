import type { Migration } from './migration.ts';

/**
 * Scratch space of one incremental segment evaluation (issue 11, point 8).
 *
 * - `audience_selected`: the affected people (`audience_affected`) the segment's query selects now. With it
 *   the store deletes only the candidates that left and inserts only those that joined, where it deleted
 *   every affected candidate and inserted back the ones still selected: after 1% of 1,000,000 people
 *   changed, ten to twenty thousand candidate rows a segment written twice, most to hold what they held
 *   (each a page written, and on Postgres a dead tuple), against the hundreds that move. The rows the delete
 *   and the insert return are then exactly what moved, so the counts of a delta follow from them.
 *
 * Unlogged on Postgres (migration.ts); emptied before the transaction that fills it ends.
 */
export const audienceSelected: Migration = {
  version: 10,
  name: 'audience-selected',
  sql: `
CREATE {{UNLOGGED}}TABLE audience_selected (
  env TEXT NOT NULL,
  person_id TEXT NOT NULL,
  PRIMARY KEY (env, person_id)
){{WITHOUT_ROWID}};
`,
};
