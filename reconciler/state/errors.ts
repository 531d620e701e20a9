/**
 * Failures of the state store that callers are expected to handle or show. Each carries a stable code
 * (area prefix STATE) so the CLI can render it and users can search for it. Bugs still throw
 * `InternalError` from core.
 */
import { UserError } from '../core/user-error.ts';
import type { LockInfo } from './types.ts';

export type StateErrorCode =
  /** The database was migrated by a newer tidemark. */
  | 'STATE001'
  /** An applied migration no longer matches the one this tidemark ships. */
  | 'STATE002'
  /** The lock is held by someone else. */
  | 'STATE003'
  /** A held lock was lost (taken over or force-unlocked). */
  | 'STATE004'
  /** The thing asked for does not exist. */
  | 'STATE005'
  /** The write would break an invariant (address taken, remote id already managed, run finished). */
  | 'STATE006'
  /** An ack session was superseded or used after it closed. */
  | 'STATE007'
  /** Bad store configuration (environment name, URL, schema). */
  | 'STATE008'
  /** The state folder cannot be used: it is a file, or it cannot be created or written. */
  | 'STATE009';

export class StateError extends UserError {
  override name = 'StateError';
  readonly code: StateErrorCode;
  constructor(code: StateErrorCode, message: string, options?: { cause?: unknown; hint?: string }) {
    super(message, options);
    this.code = code;
  }
}

/** The database holds a schema version this tidemark does not know, or a migration was edited after being applied. */
export class StateSchemaError extends StateError {
  override name = 'StateSchemaError';
}

export class LockHeldError extends StateError {
  override name = 'LockHeldError';
  /** Who holds the lock, as far as the store knows. */
  readonly holder: LockInfo | undefined;
  constructor(holder: LockInfo | undefined, location: string) {
    super(
      'STATE003',
      holder
        ? `State for ${location} is locked by ${holder.who} (pid ${holder.pid} on ${holder.hostname}) for "${holder.operation}" since ${holder.acquiredAt}. ` +
            'Wait for it to finish; if that process is gone for good, run `tidemark unlock ' + holder.id + '`.'
        : `State for ${location} is locked by another session that has not recorded who it is yet; try again shortly.`,
    );
    this.holder = holder;
  }
}

export class LockLostError extends StateError {
  override name = 'LockLostError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('STATE004', message, options);
  }
}

export class StateNotFoundError extends StateError {
  override name = 'StateNotFoundError';
  constructor(message: string) {
    super('STATE005', message);
  }
}

export class StateConflictError extends StateError {
  override name = 'StateConflictError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('STATE006', message, options);
  }
}
