/**
 * Hearth & Harvest, the seeded brand: a D2C coffee-and-tea subscription business that also sells merch.
 * Pure: no clock (the caller passes `now`), no I/O, no Math.random.
 *
 * Time model. Each customer's life is a renewal process on absolute time, drawn from a stream seeded by
 * (seed, customer): they sign up between 2024-01-01 and 2025-12-31, order on a cadence, ask to cancel,
 * cancel or are saved, lapse, and sometimes come back. `now` only cuts the timeline: every row is an
 * event at or before `now`, and an event's time never depends on `now`. So the world at a later `now` is
 * the world at an earlier one plus what happened in between, and a sync that reads "updated since the last
 * run" sends exactly that. Because the process never stops, there are deliveries 7–14 days before any
 * `now` after 2025, and lapsed customers 60–120 days out.
 *
 * The field guides' traps are in the data on purpose: mixed-case and padded emails, phones in local
 * formats (and a few that are no phone at all), naive local timestamps in each system's own timezone,
 * blanks in the loyalty export, loyalty rows out of order, returns out of order, customers who change
 * email (the id stays), restarted subscribers, and consumable and apparel buyers inside their survey
 * windows.
 */
import { createPrng, type Prng } from '../core/prng.ts';

export interface WorldOptions {
  /** Any integer: the same seed, people and now give the same world. */
  seed: number;
  /** Customers (1 to 1,000,000). */
  people: number;
  now: Date;
}

export const DEFAULT_SEED = 20261202;
export const DEFAULT_PEOPLE = 5000;
export const MAX_PEOPLE = 1_000_000;
/** Nobody signs up before this; a `now` before the first sign-ups would be an empty world. */
export const WORLD_BEGINS = Date.UTC(2024, 0, 1);
const SIGNUP_SPAN_DAYS = 731;
/** The earliest `now` with a whole population. */
export const EARLIEST_NOW = WORLD_BEGINS + SIGNUP_SPAN_DAYS * 86_400_000;
/** Orders, deliveries and returns older than this (before `now`) are not kept in the warehouse tables. */
export const HISTORY_DAYS = 400;

/** Where each system keeps its clock: naive timestamps are wall times in these zones. */
export const ZONES = { shopify: 'UTC', carrier: 'America/Chicago', recharge: 'America/New_York', returns: 'Europe/London', loyalty: 'UTC', warehouse: 'UTC' } as const;

export type Category = 'consumables' | 'apparel' | 'equipment';
export type SubscriptionStatus = 'active' | 'paused' | 'cancelled';

export interface CustomerRow {
  customer_id: string;
  email: string | null;
  phone: string | null;
  first_name: string;
  created_at: string;
  updated_at: string;
}
export interface OrderRow {
  order_id: string;
  customer_id: string;
  placed_at: string;
  category: Category;
  total: string;
}
/** `delivered_at` is the carrier's naive local time (America/Chicago). */
export interface FulfillmentRow {
  fulfillment_id: string;
  order_id: string;
  customer_id: string;
  delivered_at: string;
}
/** One row per customer: the figures Shopify's analytics export keeps. */
export interface OrderStatsRow {
  customer_id: string;
  email: string | null;
  phone: string | null;
  last_order_at: string;
  order_count: number;
  last_category: Category;
  updated_at: string;
}
/** Recharge's naive local times (America/New_York). */
export interface SubscriptionRow {
  subscription_id: string;
  customer_id: string;
  status: SubscriptionStatus;
  status_changed_at: string;
  updated_at: string;
}
export interface CancelRequestRow {
  request_id: string;
  customer_id: string;
  requested_at: string;
  reason: string;
}
export interface VipTierRow {
  customer_id: string;
  vip_tier: 'none' | 'silver' | 'gold' | 'platinum';
  tier_computed_at: string;
}
/** The loyalty app's CSV export: every value is text, blanks are empty strings. */
export interface LoyaltyRow {
  shopify_customer_id: string;
  points_balance: string;
  tier: string;
  tier_changed_at: string;
}
/** The returns portal's NDJSON export (Europe/London wall times). */
export interface ReturnRow {
  return_id: string;
  customer_id: string;
  created_at: string;
  reason: string;
  refund_amount: number;
}

export interface WorldTables {
  customers: CustomerRow[];
  orders: OrderRow[];
  fulfillments: FulfillmentRow[];
  order_stats: OrderStatsRow[];
  subscriptions: SubscriptionRow[];
  cancel_requests: CancelRequestRow[];
  vip_tiers: VipTierRow[];
  loyalty: LoyaltyRow[];
  returns: ReturnRow[];
}

export function emptyTables(): WorldTables {
  return { customers: [], orders: [], fulfillments: [], order_stats: [], subscriptions: [], cancel_requests: [], vip_tiers: [], loyalty: [], returns: [] };
}

/** Shopify-like 13-digit ids; stable for a customer index whatever the seed. */
export function customerId(index: number): string {
  return String(6_011_000_000_000 + index);
}

export class WorldOptionError extends Error {
  override name = 'WorldOptionError';
}

export function checkWorldOptions(o: WorldOptions): void {
  if (!Number.isInteger(o.people) || o.people < 1 || o.people > MAX_PEOPLE) throw new WorldOptionError(`people must be a whole number from 1 to ${MAX_PEOPLE.toLocaleString('en-US')} (got ${o.people})`);
  if (!Number.isInteger(o.seed)) throw new WorldOptionError(`seed must be a whole number (got ${o.seed})`);
  if (Number.isNaN(o.now.getTime())) throw new WorldOptionError('now is not a valid time');
  if (o.now.getTime() < EARLIEST_NOW) throw new WorldOptionError(`now must be on or after ${new Date(EARLIEST_NOW).toISOString()}: Hearth & Harvest's customers sign up during 2024 and 2025`);
}

/** The whole world at `now`. For large populations use `worldChunks`, which holds one chunk at a time. */
export function generateWorld(o: WorldOptions): WorldTables {
  const all = emptyTables();
  for (const chunk of worldChunks(o, 10_000)) for (const k of Object.keys(all) as Array<keyof WorldTables>) (all[k] as unknown[]).push(...(chunk[k] as unknown[]));
  return all;
}

/** The world a slice of customers at a time (each chunk holds `size` customers and all their rows). */
export function* worldChunks(o: WorldOptions, size = 10_000): Generator<WorldTables> {
  checkWorldOptions(o);
  const zones = new WallClock();
  for (let start = 0; start < o.people; start += size) {
    const t = emptyTables();
    for (let i = start; i < Math.min(o.people, start + size); i++) customerLife(o, i, t, zones);
    yield t;
  }
}

const DAY = 86_400_000;
const HOUR = 3_600_000;

const FIRST = ['Ava', 'Noah', 'Mia', 'Liam', 'Zoe', 'Omar', 'Ines', 'Kenji', 'Priya', 'Mateo', 'Hana', 'Lucas', 'Chloe', 'Amir', 'Sofia', 'Theo', 'Maya', 'Jonas', 'Leila', 'Ruth', 'Diego', 'Freya', 'Ivan', 'Nora'];
const LAST = ['Okafor', 'Nguyen', 'Garcia', 'Smith', 'Kowalski', 'Haddad', 'Tanaka', 'Silva', 'Brown', 'Muller', 'Rossi', 'Kim', 'Patel', 'Dubois', 'Larsen', 'Cohen', 'Reyes', 'Walsh', 'Novak', 'Ali'];
const DOMAINS = ['example.com', 'example.net', 'example.org', 'mail.example'];
const AREA = ['312', '415', '646', '512', '206', '303', '617', '404', '773', '718'];
const CANCEL_REASONS = ['price', 'too_much_coffee', 'taste', 'allergy', 'moving'];
const RETURN_REASONS = ['too_strong', 'damaged_in_transit', 'wrong_size', 'changed_mind'];

/** One stream per customer, so adding people never changes the ones already there. */
function streamFor(seed: number, index: number, salt: number): Prng {
  let h = Math.imul(seed ^ 0x5bd1e995, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b) ^ Math.imul(salt, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return createPrng((h ^ (h >>> 16)) >>> 0);
}

function email(r: Prng, first: string, last: string, n: number): string {
  const local = r.chance(0.5) ? `${first}.${last}${n}` : `${first[0]}${last}${n}`;
  const domain = r.pick(DOMAINS);
  const roll = r.next();
  // The guide's first trap: the storefront keeps emails as typed.
  if (roll < 0.15) return `${local}@${domain[0]!.toUpperCase()}${domain.slice(1)}`;
  if (roll < 0.2) return `${local.toUpperCase()}@${domain.toUpperCase()}`;
  if (roll < 0.23) return ` ${local.toLowerCase()}@${domain} `;
  return `${local.toLowerCase()}@${domain}`;
}

function phone(r: Prng): string | null {
  const roll = r.next();
  if (roll < 0.25) return null;
  const area = r.pick(AREA);
  const line = String(r.int(100, 199)).padStart(4, '0');
  const exchange = String(r.int(201, 989));
  if (roll < 0.45) return `(${area}) ${exchange}-${line}`;
  if (roll < 0.6) return `${area}.${exchange}.${line}`;
  if (roll < 0.75) return `${area}-${exchange}-${line}`;
  if (roll < 0.97) return `+1 ${area} ${exchange} ${line}`;
  // Typed into a free-text field: not a phone number at all.
  return r.chance(0.5) ? `${exchange}-${line}` : 'n/a';
}

interface Life {
  id: string;
  orders: Array<{ at: number; category: Category; total: number; order_id: string }>;
}

/** Appends one customer's whole life, up to `now`, to the tables. */
function customerLife(o: WorldOptions, index: number, t: WorldTables, wall: WallClock): void {
  const now = o.now.getTime();
  const r = streamFor(o.seed, index, 1);
  const id = customerId(index);
  const signup = WORLD_BEGINS + Math.floor(r.next() * SIGNUP_SPAN_DAYS * DAY);
  if (signup > now) return;
  const first = r.pick(FIRST);
  const last = r.pick(LAST);
  let currentEmail: string | null = email(r, first, last, index);
  const currentPhone = phone(r);
  let customerUpdated = signup;
  // Some customers change their email later: the id stays, which is why the id is the join key.
  // (Every draw is made whatever `now` is: a draw skipped because an event lies in the future would shift
  // all later draws, and the past would change when the clock moves.)
  if (r.chance(0.03)) {
    const changed = signup + Math.floor(r.next() * 500 * DAY);
    const newEmail = email(r, first, last, index + 1_000_000);
    if (changed <= now) {
      currentEmail = newEmail;
      customerUpdated = changed;
    }
  }
  if (r.chance(0.01)) currentEmail = null; // checkout as guest, later claimed by phone

  const preference: Category = r.next() < 0.8 ? 'consumables' : r.next() < 0.8 ? 'apparel' : 'equipment';
  const subscriber = r.chance(0.55);
  const cadence = subscriber ? r.pick([14, 21, 30, 30, 45]) : r.int(40, 160);
  const life: Life = { id, orders: [] };
  let status: SubscriptionStatus | undefined = subscriber ? 'active' : undefined;
  let statusChanged = signup;
  let subscriptionUpdated = signup;
  let requestSeq = 0;
  let returnSeq = 0;
  let at = signup;
  let active = true;
  let orderSeq = 0;
  const cutoff = now - HISTORY_DAYS * DAY;

  while (at <= now) {
    if (active) {
      const category: Category = r.chance(0.85) ? preference : r.pick(['consumables', 'apparel', 'equipment'] as const);
      const total = category === 'consumables' ? r.int(18, 64) : category === 'apparel' ? r.int(25, 90) : r.int(40, 240);
      const orderId = `${id}-${++orderSeq}`;
      life.orders.push({ at, category, total, order_id: orderId });
      const delivered = at + r.int(40, 140) * HOUR;
      if (at >= cutoff) {
        t.orders.push({ order_id: orderId, customer_id: id, placed_at: iso(at), category, total: `${total}.00` });
        if (delivered <= now) t.fulfillments.push({ fulfillment_id: `F${orderId}`, order_id: orderId, customer_id: id, delivered_at: wall.text(delivered, ZONES.carrier) });
      }
      if (r.chance(0.04)) {
        const created = delivered + r.int(3, 20) * DAY + r.int(0, 23) * HOUR;
        const reason = r.pick(RETURN_REASONS);
        const refund = Math.round(total * (r.chance(0.7) ? 1 : 0.5) * 100) / 100;
        const returnId = `R-${id.slice(-6)}-${++returnSeq}`;
        if (created <= now && created >= cutoff) t.returns.push({ return_id: returnId, customer_id: id, created_at: wall.text(created, ZONES.returns), reason, refund_amount: refund });
      }
      const gap = Math.floor(cadence * DAY * (0.85 + r.next() * 0.3));
      if (subscriber && status === 'active' && r.chance(0.07)) {
        // Asks to cancel halfway to the next box; a third are saved by the offer.
        const requested = at + Math.floor(gap / 2) + r.int(0, 23) * HOUR;
        if (requested > now) break;
        t.cancel_requests.push({ request_id: `CR-${id.slice(-6)}-${++requestSeq}`, customer_id: id, requested_at: wall.text(requested, ZONES.recharge), reason: r.pick(CANCEL_REASONS) });
        subscriptionUpdated = requested;
        if (r.chance(0.33)) {
          at += gap;
          continue;
        }
        const cancelled = requested + r.int(6, 60) * HOUR;
        if (cancelled > now) break;
        status = r.chance(0.15) ? 'paused' : 'cancelled';
        statusChanged = cancelled;
        subscriptionUpdated = cancelled;
        active = false;
        at = cancelled + r.int(10, 300) * DAY;
        continue;
      }
      if (!subscriber && r.chance(0.12)) {
        active = false;
        at += gap + r.int(60, 420) * DAY;
        continue;
      }
      at += gap;
    } else {
      // Back after a lapse: a restarted subscriber's status turns active again.
      if (r.chance(0.55)) {
        active = true;
        if (subscriber) {
          status = 'active';
          statusChanged = at;
          subscriptionUpdated = at;
        }
        continue;
      }
      at += r.int(90, 400) * DAY;
    }
  }

  if (life.orders.length === 0) return;
  t.customers.push({ customer_id: id, email: currentEmail, phone: currentPhone, first_name: first, created_at: iso(signup), updated_at: iso(customerUpdated) });
  const lastOrder = life.orders[life.orders.length - 1]!;
  t.order_stats.push({
    customer_id: id,
    email: currentEmail,
    phone: currentPhone,
    last_order_at: iso(lastOrder.at),
    order_count: life.orders.length,
    last_category: lastOrder.category,
    updated_at: iso(Math.max(lastOrder.at, customerUpdated)),
  });
  if (status) {
    t.subscriptions.push({ subscription_id: `SUB-${id.slice(-7)}`, customer_id: id, status, status_changed_at: wall.text(statusChanged, ZONES.recharge), updated_at: wall.text(subscriptionUpdated, ZONES.recharge) });
  }
  t.vip_tiers.push(vipTier(life, now, wall));
  // Its own stream: where the life above stopped (which depends on now) must not move these draws.
  loyaltyRows(life, streamFor(o.seed, index, 2), now, t, wall);
}

const VIP = [
  [800, 'platinum'],
  [400, 'gold'],
  [150, 'silver'],
] as const;

function tierFor(spend: number): VipTierRow['vip_tier'] {
  for (const [min, tier] of VIP) if (spend >= min) return tier;
  return 'none';
}

/** Twelve-month spend; the nightly job (03:00 UTC) stamps the time the tier last changed. */
function vipTier(life: Life, now: number, wall: WallClock): VipTierRow {
  let tier: VipTierRow['vip_tier'] = 'none';
  let changedAt = life.orders[0]!.at;
  // The tier moves when an order lands or leaves the twelve-month window: walk both in time order.
  const orders = life.orders;
  let spend = 0;
  let added = 0;
  let expired = 0;
  for (;;) {
    const nextAdd = added < orders.length ? orders[added]!.at : Infinity;
    const nextExpiry = expired < added ? orders[expired]!.at + 365 * DAY : Infinity;
    const at = Math.min(nextAdd, nextExpiry);
    if (at > now || at === Infinity) break;
    if (nextExpiry <= nextAdd) spend -= orders[expired++]!.total;
    else spend += orders[added++]!.total;
    const next = tierFor(spend);
    if (next !== tier) {
      tier = next;
      changedAt = at;
    }
  }
  const nightly = Math.ceil((changedAt - 3 * HOUR) / DAY) * DAY + 3 * HOUR;
  return { customer_id: life.id, vip_tier: tier, tier_computed_at: wall.text(Math.min(nightly, now), ZONES.warehouse) };
}

/** Points: one per dollar. Tiers: member, insider from 500, champion from 2,000. */
function loyaltyRows(life: Life, r: Prng, now: number, t: WorldTables, wall: WallClock): void {
  const stamp = (at: number) => wall.text(Math.min(at + 70 * 60_000, now), ZONES.loyalty);
  let points = 0;
  let tier = 'member';
  let changedAt = life.orders[0]!.at;
  let previous: { tier: string; at: number; points: number } | undefined;
  for (const o of life.orders) {
    points += o.total;
    const next = points >= 2000 ? 'champion' : points >= 500 ? 'insider' : 'member';
    if (next !== tier) {
      previous = { tier, at: changedAt, points: points - o.total };
      tier = next;
      changedAt = o.at;
    }
  }
  const row: LoyaltyRow = { shopify_customer_id: life.id, points_balance: String(points), tier, tier_changed_at: stamp(changedAt) };
  // Exports have blanks: a balance the app could not compute, a tier left empty.
  if (r.chance(0.02)) row.points_balance = '';
  if (r.chance(0.01)) row.tier = '';
  t.loyalty.push(row);
  // The app appends corrections without sorting: an older row for the same customer, after the newer one.
  if (previous && r.chance(0.03)) t.loyalty.push({ shopify_customer_id: life.id, points_balance: String(previous.points), tier: previous.tier, tier_changed_at: stamp(previous.at) });
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * Naive wall-clock text (`YYYY-MM-DD HH:MM:SS`) in a timezone. Offsets come from Intl, cached per zone and
 * hour: the world writes hundreds of thousands of these.
 */
export class WallClock {
  private readonly formats = new Map<string, Intl.DateTimeFormat>();
  private readonly offsets = new Map<string, number>();

  text(ms: number, zone: string): string {
    const offset = zone === 'UTC' ? 0 : this.offsetMinutes(ms, zone);
    return new Date(ms + offset * 60_000).toISOString().slice(0, 19).replace('T', ' ');
  }

  private offsetMinutes(ms: number, zone: string): number {
    const key = `${zone}|${Math.floor(ms / HOUR)}`;
    const hit = this.offsets.get(key);
    if (hit !== undefined) return hit;
    let f = this.formats.get(zone);
    if (!f) {
      f = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset' });
      this.formats.set(zone, f);
    }
    const name = f.formatToParts(new Date(ms)).find((p) => p.type === 'timeZoneName')?.value ?? 'GMT';
    const m = /GMT([+-])(\d{2}):(\d{2})/.exec(name);
    const minutes = m ? (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 0;
    if (this.offsets.size > 100_000) this.offsets.clear();
    this.offsets.set(key, minutes);
    return minutes;
  }
}
