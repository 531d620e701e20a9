/** Reads spec files from disk (the only I/O of the spec module) and validates them. */
import { constants } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Diagnostic } from '../core/diagnostics.ts';
import { sha256 } from '../core/digest.ts';
import { validateSpecs, type SpecFile, type ValidationResult } from './validate.ts';

const SPEC_NAME = /\.ya?ml$/;

/** A spec file, or why a path that looks like one cannot be read. */
export type FoundSpec = { path: string } | { path: string; problem: string };

/**
 * Spec files under `dir` (recursively), skipping generated schemas, hidden folders and node_modules.
 * Nothing is opened here: a FIFO, socket or device named `*.yaml` is reported, never read (reading a FIFO
 * waits forever for a writer). Symbolic links are followed to files only: a dangling link, a loop or a
 * link to a folder is reported, because the specs behind it would otherwise silently be missing, and the
 * next plan would delete everything they declare.
 */
export async function findSpecs(dir: string): Promise<FoundSpec[]> {
  const out: FoundSpec[] = [];
  const walk = async (d: string) => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch (err) {
      out.push({ path: d, problem: `is a folder that cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})` });
      return;
    }
    for (const e of entries) {
      if (e.name.startsWith('.') || e.name === 'node_modules') continue;
      const p = path.join(d, e.name);
      const isSpec = SPEC_NAME.test(e.name);
      if (e.isDirectory()) {
        if (e.name === 'schema' && d === dir) continue;
        await walk(p);
      } else if (e.isSymbolicLink()) {
        const target = await stat(p).catch((err: NodeJS.ErrnoException) => err);
        if (target instanceof Error) {
          if (isSpec) out.push({ path: p, problem: linkProblem(target) });
        } else if (target.isDirectory()) {
          out.push({ path: p, problem: 'is a symbolic link to a folder, which tidemark does not follow: point --specs at that folder, or move the files here' });
        } else if (isSpec) {
          out.push(target.isFile() ? { path: p } : { path: p, problem: `is a symbolic link to ${notRegular(target)}, not a file` });
        }
      } else if (isSpec) {
        out.push(e.isFile() ? { path: p } : { path: p, problem: `is ${notRegular(e)}, not a file` });
      }
    }
  };
  await walk(dir);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Spec files under `dir` that can be read (see findSpecs for the ones that cannot). */
export async function findSpecFiles(dir: string): Promise<string[]> {
  return (await findSpecs(dir)).filter((f) => !('problem' in f)).map((f) => f.path);
}

interface Kinded {
  isFIFO(): boolean;
  isSocket(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
  isDirectory(): boolean;
}

function notRegular(e: Kinded): string {
  if (e.isFIFO()) return 'a named pipe (FIFO)';
  if (e.isSocket()) return 'a socket';
  if (e.isCharacterDevice() || e.isBlockDevice()) return 'a device';
  if (e.isDirectory()) return 'a folder';
  return 'a special file';
}

function linkProblem(err: NodeJS.ErrnoException): string {
  if (err.code === 'ENOENT') return 'is a symbolic link to a file that does not exist';
  if (err.code === 'ELOOP') return 'is a symbolic link that loops back on itself';
  return `is a symbolic link that cannot be followed (${err.code ?? 'error'})`;
}

function readProblem(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'EACCES':
    case 'EPERM':
      return 'cannot be read: permission denied';
    case 'ENOENT':
      return 'disappeared while it was being read';
    case 'EISDIR':
      return 'is a folder, not a file';
    default:
      return `cannot be read (${err.code ?? 'error'})`;
  }
}

/**
 * Reads one spec file without ever blocking: opened non-blocking (a FIFO swapped in after the walk opens
 * at once instead of waiting for a writer) and checked to be a regular file before a byte is read.
 */
async function readSpec(file: string): Promise<{ text: string } | { problem: string }> {
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { problem: e.code === 'ELOOP' || e.code === 'ENOENT' ? linkProblem(e) : readProblem(e) };
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) return { problem: `is ${notRegular(st)}, not a file` };
    return { text: await handle.readFile('utf8') };
  } catch (err) {
    return { problem: readProblem(err as NodeJS.ErrnoException) };
  } finally {
    await handle.close().catch(() => undefined);
  }
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
  const shown = (f: string) => path.relative(cwd, f).split(path.sep).join('/') || '.';
  let found: FoundSpec[];
  try {
    const st = await stat(abs);
    if (st.isDirectory()) found = await findSpecs(abs);
    else found = [st.isFile() ? { path: abs } : { path: abs, problem: `is ${notRegular(st)}, not a file` }];
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const summary =
      e.code === 'ENOENT' || e.code === 'ENOTDIR'
        ? `No specs found: "${specsPath}" does not exist.`
        : e.code === 'ELOOP'
          ? `No specs found: "${specsPath}" is a symbolic link that loops back on itself.`
          : `No specs found: "${specsPath}" ${readProblem(e)}.`;
    return emptyResult(specsPath, { severity: 'error', code: 'SPEC000', summary, source: at(specsPath) });
  }
  if (found.length === 0) {
    return emptyResult(specsPath, {
      severity: 'error',
      code: 'SPEC000',
      summary: `No .yaml or .yml spec files found in "${specsPath}".`,
      source: at(specsPath),
    });
  }
  const unreadable: Diagnostic[] = [];
  const specFiles: SpecFile[] = [];
  const read = await Promise.all(found.map(async (f) => ({ f, r: 'problem' in f ? f : await readSpec(f.path) })));
  for (const { f, r } of read) {
    const file = shown(f.path);
    if ('problem' in r) {
      unreadable.push({
        severity: 'error',
        code: 'SPEC008',
        summary: `${file} ${r.problem}.`,
        detail: 'Every spec must be a readable file: a spec that cannot be read would look deleted to the next plan.',
        source: at(file),
      });
    } else {
      specFiles.push({ path: file, text: r.text });
    }
  }
  const digests = Object.fromEntries(specFiles.map((f) => [f.path, sha256(f.text)]).sort(([a], [b]) => (a! < b! ? -1 : 1)));
  return { ...validateSpecs(specFiles, { diagnostics: unreadable }), files: found.length, dir: specsPath, digests };
}

function at(file: string): Diagnostic['source'] {
  return { file, start: { line: 1, col: 1 }, end: { line: 1, col: 1 } };
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
