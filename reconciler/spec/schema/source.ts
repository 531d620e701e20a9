import { z } from 'zod';
import { Cron, Duration, EnvVarName, Name, Percentage, specBase, TimeZone } from './common.ts';

const PostgresConnector = z.strictObject({
  type: z.literal('postgres'),
  url_env: EnvVarName.meta({ description: 'Environment variable holding the connection URL.' }),
  query: z.string().min(1).meta({ description: 'SQL; :last_sync_at is bound to the start of the last successful run.' }),
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

const CsvConnector = z.strictObject({
  type: z.literal('csv'),
  path: z.string().min(1),
  delimiter: z.string().length(1).optional(),
  encoding: FileEncoding.optional(),
});
const NdjsonConnector = z.strictObject({
  type: z.literal('ndjson'),
  path: z.string().min(1),
  encoding: FileEncoding.optional(),
});

export const Connector = z.discriminatedUnion('type', [PostgresConnector, CsvConnector, NdjsonConnector]);

export const LatencyNeed = z
  .union([z.enum(['realtime', 'minutes', 'hourly', 'daily']), Duration])
  .meta({ description: 'How stale the data may be for its use case: minutes, hourly, daily, or a duration.' });

export const SourceSpec = z
  .strictObject({
    kind: z.literal('Source'),
    ...specBase,
    system: Name.meta({ description: 'Owner label of the system this data comes from; fields name it as owner.' }),
    connector: Connector,
    schedule: Cron,
    records: z.enum(['person', 'event', 'object']).meta({ description: 'person attributes, events, or objects.' }),
    identity: z.strictObject({
      column: z.string().min(1),
      as: z.enum(['id', 'email', 'phone']).meta({ description: 'Which identifier the column holds.' }),
    }),
    event: z
      .strictObject({
        name: Name,
        timestamp_column: z.string().min(1),
        id_columns: z.array(z.string().min(1)).min(1).meta({ description: 'Columns that make each event unique (dedupe).' }),
      })
      .optional(),
    object: z
      .strictObject({
        type: Name,
        type_id: z.string().regex(/^\d+$/, 'the Customer.io object type id, a number such as "1"').meta({ description: 'Customer.io object type id (Settings → Objects).' }),
        id_column: z.string().min(1),
      })
      .optional(),
    fields: z.record(Name, z.string().min(1)).meta({ description: 'Field name → source column.' }),
    ordering: z.string().min(1).optional().meta({ description: 'Column whose latest timestamp wins.' }),
    timezone: TimeZone.optional().meta({ description: 'IANA timezone of naive timestamps in the source.' }),
    null_policy: z
      .enum(['protect', 'overwrite'])
      .default('protect')
      .meta({ description: 'protect: a blank erases a value only if the field is declared clearable; overwrite: blanks erase (flagged by SYNC001).' }),
    freshness: z.strictObject({ max_age: Duration }).optional(),
    latency_needed: LatencyNeed.optional(),
    use_case: z.string().optional().meta({ description: 'What this data powers, e.g. winback_suppression, cart_recovery.' }),
    stamp_last_synced: Name.optional().meta({ description: 'Attribute set to the run time on every person this source sends.' }),
    max_rejected: z
      .union([Percentage, z.number().min(0).max(1)])
      .optional()
      .meta({ description: 'Most rows a run may reject (locally, or refused by Customer.io for good) before it fails: a percentage like 5% or a share 0..1 of the rows read. Default 5%.' }),
    prevent_destroy: z.boolean().optional(),
  })
  .meta({ title: 'tidemark Source', description: 'A scheduled sync from a system of record into Customer.io.' });

export type SourceSpec = z.infer<typeof SourceSpec>;
