/**
 * The sync benchmark's person source ("people"), its fields and what its generated rows are made of.
 *
 * Used by test/bench/sync.bench.ts (written out as the specs its CLI runs read), test/bench/normalize.bench.ts
 * (the per-row pipeline alone, on the same source) and test/sync/row-hash-cases.ts (the same source plus a
 * clearable `note` and a few fields of other shapes). They must share it: the two benches' figures only
 * compare if they time the same source, and the hashes row-hash-stability.test.ts pins are this source's
 * rows, so those pins guard the very path the benches time. Every mapping, type and format here is inside
 * those hashes: a change that moves a pin changes what snapshots hold, and is not a fixture edit.
 */
import type { FieldDef, SourceSpec } from '../../reconciler/spec/schema/index.ts';

export const PLANS = ['free', 'starter', 'pro', 'enterprise'] as const;
export const COUNTRIES = ['US', 'GB', 'DE', 'FR', 'CA', 'AU', 'NL', 'SE'] as const;
export const BASE_SECONDS = Date.UTC(2025, 0, 1) / 1000;

/** Distinct, unordered numeric customer ids (a bijection of i over 32 bits), like a real shop's ids. */
export const customerId = (i: number): string => String((Math.imul(i, 2654435761) >>> 0) + 100_000_000);

/** Naive wall-clock text, as warehouse exports usually write timestamps (read in the source's timezone). */
export const naiveStamp = (seconds: number): string => new Date(seconds * 1000).toISOString().slice(0, 19).replace('T', ' ');

/** The generated CSV's columns, in order. */
export const PEOPLE_CSV_HEADER = 'customer_id,email,plan,plan_changed_at,orders,lifetime_value,country,accepts_marketing,updated_at';

export const peopleSource: SourceSpec = {
  kind: 'Source',
  name: 'people',
  system: 'shop',
  connector: { type: 'csv', path: 'data/people.csv' },
  schedule: '0 3 * * *',
  records: 'person',
  identity: { column: 'customer_id', as: 'id' },
  ordering: 'updated_at',
  timezone: 'America/New_York',
  null_policy: 'protect',
  fields: {
    email: 'email',
    plan: 'plan',
    plan_updated_at: 'plan_changed_at',
    order_count: 'orders',
    lifetime_value: 'lifetime_value',
    country: 'country',
    accepts_marketing: 'accepts_marketing',
  },
};

/** The Fields document's entries, in declaration order (the normaliser's and the payload's order). */
export const peopleFields = {
  email: { type: 'string', format: 'email', nature: 'identifier', owner: 'shop', pii: true },
  plan: { type: 'enum', values: [...PLANS], nature: 'state', owner: 'shop', updated_at: 'plan_updated_at' },
  plan_updated_at: { type: 'timestamp', owner: 'shop' },
  order_count: { type: 'number', nature: 'measure', owner: 'shop' },
  lifetime_value: { type: 'number', nature: 'measure', owner: 'shop' },
  country: { type: 'string', owner: 'shop' },
  accepts_marketing: { type: 'boolean', nature: 'state', owner: 'shop' },
} satisfies Record<string, FieldDef>;
