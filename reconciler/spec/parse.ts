/**
 * YAML text → documents that remember where every node came from, so any later finding (schema, reference,
 * policy rule) can point at the exact file:line:col. Pure: takes text, does no I/O.
 */
import { isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, visit, type Document, type Node } from 'yaml';
import type { Diagnostic, Path, SourceRange } from '../core/diagnostics.ts';

export interface ParsedDocument {
  file: string;
  /** 0-based index of the document within its file. */
  index: number;
  doc: Document.Parsed;
  lineCounter: LineCounter;
  /** Plain JS value of the document (null for an empty document). */
  data: unknown;
}

export interface ParseResult {
  documents: ParsedDocument[];
  diagnostics: Diagnostic[];
}

// Generous, but stops a pathological alias bomb from eating the machine.
const MAX_ALIAS_COUNT = 1000;

export function parseYamlFile(file: string, text: string): ParseResult {
  const lineCounter = new LineCounter();
  const diagnostics: Diagnostic[] = [];
  const documents: ParsedDocument[] = [];
  // logLevel 'error': the yaml package would otherwise print warnings to stderr; we report them as diagnostics.
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true, logLevel: 'error' });
  // parseAllDocuments returns an EmptyStream (array-like with .empty) for input with no documents.
  const list = Array.isArray(docs) ? docs : [];
  list.forEach((doc, index) => {
    const errs = [...doc.errors, ...doc.warnings.filter(() => false)];
    if (errs.length > 0) {
      for (const e of errs) {
        diagnostics.push({
          severity: 'error',
          code: 'SPEC001',
          summary: `YAML syntax: ${friendlyYamlMessage(e.message)}`,
          source: rangeFromOffsets(file, lineCounter, e.pos[0], e.pos[1]),
        });
      }
      return;
    }
    // A mapping or list used as a key has no meaning in a spec (and JS objects cannot hold it).
    let complexKey: Node | undefined;
    visit(doc, {
      Pair(_, pair) {
        if (pair.key !== null && !isScalar(pair.key) && !complexKey) complexKey = pair.key as Node;
      },
    });
    if (complexKey) {
      const r = complexKey.range ?? [0, 0];
      diagnostics.push({
        severity: 'error',
        code: 'SPEC001',
        summary: 'YAML: keys must be plain names, not a mapping or a list.',
        source: rangeFromOffsets(file, lineCounter, r[0], r[1]),
      });
      return;
    }
    let data: unknown;
    try {
      data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      diagnostics.push({
        severity: 'error',
        code: 'SPEC001',
        summary: `YAML: ${err instanceof Error ? err.message : String(err)}`,
        source: rangeFromOffsets(file, lineCounter, 0, 0),
      });
      return;
    }
    documents.push({ file, index, doc, lineCounter, data });
  });
  return { documents, diagnostics };
}

function friendlyYamlMessage(message: string): string {
  // The yaml package appends a code frame and position; we print our own location.
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}

export function rangeFromOffsets(file: string, lc: LineCounter, start: number, end: number): SourceRange {
  const s = lc.linePos(start);
  const e = lc.linePos(Math.max(start, end));
  return { file, start: { line: s.line, col: s.col }, end: { line: e.line, col: e.col } };
}

/**
 * Where a path points in a document. `key: true` points at the key of the last segment (used for unknown
 * keys). A path that does not exist (a missing required key) resolves to the deepest node that does, so
 * the editor jumps to the mapping that lacks it.
 */
export function locate(pd: ParsedDocument, path: Path, opts: { key?: boolean } = {}): SourceRange {
  let node: Node | null | undefined = pd.doc.contents as Node | null;
  let keyNode: Node | undefined;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      keyNode = pair.key as Node;
      node = pair.value as Node | null;
      if (!node) {
        node = keyNode;
        break;
      }
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as Node | undefined;
      if (!item) break;
      keyNode = undefined;
      node = item;
    } else {
      break;
    }
  }
  const target = opts.key && keyNode ? keyNode : node;
  const range = target?.range ?? pd.doc.range;
  return rangeFromOffsets(pd.file, pd.lineCounter, range[0], range[1]);
}
