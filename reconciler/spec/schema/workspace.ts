import { z } from 'zod';
import { Duration, EnvVarName, IdentifierKind, Name, specBase } from './common.ts';

const CustomerioEnvironment = z.strictObject({
  region: z.enum(['us', 'eu']).meta({ description: 'Customer.io data region; picks the API hosts.' }),
  site_id_env: EnvVarName.default('CUSTOMERIO_SITE_ID'),
  track_api_key_env: EnvVarName.default('CUSTOMERIO_TRACK_API_KEY'),
  app_api_key_env: EnvVarName.default('CUSTOMERIO_APP_API_KEY'),
  track_requests_per_second: z.number().int().positive().max(1000).optional()
    .meta({ description: 'Client-side Track API rate limit (the documented soft limit is 1000/s).' }),
});

const QualtricsEnvironment = z.strictObject({
  datacenter: z.string().regex(/^[a-z0-9]+$/, 'a datacenter id such as iad1, fra1 or sjc1'),
  directory_id: z.string().regex(/^POOL_[A-Za-z0-9]+$/, 'an XM Directory id such as POOL_2a3b4c5d6e7f8g9'),
  api_token_env: EnvVarName.default('QUALTRICS_API_TOKEN'),
  responses_webhook_url: z
    .url({ protocol: /^https?$/ })
    .optional()
    .meta({ description: 'Where Qualtrics delivers completed responses for survey targets with responses.webhook.' }),
});

const Environment = z.strictObject({
  description: z.string().optional(),
  customerio: CustomerioEnvironment,
  qualtrics: QualtricsEnvironment.optional(),
  protected: z.boolean().optional().meta({ description: 'Applies need an explicit approval even in CI.' }),
});

const StateConfig = z.discriminatedUnion('backend', [
  z.strictObject({
    backend: z.literal('embedded'),
    path: z.string().default('.tidemark').meta({ description: 'Directory of the embedded state store.' }),
  }),
  z.strictObject({
    backend: z.literal('postgres'),
    url_env: EnvVarName.default('TIDEMARK_DATABASE_URL'),
  }),
]);

const Normalization = z.strictObject({
  email: z
    .strictObject({ trim: z.boolean().default(true), lowercase: z.boolean().default(true) })
    .optional()
    .meta({ description: 'How email addresses are normalised before matching.' }),
  phone: z
    .strictObject({
      format: z.literal('e164'),
      default_country: z.string().regex(/^[A-Z]{2}$/, 'an ISO 3166 country code such as US or GB'),
    })
    .optional()
    .meta({ description: 'Phone numbers are converted to E.164 using this default country.' }),
});

const FrequencyCap = z.strictObject({
  max: z.number().int().positive(),
  per: Duration,
});

export const WorkspaceSpec = z
  .strictObject({
    kind: z.literal('Workspace'),
    ...specBase,
    identity: z.strictObject({
      primary: IdentifierKind,
      immutable_id: z
        .string()
        .optional()
        .meta({ description: 'Name of the immutable customer id field, when one exists (e.g. customer_id).' }),
    }),
    normalization: Normalization.optional(),
    systems: z
      .record(Name, z.strictObject({ description: z.string().optional(), realtime: z.boolean().optional() }))
      .optional()
      .meta({ description: 'Systems that own fields but are not synced by tidemark (e.g. Shopify via its native integration).' }),
    environments: z.record(Name, Environment).refine((e) => Object.keys(e).length > 0, 'declare at least one environment'),
    default_environment: Name.optional(),
    state: StateConfig.optional(),
    surveys: z
      .strictObject({
        frequency_cap: FrequencyCap.optional().meta({ description: 'Default cap across all survey targets.' }),
        max_payload_fields: z.number().int().positive().max(50).default(8),
        response_window: z.strictObject({ min: Duration, max: Duration }).optional(),
        delay_windows: z
          .record(z.string(), z.strictObject({ min: Duration, max: Duration }))
          .optional()
          .meta({ description: 'Days after delivery a product survey may be sent, per product type.' }),
      })
      .optional(),
    policy: z
      .record(z.string().regex(/^[A-Z]{2,5}\d{3}$/), z.enum(['error', 'warning', 'off']))
      .optional()
      .meta({ description: 'Workspace-wide severity overrides per rule code.' }),
  })
  .meta({ title: 'tidemark Workspace', description: 'Environments, identity and workspace-wide policy.' });

// `environments` on a Workspace are its environment definitions, not a filter.
export type WorkspaceSpec = z.infer<typeof WorkspaceSpec>;
