/**
 * Opening an environment: the specs loaded and valid, the connection to the target and its state, and any
 * interrupted apply settled. Its own module so a command that needs only this (a sync, a status) does not
 * load the planner, the executor, the audiences and the surveys (use-cases.ts re-exports it).
 */
import os from 'node:os';
import { systemClock, type Clock } from '../core/clock.ts';
import type { Diagnostic } from '../core/diagnostics.ts';
import { UserError } from '../core/user-error.ts';
import { desiredResources } from '../kinds/index.ts';
import type { DesiredResource } from '../plan/desired.ts';
import { loadSpecs, type LoadResult } from '../spec/load.ts';
import type { SpecModel } from '../spec/model.ts';
import { recoverInterruptedApplies, type RecoveryReport } from '../apply/recovery.ts';
import { connect, type Connection, type ConnectOptions } from './connect.ts';

export interface EnvironmentRequest extends Omit<ConnectOptions, 'clock'> {
  specs: string;
  clock?: Clock;
}

export interface OpenEnvironment {
  load: LoadResult;
  model: SpecModel;
  conn: Connection;
  desired: DesiredResource[];
  recovery: RecoveryReport;
  clock: Clock;
  cwd: string;
}

export class SpecsInvalidError extends UserError {
  override name = 'SpecsInvalidError';
  constructor(readonly diagnostics: Diagnostic[]) {
    super('the specs have errors; fix them before planning (run `tidemark validate`)');
  }
}

/** Load and validate the specs, connect to the environment, and settle any interrupted apply. */
export async function openEnvironment(req: EnvironmentRequest): Promise<OpenEnvironment> {
  const load = await loadSpecs(req.specs, req.cwd);
  if (!load.model) throw new SpecsInvalidError(load.diagnostics);
  const clock = req.clock ?? systemClock;
  const conn = await connect(load.model, { ...req, clock });
  try {
    const desired = desiredResources(load.model, conn.environment);
    const recovery = await recoverInterruptedApplies(conn.store, conn.kinds, desired, { who: whoAmI(req.env) });
    return { load, model: load.model, conn, desired, recovery, clock, cwd: req.cwd };
  } catch (err) {
    await conn.close();
    throw err;
  }
}

export function whoAmI(env: NodeJS.ProcessEnv): string {
  const user = env.GITHUB_ACTOR ?? env.USER ?? env.USERNAME ?? 'unknown';
  return `${user}@${os.hostname()} pid ${process.pid}`;
}
