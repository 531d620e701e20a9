import { z } from 'zod';
import { Cron, Duration, EnvVarName, Name, Percentage, specBase, TimeZone } from './common.ts';

const PostgresConnector = z.strictObject({
  type: z.literal('postgres').meta({ description: 'Read rows with a SQL query from PostgreSQL (e.g. the warehouse).' }),
  url_env: EnvVarName.meta({ description: 'Environment variable holding the connection URL.' }),
  query: z
    .string()
    .min(1)
    .meta({ description: 'SQL returning one row per record; :last_sync_at is bound to the start of the last successful run, e.g. where updated_at > :last_sync_at.' }),
});
/**
 * A file's text encoding, as a TextDecoder label (`latin1`, `utf-16le`, `shift_jis`, …). Checked against
 * what this runtime's TextDecoder supports, so a typo fails validation instead of the nightly run.
 */
const FileEncoding = z
  .string()
  .min(1)
  .refine(
    (label) => {
      try {
        new TextDecoder(label.trim());
        return true;
      } catch {
        return false;
      }
    },
    { message: 'not an encoding this runtime can decode (use a label such as utf-8, latin1, windows-1252, utf-16le, utf-16be)' },
  )
  .meta({ description: 'Text encoding of the file (default utf-8; a byte-order mark overrides it), e.g. latin1, utf-16le.' });

const FilePath = z
  .string()
  .min(1)
  .meta({ description: 'Path of the file, relative to the directory tidemark runs in, e.g. specs/data/loyalty_export.csv.' });

const CsvConnector = z.strictObject({
  type: z.literal('csv').meta({ description: 'Read a CSV file with a header row.' }),
  path: FilePath,
  delimiter: z.string().length(1).optional().meta({ description: 'The one character between columns. Default , (comma); e.g. ; or a tab.' }),
  encoding: FileEncoding.optional(),
});
const NdjsonConnector = z.strictObject({
  type: z.literal('ndjson').meta({ description: 'Read a newline-delimited JSON file: one JSON object per line.' }),
  path: FilePath,
  encoding: FileEncoding.optional(),
});

export const Connector = z
  .discriminatedUnion('type', [PostgresConnector, CsvConnector, NdjsonConnector])
  .meta({ description: 'Where the rows come from: a PostgreSQL query, a CSV file or an NDJSON file, chosen by `type`.' });

export const LatencyNeed = z
  .union([z.enum(['realtime', 'minutes', 'hourly', 'daily']), Duration])
  .meta({ description: 'How stale the data may be for its use case: minutes, hourly, daily, or a duration.' });

export const SourceSpec = z
  .strictObject({
    kind: z.literal('Source').meta({ description: 'Always Source: this document declares a scheduled sync into Customer.io.' }),
    ...specBase,
    system: Name.meta({ description: 'Owner label of the system this data comes from; fields name it as owner.' }),
    connector: Connector,
    schedule: Cron,
    records: z
      .enum(['person', 'event', 'object'])
      .meta({ description: 'What each row becomes in Customer.io: person (attributes of a person), event (one event per row, see `event`) or object (see `object`).' }),
    identity: z
      .strictObject({
        column: z.string().min(1).meta({ description: 'The column that identifies the person each row belongs to, e.g. customer_id.' }),
        as: z.enum(['id', 'email', 'phone']).meta({ description: 'Which identifier the column holds: id (your customer id), email or phone.' }),
      })
      .meta({ description: 'How a row is matched to a Customer.io person.' }),
    event: z
      .strictObject({
        name: Name.meta({ description: 'Customer.io event name each row is sent as, declared in Fields, e.g. order_delivered.' }),
        timestamp_column: z.string().min(1).meta({ description: 'The column holding when the event happened, e.g. delivered_at.' }),
        id_columns: z.array(z.string().min(1)).min(1).meta({ description: 'Columns that together make each event unique, so a row read twice is sent once, e.g. [fulfillment_id].' }),
      })
      .optional()
      .meta({ description: 'For records: event: which event each row is and when it happened.' }),
    object: z
      .strictObject({
        type: Name.meta({ description: 'Name of the Customer.io object type, e.g. subscription.' }),
        type_id: z.string().regex(/^\d+$/, 'the Customer.io object type id, a number such as "1"').meta({ description: 'Customer.io object type id (Settings → Objects).' }),
        id_column: z.string().min(1).meta({ description: 'The column holding each object’s id.' }),
      })
      .optional()
      .meta({ description: 'For records: object: which Customer.io object type each row updates.' }),
    fields: z
      .record(Name, z.string().min(1))
      .meta({ description: 'Field name (declared in Fields) → source column, e.g. order_count: order_count. Use {} for none.' }),
    ordering: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'Timestamp column: when several rows update the same record, the one with the latest value wins, e.g. updated_at.' }),
    timezone: TimeZone.optional().meta({ description: 'IANA time zone of timestamps without an offset in the source, e.g. UTC or America/Chicago.' }),
    null_policy: z
      .enum(['protect', 'overwrite'])
      .default('protect')
      .meta({ description: 'protect: a blank erases a value only if the field is declared clearable; overwrite: blanks erase (flagged by SYNC001).' }),
    freshness: z
      .strictObject({
        max_age: Duration.meta({ description: 'The source is stale when its last successful run started longer ago than this, e.g. 2h for an hourly sync.' }),
      })
      .optional()
      .meta({ description: 'The freshness SLO: status alerts when this source is stale, and segments with a freshness guard suppress their members meanwhile.' }),
    latency_needed: LatencyNeed.optional(),
    use_case: z.string().optional().meta({ description: 'What this data powers, e.g. winback_suppression, cart_recovery.' }),
    stamp_last_sent: Name.optional().meta({
      description:
        'Attribute set to the run time on every person this source sends (new or changed). People whose rows did not change keep their older stamp: it says when tidemark last changed them, not when it last read them (source freshness answers that).',
    }),
    // The old name promised "last synced", but only sent people were stamped, so unchanged people looked stale.
    stamp_last_synced: z
      .never({ error: 'stamp_last_synced was renamed stamp_last_sent: it stamps the people a run sends, not everyone it read; use the source’s freshness for "last synced"' })
      .optional()
      .meta({ description: 'Renamed stamp_last_sent (it only ever stamped the people a run sends).' }),
    max_rejected: z
      .union([Percentage, z.number().min(0).max(1)])
      .optional()
      .meta({ description: 'Most rows a run may reject (locally, or refused by Customer.io for good) before it fails: a percentage like 5% or a share 0..1 of the rows read. Default 5%.' }),
    prevent_destroy: z
      .boolean()
      .optional()
      .meta({ description: 'Accepted for symmetry with Segment and SurveyTarget; a Source manages no Customer.io or Qualtrics object, so it has no effect today.' }),
  })
  .meta({ title: 'tidemark Source', description: 'A scheduled sync from a system of record into Customer.io.' });

export type SourceSpec = z.infer<typeof SourceSpec>;
