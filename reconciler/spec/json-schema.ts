/**
 * JSON Schemas for editors, generated from the zod schemas (the single source of truth). Every YAML
 * document of an example spec starts with `# yaml-language-server: $schema=./schema/<file>` so editors
 * complete and check it.
 */
import { z } from 'zod';
import { AnySpec, KIND_SCHEMAS, KINDS, SCHEMA_FILES, type Kind } from './schema/index.ts';

const BASE_ID = 'https://tidemark.dev/schema/';

// Draft-07, not 2020-12: it is the draft every yaml-language-server release (the VS Code YAML extension,
// and the editors built on it) understands; an operator's editor may well run a release that does not read
// 2020-12 keywords such as `$defs`, and would then leave conditions unchecked without a word.
function toSchema(schema: z.ZodType, file: string): Record<string, unknown> {
  const json = z.toJSONSchema(schema, { target: 'draft-7', io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { ...json, $id: `${BASE_ID}${file}` };
}

/** File name → pretty-printed JSON text, in a stable order. */
export function generateJsonSchemas(): Map<string, string> {
  const out = new Map<string, string>();
  for (const kind of KINDS) {
    const file = SCHEMA_FILES[kind];
    out.set(file, `${JSON.stringify(toSchema(KIND_SCHEMAS[kind], file), null, 2)}\n`);
  }
  const all = toSchema(AnySpec.meta({ title: 'tidemark spec', description: 'Any tidemark spec document, chosen by `kind`.' }), SCHEMA_FILES.all);
  out.set(SCHEMA_FILES.all, `${JSON.stringify(all, null, 2)}\n`);
  return out;
}

/**
 * The modeline that opens a YAML document of `kind`, e.g. `# yaml-language-server: $schema=./schema/segment.json`.
 * yaml-language-server reads it per document, so every document after `---` needs its own. `schemaDir` is the
 * schema folder relative to the spec file (`./schema`, `../schema`); an unknown kind gets the combined
 * schema, which then reports the bad `kind` in the editor.
 */
export function modelineFor(kind: string, schemaDir: string): string {
  const file = Object.hasOwn(SCHEMA_FILES, kind) && kind !== 'all' ? SCHEMA_FILES[kind as Kind] : SCHEMA_FILES.all;
  let dir = schemaDir.replaceAll('\\', '/').replace(/\/+$/, '');
  if (dir === '' || dir === '.') dir = '.';
  else if (!dir.startsWith('.') && !dir.startsWith('/') && !/^[a-z][a-z0-9+.-]*:/i.test(dir)) dir = `./${dir}`;
  return `# yaml-language-server: $schema=${dir}/${file}`;
}
