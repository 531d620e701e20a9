import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { digestOf } from '../core/digest.ts';
import type { FieldDef, SourceSpec } from '../spec/schema/index.ts';
import { changedFields, prepareRow, readPayload, type Payload } from './prepare.ts';
import type { NormalizedRow, SyncValue } from './types.ts';

function source(over: Partial<SourceSpec> = {}): SourceSpec {
  return {
    kind: 'Source',
    name: 'warehouse_vip',
    system: 'warehouse',
    connector: { type: 'ndjson', path: 'x.ndjson' },
    schedule: '0 3 * * *',
    records: 'person',
    identity: { column: 'customer_id', as: 'id' },
    fields: { vip_tier: 'tier', vip_tier_updated_at: 'tier_at', order_count: 'orders', preferred_store: 'store' },
    null_policy: 'protect',
    timezone: 'UTC',
    ...over,
  };
}

const FIELDS = new Map<string, FieldDef>(
  Object.entries({
    vip_tier: { type: 'enum', values: ['gold', 'silver'], owner: 'warehouse', nature: 'state', updated_at: 'vip_tier_updated_at' },
    vip_tier_updated_at: { type: 'timestamp', owner: 'warehouse' },
    order_count: { type: 'number', owner: 'warehouse' },
    preferred_store: { type: 'string', owner: 'warehouse', clearable: true },
  } satisfies Record<string, FieldDef>),
);

function row(values: Record<string, SyncValue>, blanks: string[] = [], over: Partial<NormalizedRow> = {}): NormalizedRow {
  return { ok: true, location: 'x.ndjson:1', key: 'c1', ordering: 1000, values, blanks, ...over };
}

const prepare = (r: NormalizedRow, previous?: Payload, src = source()) => prepareRow(r, src, FIELDS, previous);

describe('prepareRow', () => {
  it('keeps every mapped value and hashes equal content equally, whatever the key order', () => {
    const a = prepare(row({ vip_tier: 'gold', order_count: 3 }));
    const b = prepare(row({ order_count: 3, vip_tier: 'gold' }));
    expect(a.payload).toEqual({ records: 'person', attributes: { vip_tier: 'gold', order_count: 3 } });
    expect(a.hash).toBe(b.hash);
    expect(prepare(row({ vip_tier: 'gold', order_count: 4 })).hash).not.toBe(a.hash);
    expect(a).toMatchObject({ key: 'c1', ordering: 1000, nullBlocked: [], heldBack: [], erased: [] });
  });

  it('never sends a blank of a field that is not clearable, and counts it as blocked', () => {
    const p = prepare(row({ vip_tier: 'gold' }, ['order_count']));
    expect(p.payload.attributes).toEqual({ vip_tier: 'gold' });
    expect(p.nullBlocked).toEqual(['order_count']);
    expect(p.erased).toEqual([]);
  });

  it('erases a blank of a clearable field with null', () => {
    const p = prepare(row({ order_count: 1 }, ['preferred_store']));
    expect(p.payload.attributes).toEqual({ order_count: 1, preferred_store: null });
    expect(p.erased).toEqual(['preferred_store']);
  });

  it('does not count an erase of what the last payload already erased', () => {
    const previous: Payload = { records: 'person', attributes: { order_count: 1, preferred_store: null } };
    const p = prepare(row({ order_count: 1 }, ['preferred_store']), previous);
    expect(p.erased).toEqual([]);
    expect(p.hash).toBe(prepare(row({ order_count: 1 }, ['preferred_store'])).hash);
  });

  it('lets null_policy overwrite erase any blank', () => {
    const p = prepare(row({}, ['order_count', 'vip_tier']), undefined, source({ null_policy: 'overwrite' }));
    expect(p.payload.attributes).toEqual({ order_count: null, vip_tier: null });
    expect(p.erased).toEqual(['order_count', 'vip_tier']);
    expect(p.nullBlocked).toEqual([]);
  });

  it('keeps the value last sent for a blocked blank, in the hash and the mirror but not to be sent', () => {
    const sent = prepare(row({ vip_tier: 'gold', vip_tier_updated_at: 100, order_count: 3 }));
    const p = prepare(row({ vip_tier_updated_at: 100, order_count: 3 }, ['vip_tier']), sent.payload);
    expect(p.payload).toEqual({ records: 'person', attributes: { vip_tier: 'gold', vip_tier_updated_at: 100, order_count: 3 }, kept: ['vip_tier', 'vip_tier_updated_at'] });
    // Customer.io holds exactly what it held: not a change.
    expect(p.hash).toBe(sent.hash);
  });

  it('holds the updated_at companion back with its blocked state, so a new timestamp alone is no change', () => {
    const sent = prepare(row({ vip_tier: 'gold', vip_tier_updated_at: 100 }));
    const p = prepare(row({ vip_tier_updated_at: 200 }, ['vip_tier']), sent.payload);
    expect(p.payload.attributes).toEqual({ vip_tier: 'gold', vip_tier_updated_at: 100 });
    // Each field says what happened to it: the state was a blank kept from erasing, the companion was
    // not blank at all and is held back with it.
    expect(p.nullBlocked).toEqual(['vip_tier']);
    expect(p.heldBack).toEqual(['vip_tier_updated_at']);
    expect(p.hash).toBe(sent.hash);
    // Without anything sent before, neither goes out.
    expect(prepare(row({ vip_tier_updated_at: 200 }, ['vip_tier'])).payload.attributes).toEqual({});
  });

  it('counts a blank companion as a blank, not as held back', () => {
    const p = prepare(row({}, ['vip_tier', 'vip_tier_updated_at']));
    expect(p.nullBlocked).toEqual(['vip_tier', 'vip_tier_updated_at']);
    expect(p.heldBack).toEqual([]);
  });

  it('treats an absent field as not provided: kept in the mirror, never sent, never a blank; its companion is held back', () => {
    const sent = prepare(row({ vip_tier: 'gold', vip_tier_updated_at: 100, preferred_store: 'soho', order_count: 1 }));
    const p = prepare(row({ vip_tier_updated_at: 200, order_count: 2 }, [], { absent: ['vip_tier', 'preferred_store'] }), sent.payload);
    expect(p.payload.attributes).toEqual({ vip_tier: 'gold', vip_tier_updated_at: 100, preferred_store: 'soho', order_count: 2 });
    expect(p.payload.kept).toEqual(['preferred_store', 'vip_tier', 'vip_tier_updated_at']);
    expect(p.nullBlocked).toEqual([]);
    expect(p.erased).toEqual([]);
    expect(p.heldBack).toEqual(['vip_tier_updated_at']);
    // A clearable field that is absent is not erased either (only an explicit blank erases it).
    expect(prepare(row({}, [], { absent: ['preferred_store'] }), sent.payload).payload.attributes.preferred_store).toBe('soho');
  });

  it('sends a state with a new companion when the state is present', () => {
    const sent = prepare(row({ vip_tier: 'gold', vip_tier_updated_at: 100 }));
    const p = prepare(row({ vip_tier: 'gold', vip_tier_updated_at: 200 }), sent.payload);
    expect(p.payload).toEqual({ records: 'person', attributes: { vip_tier: 'gold', vip_tier_updated_at: 200 } });
    expect(p.hash).not.toBe(sent.hash);
    expect(changedFields(sent.payload, p.payload)).toEqual(['vip_tier_updated_at']);
  });

  it('hashes an event by its identity only: later edits of its data are the same event', () => {
    const src = source({ records: 'event', fields: { order_count: 'orders' } });
    const e = { name: 'return_created', id: '01J0000000000000000000000A', timestamp: 1, person: 'c1' };
    const a = prepareRow(row({ order_count: 1 }, [], { event: e }), src, FIELDS);
    const b = prepareRow(row({ order_count: 2 }, [], { event: e }), src, FIELDS);
    expect(a.hash).toBe(b.hash);
    expect(a.payload).toEqual({ records: 'event', attributes: { order_count: 1 }, event: e });
    expect(prepareRow(row({ order_count: 1 }, [], { event: { ...e, id: '01J0000000000000000000000B' } }), src, FIELDS).hash).not.toBe(a.hash);
  });

  it('keeps the object and its person in the payload and the hash', () => {
    const src = source({ records: 'object', fields: { order_count: 'orders' } });
    const a = prepareRow(row({ order_count: 1 }, [], { object: { type: '1', id: 's1', person: 'c1' } }), src, FIELDS);
    const b = prepareRow(row({ order_count: 1 }, [], { object: { type: '1', id: 's1', person: 'c2' } }), src, FIELDS);
    expect(a.payload.object).toEqual({ type: '1', id: 's1', person: 'c1' });
    expect(a.hash).not.toBe(b.hash);
  });

  it('never sends a blocked blank, and re-preparing its result against itself is no change (property)', () => {
    const value = fc.oneof(fc.constantFrom<SyncValue>('gold', 'silver'), fc.integer({ min: 0, max: 5 }));
    const names = ['vip_tier', 'vip_tier_updated_at', 'order_count', 'preferred_store'] as const;
    const rowArb = fc.record(Object.fromEntries(names.map((n) => [n, fc.option(value, { nil: undefined })])) as Record<(typeof names)[number], fc.Arbitrary<SyncValue | undefined>>);
    const toRow = (r: Record<string, SyncValue | undefined>) => {
      const values: Record<string, SyncValue> = {};
      const blanks: string[] = [];
      for (const n of names) {
        if (r[n] === undefined) blanks.push(n);
        else values[n] = r[n]!;
      }
      return row(values, blanks);
    };
    fc.assert(
      fc.property(rowArb, rowArb, (first, second) => {
        const sent = prepare(toRow(first));
        const next = prepare(toRow(second), sent.payload);
        for (const f of next.nullBlocked) {
          // A blocked field is either absent or carried over from before, and then never sent.
          if (f in next.payload.attributes) expect(next.payload.kept).toContain(f);
        }
        for (const f of next.payload.kept ?? []) expect(next.payload.attributes[f]).toEqual(sent.payload.attributes[f]);
        // The same read again, against what this one would store, changes nothing.
        expect(prepare(toRow(second), next.payload).hash).toBe(next.hash);
      }),
    );
  });
});

describe('changedFields', () => {
  it('lists every field of a new payload, and only the differing ones of a changed payload', () => {
    expect(changedFields(undefined, { records: 'person', attributes: { b: 1, a: 2 } })).toEqual(['a', 'b']);
    expect(changedFields({ records: 'person', attributes: { a: 1, b: 2, c: 3 } }, { records: 'person', attributes: { a: 1, b: 5, d: null } })).toEqual(['b']);
    expect(changedFields({ records: 'person', attributes: { a: 'x' } }, { records: 'person', attributes: { a: null } })).toEqual(['a']);
  });
});

describe('prepareRow hashing (property)', () => {
  // Names and texts that a hand-written serialiser could get wrong: integer-like keys (engines list
  // them first), quotes, backslashes, control characters, lone and paired surrogates, non-ASCII.
  const name = fc.oneof(
    fc.constantFrom('vip_tier', 'vip_tier_updated_at', 'order_count', 'preferred_store', '10', '2', '0', 'a"b', 'back\\slash', 'ü', '😀', 'Z', 'a', ''),
    fc.string({ maxLength: 6 }),
    fc.string({ unit: 'binary', maxLength: 4 }),
  );
  const text = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), fc.constantFrom('gold', 'line\nbreak', 'tab\t', '\u2028', '"', '\\', '\ud800', '\udc00x'));
  const value: fc.Arbitrary<SyncValue> = fc.oneof(text, fc.double(), fc.integer(), fc.constantFrom(-0, 1e21, 5e-324, Number.NaN, Number.POSITIVE_INFINITY), fc.boolean(), fc.constant(null));
  const event = fc.record({ name: text, id: text, timestamp: fc.oneof(fc.integer(), fc.double()), person: text });
  const object = fc.record({ type: text, id: text, person: text }, { requiredKeys: ['type', 'id'] });
  const fieldDef = fc.record({ clearable: fc.boolean(), updated_at: name }, { requiredKeys: [] });

  it('hashes exactly what canonicalJson writes for the payload (events: for the event)', () => {
    fc.assert(
      fc.property(
        fc.dictionary(name, value, { maxKeys: 10 }),
        fc.uniqueArray(name, { maxLength: 4 }),
        fc.constantFrom<SourceSpec['records']>('person', 'object', 'event'),
        fc.option(event, { nil: undefined }),
        fc.option(object, { nil: undefined }),
        fc.dictionary(name, fieldDef),
        fc.option(fc.dictionary(name, value), { nil: undefined }),
        fc.constantFrom<SourceSpec['null_policy']>('protect', 'overwrite'),
        (values, blankNames, records, e, o, defs, previousA, nullPolicy) => {
          const blanks = blankNames.filter((b) => !Object.hasOwn(values, b));
          const fields = new Map(Object.entries(defs).map(([k, d]) => [k, { type: 'string', owner: 'warehouse', ...d } as FieldDef]));
          const src = source({ records, null_policy: nullPolicy });
          const r = row(values, blanks, { ...(e ? { event: e } : {}), ...(o ? { object: o } : {}) });
          const previous: Payload | undefined = previousA ? { records: records, attributes: previousA } : undefined;
          const p = prepareRow(r, src, fields, previous);
          // The hash is taken under the one-letter keys payloads had before issue 9 (see prepare.ts).
          const { kept: _kept, records: pr, attributes: pa, event: pe, object: po } = p.payload;
          const hashed = { r: pr, a: pa, ...(pe !== undefined ? { e: pe } : {}), ...(po !== undefined ? { o: po } : {}) };
          expect(p.hash).toBe(digestOf(records === 'event' ? { e } : hashed).slice(0, 32));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('leaves the normalised row as it was', () => {
    fc.assert(
      // Plain objects, as normalize makes them (structuredClone would not keep a null prototype).
      fc.property(fc.dictionary(name, value, { maxKeys: 8, noNullPrototype: true }), fc.uniqueArray(name, { maxLength: 4 }), fc.dictionary(name, value), (values, blankNames, previousA) => {
        const blanks = blankNames.filter((b) => !Object.hasOwn(values, b));
        const r = row(values, blanks);
        const before = structuredClone(r);
        prepare(r, { records: 'person', attributes: previousA });
        expect(r).toStrictEqual(before);
        expect(Object.keys(r.values)).toEqual(Object.keys(before.values));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('payloads across versions', () => {
  // Hashes written by the version before issue 9, whose payloads used one-letter keys. If any of these
  // moves, every unchanged row of every source looks changed after an upgrade and is sent again.
  it.each<[string, () => ReturnType<typeof prepareRow>, string]>([
    ['a person row', () => prepare(row({ vip_tier: 'gold', order_count: 3, preferred_store: 'Mitte "1"' })), '3f429c586438ef4aabfaf00d4b7b8ded'],
    [
      'a person row with a blocked blank kept from the last payload',
      () => prepare(row({ vip_tier_updated_at: 200, order_count: 3 }, ['vip_tier']), { records: 'person', attributes: { vip_tier: 'gold', vip_tier_updated_at: 100 } }),
      '3fb960d1d748f4df91828a11e0cf405b',
    ],
    [
      'an object row with its person',
      () => prepareRow(row({ order_count: 2 }, [], { object: { type: '1', id: 'berlin-1', person: 'c1' } }), source({ records: 'object' }), FIELDS),
      '9ed216591a65f1a544b4ac5f4d4a59a1',
    ],
    [
      'an event row',
      () => prepareRow(row({ order_count: 1 }, [], { event: { name: 'order_placed', id: '01J0000000000000000000000A', timestamp: 1779000000, person: 'c1' } }), source({ records: 'event' }), FIELDS),
      '29630582c11d7bccbefa70782cc1ca24',
    ],
  ])('keeps the hash the previous version stored for %s', (_name, prepared, hash) => {
    expect(prepared().hash).toBe(hash);
  });

  it('reads a payload the previous version stored under one-letter keys as the same payload', () => {
    const stored = '{"r":"person","a":{"vip_tier_updated_at":100,"order_count":3,"vip_tier":"gold"},"k":["vip_tier","vip_tier_updated_at"]}';
    expect(readPayload(stored)).toEqual({ records: 'person', attributes: { vip_tier_updated_at: 100, order_count: 3, vip_tier: 'gold' }, kept: ['vip_tier', 'vip_tier_updated_at'] });
    expect(readPayload('{"r":"object","a":{"order_count":2},"o":{"type":"1","id":"berlin-1","person":"c1"}}')).toEqual({
      records: 'object',
      attributes: { order_count: 2 },
      object: { type: '1', id: 'berlin-1', person: 'c1' },
    });
    expect(readPayload('{"r":"event","a":{},"e":{"name":"x","id":"01J0000000000000000000000A","timestamp":5,"person":"c1"}}')).toEqual({
      records: 'event',
      attributes: {},
      event: { name: 'x', id: '01J0000000000000000000000A', timestamp: 5, person: 'c1' },
    });
  });

  it('reads back what it writes, and prepares a row against an old payload as against the same payload written now', () => {
    const sent = prepare(row({ vip_tier: 'gold', vip_tier_updated_at: 100, order_count: 3 }));
    const written = JSON.stringify(sent.payload);
    expect(written).not.toMatch(/"[raeok]":/);
    expect(readPayload(written)).toEqual(sent.payload);
    const old = JSON.stringify({ r: 'person', a: sent.payload.attributes });
    const next = row({ vip_tier_updated_at: 200, order_count: 4 }, ['vip_tier']);
    expect(prepare(next, readPayload(old))).toEqual(prepare(next, readPayload(written)));
    expect(prepare(next, readPayload(old)).payload.attributes.vip_tier).toBe('gold');
  });
});
