/**
 * The sync job and the freshness check: which sources a `sync plan|run` (or the main job) covers in this environment, and each
 * one through the sync engine with this environment's state, client and clock.
 */
import { appliesTo } from '../plan/desired.ts';
import { locate } from '../spec/parse.ts';
import { isDue, type SourceStatus } from '../sync/monitor.ts';
import { readSourceStatuses } from '../sync/source-statuses.ts';
import { syncSource, type SyncDeps, type SyncOptions, type SyncReport } from '../sync/run.ts';
import type { OpenEnvironment } from './use-cases.ts';
import { prepareWorld, type WorldOverrides } from './world.ts';

/** What the engine needs from an open environment, for one run of the job. */
export function syncDeps(ws: OpenEnvironment, env: NodeJS.ProcessEnv): SyncDeps {
  return { model: ws.model, store: ws.conn.store, client: ws.conn.customerio, cwd: ws.cwd, env, clock: ws.clock, stateDir: ws.conn.stateDir };
}

export type SourceSelection = { ok: true; sources: string[] } | { ok: false; message: string };

/**
 * The sources a job covers: those named (each must exist and apply here), or every source that applies to
 * the environment; with `due`, only those whose schedule fired since their last success. A source never
 * runs where its spec says it does not apply, named on the command line or not.
 */
export async function selectSources(ws: OpenEnvironment, names: readonly string[], opts: { due?: boolean } = {}): Promise<SourceSelection> {
  const environment = ws.conn.environment;
  const all = [...ws.model.sources.values()].filter((s) => appliesTo(s.spec, environment)).map((s) => s.name).sort();
  for (const n of names) {
    const named = ws.model.sources.get(n);
    if (!named) return { ok: false, message: `no source named "${n}" (sources: ${all.join(', ')})` };
    if (!appliesTo(named.spec, environment)) {
      const at = locate(named.pd, ['environments']);
      return {
        ok: false,
        message:
          `source "${n}" does not apply to environment ${environment}: its environments are ${named.spec.environments!.join(', ')} ` +
          `(${at.file}:${at.start.line}); nothing was read or sent. Choose one of them with --env, or add ${environment} to the list.`,
      };
    }
  }
  const selected = names.length ? [...names] : all;
  if (!opts.due) return { ok: true, sources: selected };
  const now = ws.clock.now();
  const due: string[] = [];
  for (const n of selected) if (isDue(ws.model.sources.get(n)!.spec, await ws.conn.store.lastSuccess(n), now)) due.push(n);
  return { ok: true, sources: due };
}

export interface SyncJobRequest {
  mode: SyncOptions['mode'];
  sources: readonly string[];
  env: NodeJS.ProcessEnv;
  /** Called before each source; what it returns receives that source's progress. */
  onSource?: (name: string) => { onProgress?: SyncOptions['onProgress']; done?: () => void };
  onReport?: (report: SyncReport) => void;
  /** On the sandbox: the world's size and seed (see world.ts). */
  world?: WorldOverrides;
  /** What the sandbox world did for this job (warehouse started, exports written). */
  onWorld?: (notes: string[]) => void;
}

export interface SyncJobResult {
  reports: SyncReport[];
  /** Every source succeeded (or was planned): a failed or partial run did not do all it planned. */
  ok: boolean;
}

export async function runSyncJob(ws: OpenEnvironment, req: SyncJobRequest): Promise<SyncJobResult> {
  if (req.sources.length === 0) return { reports: [], ok: true };
  const world = await prepareWorld(ws, req.sources, req.env, req.world);
  try {
    if (world.notes.length) req.onWorld?.(world.notes);
    const deps = syncDeps(ws, world.env);
    const reports: SyncReport[] = [];
    for (const name of req.sources) {
      const hooks = req.onSource?.(name) ?? {};
      const report = await syncSource(deps, name, { mode: req.mode, ...(hooks.onProgress ? { onProgress: hooks.onProgress } : {}) });
      hooks.done?.();
      reports.push(report);
      req.onReport?.(report);
    }
    return { reports, ok: !reports.some((r) => r.status === 'failed' || r.status === 'partial') };
  } finally {
    await world.close();
  }
}

/** The freshness check (`tidemark status`, the main job's last step): each source of the environment now. */
export async function checkFreshness(ws: OpenEnvironment, rejectRateThreshold: number): Promise<{ checkedAt: Date; statuses: SourceStatus[] }> {
  const checkedAt = ws.clock.now();
  return { checkedAt, statuses: await readSourceStatuses(ws.model, ws.conn.store, ws.conn.environment, checkedAt, rejectRateThreshold) };
}
