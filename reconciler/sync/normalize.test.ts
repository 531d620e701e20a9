import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isUlid } from '../core/ulid.ts';
import type { FieldDef, SourceSpec } from '../spec/schema/index.ts';
import { normalize } from '../../test/sync/normalizer-cache.ts';
import { createNormalizer } from './normalize.ts';
import { EPOCH_SECONDS_CUTOFF, toInstant } from './timezones.ts';
import type { NormalizeContext, NormalizedRow, NormalizeResult, RejectedRow, SyncValue } from './types.ts';

// ---- builders ------------------------------------------------------------------------------------

function source(over: Partial<SourceSpec> = {}): SourceSpec {
  return {
    kind: 'Source',
    name: 'shopify_orders',
    system: 'shopify',
    connector: { type: 'csv', path: 'x.csv' },
    schedule: '5 * * * *',
    records: 'person',
    identity: { column: 'customer_id', as: 'id' },
    fields: {},
    null_policy: 'protect',
    timezone: 'America/New_York',
    ...over,
  };
}

const REGISTRY: Record<string, FieldDef> = {
  note: { type: 'string', owner: 'shopify' },
  order_count: { type: 'number', owner: 'shopify' },
  vip: { type: 'boolean', owner: 'shopify' },
  tier: { type: 'enum', values: ['bronze', 'silver', 'gold'], owner: 'shopify' },
  free_tier: { type: 'enum', owner: 'shopify' },
  last_order_at: { type: 'timestamp', owner: 'shopify' },
  contact_email: { type: 'string', format: 'email', owner: 'shopify', pii: true },
  contact_phone: { type: 'string', format: 'phone', owner: 'shopify', pii: true },
};

function ctx(src: SourceSpec, normalization: NormalizeContext['normalization'] = { phone: { format: 'e164', default_country: 'US' } }): NormalizeContext {
  return { source: src, fields: new Map(Object.entries(REGISTRY)), normalization, primary: 'id' };
}

function run(values: Record<string, unknown>, src: SourceSpec = source(), normalization?: NormalizeContext['normalization']): NormalizeResult {
  return normalize({ location: 'data/x.csv:7', values }, normalization === undefined ? ctx(src) : ctx(src, normalization));
}

function ok(r: NormalizeResult): NormalizedRow {
  if (!r.ok) throw new Error(`expected a normalised row, got ${r.code}: ${r.reason}`);
  return r;
}

function rejected(r: NormalizeResult): RejectedRow {
  if (r.ok) throw new Error(`expected a reject, got ${JSON.stringify(r)}`);
  return r;
}

/** A one-field source mapping `field` from column `col`. */
const withField = (field: string, over: Partial<SourceSpec> = {}) => source({ fields: { [field]: 'col' }, ...over });
const iso = (ms: number) => new Date(ms).toISOString();

// ---- identity --------------------------------------------------------------------------------------

describe('identity as id', () => {
  it.each<[string, unknown, string]>([
    ['a number', 42, '42'],
    ['a float that is an integer (1.0)', 1.0, '1'],
    ['negative zero', -0, '0'],
    ['the largest safe integer, without exponent', 9007199254740991, '9007199254740991'],
    ['a bigint beyond 2^53, every digit kept', 12345678901234567890123n, '12345678901234567890123'],
    ['a string, trimmed', '  cus_123 \t', 'cus_123'],
    ['leading zeros in a string are kept', '00042', '00042'],
    ['exactly 150 bytes', 'x'.repeat(150), 'x'.repeat(150)],
  ])('%s', (_name, raw, key) => {
    expect(ok(run({ customer_id: raw })).key).toBe(key);
  });

  it.each<[string, unknown, string]>([
    ['missing column', undefined, 'identity_missing'],
    ['null', null, 'identity_missing'],
    ['empty string', '', 'identity_missing'],
    ['whitespace', '   ', 'identity_missing'],
    ['151 bytes', 'x'.repeat(151), 'identity_too_long'],
    ['76 two-byte characters (152 bytes)', 'é'.repeat(76), 'identity_too_long'],
    ['a fraction', 1.5, 'identity_invalid_id'],
    ['beyond 2^53 as a number (already rounded)', 2 ** 53 + 2, 'identity_invalid_id'],
    ['1e21', 1e21, 'identity_invalid_id'],
    ['NaN', Number.NaN, 'identity_invalid_id'],
    ['a boolean', true, 'identity_invalid_id'],
    ['an object', { id: 1 }, 'identity_invalid_id'],
  ])('rejects %s', (_name, raw, code) => {
    const values = raw === undefined ? {} : { customer_id: raw };
    const r = rejected(run(values));
    expect(r).toMatchObject({ code, column: 'customer_id', location: 'data/x.csv:7' });
    expect(r.reason).toContain('customer_id');
  });

  it('does not read inherited properties as columns', () => {
    const r = rejected(run({}, source({ identity: { column: 'constructor', as: 'id' } })));
    expect(r.code).toBe('identity_missing');
  });
});

describe('identity as email', () => {
  const src = source({ identity: { column: 'email', as: 'email' } });
  it.each<[string, NormalizeContext['normalization'], unknown, string]>([
    ['trimmed and lowercased by default', undefined, '  Jo.Smith@Example.COM ', 'jo.smith@example.com'],
    ['trimmed and lowercased when declared', { email: { trim: true, lowercase: true } }, ' A@B.IO', 'a@b.io'],
    ['case kept when lowercase is off', { email: { trim: true, lowercase: false } }, ' Jo@Example.com ', 'Jo@Example.com'],
    ['plus addressing and subdomains', undefined, 'jo+vip@mail.shop.example.co.uk', 'jo+vip@mail.shop.example.co.uk'],
    ['an internationalised domain', undefined, 'jo@bücher.de', 'jo@bücher.de'],
  ])('%s', (_name, normalization, raw, key) => {
    expect(ok(normalize({ location: 'l', values: { email: raw } }, { ...ctx(src), normalization })).key).toBe(key);
  });

  it.each<[string, unknown, NormalizeContext['normalization']]>([
    ['no @', 'jo.example.com', undefined],
    ['two @', 'jo@@example.com', undefined],
    ['nothing before @', '@example.com', undefined],
    ['no dot in the domain', 'jo@localhost', undefined],
    ['an empty domain label', 'jo@example..com', undefined],
    ['a one-letter top-level domain', 'jo@example.c', undefined],
    ['a space inside', 'jo smith@example.com', undefined],
    ['a dot at the end of the local part', 'jo.@example.com', undefined],
    ['surrounding spaces when trim is off', ' jo@example.com', { email: { trim: false, lowercase: true } }],
    ['a number', 12345, undefined],
    ['too long (255 characters)', `${'a'.repeat(60)}@${'b'.repeat(190)}.com`, undefined],
  ])('rejects %s as identity_invalid_email without echoing it', (_name, raw, normalization) => {
    const r = rejected(normalize({ location: 'l', values: { email: raw } }, { ...ctx(src), normalization }));
    expect(r).toMatchObject({ code: 'identity_invalid_email', column: 'email' });
    if (typeof raw === 'string') expect(r.reason).not.toContain(raw.trim());
  });
});

describe('identity as phone', () => {
  const src = source({ identity: { column: 'phone', as: 'phone' } });
  const country = (c: string): NormalizeContext['normalization'] => ({ phone: { format: 'e164', default_country: c } });
  it.each<[string, string | undefined, unknown, string]>([
    ['a US national number with the US default', 'US', '(415) 555-2671', '+14155552671'],
    ['a US number given as a JS number', 'US', 4155552671, '+14155552671'],
    ['a UK national number with the GB default', 'GB', '020 7946 0958', '+442079460958'],
    ['a UK mobile with the GB default', 'GB', '07911 123456', '+447911123456'],
    ['an international German number despite a US default', 'US', '+49 30 901820', '+4930901820'],
    ['an international French number without any default', undefined, '+33 6 12 34 56 78', '+33612345678'],
    ['a tel: URI', 'US', 'tel:+1-202-456-1111', '+12024561111'],
  ])('%s', (_name, c, raw, key) => {
    const normalization = c ? country(c) : undefined;
    expect(ok(normalize({ location: 'l', values: { phone: raw } }, { ...ctx(src), normalization })).key).toBe(key);
  });

  it.each<[string, string | undefined, unknown, RegExp]>([
    ['too short', 'US', '12345', /not a valid phone number/],
    ['letters', 'US', 'call me', /not a valid phone number/],
    ['a national number without a default country', undefined, '(415) 555-2671', /no normalization\.phone\.default_country/],
    ['a national number with an unknown default country', 'ZZ', '(415) 555-2671', /ZZ is not a known country/],
    ['a UK national number read with the US default', 'US', '020 7946 0958', /not a valid phone number/],
    ['a negative number', 'US', -4155552671, /not text or a whole number/],
  ])('rejects %s as identity_invalid_phone', (_name, c, raw, reason) => {
    const normalization = c ? country(c) : undefined;
    const r = rejected(normalize({ location: 'l', values: { phone: raw } }, { ...ctx(src), normalization }));
    expect(r).toMatchObject({ code: 'identity_invalid_phone', column: 'phone' });
    expect(r.reason).toMatch(reason);
    expect(r.reason).not.toContain(String(raw));
  });
});

// ---- fields ----------------------------------------------------------------------------------------

describe('fields by registry type', () => {
  it.each<[string, string, unknown, unknown]>([
    ['string kept as is (not trimmed)', 'note', '  hi there ', '  hi there '],
    ['string from a number', 'note', 42, '42'],
    ['string from a large integer, no exponent', 'note', 1e21, '1000000000000000000000'],
    ['string from a boolean', 'note', false, 'false'],
    ['string of exactly 1000 bytes', 'note', 'é'.repeat(500), 'é'.repeat(500)],
    ['number', 'order_count', 3, 3],
    ['number from a decimal string', 'order_count', '12.50', 12.5],
    ['number from a padded string', 'order_count', ' 7 ', 7],
    ['number in exponent notation', 'order_count', '1e3', 1000],
    ['number negative zero', 'order_count', '-0', 0],
    ['number from a bigint', 'order_count', 5n, 5],
    ['boolean true', 'vip', true, true],
    ['boolean "TRUE"', 'vip', 'TRUE', true],
    ['boolean "False"', 'vip', 'False', false],
    ['boolean " yes "', 'vip', ' yes ', true],
    ['boolean "No"', 'vip', 'No', false],
    ['boolean "1"', 'vip', '1', true],
    ['boolean "0"', 'vip', '0', false],
    ['boolean 1', 'vip', 1, true],
    ['boolean 0', 'vip', 0, false],
    ['enum exact', 'tier', 'gold', 'gold'],
    ['enum trimmed', 'tier', ' silver ', 'silver'],
    ['enum without declared values accepts text', 'free_tier', 'anything', 'anything'],
    ['timestamp ISO Z → unix seconds', 'last_order_at', '2026-03-08T07:30:00Z', 1772955000],
    ['timestamp naive in the source timezone', 'last_order_at', '2026-07-01 12:00:00', Date.UTC(2026, 6, 1, 16) / 1000],
    ['timestamp epoch seconds', 'last_order_at', 1700000000, 1700000000],
    ['timestamp epoch milliseconds floors to seconds', 'last_order_at', 1700000000999, 1700000000],
    ['timestamp Date object', 'last_order_at', new Date('2026-01-02T03:04:05.678Z'), Date.UTC(2026, 0, 2, 3, 4, 5) / 1000],
    ['email field normalised', 'contact_email', ' Jo@Example.COM', 'jo@example.com'],
    ['phone field to E.164', 'contact_phone', '(415) 555-2671', '+14155552671'],
  ])('%s', (_name, field, raw, expected) => {
    const r = ok(run({ customer_id: 1, col: raw }, withField(field)));
    expect(r.values).toEqual({ [field]: expected });
    expect(r.blanks).toEqual([]);
  });

  it.each<[string, string, unknown, string]>([
    ['string over 1000 bytes', 'note', 'x'.repeat(1001), 'value_too_long'],
    ['string of 501 two-byte characters', 'note', 'é'.repeat(501), 'value_too_long'],
    ['string from an object', 'note', { a: 1 }, 'type_mismatch'],
    ['string from an array', 'note', ['a'], 'type_mismatch'],
    ['number from words', 'order_count', 'three', 'type_mismatch'],
    ['number from hex', 'order_count', '0x10', 'type_mismatch'],
    ['number with a thousands separator', 'order_count', '1,000', 'type_mismatch'],
    ['number NaN', 'order_count', Number.NaN, 'type_mismatch'],
    ['number Infinity', 'order_count', Number.POSITIVE_INFINITY, 'type_mismatch'],
    ['number "Infinity"', 'order_count', 'Infinity', 'type_mismatch'],
    ['number from a boolean', 'order_count', true, 'type_mismatch'],
    ['boolean "maybe"', 'vip', 'maybe', 'type_mismatch'],
    ['boolean 2', 'vip', 2, 'type_mismatch'],
    ['enum wrong case', 'tier', 'Gold', 'type_mismatch'],
    ['enum unknown value', 'tier', 'platinum', 'type_mismatch'],
    ['enum from an object', 'tier', { v: 'gold' }, 'type_mismatch'],
    ['timestamp garbage', 'last_order_at', 'yesterday', 'timestamp_invalid'],
    ['timestamp impossible date', 'last_order_at', '2026-02-30 10:00', 'timestamp_invalid'],
    ['timestamp a boolean', 'last_order_at', true, 'timestamp_invalid'],
    ['email field invalid', 'contact_email', 'not-an-email', 'value_invalid_email'],
    ['phone field invalid', 'contact_phone', '555', 'value_invalid_phone'],
  ])('rejects %s', (_name, field, raw, code) => {
    const r = rejected(run({ customer_id: 1, col: raw }, withField(field)));
    expect(r).toMatchObject({ code, field, column: 'col' });
    expect(r.reason).toContain(field);
    expect(r.reason).toContain('"col"');
  });

  it('names the allowed enum values in the reason', () => {
    const r = rejected(run({ customer_id: 1, col: 'platinum' }, withField('tier')));
    expect(r.reason).toBe('Field tier (column "col") has "platinum", which is not one of: bronze, silver, gold.');
  });

  it('never echoes email or phone values in field reasons', () => {
    const e = rejected(run({ customer_id: 1, col: 'jo@@example.com' }, withField('contact_email')));
    expect(e.reason).not.toContain('jo@@example.com');
    const p = rejected(run({ customer_id: 1, col: '+1 555' }, withField('contact_phone')));
    expect(p.reason).not.toContain('555');
  });

  it.each<[string, unknown]>([
    ['null', null],
    ['an empty string', ''],
    ['whitespace', ' \t '],
  ])('lists a field whose value is %s in blanks, not values', (_name, raw) => {
    const r = ok(run({ customer_id: 1, col: raw }, withField('order_count')));
    expect(r.values).toEqual({});
    expect(r.blanks).toEqual(['order_count']);
  });

  it('lists a field whose column the row does not have as absent, not as a blank (not provided is no erase)', () => {
    const r = ok(run({ customer_id: 1, t: null }, source({ fields: { order_count: 'n', tier: 't' } })));
    expect(r.blanks).toEqual(['tier']);
    expect(r.absent).toEqual(['order_count']);
    expect(ok(run({ customer_id: 1, n: 2, t: 'gold' }, source({ fields: { order_count: 'n', tier: 't' } }))).absent).toBeUndefined();
  });

  it('rejects the whole row on the first type error, even when other fields are fine', () => {
    const r = rejected(run({ customer_id: 1, n: 3, t: 'platinum' }, source({ fields: { order_count: 'n', tier: 't' } })));
    expect(r.field).toBe('tier');
  });

  it('rejects a mapped field missing from the registry', () => {
    const r = rejected(run({ customer_id: 1, col: 'x' }, withField('not_registered')));
    expect(r).toMatchObject({ code: 'field_unknown', field: 'not_registered' });
  });

  it('rejects a naive timestamp when the source declares no timezone, but accepts an instant', () => {
    const src = withField('last_order_at', { timezone: undefined });
    expect(rejected(run({ customer_id: 1, col: '2026-03-08 10:00' }, src)).code).toBe('timezone_missing');
    expect(rejected(run({ customer_id: 1, col: '2026-03-08' }, src)).code).toBe('timezone_missing');
    expect(ok(run({ customer_id: 1, col: '2026-03-08T10:00:00Z' }, src)).values.last_order_at).toBe(Date.UTC(2026, 2, 8, 10) / 1000);
    expect(ok(run({ customer_id: 1, col: 1772964000 }, src)).values.last_order_at).toBe(1772964000);
  });

  it('rejects a naive timestamp when the source timezone is not a known zone', () => {
    expect(rejected(run({ customer_id: 1, col: '2026-03-08 10:00' }, withField('last_order_at', { timezone: 'Mars/Olympus_Mons' }))).code).toBe(
      'timezone_invalid',
    );
  });
});

// ---- timestamps ------------------------------------------------------------------------------------

describe('timestamps', () => {
  it.each<[string, unknown, string, string]>([
    // DST: spring-forward gaps shift forward by the gap, fall-back overlaps take the earlier instant.
    ['New York gap 02:30 → 03:30 EDT', '2026-03-08 02:30', 'America/New_York', '2026-03-08T07:30:00.000Z'],
    ['New York overlap 01:30 → EDT (earlier)', '2026-11-01 01:30', 'America/New_York', '2026-11-01T05:30:00.000Z'],
    ['London gap 01:30 → 02:30 BST', '2026-03-29 01:30', 'Europe/London', '2026-03-29T01:30:00.000Z'],
    ['London overlap 01:30 → BST (earlier)', '2026-10-25 01:30', 'Europe/London', '2026-10-25T00:30:00.000Z'],
    ['New York just before the gap', '2026-03-08 01:59:59', 'America/New_York', '2026-03-08T06:59:59.000Z'],
    ['New York just after the overlap', '2026-11-01 02:00', 'America/New_York', '2026-11-01T07:00:00.000Z'],
    ['New York summer', '2026-07-01 12:00', 'America/New_York', '2026-07-01T16:00:00.000Z'],
    ['T separator and seconds', '2026-07-01T12:00:30', 'America/New_York', '2026-07-01T16:00:30.000Z'],
    ['fraction truncated to milliseconds', '2026-07-01 12:00:00.123987', 'UTC', '2026-07-01T12:00:00.123Z'],
    ['a date is local midnight', '2026-03-08', 'America/New_York', '2026-03-08T05:00:00.000Z'],
    ['Z wins over the source timezone', '2026-03-08T02:30:00Z', 'America/New_York', '2026-03-08T02:30:00.000Z'],
    ['lowercase z', '2026-03-08t02:30:00z', 'America/New_York', '2026-03-08T02:30:00.000Z'],
    ['an offset with minutes', '2026-03-08T12:00:00+05:30', 'UTC', '2026-03-08T06:30:00.000Z'],
    ['a compact offset', '2026-03-08T12:00:00-0500', 'UTC', '2026-03-08T17:00:00.000Z'],
    ["Postgres' timestamptz text", '2026-11-23 04:14:43.883633-05', 'UTC', '2026-11-23T09:14:43.883Z'],
    ['an offset with seconds (local mean time)', '1883-11-18 12:03:58-04:56:02', 'UTC', '1883-11-18T17:00:00.000Z'],
    ['epoch seconds', 1700000000, 'UTC', '2023-11-14T22:13:20.000Z'],
    ['epoch seconds with a fraction', 1700000000.5, 'UTC', '2023-11-14T22:13:20.500Z'],
    ['epoch milliseconds', 1700000000123, 'UTC', '2023-11-14T22:13:20.123Z'],
    ['epoch seconds as a string', '1700000000', 'UTC', '2023-11-14T22:13:20.000Z'],
    ['epoch milliseconds as a string', '1700000000123', 'UTC', '2023-11-14T22:13:20.123Z'],
    ['just below the cutoff is seconds', EPOCH_SECONDS_CUTOFF - 1, 'UTC', iso((EPOCH_SECONDS_CUTOFF - 1) * 1000)],
    ['the cutoff itself is milliseconds', EPOCH_SECONDS_CUTOFF, 'UTC', '1973-03-03T09:46:40.000Z'],
    ['a Date object', new Date('2026-05-05T05:05:05.005Z'), 'America/New_York', '2026-05-05T05:05:05.005Z'],
  ])('%s', (_name, raw, zone, expected) => {
    const r = toInstant(raw, zone);
    if (!r.ok) throw new Error(r.reason);
    expect(iso(r.ms)).toBe(expected);
  });

  it.each<[string, string, string]>([
    ['New York gap', '2026-03-08 02:30', 'America/New_York'],
    ['London gap', '2026-03-29 01:30', 'Europe/London'],
  ])('notes the %s shift', (_name, raw, zone) => {
    const r = toInstant(raw, zone);
    expect(r.ok && r.note).toMatch(/daylight-saving gap .* shifted forward by 60 minutes/);
  });

  it.each<[string, string, string, string]>([
    ['New York overlap', '2026-11-01 01:30', 'America/New_York', '-04:00'],
    ['London overlap', '2026-10-25 01:30', 'Europe/London', '+01:00'],
  ])('notes the %s resolution', (_name, raw, zone, offset) => {
    const r = toInstant(raw, zone);
    expect(r.ok && r.note).toContain(`earlier instant (UTC offset ${offset})`);
  });

  it('adds no note for an ordinary local time', () => {
    const r = toInstant('2026-07-01 12:00', 'America/New_York');
    expect(r.ok && r.note).toBeUndefined();
  });

  it.each<[string, unknown]>([
    ['a year alone', '2026'],
    ['a compact date', '20260308'],
    ['February 30', '2026-02-30'],
    ['month 13', '2026-13-01 00:00'],
    ['hour 25', '2026-01-01 25:00'],
    ['second 60', '2026-01-01 10:00:60'],
    ['an offset without a time', '2026-01-01+02:00'],
    ['an offset hour of 24', '2026-01-01T10:00:00+24:00'],
    ['words', 'next tuesday'],
    ['an invalid Date', new Date(Number.NaN)],
    ['NaN', Number.NaN],
    ['beyond the Date range', 1e17],
    ['an object', { at: 1 }],
    ['a boolean', false],
  ])('rejects %s as timestamp_invalid', (_name, raw) => {
    const r = toInstant(raw, 'UTC');
    expect(r).toMatchObject({ ok: false, code: 'timestamp_invalid' });
  });
});

describe('ordering', () => {
  const src = source({ ordering: 'updated_at', fields: { last_order_at: 'updated_at' } });

  it('is the ordering column in epoch milliseconds', () => {
    expect(ok(run({ customer_id: 1, updated_at: '2026-07-01 12:00:00.250' }, src)).ordering).toBe(Date.UTC(2026, 6, 1, 16, 0, 0, 250));
  });

  it('is null when the ordering value is missing, without rejecting', () => {
    expect(ok(run({ customer_id: 1 }, src)).ordering).toBeNull();
    expect(ok(run({ customer_id: 1, updated_at: '' }, src)).ordering).toBeNull();
  });

  it('rejects an unreadable ordering value', () => {
    const r = rejected(run({ customer_id: 1, updated_at: 'soon' }, source({ ordering: 'updated_at' })));
    expect(r).toMatchObject({ code: 'timestamp_invalid', column: 'updated_at' });
  });

  it('notes a DST resolution once when the column is both ordering and a field', () => {
    const r = ok(run({ customer_id: 1, updated_at: '2026-11-01 01:30' }, src));
    expect(r.ordering).toBe(Date.parse('2026-11-01T05:30:00Z'));
    expect(r.values.last_order_at).toBe(Date.parse('2026-11-01T05:30:00Z') / 1000);
    expect(r.notes).toHaveLength(1);
    expect(r.notes![0]).toMatch(/^Column "updated_at" is ambiguous in America\/New_York/);
  });
});

// ---- events and objects ------------------------------------------------------------------------------

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const ulidTime = (id: string) => [...id.slice(0, 10)].reduce((t, c) => t * 32 + CROCKFORD.indexOf(c), 0);

describe('events', () => {
  const src = source({
    name: 'returns',
    records: 'event',
    timezone: 'Europe/London',
    event: { name: 'return_created', timestamp_column: 'created_at', id_columns: ['return_id'] },
    fields: { note: 'reason' },
  });
  const row = (over: Record<string, unknown> = {}) => ({ customer_id: 42, created_at: '2026-06-01 09:00', return_id: 'R-1', reason: 'damaged', ...over });

  it('builds the event: name, unix-second timestamp, person, data fields; the key is the event id', () => {
    const r = ok(run(row(), src));
    expect(r.event).toMatchObject({ name: 'return_created', timestamp: Date.UTC(2026, 5, 1, 8) / 1000, person: '42' });
    expect(r.key).toBe(r.event!.id);
    expect(r.values).toEqual({ note: 'damaged' });
  });

  it('gives a ULID whose time part is a recent-looking time taken from the key, not the event time', () => {
    const id = ok(run(row(), src)).event!.id;
    expect(isUlid(id)).toBe(true);
    expect(ulidTime(id)).toBeGreaterThanOrEqual(Date.UTC(2024, 0, 1));
    expect(ulidTime(id)).toBeLessThan(Date.UTC(2024, 0, 1) + 2 ** 32);
    expect(ulidTime(id)).toBe(ulidTime(ok(run(row({ created_at: '2030-01-01 00:00' }), src)).event!.id));
  });

  it('keeps the id when the timestamp or the source timezone is corrected (the event already delivered is the same one)', () => {
    const id = ok(run(row(), src)).event!.id;
    expect(ok(run(row({ created_at: '2026-06-01 10:00' }), src)).event!.id).toBe(id);
    expect(ok(run(row(), { ...src, timezone: 'America/New_York' })).event!.id).toBe(id);
  });

  it('uses the timestamp column only when id_columns names it, and then its text as written', () => {
    const withTs = { ...src, event: { ...src.event!, id_columns: ['return_id', 'created_at'] } };
    const id = ok(run(row(), withTs)).event!.id;
    expect(id).not.toBe(ok(run(row(), src)).event!.id);
    expect(ok(run(row(), { ...withTs, timezone: 'America/New_York' })).event!.id).toBe(id);
    expect(ok(run(row({ created_at: '2026-06-01 10:00' }), withTs)).event!.id).not.toBe(id);
  });

  it('gives the same id every time the same row is read', () => {
    expect(ok(run(row(), src)).event!.id).toBe(ok(run(row(), src)).event!.id);
  });

  it('gives the same id whether the id column came as a number or as text', () => {
    expect(ok(run(row({ return_id: 981 }), src)).event!.id).toBe(ok(run(row({ return_id: ' 981 ' }), src)).event!.id);
  });

  it('does not depend on data fields', () => {
    expect(ok(run(row({ reason: 'other' }), src)).event!.id).toBe(ok(run(row(), src)).event!.id);
  });

  it.each<[string, Record<string, unknown>, Partial<SourceSpec>]>([
    ['another id value', { return_id: 'R-2' }, {}],
    ['another source', {}, { name: 'returns_eu' }],
  ])('gives a different id for %s', (_name, over, srcOver) => {
    expect(ok(run(row(over), { ...src, ...srcOver })).event!.id).not.toBe(ok(run(row(), src)).event!.id);
  });

  it('does not let id tuples collide through the separator', () => {
    const two = { ...src, event: { ...src.event!, id_columns: ['a', 'b'] } };
    const x = ok(run(row({ a: 'x\u0000y', b: 'z' }), two)).event!.id;
    const y = ok(run(row({ a: 'x', b: 'y\u0000z' }), two)).event!.id;
    expect(x).not.toBe(y);
  });

  it.each<[string, Record<string, unknown>, string, string]>([
    ['no timestamp', { created_at: null }, 'timestamp_missing', 'created_at'],
    ['an unreadable timestamp', { created_at: 'later' }, 'timestamp_invalid', 'created_at'],
    ['a timestamp before 1970', { created_at: '1969-12-31 23:00' }, 'timestamp_invalid', 'created_at'],
    ['no id column value', { return_id: '' }, 'event_id_missing', 'return_id'],
    ['an id column that is an object', { return_id: { x: 1 } }, 'event_id_invalid', 'return_id'],
    ['no person', { customer_id: null }, 'identity_missing', 'customer_id'],
  ])('rejects %s', (_name, over, code, column) => {
    expect(rejected(run(row(over), src))).toMatchObject({ code, column });
  });

  it('accepts a long id column value (it is hashed, not sent)', () => {
    expect(ok(run(row({ return_id: 'r'.repeat(500) }), src)).event!.id).toHaveLength(26);
  });
});

describe('objects', () => {
  const src = source({
    name: 'stores',
    records: 'object',
    object: { type: 'store', type_id: '3', id_column: 'store_id' },
    identity: { column: 'manager_email', as: 'email' },
    fields: { note: 'city' },
  });

  it('keys the row by the object id, types it by the Customer.io type id, and relates the person when present', () => {
    const r = ok(run({ store_id: 17, manager_email: ' Boss@Shop.com ', city: 'Leeds' }, src));
    expect(r.key).toBe('17');
    expect(r.object).toEqual({ type: '3', id: '17', person: 'boss@shop.com' });
    expect(r.values).toEqual({ note: 'Leeds' });
  });

  it('does not require a person', () => {
    const r = ok(run({ store_id: 'st-1', city: 'York' }, src));
    expect(r.object).toEqual({ type: '3', id: 'st-1' });
  });

  it('keeps the object but notes an invalid person identity', () => {
    const r = ok(run({ store_id: 'st-1', manager_email: 'nobody' }, src));
    expect(r.object).toEqual({ type: '3', id: 'st-1' });
    expect(r.notes).toEqual([expect.stringMatching(/^Identity column "manager_email" \(as email\) is not a valid email address\. The object/)]);
  });

  it.each<[string, unknown, string]>([
    ['missing', undefined, 'identity_missing'],
    ['blank', ' ', 'identity_missing'],
    ['longer than 150 bytes', 's'.repeat(151), 'identity_too_long'],
  ])('rejects an object id that is %s', (_name, raw, code) => {
    const values: Record<string, unknown> = raw === undefined ? {} : { store_id: raw };
    expect(rejected(run(values, src))).toMatchObject({ code, column: 'store_id' });
  });
});

describe('rows the connector could not read', () => {
  it('rejects a row carrying __error with its message', () => {
    const r = rejected(run({ __error: 'Malformed CSV line: expected 3 columns (as in the header), got 2.' }));
    expect(r).toEqual({ ok: false, location: 'data/x.csv:7', code: 'row_malformed', reason: 'Malformed CSV line: expected 3 columns (as in the header), got 2.' });
  });

});

// ---- property ---------------------------------------------------------------------------------------

describe('normalize (property)', () => {
  const anything = fc.anything({
    withBigInt: true,
    withBoxedValues: true,
    withDate: true,
    withMap: true,
    withSet: true,
    withNullPrototype: true,
    withObjectString: true,
    withSparseArray: true,
    withTypedArray: true,
  });
  const interesting = fc.oneof(
    anything,
    fc.constantFrom('2026-03-08 02:30', '2026-11-01 01:30', '1700000000', ' Jo@Example.com ', '+44 20 7946 0958', 'gold', 'yes', '', '  '),
    fc.double(),
    fc.integer(),
    fc.string(),
  );
  const columns = ['customer_id', 'email', 'store_id', 'created_at', 'return_id', 'updated_at', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', '__error', '__proto__', 'constructor'];
  const valuesArb = fc.dictionary(fc.constantFrom(...columns), interesting);
  const sources: SourceSpec[] = [
    source({ ordering: 'updated_at', fields: { note: 'a', order_count: 'b', vip: 'c', tier: 'd', last_order_at: 'e', contact_email: 'f', contact_phone: 'g', free_tier: 'h' } }),
    source({ identity: { column: 'email', as: 'email' }, fields: { note: 'a' }, timezone: undefined }),
    source({ records: 'event', event: { name: 'e', timestamp_column: 'created_at', id_columns: ['return_id', 'a'] }, fields: { order_count: 'b' } }),
    source({ records: 'object', object: { type: 'store', type_id: '3', id_column: 'store_id' }, identity: { column: 'email', as: 'phone' }, fields: { tier: 'd' } }),
  ];

  it('never throws and always answers ok or a coded reject', () => {
    fc.assert(
      fc.property(valuesArb, fc.constantFrom(...sources), (values, src) => {
        const r = normalize({ location: 'p:1', values }, ctx(src));
        if (r.ok) {
          expect(typeof r.key).toBe('string');
          for (const v of Object.values(r.values)) expect(['string', 'number', 'boolean']).toContain(typeof v);
        } else {
          expect(r.code).toMatch(/^[a-z_]+$/);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

// ---- the compiled normaliser --------------------------------------------------------------------------

describe('createNormalizer', () => {
  // Instants around DST transitions in New York and London (a day either side, to the minute), written in
  // the shapes exports use: naive local text, ISO with Z or an offset, epoch seconds, Date objects.
  const TRANSITIONS = [Date.UTC(2026, 2, 8, 7), Date.UTC(2026, 10, 1, 6), Date.UTC(2026, 2, 29, 1), Date.UTC(2026, 9, 25, 1)];
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  const instant = fc
    .tuple(fc.constantFrom(...TRANSITIONS), fc.integer({ min: -24 * 60, max: 24 * 60 }), fc.integer({ min: 0, max: 59_999 }))
    .map(([t, minutes, ms]) => t + minutes * 60_000 + ms);
  const timestamp = fc.oneof(
    fc.tuple(instant, fc.integer({ min: 0, max: 8 }), fc.constantFrom(' ', 'T')).map(([t, shape, sep]) => {
      const d = new Date(t);
      const date = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
      const time = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
      const sec = `${time}:${pad(d.getUTCSeconds())}`;
      const ms = pad(d.getUTCMilliseconds(), 3);
      return [date, `${date}${sep}${time}`, `${date}${sep}${sec}`, `${date}${sep}${sec}.${ms}456`, `${date}T${sec}Z`, `${date} ${sec}-05`, `${date}T${sec}+05:30`, ` ${date}${sep}${sec} `, `${date}${sep}${sec} Z`][shape]!;
    }),
    instant.map((t) => new Date(t)),
    instant.map((t) => Math.floor(t / 1000)),
    instant.map((t) => String(Math.floor(t / 1000))),
  );
  const blank = fc.constantFrom(null, undefined, '', '  ', '\t');
  const noise = fc.oneof(fc.string(), fc.double(), fc.integer(), fc.boolean(), fc.bigInt(), fc.date(), fc.constantFrom('constructor', '__proto__', 'x'.repeat(1001), '😀'.repeat(251)));
  /** Mostly values of the column's kind, sometimes blank, sometimes anything. */
  const typed = <T>(arb: fc.Arbitrary<T>) => fc.oneof({ weight: 10, arbitrary: arb }, { weight: 2, arbitrary: blank }, { weight: 1, arbitrary: noise });
  const email = fc.oneof(
    fc.emailAddress(),
    fc.emailAddress().map((e) => ` ${e.toUpperCase()} `),
    fc.constantFrom('jo.@x.com', 'j..o@x.com', 'jo@-x.com', 'jo@x.c', `${'a'.repeat(64)}@b.co`, `${'a'.repeat(65)}@b.co`, 'jo@bücher.de', 'jo smith@x.com'),
  );
  const phone = fc.oneof(fc.constantFrom('+1 415 555 2671', '(415) 555-2671', '020 7946 0958', '+44 20 7946 0958', '12345'), fc.integer({ min: 1, max: 1e11 }));
  const rowValues = fc.record(
    {
      customer_id: typed(fc.oneof(fc.integer({ min: 0, max: 1e12 }).map(String), fc.integer(), fc.string({ minLength: 1, maxLength: 12 }))),
      email: typed(email),
      phone: typed(phone),
      store_id: typed(fc.oneof(fc.string({ minLength: 1, maxLength: 12 }), fc.integer())),
      created_at: typed(timestamp),
      return_id: typed(fc.oneof(fc.string({ minLength: 1, maxLength: 8 }), fc.integer())),
      updated_at: typed(timestamp),
      a: typed(fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean())),
      b: typed(fc.oneof(fc.double().map(String), fc.integer().map(String), fc.double(), fc.constantFrom(' 12.5 ', '1e3', '.5', '5.', '+.5e-3', '1e', '0x10', '\u00a07', '1E+400'))),
      c: typed(fc.constantFrom('yes', 'No', ' TRUE ', 'false', '1', '0', 1, 0, true, 'maybe')),
      d: typed(fc.constantFrom('gold', ' silver ', 'Gold', 'platinum')),
      e: typed(timestamp),
      f: typed(email),
      g: typed(phone),
      h: typed(fc.constantFrom('anything', 7, false)),
    },
    { requiredKeys: [] },
  );
  const allFields = { note: 'a', order_count: 'b', vip: 'c', tier: 'd', last_order_at: 'e', contact_email: 'f', contact_phone: 'g', free_tier: 'h' };
  const sources: SourceSpec[] = [
    source({ ordering: 'updated_at', fields: allFields }),
    source({ ordering: 'e', timezone: 'Europe/London', fields: allFields }),
    source({ identity: { column: 'email', as: 'email' }, fields: { note: 'a', last_order_at: 'e' }, timezone: undefined }),
    source({ identity: { column: 'phone', as: 'phone' }, fields: { order_count: 'b', vip: 'c' } }),
    source({ records: 'event', event: { name: 'e', timestamp_column: 'created_at', id_columns: ['return_id', 'a'] }, fields: { order_count: 'b', last_order_at: 'created_at' } }),
    source({ records: 'object', object: { type: 'store', type_id: '3', id_column: 'store_id' }, identity: { column: 'email', as: 'email' }, fields: { tier: 'd', contact_phone: 'g' } }),
    source({ records: 'object', object: { type: 'store', type_id: '3', id_column: 'store_id' }, identity: { column: 'phone', as: 'phone' }, fields: { note: 'a' }, ordering: 'updated_at' }),
  ];
  const normalization = fc.constantFrom<NormalizeContext['normalization']>(
    undefined,
    { phone: { format: 'e164', default_country: 'US' } },
    { email: { trim: false, lowercase: false }, phone: { format: 'e164', default_country: 'GB' } },
  );
  const keyOrder = (r: NormalizeResult) => [Object.keys(r), r.ok ? Object.keys(r.values) : []];

  it('answers every row of a run as a normaliser compiled for that row alone would', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...sources),
        normalization,
        fc.array(rowValues, { minLength: 1, maxLength: 5 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 12 }),
        (src, rules, pool, picks) => {
          const context: NormalizeContext = { ...ctx(src), normalization: rules };
          const reused = createNormalizer(context);
          // Rows repeat (the same timestamp text twice in a row, say): nothing may carry over between rows.
          for (const pick of picks) {
            const row = { location: `p:${pick}`, values: pool[pick % pool.length]! };
            const got = reused(row);
            const alone = createNormalizer({ ...context })(row);
            expect(got).toStrictEqual(alone);
            expect(keyOrder(got)).toEqual(keyOrder(alone));
            // The wrapper keeps one normaliser per context object, and answers the same.
            expect(normalize(row, context)).toStrictEqual(alone);
          }
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('never puts an identity, email or phone value into a reason or a note', () => {
    // Every PII value carries a marker that no reason text or column name contains.
    const marked = fc.oneof(
      fc.tuple(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 })).map(([x, y]) => `${x}Qz9${y}`),
      fc.tuple(fc.string({ maxLength: 8 }), fc.constantFrom('Qz9@x.com', '@Qz9.io', 'Qz9@', '.Qz9@a.b')).map(([x, y]) => `${x}${y}`),
      fc.constantFrom('+1 Qz9 555', 'Qz9'.repeat(60), '(Qz9) 555-2671'),
    );
    const pii = ['customer_id', 'email', 'phone', 'store_id', 'f', 'g'];
    fc.assert(
      fc.property(fc.constantFrom(...sources), normalization, rowValues, fc.dictionary(fc.constantFrom(...pii), marked), (src, rules, values, markedValues) => {
        const r = normalize({ location: 'p:1', values: { ...values, ...markedValues } }, { ...ctx(src), normalization: rules });
        if (!r.ok) expect(r.reason).not.toContain('Qz9');
        else for (const note of r.notes ?? []) expect(note).not.toContain('Qz9');
      }),
      { numRuns: 3000 },
    );
  });

  const FIRST_TEXT_MS = Date.parse('0001-01-01T00:00:00Z');
  const LAST_TEXT_MS = Date.parse('9999-12-31T23:59:59.999Z');

  it('reads the textual form of an accepted row back to the same row', () => {
    // One column per field, so that a column's text stands for one value.
    const src = source({
      ordering: 'updated_at',
      fields: { note: 'a', order_count: 'b', vip: 'c', tier: 'd', last_order_at: 'e', contact_email: 'f', contact_phone: 'g', free_tier: 'h' },
    });
    const context = ctx(src);
    const columnOf = src.fields;
    const text = (field: string, v: SyncValue): string =>
      REGISTRY[field]!.type === 'timestamp' && !REGISTRY[field]!.format ? new Date((v as number) * 1000).toISOString() : String(v);
    let accepted = 0;
    fc.assert(
      fc.property(rowValues, (values) => {
        const first = normalize({ location: 'p:1', values }, context);
        if (!first.ok) return;
        // Dates and epoch numbers reach beyond the years 1-9999 that timestamp text can be written in.
        const instants = [first.ordering, typeof first.values.last_order_at === 'number' ? first.values.last_order_at * 1000 : null];
        if (instants.some((ms) => ms !== null && (ms < FIRST_TEXT_MS || ms > LAST_TEXT_MS))) return;
        accepted++;
        const again: Record<string, unknown> = { customer_id: first.key };
        for (const [field, v] of Object.entries(first.values)) again[columnOf[field]!] = text(field, v);
        // Blanks are written back as nulls; absent columns stay absent.
        for (const field of first.blanks) again[columnOf[field]!] = null;
        if (first.ordering !== null) again.updated_at = new Date(first.ordering).toISOString();
        const second = ok(normalize({ location: 'p:1', values: again }, context));
        // Notes may differ: a DST note on a local time has no counterpart in the instant written back.
        // An epoch of -0 reads as the instant -0, which is written back as 1970-01-01T00:00:00Z (0).
        const { notes: _before, ...expected } = first;
        const { notes: _after, ...actual } = second;
        const zero = (x: SyncValue): SyncValue => (Object.is(x, -0) ? 0 : x);
        expected.values = Object.fromEntries(Object.entries(expected.values).map(([k, v]) => [k, zero(v)]));
        if (expected.ordering !== null) expected.ordering = zero(expected.ordering) as number;
        expect(actual).toStrictEqual(expected);
        expect(Object.keys(second.values)).toEqual(Object.keys(first.values));
      }),
      { numRuns: 3000 },
    );
    // The property says nothing if hardly any row is accepted.
    expect(accepted).toBeGreaterThan(300);
  });

  it('reads a repeated timestamp text the same way, note included, in every row', () => {
    const src = source({ ordering: 'updated_at', fields: { last_order_at: 'updated_at' } });
    const run = createNormalizer(ctx(src));
    const rows = [1, 2, 3].map((i) => run({ location: `x:${i}`, values: { customer_id: i, updated_at: '2026-11-01 01:30' } }));
    for (const r of rows) {
      expect(ok(r).ordering).toBe(Date.parse('2026-11-01T05:30:00Z'));
      expect(ok(r).notes).toEqual([expect.stringMatching(/^Column "updated_at" is ambiguous/)]);
    }
    expect(ok(run({ location: 'x:4', values: { customer_id: 4, updated_at: '2026-07-01 12:00' } })).notes).toBeUndefined();
  });

  it('reads a Date again in every row, even the same object changed in between', () => {
    const run = createNormalizer(ctx(withField('last_order_at')));
    const when = new Date('2026-01-02T03:04:05Z');
    expect(ok(run({ location: 'x:1', values: { customer_id: 1, col: when } })).values.last_order_at).toBe(Date.UTC(2026, 0, 2, 3, 4, 5) / 1000);
    when.setTime(Date.UTC(2027, 0, 1));
    expect(ok(run({ location: 'x:2', values: { customer_id: 1, col: when } })).values.last_order_at).toBe(Date.UTC(2027, 0, 1) / 1000);
  });

  it('keeps each row its own notes array, event and object', () => {
    const src = source({ records: 'object', object: { type: 'store', type_id: '3', id_column: 'store_id' }, identity: { column: 'manager_email', as: 'email' }, fields: {} });
    const run = createNormalizer(ctx(src));
    const a = ok(run({ location: 'x:1', values: { store_id: 's1', manager_email: 'nobody' } }));
    const b = ok(run({ location: 'x:2', values: { store_id: 's2', manager_email: 'boss@shop.com' } }));
    expect(a.notes).toHaveLength(1);
    expect(b.notes).toBeUndefined();
    expect(a.object).toEqual({ type: '3', id: 's1' });
    expect(b.object).toEqual({ type: '3', id: 's2', person: 'boss@shop.com' });
  });
});

describe('values found while comparing with the previous implementation', () => {
  it.each(['constructor', '__proto__', ' Constructor ', '__PROTO__'])('rejects the boolean %j (it used to come out as an Object member)', (raw) => {
    const r = rejected(run({ customer_id: 1, col: raw }, withField('vip')));
    expect(r).toMatchObject({ code: 'type_mismatch', field: 'vip' });
  });

  it.each<[string, unknown, unknown]>([
    ['a trailing dot', '5.', 5],
    ['a signed fraction with an exponent', '+.5e-3', 0.0005],
    ['a no-break space around it (trimmed)', '\u00a07\u00a0', 7],
    ['a line separator after it (trimmed)', '7\u2028', 7],
  ])('reads a number with %s', (_name, raw, expected) => {
    expect(ok(run({ customer_id: 1, col: raw }, withField('order_count'))).values.order_count).toBe(expected);
  });

  it.each(['1e', 'e5', '.', '-', '1E+400', '1_000', '１２'])('refuses the number text %j', (raw) => {
    expect(rejected(run({ customer_id: 1, col: raw }, withField('order_count'))).code).toBe('type_mismatch');
  });

  it.each<[string, string, NormalizeContext['normalization'], string | undefined]>([
    ['a 64-character local part', `${'a'.repeat(64)}@b.co`, undefined, `${'a'.repeat(64)}@b.co`],
    ['a 65-character local part', `${'a'.repeat(65)}@b.co`, undefined, undefined],
    ['254 characters in all', `a@${'b'.repeat(249)}.co`, undefined, `a@${'b'.repeat(249)}.co`],
    ['255 characters in all', `a@${'b'.repeat(250)}.co`, undefined, undefined],
    ['capitals when lowercasing is off', 'Jo.Smith@Example.COM', { email: { trim: true, lowercase: false } }, 'Jo.Smith@Example.COM'],
    ['characters beyond the everyday set', "o'brien!#$&*=?^`{|}~@x.io", undefined, "o'brien!#$&*=?^`{|}~@x.io"],
    ['a label ending in a hyphen', 'jo@x-.com', undefined, undefined],
  ])('reads an email with %s', (_name, raw, normalization, expected) => {
    const r = normalize({ location: 'l', values: { customer_id: 1, col: raw } }, { ...ctx(withField('contact_email')), normalization });
    if (expected === undefined) expect(rejected(r).code).toBe('value_invalid_email');
    else expect(ok(r).values.contact_email).toBe(expected);
  });
});

describe('values that only pretend to be dates', () => {
  it('rejects them with a reason instead of throwing', async () => {
    const { normalize: run } = await import('../../test/sync/normalizer-cache.ts');
    const fake = { [Symbol.toStringTag]: 'Date' };
    const tricky = Object.assign(new Date('2026-05-01T00:00:00Z'), { getTime: () => { throw new Error('boom'); }, toISOString: () => { throw new Error('boom'); } });
    const source = {
      name: 's', system: 'crm', records: 'person', identity: { column: 'id', as: 'id' }, connector: { type: 'ndjson', path: 'x' },
      fields: { signed_up_at: 'at', note: 'note' }, timezone: 'UTC',
    } as unknown as import('../spec/schema/index.ts').SourceSpec;
    const fields = new Map<string, import('../spec/schema/index.ts').FieldDef>([
      ['signed_up_at', { type: 'timestamp', owner: 'crm' } as import('../spec/schema/index.ts').FieldDef],
      ['note', { type: 'string', owner: 'crm' } as import('../spec/schema/index.ts').FieldDef],
    ]);
    const ctx = { source, fields, normalization: undefined, primary: 'id' as const };
    expect(() => run({ location: 'r:1', values: { id: 'a', at: fake, note: 'x' } }, ctx)).not.toThrow();
    expect(run({ location: 'r:1', values: { id: 'a', at: fake, note: 'x' } }, ctx)).toMatchObject({ ok: false, field: 'signed_up_at' });
    expect(run({ location: 'r:1', values: { id: 'a', at: '2026-05-01T00:00:00Z', note: fake } }, ctx)).toMatchObject({ ok: false, field: 'note', code: 'type_mismatch' });
    expect(run({ location: 'r:2', values: { id: 'a', at: tricky, note: tricky } }, ctx)).toMatchObject({
      ok: true,
      values: { signed_up_at: Date.parse('2026-05-01T00:00:00Z') / 1000, note: '2026-05-01T00:00:00.000Z' },
    });
  });
});
