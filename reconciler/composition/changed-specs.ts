/**
 * Which spec files changed on a pull request, read from git (simple-git): between the merge base of the
 * base ref and HEAD, plus what is not committed yet (edited, deleted and untracked files). The plan's
 * scope is chosen from them by plan/scope.ts.
 *
 * When git cannot answer (no repository, a shallow clone that does not reach the base, a ref that is not
 * there), the plan covers everything and says why: a plan that silently covered less would hide changes
 * from the people reviewing it.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { simpleGit, type SimpleGit } from 'simple-git';
import { formatAddress } from '../core/address.ts';
import { desiredResources } from '../kinds/index.ts';
import { fullScope, selectChangedScope, type ChangedSpecFile } from '../plan/scope.ts';
import { validateSpecs } from '../spec/validate.ts';
import { toStateEntry } from '../apply/state-entries.ts';
import type { OpenEnvironment, ScopeRequest } from './use-cases.ts';

export type ChangedSpecs = { ok: true; base: { ref: string; commit: string }; files: ChangedSpecFile[] } | { ok: false; reason: string };

const SPEC_NAME = /\.ya?ml$/;

/** The base a pull request is compared with: `--changed-since REF`, else GitHub's base branch (`GITHUB_BASE_REF`). */
export function changedSinceRef(flag: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (flag !== undefined && flag.trim() !== '') return flag.trim();
  const base = env.GITHUB_BASE_REF?.trim();
  return base ? `origin/${base}` : undefined;
}

/** Spec files under `specsDir` that differ between the merge base of `ref` and HEAD and the working tree now. */
export async function readChangedSpecs(cwd: string, specsDir: string, ref: string): Promise<ChangedSpecs> {
  let git: SimpleGit;
  try {
    git = simpleGit({ baseDir: cwd });
    if (!(await git.checkIsRepo())) return { ok: false, reason: `${cwd} is not in a git repository, so what changed since ${ref} cannot be told` };
  } catch (err) {
    return { ok: false, reason: `git could not be run (${firstLine(err)}), so what changed since ${ref} cannot be told` };
  }
  const resolved = await resolveRef(git, ref);
  const shallow = (await tryRaw(git, ['rev-parse', '--is-shallow-repository']))?.trim() === 'true';
  if (!resolved) {
    return {
      ok: false,
      reason: `${ref} is not in this clone${shallow ? ' (a shallow clone)' : ''}, so what changed since it cannot be told: fetch it (actions/checkout with fetch-depth: 0)`,
    };
  }
  const base = (await tryRaw(git, ['merge-base', resolved.commit, 'HEAD']))?.trim();
  if (!base) {
    return {
      ok: false,
      reason: shallow
        ? `this clone is shallow and does not reach the merge base of ${resolved.name} and HEAD: fetch the history (actions/checkout with fetch-depth: 0)`
        : `${resolved.name} and HEAD have no common history, so what changed since it cannot be told`,
    };
  }
  const cdup = ((await tryRaw(git, ['rev-parse', '--show-cdup'])) ?? '').trim();
  const specsAbs = path.resolve(cwd, specsDir);
  const pathspec = path.relative(cwd, specsAbs) || '.';
  const diff = await tryRaw(git, ['-c', 'core.quotepath=off', 'diff', '--name-status', '--no-renames', '-z', base, '--', pathspec]);
  const untracked = await tryRaw(git, ['-c', 'core.quotepath=off', 'ls-files', '--others', '--exclude-standard', '-z', '--', pathspec]);
  if (diff === undefined || untracked === undefined) return { ok: false, reason: `git could not list what changed since ${resolved.name}` };

  // name-status -z: status, NUL, path (from the repository root), NUL, ...
  const entries: Array<{ status: string; fromRoot: string }> = [];
  const parts = diff.split('\0').filter((p) => p !== '');
  for (let i = 0; i + 1 < parts.length; i += 2) entries.push({ status: parts[i]!, fromRoot: parts[i + 1]! });
  const root = path.resolve(cwd, cdup || '.');
  const files: ChangedSpecFile[] = [];
  const seen = new Set<string>();
  for (const e of entries) {
    const abs = path.resolve(root, e.fromRoot);
    if (!isSpecFile(specsAbs, abs) || seen.has(abs)) continue;
    seen.add(abs);
    const baseText = e.status.startsWith('A') ? null : ((await tryRaw(git, ['show', `${base}:${e.fromRoot}`])) ?? null);
    files.push({ path: shown(cwd, abs), base: baseText, current: await readOrNull(abs) });
  }
  for (const p of untracked.split('\0').filter((x) => x !== '')) {
    const abs = path.resolve(cwd, p);
    if (!isSpecFile(specsAbs, abs) || seen.has(abs)) continue;
    seen.add(abs);
    files.push({ path: shown(cwd, abs), base: null, current: await readOrNull(abs) });
  }
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { ok: true, base: { ref: resolved.name, commit: base }, files };
}

/**
 * The scope of `tidemark plan` in `ws`: what changed since `ref` (with why, when git cannot tell), or
 * everything with `--full`.
 */
export async function planScope(ws: OpenEnvironment, req: { ref?: string; full?: boolean }): Promise<ScopeRequest | undefined> {
  if (!req.full && req.ref === undefined) return undefined;
  const state = (await ws.conn.store.listManaged()).map(toStateEntry);
  const total = new Set([...ws.desired.map((d) => formatAddress(d.address)), ...state.map((s) => s.address)]).size;
  if (req.full) return { targets: [], summary: fullScope('--full', total) };
  const changed = await readChangedSpecs(ws.cwd, ws.load.dir, req.ref!);
  if (!changed.ok) return { targets: [], summary: fullScope(`${changed.reason}; so every object is planned`, total) };
  const scope = selectChangedScope({
    base: changed.base,
    files: changed.files,
    desired: ws.desired,
    baseDesired: await desiredAtBase(ws, changed.files),
    state,
  });
  return { targets: scope.targets, summary: scope.summary };
}

/** The desired objects the specs declared at the merge base, or undefined when they did not validate there. */
async function desiredAtBase(ws: OpenEnvironment, changed: ChangedSpecFile[]): Promise<ReturnType<typeof desiredResources> | undefined> {
  const byPath = new Map(changed.map((f) => [f.path, f]));
  const files: Array<{ path: string; text: string }> = [];
  for (const p of Object.keys(ws.load.digests)) {
    if (byPath.has(p)) continue;
    const text = await readOrNull(path.resolve(ws.cwd, p));
    if (text === null) return undefined;
    files.push({ path: p, text });
  }
  for (const f of changed) if (f.base !== null) files.push({ path: f.path, text: f.base });
  const result = validateSpecs(files);
  return result.model ? desiredResources(result.model, ws.conn.environment) : undefined;
}

/** What `loadSpecs` would read: `*.yaml`/`*.yml` under the specs folder, not hidden, not node_modules, not `schema/`. */
function isSpecFile(specsAbs: string, abs: string): boolean {
  if (abs === specsAbs) return SPEC_NAME.test(abs);
  const rel = path.relative(specsAbs, abs);
  if (rel.startsWith('..') || path.isAbsolute(rel)) return false;
  const segments = rel.split(path.sep);
  if (segments.some((s) => s.startsWith('.') || s === 'node_modules')) return false;
  if (segments.length > 1 && segments[0] === 'schema') return false;
  return SPEC_NAME.test(abs);
}

async function resolveRef(git: SimpleGit, ref: string): Promise<{ name: string; commit: string } | undefined> {
  // GitHub's base ref is a branch name: its remote-tracking branch first, the name as given after.
  const candidates = [ref];
  if (ref.startsWith('origin/')) candidates.push(ref.slice('origin/'.length));
  for (const name of candidates) {
    const commit = (await tryRaw(git, ['rev-parse', '--verify', '--quiet', `${name}^{commit}`]))?.trim();
    if (commit) return { name, commit };
  }
  return undefined;
}

async function tryRaw(git: SimpleGit, args: string[]): Promise<string | undefined> {
  try {
    return await git.raw(args);
  } catch {
    return undefined;
  }
}

async function readOrNull(abs: string): Promise<string | null> {
  try {
    return await readFile(abs, 'utf8');
  } catch {
    return null;
  }
}

function shown(cwd: string, abs: string): string {
  return path.relative(cwd, abs).split(path.sep).join('/');
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}
