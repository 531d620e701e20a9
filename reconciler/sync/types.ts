/**
 * The data plane's row model. A connector streams raw rows; `normalize` turns each into a typed,
 * identity-resolved row or a reject with a reason; the engine (run.ts) diffs, batches and sends.
 */
import type { FieldDef, SourceSpec, WorkspaceSpec } from '../spec/schema/index.ts';

/** One raw row as the source gave it. */
export interface SourceRow {
  /** Where the row came from, for the rejects file (never logs): `data/returns.ndjson:12`, `query row 1234`. */
  location: string;
  /** Column name → raw value (strings from CSV; JSON values from NDJSON; driver values from Postgres). */
  values: Record<string, unknown>;
}

export interface ConnectorContext {
  /** Start of the last successful run, bound to :last_sync_at (null on the first run: everything). */
  lastSyncAt: Date | null;
  /** Paths in specs are relative to this folder. */
  cwd: string;
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Told after each read how far through the source the connector is, when it knows (files: bytes). */
  onPosition?: (done: number, total: number) => void;
  /**
   * The columns the spec reads (`mappedColumns`). A connector whose input names its columns up front (a
   * CSV header, a query's result columns) fails before delivering any row when one of them is missing:
   * a renamed column would otherwise read as blank in every row, and erase a clearable field everywhere.
   */
  columns?: readonly MappedColumn[];
}

/** A column the spec reads, and the spec key that names it (for the error message). */
export interface MappedColumn {
  column: string;
  /** e.g. `fields.phone`, `identity.column`, `ordering`, `event.id_columns`. */
  key: string;
}

/** A source of rows. Implementations stream: they never hold all rows in memory. */
export interface Connector {
  readonly type: string;
  /** Rows in source order. The iterator must release its resources when the consumer stops early. */
  read(ctx: ConnectorContext): AsyncIterable<SourceRow>;
  /**
   * The same rows in source order, a chunk at a time (what the engine reads: one await per chunk instead
   * of per row). Optional; `readBatches` in connectors/index.ts groups `read` when a connector lacks it.
   */
  readBatches?(ctx: ConnectorContext): AsyncIterable<SourceRow[]>;
}

/** A value as sent to Customer.io: timestamps are unix seconds; `null` means "erase". */
export type SyncValue = string | number | boolean | null;

export interface NormalizeContext {
  source: SourceSpec;
  fields: ReadonlyMap<string, FieldDef>;
  normalization: WorkspaceSpec['normalization'];
  primary: 'id' | 'email';
}

export interface NormalizedRow {
  ok: true;
  location: string;
  /** The normalised identity (the primary identifier's value), or the object id for object sources. */
  key: string;
  /** Latest-timestamp-wins ordering in epoch milliseconds (from the ordering column), or null. */
  ordering: number | null;
  /** Field → normalised value, for mapped fields whose source value is present (not blank). */
  values: Record<string, SyncValue>;
  /** Mapped fields whose source value was null or blank (the null policy decides what happens). */
  blanks: string[];
  /**
   * Mapped fields whose column the row does not have at all (an NDJSON object without the key): not
   * provided, so never an erase. Customer.io keeps what it holds. Absent when there are none.
   */
  absent?: string[];
  /** For event sources: the event to send, and the person (normalised identity) it belongs to. */
  event?: { name: string; id: string; timestamp: number; person: string };
  /** For object sources: the object, and the person it relates to when the row carries the identity column. */
  object?: { type: string; id: string; person?: string };
  /** Non-fatal notes for the report, e.g. a DST-ambiguous local time resolved to the earlier instant. */
  notes?: string[];
}

export interface RejectedRow {
  ok: false;
  location: string;
  /** Stable reason code, e.g. `identity_missing`, `identity_invalid_email`, `type_mismatch`, `timestamp_invalid`. */
  code: string;
  /** A sentence for the person fixing the source (may name the column, never echoes PII values into logs). */
  reason: string;
  column?: string;
  field?: string;
}

export type NormalizeResult = NormalizedRow | RejectedRow;
