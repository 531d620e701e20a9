/**
 * The survey response ledger and cursors (migration 0007): every response tidemark read, by webhook or by
 * pull, once, with what became of it; and per survey, how far the pull has read.
 *
 * Writing a response back to Customer.io also records it where the audience mirror reads what tidemark
 * delivered (the snapshot tables, under the response sources the caller names), in the same transaction
 * that marks it `written`: a reason code is then usable in segment conditions exactly when Customer.io
 * acknowledged it, and never before.
 */
import { createHash } from 'node:crypto';
import { InternalError } from '../core/diagnostics.ts';
import type { AudienceContext } from './audiences.ts';
import { lockSourceForWrite, logChangedKeys } from './snapshot-changes.ts';

export type ResponseOutcome = 'pending' | 'written' | 'unknown_person' | 'late' | 'unmapped' | 'no_answer';
export type ResponseVia = 'pull' | 'webhook';

export interface LedgerRow {
  survey_id: string;
  response_id: string;
  target: string;
  person_id: string | null;
  /** ISO-8601 UTC. */
  recorded_at: string;
  answer: string | null;
  reason_code: string | null;
  outcome: ResponseOutcome;
  via: ResponseVia;
}

/** What an acknowledged write leaves for the audience mirror (see `markWritten`). */
export interface MirrorWrite {
  survey_id: string;
  response_id: string;
  /** The person attribute written, under its response source (keyed by person; the newest answer wins). */
  attribute?: { source: string; person_id: string; field: string; value: string; recorded_ms: number };
  /** The event written, under its response source (keyed by response). */
  event?: { source: string; person_id: string; name: string; recorded_ms: number; data: Record<string, string> };
}

const ROWS_PER_STATEMENT = 200;

export async function getCursor(ctx: AudienceContext, surveyId: string): Promise<string | undefined> {
  const row = await ctx.db.get<{ cursor_at: string }>('SELECT cursor_at FROM survey_response_cursors WHERE env = $1 AND survey_id = $2', [ctx.env, surveyId]);
  return row?.cursor_at;
}

/** Moves the survey's cursor forward to `cursorAt` (never back: two pulls racing keep the later one). */
export async function advanceCursor(ctx: AudienceContext, surveyId: string, cursorAt: string, at: string): Promise<void> {
  const current = await getCursor(ctx, surveyId);
  if (current !== undefined && Date.parse(current) >= Date.parse(cursorAt)) return;
  await ctx.db.run(
    `INSERT INTO survey_response_cursors (env, survey_id, cursor_at, updated_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (env, survey_id) DO UPDATE SET cursor_at = excluded.cursor_at, updated_at = excluded.updated_at`,
    [ctx.env, surveyId, cursorAt, at],
  );
}

/**
 * Inserts responses into the ledger, each unless it is there already (arrived earlier, by either way).
 * Resolves to the ids newly inserted; the others are duplicates. One transaction.
 */
export async function insertResponses(ctx: AudienceContext, rows: readonly LedgerRow[], at: string): Promise<Set<string>> {
  const { db, env } = ctx;
  const inserted = new Set<string>();
  if (!rows.length) return inserted;
  await db.transaction(async () => {
    for (const r of rows) {
      const n = await db.run(
        `INSERT INTO survey_responses (env, survey_id, response_id, target, person_id, recorded_at, answer, reason_code, outcome, via, received_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (env, survey_id, response_id) DO NOTHING`,
        [env, r.survey_id, r.response_id, r.target, r.person_id, r.recorded_at, r.answer, r.reason_code, r.outcome, r.via, at],
      );
      if (n > 0) inserted.add(r.response_id);
    }
  });
  return inserted;
}

/** The responses waiting to be written (oldest first), of these surveys, or of all. */
export async function pendingResponses(ctx: AudienceContext, surveyIds?: readonly string[]): Promise<LedgerRow[]> {
  const rows = await ctx.db.all<LedgerRow>(
    `SELECT survey_id, response_id, target, person_id, recorded_at, answer, reason_code, outcome, via FROM survey_responses
     WHERE env = $1 AND outcome = 'pending' ORDER BY recorded_at, survey_id, response_id`,
    [ctx.env],
  );
  return surveyIds ? rows.filter((r) => surveyIds.includes(r.survey_id)) : rows;
}

export async function getResponse(ctx: AudienceContext, surveyId: string, responseId: string): Promise<LedgerRow | undefined> {
  return ctx.db.get<LedgerRow>(
    `SELECT survey_id, response_id, target, person_id, recorded_at, answer, reason_code, outcome, via FROM survey_responses
     WHERE env = $1 AND survey_id = $2 AND response_id = $3`,
    [ctx.env, surveyId, responseId],
  );
}

/** Each person's invitation times (epoch ms, `held_out = 0`) by these targets, for the late check. */
export async function invitationTimes(ctx: AudienceContext, targets: readonly string[], personIds: readonly string[]): Promise<Map<string, Array<{ target: string; invited_ms: number }>>> {
  const out = new Map<string, Array<{ target: string; invited_ms: number }>>();
  const ids = [...new Set(personIds)];
  if (!ids.length || !targets.length) return out;
  for (let i = 0; i < ids.length; i += ROWS_PER_STATEMENT) {
    const chunk = ids.slice(i, i + ROWS_PER_STATEMENT);
    const ph = chunk.map((_, j) => `$${j + 2}`).join(', ');
    const rows = await ctx.db.all<{ target: string; person_id: string; invited_at: string }>(
      `SELECT target, person_id, invited_at FROM survey_invitations WHERE env = $1 AND held_out = 0 AND person_id IN (${ph})`,
      [ctx.env, ...chunk],
    );
    for (const r of rows) {
      if (!targets.includes(r.target)) continue;
      const list = out.get(r.person_id) ?? [];
      list.push({ target: r.target, invited_ms: Date.parse(r.invited_at) });
      out.set(r.person_id, list);
    }
  }
  return out;
}

async function responseSourceId(ctx: AudienceContext, source: string): Promise<number> {
  const find = async () => (await ctx.db.get<{ sid: number }>('SELECT sid FROM snapshot_sources WHERE env = $1 AND source = $2', [ctx.env, source]))?.sid;
  for (let attempt = 0; attempt < 20; attempt++) {
    const sid = await find();
    if (sid !== undefined) return Number(sid);
    try {
      await ctx.db.transaction(() =>
        ctx.db.run(
          `INSERT INTO snapshot_sources (sid, env, source)
           SELECT COALESCE(MAX(sid), 0) + 1, CAST($1 AS TEXT), CAST($2 AS TEXT) FROM snapshot_sources`,
          [ctx.env, source],
        ),
      );
    } catch (e) {
      if (!ctx.db.isUniqueViolation(e)) throw e;
    }
  }
  throw new InternalError(`could not allocate a snapshot id for ${source}`);
}

const hashOf = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 32);

async function upsertMirrorRow(ctx: AudienceContext, sid: number, key: string, payload: string, ordering: number, at: string, keepNewest: boolean): Promise<void> {
  const { db } = ctx;
  await lockSourceForWrite(db, sid);
  if (keepNewest) {
    const existing = await db.get<{ ordering: number | null }>('SELECT ordering FROM snapshot_entries WHERE sid = $1 AND row_key = $2', [sid, key]);
    if (existing?.ordering !== undefined && existing.ordering !== null && Number(existing.ordering) > ordering) return;
  }
  await logChangedKeys(db, ctx.env, sid, 'SELECT CAST($1 AS TEXT) AS row_key', [key]);
  await db.run(
    `INSERT INTO snapshot_entries (sid, row_key, hash, ordering, sent_at) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (sid, row_key) DO UPDATE SET hash = excluded.hash, ordering = excluded.ordering, sent_at = excluded.sent_at`,
    [sid, key, hashOf(payload), ordering, at],
  );
  await db.run(`INSERT INTO snapshot_payloads (sid, row_key, payload) VALUES ($1, $2, $3) ON CONFLICT (sid, row_key) DO UPDATE SET payload = excluded.payload`, [sid, key, payload]);
}

/**
 * Marks acknowledged writes `written` and records them for the audience mirror, in one transaction. A
 * person's attribute keeps the newest answer's value (by recorded time), as Customer.io does when the
 * newer one is written last; `attributeTimes` tells the caller beforehand whether to send it at all.
 */
export async function markWritten(ctx: AudienceContext, writes: readonly MirrorWrite[], at: string): Promise<number> {
  if (!writes.length) return 0;
  const { db, env } = ctx;
  const sids = new Map<string, number>();
  const sidOf = async (source: string) => {
    let sid = sids.get(source);
    if (sid === undefined) sids.set(source, (sid = await responseSourceId(ctx, source)));
    return sid;
  };
  // Allocated before the transaction: an allocation that collides retries in its own savepoint.
  for (const w of writes) {
    if (w.attribute) await sidOf(w.attribute.source);
    if (w.event) await sidOf(w.event.source);
  }
  let n = 0;
  await db.transaction(async () => {
    for (const w of writes) {
      n += await db.run(`UPDATE survey_responses SET outcome = 'written', written_at = $4 WHERE env = $1 AND survey_id = $2 AND response_id = $3 AND outcome = 'pending'`, [
        env,
        w.survey_id,
        w.response_id,
        at,
      ]);
      if (w.attribute) {
        const a = w.attribute;
        await upsertMirrorRow(ctx, await sidOf(a.source), a.person_id, JSON.stringify({ records: 'person', attributes: { [a.field]: a.value } }), a.recorded_ms, at, true);
      }
      if (w.event) {
        const e = w.event;
        const payload = JSON.stringify({ records: 'event', attributes: e.data, event: { name: e.name, person: e.person_id, timestamp: Math.floor(e.recorded_ms / 1000) } });
        await upsertMirrorRow(ctx, await sidOf(e.source), w.response_id, payload, e.recorded_ms, at, false);
      }
    }
  });
  return n;
}

/** The newest recorded time (epoch ms) of the attribute already recorded for each person under `source`. */
export async function attributeTimes(ctx: AudienceContext, source: string, personIds: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const sid = (await ctx.db.get<{ sid: number }>('SELECT sid FROM snapshot_sources WHERE env = $1 AND source = $2', [ctx.env, source]))?.sid;
  if (sid === undefined || !personIds.length) return out;
  const ids = [...new Set(personIds)];
  for (let i = 0; i < ids.length; i += ROWS_PER_STATEMENT) {
    const chunk = ids.slice(i, i + ROWS_PER_STATEMENT);
    const ph = chunk.map((_, j) => `$${j + 2}`).join(', ');
    const rows = await ctx.db.all<{ row_key: string; ordering: number | null }>(`SELECT row_key, ordering FROM snapshot_entries WHERE sid = $1 AND row_key IN (${ph})`, [sid, ...chunk]);
    for (const r of rows) if (r.ordering !== null) out.set(r.row_key, Number(r.ordering));
  }
  return out;
}

/** Responses per outcome (counts only), for one target or all. */
export async function countResponses(ctx: AudienceContext, target?: string): Promise<Record<ResponseOutcome, number>> {
  const rows = await ctx.db.all<{ outcome: ResponseOutcome; n: number }>(
    `SELECT outcome, COUNT(*) AS n FROM survey_responses WHERE env = $1${target ? ' AND target = $2' : ''} GROUP BY outcome`,
    target ? [ctx.env, target] : [ctx.env],
  );
  const out: Record<ResponseOutcome, number> = { pending: 0, written: 0, unknown_person: 0, late: 0, unmapped: 0, no_answer: 0 };
  for (const r of rows) out[r.outcome] = Number(r.n);
  return out;
}

/**
 * The answers of responses set aside as `unmapped` (no reason code named them when they came), recorded
 * at or after `since`, per target and answer, with how many. The answer is a choice's recode; the caller
 * decides which are still unmapped under today's codes and what may be shown.
 */
export async function unmappedAnswers(ctx: AudienceContext, since: string): Promise<Array<{ target: string; answer: string; n: number }>> {
  const rows = await ctx.db.all<{ target: string; answer: string; n: number }>(
    `SELECT target, answer, COUNT(*) AS n FROM survey_responses
     WHERE env = $1 AND outcome = 'unmapped' AND answer IS NOT NULL AND recorded_at >= $2
     GROUP BY target, answer ORDER BY target, answer`,
    [ctx.env, since],
  );
  return rows.map((r) => ({ target: r.target, answer: r.answer, n: Number(r.n) }));
}
