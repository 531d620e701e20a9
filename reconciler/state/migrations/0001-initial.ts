import type { Migration } from './migration.ts';

/**
 * The first schema. Every table carries `env` (in SQLite it is always the file's environment), so the
 * same statements serve both backends. Timestamps are ISO-8601 UTC text; JSON is text; booleans are 0/1.
 */
export const initial: Migration = {
  version: 1,
  name: 'initial',
  sql: `
CREATE TABLE managed_objects (
  env TEXT NOT NULL,
  address TEXT NOT NULL,
  kind TEXT NOT NULL,
  remote_id TEXT NOT NULL,
  attributes TEXT NOT NULL,
  prevent_destroy INTEGER NOT NULL,
  spec_digest TEXT,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (env, address)
);
CREATE UNIQUE INDEX managed_objects_remote ON managed_objects (env, kind, remote_id);

CREATE TABLE state_locks (
  env TEXT NOT NULL PRIMARY KEY,
  lock_id TEXT NOT NULL,
  operation TEXT NOT NULL,
  who TEXT NOT NULL,
  pid INTEGER NOT NULL,
  hostname TEXT NOT NULL,
  session_pid INTEGER,
  acquired_at TEXT NOT NULL,
  heartbeat_at TEXT NOT NULL,
  expires_at TEXT NOT NULL
);

CREATE TABLE apply_runs (
  env TEXT NOT NULL,
  run_id TEXT NOT NULL,
  status TEXT NOT NULL,
  who TEXT NOT NULL,
  plan_digest TEXT,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  error TEXT,
  PRIMARY KEY (env, run_id)
);
CREATE INDEX apply_runs_status ON apply_runs (env, status);

CREATE TABLE apply_changes (
  env TEXT NOT NULL,
  run_id TEXT NOT NULL,
  address TEXT NOT NULL,
  ordinal INTEGER NOT NULL,
  action TEXT NOT NULL,
  status TEXT NOT NULL,
  remote_id TEXT,
  error TEXT,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (env, run_id, address),
  FOREIGN KEY (env, run_id) REFERENCES apply_runs (env, run_id) ON DELETE CASCADE
);

CREATE TABLE sync_runs (
  env TEXT NOT NULL,
  run_id TEXT NOT NULL,
  source TEXT NOT NULL,
  status TEXT NOT NULL,
  meta TEXT NOT NULL,
  counts TEXT NOT NULL,
  error TEXT,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  PRIMARY KEY (env, run_id)
);
CREATE INDEX sync_runs_source ON sync_runs (env, source, started_at);

CREATE TABLE cursors (
  env TEXT NOT NULL,
  name TEXT NOT NULL,
  value TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (env, name)
);

CREATE TABLE snapshot_sources (
  sid INTEGER NOT NULL PRIMARY KEY,
  env TEXT NOT NULL,
  source TEXT NOT NULL,
  stage_token TEXT,
  stage_state TEXT,
  stage_counts TEXT,
  staged_at TEXT,
  UNIQUE (env, source)
);

CREATE TABLE snapshot_entries (
  sid INTEGER NOT NULL,
  row_key TEXT NOT NULL,
  hash TEXT NOT NULL,
  ordering BIGINT,
  sent_at TEXT NOT NULL,
  PRIMARY KEY (sid, row_key)
){{WITHOUT_ROWID}};

CREATE TABLE snapshot_payloads (
  sid INTEGER NOT NULL,
  row_key TEXT NOT NULL,
  payload TEXT NOT NULL,
  PRIMARY KEY (sid, row_key)
){{WITHOUT_ROWID}};
`,
};
