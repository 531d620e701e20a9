/**
 * Plumbing for the `tidemark github …` tests: a throwaway project (the example specs, its own embedded
 * sandbox and state), the CLI run as its own process (bin/tidemark.js) with stdout and stderr apart, and
 * the fake GitHub started for the test file.
 */
import { spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { FakeGitHub } from '../support/fake-github.ts';

export const REPO = path.resolve(import.meta.dirname, '../..');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `node bin/tidemark.js ARGS` in `cwd`, with only `env` (plus PATH), as CI would run it. */
export function tidemark(cwd: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const child = spawn(process.execPath, [path.join(REPO, 'bin/tidemark.js'), ...args], {
    cwd,
    env: { PATH: process.env.PATH, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += String(d)));
  child.stderr.on('data', (d) => (stderr += String(d)));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

export async function makeProject(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tidemark-gh-'));
  await cp(path.join(REPO, 'specs'), path.join(dir, 'specs'), { recursive: true });
  return dir;
}

export async function editFile(file: string, edit: (text: string) => string): Promise<void> {
  const text = await readFile(file, 'utf8');
  const next = edit(text);
  if (next === text) throw new Error(`edit of ${file} changed nothing`);
  await writeFile(file, next);
}

/** A fake GitHub per test file, and the projects the tests made, removed afterwards. */
export function useFakeGitHub(): { gh: () => FakeGitHub; project: () => Promise<string> } {
  let gh: FakeGitHub | undefined;
  const dirs: string[] = [];
  beforeAll(async () => {
    gh = await new FakeGitHub().start();
  });
  afterAll(async () => {
    await gh?.stop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  return {
    gh: () => gh!,
    project: async () => {
      const d = await makeProject();
      dirs.push(d);
      return d;
    },
  };
}

/** Nothing that looks like an email address or a Customer.io person id of the sandbox world. */
export function personalData(text: string): string[] {
  return [...text.matchAll(/[\w.+-]+@[\w-]+\.[\w.]+|\bcus_\w+/g)].map((m) => m[0]);
}
