import { z } from 'zod';
import { FieldType, Name, specBase } from './common.ts';

const Field = z.strictObject({
  type: FieldType,
  values: z.array(z.string()).optional().meta({ description: 'Allowed values of an enum field.' }),
  owner: Name.meta({ description: 'The system that owns the truth of this field (a Source system or a Workspace system).' }),
  writers: z.array(Name).optional().meta({ description: 'Other systems allowed to write it; needs `combine`.' }),
  combine: z
    .enum(['latest_timestamp', 'max', 'min', 'first_non_null'])
    .optional()
    .meta({ description: 'How values from several writers combine.' }),
  updated_at: Name.optional().meta({ description: 'Companion field holding when this state last changed.' }),
  clearable: z.boolean().optional().meta({ description: 'A blank or null from the source may erase the value.' }),
  pii: z.boolean().optional(),
  format: z.enum(['email', 'phone']).optional(),
  nature: z
    .enum(['state', 'action', 'measure', 'identifier'])
    .optional()
    .meta({ description: 'state (current status), action (something that happened), measure (a count or amount), identifier.' }),
  description: z.string().optional(),
}).superRefine((f, ctx) => {
  // An enum with no vocabulary rejects every value a sync sends (or, read loosely, checks nothing).
  if (f.type === 'enum' && (f.values ?? []).length === 0) {
    ctx.addIssue({ code: 'custom', path: ['values'], message: 'an enum needs its allowed values, e.g. values: [none, gold]' });
  }
});

const EventDef = z.strictObject({
  owner: Name,
  stage: z
    .enum(['pre_delivery', 'delivery', 'post_delivery', 'subscription', 'engagement', 'other'])
    .optional()
    .meta({ description: 'Where the event sits in the order lifecycle; product surveys must not be timed from pre_delivery events.' }),
  description: z.string().optional(),
});

export const FieldsSpec = z
  .strictObject({
    kind: z.literal('Fields'),
    ...specBase,
    fields: z.record(Name, Field).optional(),
    events: z.record(Name, EventDef).optional(),
  })
  .meta({ title: 'tidemark Fields', description: 'The field registry: every attribute and event any spec writes or reads, with its owner.' });

export type FieldsSpec = z.infer<typeof FieldsSpec>;
export type FieldDef = z.infer<typeof Field>;
export type EventDef = z.infer<typeof EventDef>;
