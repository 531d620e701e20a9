import { InternalError } from './diagnostics.ts';

/**
 * Ends every `switch` over a closed union (actions, statuses): a new member that a switch forgets fails
 * the type check there, and a value that slips past the types at run time is a bug, not a user error.
 */
export function assertNever(value: never): never {
  throw new InternalError(`unexpected value ${String(value)}`);
}
