/**
 * The generated editor schemas are draft-07 (what yaml-language-server supports), explain every property
 * on hover, and every document of every example spec names its kind's schema in a modeline.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { generateJsonSchemas, modelineFor } from '../../reconciler/spec/json-schema.ts';
import { KINDS, SCHEMA_FILES } from '../../reconciler/spec/schema/index.ts';
import { findSpecFiles } from '../../reconciler/spec/load.ts';

const repo = path.resolve(import.meta.dirname, '../..');
type Json = Record<string, unknown>;

const schemas = [...generateJsonSchemas()].map(([file, text]) => [file, JSON.parse(text) as Json] as const);

/** Every place a subschema can sit, as [path, schema]. */
function* subschemas(schema: unknown, at: string): Generator<[string, Json]> {
  if (typeof schema !== 'object' || schema === null) return;
  const s = schema as Json;
  yield [at, s];
  for (const [key, value] of Object.entries((s.properties ?? {}) as Json)) yield* subschemas(value, `${at}.${key}`);
  for (const [key, value] of Object.entries((s.definitions ?? {}) as Json)) yield* subschemas(value, `${at}#${key}`);
  for (const key of ['items', 'additionalProperties', 'propertyNames', 'not', 'if', 'then', 'else', 'contains']) {
    if (Array.isArray(s[key])) for (const [i, item] of (s[key] as unknown[]).entries()) yield* subschemas(item, `${at}.${key}[${i}]`);
    else yield* subschemas(s[key], `${at}.${key === 'items' ? '[]' : `<${key}>`}`);
  }
  for (const key of ['anyOf', 'oneOf', 'allOf']) {
    for (const [i, branch] of ((s[key] ?? []) as unknown[]).entries()) yield* subschemas(branch, `${at}<${key}[${i}]>`);
  }
}

/** Properties (anywhere: nested objects, array items, map values, union branches, definitions) without a description. */
function undescribed(schema: Json): string[] {
  const missing: string[] = [];
  for (const [at, s] of subschemas(schema, '')) {
    for (const [key, value] of Object.entries((s.properties ?? {}) as Json)) {
      const description = (value as Json).description;
      if (typeof description !== 'string' || description.trim().length < 10) missing.push(`${at}.${key}`.replace(/^\./, ''));
    }
  }
  return missing;
}

describe('generated JSON Schemas', () => {
  it.each(schemas)('%s is draft-07, with no keyword draft-07 lacks', (_file, schema) => {
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    const later = ['$defs', 'prefixItems', 'dependentRequired', 'dependentSchemas', 'unevaluatedProperties', 'unevaluatedItems', '$anchor', '$dynamicRef', '$dynamicAnchor', 'minContains', 'maxContains'];
    for (const [at, s] of subschemas(schema, '')) {
      for (const keyword of later) expect(s, `${keyword} at ${at || '(root)'}`).not.toHaveProperty(keyword);
      // draft-07 ignores every keyword beside a $ref, so a description or bound there would be lost.
      if ('$ref' in s) expect(Object.keys(s), `$ref siblings at ${at}`).toEqual(['$ref']);
      if (typeof s.$ref === 'string') expect(s.$ref, at).toMatch(/^#\/definitions\//);
      if ('exclusiveMinimum' in s) expect(typeof s.exclusiveMinimum, `draft-04 style boolean at ${at}`).toBe('number');
    }
  });

  it.each(schemas)('%s describes every property, so hovering explains it', (_file, schema) => {
    expect(undescribed(schema)).toEqual([]);
  });

  it('the walker finds an undescribed property in nested objects, array items, map values and union branches', () => {
    const described = { type: 'string', description: 'A described property.' };
    const planted: Json = {
      type: 'object',
      properties: {
        nested: { description: 'Nested object.', type: 'object', properties: { a: { type: 'string' } } },
        list: { description: 'A list of objects.', type: 'array', items: { type: 'object', properties: { b: { type: 'number' }, ok: described } } },
        map: { description: 'A map of objects.', type: 'object', additionalProperties: { type: 'object', properties: { c: {} } } },
        union: { description: 'A union of shapes.', anyOf: [{ type: 'object', properties: { d: { type: 'boolean' } } }, { type: 'string' }] },
        ref: { description: 'A reference.', allOf: [{ $ref: '#/definitions/x' }] },
        short: { type: 'string', description: 'x' },
      },
      definitions: { x: { type: 'object', properties: { e: { type: 'string' } } } },
    };
    expect(undescribed(planted).sort()).toEqual(['#x.e', 'list.[].b', 'map.<additionalProperties>.c', 'nested.a', 'short', 'union<anyOf[0]>.d'].sort());
  });
});

describe('modelineFor', () => {
  it('points each kind at its own schema, relative to the spec file', () => {
    expect(modelineFor('Segment', './schema')).toBe('# yaml-language-server: $schema=./schema/segment.json');
    expect(modelineFor('SurveyTarget', '../schema/')).toBe('# yaml-language-server: $schema=../schema/survey-target.json');
    expect(modelineFor('Source', '..\\schema')).toBe('# yaml-language-server: $schema=../schema/source.json');
    expect(modelineFor('Fields', 'specs/schema')).toBe('# yaml-language-server: $schema=./specs/schema/fields.json');
    expect(modelineFor('Workspace', '.')).toBe('# yaml-language-server: $schema=./workspace.json');
    for (const kind of KINDS) expect(modelineFor(kind, './schema')).toBe(`# yaml-language-server: $schema=./schema/${SCHEMA_FILES[kind]}`);
  });

  it('gives an unknown kind the combined schema, which reports the bad kind', () => {
    expect(modelineFor('Segmnet', './schema')).toBe('# yaml-language-server: $schema=./schema/tidemark.json');
    expect(modelineFor('all', './schema')).toBe('# yaml-language-server: $schema=./schema/tidemark.json');
    expect(modelineFor('toString', './schema')).toBe('# yaml-language-server: $schema=./schema/tidemark.json');
  });
});

describe('example specs', () => {
  it('open every document, including those after ---, with the modeline of its kind', async () => {
    const files = await findSpecFiles(path.join(repo, 'specs'));
    expect(files.length).toBeGreaterThan(5);
    let documents = 0;
    for (const file of files) {
      const text = await readFile(file, 'utf8');
      const schemaDir = path.relative(path.dirname(file), path.join(repo, 'specs/schema'));
      // A document starts at the top of the file or on the line after a `---` marker.
      const chunks = text.split(/^---[ \t]*\r?\n/m);
      const docs = parseAllDocuments(text);
      expect(docs.length, path.relative(repo, file)).toBe(chunks.length);
      for (const [i, doc] of docs.entries()) {
        const where = `${path.relative(repo, file)}, document ${i + 1}`;
        const kind = (doc.toJS() as { kind?: unknown } | null)?.kind;
        expect(typeof kind, where).toBe('string');
        expect(chunks[i]!.split(/\r?\n/)[0], where).toBe(modelineFor(kind as string, schemaDir));
        documents++;
      }
    }
    expect(documents).toBeGreaterThanOrEqual(19);
  });
});
