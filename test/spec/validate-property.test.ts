/**
 * Validating arbitrary YAML never throws, and always yields either a model (no errors) or errors that
 * point at a real place in a real file.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { hasErrors } from '../../reconciler/core/diagnostics.ts';
import { validateSpecs, type SpecFile } from '../../reconciler/spec/validate.ts';

const specsDir = path.resolve(import.meta.dirname, '../../specs');
const examples: SpecFile[] = [
  ...readdirSync(specsDir).filter((f) => f.endsWith('.yaml')).map((f) => `specs/${f}`),
  ...readdirSync(path.join(specsDir, 'sources')).map((f) => `specs/sources/${f}`),
].map((p) => ({ path: p, text: readFileSync(path.resolve(specsDir, '..', p), 'utf8') }));

function check(files: SpecFile[]): void {
  const result = validateSpecs(files);
  if (result.model) {
    expect(hasErrors(result.diagnostics)).toBe(false);
  } else {
    expect(hasErrors(result.diagnostics)).toBe(true);
  }
  const lineCounts = new Map(files.map((f) => [f.path, f.text.split('\n').length]));
  for (const d of result.diagnostics) {
    expect(d.source, `${d.code} ${d.summary}`).toBeDefined();
    expect(lineCounts.has(d.source!.file)).toBe(true);
    expect(d.source!.start.line).toBeGreaterThanOrEqual(1);
    expect(d.source!.start.line).toBeLessThanOrEqual(lineCounts.get(d.source!.file)! + 1);
    expect(d.source!.start.col).toBeGreaterThanOrEqual(1);
    expect(d.code).toMatch(/^[A-Z]{2,5}\d{3}$/);
    expect(d.summary.length).toBeGreaterThan(0);
  }
}

const yamlTokens = fc.constantFrom(
  'kind: ', 'Segment', 'Source', 'SurveyTarget', 'Workspace', 'Fields', 'name: ', 'x', '\n', '  ', '- ', ': ', '{', '}', '[', ']',
  ',', '---\n', '&a ', '*a', '<<: ', '"', "'", '#', '!!str ', '? ', '|', '>', '__proto__', 'conditions:', 'all:', 'null', '~', '1e400',
);

describe('validate on arbitrary input', () => {
  it('never throws on any JSON-like document', () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue(), { maxLength: 4 }), (docs) => {
        check([{ path: 'specs/a.yaml', text: docs.map((d) => stringify(d)).join('---\n') }]);
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on spec-shaped objects with random values', () => {
    const spec = fc.record({
      kind: fc.constantFrom('Workspace', 'Fields', 'Source', 'Segment', 'SurveyTarget', 'Nope'),
      name: fc.oneof(fc.string(), fc.constantFrom('a', 'vip', '__proto__', 'constructor')),
      conditions: fc.anything(),
      fields: fc.dictionary(fc.string(), fc.anything()),
      environments: fc.anything(),
      identity: fc.anything(),
      moment: fc.anything(),
    }, { requiredKeys: ['kind'] });
    fc.assert(
      fc.property(fc.array(spec, { maxLength: 5 }), (docs) => {
        check([{ path: 'specs/a.yaml', text: docs.map((d) => stringify(d)).join('---\n') }]);
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on YAML-ish token soup (anchors, aliases, merges, tags)', () => {
    fc.assert(
      fc.property(fc.array(yamlTokens, { maxLength: 60 }), (tokens) => {
        check([{ path: 'specs/soup.yaml', text: tokens.join('') }]);
      }),
      { numRuns: 500 },
    );
  });

  it('never throws when the example specs are randomly damaged', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: examples.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 5 }), fc.string({ maxLength: 4 })), { minLength: 1, maxLength: 6 }),
        (which, edits) => {
          const files = examples.map((f) => ({ ...f }));
          const target = files[which]!;
          for (const [pos, del, ins] of edits) {
            const at = pos % (target.text.length + 1);
            target.text = target.text.slice(0, at) + ins + target.text.slice(at + del);
          }
          check(files);
        },
      ),
      { numRuns: 200 },
    );
  });
});
