import type { Migration } from './migration.ts';

/**
 * The mirror's attribute values and key records leave a tenth of each page free on Postgres (issue 11,
 * point 8).
 *
 * An update after a sync rewrites the changed values of a few thousand people, each value on its own page
 * of the field-first table (1,000,000 people, 1% changed: ~80,000 values). Packed full, as a bulk fill
 * leaves it, every such update wrote the new version of the row on another page and a new entry in the
 * key's index: three pages dirtied per value. With room on the page Postgres keeps the new version beside
 * the old one and the index as it is (a HOT update). Measured on a copy of the bench's 11,400,024 rows,
 * 79,940 values rewritten: 1.56 s packed, 1.15 s with fillfactor 90 (every update HOT, against 273 of
 * 159,880 packed). The table is a tenth larger for it; a whole fill writes new pages, which take the
 * setting, and pages written before it fill as they are rewritten.
 *
 * `mirror_rows` likewise: an update rewrites the hash and acknowledgement time of every changed key in place
 * (state/audiences.ts), ~10,000 keys of a person source after 1% of 1,000,000 people changed.
 *
 * SQLite rewrites a row in place on its own page: nothing changes there.
 */
export const mirrorFillfactor: Migration = {
  version: 13,
  name: 'mirror-fillfactor',
  sql: `
{{SET_FILLFACTOR:mirror_attributes:90}}
{{SET_FILLFACTOR:mirror_rows:90}}
`,
};
