export { openStateStore, stateStoreOptionsFromEnv, describeDatabaseUrl, DEFAULT_ENV, DEFAULT_STATE_DIR } from './open.ts';
export { LockHeldError, LockLostError, StateConflictError, StateError, StateNotFoundError, StateSchemaError } from './errors.ts';
export type { StateErrorCode } from './errors.ts';
export type * from './types.ts';
