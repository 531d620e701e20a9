/**
 * The state's own use cases (`tidemark state`, `tidemark unlock`): what is managed, the apply history,
 * releasing prevent_destroy, and the apply lock.
 */
import { toManagedInput, toStateEntry } from '../apply/state-entries.ts';
import type { StateEntry } from '../plan/diff.ts';
import type { ApplyRunSummary, LockInfo } from '../state/index.ts';
import type { OpenEnvironment } from './use-cases.ts';

export function listManaged(ws: OpenEnvironment): Promise<StateEntry[]> {
  return ws.conn.store.listManaged().then((all) => all.map(toStateEntry));
}

export function applyHistory(ws: OpenEnvironment, limit = 20): Promise<ApplyRunSummary[]> {
  return ws.conn.store.listApplies(limit);
}

/** Clears prevent_destroy on a managed object; false when the address is not managed. */
export async function unprotect(ws: OpenEnvironment, address: string): Promise<boolean> {
  const m = await ws.conn.store.getManaged(address);
  if (!m) return false;
  await ws.conn.store.putManaged(toManagedInput({ ...toStateEntry(m), preventDestroy: false }));
  return true;
}

export function applyLock(ws: OpenEnvironment): Promise<LockInfo | undefined> {
  return ws.conn.store.lockInfo();
}

/** Releases the lock with this id; false when it changed hands meanwhile. */
export function releaseLock(ws: OpenEnvironment, id: string): Promise<boolean> {
  return ws.conn.store.forceUnlock(id);
}
