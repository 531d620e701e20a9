/**
 * The survey send journal (migration 0005): what `tidemark surveys run` set out to send, and how far it
 * got. Every step a send takes against Qualtrics is written here before (the members, frozen) or right
 * after (the import id, the distribution id) Qualtrics acknowledged it, so a run killed at any point is
 * finished by the next one instead of being decided again.
 */
import type { AudienceContext } from './audiences.ts';

export type SendPhase = 'staged' | 'imported' | 'distributed' | 'recorded' | 'abandoned';

export interface SurveySend {
  send_id: string;
  target: string;
  survey_id: string;
  directory_id: string;
  mailing_list_id: string;
  batch_id: string;
  /** The run's clock when the send was staged; invitations are recorded at this instant. */
  planned_at: string;
  send_at: string;
  expires_at: string;
  phase: SendPhase;
  distribution_id: string | null;
  note: string | null;
}

export interface SendMember {
  seq: number;
  person_id: string;
  held_out: boolean;
  outcome: 'imported' | 'failed' | 'skipped' | null;
}

export interface SendImport {
  first_seq: number;
  last_seq: number;
  import_id: string;
  status: 'started' | 'complete';
}

export interface SendCounts {
  members: number;
  held_out: number;
  imported: number;
  failed: number;
  /** No email address Qualtrics could send to: never imported. */
  skipped: number;
}

/**
 * Stages a send: the journal row and its members, frozen from the target's current candidates (eligible
 * and held out), in one transaction. Resolves to the member counts.
 */
export async function stageSend(ctx: AudienceContext, send: Omit<SurveySend, 'phase' | 'distribution_id' | 'note'>, at: string): Promise<SendCounts> {
  const { db, env } = ctx;
  return db.transaction(async () => {
    await db.run(
      `INSERT INTO survey_sends (env, send_id, target, survey_id, directory_id, mailing_list_id, batch_id, planned_at, send_at, expires_at, phase, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'staged', $11)`,
      [env, send.send_id, send.target, send.survey_id, send.directory_id, send.mailing_list_id, send.batch_id, send.planned_at, send.send_at, send.expires_at, at],
    );
    // seq numbers the members in id order: the import requests are ranges of it.
    await db.run(
      `INSERT INTO survey_send_members (env, send_id, seq, person_id, held_out)
       SELECT $1, $2, ROW_NUMBER() OVER (ORDER BY held_out, person_id), person_id, held_out
       FROM survey_candidates WHERE env = $1 AND target = $3 AND held_out IN (0, 1)`,
      [env, send.send_id, send.target],
    );
    return sendCounts(ctx, send.send_id);
  });
}

export async function sendCounts(ctx: AudienceContext, sendId: string): Promise<SendCounts> {
  const row = await ctx.db.get<{ members: number; held_out: number | null; imported: number | null; failed: number | null; skipped: number | null }>(
    `SELECT COUNT(*) AS members, SUM(held_out) AS held_out,
       SUM(CASE WHEN outcome = 'imported' THEN 1 ELSE 0 END) AS imported,
       SUM(CASE WHEN outcome = 'failed' THEN 1 ELSE 0 END) AS failed,
       SUM(CASE WHEN outcome = 'skipped' THEN 1 ELSE 0 END) AS skipped
     FROM survey_send_members WHERE env = $1 AND send_id = $2`,
    [ctx.env, sendId],
  );
  return { members: Number(row?.members ?? 0), held_out: Number(row?.held_out ?? 0), imported: Number(row?.imported ?? 0), failed: Number(row?.failed ?? 0), skipped: Number(row?.skipped ?? 0) };
}

/** Sends not yet recorded (or abandoned), oldest first: a run finishes these before it evaluates anew. */
export async function openSends(ctx: AudienceContext): Promise<SurveySend[]> {
  return ctx.db.all<SurveySend>(
    `SELECT send_id, target, survey_id, directory_id, mailing_list_id, batch_id, planned_at, send_at, expires_at, phase, distribution_id, note
     FROM survey_sends WHERE env = $1 AND phase IN ('staged', 'imported', 'distributed') ORDER BY planned_at, send_id`,
    [ctx.env],
  );
}

export async function getSend(ctx: AudienceContext, sendId: string): Promise<SurveySend | undefined> {
  return ctx.db.get<SurveySend>(
    `SELECT send_id, target, survey_id, directory_id, mailing_list_id, batch_id, planned_at, send_at, expires_at, phase, distribution_id, note
     FROM survey_sends WHERE env = $1 AND send_id = $2`,
    [ctx.env, sendId],
  );
}

export async function setSendPhase(ctx: AudienceContext, sendId: string, phase: SendPhase, at: string, extra: { distribution_id?: string; note?: string } = {}): Promise<void> {
  await ctx.db.run(
    `UPDATE survey_sends SET phase = $3, updated_at = $4, distribution_id = COALESCE($5, distribution_id), note = COALESCE($6, note) WHERE env = $1 AND send_id = $2`,
    [ctx.env, sendId, phase, at, extra.distribution_id ?? null, extra.note ?? null],
  );
}

/** The members to import (not held out) with seq in [from, to], in seq order. */
export async function sendMembers(ctx: AudienceContext, sendId: string, from: number, to: number): Promise<SendMember[]> {
  const rows = await ctx.db.all<{ seq: number; person_id: string; held_out: number; outcome: SendMember['outcome'] }>(
    `SELECT seq, person_id, held_out, outcome FROM survey_send_members WHERE env = $1 AND send_id = $2 AND seq >= $3 AND seq <= $4 ORDER BY seq`,
    [ctx.env, sendId, from, to],
  );
  return rows.map((r) => ({ seq: Number(r.seq), person_id: r.person_id, held_out: Number(r.held_out) === 1, outcome: r.outcome }));
}

/** The seq range of the members to import (held-out members sort last and are never imported). */
export async function importRange(ctx: AudienceContext, sendId: string): Promise<{ first: number; last: number } | undefined> {
  const row = await ctx.db.get<{ lo: number | null; hi: number | null }>(
    `SELECT MIN(seq) AS lo, MAX(seq) AS hi FROM survey_send_members WHERE env = $1 AND send_id = $2 AND held_out = 0`,
    [ctx.env, sendId],
  );
  return row?.lo === null || row?.lo === undefined ? undefined : { first: Number(row.lo), last: Number(row.hi) };
}

export async function sendImports(ctx: AudienceContext, sendId: string): Promise<SendImport[]> {
  const rows = await ctx.db.all<SendImport>(
    `SELECT first_seq, last_seq, import_id, status FROM survey_send_imports WHERE env = $1 AND send_id = $2 ORDER BY first_seq`,
    [ctx.env, sendId],
  );
  return rows.map((r) => ({ ...r, first_seq: Number(r.first_seq), last_seq: Number(r.last_seq) }));
}

export async function recordImportStarted(ctx: AudienceContext, sendId: string, firstSeq: number, lastSeq: number, importId: string): Promise<void> {
  await ctx.db.run(
    `INSERT INTO survey_send_imports (env, send_id, first_seq, last_seq, import_id, status) VALUES ($1, $2, $3, $4, $5, 'started')`,
    [ctx.env, sendId, firstSeq, lastSeq, importId],
  );
}

/**
 * Marks an import complete and each of its members' outcome, in one transaction: `failedSeqs` are the
 * rows Qualtrics' per-row report says failed; every other row of the range was imported.
 */
export async function recordImportOutcome(ctx: AudienceContext, sendId: string, firstSeq: number, lastSeq: number, failedSeqs: readonly number[]): Promise<void> {
  const { db, env } = ctx;
  await db.transaction(async () => {
    await db.run(
      `UPDATE survey_send_members SET outcome = 'imported' WHERE env = $1 AND send_id = $2 AND seq >= $3 AND seq <= $4 AND held_out = 0 AND outcome IS NULL`,
      [env, sendId, firstSeq, lastSeq],
    );
    for (let i = 0; i < failedSeqs.length; i += 500) {
      const chunk = failedSeqs.slice(i, i + 500);
      await db.run(
        `UPDATE survey_send_members SET outcome = 'failed' WHERE env = $1 AND send_id = $2 AND seq IN (${chunk.map((_, k) => `$${k + 3}`).join(', ')})`,
        [env, sendId, ...chunk],
      );
    }
    await db.run(`UPDATE survey_send_imports SET status = 'complete' WHERE env = $1 AND send_id = $2 AND first_seq = $3`, [env, sendId, firstSeq]);
  });
}

/** Members with no email address Qualtrics could send to: settled before their import, never imported. */
export async function markSkipped(ctx: AudienceContext, sendId: string, seqs: readonly number[]): Promise<void> {
  const { db, env } = ctx;
  await db.transaction(async () => {
    for (let i = 0; i < seqs.length; i += 500) {
      const chunk = seqs.slice(i, i + 500);
      await db.run(
        `UPDATE survey_send_members SET outcome = 'skipped' WHERE env = $1 AND send_id = $2 AND outcome IS NULL AND seq IN (${chunk.map((_, k) => `$${k + 3}`).join(', ')})`,
        [env, sendId, ...chunk],
      );
    }
  });
}

/**
 * Records the send's invitations (imported members, `held_out = 0`) and holdout decisions (held-out
 * members, `held_out = 1`) at the send's planned instant, and marks it recorded, in one transaction:
 * recorded once, whatever happens after.
 */
export async function recordSendInvitations(ctx: AudienceContext, send: SurveySend, at: string): Promise<{ invited: number; held_out: number }> {
  const { db, env } = ctx;
  return db.transaction(async () => {
    const invited = await db.run(
      `INSERT INTO survey_invitations (env, target, person_id, invited_at, held_out, distribution_id)
       SELECT $1, $3, person_id, $4, 0, $5 FROM survey_send_members WHERE env = $1 AND send_id = $2 AND held_out = 0 AND outcome = 'imported'
       ON CONFLICT (env, target, person_id, invited_at) DO NOTHING`,
      [env, send.send_id, send.target, send.planned_at, send.distribution_id],
    );
    const held_out = await db.run(
      `INSERT INTO survey_invitations (env, target, person_id, invited_at, held_out, distribution_id)
       SELECT $1, $3, person_id, $4, 1, NULL FROM survey_send_members WHERE env = $1 AND send_id = $2 AND held_out = 1
       ON CONFLICT (env, target, person_id, invited_at) DO NOTHING`,
      [env, send.send_id, send.target, send.planned_at],
    );
    await setSendPhase(ctx, send.send_id, 'recorded', at);
    return { invited, held_out };
  });
}

/**
 * The declared payload fields' acknowledged values for these people, from the mirror (what Customer.io
 * holds): person id → field → the value as stored (`value`, plus `ts_ms` for timestamps).
 */
export async function payloadValues(
  ctx: AudienceContext,
  ids: readonly string[],
  fields: readonly string[],
): Promise<Map<string, Map<string, { value: string; ts_ms: number | null }>>> {
  const out = new Map<string, Map<string, { value: string; ts_ms: number | null }>>();
  if (ids.length === 0 || fields.length === 0) return out;
  const { db, env } = ctx;
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    const params = [env, ...fields, ...chunk];
    const f = fields.map((_, k) => `$${k + 2}`).join(', ');
    const p = chunk.map((_, k) => `$${k + 2 + fields.length}`).join(', ');
    const rows = await db.all<{ person_id: string; field: string; value: string; ts_ms: number | null }>(
      `SELECT person_id, field, value, ts_ms FROM mirror_attributes WHERE env = $1 AND field IN (${f}) AND person_id IN (${p})`,
      params,
    );
    for (const r of rows) {
      let m = out.get(r.person_id);
      if (!m) out.set(r.person_id, (m = new Map()));
      m.set(r.field, { value: String(r.value), ts_ms: r.ts_ms === null || r.ts_ms === undefined ? null : Number(r.ts_ms) });
    }
  }
  return out;
}

/** Everyone a send recorded as invited (not held out) — for tests and reports; counts elsewhere. */
export async function countInvitations(ctx: AudienceContext, target?: string): Promise<{ invited: number; held_out: number }> {
  const row = await ctx.db.get<{ invited: number | null; held_out: number | null }>(
    `SELECT SUM(CASE WHEN held_out = 0 THEN 1 ELSE 0 END) AS invited, SUM(held_out) AS held_out FROM survey_invitations WHERE env = $1${target ? ' AND target = $2' : ''}`,
    target ? [ctx.env, target] : [ctx.env],
  );
  return { invited: Number(row?.invited ?? 0), held_out: Number(row?.held_out ?? 0) };
}

/**
 * Every Qualtrics distribution tidemark created in this environment (the journal's, and those recorded
 * with invitations), so that what Qualtrics reports about them is never counted a second time.
 */
export async function tidemarkDistributionIds(ctx: AudienceContext): Promise<Set<string>> {
  const rows = await ctx.db.all<{ id: string }>(
    `SELECT distribution_id AS id FROM survey_sends WHERE env = $1 AND distribution_id IS NOT NULL
     UNION SELECT distribution_id AS id FROM survey_invitations WHERE env = $1 AND distribution_id IS NOT NULL`,
    [ctx.env],
  );
  return new Set(rows.map((r) => r.id));
}
