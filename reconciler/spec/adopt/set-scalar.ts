/**
 * Sets plain values in a spec file's text, keeping everything else byte for byte: comments, key order,
 * flow mappings, quoting, alignment and line endings. Pure.
 *
 * The yaml Document API finds the node (`getIn` on each document) and checks the result, but the text is
 * not re-printed with `toString()`: that re-flows what the file's author wrote (`[a, b]` becomes
 * `[ a, b ]`, aligned end-of-line comments lose their alignment, a comment after a key moves to its own
 * line; checked on the example specs). Instead the node's own characters are replaced, in the style it
 * was written in when that style can hold the value (plain, 'single' or "double" quoted, in that order
 * of preference after the original), and a missing key is added as one line at the end of its mapping (or
 * before the closing brace of a flow mapping). Every edit is proven by parsing the result again: the
 * edited document must read exactly as the old one with that one value set, and every other document
 * must read as before. An edit that cannot be proven is refused, never written approximately.
 */
import { isMap, isScalar, parseAllDocuments, type Document, type Node, type YAMLMap } from 'yaml';
import { canonicalJson } from '../../core/digest.ts';

export type ScalarValue = string | number | boolean | null;

export interface ScalarEdit {
  /** 0-based index of the document within the file (as ParsedDocument.index). */
  document: number;
  /** Keys (and list indexes) from the document's root. */
  path: ReadonlyArray<string | number>;
  value: ScalarValue;
}

export type EditResult = { ok: true; text: string; line: number } | { ok: false; problem: string };

const MAX_ALIAS_COUNT = 1000;

function parse(text: string): Document.Parsed[] {
  return parseAllDocuments(text, { uniqueKeys: false, prettyErrors: false, logLevel: 'error' }) as Document.Parsed[];
}

function dataOf(docs: Document.Parsed[]): string[] | undefined {
  if (docs.some((d) => d.errors.length > 0)) return undefined;
  try {
    return docs.map((d) => canonicalJson(d.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) ?? null));
  } catch {
    return undefined;
  }
}

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** The ways `value` can be written as a scalar, the node's own style first. */
function renderings(value: ScalarValue, style: string | undefined): string[] {
  if (typeof value !== 'string') return [value === null ? 'null' : String(value)];
  const plain = value;
  const single = /[\n\r]/.test(value) ? undefined : `'${value.replace(/'/g, "''")}'`;
  const double = JSON.stringify(value);
  const byStyle: Record<string, string | undefined> = { PLAIN: plain, QUOTE_SINGLE: single, QUOTE_DOUBLE: double };
  const ordered = [style ? byStyle[style] : undefined, plain, single, double];
  return [...new Set(ordered.filter((r): r is string => r !== undefined))];
}

function setPath(data: unknown, path: ReadonlyArray<string | number>, value: ScalarValue): unknown {
  const root = structuredClone(data) as Record<string | number, unknown>;
  let at = root;
  for (const k of path.slice(0, -1)) {
    if (at[k] === null || typeof at[k] !== 'object') at[k] = {};
    at = at[k] as Record<string | number, unknown>;
  }
  at[path[path.length - 1]!] = value;
  return root;
}

/** Sets one value in the text of a spec file; the line it is on in the result. */
export function setScalar(text: string, edit: ScalarEdit): EditResult {
  if (/\r(?!\n)/.test(text)) return { ok: false, problem: 'uses old Mac (CR only) line endings, which tidemark does not rewrite: convert it to LF first' };
  const docs = parse(text);
  const before = dataOf(docs);
  if (!before) return { ok: false, problem: 'does not parse as YAML' };
  const doc = docs[edit.document];
  if (!doc) return { ok: false, problem: `has no document ${edit.document + 1}` };
  const expected = [...before];
  expected[edit.document] = canonicalJson(setPath(doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }), edit.path, edit.value) ?? null);
  const proven = (candidate: string) => {
    const after = dataOf(parse(candidate));
    return after !== undefined && after.length === expected.length && after.every((d, i) => d === expected[i]);
  };
  const where = edit.path.join('.');

  const node = doc.getIn(edit.path, true) as Node | undefined;
  if (node !== undefined) {
    if (!isScalar(node) || !node.range) return { ok: false, problem: `has ${where} as a list, mapping or alias, not a plain value` };
    const [start, end] = node.range;
    // Block scalars (| and >) end after their last line break; a quoted or plain replacement must keep it.
    const keepBreak = node.type === 'BLOCK_LITERAL' || node.type === 'BLOCK_FOLDED' ? (text.slice(start, end).match(/\r?\n$/)?.[0] ?? '') : '';
    for (const r of renderings(edit.value, node.type)) {
      const candidate = text.slice(0, start) + r + keepBreak + text.slice(end);
      if (proven(candidate)) return { ok: true, text: candidate, line: lineOf(text, start) };
    }
    return { ok: false, problem: `cannot hold the value at ${where} in YAML without changing something else` };
  }

  const parent = doc.getIn(edit.path.slice(0, -1), true) as Node | undefined;
  const key = edit.path[edit.path.length - 1];
  if (!isMap(parent) || typeof key !== 'string' || !parent.range) return { ok: false, problem: `has no mapping to add ${where} to` };
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const at = insertionPoint(text, parent, eol);
  if (!at) return { ok: false, problem: `has a mapping at ${edit.path.slice(0, -1).join('.') || 'the top'} that tidemark cannot add a key to` };
  for (const r of renderings(edit.value, undefined)) {
    const candidate = text.slice(0, at.offset) + at.before + `${key}: ${r}` + at.after + text.slice(at.offset);
    if (proven(candidate)) return { ok: true, text: candidate, line: lineOf(candidate, at.offset + at.before.length) };
  }
  return { ok: false, problem: `cannot hold the value at ${where} in YAML without changing something else` };
}

/** Where a new `key: value` goes: before a flow mapping's `}`, or on its own line after a block mapping's last entry. */
function insertionPoint(text: string, map: YAMLMap, eol: string): { offset: number; before: string; after: string } | undefined {
  const [start, end] = map.range!;
  if (map.flow) {
    const close = text.lastIndexOf('}', end - 1);
    if (close < start) return undefined;
    const inner = text.slice(start + 1, close);
    if (inner.trim() === '') return { offset: close, before: ' ', after: ' ' };
    // After the last entry, before any spaces ahead of the brace: `{ a: 1 }` → `{ a: 1, b: 2 }`.
    const trimmed = inner.replace(/\s+$/, '');
    return { offset: start + 1 + trimmed.length, before: ', ', after: '' };
  }
  const first = map.items[0];
  const last = map.items[map.items.length - 1];
  const firstKey = first?.key as Node | undefined;
  const lastEnd = ((last?.value as Node | null | undefined)?.range ?? (last?.key as Node | undefined)?.range)?.[1];
  if (!firstKey?.range || lastEnd === undefined) return undefined;
  const lineStart = text.lastIndexOf('\n', firstKey.range[0] - 1) + 1;
  const indent = text.slice(lineStart, firstKey.range[0]);
  if (!/^[ ]*$/.test(indent)) return undefined;
  // The end of the line the last entry ends on (a block value may already have consumed its line break).
  const from = lastEnd > 0 && text[lastEnd - 1] === '\n' ? lastEnd - 1 : lastEnd;
  const lineEnd = text.indexOf('\n', from);
  if (lineEnd === -1) return { offset: text.length, before: `${eol}${indent}`, after: '' };
  return { offset: lineEnd + 1, before: indent, after: eol };
}
