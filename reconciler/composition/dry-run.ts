/**
 * Planning evaluates exactly what a run would (audiences, eligibility) in the state's own database, then
 * throws the writes away: the work runs inside a transaction that is always rolled back.
 */
import type { StateStore } from '../state/index.ts';

class RolledBack<T> extends Error {
  constructor(readonly value: T) {
    super('dry run: rolled back');
  }
}

/** Runs `fn` in a transaction of `store` that never commits, and resolves to what `fn` returned. */
export async function rolledBack<T>(store: StateStore, fn: () => Promise<T>): Promise<T> {
  try {
    await store.transaction(async () => {
      throw new RolledBack(await fn());
    });
  } catch (err) {
    if (err instanceof RolledBack) return err.value as T;
    throw err;
  }
  throw new Error('unreachable: a dry run always rolls back');
}
