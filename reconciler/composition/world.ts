/**
 * The sandbox world: when the target is the sandbox (embedded, or a standalone `tidemark sandbox` on
 * 127.0.0.1) and the Workspace names a seeded world
 * (`sandbox.world: hearth_and_harvest`), the sources read that world instead of nothing.
 * - File sources: the world's exports are written where the Workspace says (`sandbox.exports`), only
 *   when their content changed, atomically.
 * - Postgres sources whose connection variable is not set run against the embedded warehouse (PGlite on
 *   127.0.0.1), loaded with the world at the run's clock. A variable that is set always wins: a newcomer
 *   with a real warehouse URL reads the real warehouse.
 * - The sandbox's Qualtrics gets the world's surveys (the API cannot create surveys).
 * Never on live services: a live target reads what the spec says and nothing else.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../core/user-error.ts';
import type { EmbeddedWarehouse } from '../world/embedded-warehouse.ts';
import { worldExports } from '../world/exports.ts';
import { checkWorldOptions, DEFAULT_PEOPLE, DEFAULT_SEED, generateWorld, WorldOptionError, type WorldOptions } from '../world/hearth-and-harvest.ts';
import { WORLD_SURVEYS } from '../world/surveys.ts';
import type { OpenEnvironment } from './use-cases.ts';

/** `--people` / `--seed` from the command line; they override the Workspace's `sandbox` block. */
export interface WorldOverrides {
  people?: number;
  seed?: number;
}

export class WorldSetupError extends UserError {
  override name = 'WorldSetupError';
}

/** The world this run uses, or undefined (live target, or no world declared). */
export function worldOptions(ws: OpenEnvironment, overrides: WorldOverrides = {}): WorldOptions | undefined {
  const declared = ws.model.workspace?.spec.sandbox;
  // The embedded sandbox, or services on this machine (a standalone `tidemark sandbox`): both are the sandbox.
  if (!declared || (ws.conn.mode !== 'sandbox' && !ws.conn.target.loopback)) return undefined;
  const o: WorldOptions = { seed: overrides.seed ?? declared.seed ?? DEFAULT_SEED, people: overrides.people ?? declared.people ?? DEFAULT_PEOPLE, now: ws.clock.now() };
  try {
    checkWorldOptions(o);
  } catch (err) {
    if (err instanceof WorldOptionError) throw new WorldSetupError(`the sandbox world: ${err.message}`);
    throw err;
  }
  return o;
}

export interface PreparedWorld {
  /** The environment the sync job reads: connection variables pointed at the embedded warehouse. */
  env: NodeJS.ProcessEnv;
  /** For people: what the world did ("embedded warehouse on …", "wrote specs/data/…"). */
  notes: string[];
  /** Postgres sources that read the embedded warehouse. */
  embedded: string[];
  close(): Promise<void>;
}

/**
 * Gets the world ready for a sync job over `sources`: exports written, surveys seeded, and the embedded
 * warehouse started when one of those sources needs it. Without a world, returns `env` as given.
 */
export async function prepareWorld(ws: OpenEnvironment, sources: readonly string[], env: NodeJS.ProcessEnv, overrides: WorldOverrides = {}): Promise<PreparedWorld> {
  const o = worldOptions(ws, overrides);
  const nothing: PreparedWorld = { env, notes: [], embedded: [], close: async () => undefined };
  if (!o) return nothing;
  const declared = ws.model.workspace!.spec.sandbox!;
  const notes: string[] = [];
  const specs = sources.map((n) => ws.model.sources.get(n)!.spec);
  const needsWarehouse = specs.filter((s) => s.connector.type === 'postgres' && !env[s.connector.url_env]?.trim());
  const needsFiles = specs.some((s) => s.connector.type !== 'postgres');

  // PGlite takes seconds to boot: start it while the files are written.
  // PGlite's modules load only when a warehouse is wanted (~0.3 s of every sync's start otherwise).
  const warehouse: Promise<EmbeddedWarehouse> | undefined = needsWarehouse.length ? import('../world/embedded-warehouse.ts').then((m) => m.startEmbeddedWarehouse(o)) : undefined;
  try {
    seedSurveys(ws);
    if (needsFiles) {
      const dir = path.resolve(ws.cwd, declared.exports);
      const written = await writeExports(dir, worldExports(generateWorld(o)));
      if (written.length) notes.push(`wrote the world's exports: ${written.map((f) => path.relative(ws.cwd, f)).join(', ')}`);
    }
    if (!warehouse) return { ...nothing, notes };
    const wh = await warehouse;
    const vars = Object.fromEntries(needsWarehouse.map((s) => [(s.connector as { url_env: string }).url_env, wh.url]));
    notes.push(`embedded warehouse (PGlite) on 127.0.0.1 with ${o.people.toLocaleString('en-US')} customers as of ${o.now.toISOString()} for ${needsWarehouse.map((s) => s.name).join(', ')}`);
    return { env: { ...env, ...vars }, notes, embedded: needsWarehouse.map((s) => s.name), close: () => wh.close() };
  } catch (err) {
    if (warehouse) await warehouse.then((w) => w.close()).catch(() => undefined);
    throw err;
  }
}

function seedSurveys(ws: OpenEnvironment): void {
  const qualtrics = ws.conn.sandbox?.qualtrics;
  if (!qualtrics) return;
  for (const s of WORLD_SURVEYS) {
    try {
      qualtrics.seedSurvey(s);
    } catch (err) {
      // Kept in the sandbox's data file from an earlier run.
      if (!(err instanceof Error && /already exists/.test(err.message))) throw err;
    }
  }
}

/** Writes each file whose content differs (temp file + rename, so a reader never sees half a file). */
async function writeExports(dir: string, files: Map<string, string>): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const [name, content] of files) {
    const file = path.join(dir, name);
    const current = await readFile(file, 'utf8').catch(() => undefined);
    if (current === content) continue;
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, content);
    await rename(tmp, file);
    written.push(file);
  }
  return written;
}
