/**
 * Crash recovery. An apply journals each change as `pending` before it calls the service and as
 * `applied` after the state records the result. Two things leave `pending` changes whose outcome is
 * unknown, so that a create may have happened remotely without being recorded:
 * - a run that died in between (its run is still `running`), and
 * - a create whose answer was lost (timeout, dropped connection, 5xx): the executor leaves it `pending`
 *   in an otherwise finished run.
 * Before anything is planned, those are settled by looking at the service: an object created under the
 * intended name is adopted (never created twice), a delete that went through is forgotten.
 *
 * Recovery runs under the apply lock: a `running` run whose lock is still held belongs to an apply in
 * progress (another terminal, CI), not to a dead one, and must be left alone.
 */
import type { DesiredResource } from '../plan/desired.ts';
import { formatAddress } from '../core/address.ts';
import { isSameObject, type StateEntry } from '../plan/diff.ts';
import type { ResourceKind } from '../kinds/kind.ts';
import { LockHeldError, type ApplyChangeRecord, type ApplyRecord, type StateStore } from '../state/index.ts';
import { toManagedInput, toStateEntry } from './state-entries.ts';

export interface RecoveryReport {
  runs: number;
  adopted: string[];
  forgotten: string[];
  unresolved: string[];
  /** Set when recovery was left for later because an apply holds the lock (its run is not interrupted). */
  deferred?: string;
}

/** Journal note on a change whose outcome the executor could not learn; recovery settles it. */
export const OUTCOME_UNKNOWN = 'outcome unknown';

export async function recoverInterruptedApplies(
  store: StateStore,
  kinds: Record<string, ResourceKind>,
  desired: DesiredResource[],
  opts: { who?: string } = {},
): Promise<RecoveryReport> {
  const report: RecoveryReport = { runs: 0, adopted: [], forgotten: [], unresolved: [] };
  const interrupted = await store.unfinishedApplies();
  const lastFinished = await latestFinishedWithUnknownCreates(store);
  if (interrupted.length === 0 && !lastFinished) return report;

  let lock;
  try {
    lock = await store.acquireLock({ operation: 'recover interrupted apply', who: opts.who ?? `recovery pid ${process.pid}` });
  } catch (err) {
    if (err instanceof LockHeldError) {
      report.deferred = err.message;
      return report;
    }
    throw err;
  }
  try {
    const desiredByAddress = new Map(desired.map((d) => [formatAddress(d.address), d]));
    const settle = new Settler(store, kinds, desiredByAddress, report);
    // Read again under the lock: the apply that held it a moment ago may have finished meanwhile.
    for (const run of await store.unfinishedApplies()) {
      report.runs++;
      for (const change of run.changes.filter((c) => c.status === 'pending')) {
        const outcome = await settle.change(change);
        await store.recordChange(run.id, change.address, outcome);
      }
      await store.finishApply(run.id, { status: 'interrupted', error: 'the process stopped during the apply; settled by recovery' });
    }
    const finished = await latestFinishedWithUnknownCreates(store);
    if (finished) {
      // The run is closed, so its journal stays as it is; what counts is that the state learns about the object.
      const before = report.adopted.length;
      for (const change of finished.changes.filter((c) => c.status === 'pending' && CREATING.has(c.action))) await settle.change(change);
      if (report.adopted.length > before) report.runs++;
    }
    return report;
  } finally {
    await lock.release();
  }
}

const CREATING = new Set(['create', 'replace', 'import']);

/**
 * The newest apply run, when it finished with creates of unknown outcome. Only the newest matters:
 * every apply starts by opening the workspace, which runs this recovery, so an older run's unknowns were
 * looked at before the newer run planned anything.
 */
async function latestFinishedWithUnknownCreates(store: StateStore): Promise<ApplyRecord | undefined> {
  const [latest] = await store.listApplies(1);
  if (!latest || latest.status === 'running') return undefined;
  const run = await store.getApply(latest.id);
  if (!run) return undefined;
  // A create the state already records was settled before (by an earlier open or an import).
  const managed = new Set((await store.listManaged()).map((m) => m.address));
  const open = run.changes.some((c) => c.status === 'pending' && CREATING.has(c.action) && !(c.action === 'create' && managed.has(c.address)));
  return open ? run : undefined;
}

class Settler {
  constructor(
    private readonly store: StateStore,
    private readonly kinds: Record<string, ResourceKind>,
    private readonly desiredByAddress: Map<string, DesiredResource>,
    private readonly report: RecoveryReport,
  ) {}

  /** Looks at the service to learn what a pending change did; returns how to journal it. */
  async change(change: ApplyChangeRecord): Promise<{ status: 'applied' | 'failed'; remoteId?: string; error?: string }> {
    const managed = (await this.store.listManaged()).map(toStateEntry);
    const entry = managed.find((m) => m.address === change.address);
    const kindName = change.address.split('.').slice(0, 2).join('.');
    const kind = this.kinds[kindName];
    if (!kind) {
      this.report.unresolved.push(change.address);
      return { status: 'failed', error: `interrupted; no provider for ${kindName} to check it` };
    }
    if (change.action === 'delete' || change.action === 'forget') {
      const stillThere = entry ? await kind.read(entry.remoteId) : undefined;
      if (entry && !stillThere) {
        await this.store.deleteManaged(change.address);
        this.report.forgotten.push(change.address);
      }
      return stillThere ? { status: 'failed', error: 'interrupted before the delete; the next plan deletes it again' } : { status: 'applied' };
    }
    if (CREATING.has(change.action)) {
      const adopted = await this.adopt(change, kind, kindName, managed);
      if (adopted) return { status: 'applied', remoteId: adopted };
    }
    // Updates are idempotent: the next plan re-sends whatever did not land.
    return { status: 'failed', error: 'interrupted; settled by recovery' };
  }

  /** Adopts the one unmanaged object the change would have created; its id, or undefined. */
  private async adopt(change: ApplyChangeRecord, kind: ResourceKind, kindName: string, managed: StateEntry[]): Promise<string | undefined> {
    const d = this.desiredByAddress.get(change.address);
    if (!d) return undefined;
    const current = managed.find((m) => m.address === change.address);
    const alreadyManaged = new Set(managed.filter((m) => m.kind === kindName).map((m) => m.remoteId));
    let candidates;
    if (change.action === 'import' && change.remoteId) {
      // An import names its object: no need to guess by name.
      const live = await kind.read(change.remoteId);
      candidates = live && !alreadyManaged.has(live.id) ? [live] : [];
    } else {
      // A create whose object is recorded and exists was applied; only the journal missed it.
      if (change.action === 'create' && current && (await kind.read(current.remoteId))) return undefined;
      const wanted = kind.normalize(d.attributes);
      candidates = (await kind.list()).filter((l) => isSameObject(kind, wanted, l) && !alreadyManaged.has(l.id));
    }
    if (candidates.length > 1) {
      this.report.unresolved.push(change.address);
      return undefined;
    }
    const live = candidates[0];
    if (!live) return undefined;
    await this.store.putManaged(
      toManagedInput({
        address: change.address,
        kind: kindName,
        remoteId: live.id,
        attributes: live.attributes,
        dependsOn: d.dependsOn.map(formatAddress),
        preventDestroy: d.preventDestroy,
      }),
    );
    this.report.adopted.push(`${change.address} (${live.id})`);
    if (change.action === 'replace' && current && current.remoteId !== live.id) await this.finishReplace(change.address, kind, current.remoteId);
    return live.id;
  }

  /**
   * A replace that created its new object before deleting the old one stopped in between: the approved plan
   * deletes the old object, and nothing else would (it is no longer in the state), so recovery does.
   */
  private async finishReplace(address: string, kind: ResourceKind, oldId: string): Promise<void> {
    try {
      if (await kind.read(oldId)) await kind.delete(oldId);
    } catch {
      this.report.unresolved.push(`${address} (the replaced object ${oldId} may still exist)`);
    }
  }
}
