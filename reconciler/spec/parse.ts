/**
 * YAML text → documents that remember where every node came from, so any later finding (schema, reference,
 * policy rule) can point at the exact file:line:col. Pure: takes text, does no I/O.
 */
import {
  Composer,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  Parser,
  visit,
  type Document,
  type Node,
  type Pair,
  type YAMLMap,
} from 'yaml';
import type { Diagnostic, Path, SourceRange } from '../core/diagnostics.ts';

/** A `#` comment and where it starts in the (normalised) text. */
export interface Comment {
  offset: number;
  text: string;
  /** A whole line of a document that could not be parsed, kept so a secret in it is still found. */
  line?: true;
}

export interface ParsedDocument {
  file: string;
  /** 0-based index of the document within its file. */
  index: number;
  doc: Document.Parsed;
  lineCounter: LineCounter;
  /** Plain JS value of the document (null for an empty document, and for a `broken` one). */
  data: unknown;
  /** Comments in this document (those before the first document belong to it), for the secrets scan. */
  comments: Comment[];
  /** The document has YAML errors: `data` is null and `comments` holds its raw lines. */
  broken?: true;
}

export interface ParseResult {
  documents: ParsedDocument[];
  diagnostics: Diagnostic[];
}

// Generous, but stops a pathological alias bomb from eating the machine.
const MAX_ALIAS_COUNT = 1000;

/**
 * Every line break becomes LF. A file saved with old-Mac CR-only line endings is otherwise one long line,
 * and when it starts with a comment the whole file is that comment: it validates as empty, and the next
 * plan deletes everything it declared. CRLF and lone CR both end one line, so line numbers stay what an
 * editor shows.
 */
export function normalizeLineEndings(text: string): string {
  return text.includes('\r') ? text.replace(/\r\n?/g, '\n') : text;
}

export function parseYamlFile(file: string, rawText: string): ParseResult {
  const text = normalizeLineEndings(rawText);
  const lineCounter = new LineCounter();
  const diagnostics: Diagnostic[] = [];
  const documents: ParsedDocument[] = [];
  const comments: Comment[] = [];
  // uniqueKeys is checked below with a Set per mapping: the yaml package's own check compares each key
  // with every earlier one, which takes minutes on a mapping with 50,000 keys. logLevel 'error' keeps the
  // package's warnings (an unknown tag or directive) off stderr: they are not reported, only errors are.
  const composer = new Composer({ prettyErrors: false, uniqueKeys: false, logLevel: 'error' });
  const parser = new Parser(lineCounter.addNewLine);
  const hasComments = text.includes('#');
  const tokens = function* () {
    for (const token of parser.parse(text)) {
      if (hasComments) collectComments(token, comments);
      yield token;
    }
  };
  // forceDoc: a file of nothing but comments still yields one (empty) document, so its comments are scanned.
  const list = Array.from(composer.compose(tokens(), true, text.length));
  // Comments come in text order, documents too: deal them out in one pass (a file of 20,000 documents).
  const commentsByDoc = list.map((): Comment[] => []);
  let d = 0;
  for (const c of comments) {
    while (d + 1 < list.length && c.offset >= list[d + 1]!.range[0]) d++;
    commentsByDoc[d]!.push(c);
  }
  const commentsOf = (index: number) => commentsByDoc[index]!;
  const range = (r: readonly number[] | null | undefined) => rangeFromOffsets(file, lineCounter, r?.[0] ?? 0, r?.[1] ?? 0);

  list.forEach((doc, index) => {
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        diagnostics.push({ severity: 'error', code: 'SPEC001', summary: `YAML syntax: ${friendlyYamlMessage(e.message)}`, source: range(e.pos) });
      }
      // Kept (without data) so the secrets scan still reads it: a leaked secret is leaked whatever the syntax.
      const end = index + 1 < list.length ? list[index + 1]!.range[0] : text.length;
      documents.push({ file, index, doc, lineCounter, data: null, comments: rawLines(text, doc.range[0], end), broken: true });
      return;
    }
    const problems: Diagnostic[] = [];
    visit(doc, {
      Map(_, map) {
        const seen = new Set<string>();
        for (const pair of map.items) {
          // A mapping or list used as a key has no meaning in a spec (and JS objects cannot hold it).
          if (pair.key !== null && !isScalar(pair.key)) {
            problems.push({ severity: 'error', code: 'SPEC001', summary: 'YAML: keys must be plain names, not a mapping or a list.', source: range((pair.key as Node).range) });
            return visit.BREAK;
          }
          const key = isScalar(pair.key) ? String(pair.key.value) : '';
          if (seen.has(key)) {
            problems.push({ severity: 'error', code: 'SPEC001', summary: 'YAML syntax: Map keys must be unique', source: range((pair.key as Node).range) });
          }
          seen.add(key);
          // JS gives this key a meaning of its own: a plain object silently drops it (and the field with it).
          if (key === '__proto__') {
            problems.push({
              severity: 'error',
              code: 'SPEC003',
              summary: '"__proto__" cannot be used as a key or a name: use snake_case starting with a letter.',
              source: range((pair.key as Node).range),
            });
          }
        }
        return undefined;
      },
      Alias(_, alias, path) {
        // An alias inside the node it refers to (`a: &x [*x]`) makes an endless structure.
        const target = alias.resolve(doc);
        if (target && path.includes(target as never)) {
          problems.push({
            severity: 'error',
            code: 'SPEC001',
            summary: `YAML: the alias *${alias.source} refers to a node that contains it, which would repeat forever.`,
            source: range(alias.range),
          });
        }
      },
    });
    if (problems.length > 0) {
      diagnostics.push(...problems);
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
        source: rangeFromOffsets(file, lineCounter, doc.range[0], doc.range[0]),
      });
      return;
    }
    documents.push({ file, index, doc, lineCounter, data, comments: commentsOf(index) });
  });

  if (diagnostics.length === 0 && text.trim() !== '' && documents.every((d) => d.data === null || d.data === undefined)) {
    diagnostics.push({
      severity: 'warning',
      code: 'SPEC007',
      summary: 'This file declares nothing: it holds only comments or empty documents.',
      detail: 'If it should declare specs, check its line endings and indentation; otherwise delete it. Specs that disappear from the files are planned for deletion.',
      source: rangeFromOffsets(file, lineCounter, 0, 0),
    });
  }
  return { documents, diagnostics };
}

function rawLines(text: string, start: number, end: number): Comment[] {
  const out: Comment[] = [];
  let offset = start;
  for (const line of text.slice(start, end).split('\n')) {
    if (line.trim() !== '') out.push({ offset, text: line, line: true });
    offset += line.length + 1;
  }
  return out;
}

/** Comments anywhere in a CST token (they sit in `start`, `end`, `sep`, … arrays of many token kinds). */
function collectComments(token: unknown, out: Comment[]): void {
  if (Array.isArray(token)) {
    for (const t of token) collectComments(t, out);
    return;
  }
  if (!token || typeof token !== 'object') return;
  const t = token as { type?: string; offset?: number; source?: string };
  if (t.type === 'comment' && typeof t.offset === 'number' && typeof t.source === 'string') {
    out.push({ offset: t.offset, text: t.source });
    return;
  }
  for (const [k, v] of Object.entries(token)) if (k !== 'source' && v && typeof v === 'object') collectComments(v, out);
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
      const pair = pairsByKey(node).get(String(seg));
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

// Locating each of 50,000 unknown keys by scanning its mapping is quadratic: index each mapping once.
const pairIndex = new WeakMap<YAMLMap, Map<string, Pair>>();

function pairsByKey(map: YAMLMap): Map<string, Pair> {
  let index = pairIndex.get(map);
  if (!index) {
    index = new Map();
    for (const p of map.items) if (isPair(p) && isScalar(p.key) && !index.has(String(p.key.value))) index.set(String(p.key.value), p as Pair);
    pairIndex.set(map, index);
  }
  return index;
}
