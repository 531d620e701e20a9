/**
 * An error whose message is written for the person running tidemark: what failed and what to check (a
 * setting, a spec key at file:line, a command to run). The CLI prints it as one short paragraph and exits
 * 1, without a stack trace (unless TIDEMARK_DEBUG=1), because the fix is on the user's side and a stack
 * would only bury it. Anything that is not a UserError reaching the CLI is treated as a likely bug.
 *
 * The message must already be safe to show: no secret, no customer identifier. The CLI still redacts it.
 */
export interface UserErrorOptions {
  cause?: unknown;
  /** One sentence on what to check or do next, printed after the message. */
  hint?: string;
}

export class UserError extends Error {
  override name = 'UserError';
  readonly hint?: string;

  constructor(message: string, options: UserErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    if (options.hint !== undefined) this.hint = options.hint;
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}
