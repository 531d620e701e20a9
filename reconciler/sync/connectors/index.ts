/**
 * Connectors: where source rows come from. Each connector type is one module exporting a factory that
 * returns a `Connector` (see ../types.ts: `read(ctx)` streams rows and releases its resources when the
 * consumer stops early). Adding a type means a schema variant in spec/schema/source.ts, a module here and
 * a case below; the switch is exhaustive, so the compiler points at what is missing.
 */
import { InternalError } from '../../core/diagnostics.ts';
import type { SourceSpec } from '../../spec/schema/index.ts';
import type { Connector, ConnectorContext, SourceRow } from '../types.ts';
import { createCsvConnector, type CsvOptions } from './csv.ts';
import { createNdjsonConnector, type NdjsonOptions } from './ndjson.ts';
import { createPostgresConnector, type PostgresOptions } from './postgres.ts';

export { checkColumns, mappedColumns } from './columns.ts';
export { ConnectorError, type ConnectorErrorCode } from './errors.ts';
export { ROW_CODE_KEY, ROW_ERROR_KEY } from './rows.ts';
export { bindLastSyncAt, createPostgresConnector, type PostgresOptions } from './postgres.ts';
export { createCsvConnector, type CsvOptions } from './csv.ts';
export { createNdjsonConnector, type NdjsonOptions } from './ndjson.ts';

/** Per-type tuning; everything is optional. */
export interface ConnectorOptions {
  /**
   * The source's declared timezone (`SourceSpec.timezone`). Postgres uses it as the session TimeZone so a
   * naive timestamp column compares correctly with `:last_sync_at`; without it the session runs in UTC.
   */
  timezone?: string;
  postgres?: Omit<PostgresOptions, 'timezone'>;
  csv?: CsvOptions;
  ndjson?: NdjsonOptions;
}

/** The connector for a Source's `connector` block. */
export function createConnector(spec: SourceSpec['connector'], options: ConnectorOptions = {}): Connector {
  switch (spec.type) {
    case 'postgres':
      return createPostgresConnector(spec, { ...options.postgres, ...(options.timezone ? { timezone: options.timezone } : {}) });
    case 'csv':
      return createCsvConnector(spec, options.csv);
    case 'ndjson':
      return createNdjsonConnector(spec, options.ndjson);
    default: {
      // Unreachable for a validated spec: the schema's discriminated union lists every type handled above.
      const unknown: never = spec;
      throw new InternalError(`unknown connector type: ${JSON.stringify((unknown as { type?: unknown }).type)}`);
    }
  }
}

/** A connector's rows a chunk at a time: its own `readBatches` when it has one, else `read` grouped. */
export async function* readBatches(connector: Connector, ctx: ConnectorContext, size = 1000): AsyncGenerator<SourceRow[]> {
  if (connector.readBatches) {
    yield* connector.readBatches(ctx);
    return;
  }
  let batch: SourceRow[] = [];
  for await (const row of connector.read(ctx)) {
    batch.push(row);
    if (batch.length >= size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

