/** Snapshot payloads → Customer.io Track v2 operations. Pure. */
import type { V2Entry } from '../providers/customerio/types.ts';
import type { Payload } from './prepare.ts';

export interface EntryOptions {
  /**
   * Which identifier the source's person identities are (`identity.as`). Person and event keys are sent
   * under it (validation makes it the workspace's primary identifier for those sources); an object's
   * related person is sent under it too, which is why it cannot simply be the primary identifier:
   * object sources may relate people by another identifier.
   */
  identifier: 'id' | 'email' | 'phone';
  /** Attribute stamped with the run time (unix seconds) on every person sent, if configured. */
  stamp?: { field: string; at: number };
}

/** The attributes to send: the payload's, minus the values only kept as the mirror of what Customer.io holds. */
function sendable(p: Payload): Payload['attributes'] {
  if (!p.kept?.length) return p.attributes;
  const out = { ...p.attributes };
  for (const f of p.kept) delete out[f];
  return out;
}

/** The v2 operation for one payload: a person event, an object identify (with its relationship) or a person identify. */
export function toTrackEntry(key: string, p: Payload, opts: EntryOptions): V2Entry {
  switch (p.records) {
    case 'event':
      return {
        type: 'person',
        action: 'event',
        identifiers: { [opts.identifier]: p.event!.person },
        name: p.event!.name,
        id: p.event!.id,
        timestamp: p.event!.timestamp,
        attributes: p.attributes,
      } as unknown as V2Entry;
    case 'object': {
      const entry: Record<string, unknown> = {
        type: 'object',
        action: 'identify',
        identifiers: { object_type_id: p.object!.type, object_id: p.object!.id },
        attributes: sendable(p),
      };
      // ⚠ Relating by phone only works in workspaces with phone enabled as an identifier (REFERENCE.md §5);
      // elsewhere Customer.io refuses the entry and the row lands in the rejects file rather than relating
      // the object to a person created with the phone number as an id.
      if (p.object!.person) entry.cio_relationships = [{ identifiers: { [opts.identifier]: p.object!.person } }];
      return entry as V2Entry;
    }
    default: {
      const attributes = sendable(p);
      return {
        type: 'person',
        action: 'identify',
        identifiers: { [opts.identifier]: key },
        attributes: opts.stamp ? { ...attributes, [opts.stamp.field]: opts.stamp.at } : attributes,
      } as unknown as V2Entry;
    }
  }
}

/** How `JSON.stringify` writes a payload of exactly `records` and `attributes`, up to the attributes. */
const PERSON_PAYLOAD_HEAD = '{"records":"person","attributes":';

/**
 * `JSON.stringify(toTrackEntry(key, p, opts))` for a person identify, given `payloadText`, which must be
 * `JSON.stringify(p)`; undefined for any other payload. An identify sends the payload's attributes as they
 * are, so their JSON is taken from the payload's text instead of being written again: a worker writes
 * both texts for every new or changed row, and the attributes are most of each (measured: 1.1 µs a row).
 * Only a payload of nothing but `records: "person"` and `attributes`, with no stamp, is spliced.
 */
export function identifyEntryText(key: string, p: Payload, payloadText: string, opts: EntryOptions): string | undefined {
  if (opts.stamp !== undefined || p.records !== 'person' || !payloadText.startsWith(PERSON_PAYLOAD_HEAD) || ownKeys(p) !== 2) return undefined;
  const attributes = payloadText.slice(PERSON_PAYLOAD_HEAD.length, -1);
  return `{"type":"person","action":"identify","identifiers":{${JSON.stringify(opts.identifier)}:${JSON.stringify(key)}},"attributes":${attributes}}`;
}

/** Keys `for…in` visits (an undefined value counts; `JSON.stringify` leaves it out, so the splice is not taken). */
function ownKeys(o: object): number {
  let n = 0;
  for (const k in o) if (Object.hasOwn(o, k)) n++;
  return n;
}
