/**
 * The people export file. ⚠ Customer.io does not document the format behind the download URL; CSV is what the
 * reference expects, so an export is an RFC 4180 CSV: a header row `cio_id,id,email,<attributes…>` (attribute
 * columns sorted by name, the union over all exported people), one row per person, values as the App API shows
 * them (strings), empty cells for missing values, CRLF line ends.
 */
import { attributeString, type Person } from './workspace.ts';

function cell(v: string): string {
  return /[",\r\n]/.test(v) || v !== v.trim() ? `"${v.replace(/"/g, '""')}"` : v;
}

export function peopleCsv(people: readonly Person[]): string {
  const names = new Set<string>();
  for (const p of people) for (const k of Object.keys(p.attributes)) names.add(k);
  const attrCols = [...names].filter((n) => n !== 'cio_id' && n !== 'id' && n !== 'email').sort();
  const header = ['cio_id', 'id', 'email', ...attrCols];
  const lines = [header.map(cell).join(',')];
  for (const p of people) {
    const row = [p.cioId, p.id ?? '', p.email ?? '', ...attrCols.map((c) => (c in p.attributes ? attributeString(p.attributes[c]!) : ''))];
    lines.push(row.map(cell).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}
