import { describe, expect, it } from 'vitest';
import { createPrng } from '../../core/prng.ts';
import { parsePathIdentifier, refForIdType, Workspace } from './workspace.ts';

function setup(overrides: Partial<{ allowEmailUpdateById: boolean; eventDedupeWindowMs: number }> = {}) {
  const clock = { ms: Date.UTC(2026, 0, 1) };
  const ws = new Workspace({
    prng: createPrng(1),
    now: () => clock.ms,
    eventDedupeWindowMs: overrides.eventDedupeWindowMs ?? 60_000,
    allowEmailUpdateById: overrides.allowEmailUpdateById ?? true,
    exportReadyAfterMs: 0,
  });
  return { ws, clock };
}

const id = (value: string) => ({ type: 'id' as const, value });
const email = (value: string) => ({ type: 'email' as const, value });

describe('path identifiers', () => {
  it('infers the type from the shape of the value', () => {
    expect(parsePathIdentifier('42')).toEqual(id('42'));
    expect(parsePathIdentifier('a@b.com')).toEqual(email('a@b.com'));
    expect(parsePathIdentifier('cio_03000001')).toEqual({ type: 'cio_id', value: '03000001' });
    expect(parsePathIdentifier('+14155552671')).toEqual(id('+14155552671'));
  });

  it('skips values that do not match id_type', () => {
    expect(refForIdType('a@b.com', 'id')).toBeUndefined();
    expect(refForIdType('42', 'email')).toBeUndefined();
    expect(refForIdType('cio_03000001', 'cio_id')).toEqual({ type: 'cio_id', value: '03000001' });
  });
});

describe('identify', () => {
  it('creates a person, then merges later attributes into it', () => {
    const { ws } = setup();
    ws.identify(id('42'), { email: 'Ann@Example.com', plan: 'basic', seats: 3 });
    ws.identify(id('42'), { plan: 'pro', vip: true });
    const p = ws.findPerson(id('42'))!;
    expect(p.email).toBe('Ann@Example.com');
    expect(p.attributes).toEqual({ plan: 'pro', seats: 3, vip: true });
    expect(ws.people.size).toBe(1);
  });

  it('finds people by email case-insensitively', () => {
    const { ws } = setup();
    ws.identify(email('Ann@Example.com'), { plan: 'basic' });
    ws.identify(email('ann@example.COM'), { plan: 'pro' });
    expect(ws.people.size).toBe(1);
    expect(ws.findPerson(email('ANN@example.com'))!.attributes.plan).toBe('pro');
  });

  it('removes an attribute sent as null or empty string, and keeps others', () => {
    const { ws } = setup();
    ws.identify(id('1'), { a: 'x', b: 'y', c: 0, d: false });
    ws.identify(id('1'), { a: null, b: '' });
    expect(ws.findPerson(id('1'))!.attributes).toEqual({ c: 0, d: false });
  });

  it('orders updates by _timestamp: an older update loses, per attribute', () => {
    const { ws } = setup();
    ws.identify(id('1'), { status: 'active', tier: 'gold' }, { timestamp: 2000 });
    ws.identify(id('1'), { status: 'cancelled', note: 'late' }, { timestamp: 1000 });
    const p = ws.findPerson(id('1'))!;
    expect(p.attributes).toEqual({ status: 'active', tier: 'gold', note: 'late' });
    expect(p.timestamps.status).toBe(2000);
    // A removal is ordered too: an older value cannot resurrect it.
    ws.identify(id('1'), { tier: null }, { timestamp: 3000 });
    ws.identify(id('1'), { tier: 'silver' }, { timestamp: 2500 });
    expect(p.attributes.tier).toBeUndefined();
  });

  it('gives an existing person (found by body email) the new path id', () => {
    const { ws } = setup();
    ws.identify(email('a@b.com'), { plan: 'x' });
    const r = ws.identify(id('42'), { email: 'a@b.com', plan: 'y' });
    expect(r.applied).toBe(true);
    expect(ws.people.size).toBe(1);
    expect(ws.findPerson(id('42'))!.email).toBe('a@b.com');
    expect(ws.findPerson(id('42'))!.attributes.plan).toBe('y');
  });

  it('answers a conflict between path and body identifiers with an attribute update failure, applying nothing', () => {
    const { ws } = setup();
    ws.identify(id('1'), { email: 'one@x.com' });
    ws.identify(id('2'), { email: 'two@x.com' });
    const r = ws.identify(id('1'), { email: 'two@x.com', plan: 'z' });
    expect(r.applied).toBe(false);
    expect(ws.findPerson(id('1'))!.email).toBe('one@x.com');
    expect(ws.findPerson(id('1'))!.attributes.plan).toBeUndefined();
    expect(ws.activity.at(-1)).toMatchObject({ type: 'attribute_update_failure', identifier: 'id:1' });
  });

  it('changes identifiers only via cio_id, and drops requests for an unknown cio_id', () => {
    const { ws } = setup();
    ws.identify(id('1'), {});
    const cio = ws.findPerson(id('1'))!.cioId;
    expect(ws.identify(id('1'), { id: '2' }).applied).toBe(false);
    expect(ws.identify({ type: 'cio_id', value: cio }, { id: '2' }).applied).toBe(true);
    expect(ws.findPerson(id('2'))!.cioId).toBe(cio);
    expect(ws.findPerson(id('1'))).toBeUndefined();
    expect(ws.identify({ type: 'cio_id', value: 'ffffffff' }, { a: 1 })).toMatchObject({ applied: false });
    expect(ws.people.size).toBe(1);
  });

  it('refuses email changes by id when the workspace setting is off', () => {
    const { ws } = setup({ allowEmailUpdateById: false });
    ws.identify(id('1'), { email: 'old@x.com' });
    expect(ws.identify(id('1'), { email: 'new@x.com' }).applied).toBe(false);
    expect(ws.findPerson(id('1'))!.email).toBe('old@x.com');
  });

  it('never creates a person when _update is true', () => {
    const { ws } = setup();
    expect(ws.identify(id('9'), { a: 1 }, { updateOnly: true })).toMatchObject({ applied: false });
    expect(ws.people.size).toBe(0);
    expect(ws.activity.at(-1)?.type).toBe('failed_attribute_change');
  });

  it('keeps subscription topics apart from attributes, including dot notation', () => {
    const { ws } = setup();
    ws.identify(id('1'), { cio_subscription_preferences: { topics: { topic_1: true, topic_2: false } } });
    ws.identify(id('1'), { 'cio_subscription_preferences.topics.topic_2': true });
    const p = ws.findPerson(id('1'))!;
    expect(p.subscriptionTopics).toEqual({ topic_1: true, topic_2: true });
    expect(p.attributes).toEqual({});
  });
});

describe('events', () => {
  it('stores an event with a dedupe id once, within the dedupe window', () => {
    const { ws, clock } = setup({ eventDedupeWindowMs: 60_000 });
    const e = { dedupeId: '01HZY3M5Q3W6VQ5N8KX9T4B2C7', name: 'purchase', type: 'event' as const, data: { price: 9 } };
    expect(ws.trackEvent(id('1'), e)).toEqual({ stored: true });
    expect(ws.trackEvent(id('1'), { ...e, dedupeId: e.dedupeId.toLowerCase() })).toEqual({ stored: false, reason: 'duplicate' });
    clock.ms += 60_000;
    expect(ws.trackEvent(id('1'), e)).toEqual({ stored: true });
    expect(ws.events.get(ws.findPerson(id('1'))!.cioId)).toHaveLength(2);
  });

  it('creates the person an event names, trims the name, and defaults the timestamp to receipt time', () => {
    const { ws, clock } = setup();
    ws.trackEvent(email('new@x.com'), { name: '  signed_up  ', type: 'event', data: {} });
    const p = ws.findPerson(email('new@x.com'))!;
    expect(ws.events.get(p.cioId)![0]).toMatchObject({ name: 'signed_up', timestamp: Math.floor(clock.ms / 1000) });
  });

  it('attaches anonymous events when an identify sets their anonymous_id', () => {
    const { ws } = setup();
    ws.trackEvent(null, { name: 'viewed', type: 'page', data: {}, anonymousId: 'anon-1' });
    ws.trackEvent(null, { name: 'viewed', type: 'page', data: {}, anonymousId: 'anon-2' });
    ws.identify(id('1'), { anonymous_id: 'anon-1' });
    expect(ws.events.get(ws.findPerson(id('1'))!.cioId)).toHaveLength(1);
    expect(ws.anonymousEvents).toHaveLength(1);
  });
});

describe('delete, suppress, merge', () => {
  it('deletes a person with their events and memberships', () => {
    const { ws } = setup();
    ws.identify(id('1'), {});
    const seg = ws.createSegment({ name: 's', type: 'manual' });
    seg.members.add(ws.findPerson(id('1'))!.cioId);
    ws.trackEvent(id('1'), { name: 'x', type: 'event', data: {} });
    expect(ws.deletePerson(id('1'))).toBe(true);
    expect(ws.people.size).toBe(0);
    expect(seg.members.size).toBe(0);
    expect(ws.events.size).toBe(0);
  });

  it('blocks suppressed identifiers until unsuppressed', () => {
    const { ws } = setup();
    ws.identify(id('1'), { email: 'a@b.com' });
    ws.suppress(id('1'));
    expect(ws.people.size).toBe(0);
    expect(ws.identify(email('a@b.com'), {}).applied).toBe(false);
    ws.unsuppress(email('a@b.com'));
    expect(ws.identify(email('a@b.com'), {}).applied).toBe(true);
  });

  it('merges secondary into primary: primary values win, the rest moves over, secondary is gone', () => {
    const { ws } = setup();
    ws.identify(id('p'), { plan: 'pro' });
    ws.identify(email('s@x.com'), { plan: 'free', city: 'Oslo' });
    ws.trackEvent(email('s@x.com'), { name: 'e', type: 'event', data: {} });
    expect(ws.merge(id('p'), email('s@x.com')).applied).toBe(true);
    const p = ws.findPerson(id('p'))!;
    expect(p.attributes).toEqual({ plan: 'pro', city: 'Oslo' });
    expect(p.email).toBe('s@x.com');
    expect(ws.events.get(p.cioId)).toHaveLength(1);
    expect(ws.people.size).toBe(1);
  });
});

describe('objects and relationships', () => {
  it('creates objects on identify, relates people, and removes relationships with the object', () => {
    const { ws } = setup();
    ws.identifyObject({ objectTypeId: '1', objectId: 'acme' }, { name: 'Acme', seats: 5 }, [{ person: id('42'), attributes: { role: 'admin' } }]);
    const o = ws.findObject({ objectTypeId: '1', objectId: 'acme' })!;
    expect(o.attributes).toEqual({ name: 'Acme', seats: 5 });
    expect(ws.findPerson(id('42'))).toBeDefined();
    expect([...ws.relationships.values()]).toEqual([{ personCioId: ws.findPerson(id('42'))!.cioId, cioObjectId: o.cioObjectId, attributes: { role: 'admin' } }]);
    ws.identifyObject({ cioObjectId: o.cioObjectId }, { seats: '' }, []);
    expect(o.attributes).toEqual({ name: 'Acme' });
    ws.deleteObject({ objectTypeId: '1', objectId: 'acme' });
    expect(ws.relationships.size).toBe(0);
  });

  it('drops updates addressed to an unknown cio_object_id', () => {
    const { ws } = setup();
    expect(ws.identifyObject({ cioObjectId: 'obnope' }, { a: 1 }, [])).toBeUndefined();
    expect(ws.objects.size).toBe(0);
  });
});

describe('snapshot', () => {
  it('round-trips all state and keeps indexes and sequences working', () => {
    const { ws } = setup();
    ws.identify(id('1'), { email: 'a@b.com', plan: 'x' });
    const seg = ws.createSegment({ name: 's', type: 'dynamic' });
    seg.members.add(ws.findPerson(id('1'))!.cioId);
    ws.trackEvent(id('1'), { dedupeId: '01HZY3M5Q3W6VQ5N8KX9T4B2C7', name: 'e', type: 'event', data: {} });
    const json = JSON.parse(JSON.stringify(ws.snapshot()));
    const { ws: copy } = setup();
    copy.restore(json);
    expect(copy.findPerson(email('A@B.com'))!.attributes).toEqual({ plan: 'x' });
    expect(copy.segments.get(seg.id)!.members.size).toBe(1);
    expect(copy.trackEvent(id('1'), { dedupeId: '01HZY3M5Q3W6VQ5N8KX9T4B2C7', name: 'e', type: 'event', data: {} }).stored).toBe(false);
    copy.identify(id('2'), {});
    expect(copy.findPerson(id('2'))!.cioId).not.toBe(copy.findPerson(id('1'))!.cioId);
    expect(copy.createSegment({ name: 't', type: 'manual' }).id).toBe(seg.id + 1);
  });

  it('refuses an unknown snapshot format', () => {
    const { ws } = setup();
    expect(() => ws.restore({ version: 99 })).toThrow(/unknown format/);
  });
});
