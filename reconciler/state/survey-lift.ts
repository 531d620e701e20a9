/**
 * The counts behind a survey target's lift (issue 13 point 3), in SQL over the state's own tables: who
 * the target decided about (`survey_invitations`: invited, or held out) and what they did afterwards (the
 * mirror's `mirror_events`, what Customer.io acknowledged). Counts only: no id leaves the database.
 *
 * Per person, their FIRST decision for the target counts, and only it: a person invited again for a later
 * moment stays in the group and at the instant they were first put in, so each person is counted once,
 * in one group, and a later invitation cannot stretch or restart their window. (The holdout is a hash of
 * target and id, so a person's later decisions are in the same group unless the holdout share changed.)
 *
 * The outcome: an event named `event` with `decided < occurred_ms ≤ decided + within` (an event at the
 * very instant of the decision cannot be its effect; one exactly `within` later still counts). A person
 * whose window has not closed at `now` (`decided + within > now`) is `open`: counted apart, never in the
 * rates, since they may still have the outcome.
 */
import type { AudienceContext } from './audiences.ts';

export interface SurveyLiftRequest {
  target: string;
  event: string;
  withinMs: number;
  nowMs: number;
}

export interface LiftGroupCounts {
  /** People whose first decision put them in this group. */
  decided: number;
  /** Of those, whose window is still open at `now`: not counted yet. */
  open: number;
  /** Whose window has closed: the denominator. */
  closed: number;
  /** Of the closed, who had the outcome event inside their window. */
  reached: number;
}

export interface SurveyLiftCounts {
  invited: LiftGroupCounts;
  holdout: LiftGroupCounts;
}

/** `invited_at` (ISO-8601 UTC text, see the state README) as epoch milliseconds: the one dialect difference. */
function epochMs(dialect: 'sqlite' | 'postgres', col: string): string {
  return dialect === 'postgres'
    ? `CAST(ROUND(EXTRACT(EPOCH FROM CAST(${col} AS TIMESTAMPTZ)) * 1000) AS BIGINT)`
    : // julianday is a double: about 20 µs of precision today, so rounding gives the exact millisecond.
      `CAST(ROUND((julianday(${col}) - 2440587.5) * 86400000) AS INTEGER)`;
}

export async function surveyLiftCounts(ctx: AudienceContext, req: SurveyLiftRequest): Promise<SurveyLiftCounts> {
  const { db, env } = ctx;
  // The decision's time is joined back by the primary key (env, target, person_id, invited_at), so each
  // person has exactly one first decision. `held_out` 0 and 1 only: 2 (waiting) never reaches this table.
  const sql = `
    WITH firsts AS (
      SELECT person_id, MIN(invited_at) AS invited_at FROM survey_invitations WHERE env = $1 AND target = $2 GROUP BY person_id
    ),
    decided AS (
      SELECT f.person_id, i.held_out, ${epochMs(db.dialect, 'f.invited_at')} AS at_ms
      FROM firsts f JOIN survey_invitations i ON i.env = $1 AND i.target = $2 AND i.person_id = f.person_id AND i.invited_at = f.invited_at
      WHERE i.held_out IN (0, 1)
    ),
    hits AS (
      SELECT DISTINCT d.person_id FROM decided d
      JOIN mirror_events e ON e.env = $1 AND e.person_id = d.person_id AND e.name = $3 AND e.occurred_ms > d.at_ms AND e.occurred_ms <= d.at_ms + $4
    )
    SELECT d.held_out AS held_out,
      COUNT(*) AS decided,
      SUM(CASE WHEN d.at_ms + $4 > $5 THEN 1 ELSE 0 END) AS open,
      SUM(CASE WHEN d.at_ms + $4 <= $5 AND h.person_id IS NOT NULL THEN 1 ELSE 0 END) AS reached
    FROM decided d LEFT JOIN hits h ON h.person_id = d.person_id
    GROUP BY d.held_out`;
  const rows = await db.all<{ held_out: number | string; decided: number | string; open: number | string | null; reached: number | string | null }>(sql, [
    env,
    req.target,
    req.event,
    req.withinMs,
    req.nowMs,
  ]);
  const group = (heldOut: number): LiftGroupCounts => {
    const r = rows.find((x) => Number(x.held_out) === heldOut);
    const decided = Number(r?.decided ?? 0);
    const open = Number(r?.open ?? 0);
    return { decided, open, closed: decided - open, reached: Number(r?.reached ?? 0) };
  };
  return { invited: group(0), holdout: group(1) };
}
