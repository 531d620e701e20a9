/**
 * JSON Schemas for editors, generated from the zod schemas (the single source of truth). Example specs
 * start with `# yaml-language-server: $schema=./schema/<file>` so editors complete and check them.
 */
import { z } from 'zod';
import { AnySpec, KIND_SCHEMAS, KINDS, SCHEMA_FILES } from './schema/index.ts';

const BASE_ID = 'https://tidemark.dev/schema/';

function toSchema(schema: z.ZodType, file: string): Record<string, unknown> {
  const json = z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
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
