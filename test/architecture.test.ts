/**
 * Import boundaries, checked on the source text (a lint rule would need a lint toolchain for these facts):
 * - the layer map: cli → composition → engines (apply, sync, audiences) → config kinds → plan, providers, state,
 *   sandbox → spec → core. A module imports only itself and the layers below it; modules of one layer never import each
 *   other (so the sandbox and the API clients share no code). Static and dynamic imports both count;
 * - only stacks/ imports cdktf (deprecated upstream: an edge, never the engine);
 * - pure modules (core, spec except its loader, plan, and the sync files whose header says "Pure") do no
 *   I/O and read no environment, clock or randomness.
 */
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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

/** Static (`from '…'`, `import '…'`) and dynamic (`import('…')`) specifiers. */
const imports = (file: string) =>
  [...readFileSync(path.join(repo, file), 'utf8').matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm)].map((m) => m[1]!);

/** Lowest first. Within a layer, no module imports another. */
const LAYERS: readonly (readonly string[])[] = [['core'], ['spec'], ['plan', 'providers', 'state', 'sandbox', 'world'], ['kinds'], ['apply', 'sync', 'audiences', 'surveys', 'responses', 'github'], ['composition', 'starter'], ['cli']];
const levelOf = new Map(LAYERS.flatMap((mods, level) => mods.map((m) => [m, level] as const)));

/** `reconciler/<module>/…` of a file, or of what a relative specifier from `file` points at. */
function moduleOf(fileOrTarget: string): string | undefined {
  const rel = path.relative(path.join(repo, 'reconciler'), path.resolve(repo, fileOrTarget));
  if (rel.startsWith('..')) return undefined;
  return rel.split(path.sep)[0];
}

function layerViolations(files: readonly string[]): string[] {
  const out: string[] = [];
  for (const f of files) {
    const from = moduleOf(f)!;
    for (const spec of imports(f)) {
      if (!spec.startsWith('.')) continue;
      const to = moduleOf(path.join(path.dirname(f), spec));
      if (to === undefined || to === from) continue;
      const a = levelOf.get(from);
      const b = levelOf.get(to);
      if (a === undefined || b === undefined) out.push(`${f} → ${to}: module not in the layer map`);
      else if (b >= a) out.push(`${f} → ${spec} (${from} may not import ${to})`);
    }
  }
  return out;
}

describe('architecture', () => {
  it('every module of reconciler/ has its place in the layer map', () => {
    const modules = readdirSync(path.join(repo, 'reconciler')).filter((e) => statSync(path.join(repo, 'reconciler', e)).isDirectory());
    expect(modules.filter((m) => !levelOf.has(m))).toEqual([]);
  });

  it('imports only point down the layer map, never across one layer', () => {
    expect(layerViolations(tsFiles('reconciler'))).toEqual([]);
  });

  it('the layer check catches upward, sideways and dynamic imports', () => {
    const dir = path.join(repo, 'reconciler', 'plan');
    const probe = path.join('reconciler', 'plan', '__layer-probe.ts');
    writeFileSync(
      path.join(dir, '__layer-probe.ts'),
      "import type { X } from '../providers/errors.ts';\nexport const load = () => import('../composition/use-cases.ts');\nimport '../core/clock.ts';\n",
    );
    try {
      expect(layerViolations([probe])).toEqual([
        `${probe} → ../providers/errors.ts (plan may not import providers)`,
        `${probe} → ../composition/use-cases.ts (plan may not import composition)`,
      ]);
    } finally {
      rmSync(path.join(dir, '__layer-probe.ts'));
    }
  });

  it('only stacks/ imports cdktf', () => {
    const offenders = tsFiles('reconciler').filter((f) => imports(f).some((i) => /^(cdktf|constructs|@cdktf\/)/.test(i)));
    expect(offenders).toEqual([]);
  });

  it('pure modules do no I/O and take their clock from outside', () => {
    // The file's header comment (its first block) says so.
    const saysPure = (f: string) => /\bPure\b/.test(readFileSync(path.join(repo, f), 'utf8').match(/^\/\*[\s\S]*?\*\//)?.[0] ?? '');
    const pureSync = tsFiles('reconciler/sync').filter(saysPure);
    expect(pureSync.length).toBeGreaterThanOrEqual(4);
    // The seeded world's generator and its exports: the clock is an argument, randomness a seed.
    const pureWorld = tsFiles('reconciler/world').filter(saysPure);
    expect(pureWorld.length).toBeGreaterThanOrEqual(2);
    const pure = [...tsFiles('reconciler/core'), ...tsFiles('reconciler/spec'), ...tsFiles('reconciler/plan'), ...pureSync, ...pureWorld].filter(
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

  it('the segment compiler works from the spec alone: its files import only core and spec, and are pure', () => {
    // The compiler must give the same SQL for the same spec and instant, whatever the store or sandbox holds.
    // (The engine beside it, evaluate.ts and publish.ts, runs that SQL in the store and talks to Customer.io.)
    const files = tsFiles('reconciler/audiences').filter((f) => /\/(compile|mirror-layout)[^/]*\.ts$/.test(f));
    expect(files.length).toBeGreaterThanOrEqual(2);
    const offenders: string[] = [];
    for (const f of files) {
      for (const i of imports(f)) {
        const to = i.startsWith('.') ? moduleOf(path.join(path.dirname(f), i)) : i;
        if (!['core', 'spec', 'audiences'].includes(to ?? '')) offenders.push(`${f} → ${i}`);
      }
      if (!/\bPure\b/.test(readFileSync(path.join(repo, f), 'utf8').match(/^\/\*[\s\S]*?\*\//)?.[0] ?? '')) offenders.push(`${f}: header does not say Pure`);
      if (/\bprocess\.env\b|\bDate\.now\(|\bMath\.random\(|\bnew Date\(\)|\bfetch\(/.test(readFileSync(path.join(repo, f), 'utf8'))) offenders.push(`${f}: clock, randomness, env or network`);
    }
    expect(offenders).toEqual([]);
  });

  it('the sandbox and the API clients share no code', () => {
    const sandbox = tsFiles('reconciler/sandbox').filter((f) => imports(f).some((i) => i.includes('/providers/')));
    const providers = tsFiles('reconciler/providers').filter((f) => imports(f).some((i) => i.includes('/sandbox/')));
    expect([...sandbox, ...providers]).toEqual([]);
  });
});
