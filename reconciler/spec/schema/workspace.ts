import { z } from 'zod';
import { Duration, EnvVarName, IdentifierKind, Name, TimeZone, specBase } from './common.ts';

const CustomerioEnvironment = z.strictObject({
  region: z.enum(['us', 'eu']).meta({ description: 'Customer.io data region; picks the API hosts.' }),
  site_id_env: EnvVarName.default('CUSTOMERIO_SITE_ID').meta({ description: 'Environment variable holding the Customer.io Track API site id. Default CUSTOMERIO_SITE_ID.' }),
  track_api_key_env: EnvVarName.default('CUSTOMERIO_TRACK_API_KEY').meta({
    description: 'Environment variable holding the Customer.io Track API key. Default CUSTOMERIO_TRACK_API_KEY.',
  }),
  app_api_key_env: EnvVarName.default('CUSTOMERIO_APP_API_KEY').meta({
    description: 'Environment variable holding the Customer.io App API key (segments). Default CUSTOMERIO_APP_API_KEY.',
  }),
  track_requests_per_second: z.number().int().positive().max(1000).optional()
    .meta({ description: 'Client-side Track API rate limit (the documented soft limit is 1000/s).' }),
});

const QualtricsEnvironment = z.strictObject({
  datacenter: z
    .string()
    .regex(/^[a-z0-9]+$/, 'a datacenter id such as iad1, fra1 or sjc1')
    .meta({ description: 'Qualtrics datacenter id, the first part of your API host (iad1 in iad1.qualtrics.com), e.g. fra1.' }),
  directory_id: z
    .string()
    .regex(/^POOL_[A-Za-z0-9]+$/, 'an XM Directory id such as POOL_2a3b4c5d6e7f8g9')
    .meta({ description: 'The XM Directory that holds the mailing lists, e.g. POOL_2a3b4c5d6e7f8g9.' }),
  api_token_env: EnvVarName.default('QUALTRICS_API_TOKEN').meta({ description: 'Environment variable holding the Qualtrics API token. Default QUALTRICS_API_TOKEN.' }),
  responses_webhook_url: z
    .url({ protocol: /^https?$/ })
    .optional()
    .meta({ description: 'Where Qualtrics delivers completed responses for survey targets with responses.webhook.' }),
  responses_webhook_secret_env: EnvVarName.default('QUALTRICS_WEBHOOK_SECRET').meta({
    description:
      'Environment variable holding the shared key Qualtrics signs webhook deliveries with (HMAC-SHA512), sent when the event subscription is created and checked by `tidemark responses serve`. Default QUALTRICS_WEBHOOK_SECRET. On the embedded sandbox, when unset, a key is generated and kept in the sandbox state folder.',
  }),
});

const Environment = z.strictObject({
  description: z.string().optional().meta({ description: 'What this environment is for, e.g. "Test workspace, safe to reset".' }),
  customerio: CustomerioEnvironment.meta({ description: 'The Customer.io workspace of this environment: its region and the environment variables holding its keys.' }),
  qualtrics: QualtricsEnvironment.optional().meta({ description: 'The Qualtrics account of this environment; needed only when there are survey targets.' }),
  protected: z.boolean().optional().meta({ description: 'Applies need an explicit approval even in CI.' }),
});

const StateConfig = z.discriminatedUnion('backend', [
  z.strictObject({
    backend: z.literal('embedded').meta({ description: 'Keep state in files on this machine (one operator, or a persistent self-hosted runner: a live run in CI refuses it, see docs/ci-state.md).' }),
    path: z.string().default('.tidemark').meta({ description: 'Directory of the embedded state store.' }),
  }),
  z.strictObject({
    backend: z.literal('postgres').meta({ description: 'Keep state in a PostgreSQL database shared by the team and CI.' }),
    url_env: EnvVarName.default('TIDEMARK_DATABASE_URL').meta({ description: 'Environment variable holding the database URL. Default TIDEMARK_DATABASE_URL.' }),
  }),
]).meta({ description: 'Where tidemark records what it manages and sync history: embedded (default, directory .tidemark) or postgres.' });

const Normalization = z.strictObject({
  email: z
    .strictObject({
      trim: z.boolean().default(true).meta({ description: 'Remove surrounding spaces. Default true.' }),
      lowercase: z.boolean().default(true).meta({ description: 'Compare and send emails in lower case. Default true.' }),
    })
    .optional()
    .meta({ description: 'How email addresses are normalised before matching.' }),
  phone: z
    .strictObject({
      format: z.literal('e164').meta({ description: 'Always e164: international format such as +14155550123.' }),
      default_country: z
        .string()
        .regex(/^[A-Z]{2}$/, 'an ISO 3166 country code such as US or GB')
        .meta({ description: 'Country assumed for numbers without a country code, as an ISO 3166 code, e.g. US or GB.' }),
    })
    .optional()
    .meta({ description: 'Phone numbers are converted to E.164 using this default country.' }),
});

const FrequencyCap = z.strictObject({
  max: z.number().int().positive().meta({ description: 'Most surveys one person may get in the period, e.g. 1.' }),
  per: Duration.meta({ description: 'The period of the cap, e.g. 30d.' }),
});

export const WorkspaceSpec = z
  .strictObject({
    kind: z.literal('Workspace').meta({ description: 'Always Workspace: there is one Workspace document per project.' }),
    ...specBase,
    identity: z.strictObject({
      primary: IdentifierKind,
      immutable_id: z
        .string()
        .optional()
        .meta({ description: 'Name of the immutable customer id field, when one exists (e.g. customer_id).' }),
    }).meta({ description: 'How people are identified in Customer.io.' }),
    timezone: TimeZone.optional().meta({ description: 'The brand’s IANA time zone, e.g. America/New_York: survey send windows without their own zone are read in it.' }),
    normalization: Normalization.optional().meta({ description: 'How emails and phone numbers are cleaned before they are matched and sent.' }),
    systems: z
      .record(
        Name,
        z.strictObject({
          description: z.string().optional().meta({ description: 'What the system is and how its data reaches Customer.io.' }),
          realtime: z.boolean().optional().meta({ description: 'true: its data arrives in Customer.io within seconds (e.g. a native integration). Default false.' }),
        }),
      )
      .optional()
      .meta({ description: 'Systems that own fields but are not synced by tidemark (e.g. Shopify via its native integration).' }),
    environments: z
      .record(Name, Environment)
      .refine((e) => Object.keys(e).length > 0, 'declare at least one environment')
      .meta({ description: 'The environments, by name (e.g. staging, production): each one’s Customer.io workspace and Qualtrics account.' }),
    default_environment: Name.optional().meta({ description: 'Environment used when a command is given no --env, e.g. staging.' }),
    state: StateConfig.optional(),
    surveys: z
      .strictObject({
        frequency_cap: FrequencyCap.optional().meta({ description: 'Default cap across all survey targets, e.g. { max: 1, per: 30d }.' }),
        max_payload_fields: z
          .number()
          .int()
          .positive()
          .max(50)
          .default(8)
          .meta({ description: 'Most fields a survey target may send as payload (1–50). Default 8.' }),
        response_window: z
          .strictObject({
            min: Duration.meta({ description: 'Shortest allowed response window. Default 48h.' }),
            max: Duration.meta({ description: 'Longest allowed response window. Default 96h.' }),
          })
          .optional()
          .meta({ description: 'Allowed range of survey targets’ response_window. Default 48h–96h.' }),
        delay_windows: z
          .record(
            z.string(),
            z.strictObject({
              min: Duration.meta({ description: 'Earliest send after delivery, e.g. 7d.' }),
              max: Duration.meta({ description: 'Latest send after delivery, e.g. 14d.' }),
            }),
          )
          .optional()
          .meta({ description: 'When after delivery a product survey may be sent, per product type, e.g. consumable: { min: 7d, max: 14d }. Built in: consumable 7–14d, apparel 3–7d.' }),
      })
      .optional()
      .meta({ description: 'Workspace-wide survey policy: default frequency cap, payload size, response and delay windows.' }),
    sandbox: z
      .strictObject({
        world: z.literal('hearth_and_harvest').meta({ description: 'The seeded brand the embedded sandbox runs on: Hearth & Harvest (customers, orders, deliveries, subscriptions, loyalty, returns, surveys).' }),
        people: z.number().int().min(1).max(1_000_000).optional().meta({ description: 'Customers in the world (default 5000; up to 1000000 for benchmarks). `--people N` overrides it.' }),
        seed: z.number().int().optional().meta({ description: 'The world is a function of seed, people and the clock: the same three give the same rows. `--seed N` overrides it.' }),
        exports: z.string().min(1).meta({ description: "Folder (relative to the working directory) where the world writes its file exports (the loyalty CSV, the returns NDJSON), for file Sources to read. Keep it out of Git." }),
      })
      .optional()
      .meta({ description: 'What the embedded sandbox holds. Only used when the target is the sandbox: Postgres Sources whose connection variable is unset read an embedded warehouse (PGlite) loaded with this world, and file Sources read its exports. Live runs ignore it.' }),
    policy: z
      .record(z.string().regex(/^[A-Z]{2,5}\d{3}$/), z.enum(['error', 'warning', 'off']))
      .optional()
      .meta({ description: 'Workspace-wide severity per rule code: error, warning or off, e.g. { SURV004: warning }. Locked rules (a secret in a spec) cannot be changed.' }),
  })
  .meta({ title: 'tidemark Workspace', description: 'Environments, identity and workspace-wide policy.' });

// `environments` on a Workspace are its environment definitions, not a filter.
export type WorkspaceSpec = z.infer<typeof WorkspaceSpec>;
