/**
 * Customer.io payload limits (REFERENCE.md §2, from the Track OpenAPI `info.description`).
 */

export const LIMITS = {
  personIdBytes: 150,
  attributeNameBytes: 150,
  attributeValueBytes: 1000,
  /** "Max number of attributes allowed per person or Identify call". */
  attributesPerPerson: 300,
  objectIdBytes: 150,
  /** "Total attribute size: 100 Kilobytes" per object or relationship. ⚠ unit: 100 000 (the smaller reading). */
  objectTotalAttributeBytes: 100_000,
  eventNameBytes: 100,
  eventDataBytes: 100_000,
  /**
   * v2: "/entity is limited to requests 32kb or smaller", "/batch … 500kb or smaller", each entry 32kb.
   * ⚠ The docs do not say whether kb is 1000 or 1024 bytes. We enforce the smaller (1000) reading: a client
   * that stays under it is accepted under either reading, while one sized for 1024 could be refused live.
   */
  v2EntityBytes: 32_000,
  v2BatchBytes: 500_000,
  v2BatchEntryBytes: 32_000,
  segmentIdsPerRequest: 1000,
  attributesLookupIds: 100,
  searchLimitDefault: 50,
  searchLimitMax: 1000,
  membershipLimitDefault: 1000,
  membershipLimitMax: 30_000,
  /** App export download links "expire after 15 minutes". */
  exportLinkTtlMs: 15 * 60 * 1000,
} as const;

export function byteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** Size of an attribute value as Customer.io stores it: strings as-is, everything else as JSON text. */
export function valueBytes(v: unknown): number {
  return byteLength(typeof v === 'string' ? v : JSON.stringify(v) ?? '');
}

/**
 * `byteLength(s) <= limit`, without counting when the answer is plain: a UTF-16 code unit is at most three
 * UTF-8 bytes. A batch of a million identifies checks every name and value; counting each took a native
 * call, and a number's or boolean's size a JSON text.
 */
export function withinBytes(s: string, limit: number): boolean {
  return s.length * 3 <= limit || byteLength(s) <= limit;
}

/** `valueBytes(v) <= limit`; a number's or boolean's JSON text is at most 24 bytes. */
export function valueWithinBytes(v: unknown, limit: number): boolean {
  if (typeof v === 'string') return withinBytes(v, limit);
  if ((typeof v === 'number' || typeof v === 'boolean') && limit >= 24) return true;
  return valueBytes(v) <= limit;
}
