import type { Migration } from './migration.ts';

/**
 * Surveys: who was invited (or deliberately held out), and who an eligibility run found.
 *
 * - `survey_invitations`: one row per invitation tidemark recorded for a survey target, written only
 *   after Qualtrics acknowledged it; `held_out = 1` rows record a holdout decision (the person was
 *   eligible and is deliberately not surveyed). Frequency caps count the `held_out = 0` rows;
 *   `invited_at` is ISO-8601 UTC text (sorts as time). `distribution_id` is the Qualtrics distribution.
 *   The index answers "this person's invitations since T", which every cap check asks.
 * - `survey_candidates`: scratch space of the last eligibility run (per environment): the eligible people
 *   per target (`held_out = 0`) and the held-out ones (`held_out = 1`), for the export step to page through.
 */
export const surveyInvitations: Migration = {
  version: 4,
  name: 'survey-invitations',
  sql: `
CREATE TABLE survey_invitations (
  env TEXT NOT NULL,
  target TEXT NOT NULL,
  person_id TEXT NOT NULL,
  invited_at TEXT NOT NULL,
  held_out INTEGER NOT NULL,
  distribution_id TEXT,
  PRIMARY KEY (env, target, person_id, invited_at)
){{WITHOUT_ROWID}};
CREATE INDEX survey_invitations_person ON survey_invitations (env, person_id, invited_at);
CREATE TABLE survey_candidates (
  env TEXT NOT NULL,
  target TEXT NOT NULL,
  person_id TEXT NOT NULL,
  held_out INTEGER NOT NULL,
  PRIMARY KEY (env, target, person_id)
){{WITHOUT_ROWID}};
CREATE INDEX survey_candidates_person ON survey_candidates (env, person_id);
`,
};
