/**
 * A corpus of broken specs with their exact diagnostics (code, severity, file:line:col, message).
 * Each folder under test/fixtures/specs/ is validated together with _base/ (a clean minimal workspace).
 * To accept new output after an intended change: UPDATE_GOLDEN=1 npx vitest run test/spec/golden
 */
import { readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatLocation } from '../../reconciler/core/diagnostics.ts';
import { validateSpecs, type SpecFile } from '../../reconciler/spec/validate.ts';

const root = path.resolve(import.meta.dirname, '../fixtures/specs');

function filesOf(dir: string): SpecFile[] {
  return readdirSync(path.join(root, dir))
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => ({ path: `${dir}/${f}`, text: readFileSync(path.join(root, dir, f), 'utf8') }));
}

function render(files: SpecFile[]): string {
  const result = validateSpecs(files);
  return result.diagnostics.map((d) => `${formatLocation(d.source)} ${d.severity} ${d.code} ${d.summary}`).join('\n') + '\n';
}

const cases = readdirSync(root, { withFileTypes: true })
  .filter((e) => e.isDirectory() && e.name !== '_base')
  .map((e) => e.name)
  .sort();

describe('golden diagnostics', () => {
  it('the base workspace is clean', () => {
    expect(validateSpecs(filesOf('_base')).diagnostics).toEqual([]);
  });

  it('has a corpus', () => {
    expect(cases.length).toBeGreaterThanOrEqual(10);
  });

  it.each(cases)('%s', (name) => {
    const actual = render([...filesOf('_base'), ...filesOf(name)]);
    const expectedPath = path.join(root, name, 'expected.txt');
    if (process.env.UPDATE_GOLDEN === '1' || !existsSync(expectedPath)) writeFileSync(expectedPath, actual);
    expect(actual).toBe(readFileSync(expectedPath, 'utf8'));
    // Every broken case is reported in its own files (the base may be named too, as the other side of a conflict).
    expect(actual.split('\n').some((line) => line.startsWith(`${name}/`))).toBe(true);
  });
});
