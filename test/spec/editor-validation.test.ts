/**
 * What an operator's editor shows: yaml-language-server (the engine of the VS Code YAML extension) validates
 * each spec document against the schema its own modeline names. The examples must come out clean, and a typo
 * deep in a multi-document file must be flagged on its line.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { describe, expect, it } from 'vitest';
import { getLanguageService, type Diagnostic } from 'yaml-language-server';
import { findSpecFiles } from '../../reconciler/spec/load.ts';

const repo = path.resolve(import.meta.dirname, '../..');
const specsDir = path.join(repo, 'specs');
// yaml-language-server caches parsed documents by URI and version (process-wide): like an editor, every
// text we hand it gets a new version, or it would validate a stale parse.
let version = 0;

/**
 * A language service set up as an editor would be, with no schema associations of its own: a document is
 * checked only if its modeline names a schema. Schemas are read from disk; anything but a file: URI is
 * refused, so the test never reaches the network.
 */
function editor() {
  const requested = new Set<string>();
  const service = getLanguageService({
    schemaRequestService: async (uri) => {
      if (!uri.startsWith('file:')) throw new Error(`refusing to fetch ${uri}: only local schemas`);
      requested.add(path.relative(repo, fileURLToPath(uri)));
      return readFile(fileURLToPath(uri), 'utf8');
    },
    workspaceContext: { resolveRelativePath: (relative, resource) => new URL(relative, resource).toString() },
  });
  service.configure({ validate: true, hover: true, completion: true, isKubernetes: false, schemas: [] });
  return {
    requested,
    /** The hover text at a 0-based line and character. */
    hover: async (file: string, text: string, line: number, character: number): Promise<string> => {
      const hover = await service.doHover(TextDocument.create(pathToFileURL(file).toString(), 'yaml', ++version, text), { line, character });
      const contents = hover?.contents;
      const markdown = typeof contents === 'object' && contents !== null && 'value' in contents ? contents.value : JSON.stringify(contents ?? null);
      return markdown.replace(/\\([\\`*_{}[\]()#+\-.!])/g, '$1'); // as rendered: markdown escapes removed
    },
    /** Diagnostics for `text` as if it were open in the editor at `file` (which need not exist). */
    validate: (file: string, text: string): Promise<Diagnostic[]> =>
      service.doValidation(TextDocument.create(pathToFileURL(file).toString(), 'yaml', ++version, text), false),
  };
}

/** A diagnostic's message as text (LSP allows markup there). */
const messageOf = (d: Diagnostic): string => {
  // Newer LSP types allow markup here; the 1.x language server's types say string.
  const m: unknown = d.message;
  return typeof m === 'string' ? m : (m as { value: string }).value;
};

/** 0-based line of each document's first line: the top of the file, and each line after a `---` marker. */
function documentStarts(text: string): number[] {
  const starts = [0];
  text.split('\n').forEach((line, i) => {
    if (/^---[ \t]*\r?$/.test(line)) starts.push(i + 1);
  });
  return starts;
}

/** `text` with `from` replaced by `to` on the first line of document `n` (1-based) containing it; returns the 0-based line. */
function plant(text: string, n: number, from: string, to: string): { text: string; line: number } {
  const lines = text.split('\n');
  const starts = documentStarts(text);
  const end = starts[n] ?? lines.length;
  for (let i = starts[n - 1]!; i < end; i++) {
    if (lines[i]!.includes(from)) {
      lines[i] = lines[i]!.replace(from, to);
      return { text: lines.join('\n'), line: i };
    }
  }
  throw new Error(`document ${n} has no ${from}`);
}

describe('yaml-language-server on the specs', () => {
  it('validates every example spec with no diagnostics, each document against its kind’s schema', async () => {
    const { validate, requested } = editor();
    const files = await findSpecFiles(specsDir);
    expect(files.length).toBeGreaterThan(5);
    for (const file of files) {
      const diagnostics = await validate(file, await readFile(file, 'utf8'));
      expect(diagnostics, path.relative(repo, file)).toEqual([]);
    }
    // Clean because checked, not because no schema was found: every kind's schema was loaded via a modeline.
    expect([...requested].sort()).toEqual(
      ['fields', 'segment', 'source', 'survey-target', 'workspace'].map((s) => `specs/schema/${s}.json`),
    );
  });

  const segmentsFile = path.join(specsDir, 'segments.yaml');
  // The copy is validated in memory under a name next to the original, so its `./schema/...` modelines resolve.
  const copyAt = path.join(specsDir, 'segments-with-typo.yaml');

  it('the segments example has at least five documents, each with its own modeline', async () => {
    const text = await readFile(segmentsFile, 'utf8');
    const lines = text.split('\n');
    const starts = documentStarts(text);
    expect(starts.length).toBeGreaterThanOrEqual(5);
    for (const s of starts) expect(lines[s]).toBe('# yaml-language-server: $schema=./schema/segment.json');
  });

  it.each([
    ['a misspelt key', 'conditions:', 'conditons:', /^Property conditons is not allowed/],
    ['an unknown operator', 'op: eq,', 'op: equals,', /^Value is not accepted\. Valid values: "eq"/],
  ])('flags %s in the fifth document of specs/segments.yaml on its line', async (_what, from, to, message) => {
    const original = await readFile(segmentsFile, 'utf8');
    const { text, line } = plant(original, 5, from, to);
    const starts = documentStarts(text);
    expect(line).toBeGreaterThan(starts[4]!);
    expect(line).toBeLessThan(starts[5] ?? Infinity);

    const diagnostics = await editor().validate(copyAt, text);
    expect(diagnostics.length, JSON.stringify(diagnostics)).toBeGreaterThan(0);
    // Only the typo is reported, exactly on its line.
    for (const d of diagnostics) {
      expect(d.range.start.line, messageOf(d)).toBe(line);
      expect(d.range.end.line, messageOf(d)).toBe(line);
    }
    expect(diagnostics.some((d) => message.test(messageOf(d))), JSON.stringify(diagnostics.map(messageOf))).toBe(true);
  });

  it('does not check a document whose modeline is missing: the association comes from each document’s own modeline', async () => {
    const original = await readFile(segmentsFile, 'utf8');
    const typo = plant(original, 5, 'conditions:', 'conditons:');
    const lines = typo.text.split('\n');
    const modeline = documentStarts(typo.text)[4]!;
    expect(lines[modeline]).toMatch(/^# yaml-language-server: \$schema=/);
    lines[modeline] = '# (modeline removed)';

    expect(await editor().validate(copyAt, typo.text)).not.toEqual([]);
    expect(await editor().validate(copyAt, lines.join('\n'))).toEqual([]);
  });

  it('explains a key on hover in a later document, with the description from the spec model', async () => {
    const text = await readFile(segmentsFile, 'utf8');
    const lines = text.split('\n');
    const starts = documentStarts(text);
    const line = lines.findIndex((l, i) => i > starts[4]! && l.includes('op: eq'));
    expect(line).toBeGreaterThan(starts[4]!);
    expect(line).toBeLessThan(starts[5]!);
    type Props = { properties: Record<string, { description: string } & Partial<Props>> };
    const schema = JSON.parse(await readFile(path.join(specsDir, 'schema/segment.json'), 'utf8')) as { definitions: Record<string, Props> };
    const condition = Object.values(schema.definitions)[0]!;
    const expected = condition.properties.attribute!.properties!.op!.description;
    expect(expected).toMatch(/^Comparison: /);
    expect(await editor().hover(segmentsFile, text, line, lines[line]!.indexOf('op: eq') + 1)).toContain(expected);
  });
});
