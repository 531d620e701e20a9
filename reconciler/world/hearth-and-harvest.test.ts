import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkWorldOptions, DEFAULT_PEOPLE, EARLIEST_NOW, generateWorld, worldChunks, type WorldTables } from './hearth-and-harvest.ts';
import { loyaltyCsv, returnsNdjson } from './exports.ts';

const NOW = new Date('2026-12-02T12:00:00Z');
const DAY = 86_400_000;
/** Naive wall-clock text read as if UTC: close enough (hours) for day-sized windows. */
const naive = (s: string) => Date.parse(`${s.replace(' ', 'T')}Z`);

describe('Hearth & Harvest, the seeded world', () => {
  const w = generateWorld({ seed: 7, people: 3000, now: NOW });

  it('is a function of seed, people and now', () => {
    expect(generateWorld({ seed: 7, people: 3000, now: NOW })).toEqual(w);
    expect(generateWorld({ seed: 8, people: 3000, now: NOW }).customers).not.toEqual(w.customers);
    // Chunked generation (what the warehouse load uses) gives the same rows as the whole.
    const chunks = [...worldChunks({ seed: 7, people: 3000, now: NOW }, 700)];
    expect(chunks.length).toBe(5);
    expect(chunks.flatMap((c) => c.customers)).toEqual(w.customers);
    expect(chunks.flatMap((c) => c.fulfillments)).toEqual(w.fulfillments);
  });

  it('adding people leaves the ones already there as they were', () => {
    const more = generateWorld({ seed: 7, people: 3500, now: NOW });
    expect(more.customers.slice(0, w.customers.length)).toEqual(w.customers);
  });

  it('every customer in a source exists in the customers table (coherent across sources)', () => {
    const ids = new Set(w.customers.map((c) => c.customer_id));
    for (const t of ['order_stats', 'subscriptions', 'cancel_requests', 'vip_tiers', 'fulfillments', 'returns'] as const) {
      for (const r of w[t]) expect(ids.has(r.customer_id), `${t} ${r.customer_id}`).toBe(true);
    }
    for (const r of w.loyalty) expect(ids.has(r.shopify_customer_id)).toBe(true);
    expect(w.customers.length).toBeGreaterThan(2900);
  });

  it('holds the field guides’ traps', () => {
    const emails = w.customers.map((c) => c.email).filter((e): e is string => e !== null);
    expect(emails.some((e) => e !== e.toLowerCase())).toBe(true);
    expect(emails.some((e) => e !== e.trim())).toBe(true);
    const phones = w.customers.map((c) => c.phone).filter((p): p is string => p !== null);
    expect(phones.some((p) => /^\(\d{3}\) \d{3}-\d{4}$/.test(p))).toBe(true);
    expect(phones.some((p) => /^\d{3}\.\d{3}\.\d{4}$/.test(p))).toBe(true);
    expect(phones.some((p) => !/\d{3}.*\d{3}.*\d{4}/.test(p))).toBe(true);
    // Naive local timestamps: no zone designator.
    expect(w.fulfillments.every((f) => /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(f.delivered_at))).toBe(true);
    // Blanks in the loyalty export, and a correction appended after the newer row.
    expect(w.loyalty.some((r) => r.points_balance === '' || r.tier === '')).toBe(true);
    const seen = new Map<string, string>();
    let outOfOrder = 0;
    for (const r of w.loyalty) {
      const prev = seen.get(r.shopify_customer_id);
      if (prev !== undefined && r.tier_changed_at < prev) outOfOrder++;
      seen.set(r.shopify_customer_id, r.tier_changed_at);
    }
    expect(outOfOrder).toBeGreaterThan(0);
    // Returns in the portal's order, not by time.
    const times = w.returns.map((r) => r.created_at);
    expect(times).not.toEqual([...times].sort());
    // A restarted subscriber: active again after asking to cancel.
    const requested = new Set(w.cancel_requests.map((c) => c.customer_id));
    expect(w.subscriptions.some((s) => s.status === 'active' && requested.has(s.customer_id) && naive(s.status_changed_at) > NOW.getTime() - 14 * DAY)).toBe(true);
  });

  it('has buyers inside each survey window at any now', () => {
    fc.assert(
      fc.property(fc.integer({ min: EARLIEST_NOW + 30 * DAY, max: Date.parse('2029-12-31T00:00:00Z') }), fc.integer(), (nowMs, seed) => {
        const now = new Date(nowMs);
        // The world `npm start` makes (its default size). At 2,000 people a subscriber asks to cancel about
        // once a day, and some nows had no request in three days (seed 18 at 2026-01-31: 2 of 30 sampled
        // nows); at 5,000 none of the same 30 did.
        const t = generateWorld({ seed, people: DEFAULT_PEOPLE, now });
        const category = new Map(t.orders.map((o) => [o.order_id, o.category]));
        const delivered = t.fulfillments.filter((f) => naive(f.delivered_at) < nowMs - 7 * DAY && naive(f.delivered_at) > nowMs - 14 * DAY);
        expect(delivered.filter((f) => category.get(f.order_id) === 'consumables').length).toBeGreaterThan(20);
        expect(delivered.filter((f) => category.get(f.order_id) === 'apparel').length).toBeGreaterThan(2);
        const lapsed = t.order_stats.filter((s) => nowMs - Date.parse(s.last_order_at) > 60 * DAY && nowMs - Date.parse(s.last_order_at) < 120 * DAY);
        expect(lapsed.length).toBeGreaterThan(20);
        expect(t.cancel_requests.some((c) => naive(c.requested_at) > nowMs - 3 * DAY)).toBe(true);
      }),
      { numRuns: 6 },
    );
  });

  it('moving the clock only adds what happened in between: each changed row is stamped after the earlier now', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 400 * DAY }), fc.integer({ min: 1, max: 72 * 3_600_000 }), fc.integer(), (offset, step, seed) => {
        const t1 = new Date(EARLIEST_NOW + offset);
        const t2 = new Date(t1.getTime() + step);
        const a = generateWorld({ seed, people: 400, now: t1 });
        const b = generateWorld({ seed, people: 400, now: t2 });
        const changed = <K extends keyof WorldTables>(k: K) => {
          const before = new Set(a[k].map((r) => JSON.stringify(r)));
          return (b[k] as Array<WorldTables[K][number]>).filter((r) => !before.has(JSON.stringify(r)));
        };
        for (const r of changed('order_stats')) expect(Date.parse(r.updated_at)).toBeGreaterThan(t1.getTime());
        // Naive times: compare with a day's margin for the zone offset.
        for (const r of changed('subscriptions')) expect(naive(r.updated_at)).toBeGreaterThan(t1.getTime() - DAY);
        for (const r of changed('fulfillments')) expect(naive(r.delivered_at)).toBeGreaterThan(t1.getTime() - DAY);
        for (const r of changed('cancel_requests')) expect(naive(r.requested_at)).toBeGreaterThan(t1.getTime() - DAY);
        for (const r of changed('vip_tiers')) expect(naive(r.tier_computed_at)).toBeGreaterThan(t1.getTime() - DAY);
        // Nothing that happened before t1 disappears (within the kept history).
        const kept = new Set(b.cancel_requests.map((r) => r.request_id));
        for (const r of a.cancel_requests) if (naive(r.requested_at) > t2.getTime() - 300 * DAY) expect(kept.has(r.request_id)).toBe(true);
      }),
      { numRuns: 8 },
    );
  });

  it('refuses options it cannot honour, saying which', () => {
    expect(() => checkWorldOptions({ seed: 1, people: 0, now: NOW })).toThrow(/people must be a whole number from 1 to 1,000,000/);
    expect(() => checkWorldOptions({ seed: 1, people: 1_000_001, now: NOW })).toThrow(/people/);
    expect(() => checkWorldOptions({ seed: 1, people: 10, now: new Date('2024-03-01T00:00:00Z') })).toThrow(/now must be on or after 2026-01-01/);
  });

  it('exports read like the systems write them', () => {
    const csv = loyaltyCsv(w.loyalty);
    expect(csv.split('\n')[0]).toBe('shopify_customer_id,points_balance,tier,tier_changed_at');
    expect(csv.split('\n').length).toBe(w.loyalty.length + 2);
    const nd = returnsNdjson(w.returns).trimEnd().split('\n');
    expect(JSON.parse(nd[0]!)).toEqual(w.returns[0]);
  });
});
