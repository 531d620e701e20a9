/**
 * The survey tables (migration 0004): the invitations tidemark recorded, and the candidates an
 * eligibility run found. Everything per person happens in SQL (a million people never pass through
 * JavaScript), except the holdout hash, which is computed a page at a time.
 */
import type { AudienceContext } from './audiences.ts';
import type { SqlValue } from './sql/executor.ts';

/** What one target asks of the database: its audience, its moment window, its cap. */
export interface SurveyStageRequest {
  target: string;
  /** The audience segment whose `audience_candidates` are the starting set. */
  segment: string;
  /** The trigger event and its window: `fromMs ≤ occurred_ms ≤ toMs`, both edges in. */
  event: string;
  fromMs: number;
  toMs: number;
  /**
   * Invitations (or holdout decisions) of this target recorded at or after this instant (ISO) mean the
   * person was already handled for the moment now in the window.
   */
  handledSince: string;
  /**
   * Capped when `count(decisions, invited_at ≥ since, target in targets) ≥ max`; targets absent: all.
   * Holdout decisions count like invitations: the control group may be asked by other targets no more
   * often than the invited group, or the comparison between them measures the other surveys too.
   */
  cap?: { max: number; since: string; targets?: readonly string[] };
}

export interface SurveyStageCounts {
  audience: number;
  in_window: number;
  already_invited: number;
  capped: number;
  /** Left after the above, now in `survey_candidates` for the target. */
  staged: number;
}

/** Empties the environment's candidates before a run. */
export async function clearSurveyCandidates(ctx: AudienceContext): Promise<void> {
  await ctx.db.run(`DELETE FROM survey_candidates WHERE env = $1`, [ctx.env]);
}

/**
 * Stages a target's candidates: audience members whose trigger event lies in the window, not already
 * handled for it, and inside their cap. Resolves to the counts of each step.
 */
export async function stageSurveyTarget(ctx: AudienceContext, req: SurveyStageRequest): Promise<SurveyStageCounts> {
  const { db, env } = ctx;
  const params: SqlValue[] = [env, req.segment, req.target, req.event, req.fromMs, req.toMs, req.handledSince];
  // The form differs per dialect, because their planners fail differently without statistics (the
  // mirror and the candidates are rebuilt in bulk seconds before this runs):
  // - Postgres planned correlated probes as a scan per person (1 s for 2,000 people), so it joins grouped
  //   subqueries, which it hashes whatever its estimates say.
  // - SQLite materialised those grouped subqueries and scanned them whole for every candidate (quadratic:
  //   > 100 s at 1,000,000 people once invitations existed), so it probes `survey_invitations_person`
  //   (env, person_id, invited_at) per candidate instead: one index seek each.
  const pg = db.dialect === 'postgres';
  let capped = '0';
  let capJoin = '';
  if (req.cap) {
    params.push(req.cap.since, req.cap.max);
    const [since, max] = [`$${params.length - 1}`, `$${params.length}`];
    let scope = '';
    if (req.cap.targets) {
      // An empty list would be `IN ()`, which is not SQL: a cap shared with no target counts nothing.
      const names = req.cap.targets.length ? req.cap.targets : [''];
      scope = ` AND target IN (${names.map((t) => (params.push(t), `$${params.length}`)).join(', ')})`;
    }
    if (pg) {
      capJoin = `LEFT JOIN (SELECT person_id, COUNT(*) AS n FROM survey_invitations WHERE env = $1 AND invited_at >= ${since}${scope} GROUP BY person_id) c ON c.person_id = a.person_id`;
      capped = `CASE WHEN c.n >= ${max} THEN 1 ELSE 0 END`;
    } else {
      capped = `CASE WHEN (SELECT COUNT(*) FROM survey_invitations c WHERE c.env = $1 AND c.person_id = a.person_id AND c.invited_at >= ${since}${scope}) >= ${max} THEN 1 ELSE 0 END`;
    }
  }
  // The moment: the latest trigger inside the window (any qualifies; the latest is what a send window
  // measures the deadline from).
  const moments = `SELECT person_id, MAX(occurred_ms) AS moment_ms FROM mirror_events WHERE env = $1 AND name = $4 AND occurred_ms >= $5 AND occurred_ms <= $6 GROUP BY person_id`;
  const inWindow = pg
    ? `SELECT a.person_id, e.moment_ms, CASE WHEN h.person_id IS NULL THEN 0 ELSE 1 END AS handled, ${capped} AS capped
    FROM audience_candidates a
    JOIN (${moments}) e ON e.person_id = a.person_id
    LEFT JOIN (SELECT DISTINCT person_id FROM survey_invitations WHERE env = $1 AND target = $3 AND invited_at >= $7) h ON h.person_id = a.person_id
    ${capJoin}
    WHERE a.env = $1 AND a.segment = $2`
    : `SELECT a.person_id, e.moment_ms,
      CASE WHEN EXISTS (SELECT 1 FROM survey_invitations h WHERE h.env = $1 AND h.person_id = a.person_id AND h.invited_at >= $7 AND h.target = $3) THEN 1 ELSE 0 END AS handled,
      ${capped} AS capped
    FROM (${moments}) e
    JOIN audience_candidates a ON a.env = $1 AND a.segment = $2 AND a.person_id = e.person_id`;
  return db.transaction(async () => {
    const audience = Number((await db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM audience_candidates WHERE env = $1 AND segment = $2`, [env, req.segment]))?.n ?? 0);
    const funnel = await db.get<{ n: number; handled: number | null; capped: number | null }>(
      `SELECT COUNT(*) AS n, SUM(w.handled) AS handled, SUM(CASE WHEN w.handled = 0 THEN w.capped ELSE 0 END) AS capped FROM (${inWindow}) w`,
      params,
    );
    await db.run(`DELETE FROM survey_candidates WHERE env = $1 AND target = $2`, [env, req.target]);
    const staged = await db.run(
      `INSERT INTO survey_candidates (env, target, person_id, held_out, moment_ms)
       SELECT $1, $3, w.person_id, 0, w.moment_ms FROM (${inWindow}) w WHERE w.handled = 0 AND w.capped = 0`,
      params,
    );
    return { audience, in_window: Number(funnel?.n ?? 0), already_invited: Number(funnel?.handled ?? 0), capped: Number(funnel?.capped ?? 0), staged };
  });
}

/** Removes these people from the target's candidates; resolves to how many were candidates. */
export async function dropSurveyCandidates(ctx: AudienceContext, target: string, ids: Iterable<string>): Promise<number> {
  const { db, env } = ctx;
  const all = [...ids];
  let n = 0;
  for (let i = 0; i < all.length; i += 500) {
    const chunk = all.slice(i, i + 500);
    n += await db.run(`DELETE FROM survey_candidates WHERE env = $1 AND target = $2 AND person_id IN (${chunk.map((_, k) => `$${k + 3}`).join(', ')})`, [env, target, ...chunk]);
  }
  return n;
}

/**
 * Removes the target's candidates with no sendable email address in the mirror (absent, or not shaped
 * like one: the send checks each address again before importing). Resolves to how many.
 */
export async function dropSurveyCandidatesWithoutEmail(ctx: AudienceContext, target: string, field: string): Promise<number> {
  return ctx.db.run(
    `DELETE FROM survey_candidates WHERE env = $1 AND target = $2
     AND NOT EXISTS (SELECT 1 FROM mirror_attributes m WHERE m.env = $1 AND m.person_id = survey_candidates.person_id AND m.field = $3
                     AND m.value LIKE '%_@_%._%' AND m.value NOT LIKE '% %')`,
    [ctx.env, target, field],
  );
}

/** The eligible (not held-out, not waiting) candidates of a target, a page at a time, with their moment and zone value. */
export async function* surveyCandidateMoments(
  ctx: AudienceContext,
  target: string,
  zoneField: string | undefined,
  pageSize = 5000,
): AsyncGenerator<Array<{ person_id: string; moment_ms: number; zone: string | null }>> {
  const { db, env } = ctx;
  let after = '';
  for (;;) {
    const rows = await db.all<{ person_id: string; moment_ms: number | string; zone: string | null }>(
      zoneField
        ? `SELECT c.person_id, c.moment_ms, z.value AS zone FROM survey_candidates c
           LEFT JOIN mirror_attributes z ON z.env = c.env AND z.person_id = c.person_id AND z.field = $5
           WHERE c.env = $1 AND c.target = $2 AND c.held_out = 0 AND c.person_id > $3 ORDER BY c.person_id LIMIT $4`
        : `SELECT person_id, moment_ms, NULL AS zone FROM survey_candidates WHERE env = $1 AND target = $2 AND held_out = 0 AND person_id > $3 ORDER BY person_id LIMIT $4`,
      zoneField ? [env, target, after, pageSize, zoneField] : [env, target, after, pageSize],
    );
    if (rows.length === 0) return;
    yield rows.map((r) => ({ person_id: r.person_id, moment_ms: Number(r.moment_ms), zone: r.zone }));
    after = rows[rows.length - 1]!.person_id;
  }
}

/**
 * Marks candidates as waiting for their send window (`held_out = 2`): kept, so no target of lower
 * priority takes them this run, but neither invited nor held out; the next run in the window decides.
 * `ids` absent: every eligible candidate of the target. Resolves to how many.
 */
export async function markSurveyWaiting(ctx: AudienceContext, target: string, ids?: readonly string[]): Promise<number> {
  const { db, env } = ctx;
  if (!ids) return db.run(`UPDATE survey_candidates SET held_out = 2 WHERE env = $1 AND target = $2 AND held_out = 0`, [env, target]);
  let n = 0;
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    n += await db.run(`UPDATE survey_candidates SET held_out = 2 WHERE env = $1 AND target = $2 AND held_out = 0 AND person_id IN (${chunk.map((_, k) => `$${k + 3}`).join(', ')})`, [env, target, ...chunk]);
  }
  return n;
}

/** An eligible candidate with what the checks after staging read: their address, and their recorded decisions under a cap. */
export interface SurveyCandidateContact {
  person_id: string;
  /** The mirror's value of the email field (as acknowledged), or null (no field asked, or none held). */
  email: string | null;
  /** Decisions recorded for them with `invited_at ≥ cap.since` in the cap's scope; 0 without a cap. */
  decisions: number;
}

/**
 * The target's eligible candidates (not held out, not waiting), a page at a time in id order, with their
 * email and their recorded decisions under `cap` (the same count `stage` compared with the cap). For the
 * checks that need Qualtrics' view of each person, which are asked a page at a time.
 */
export async function* surveyCandidateContacts(
  ctx: AudienceContext,
  target: string,
  opts: { emailField?: string; cap?: { since: string; targets?: readonly string[] } },
  pageSize = 1000,
): AsyncGenerator<SurveyCandidateContact[]> {
  const { db, env } = ctx;
  let after = '';
  for (;;) {
    const params: SqlValue[] = [env, target, after, pageSize];
    let email = 'NULL';
    if (opts.emailField) {
      params.push(opts.emailField);
      email = `(SELECT m.value FROM mirror_attributes m WHERE m.env = c.env AND m.person_id = c.person_id AND m.field = $${params.length})`;
    }
    let decisions = '0';
    if (opts.cap) {
      params.push(opts.cap.since);
      const since = `$${params.length}`;
      let scope = '';
      if (opts.cap.targets) {
        const names = opts.cap.targets.length ? opts.cap.targets : [''];
        scope = ` AND i.target IN (${names.map((t) => (params.push(t), `$${params.length}`)).join(', ')})`;
      }
      decisions = `(SELECT COUNT(*) FROM survey_invitations i WHERE i.env = c.env AND i.person_id = c.person_id AND i.invited_at >= ${since}${scope})`;
    }
    const rows = await db.all<{ person_id: string; email: string | null; decisions: number | string }>(
      `SELECT c.person_id, ${email} AS email, ${decisions} AS decisions FROM survey_candidates c
       WHERE c.env = $1 AND c.target = $2 AND c.held_out = 0 AND c.person_id > $3 ORDER BY c.person_id LIMIT $4`,
      params,
    );
    if (rows.length === 0) return;
    yield rows.map((r) => ({ person_id: r.person_id, email: r.email ?? null, decisions: Number(r.decisions) }));
    after = rows[rows.length - 1]!.person_id;
  }
}

/** Removes from the target's candidates everyone another target already holds (staged earlier, so claimed first). */
export async function dropClaimedSurveyCandidates(ctx: AudienceContext, target: string): Promise<number> {
  return ctx.db.run(
    `DELETE FROM survey_candidates WHERE env = $1 AND target = $2
     AND EXISTS (SELECT 1 FROM survey_candidates o WHERE o.env = $1 AND o.person_id = survey_candidates.person_id AND o.target <> $2)`,
    [ctx.env, target],
  );
}

/** Marks the target's candidates for whom `held(id)` is true as held out, a page at a time; resolves to how many. */
export async function markSurveyHoldout(ctx: AudienceContext, target: string, held: (personId: string) => boolean, pageSize = 5000): Promise<number> {
  const { db, env } = ctx;
  let n = 0;
  for await (const page of surveyCandidatePages(ctx, target, false, pageSize)) {
    const out = page.filter(held);
    for (let i = 0; i < out.length; i += 500) {
      const chunk = out.slice(i, i + 500);
      n += await db.run(`UPDATE survey_candidates SET held_out = 1 WHERE env = $1 AND target = $2 AND person_id IN (${chunk.map((_, k) => `$${k + 3}`).join(', ')})`, [env, target, ...chunk]);
    }
  }
  return n;
}

/** The target's candidates (eligible, or held out), a page of person ids at a time, in id order. */
export async function* surveyCandidatePages(ctx: AudienceContext, target: string, heldOut: boolean, pageSize = 1000): AsyncGenerator<string[]> {
  const { db, env } = ctx;
  let after = '';
  for (;;) {
    const rows = await db.all<{ person_id: string }>(
      `SELECT person_id FROM survey_candidates WHERE env = $1 AND target = $2 AND held_out = $3 AND person_id > $4 ORDER BY person_id LIMIT ${Number(pageSize)}`,
      [env, target, heldOut ? 1 : 0, after],
    );
    if (rows.length === 0) return;
    yield rows.map((r) => r.person_id);
    after = rows[rows.length - 1]!.person_id;
  }
}

/** How many candidates the target has, eligible or held out. */
export async function countSurveyCandidates(ctx: AudienceContext, target: string, heldOut: boolean): Promise<number> {
  return Number((await ctx.db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM survey_candidates WHERE env = $1 AND target = $2 AND held_out = $3`, [ctx.env, target, heldOut ? 1 : 0]))?.n ?? 0);
}

/**
 * Records invitations (or holdout decisions, `heldOut`) of a target at `at`: call it only once Qualtrics
 * acknowledged them. Recording the same person, target and time twice changes nothing.
 */
export async function recordSurveyInvitations(
  ctx: AudienceContext,
  target: string,
  ids: readonly string[],
  opts: { at: string; heldOut: boolean; distributionId?: string },
): Promise<number> {
  const { db, env } = ctx;
  if (ids.length === 0) return 0;
  return db.transaction(async () => {
    let n = 0;
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      n += await db.run(
        `INSERT INTO survey_invitations (env, target, person_id, invited_at, held_out, distribution_id)
         VALUES ${chunk.map((_, k) => `($1, $2, $${k + 6}, $3, $4, $5)`).join(', ')}
         ON CONFLICT (env, target, person_id, invited_at) DO NOTHING`,
        [env, target, opts.at, opts.heldOut ? 1 : 0, opts.distributionId ?? null, ...chunk],
      );
    }
    return n;
  });
}
