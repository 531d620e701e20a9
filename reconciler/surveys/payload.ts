/**
 * What a Qualtrics contact carries for one invitation: extRef (the person's id, how responses tie back),
 * the email address Qualtrics sends to, and the declared payload as embedded data, each value formatted
 * by its field's declared type. Pure.
 */
import { createHash } from 'node:crypto';
import type { SpecModel } from '../spec/model.ts';
import type { FieldDef } from '../spec/schema/fields.ts';

/** A value as the mirror stores it: the text Customer.io acknowledged, and epoch ms for timestamps. */
export interface StoredValue {
  value: string;
  ts_ms: number | null;
}

export interface PayloadField {
  name: string;
  type: FieldDef['type'];
}

/**
 * The embedded-data text of a value, by type. Timestamps become ISO-8601 UTC to the second
 * (`2026-11-30T14:05:00Z`), which Qualtrics' date filters and exports read; numbers keep the decimal text
 * Customer.io holds (never an exponent); booleans `true`/`false`. Absent or blank: no key at all, so the
 * survey sees "not set" rather than an empty string that looks like an answer.
 */
export function embeddedValue(type: PayloadField['type'], stored: StoredValue | undefined): string | undefined {
  if (!stored || stored.value === '') return undefined;
  switch (type) {
    case 'timestamp': {
      const ms = stored.ts_ms ?? (Number.isFinite(Number(stored.value)) ? Math.round(Number(stored.value) * 1000) : Date.parse(stored.value));
      if (!Number.isFinite(ms)) return undefined;
      return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
    }
    case 'number': {
      const n = Number(stored.value);
      if (!Number.isFinite(n)) return undefined;
      // Plain decimal text: Qualtrics compares embedded data as text or numbers, and neither reads `1e21`.
      return /^-?\d+(\.\d+)?$/.test(stored.value.trim()) ? stored.value.trim() : n.toLocaleString('en-US', { useGrouping: false, maximumFractionDigits: 20 });
    }
    case 'boolean':
      return stored.value === 'true' || stored.value === '1' ? 'true' : stored.value === 'false' || stored.value === '0' ? 'false' : undefined;
    default:
      return stored.value;
  }
}

/** The payload's fields with their declared types, in declaration order (undeclared ones are a validation error). */
export function payloadFields(model: SpecModel, payload: readonly string[]): PayloadField[] {
  return payload.flatMap((name) => {
    const f = model.fields.get(name);
    return f ? [{ name, type: f.def.type }] : [];
  });
}

/** The attribute that holds a person's email address (spec/mirrored-fields.ts; the mirror keeps it). */
export { emailField } from '../spec/mirrored-fields.ts';

/** Good enough to hand to Qualtrics: one @, a dot in the domain, no spaces. Qualtrics rejects the rest per row. */
export function sendableEmail(v: string | undefined): v is string {
  return typeof v === 'string' && /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v);
}

export interface InvitationContact {
  extRef: string;
  email: string;
  embeddedData: Record<string, string>;
  transactionData: Record<string, string>;
}

/** The field name the transaction of each invitation carries (the send it belongs to). */
export const SEND_TRANSACTION_FIELD = 'tidemark_send';

export function invitationContact(personId: string, email: string, sendId: string, fields: readonly PayloadField[], values: ReadonlyMap<string, StoredValue> | undefined): InvitationContact {
  const embeddedData: Record<string, string> = {};
  for (const f of fields) {
    const v = embeddedValue(f.type, values?.get(f.name));
    if (v !== undefined) embeddedData[f.name] = v;
  }
  return { extRef: personId, email, embeddedData, transactionData: { [SEND_TRANSACTION_FIELD]: sendId } };
}

/**
 * The Qualtrics transaction batch of a send: derived from the environment and the send id, so a resumed
 * run addresses the same batch, and two environments sharing a directory never share one.
 */
export function batchIdFor(environment: string, sendId: string): string {
  return `BT_tm${createHash('sha256').update(`${environment}\0${sendId}`).digest('hex').slice(0, 24)}`;
}
