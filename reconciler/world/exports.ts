/**
 * The world's file exports, as the systems that drop them write them: the loyalty app's nightly CSV
 * (blanks as empty fields, corrections appended unsorted) and the returns portal's NDJSON (one return per
 * line, in the portal's order, not by time). Pure: text in, text out.
 */
import type { LoyaltyRow, ReturnRow, WorldTables } from './hearth-and-harvest.ts';

export const LOYALTY_EXPORT_FILE = 'loyalty_export.csv';
export const RETURNS_EXPORT_FILE = 'returns.ndjson';

const LOYALTY_COLUMNS: Array<keyof LoyaltyRow> = ['shopify_customer_id', 'points_balance', 'tier', 'tier_changed_at'];

function csvField(v: string): string {
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

export function loyaltyCsv(rows: readonly LoyaltyRow[]): string {
  return `${LOYALTY_COLUMNS.join(',')}\n${rows.map((r) => LOYALTY_COLUMNS.map((c) => csvField(r[c])).join(',')).join('\n')}\n`;
}

export function returnsNdjson(rows: readonly ReturnRow[]): string {
  return rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : '');
}

/** File name → content, for every export the world writes. */
export function worldExports(t: Pick<WorldTables, 'loyalty' | 'returns'>): Map<string, string> {
  return new Map([
    [LOYALTY_EXPORT_FILE, loyaltyCsv(t.loyalty)],
    [RETURNS_EXPORT_FILE, returnsNdjson(t.returns)],
  ]);
}
