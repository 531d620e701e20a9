import type { Migration } from './migration.ts';

/**
 * Survey responses coming back (issue 13): what `tidemark responses pull` (and the webhook receiver) read,
 * and what became of each.
 *
 * - `survey_response_cursors`: per survey, the newest `recordedDate` up to which the ledger holds every
 *   response; the next export starts there (Qualtrics' `startDate` is inclusive, so the responses at the
 *   cursor itself come again and are found in the ledger).
 * - `survey_responses`: the ledger, one row per (survey, response), whichever way it arrived first. The
 *   primary key is what makes a response written once when it comes by webhook and by pull. `outcome`:
 *   `pending` (to be written; a crashed pull retries these before anything new), `written` (Customer.io
 *   acknowledged it), or one of the kept-out outcomes, counted and never written: `unknown_person`,
 *   `late`, `unmapped`, `no_answer`. `person_id` is the contact's extRef (null when it has none).
 */
export const surveyResponses: Migration = {
  version: 7,
  name: 'survey-responses',
  sql: `
CREATE TABLE survey_response_cursors (
  env TEXT NOT NULL,
  survey_id TEXT NOT NULL,
  cursor_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (env, survey_id)
);
CREATE TABLE survey_responses (
  env TEXT NOT NULL,
  survey_id TEXT NOT NULL,
  response_id TEXT NOT NULL,
  target TEXT NOT NULL,
  person_id TEXT,
  recorded_at TEXT NOT NULL,
  answer TEXT,
  reason_code TEXT,
  outcome TEXT NOT NULL,
  via TEXT NOT NULL,
  received_at TEXT NOT NULL,
  written_at TEXT,
  PRIMARY KEY (env, survey_id, response_id)
);
CREATE INDEX survey_responses_outcome ON survey_responses (env, outcome, survey_id);
`,
};
