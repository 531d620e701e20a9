/**
 * The code each segment worker starts with. When the CLI runs compiled (bin/compiled.js), worker.ts was
 * compiled with it, and each worker loads that module from the cache (`loader: 'compiled'`). Otherwise (under
 * vitest, or when the CLI runs through tsx) worker.ts and the 19 modules it imports are compiled by
 * esbuild, in memory, into one CommonJS script with its packages inside (those a module loads on first
 * use are found from the source's folder), once per process; the workers evaluate that script. The way
 * tidemark's own modules load (tsx, registered in the thread) stays the fallback: if esbuild cannot run
 * here, each worker registers tsx and imports worker.ts as before.
 *
 * Why: a worker that registers tsx starts its own module-hooks thread and sends every import through it.
 * Measured for a 1,000,000-row `sync plan` on two cores (docs/BENCHMARKS.md, "Issue 15, continued: what a
 * command loads"):
 * two workers took 465–580 ms to import worker.ts that way, keeping four threads busy while the main thread
 * loaded the snapshot index; compiling the script takes 80–100 ms (one call to esbuild, already installed
 * as tsx's compiler) and the workers are then ready in 40–50 ms. Nothing is written to disk, so the script
 * can never be older than the source it came from.
 */
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Compiles `entry` into one CommonJS script; throws if it cannot. */
export type WorkerCompiler = (entry: string) => string;

export interface WorkerCode {
  /** What the worker evaluates; for `compiled`, the module it loads instead. */
  code: string;
  /**
   * `compiled`: the module bin/compiled.js compiled with the CLI (`code` is its path); `bundle`: compiled
   * here by esbuild; `tsx`: the worker registers tsx and imports worker.ts.
   */
  loader: 'compiled' | 'bundle' | 'tsx';
  /** Why the bundle was not used, when it was not. */
  fallbackReason?: string;
}

const esbuildCompiler: WorkerCompiler = (entry) => {
  const esbuild = createRequire(import.meta.url)('esbuild') as typeof import('esbuild');
  const result = esbuild.buildSync({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    write: false,
    logLevel: 'silent',
    // A package loaded on first use (createRequire(import.meta.url)) is found from the source's own folder,
    // wherever the worker runs.
    define: { 'import.meta.url': JSON.stringify(pathToFileURL(entry).href) },
  });
  const out = result.outputFiles?.[0];
  if (!out) throw new Error('esbuild produced no output');
  return out.text;
};

let cached: WorkerCode | undefined;

/** What bin/compiled.js leaves for the compiled CLI (the same symbol). */
const COMPILED = Symbol.for('tidemark.compiled');

/** The workers' code for this process (compiled on first use). */
export function workerCode(compile: WorkerCompiler = esbuildCompiler): WorkerCode {
  if (compile === esbuildCompiler) {
    if (cached) return cached;
    const compiled = (globalThis as { [COMPILED]?: { syncWorker?: string } })[COMPILED]?.syncWorker;
    if (compiled !== undefined) return (cached = { code: compiled, loader: 'compiled' });
  }
  const entry = fileURLToPath(new URL('./worker.ts', import.meta.url));
  let code: WorkerCode;
  try {
    code = { code: compile(entry), loader: 'bundle' };
  } catch (e) {
    code = { code: tsxBoot(), loader: 'tsx', fallbackReason: e instanceof Error ? e.message : String(e) };
  }
  if (compile === esbuildCompiler) cached = code;
  return code;
}

/** The fallback entry: registers tsx, then imports worker.ts (an ES module evaluated by the worker). */
export function tsxBoot(): string {
  const tsx = tsxApiUrl();
  const entry = new URL('./worker.ts', import.meta.url).href;
  return `const { register } = await import(${JSON.stringify(tsx)}); register(); await import(${JSON.stringify(entry)});`;
}

/** tsx's ESM API (its `import` entry; the `require` one cannot load its own ESM half from an eval'd worker). */
function tsxApiUrl(): string {
  try {
    return import.meta.resolve('tsx/esm/api');
  } catch {
    // Where import.meta.resolve is missing: the CommonJS entry's path, pointed at its ESM twin.
    return pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  }
}
