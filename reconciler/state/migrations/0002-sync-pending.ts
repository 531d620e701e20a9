import type { Migration } from './migration.ts';

/**
 * Entries a sync meant to send that Customer.io did not take for good: refused for a transient reason
 * (a 207 with a retryable reason), or never acknowledged (unknown outcome, or not sent because sending
 * stopped). Each is sent on the source's next run even when that run's read no longer holds the row (a
 * file of deltas, an incremental query), until a newer row of the same key supersedes it.
 *
 * One row per key (the latest wins): what the snapshot would have recorded had the entry been
 * acknowledged (hash, ordering, payload, so an acknowledgement next run advances the snapshot exactly
 * as it would have this run), where the row came from (for the rejects file, if it is later refused for
 * good), and why it waits (a reason code, never Customer.io's message, which may quote a value).
 */
export const syncPending: Migration = {
  version: 2,
  name: 'sync_pending',
  sql: `
CREATE TABLE sync_pending (
  sid INTEGER NOT NULL,
  row_key TEXT NOT NULL,
  hash TEXT NOT NULL,
  ordering BIGINT,
  payload TEXT NOT NULL,
  location TEXT NOT NULL,
  reason TEXT NOT NULL,
  queued_at TEXT NOT NULL,
  PRIMARY KEY (sid, row_key)
){{WITHOUT_ROWID}};
`,
};
