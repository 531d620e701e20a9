/**
 * The survey job, as far as it is built: `tidemark surveys plan` evaluates the audiences and then each
 * survey target's eligibility at the run's clock, inside a transaction that is rolled back, so planning
 * writes nothing. Sending (the Qualtrics export) comes next (issue 12).
 */
import { evaluateAudiences } from '../audiences/evaluate.ts';
import { evaluateEligibility, type EligibilityResult } from '../surveys/eligibility.ts';
import type { OpenEnvironment } from './use-cases.ts';

class DryRun extends Error {
  constructor(readonly result: EligibilityResult) {
    super('dry run');
  }
}

export async function planSurveys(ws: OpenEnvironment): Promise<EligibilityResult> {
  const now = ws.clock.now();
  try {
    await ws.conn.store.transaction(async () => {
      await evaluateAudiences({ model: ws.model, environment: ws.conn.environment, store: ws.conn.store, now });
      throw new DryRun(await evaluateEligibility({ model: ws.model, environment: ws.conn.environment, store: ws.conn.store, now }));
    });
  } catch (err) {
    if (err instanceof DryRun) return err.result;
    throw err;
  }
  throw new Error('unreachable: the dry run always rolls back');
}
