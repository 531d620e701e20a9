/**
 * A plan's data impact beyond config: what the next audience run would publish (joining and leaving per
 * segment, against what was last published) and what the next survey run would send (the eligibility
 * funnel per target). Both are evaluated exactly as the runs evaluate them, in the state's database,
 * inside one transaction that is rolled back: planning writes nothing. Counts only, never who.
 */
import { evaluateAudiences } from '../audiences/evaluate.ts';
import { UserError } from '../core/user-error.ts';
import type { DataImpact } from '../plan/plan.ts';
import { evaluateEligibility } from '../surveys/eligibility.ts';
import { emailField } from '../surveys/payload.ts';
import { uiSegmentLoader } from './audiences-job.ts';
import { rolledBack } from './dry-run.ts';
import { qualtricsReports } from './surveys-job.ts';
import type { OpenEnvironment } from './use-cases.ts';

export async function dataImpact(ws: OpenEnvironment): Promise<DataImpact> {
  const env = ws.conn.environment;
  const now = ws.clock.now();
  try {
    const { audiences, surveys } = await rolledBack(ws.conn.store, async () => {
      const audiences = await evaluateAudiences({ model: ws.model, environment: env, store: ws.conn.store, now, loadUiSegment: uiSegmentLoader(ws) });
      const email = emailField(ws.model);
      const surveys = ws.model.surveyTargets.size
        ? await evaluateEligibility({ model: ws.model, environment: env, store: ws.conn.store, now, ...qualtricsReports(ws), ...(email ? { emailField: email } : {}) })
        : undefined;
      return { audiences, surveys };
    });
    return {
      status: 'computed',
      note: 'audience and survey counts from what Customer.io acknowledged; source rows: `tidemark sync plan SOURCE`',
      sources: [],
      audiences: audiences.segments.map((s) => ({ name: s.segment, joining: s.entering, leaving: s.leaving, ...(s.verdict !== 'publish' ? { held: s.reason ?? s.verdict } : {}) })),
      ...(surveys && surveys.targets.length
        ? {
            surveys: surveys.targets.map((t) => ({
              name: t.target,
              would_invite: t.eligible,
              held_out: t.held_out,
              in_window: t.in_window,
              already_invited: t.already_invited,
              capped: t.capped,
              opted_out: t.opted_out,
              bounced: t.bounced,
              no_email: t.no_email,
              claimed_by_other: t.claimed_by_other,
              waiting: t.waiting,
            })),
          }
        : {}),
    };
  } catch (err) {
    if (err instanceof UserError) return { status: 'not_computed', note: `audiences and surveys could not be evaluated: ${err.message}`, sources: [], audiences: [] };
    throw err;
  }
}
