/** Reads spec files from disk (the only I/O of the spec module) and validates them. */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Diagnostic } from '../core/diagnostics.ts';
import { sha256 } from '../core/digest.ts';
import { validateSpecs, type SpecFile, type ValidationResult } from './validate.ts';

/** Spec files under `dir` (recursively), skipping generated schemas, hidden folders and node_modules. */
export async function findSpecFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    const entries = await readdir(d, { withFileTypes: true });
    for (const e of entries) {
      if (e.name.startsWith('.') || e.name === 'node_modules') continue;
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (e.name === 'schema' && d === dir) continue;
        await walk(p);
      } else if (/\.ya?ml$/.test(e.name)) {
        out.push(p);
      }
    }
  };
  await walk(dir);
  return out.sort();
}

export interface LoadResult extends ValidationResult {
  dir: string;
  /** sha256 of each spec file's bytes, by the path shown to the user: lets a saved plan name what moved. */
  digests: Record<string, string>;
}

/**
 * Load and validate every spec under `specsPath` (a folder or a single file). Paths in diagnostics are
 * relative to `cwd` so editors and GitHub annotations can open them.
 */
export async function loadSpecs(specsPath: string, cwd: string = process.cwd()): Promise<LoadResult> {
  const abs = path.resolve(cwd, specsPath);
  let files: string[];
  try {
    const st = await stat(abs);
    files = st.isDirectory() ? await findSpecFiles(abs) : [abs];
  } catch {
    return emptyResult(specsPath, {
      severity: 'error',
      code: 'SPEC000',
      summary: `No specs found: "${specsPath}" does not exist.`,
      source: { file: specsPath, start: { line: 1, col: 1 }, end: { line: 1, col: 1 } },
    });
  }
  if (files.length === 0) {
    return emptyResult(specsPath, {
      severity: 'error',
      code: 'SPEC000',
      summary: `No .yaml or .yml spec files found in "${specsPath}".`,
      source: { file: specsPath, start: { line: 1, col: 1 }, end: { line: 1, col: 1 } },
    });
  }
  const specFiles: SpecFile[] = await Promise.all(
    files.map(async (f) => ({ path: path.relative(cwd, f).split(path.sep).join('/'), text: await readFile(f, 'utf8') })),
  );
  const digests = Object.fromEntries(specFiles.map((f) => [f.path, sha256(f.text)]).sort(([a], [b]) => (a! < b! ? -1 : 1)));
  return { ...validateSpecs(specFiles), dir: specsPath, digests };
}

function emptyResult(dir: string, d: Diagnostic): LoadResult {
  return {
    diagnostics: [d],
    suppressed: [],
    counts: { Workspace: 0, Fields: 0, Source: 0, Segment: 0, SurveyTarget: 0 },
    files: 0,
    dir,
    digests: {},
  };
}
