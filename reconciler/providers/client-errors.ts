/**
 * The errors a client raises itself, before or after the HTTP layer: a configuration it cannot use, a
 * request it refuses to send, an answer that is not the documented shape. Both clients build them here so
 * that `outcome`, `retryable` and `code` mean the same for Customer.io and Qualtrics: the apply executor
 * and the sync engine branch on those fields, never on which client raised the error.
 */
import type { z } from 'zod';
import { ProviderError, type ProviderName, type RequestOutcome } from './errors.ts';

export interface ClientErrors {
  /** Missing or invalid settings: nothing was sent, and resending cannot help until they are fixed. */
  configError(message: string): ProviderError;
  /** A request refused before it was sent (bad arguments): certainly not applied. */
  localError(operation: string, message: string, code?: string): ProviderError;
  /** An answer that could not be read; `outcome` says whether the request itself took effect. */
  invalidResponse(operation: string, message: string, outcome: RequestOutcome): ProviderError;
  /** `schema.parse(data)`, with a failure reported as an invalid response naming the first bad path. */
  parseWith<S extends z.ZodType>(operation: string, data: unknown, schema: S, outcome?: RequestOutcome): z.output<S>;
}

export function clientErrors(provider: ProviderName): ClientErrors {
  const invalidResponse = (operation: string, message: string, outcome: RequestOutcome): ProviderError =>
    new ProviderError({ provider, operation, message: `unexpected response: ${message}`, retryable: false, outcome, code: 'invalid_response' });
  return {
    configError: (message) => new ProviderError({ provider, operation: 'config', message, retryable: false, code: 'invalid_config', attempts: 0 }),
    localError: (operation, message, code = 'invalid_request') =>
      new ProviderError({ provider, operation, message, retryable: false, outcome: 'not-applied', code, attempts: 0 }),
    invalidResponse,
    parseWith(operation, data, schema, outcome = 'applied') {
      const parsed = schema.safeParse(data);
      if (parsed.success) return parsed.data;
      const issue = parsed.error.issues[0];
      const where = issue && issue.path.length > 0 ? issue.path.join('.') : '(root)';
      throw invalidResponse(operation, `${where}: ${issue?.message ?? 'does not match the documented shape'}`, outcome);
    },
  };
}

/** A JSON object (not null, not an array): the first check on any answer before its fields are read. */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
