import type { Migration } from './migration.ts';

/**
 * Survey sends: the journal that makes `tidemark surveys run` safe to kill at any point.
 *
 * - `survey_sends`: one row per (target, run): the Qualtrics transaction batch its contacts go into
 *   (`batch_id`, derived from the send id so a resumed run finds the same batch), the phase reached
 *   (`staged` → `imported` → `distributed` → `recorded`, or `abandoned`), the distribution once
 *   Qualtrics acknowledged it, and the instants the distribution is created with. A run first finishes
 *   every send that is not `recorded`, then evaluates anew.
 * - `survey_send_members`: who the send was for, frozen when it was staged (so a resumed run never
 *   re-decides): `held_out = 1` rows are the holdout, recorded but never imported. `outcome`: null until
 *   the import's per-row report says `imported` or `failed` (failed rows are never recorded as invited).
 * - `survey_send_imports`: each import request of a send, written right after Qualtrics accepted it, so a
 *   resumed run polls it instead of importing the same contacts again.
 * - `survey_candidates.moment_ms`: the trigger event's time an eligibility run found, for send windows.
 */
export const surveySends: Migration = {
  version: 5,
  name: 'survey-sends',
  sql: `
CREATE TABLE survey_sends (
  env TEXT NOT NULL,
  send_id TEXT NOT NULL,
  target TEXT NOT NULL,
  survey_id TEXT NOT NULL,
  directory_id TEXT NOT NULL,
  mailing_list_id TEXT NOT NULL,
  batch_id TEXT NOT NULL,
  planned_at TEXT NOT NULL,
  send_at TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  phase TEXT NOT NULL,
  distribution_id TEXT,
  note TEXT,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (env, send_id)
);
CREATE INDEX survey_sends_open ON survey_sends (env, phase);
CREATE TABLE survey_send_members (
  env TEXT NOT NULL,
  send_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  person_id TEXT NOT NULL,
  held_out INTEGER NOT NULL,
  outcome TEXT,
  PRIMARY KEY (env, send_id, seq)
){{WITHOUT_ROWID}};
CREATE UNIQUE INDEX survey_send_members_person ON survey_send_members (env, send_id, person_id);
CREATE TABLE survey_send_imports (
  env TEXT NOT NULL,
  send_id TEXT NOT NULL,
  first_seq INTEGER NOT NULL,
  last_seq INTEGER NOT NULL,
  import_id TEXT NOT NULL,
  status TEXT NOT NULL,
  PRIMARY KEY (env, send_id, first_seq)
);
ALTER TABLE survey_candidates ADD COLUMN moment_ms BIGINT;
`,
};
