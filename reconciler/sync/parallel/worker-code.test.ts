/**
 * What the workers evaluate. That both kinds of code read a file exactly as the sequential read does is
 * shown in test/sync/parallel.int.test.ts (the compiled code in the property test and from bin/tidemark.js
 * in a project folder; the tsx fallback on its own).
 */
import { describe, expect, it } from 'vitest';
import { tsxBoot, workerCode } from './worker-code.ts';

describe("the segment workers' code", () => {
  it('is worker.ts compiled into one script that needs nothing but Node built-ins, so it starts from any folder', () => {
    const code = workerCode();
    // esbuild is a dependency: failing to compile here would silently cost every parallel read its start.
    expect(code.fallbackReason).toBeUndefined();
    expect(code.loader).toBe('bundle');
    const required = [...code.code.matchAll(/\brequire\("([^"]+)"\)/g)].map((m) => m[1]!);
    expect(required).toContain('node:worker_threads');
    expect(required.filter((r) => !r.startsWith('node:'))).toEqual([]);
    expect(code.code).not.toMatch(/\bimport\.meta\b/);
  });

  it('falls back to registering tsx in each worker when it cannot be compiled, saying why', () => {
    const code = workerCode(() => {
      throw new Error('no esbuild for this platform');
    });
    expect(code).toEqual({ code: tsxBoot(), loader: 'tsx', fallbackReason: 'no esbuild for this platform' });
  });
});
