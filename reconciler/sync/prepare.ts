/**
 * From a normalised row to what the snapshot stores and what would be sent. Pure.
 *
 * - Nulls: a blank erases a Customer.io attribute only when the field is declared `clearable` (or the
 *   source says `null_policy: overwrite`, which validation flags). Otherwise the field is never sent and
 *   is counted as "null-blocked": the nightly export that blanks VIP tiers changes nothing.
 * - A blocked blank is not a change. Customer.io still holds the value last sent, so the row is compared
 *   as if it carried that value: the previous payload's value is kept in the payload (and so in the hash
 *   and in the mirror of what was sent), listed in `k` so that it is never sent again (someone may have
 *   changed it in Customer.io since, and the source said nothing new about it).
 * - Only mapped fields are compared: the hash covers exactly the values Customer.io should hold after the
 *   row is sent, so a column tidemark does not map can change without a resend.
 * - A state field travels with its updated_at companion: when the state's blank is blocked, the companion
 *   is held back too, since "updated at T" next to a value the source did not confirm at T would tell
 *   journeys a stale state is fresh.
 */
import { hash } from 'node:crypto';
import { canonicalJson } from '../core/digest.ts';
import type { FieldDef, SourceSpec } from '../spec/schema/index.ts';
import type { NormalizedRow, SyncValue } from './types.ts';

/** What is kept per key in the snapshot, and sent when the key is new or changed. */
export interface Payload {
  /** person | event | object */
  r: SourceSpec['records'];
  /** Attributes (person, object) or event data. */
  a: Record<string, SyncValue>;
  e?: { name: string; id: string; timestamp: number; person: string };
  o?: { type: string; id: string; person?: string };
  /**
   * Fields of `a` carried over from the previous payload because this row's blank was blocked. They are
   * part of the hash and the mirror (Customer.io still holds them) but are never sent.
   */
  k?: string[];
}

export interface PreparedRow {
  key: string;
  hash: string;
  ordering: number | null;
  payload: Payload;
  /**
   * Blank fields kept from erasing a value because they are not clearable, plus the updated_at
   * companions held back with them. None of these is sent.
   */
  nullBlocked: string[];
  /** Blank fields that will erase a value (clearable, or null_policy overwrite), unless it is already erased. */
  erased: string[];
}

/**
 * Prepares one row. `previous` is the payload last sent for the row's key, when there is one; the
 * engine looks it up only for rows with blanks, the only rows whose outcome depends on it.
 */
export function prepareRow(
  row: NormalizedRow,
  source: SourceSpec,
  fields: ReadonlyMap<string, FieldDef>,
  previous?: Payload,
): PreparedRow {
  const attributes: Record<string, SyncValue> = { ...row.values };
  const nullBlocked: string[] = [];
  const erased: string[] = [];
  const kept: string[] = [];
  const holdBack = (f: string): void => {
    const before = previous?.a[f];
    if (before !== undefined && before !== null) {
      attributes[f] = before;
      kept.push(f);
    } else {
      delete attributes[f];
    }
  };
  for (const f of row.blanks) {
    if (source.null_policy === 'overwrite' || fields.get(f)?.clearable) {
      attributes[f] = null;
      // Erasing what is already erased is no erase (and the unchanged row is not sent anyway).
      if (previous?.a[f] !== null) erased.push(f);
    } else {
      nullBlocked.push(f);
      holdBack(f);
    }
  }
  if (source.records !== 'event') {
    for (const f of [...nullBlocked]) {
      const companion = fields.get(f)?.updated_at;
      if (companion === undefined || !Object.hasOwn(row.values, companion) || nullBlocked.includes(companion)) continue;
      nullBlocked.push(companion);
      holdBack(companion);
    }
  }
  const payload: Payload = { r: source.records, a: attributes };
  if (row.event) payload.e = row.event;
  if (row.object) payload.o = row.object;
  // Events are immutable: their identity is the event id, whatever the data says later.
  const hashed = source.records === 'event' ? { e: row.event } : { ...payload };
  if (kept.length > 0) payload.k = kept.sort();
  // The one-shot hash() gives the same digest as core's sha256() without a Hash object per row, which
  // made up about a third of this function's time on a million-row source (see docs/BENCHMARKS.md).
  return { key: row.key, hash: hash('sha256', canonicalJson(hashed)).slice(0, 32), ordering: row.ordering, payload, nullBlocked, erased };
}

/** The fields of a payload that differ from a previous payload (for per-field counts in sync plans). */
export function changedFields(previous: Payload | undefined, next: Payload): string[] {
  if (!previous) return Object.keys(next.a).sort();
  const keys = new Set([...Object.keys(previous.a), ...Object.keys(next.a)]);
  return [...keys].filter((k) => k in next.a && JSON.stringify(previous.a[k] ?? null) !== JSON.stringify(next.a[k] ?? null)).sort();
}
