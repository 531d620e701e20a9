/**
 * `tidemark init`'s use case: write the starter into a team's repository, all or nothing. Every file
 * that would be overwritten is found before anything is written, so a refused init leaves the folder as
 * it was; .gitignore is the one file that is added to rather than replaced.
 */
import { lstat, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../core/user-error.ts';
import { TIDEMARK_VERSION } from '../core/version.ts';
import { checkWorkspaceName, gitignoreWith, starterFiles, STARTER_WORKFLOWS } from './templates.ts';

/** The installed package's root: the shipped workflows are read from its .github/workflows. */
const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface InitOptions {
  dir: string;
  name: string;
  /** Overwrite files that exist. */
  force: boolean;
}

export interface InitResult {
  dir: string;
  name: string;
  /** Relative paths, in the order they were written. */
  written: string[];
  /** Those among `written` that existed before (only with force). */
  overwritten: string[];
  gitignore: 'created' | 'updated' | 'unchanged';
  readme: string;
}

/** Files that exist where the starter would write, so nothing was written. */
export class StarterConflictError extends UserError {
  override name = 'StarterConflictError';
  constructor(
    readonly dir: string,
    readonly existing: string[],
  ) {
    super(
      `${existing.length === 1 ? 'a file' : `${existing.length} files`} the starter would write already exist${existing.length === 1 ? 's' : ''} in ${dir}, so nothing was written:\n${existing.map((f) => `  ${f}`).join('\n')}`,
      { hint: 'Move them aside, or run `tidemark init --force` to overwrite them.' },
    );
  }
}

async function exists(file: string): Promise<boolean> {
  return lstat(file).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return false;
      throw err;
    },
  );
}

async function readIfExists(file: string): Promise<string | undefined> {
  return readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
}

async function shippedWorkflows(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const file of STARTER_WORKFLOWS) {
    const text = await readIfExists(path.join(PACKAGE_ROOT, '.github', 'workflows', file));
    // A package without its workflows is a broken install, not a user's mistake, but the user can fix it.
    if (text === undefined) throw new UserError(`the installed tidemark has no .github/workflows/${file} (in ${PACKAGE_ROOT}).`, { hint: 'Reinstall tidemark (npm install tidemark).' });
    out.set(file, text);
  }
  return out;
}

export async function initProject(o: InitOptions): Promise<InitResult> {
  const valid = checkWorkspaceName(o.name);
  if (valid !== true) throw new UserError(`"${o.name}" cannot be the Workspace name: ${valid}.`, { hint: 'Pass --name with a snake_case name, e.g. --name acme_retention.' });
  const dir = path.resolve(o.dir);
  // An existing README belongs to the team: the starter's goes beside it.
  const readme = (await exists(path.join(dir, 'README.md'))) ? 'TIDEMARK.md' : 'README.md';
  const files = starterFiles({ name: o.name, readme, workflows: await shippedWorkflows(), version: TIDEMARK_VERSION });

  const existing: string[] = [];
  for (const f of files) if (await exists(path.join(dir, f.path))) existing.push(f.path);
  if (existing.length && !o.force) throw new StarterConflictError(dir, existing);

  const ignorePath = path.join(dir, '.gitignore');
  const ignoreBefore = await readIfExists(ignorePath);
  const ignoreAfter = gitignoreWith(ignoreBefore);

  const written: string[] = [];
  try {
    for (const f of files) {
      const target = path.join(dir, f.path);
      await mkdir(path.dirname(target), { recursive: true });
      // 'wx' so a file that appeared since the check above is refused rather than clobbered.
      await writeFile(target, f.text, { flag: o.force ? 'w' : 'wx' });
      written.push(f.path);
    }
    if (ignoreAfter !== undefined) await writeFile(ignorePath, ignoreAfter);
  } catch (err) {
    // All or nothing: take back what this run created (an overwritten file cannot be restored, but
    // --force asked for that).
    for (const p of written) if (!existing.includes(p)) await rm(path.join(dir, p), { force: true });
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new StarterConflictError(dir, [path.relative(dir, (err as NodeJS.ErrnoException).path ?? '')]);
    throw err;
  }
  return {
    dir,
    name: o.name,
    written,
    overwritten: existing,
    gitignore: ignoreAfter === undefined ? 'unchanged' : ignoreBefore === undefined ? 'created' : 'updated',
    readme,
  };
}
