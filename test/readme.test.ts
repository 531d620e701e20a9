import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { rulesMarkdown } from '../reconciler/cli/commands/rules.ts';

const readme = readFileSync(path.resolve(import.meta.dirname, '../README.md'), 'utf8');

describe('README', () => {
  it('starts with exactly the two commands for a fresh machine', () => {
    const block = /```sh\n([\s\S]*?)```/.exec(readme)![1]!;
    expect(block.trim().split('\n')).toEqual(['npm ci && npm start', 'npm test']);
    expect(readme.indexOf('```sh')).toBeLessThan(readme.indexOf('## '));
  });

  it('embeds the current rule catalogue', () => {
    const embedded = /<!-- rules:start -->\n([\s\S]*?)<!-- rules:end -->/.exec(readme)![1];
    expect(embedded).toBe(rulesMarkdown());
  });
});
