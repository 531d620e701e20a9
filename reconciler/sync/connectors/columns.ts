/**
 * The columns a source spec reads, and the check that the input has them all, made before the first row
 * is delivered: a mapped column missing from a CSV header or a query's results would read as blank in
 * every row. Pure.
 */
import type { SourceSpec } from '../../spec/schema/index.ts';
import type { MappedColumn } from '../types.ts';
import { ConnectorError } from './errors.ts';

/** Every column the source spec reads, each with the first spec key that names it. */
export function mappedColumns(source: SourceSpec): MappedColumn[] {
  const out = new Map<string, string>();
  const add = (column: string | undefined, key: string) => {
    if (column !== undefined && !out.has(column)) out.set(column, key);
  };
  add(source.identity.column, 'identity.column');
  if (source.records === 'event' && source.event) {
    add(source.event.timestamp_column, 'event.timestamp_column');
    for (const c of source.event.id_columns) add(c, 'event.id_columns');
  }
  if (source.records === 'object' && source.object) add(source.object.id_column, 'object.id_column');
  for (const [field, column] of Object.entries(source.fields)) add(column, `fields.${field}`);
  add(source.ordering, 'ordering');
  return [...out].map(([column, key]) => ({ column, key }));
}

/**
 * Fails the read when columns the spec maps are not among those the input has (`where` starts the
 * sentence: `The header of data/x.csv`). Column names are the spec's and the input's, never row values.
 */
export function checkColumns(connector: string, where: string, present: readonly string[], wanted: readonly MappedColumn[] | undefined): void {
  if (!wanted?.length) return;
  const have = new Set(present);
  const missing = wanted.filter((w) => !have.has(w.column));
  if (missing.length === 0) return;
  const list = missing.map((m) => `"${m.column}" (${m.key})`).join(', ');
  const shown = present.length > 20 ? `${present.slice(0, 20).join(', ')}, …` : present.join(', ');
  throw new ConnectorError(
    connector,
    'format',
    `${where} has no column${missing.length > 1 ? 's' : ''} ${list}, which the source maps; nothing was sent. Its columns are: ${shown || '(none)'}.`,
  );
}
