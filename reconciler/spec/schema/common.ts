import { z } from 'zod';
import { DURATION_PATTERN } from '../../core/duration.ts';

/** Names are snake_case so they read the same in YAML, Customer.io attributes and addresses. */
export const Name = z
  .string()
  .regex(/^[a-z][a-z0-9_]*$/, 'use snake_case: lowercase letters, digits and underscores, starting with a letter')
  .max(100)
  .meta({ description: 'A snake_case name: lowercase letters, digits and underscores, starting with a letter (at most 100 characters).' });

export const EnvVarName = z
  .string()
  .regex(/^[A-Z][A-Z0-9_]*$/, 'give the NAME of an environment variable (e.g. CUSTOMERIO_APP_API_KEY), never the secret itself')
  .meta({ description: 'Name of an environment variable holding the value. Secrets never go in specs.' });

export const Duration = z
  .string()
  .regex(DURATION_PATTERN, 'write a duration like 90s, 15m, 2h, 7d or 2w')
  .meta({ description: 'A duration: a number followed by s, m, h, d or w (e.g. 72h, 7d).' });

export const Percentage = z
  .string()
  .regex(/^(\d{1,2}(\.\d+)?|100)%$/, 'write a percentage like 10%')
  .meta({ description: 'A share of people, e.g. 10%.' });

export const Cron = z
  .string()
  .min(1)
  .meta({ description: 'When the sync runs: a cron expression with 5 fields (minute hour day-of-month month day-of-week), evaluated in UTC, e.g. "5 * * * *" for five past every hour.' });

/**
 * An IANA zone name the runtime knows (`America/New_York`, `UTC`, accepted aliases such as `US/Eastern`).
 * Asking Intl is the test: it is what luxon, and so the sync engine, use to convert timestamps.
 */
export function isTimeZone(name: string): boolean {
  if (name.trim() !== name || name === '') return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

export const TimeZone = z
  .string()
  .min(1)
  .refine(isTimeZone, 'not a known IANA time zone (e.g. UTC, America/New_York, Europe/Berlin; underscores, not spaces)')
  .meta({ description: 'IANA time zone name, e.g. America/New_York.' });

/** Common to every kind: where the spec applies and which policy findings it knowingly accepts. */
export const specBase = {
  name: Name.meta({ description: 'Unique name of this spec within its kind.' }),
  description: z
    .string()
    .optional()
    .meta({ description: 'Free text for the people who read this spec and its plans. A published Segment also shows it in Customer.io.' }),
  environments: z
    .array(Name)
    .optional()
    .meta({ description: 'Environments this spec applies to (default: all environments of the Workspace).' }),
  suppress: z
    .record(z.string().regex(/^[A-Z]{2,5}\d{3}$/, 'a rule code such as SURV004'), z.string().min(10, 'say why (at least 10 characters): the reason is shown in every plan'))
    .optional()
    .meta({ description: 'Policy findings accepted for this spec, as RULE_CODE: reason. The reason is shown in plans.' }),
};

export const IdentifierKind = z.enum(['id', 'email']).meta({
  description: 'The Customer.io identifier: `id` (your immutable customer id, preferred) or `email`.',
});

export const FieldType = z.enum(['string', 'number', 'boolean', 'timestamp', 'enum']).meta({
  description: 'Value type: string, number, boolean, timestamp (a date-time; naive values are read in the source’s timezone) or enum (one of `values`).',
});
