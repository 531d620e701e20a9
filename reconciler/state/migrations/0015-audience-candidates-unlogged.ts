import type { Migration } from './migration.ts';

/**
 * `audience_candidates` is unlogged on Postgres (issue 11, point 8), as the mirror is (migration 11).
 *
 * The candidates are derived: each is a segment's query over the mirror at an instant, and every reader
 * evaluates the segments before it reads them (the audience, survey and plan jobs). Logged, an incremental
 * evaluation wrote a full image of each page it first touched after a checkpoint: its leavers and joiners
 * (1,000,000 people, 1% changed: ~33,000 of 4.6 million rows) lie on as many heap and index pages, and the
 * first evaluation after a bulk publish wrote 285 MB of WAL, almost all of it these pages.
 *
 * What a crash does: Postgres empties every unlogged table when it recovers from a crash, the candidates
 * with the mirror and its build record. The next evaluation fills the mirror whole, which drops every
 * segment's evaluation mark (state/audiences.ts `fillMirror`), so every segment is decided whole again
 * before anything reads its candidates; what was published (`audience_members`) stays logged, so the
 * publish after it sends only what moved.
 *
 * SQLite has no such thing: nothing changes there.
 */
export const audienceCandidatesUnlogged: Migration = {
  version: 15,
  name: 'audience-candidates-unlogged',
  sql: `
{{SET_UNLOGGED:audience_candidates}}
`,
};
