import { z } from 'zod';
import { parseDuration } from '../../core/duration.ts';
import { Duration, Name, specBase } from './common.ts';

const Scalar = z.union([z.string(), z.number(), z.boolean()]);

const AttributeCondition = z.strictObject({
  field: Name.meta({ description: 'The person attribute to test, as declared in Fields, e.g. subscription_status.' }),
  op: z
    .enum(['eq', 'neq', 'in', 'not_in', 'gt', 'gte', 'lt', 'lte', 'between', 'exists', 'not_exists', 'within', 'older_than', 'contains'])
    .meta({
      description:
        'Comparison: eq, neq, gt, gte, lt, lte (with value); in, not_in (value is a list); between (value is [low, high], both ends included, on a number or timestamp field); contains (a string field holds value as a substring, case-sensitive); exists, not_exists (no value); within, older_than (a timestamp field against now, with duration).',
    }),
  value: z
    .union([Scalar, z.array(Scalar)])
    .optional()
    .meta({
      description:
        'What the attribute is compared with: a string, number or boolean, a list for in/not_in, or [low, high] for between, e.g. active, [gold, platinum] or [10, 20].',
    }),
  duration: Duration.optional().meta({ description: 'For within/older_than on a timestamp field: within 14d means at most 14 days ago, older_than 60d at least 60 days ago.' }),
}).superRefine((a, ctx) => {
  if (a.op !== 'between') return;
  if (!Array.isArray(a.value) || a.value.length !== 2) {
    ctx.addIssue({ code: 'custom', path: ['value'], message: 'between needs value: [low, high], two numbers or two ISO timestamps, e.g. [10, 20]' });
    return;
  }
  // Both ends are included, so lo == hi is one value; lo > hi matches no one and the audience silently
  // stays empty.
  const [lo, hi] = a.value.map(orderable);
  if (lo !== undefined && hi !== undefined && lo > hi) {
    ctx.addIssue({
      code: 'custom',
      path: ['value'],
      message: `between is reversed: the low end ${JSON.stringify(a.value[0])} is above the high end ${JSON.stringify(a.value[1])}; write [low, high]`,
    });
  }
});

/** A between end as a comparable number: a number, a numeric string, or an ISO date-time with an offset. */
function orderable(v: string | number | boolean | undefined): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v !== 'string' || v.trim() === '') return undefined;
  const n = Number(v);
  if (Number.isFinite(n)) return n;
  if (/(?:Z|[+-]\d\d:?\d\d)$/i.test(v.trim())) {
    const ms = Date.parse(v.trim());
    if (Number.isFinite(ms)) return ms;
  }
  return undefined;
}

const EventCount = z
  .strictObject({
    min: z.number().int().nonnegative().optional().meta({ description: 'At least this many such events in the window, e.g. 2. Default 1.' }),
    max: z.number().int().nonnegative().optional().meta({ description: 'At most this many such events in the window, e.g. 5. Default: no upper limit.' }),
  })
  .superRefine((c, ctx) => {
    if (c.min !== undefined && c.max !== undefined && c.min > c.max) {
      ctx.addIssue({ code: 'custom', path: ['max'], message: `count is reversed: min ${c.min} is above max ${c.max}, so no one can match` });
    }
  });

const EventCondition = z.strictObject({
  name: Name.meta({ description: 'The event, as declared in Fields, e.g. order_delivered.' }),
  occurred: z.boolean().default(true).meta({ description: 'true (default): the event occurred in the window; false: it did NOT occur in the window.' }),
  from: Duration.optional().meta({ description: 'Window start, as an age: the event happened at least this long ago.' }),
  to: Duration.optional().meta({ description: 'Window end, as an age: the event happened at most this long ago.' }),
  count: EventCount.optional().meta({
    description:
      'How many such events in the window, e.g. { min: 2 } or { min: 1, max: 3 }. Default: at least 1. With occurred: false, the person does not have that many.',
  }),
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
export type EventCount = z.infer<typeof EventCount>;

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
      attribute: AttributeCondition.optional().meta({ description: 'Test a person attribute, e.g. { field: subscription_status, op: eq, value: active }.' }),
      event: EventCondition.optional().meta({ description: 'The person had (or, with occurred: false, had not) an event in a window of ages, e.g. { name: order_delivered, to: 30d }.' }),
      segment: Name.optional().meta({ description: 'The person is a member of this other Segment, by name.' }),
      all: z.array(Condition).min(1).optional().meta({ description: 'Every condition in the list holds (AND).' }),
      any: z.array(Condition).min(1).optional().meta({ description: 'At least one condition in the list holds (OR).' }),
      not: Condition.optional().meta({ description: 'The condition does not hold (NOT), e.g. not: { segment: restarted_subscribers }.' }),
    })
    .refine((c) => CONDITION_KEYS.filter((k) => c[k] !== undefined).length === 1, {
      message: 'a condition has exactly one of: attribute, event, segment, all, any, not',
    })
    .meta({ minProperties: 1, maxProperties: 1, description: 'Who matches: exactly one of attribute, event, segment, all (AND of a list), any (OR of a list) or not, e.g. all: [{ segment: vip_customers }, ...].' }),
);

export const SegmentSpec = z
  .strictObject({
    kind: z.literal('Segment').meta({ description: 'Always Segment: this document declares an audience.' }),
    ...specBase,
    conditions: Condition.optional().meta({ description: 'Who is in the segment: one condition, usually all: [...] or any: [...]. Give conditions or customerio_segment, not both.' }),
    customerio_segment: z
      .strictObject({ id: z.number().int().positive().meta({ description: 'The segment’s numeric id in Customer.io (in the segment’s URL), e.g. 42.' }) })
      .optional()
      .meta({ description: 'Reference an existing (data-driven) Customer.io segment instead of declaring conditions.' }),
    exclusive_group: Name.optional().meta({ description: 'Segments in one group must never overlap.' }),
    high_stakes: z.boolean().optional().meta({ description: 'Drives offers or surveys: needs a freshness guard.' }),
    freshness_guard: z
      .strictObject({
        sources: z.array(Name).optional().meta({ description: 'Sources to watch (default: every source it depends on).' }),
        max_age: Duration.optional().meta({ description: 'Default: each source’s freshness SLO.' }),
        on_stale: z
          .enum(['freeze', 'empty'])
          .default('freeze')
          .meta({ description: 'freeze (default): publish nothing, so Customer.io keeps the last good membership; empty: remove every member until the data is fresh again.' }),
      })
      .optional()
      .meta({ description: 'While a source it depends on is staler than allowed, the segment is not published: frozen at its last good membership, or emptied (on_stale). plan, run and status say which segment and why.' }),
    expect: z
      .strictObject({
        min: z.number().int().nonnegative().optional().meta({ description: 'Fewest members a healthy run has; fewer and the run is held, not published.' }),
        max: z.number().int().positive().optional().meta({ description: 'Most members a healthy run has; more and the run is held.' }),
        max_change: z
          .union([z.string().regex(/^\d+(\.\d+)?%$/), z.number().positive()])
          .optional()
          .meta({ description: 'Largest change from the last published size, e.g. 20% (or 0.2). A bad export collapsing VIP to zero is held, not published; `--accept` publishes it anyway.' }),
      })
      .optional()
      .meta({ description: 'What the membership should look like after a sync; a run outside it is held and says so.' }),
    publish: z
      .strictObject({
        customerio_segment: z.boolean().optional().meta({ description: 'Publish membership to a Customer.io manual segment.' }),
        attribute: Name.optional().meta({ description: 'Also write membership to this boolean attribute.' }),
      })
      .optional()
      .meta({ description: 'Where membership goes in Customer.io: a manual segment, a boolean attribute, or both.' }),
    prevent_destroy: z
      .boolean()
      .optional()
      .meta({ description: 'true: the Customer.io segment this spec publishes is never deleted, even once the spec is removed, until released with `tidemark state unprotect`. Default false.' }),
    moved_from: Name.optional().meta({ description: 'Previous name of this segment: a rename, not a delete and create.' }),
  })
  .meta({ title: 'tidemark Segment', description: 'An audience: declared conditions or a reference to a Customer.io segment.' });

export type SegmentSpec = z.infer<typeof SegmentSpec>;
