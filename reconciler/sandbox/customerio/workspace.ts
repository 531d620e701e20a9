/**
 * The emulated Customer.io workspace: people, events, objects, relationships, segments, exports, and the
 * behaviour rules the Track and App APIs describe (REFERENCE.md §4–§6). Protocol modules (track-v1, track-v2,
 * app-api) validate wire payloads and translate errors; this module owns state and semantics, so the same
 * identify rules apply whether a person arrives through v1, v2 or a batch.
 *
 * The workspace is an "email or id" workspace (both identifiers enabled, phone not enabled), the most common
 * setup and the one REFERENCE.md §6.1 describes for membership `identifiers`.
 *
 * Writes that Customer.io accepts with 200 but then fails asynchronously (conflicting identifiers, unknown
 * `cio_id`, `_update` on nobody) are not applied and are recorded in `activity`, as the real workspace records
 * an "Attribute Update Failure" in its activity log.
 */
import type { Prng } from '../../core/prng.ts';
import { matchesFilter, type AudienceFilter } from './filter.ts';
import { makeUlid } from './ulid.ts';
import { IDENTIFY_RESERVED_KEYS } from './validate.ts';

export type AttrValue = string | number | boolean | Record<string, unknown> | unknown[];

export type IdentifierType = 'id' | 'email' | 'cio_id';
export interface PersonRef {
  type: IdentifierType;
  value: string;
}

export interface Device {
  id: string;
  platform: string;
  last_used?: number;
  attributes?: Record<string, string>;
}

export interface Person {
  cioId: string;
  id: string | null;
  email: string | null;
  /** Custom attributes in their sent types (identifiers id/email/cio_id are kept apart). */
  attributes: Record<string, AttrValue>;
  /** Unix seconds when each attribute (identifiers included) was last set. */
  timestamps: Record<string, number>;
  /** Unix seconds of the removal of an attribute, so an older update cannot bring it back. */
  tombstones: Record<string, number>;
  subscriptionTopics: Record<string, boolean>;
  devices: Device[];
  anonymousId: string | null;
  /** Unix seconds the profile was created in the workspace (not the `created_at` attribute). */
  createdAt: number;
}

export interface StoredEvent {
  /** The client's dedupe `id` when given, otherwise one we minted. */
  id: string;
  name: string;
  type: 'event' | 'page' | 'screen';
  /** Unix seconds: the client's `timestamp`, else receipt time. */
  timestamp: number;
  data: Record<string, unknown>;
  /** Unix milliseconds of receipt. */
  receivedAt: number;
  anonymousId?: string;
}

export interface StoredObject {
  cioObjectId: string;
  objectTypeId: string;
  objectId: string;
  attributes: Record<string, AttrValue>;
  timestamps: Record<string, number>;
}

export type ObjectRef = { objectTypeId: string; objectId: string } | { cioObjectId: string };

export interface Relationship {
  personCioId: string;
  cioObjectId: string;
  attributes: Record<string, AttrValue>;
}

export interface AnonymousRelationship {
  anonymousId: string;
  cioObjectId: string;
  attributes: Record<string, AttrValue>;
}

export interface Segment {
  id: number;
  name: string;
  description: string;
  type: 'manual' | 'dynamic';
  state: 'events' | 'build' | 'events_queued' | 'build_queued' | 'finished';
  progress: number | null;
  tags: string[] | null;
  createdAt: number;
  updatedAt: number;
  members: Set<string>;
}

export interface ExportRecord {
  id: number;
  type: 'customers';
  description: string;
  createdAt: number;
  updatedAt: number;
  /** Unix milliseconds from which the export reports `done`. */
  readyAtMs: number;
  rowCount: number;
  downloads: number;
  /** The finished file (CSV), fixed at creation time: exports are point-in-time. */
  content: string;
}

export interface ActivityEntry {
  /** Unix seconds. */
  at: number;
  type: 'attribute_update_failure' | 'failed_attribute_change' | 'dropped_request' | 'ignored_relationship';
  identifier: string;
  message: string;
}

export interface DeliveryMetric {
  deliveryId: string;
  name: string;
  deviceToken: string;
  timestamp: number;
}

export interface WorkspaceOptions {
  prng: Prng;
  /** Unix milliseconds. */
  now(): number;
  /** How long an event dedupe `id` is remembered. */
  eventDedupeWindowMs: number;
  /** Workspace setting "Allow updates to email using ID". */
  allowEmailUpdateById: boolean;
  /** How long after creation an export reports `done`. */
  exportReadyAfterMs: number;
}

export type WriteOutcome = { applied: true; person: Person } | { applied: false; reason: string };

const TOPIC_KEY = /^cio_subscription_preferences\.topics\.(topic_[0-9]+)$/;
const TOPIC_PREFIX = 'cio_subscription_preferences.topics.';
/** `TOPIC_KEY.test(key)`, with the common answer (no) found without the regular expression. */
const isTopicKey = (key: string): boolean => key.startsWith(TOPIC_PREFIX) && TOPIC_KEY.test(key);
const ACTIVITY_CAP = 1000;
const ANONYMOUS_MERGE_WINDOW_S = 30 * 24 * 3600;

/** The App API returns every attribute as a string [S3]. */
export function attributeString(v: AttrValue): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

/**
 * Track `unsubscribed`: "any case of true, 1, or "1" represent unsubscribed. Any other value is considered false".
 */
export function isUnsubscribedValue(v: AttrValue | undefined): boolean {
  if (v === true || v === 1) return true;
  if (typeof v === 'string') return v.toLowerCase() === 'true' || v === '1';
  return false;
}

/** A value that removes an attribute: `null` or an empty string (⚠ see identify). */
export function isRemoval(v: unknown): boolean {
  return v === null || v === '';
}

export class Workspace {
  people = new Map<string, Person>();
  /**
   * People by id and by lower-cased email. They hold the person, not its cio_id: with a million people,
   * each lookup in a map this size is a cache miss or two, and a second lookup by cio_id doubled them.
   */
  private byId = new Map<string, Person>();
  private byEmail = new Map<string, Person>();
  private personSeq = 0;
  events = new Map<string, StoredEvent[]>();
  anonymousEvents: StoredEvent[] = [];
  private dedupe = new Map<string, number>();
  objects = new Map<string, StoredObject>();
  private objectIndex = new Map<string, string>();
  private objectSeq = 0;
  relationships = new Map<string, Relationship>();
  anonymousRelationships: AnonymousRelationship[] = [];
  segments = new Map<number, Segment>();
  private segmentSeq = 0;
  exports = new Map<number, ExportRecord>();
  private exportSeq = 0;
  private suppressed = new Set<string>();
  deliveryMetrics: DeliveryMetric[] = [];
  activity: ActivityEntry[] = [];

  constructor(private readonly opts: WorkspaceOptions) {}

  nowSeconds(): number {
    return Math.floor(this.opts.now() / 1000);
  }

  // ---------------------------------------------------------------- people lookup

  findPerson(ref: PersonRef): Person | undefined {
    if (ref.type === 'cio_id') return this.people.get(ref.value);
    if (ref.type === 'id') return this.byId.get(ref.value);
    return this.byEmail.get(ref.value.toLowerCase());
  }

  /** People in cio_id order (creation order), the order every list and cursor uses. */
  sortedPeople(): Person[] {
    return [...this.people.values()].sort((a, b) => (a.cioId < b.cioId ? -1 : a.cioId > b.cioId ? 1 : 0));
  }

  private newCioId(): string {
    // Live cio_ids look like "03000001"/"a3000001": 8 hex digits, so lexical order is creation order.
    this.personSeq += 1;
    return (0x03000000 + this.personSeq).toString(16).padStart(8, '0');
  }

  private isSuppressed(ref: { id?: string | null; email?: string | null }): boolean {
    if (ref.id && this.suppressed.has(`id:${ref.id}`)) return true;
    if (ref.email && this.suppressed.has(`email:${ref.email.toLowerCase()}`)) return true;
    return false;
  }

  private record(type: ActivityEntry['type'], identifier: string, message: string): void {
    this.activity.push({ at: this.nowSeconds(), type, identifier, message });
    if (this.activity.length > ACTIVITY_CAP) this.activity.splice(0, this.activity.length - ACTIVITY_CAP);
  }

  private createPerson(id: string | null, email: string | null, ts: number): Person {
    const p: Person = {
      cioId: this.newCioId(),
      id: null,
      email: null,
      attributes: {},
      timestamps: {},
      tombstones: {},
      subscriptionTopics: {},
      devices: [],
      anonymousId: null,
      createdAt: this.nowSeconds(),
    };
    p.timestamps.cio_id = ts;
    this.people.set(p.cioId, p);
    if (id !== null) this.setId(p, id, ts);
    if (email !== null) this.setEmail(p, email, ts);
    return p;
  }

  private setId(p: Person, id: string, ts: number): void {
    if (p.id !== null) this.byId.delete(p.id);
    p.id = id;
    p.timestamps.id = ts;
    this.byId.set(id, p);
  }

  private setEmail(p: Person, email: string | null, ts: number): void {
    if (p.email !== null) this.byEmail.delete(p.email.toLowerCase());
    p.email = email;
    if (email === null) {
      delete p.timestamps.email;
      return;
    }
    p.timestamps.email = ts;
    this.byEmail.set(email.toLowerCase(), p);
  }

  // ---------------------------------------------------------------- identify

  /**
   * Creates or updates a person the way `PUT /api/v1/customers/{identifier}` and v2 `identify` describe:
   *  - the target is found by the path/`identifiers` value; if it does not exist but an identifier in the body
   *    (`id`/`email`) belongs to someone, that person is updated and given the target identifier;
   *  - otherwise a person is created, unless `_update: true` ("Failed Attribute Change", nothing created);
   *  - identifiers of an existing person change only when addressed by `cio_id` (or, with the workspace setting
   *    "Allow updates to email using ID", an email addressed by id); a body identifier that belongs to someone
   *    else is an "Attribute Update Failure": answered 200, nothing applied;
   *  - an unknown `cio_id` drops the request; suppressed identifiers are never re-added;
   *  - each attribute keeps the timestamp of its last update (`_timestamp`/v2 `timestamp`, else receipt time)
   *    and an update older than that is ignored, so out-of-order deliveries converge on the latest value;
   *  - ⚠ `null` or `""` removes the attribute. The Track spec states this for object and relationship
   *    attributes only; for people it is the documented Customer.io behaviour of blank values, and the safest
   *    reading for a client: it must never send a blank it does not mean as a delete.
   * Validation (types, sizes, counts) is the caller's job; this method assumes a valid payload.
   */
  identify(
    ref: PersonRef,
    attrs: Record<string, unknown>,
    opts: {
      timestamp?: number;
      updateOnly?: boolean;
      /**
       * What `findPerson(ref)` returned (null: no one), looked up with nothing applied since: a Track
       * handler checks each operation right before applying it, and the check looks the person up.
       */
      found?: Person | null;
    } = {},
  ): WriteOutcome {
    const ts = opts.timestamp ?? this.nowSeconds();
    const target = opts.found !== undefined ? (opts.found ?? undefined) : this.findPerson(ref);
    const label = `${ref.type}:${ref.value}`;
    const bodyId = typeof attrs.id === 'string' && attrs.id !== '' ? attrs.id : typeof attrs.id === 'number' ? String(attrs.id) : undefined;
    const bodyEmail = typeof attrs.email === 'string' && attrs.email !== '' ? attrs.email : undefined;
    const clearEmail = attrs.email === null || attrs.email === '';

    let person: Person | undefined;
    let newId: string | undefined;
    let newEmail: string | undefined;

    if (ref.type === 'cio_id') {
      person = target;
      if (!person) return this.refuse(label, 'dropped_request', `cio_id ${ref.value} does not exist; request dropped`);
      if (bodyId !== undefined && bodyId !== person.id) newId = bodyId;
      if (bodyEmail !== undefined && bodyEmail.toLowerCase() !== person.email?.toLowerCase()) newEmail = bodyEmail;
    } else if (ref.type === 'id') {
      person = target;
      if (bodyId !== undefined && bodyId !== ref.value) {
        return this.refuse(label, 'attribute_update_failure', `body id "${bodyId}" differs from the path id; change ids via cio_id`);
      }
      if (person) {
        if (bodyEmail !== undefined && bodyEmail.toLowerCase() !== person.email?.toLowerCase()) {
          if (person.email !== null && !this.opts.allowEmailUpdateById) {
            return this.refuse(label, 'attribute_update_failure', 'email can only be changed via cio_id in this workspace');
          }
          newEmail = bodyEmail;
        }
      } else {
        const byEmail = bodyEmail !== undefined ? this.findPerson({ type: 'email', value: bodyEmail }) : undefined;
        if (byEmail) {
          person = byEmail;
          newId = ref.value;
        }
      }
    } else {
      person = target;
      if (bodyEmail !== undefined && bodyEmail.toLowerCase() !== ref.value.toLowerCase()) {
        return this.refuse(label, 'attribute_update_failure', `body email differs from the path email; change emails via cio_id`);
      }
      if (person) {
        if (bodyId !== undefined && bodyId !== person.id) {
          if (person.id !== null) return this.refuse(label, 'attribute_update_failure', 'id can only be changed via cio_id');
          newId = bodyId;
        }
      } else {
        const byId = bodyId !== undefined ? this.findPerson({ type: 'id', value: bodyId }) : undefined;
        if (byId) {
          person = byId;
          newEmail = ref.value;
        }
      }
    }

    // A new identifier must not belong to someone else.
    if (person && newId !== undefined) {
      const other = this.findPerson({ type: 'id', value: newId });
      if (other && other !== person) return this.refuse(label, 'attribute_update_failure', `id "${newId}" already belongs to another person`);
    }
    if (person && newEmail !== undefined) {
      const other = this.findPerson({ type: 'email', value: newEmail });
      if (other && other !== person) return this.refuse(label, 'attribute_update_failure', `email already belongs to another person`);
    }

    if (!person) {
      if (opts.updateOnly) return this.refuse(label, 'failed_attribute_change', `_update is true and no person matches ${label}`);
      // Both identifiers are free: the branches above looked each one up (the path's, and the body's other
      // one when given) and found no one, or `person` would be set.
      const id = ref.type === 'id' ? ref.value : (bodyId ?? null);
      const email = ref.type === 'email' ? ref.value : (bodyEmail ?? null);
      if (this.isSuppressed({ id, email })) return this.refuse(label, 'dropped_request', `${label} is suppressed`);
      person = this.createPerson(id, email, ts);
    } else {
      if (this.isSuppressed({ id: newId, email: newEmail })) return this.refuse(label, 'dropped_request', `${label} is suppressed`);
      if (newId !== undefined) this.setId(person, newId, ts);
      if (newEmail !== undefined) this.setEmail(person, newEmail, ts);
      else if (clearEmail && person.email !== null && person.id !== null && ref.type !== 'email') {
        // A person keeps at least one identifier, so email is cleared only when an id remains.
        this.setEmail(person, null, ts);
      }
    }

    this.applyAttributes(person, attrs, ts);
    if (typeof attrs.anonymous_id === 'string' && attrs.anonymous_id !== '') this.linkAnonymous(person, attrs.anonymous_id);
    const prefs = attrs.cio_subscription_preferences;
    if (typeof prefs === 'object' && prefs !== null && !Array.isArray(prefs)) {
      const topics = (prefs as Record<string, unknown>).topics;
      if (typeof topics === 'object' && topics !== null) {
        for (const [topic, v] of Object.entries(topics as Record<string, unknown>)) {
          if (typeof v === 'boolean') person.subscriptionTopics[topic] = v;
          else if (v === null || v === '') delete person.subscriptionTopics[topic];
        }
      }
    }
    return { applied: true, person };
  }

  /**
   * An identify that applies nothing: recorded in the activity log under the call's identifier. A method,
   * not a closure per call: under tsx (the bench's in-process sandbox) every named closure is also given
   * its name by a defineProperty, and an identify made two of them.
   */
  private refuse(label: string, type: ActivityEntry['type'], reason: string): WriteOutcome {
    this.record(type, label, reason);
    return { applied: false, reason };
  }

  /** Merges attribute values into a person, obeying per-attribute timestamps and blank-means-remove. */
  private applyAttributes(person: Person, attrs: Record<string, unknown>, ts: number): void {
    for (const key in attrs) {
      if (IDENTIFY_RESERVED_KEYS.has(key)) continue;
      const value = attrs[key];
      const topic = isTopicKey(key) ? TOPIC_KEY.exec(key) : null;
      if (topic) {
        if (typeof value === 'boolean') person.subscriptionTopics[topic[1]!] = value;
        else if (isRemoval(value)) delete person.subscriptionTopics[topic[1]!];
        continue;
      }
      const last = Math.max(person.timestamps[key] ?? -Infinity, person.tombstones[key] ?? -Infinity);
      if (ts < last) continue;
      if (isRemoval(value) || value === undefined) {
        if (key in person.attributes) {
          delete person.attributes[key];
          delete person.timestamps[key];
          person.tombstones[key] = ts;
        }
        continue;
      }
      person.attributes[key] = value as AttrValue;
      person.timestamps[key] = ts;
      delete person.tombstones[key];
    }
  }

  /** Attribute names a person would have after applying `attrs` (for the 300-attribute limit). */
  projectedAttributeCount(ref: PersonRef | undefined, attrs: Record<string, unknown>): number {
    return this.projectedAttributeCountOf(ref ? this.findPerson(ref) : undefined, attrs);
  }

  /** `projectedAttributeCount` for the person already looked up (undefined or null: no one). */
  projectedAttributeCountOf(existing: Person | null | undefined, attrs: Record<string, unknown>): number {
    if (!existing) {
      // A new person has what the call gives: a count, not a set of a million people's names.
      let n = 0;
      for (const k in attrs) if (!IDENTIFY_RESERVED_KEYS.has(k) && !isTopicKey(k) && !isRemoval(attrs[k])) n++;
      return n;
    }
    const names = new Set(Object.keys(existing.attributes));
    for (const [k, v] of Object.entries(attrs)) {
      if (IDENTIFY_RESERVED_KEYS.has(k) || isTopicKey(k)) continue;
      if (isRemoval(v)) names.delete(k);
      else names.add(k);
    }
    return names.size;
  }

  /** Anonymous events from the last 30 days with this anonymous_id move to the person (event merging). */
  private linkAnonymous(person: Person, anonymousId: string): void {
    person.anonymousId = anonymousId;
    const cutoff = this.nowSeconds() - ANONYMOUS_MERGE_WINDOW_S;
    const keep: StoredEvent[] = [];
    for (const e of this.anonymousEvents) {
      if (e.anonymousId === anonymousId && Math.floor(e.receivedAt / 1000) >= cutoff) this.eventsOf(person.cioId).push(e);
      else keep.push(e);
    }
    this.anonymousEvents = keep;
    const rest: AnonymousRelationship[] = [];
    for (const r of this.anonymousRelationships) {
      if (r.anonymousId === anonymousId) {
        this.relationships.set(relKey(person.cioId, r.cioObjectId), { personCioId: person.cioId, cioObjectId: r.cioObjectId, attributes: r.attributes });
      } else rest.push(r);
    }
    this.anonymousRelationships = rest;
  }

  // ---------------------------------------------------------------- delete, suppress, merge

  deletePerson(ref: PersonRef): boolean {
    const p = this.findPerson(ref);
    if (!p) return false;
    this.removePerson(p);
    return true;
  }

  private removePerson(p: Person): void {
    this.people.delete(p.cioId);
    if (p.id !== null) this.byId.delete(p.id);
    if (p.email !== null) this.byEmail.delete(p.email.toLowerCase());
    this.events.delete(p.cioId);
    for (const s of this.segments.values()) s.members.delete(p.cioId);
    for (const [k, r] of this.relationships) if (r.personCioId === p.cioId) this.relationships.delete(k);
  }

  /** Deletes the profile and blocks its identifiers from being re-added until unsuppressed. */
  suppress(ref: PersonRef): void {
    const p = this.findPerson(ref);
    if (p) {
      if (p.id !== null) this.suppressed.add(`id:${p.id}`);
      if (p.email !== null) this.suppressed.add(`email:${p.email.toLowerCase()}`);
      this.removePerson(p);
    } else if (ref.type === 'id') this.suppressed.add(`id:${ref.value}`);
    else if (ref.type === 'email') this.suppressed.add(`email:${ref.value.toLowerCase()}`);
  }

  unsuppress(ref: PersonRef): void {
    if (ref.type === 'id') this.suppressed.delete(`id:${ref.value}`);
    else if (ref.type === 'email') this.suppressed.delete(`email:${ref.value.toLowerCase()}`);
  }

  /**
   * "Merges secondary into primary, then deletes secondary … primary must already exist." The primary keeps its
   * own values; it gains the attributes, events, devices, memberships and relationships it lacks.
   */
  merge(primaryRef: PersonRef, secondaryRef: PersonRef): WriteOutcome {
    const primary = this.findPerson(primaryRef);
    const secondary = this.findPerson(secondaryRef);
    if (!primary) {
      this.record('failed_attribute_change', `${primaryRef.type}:${primaryRef.value}`, 'merge primary does not exist');
      return { applied: false, reason: 'primary does not exist' };
    }
    if (!secondary || secondary === primary) return { applied: true, person: primary };
    for (const [k, v] of Object.entries(secondary.attributes)) {
      if (!(k in primary.attributes)) {
        primary.attributes[k] = v;
        primary.timestamps[k] = secondary.timestamps[k] ?? this.nowSeconds();
      }
    }
    for (const d of secondary.devices) if (!primary.devices.some((x) => x.id === d.id)) primary.devices.push(d);
    this.eventsOf(primary.cioId).push(...(this.events.get(secondary.cioId) ?? []));
    for (const s of this.segments.values()) if (s.members.has(secondary.cioId)) s.members.add(primary.cioId);
    for (const r of [...this.relationships.values()]) {
      if (r.personCioId === secondary.cioId && !this.relationships.has(relKey(primary.cioId, r.cioObjectId))) {
        this.relationships.set(relKey(primary.cioId, r.cioObjectId), { ...r, personCioId: primary.cioId });
      }
    }
    const { id, email } = secondary;
    this.removePerson(secondary);
    const ts = this.nowSeconds();
    if (primary.id === null && id !== null) this.setId(primary, id, ts);
    if (primary.email === null && email !== null) this.setEmail(primary, email, ts);
    return { applied: true, person: primary };
  }

  // ---------------------------------------------------------------- devices

  addDevice(ref: PersonRef, device: Device): WriteOutcome {
    const p = this.findOrCreateForActivity(ref);
    if (!p.applied) return p;
    const existing = p.person.devices.findIndex((d) => d.id === device.id);
    if (existing >= 0) p.person.devices[existing] = { ...p.person.devices[existing]!, ...device };
    else p.person.devices.push(device);
    return p;
  }

  deleteDevice(ref: PersonRef, deviceId: string): void {
    const p = this.findPerson(ref);
    if (p) p.devices = p.devices.filter((d) => d.id !== deviceId);
  }

  // ---------------------------------------------------------------- events

  private eventsOf(cioId: string): StoredEvent[] {
    let list = this.events.get(cioId);
    if (!list) {
      list = [];
      this.events.set(cioId, list);
    }
    return list;
  }

  /**
   * Events, page and screen views for a person or an id/email not seen before.
   * ⚠ Sending an event for an unknown id/email creates that person (Customer.io creates profiles from events);
   * an unknown cio_id drops the request like identify does.
   */
  private findOrCreateForActivity(ref: PersonRef): WriteOutcome {
    const p = this.findPerson(ref);
    if (p) return { applied: true, person: p };
    if (ref.type === 'cio_id') {
      this.record('dropped_request', `cio_id:${ref.value}`, 'cio_id does not exist; request dropped');
      return { applied: false, reason: 'unknown cio_id' };
    }
    return this.identify(ref, {});
  }

  /**
   * Event dedupe: an event whose `id` was seen within `eventDedupeWindowMs` is accepted (200) but not stored
   * again. ⚠ Customer.io does not document its dedupe window; the sandbox keeps ids for that many
   * milliseconds (default 7 days) and forgets them after, so a client must not rely on dedupe across days.
   * Returns false when the event was a duplicate.
   */
  trackEvent(
    ref: PersonRef | null,
    event: { dedupeId?: string; name: string; type: StoredEvent['type']; timestamp?: number; data: Record<string, unknown>; anonymousId?: string },
  ): { stored: boolean; reason?: string } {
    const nowMs = this.opts.now();
    if (event.dedupeId !== undefined) {
      const key = event.dedupeId.toUpperCase();
      this.pruneDedupe(nowMs);
      const seen = this.dedupe.get(key);
      if (seen !== undefined && nowMs - seen < this.opts.eventDedupeWindowMs) return { stored: false, reason: 'duplicate' };
      // Delete first so the id moves to the end: the map stays in receipt order, which pruneDedupe relies on.
      this.dedupe.delete(key);
      this.dedupe.set(key, nowMs);
    }
    const stored: StoredEvent = {
      id: event.dedupeId ?? makeUlid(nowMs, this.opts.prng),
      name: event.name.trim(),
      type: event.type,
      timestamp: event.timestamp ?? Math.floor(nowMs / 1000),
      data: event.data,
      receivedAt: nowMs,
      ...(event.anonymousId !== undefined ? { anonymousId: event.anonymousId } : {}),
    };
    if (ref === null) {
      this.anonymousEvents.push(stored);
      return { stored: true };
    }
    const p = this.findOrCreateForActivity(ref);
    if (!p.applied) return { stored: false, reason: p.reason };
    this.eventsOf(p.person.cioId).push(stored);
    return { stored: true };
  }

  private pruneDedupe(nowMs: number): void {
    // Cheap amortised cleanup: Map iteration is insertion order, so expired ids sit at the front.
    for (const [k, at] of this.dedupe) {
      if (nowMs - at < this.opts.eventDedupeWindowMs) break;
      this.dedupe.delete(k);
    }
  }

  recordDelivery(metric: DeliveryMetric): void {
    this.deliveryMetrics.push(metric);
  }

  // ---------------------------------------------------------------- objects and relationships

  findObject(ref: ObjectRef): StoredObject | undefined {
    if ('cioObjectId' in ref) return this.objects.get(ref.cioObjectId);
    const id = this.objectIndex.get(objKey(ref.objectTypeId, ref.objectId));
    return id === undefined ? undefined : this.objects.get(id);
  }

  private findOrCreateObject(ref: ObjectRef): StoredObject | undefined {
    const found = this.findObject(ref);
    if (found || 'cioObjectId' in ref) return found;
    this.objectSeq += 1;
    const o: StoredObject = {
      cioObjectId: `ob${(0xb7fd050100 + this.objectSeq).toString(16)}`,
      objectTypeId: ref.objectTypeId,
      objectId: ref.objectId,
      attributes: {},
      timestamps: {},
    };
    this.objects.set(o.cioObjectId, o);
    this.objectIndex.set(objKey(ref.objectTypeId, ref.objectId), o.cioObjectId);
    return o;
  }

  /** "If identifiers.object_id does not exist, we'll create a new object"; `cio_object_id` updates only. */
  identifyObject(
    ref: ObjectRef,
    attrs: Record<string, unknown>,
    people: Array<{ person: PersonRef; attributes?: Record<string, unknown> }>,
    timestamp?: number,
  ): StoredObject | undefined {
    const o = this.findOrCreateObject(ref);
    if (!o) {
      this.record('dropped_request', objLabel(ref), 'cio_object_id does not exist; request dropped');
      return undefined;
    }
    const ts = timestamp ?? this.nowSeconds();
    for (const [k, v] of Object.entries(attrs)) {
      if (isRemoval(v)) {
        delete o.attributes[k];
        delete o.timestamps[k];
      } else {
        o.attributes[k] = v as AttrValue;
        o.timestamps[k] = ts;
      }
    }
    this.relateStoredObject(o, people, 'add');
    return o;
  }

  deleteObject(ref: ObjectRef): void {
    const o = this.findObject(ref);
    if (!o) return;
    this.objects.delete(o.cioObjectId);
    this.objectIndex.delete(objKey(o.objectTypeId, o.objectId));
    for (const [k, r] of this.relationships) if (r.cioObjectId === o.cioObjectId) this.relationships.delete(k);
    this.anonymousRelationships = this.anonymousRelationships.filter((r) => r.cioObjectId !== o.cioObjectId);
  }

  /** Object side: relate/unrelate people (unknown id/email people are created, unknown cio_ids ignored ⚠). */
  relateObject(
    ref: ObjectRef,
    people: Array<{ person: PersonRef; attributes?: Record<string, unknown> }>,
    action: 'add' | 'delete',
  ): void {
    const o = action === 'add' ? this.findOrCreateObject(ref) : this.findObject(ref);
    if (!o) {
      this.record('ignored_relationship', objLabel(ref), 'object does not exist');
      return;
    }
    this.relateStoredObject(o, people, action);
  }

  private relateStoredObject(
    o: StoredObject,
    people: Array<{ person: PersonRef; attributes?: Record<string, unknown> }>,
    action: 'add' | 'delete',
  ): void {
    for (const { person, attributes } of people) {
      let p: Person | undefined;
      if (action === 'add') {
        const out = this.findOrCreateForActivity(person);
        p = out.applied ? out.person : undefined;
      } else p = this.findPerson(person);
      if (p) this.setRelationship(p.cioId, o.cioObjectId, action, attributes);
    }
  }

  /** Person side: relate/unrelate objects (objects given by type+id are created when missing). */
  relatePerson(
    ref: PersonRef,
    objects: Array<{ object: ObjectRef; attributes?: Record<string, unknown> }>,
    action: 'add' | 'delete',
  ): WriteOutcome {
    let person: Person | undefined;
    if (action === 'add') {
      const out = this.findOrCreateForActivity(ref);
      if (!out.applied) return out;
      person = out.person;
    } else person = this.findPerson(ref);
    if (!person) return { applied: false, reason: 'person does not exist' };
    for (const { object, attributes } of objects) {
      const o = action === 'add' ? this.findOrCreateObject(object) : this.findObject(object);
      if (!o) {
        this.record('ignored_relationship', objLabel(object), 'object does not exist');
        continue;
      }
      this.setRelationship(person.cioId, o.cioObjectId, action, attributes);
    }
    return { applied: true, person };
  }

  relateAnonymous(objRef: ObjectRef, anonymousIds: Array<{ anonymousId: string; attributes?: Record<string, unknown> }>): void {
    const o = this.findOrCreateObject(objRef);
    if (!o) return;
    for (const { anonymousId, attributes } of anonymousIds) {
      const attrs: Record<string, AttrValue> = {};
      for (const [k, v] of Object.entries(attributes ?? {})) if (!isRemoval(v)) attrs[k] = v as AttrValue;
      this.anonymousRelationships = this.anonymousRelationships.filter((r) => !(r.anonymousId === anonymousId && r.cioObjectId === o.cioObjectId));
      this.anonymousRelationships.push({ anonymousId, cioObjectId: o.cioObjectId, attributes: attrs });
    }
  }

  private setRelationship(personCioId: string, cioObjectId: string, action: 'add' | 'delete', attributes?: Record<string, unknown>): void {
    const key = relKey(personCioId, cioObjectId);
    if (action === 'delete') {
      this.relationships.delete(key);
      return;
    }
    const rel = this.relationships.get(key) ?? { personCioId, cioObjectId, attributes: {} };
    // "Passing null or an empty string removes the attribute from the relationship."
    for (const [k, v] of Object.entries(attributes ?? {})) {
      if (isRemoval(v)) delete rel.attributes[k];
      else rel.attributes[k] = v as AttrValue;
    }
    this.relationships.set(key, rel);
  }

  // ---------------------------------------------------------------- segments

  /**
   * A new segment. `id` is for seeding a segment the real workspace already has (its id is in the Workspace
   * specs); a taken or invalid id throws. Ids handed out afterwards step over ids seeded that way.
   */
  createSegment(input: { name: string; description?: string; type: Segment['type']; tags?: string[] | null; id?: number }): Segment {
    let id: number;
    if (input.id !== undefined) {
      const problem = this.segmentIdProblem(input.id);
      if (problem) throw new RangeError(problem);
      id = input.id;
    } else {
      do {
        this.segmentSeq += 1;
      } while (this.segments.has(this.segmentSeq));
      id = this.segmentSeq;
    }
    const now = this.nowSeconds();
    const s: Segment = {
      id,
      name: input.name,
      description: input.description ?? '',
      type: input.type,
      state: 'finished',
      progress: null,
      tags: input.tags ?? null,
      createdAt: now,
      updatedAt: now,
      members: new Set(),
    };
    this.segments.set(s.id, s);
    return s;
  }

  /** Why a segment cannot be seeded with this id, or undefined when it can. */
  segmentIdProblem(id: number): string | undefined {
    // segment_id is an int32 in the App API.
    if (!Number.isInteger(id) || id < 1 || id > 2_147_483_647) return `segment id must be a positive 32-bit integer (got ${id})`;
    const taken = this.segments.get(id);
    return taken ? `segment id ${id} is taken (by "${taken.name}")` : undefined;
  }

  deleteSegment(id: number): boolean {
    return this.segments.delete(id);
  }

  /** Resolves a list of identifiers of one type; values that are unknown or of another shape are skipped. */
  resolveIds(ids: readonly string[], idType: IdentifierType): Person[] {
    const out: Person[] = [];
    for (const raw of ids) {
      const ref = refForIdType(raw, idType);
      if (!ref) continue;
      const p = this.findPerson(ref);
      if (p) out.push(p);
    }
    return out;
  }

  // ---------------------------------------------------------------- filters and exports

  filterPeople(filter: AudienceFilter): Person[] {
    return this.sortedPeople().filter((p) =>
      matchesFilter(filter, {
        attribute: (field) => appAttributes(p)[field],
        inSegment: (id) => this.segments.get(id)?.members.has(p.cioId) ?? false,
      }),
    );
  }

  createExport(people: Person[], description: string, content: string): ExportRecord {
    this.exportSeq += 1;
    const now = this.nowSeconds();
    const e: ExportRecord = {
      id: this.exportSeq,
      type: 'customers',
      description,
      createdAt: now,
      updatedAt: now,
      readyAtMs: this.opts.now() + this.opts.exportReadyAfterMs,
      rowCount: people.length,
      downloads: 0,
      content,
    };
    this.exports.set(e.id, e);
    return e;
  }

  // ---------------------------------------------------------------- snapshot

  snapshot(): WorkspaceSnapshot {
    return {
      version: 1,
      personSeq: this.personSeq,
      objectSeq: this.objectSeq,
      segmentSeq: this.segmentSeq,
      exportSeq: this.exportSeq,
      people: this.sortedPeople().map((p) => ({ ...p })),
      events: [...this.events.entries()],
      anonymousEvents: this.anonymousEvents,
      dedupe: [...this.dedupe.entries()],
      objects: [...this.objects.values()],
      relationships: [...this.relationships.values()],
      anonymousRelationships: this.anonymousRelationships,
      segments: [...this.segments.values()].map((s) => ({ ...s, members: [...s.members] })),
      exports: [...this.exports.values()],
      suppressed: [...this.suppressed],
      deliveryMetrics: this.deliveryMetrics,
      activity: this.activity,
    };
  }

  restore(raw: unknown): void {
    const s = raw as WorkspaceSnapshot;
    if (typeof s !== 'object' || s === null || s.version !== 1) {
      throw new Error('Customer.io sandbox snapshot has an unknown format (expected version 1)');
    }
    this.reset();
    const copy = structuredClone(s);
    this.personSeq = copy.personSeq;
    this.objectSeq = copy.objectSeq;
    this.segmentSeq = copy.segmentSeq;
    this.exportSeq = copy.exportSeq;
    for (const p of copy.people) {
      this.people.set(p.cioId, p);
      if (p.id !== null) this.byId.set(p.id, p);
      if (p.email !== null) this.byEmail.set(p.email.toLowerCase(), p);
    }
    this.events = new Map(copy.events);
    this.anonymousEvents = copy.anonymousEvents;
    this.dedupe = new Map(copy.dedupe);
    for (const o of copy.objects) {
      this.objects.set(o.cioObjectId, o);
      this.objectIndex.set(objKey(o.objectTypeId, o.objectId), o.cioObjectId);
    }
    for (const r of copy.relationships) this.relationships.set(relKey(r.personCioId, r.cioObjectId), r);
    this.anonymousRelationships = copy.anonymousRelationships;
    for (const seg of copy.segments) this.segments.set(seg.id, { ...seg, members: new Set(seg.members) });
    for (const e of copy.exports) this.exports.set(e.id, e);
    this.suppressed = new Set(copy.suppressed);
    this.deliveryMetrics = copy.deliveryMetrics;
    this.activity = copy.activity;
  }

  reset(): void {
    this.people.clear();
    this.byId.clear();
    this.byEmail.clear();
    this.personSeq = 0;
    this.events.clear();
    this.anonymousEvents = [];
    this.dedupe.clear();
    this.objects.clear();
    this.objectIndex.clear();
    this.objectSeq = 0;
    this.relationships.clear();
    this.anonymousRelationships = [];
    this.segments.clear();
    this.segmentSeq = 0;
    this.exports.clear();
    this.exportSeq = 0;
    this.suppressed.clear();
    this.deliveryMetrics = [];
    this.activity = [];
  }
}

export interface WorkspaceSnapshot {
  version: 1;
  personSeq: number;
  objectSeq: number;
  segmentSeq: number;
  exportSeq: number;
  people: Person[];
  events: Array<[string, StoredEvent[]]>;
  anonymousEvents: StoredEvent[];
  dedupe: Array<[string, number]>;
  objects: StoredObject[];
  relationships: Relationship[];
  anonymousRelationships: AnonymousRelationship[];
  segments: Array<Omit<Segment, 'members'> & { members: string[] }>;
  exports: ExportRecord[];
  suppressed: string[];
  deliveryMetrics: DeliveryMetric[];
  activity: ActivityEntry[];
}

function relKey(personCioId: string, cioObjectId: string): string {
  return `${personCioId}\u0000${cioObjectId}`;
}

function objKey(typeId: string, objectId: string): string {
  return `${typeId}\u0000${objectId}`;
}

function objLabel(ref: ObjectRef): string {
  return 'cioObjectId' in ref ? `cio_object_id:${ref.cioObjectId}` : `object:${ref.objectTypeId}/${ref.objectId}`;
}

/**
 * Reads a Track v1 path identifier: "We determine the identifier type from the shape of the value": `cio_`
 * prefix → cio_id, something with `@` → email, anything else (phone numbers included) → id.
 */
export function parsePathIdentifier(raw: string): PersonRef {
  if (raw.startsWith('cio_')) return { type: 'cio_id', value: raw.slice(4) };
  if (raw.includes('@')) return { type: 'email', value: raw };
  return { type: 'id', value: raw };
}

/**
 * One value of a list typed by `id_type`. Values whose shape does not match the type are skipped ("we'll ignore
 * values in the ids array that don't match the id_type"): an email-shaped value under `id`, a value without `@`
 * under `email`. ⚠ `cio_id` values are accepted with or without the `cio_` prefix (the docs differ by endpoint).
 */
export function refForIdType(raw: string, idType: IdentifierType): PersonRef | undefined {
  if (raw === '') return undefined;
  if (idType === 'id') return raw.includes('@') ? undefined : { type: 'id', value: raw };
  if (idType === 'email') return raw.includes('@') ? { type: 'email', value: raw } : undefined;
  return { type: 'cio_id', value: raw.startsWith('cio_') ? raw.slice(4) : raw };
}

/** A person's attributes as the App API shows them: all strings, identifiers included. */
export function appAttributes(p: Person): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.attributes)) out[k] = attributeString(v);
  if (p.id !== null) out.id = p.id;
  if (p.email !== null) out.email = p.email;
  out.cio_id = p.cioId;
  return out;
}
