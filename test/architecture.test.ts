/**
 * Import boundaries, checked on the source text (a lint rule would need a lint toolchain for three facts):
 * - only stacks/ imports cdktf (deprecated upstream: an edge, never the engine);
 * - pure modules (core, spec except its loader, plan) do no I/O and read no clock or randomness;
 * - the sandbox emulators and the API clients share no code.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const repo = path.resolve(import.meta.dirname, '..');

function tsFiles(dir: string): string[] {
  const abs = path.join(repo, dir);
  let out: string[] = [];
  for (const e of readdirSync(abs)) {
    const p = path.join(abs, e);
    if (statSync(p).isDirectory()) out = out.concat(tsFiles(path.join(dir, e)));
    else if (e.endsWith('.ts') && !e.endsWith('.test.ts') && !e.includes('.test-support.')) out.push(path.join(dir, e));
  }
  return out;
}

const imports = (file: string) => [...readFileSync(path.join(repo, file), 'utf8').matchAll(/from '([^']+)'/g)].map((m) => m[1]!);

describe('architecture', () => {
  it('only stacks/ imports cdktf', () => {
    const offenders = tsFiles('reconciler').filter((f) => imports(f).some((i) => /^(cdktf|constructs|@cdktf\/)/.test(i)));
    expect(offenders).toEqual([]);
  });

  it('pure modules do no I/O and take their clock from outside', () => {
    const pure = [...tsFiles('reconciler/core'), ...tsFiles('reconciler/spec'), ...tsFiles('reconciler/plan')].filter(
      (f) => !f.endsWith('spec/load.ts') && !f.endsWith('core/clock.ts'),
    );
    expect(pure.length).toBeGreaterThan(10);
    const offenders: string[] = [];
    for (const f of pure) {
      const text = readFileSync(path.join(repo, f), 'utf8');
      if (imports(f).some((i) => /^node:(fs|http|https|net|child_process|dgram|worker_threads)/.test(i))) offenders.push(`${f}: node I/O import`);
      if (/\bprocess\.env\b|\bDate\.now\(|\bMath\.random\(|\bnew Date\(\)|\bfetch\(/.test(text)) offenders.push(`${f}: clock, randomness, env or network`);
    }
    expect(offenders).toEqual([]);
  });

  it('the sandbox and the API clients share no code', () => {
    const sandbox = tsFiles('reconciler/sandbox').filter((f) => imports(f).some((i) => i.includes('/providers/')));
    const providers = tsFiles('reconciler/providers').filter((f) => imports(f).some((i) => i.includes('/sandbox/')));
    expect([...sandbox, ...providers]).toEqual([]);
  });
});
