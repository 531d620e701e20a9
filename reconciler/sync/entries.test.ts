import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { identifyEntryText, toTrackEntry, type EntryOptions } from './entries.ts';
import type { Payload } from './prepare.ts';

describe('toTrackEntry', () => {
  it('identifies a person under the source identifier with every attribute of the payload', () => {
    const p: Payload = { records: 'person', attributes: { vip_tier: 'gold', vip_tier_updated_at: 100, preferred_store: null } };
    expect(toTrackEntry('c1', p, { identifier: 'id' })).toEqual({
      type: 'person',
      action: 'identify',
      identifiers: { id: 'c1' },
      attributes: { vip_tier: 'gold', vip_tier_updated_at: 100, preferred_store: null },
    });
    expect(toTrackEntry('ana@example.com', p, { identifier: 'email' })).toMatchObject({ identifiers: { email: 'ana@example.com' } });
  });

  it('leaves out values only kept as the mirror of what Customer.io holds', () => {
    const p: Payload = { records: 'person', attributes: { vip_tier: 'gold', vip_tier_updated_at: 100, order_count: 4 }, kept: ['vip_tier', 'vip_tier_updated_at'] };
    expect(toTrackEntry('c1', p, { identifier: 'id' })).toMatchObject({ attributes: { order_count: 4 } });
    expect(p.attributes).toEqual({ vip_tier: 'gold', vip_tier_updated_at: 100, order_count: 4 });
  });

  it('stamps people with the run time, and nothing else', () => {
    const stamp = { field: 'last_synced_by_tidemark', at: 1_780_000_000 };
    expect(toTrackEntry('c1', { records: 'person', attributes: { order_count: 1 } }, { identifier: 'id', stamp })).toMatchObject({
      attributes: { order_count: 1, last_synced_by_tidemark: 1_780_000_000 },
    });
    const event = toTrackEntry('01J0000000000000000000000A', { records: 'event', attributes: {}, event: { name: 'x', id: '01J0000000000000000000000A', timestamp: 5, person: 'c1' } }, { identifier: 'id', stamp });
    expect(event).not.toHaveProperty('attributes.last_synced_by_tidemark');
    const object = toTrackEntry('s1', { records: 'object', attributes: {}, object: { type: '1', id: 's1' } }, { identifier: 'id', stamp });
    expect(object).not.toHaveProperty('attributes.last_synced_by_tidemark');
  });

  it('sends an event for its person with its deterministic id, timestamp and data', () => {
    const p: Payload = { records: 'event', attributes: { return_reason: 'damaged', return_value: 32 }, event: { name: 'return_created', id: '01J0000000000000000000000A', timestamp: 1_779_000_000, person: 'c1' } };
    expect(toTrackEntry(p.event!.id, p, { identifier: 'id' })).toEqual({
      type: 'person',
      action: 'event',
      identifiers: { id: 'c1' },
      name: 'return_created',
      id: '01J0000000000000000000000A',
      timestamp: 1_779_000_000,
      attributes: { return_reason: 'damaged', return_value: 32 },
    });
  });

  it('identifies an object by type id and id, related to its person by the source identifier', () => {
    const p: Payload = { records: 'object', attributes: { store_name: 'Mitte' }, object: { type: '1', id: 'berlin-1', person: 'ana@example.com' } };
    expect(toTrackEntry('berlin-1', p, { identifier: 'email' })).toEqual({
      type: 'object',
      action: 'identify',
      identifiers: { object_type_id: '1', object_id: 'berlin-1' },
      attributes: { store_name: 'Mitte' },
      cio_relationships: [{ identifiers: { email: 'ana@example.com' } }],
    });
    expect(toTrackEntry('lyon-1', { records: 'object', attributes: {}, object: { type: '1', id: 'lyon-1' } }, { identifier: 'id' })).not.toHaveProperty('cio_relationships');
  });
});

describe('identifyEntryText', () => {
  const attributes = fc.dictionary(fc.string({ unit: 'binary', maxLength: 12 }), fc.oneof(fc.string({ unit: 'binary', maxLength: 20 }), fc.double(), fc.integer(), fc.boolean(), fc.constant(null)), { maxKeys: 8 });
  const payload: fc.Arbitrary<Payload> = fc.oneof(
    attributes.map((a) => ({ records: 'person' as const, attributes: a })),
    fc.record({ records: fc.constant('person' as const), attributes, kept: fc.array(fc.string({ maxLength: 3 }), { maxLength: 2 }) }),
    attributes.map((a) => ({ records: 'person' as const, attributes: a, kept: undefined })),
    attributes.map((a) => ({ attributes: a, records: 'person' as const })),
    attributes.map((a) => ({ records: 'object' as const, attributes: a, object: { type: '1', id: 'o1' } })),
    attributes.map((a) => ({ records: 'event' as const, attributes: a, event: { name: 'n', id: 'e', timestamp: 1, person: 'p' } })),
  );
  const options: fc.Arbitrary<EntryOptions> = fc.record(
    { identifier: fc.constantFrom('id' as const, 'email' as const, 'phone' as const), stamp: fc.record({ field: fc.string({ maxLength: 5 }), at: fc.integer() }) },
    { requiredKeys: ['identifier'] },
  );

  it('writes exactly the text of the serialised entry, or leaves the payload to be serialised whole', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 16 }), payload, options, (key, p, opts) => {
        const text = identifyEntryText(key, p, JSON.stringify(p), opts);
        if (text !== undefined) expect(text).toBe(JSON.stringify(toTrackEntry(key, p, opts)));
      }),
      { numRuns: 3000 },
    );
  });

  it('splices every plain person identify, and nothing carrying more than its attributes', () => {
    const plain: Payload = { records: 'person', attributes: { 'naïve "q"': 'ü\n', n: 1.5, b: false, z: null } };
    expect(identifyEntryText('k"1', plain, JSON.stringify(plain), { identifier: 'email' })).toBe(JSON.stringify(toTrackEntry('k"1', plain, { identifier: 'email' })));
    const kept: Payload = { ...plain, kept: ['n'] };
    expect(identifyEntryText('k', kept, JSON.stringify(kept), { identifier: 'id' })).toBeUndefined();
    expect(identifyEntryText('k', plain, JSON.stringify(plain), { identifier: 'id', stamp: { field: 's', at: 1 } })).toBeUndefined();
    const reordered: Payload = { attributes: plain.attributes, records: 'person' };
    expect(identifyEntryText('k', reordered, JSON.stringify(reordered), { identifier: 'id' })).toBeUndefined();
  });
});
