import { z } from 'zod';
import { FieldType, Name, specBase } from './common.ts';

const Field = z.strictObject({
  type: FieldType,
  values: z.array(z.string()).optional().meta({ description: 'Allowed values of an enum field (required when type is enum), e.g. [none, silver, gold].' }),
  owner: Name.meta({ description: 'The system that owns the truth of this field (a Source system or a Workspace system).' }),
  writers: z.array(Name).optional().meta({ description: 'Other systems allowed to write it; needs `combine`.' }),
  combine: z
    .enum(['latest_timestamp', 'max', 'min', 'first_non_null'])
    .optional()
    .meta({ description: 'How values from several writers combine: latest_timestamp (the most recent update wins), max, min or first_non_null.' }),
  updated_at: Name.optional().meta({ description: 'Companion timestamp field holding when this state last changed, e.g. vip_tier_updated_at.' }),
  clearable: z.boolean().optional().meta({ description: 'A blank or null from the source may erase the value.' }),
  pii: z.boolean().optional().meta({ description: 'true marks personal data (name, address, birthday…), for the people who review specs and survey payloads. Default false.' }),
  format: z
    .enum(['email', 'phone'])
    .optional()
    .meta({ description: 'email or phone: values are normalised as the Workspace’s normalization settings say (trimmed and lowercased emails, E.164 phone numbers).' }),
  nature: z
    .enum(['state', 'action', 'measure', 'identifier'])
    .optional()
    .meta({ description: 'state (current status), action (something that happened), measure (a count or amount), identifier.' }),
  description: z.string().optional().meta({ description: 'What the field means, for the people who read the spec, e.g. "Tier in the loyalty programme".' }),
}).superRefine((f, ctx) => {
  // An enum with no vocabulary rejects every value a sync sends (or, read loosely, checks nothing).
  if (f.type === 'enum' && (f.values ?? []).length === 0) {
    ctx.addIssue({ code: 'custom', path: ['values'], message: 'an enum needs its allowed values, e.g. values: [none, gold]' });
  }
});

const EventDef = z.strictObject({
  owner: Name.meta({ description: 'The system that sends this event (a Source system or a Workspace system), e.g. shopify.' }),
  stage: z
    .enum(['pre_delivery', 'delivery', 'post_delivery', 'subscription', 'engagement', 'other'])
    .optional()
    .meta({ description: 'Where the event sits in the order lifecycle; product surveys must not be timed from pre_delivery events.' }),
  description: z.string().optional().meta({ description: 'What the event means and when it fires, for the people who read the spec.' }),
});

export const FieldsSpec = z
  .strictObject({
    kind: z.literal('Fields').meta({ description: 'Always Fields: this document is the field registry.' }),
    ...specBase,
    fields: z
      .record(Name, Field)
      .optional()
      .meta({ description: 'Customer.io person attributes, by snake_case name: each one’s type and the system that owns it.' }),
    events: z
      .record(Name, EventDef)
      .optional()
      .meta({ description: 'Customer.io events, by snake_case name (e.g. order_delivered): the system that sends each one.' }),
  })
  .meta({ title: 'tidemark Fields', description: 'The field registry: every attribute and event any spec writes or reads, with its owner.' });

export type FieldsSpec = z.infer<typeof FieldsSpec>;
export type FieldDef = z.infer<typeof Field>;
export type EventDef = z.infer<typeof EventDef>;
