import { z } from 'zod';
import { parseDuration } from '../../core/duration.ts';
import { Duration, Name, specBase } from './common.ts';

const Scalar = z.union([z.string(), z.number(), z.boolean()]);

const AttributeCondition = z.strictObject({
  field: Name,
  op: z.enum(['eq', 'neq', 'in', 'not_in', 'gt', 'gte', 'lt', 'lte', 'exists', 'not_exists', 'within', 'older_than']),
  value: z.union([Scalar, z.array(Scalar)]).optional(),
  duration: Duration.optional().meta({ description: 'For within/older_than on a timestamp field.' }),
});

const EventCondition = z.strictObject({
  name: Name,
  occurred: z.boolean().default(true).meta({ description: 'false: the event did NOT occur in the window.' }),
  from: Duration.optional().meta({ description: 'Window start, as an age: the event happened at least this long ago.' }),
  to: Duration.optional().meta({ description: 'Window end, as an age: the event happened at most this long ago.' }),
}).superRefine((e, ctx) => {
  // Both bounds are ages counted back from now, so the nearer one (from) is the smaller: a reversed
  // window matches no one, and the audience silently stays empty.
  const from = e.from === undefined ? undefined : parseDuration(e.from);
  const to = e.to === undefined ? undefined : parseDuration(e.to);
  if (from !== undefined && to !== undefined && from >= to) {
    ctx.addIssue({
      code: 'custom',
      path: ['to'],
      message: `the window is ${from > to ? 'reversed' : 'empty'}: from is the more recent age and must be smaller than to ("delivered 5–10 days ago" is from: 5d, to: 10d)`,
    });
  }
});

export type AttributeCondition = z.infer<typeof AttributeCondition>;
export type EventCondition = z.infer<typeof EventCondition>;

/**
 * A condition is an object with exactly one of these keys. It is modelled as one object with optional
 * keys rather than a union so that a typo gets a precise "unknown key, did you mean" instead of a
 * union failure listing every alternative.
 */
export interface Condition {
  attribute?: AttributeCondition;
  event?: EventCondition;
  segment?: string;
  all?: Condition[];
  any?: Condition[];
  not?: Condition;
}

export const CONDITION_KEYS = ['attribute', 'event', 'segment', 'all', 'any', 'not'] as const;

export const Condition: z.ZodType<Condition> = z.lazy(() =>
  z
    .strictObject({
      attribute: AttributeCondition.optional(),
      event: EventCondition.optional(),
      segment: Name.optional(),
      all: z.array(Condition).min(1).optional(),
      any: z.array(Condition).min(1).optional(),
      not: Condition.optional(),
    })
    .refine((c) => CONDITION_KEYS.filter((k) => c[k] !== undefined).length === 1, {
      message: 'a condition has exactly one of: attribute, event, segment, all, any, not',
    })
    .meta({ minProperties: 1, maxProperties: 1 }),
);

export const SegmentSpec = z
  .strictObject({
    kind: z.literal('Segment'),
    ...specBase,
    conditions: Condition.optional(),
    customerio_segment: z
      .strictObject({ id: z.number().int().positive() })
      .optional()
      .meta({ description: 'Reference an existing (data-driven) Customer.io segment instead of declaring conditions.' }),
    exclusive_group: Name.optional().meta({ description: 'Segments in one group must never overlap.' }),
    high_stakes: z.boolean().optional().meta({ description: 'Drives offers or surveys: needs a freshness guard.' }),
    freshness_guard: z
      .strictObject({
        sources: z.array(Name).optional().meta({ description: 'Sources to watch (default: every source it depends on).' }),
        max_age: Duration.optional().meta({ description: 'Default: each source’s freshness SLO.' }),
      })
      .optional()
      .meta({ description: 'Suppress all members while a source it depends on is stale.' }),
    publish: z
      .strictObject({
        customerio_segment: z.boolean().optional().meta({ description: 'Publish membership to a Customer.io manual segment.' }),
        attribute: Name.optional().meta({ description: 'Also write membership to this boolean attribute.' }),
      })
      .optional(),
    prevent_destroy: z.boolean().optional(),
    moved_from: Name.optional().meta({ description: 'Previous name of this segment: a rename, not a delete and create.' }),
  })
  .meta({ title: 'tidemark Segment', description: 'An audience: declared conditions or a reference to a Customer.io segment.' });

export type SegmentSpec = z.infer<typeof SegmentSpec>;
