import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { TIDEMARK_VERSION } from './version.ts';

it('is the version package.json says', () => {
  const pkg = JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string };
  expect(TIDEMARK_VERSION).toBe(pkg.version);
});
