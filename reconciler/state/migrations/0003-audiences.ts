import type { Migration } from './migration.ts';

/**
 * Audiences: the mirror segments are evaluated from, and what was published.
 *
 * - `mirror_people`, `mirror_attributes`, `mirror_events`: what tidemark delivered to Customer.io and
 *   Customer.io acknowledged, rebuilt from the sync snapshots before an evaluation (the layout the segment
 *   compiler targets: reconciler/audiences/README.md). One attribute row per person and field; a blank has
 *   no row. Timestamps in epoch milliseconds.
 * - `audience_candidates`: the members an evaluation found, per segment, before anything is published.
 * - `audience_members`: the membership last published to a segment's Customer.io manual segment; a row
 *   is added or removed only after Customer.io acknowledged that id's request.
 * - `ui_segment_members`: members of segments built in Customer.io's UI, read through the App API, so
 *   conditions can reference them.
 */
export const audiences: Migration = {
  version: 3,
  name: 'audiences',
  sql: `
CREATE TABLE mirror_people (
  env TEXT NOT NULL,
  person_id TEXT NOT NULL,
  PRIMARY KEY (env, person_id)
){{WITHOUT_ROWID}};
CREATE TABLE mirror_attributes (
  env TEXT NOT NULL,
  person_id TEXT NOT NULL,
  field TEXT NOT NULL,
  value TEXT NOT NULL,
  num DOUBLE PRECISION,
  ts_ms BIGINT,
  PRIMARY KEY (env, person_id, field)
){{WITHOUT_ROWID}};
CREATE TABLE mirror_events (
  env TEXT NOT NULL,
  person_id TEXT NOT NULL,
  name TEXT NOT NULL,
  occurred_ms BIGINT NOT NULL
);
CREATE INDEX mirror_events_person ON mirror_events (env, person_id, name, occurred_ms);
CREATE TABLE audience_candidates (
  env TEXT NOT NULL,
  segment TEXT NOT NULL,
  person_id TEXT NOT NULL,
  PRIMARY KEY (env, segment, person_id)
){{WITHOUT_ROWID}};
CREATE TABLE audience_members (
  env TEXT NOT NULL,
  segment TEXT NOT NULL,
  person_id TEXT NOT NULL,
  published_at TEXT NOT NULL,
  PRIMARY KEY (env, segment, person_id)
){{WITHOUT_ROWID}};
CREATE TABLE ui_segment_members (
  env TEXT NOT NULL,
  segment TEXT NOT NULL,
  person_id TEXT NOT NULL,
  PRIMARY KEY (env, segment, person_id)
){{WITHOUT_ROWID}};
`,
};
