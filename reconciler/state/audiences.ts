/**
 * The audience tables (migration 0003): the mirror rebuilt from the sync snapshots, the candidates an
 * evaluation found, the membership last published, and the members of segments built in Customer.io's UI.
 *
 * The mirror is rebuilt in SQL from `snapshot_payloads` (what Customer.io acknowledged), so a million
 * people never pass through JavaScript. The JSON functions are the one place the two dialects differ:
 * SQLite's `json_each`/`json_extract`, Postgres' `jsonb_each`/`->>`.
 */
import type { SqlDriver, SqlValue } from './sql/executor.ts';

export interface AudienceContext {
  db: SqlDriver;
  env: string;
}

/** A source whose snapshot feeds the mirror. */
export interface MirrorSource {
  source: string;
  records: 'person' | 'event' | 'object';
}

export interface MirrorCounts {
  people: number;
  attributes: number;
  events: number;
}

/**
 * Replaces the environment's mirror with what the snapshots hold now. `timestampFields`: the attributes
 * whose (epoch-second) values are instants, stored as `ts_ms` too.
 */
export async function rebuildMirror(ctx: AudienceContext, sources: readonly MirrorSource[], timestampFields: readonly string[]): Promise<MirrorCounts> {
  const { db, env } = ctx;
  const pg = db.dialect === 'postgres';
  const stamps = JSON.stringify([...timestampFields]);
  return db.transaction(async () => {
    for (const t of ['mirror_attributes', 'mirror_events', 'mirror_people']) await db.run(`DELETE FROM ${t} WHERE env = $1`, [env]);
    for (const s of sources) {
      const row = await db.get<{ sid: number }>('SELECT sid FROM snapshot_sources WHERE env = $1 AND source = $2', [env, s.source]);
      if (!row) continue;
      if (s.records === 'person') {
        // Two sources never own one field (rule OWN001); if they did, the later source would win here.
        await db.run(
          pg
            ? `INSERT INTO mirror_attributes (env, person_id, field, value, num, ts_ms)
               SELECT $1, p.row_key, j.key,
                 CASE jsonb_typeof(j.value) WHEN 'string' THEN j.value #>> '{}' ELSE j.value::text END,
                 CASE WHEN jsonb_typeof(j.value) = 'number' THEN (j.value::text)::double precision END,
                 CASE WHEN jsonb_typeof(j.value) = 'number' AND j.key IN (SELECT jsonb_array_elements_text($3::jsonb))
                      THEN round((j.value::text)::numeric * 1000)::bigint END
               FROM snapshot_payloads p, jsonb_each(p.payload::jsonb -> 'attributes') j
               WHERE p.sid = $2 AND jsonb_typeof(j.value) <> 'null'
               ON CONFLICT (env, person_id, field) DO UPDATE SET value = excluded.value, num = excluded.num, ts_ms = excluded.ts_ms`
            : `INSERT INTO mirror_attributes (env, person_id, field, value, num, ts_ms)
               SELECT $1, p.row_key, j.key,
                 CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(j.value AS TEXT) END,
                 CASE WHEN j.type IN ('integer', 'real') THEN j.value END,
                 CASE WHEN j.type IN ('integer', 'real') AND j.key IN (SELECT value FROM json_each($3))
                      THEN CAST(round(j.value * 1000) AS INTEGER) END
               FROM snapshot_payloads p, json_each(p.payload, '$.attributes') j
               WHERE p.sid = $2 AND j.type <> 'null'
               ON CONFLICT (env, person_id, field) DO UPDATE SET value = excluded.value, num = excluded.num, ts_ms = excluded.ts_ms`,
          [env, row.sid, stamps],
        );
        await db.run(
          `INSERT INTO mirror_people (env, person_id) SELECT $1, row_key FROM snapshot_payloads WHERE sid = $2
           ON CONFLICT (env, person_id) DO NOTHING`,
          [env, row.sid],
        );
      } else if (s.records === 'event') {
        const [person, name, ts] = pg
          ? [`p.payload::jsonb -> 'event' ->> 'person'`, `p.payload::jsonb -> 'event' ->> 'name'`, `(p.payload::jsonb -> 'event' ->> 'timestamp')::bigint`]
          : [`json_extract(p.payload, '$.event.person')`, `json_extract(p.payload, '$.event.name')`, `CAST(json_extract(p.payload, '$.event.timestamp') AS INTEGER)`];
        await db.run(
          `INSERT INTO mirror_events (env, person_id, name, occurred_ms)
           SELECT $1, ${person}, ${name}, ${ts} * 1000 FROM snapshot_payloads p WHERE p.sid = $2 AND ${name} IS NOT NULL AND ${person} IS NOT NULL`,
          [env, row.sid],
        );
        await db.run(
          `INSERT INTO mirror_people (env, person_id) SELECT DISTINCT $1, ${person} FROM snapshot_payloads p WHERE p.sid = $2 AND ${person} IS NOT NULL
           ON CONFLICT (env, person_id) DO NOTHING`,
          [env, row.sid],
        );
      }
    }
    // Filled in bulk and queried at once, before autovacuum has looked: without statistics Postgres plans the
    // probes and anti joins for one row, and a delta over 100,000 people becomes quadratic.
    if (pg) await db.exec('ANALYZE mirror_people; ANALYZE mirror_attributes; ANALYZE mirror_events;');
    const count = async (t: string) => Number((await db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${t} WHERE env = $1`, [env]))?.n ?? 0);
    return { people: await count('mirror_people'), attributes: await count('mirror_attributes'), events: await count('mirror_events') };
  });
}

/**
 * Stores a segment's members as found by an evaluation: `select` is the compiled query (its parameters
 * in `params`, written with `$n` placeholders) returning `person_id`.
 */
export async function storeCandidates(ctx: AudienceContext, segment: string, select: string, params: readonly SqlValue[]): Promise<number> {
  const { db, env } = ctx;
  const n = params.length;
  return db.transaction(async () => {
    await db.run(`DELETE FROM audience_candidates WHERE env = $1 AND segment = $2`, [env, segment]);
    const stored = await db.run(`INSERT INTO audience_candidates (env, segment, person_id) SELECT $${n + 1}, $${n + 2}, m.person_id FROM (${select}) m`, [...params, env, segment]);
    if (db.dialect === 'postgres') await db.exec('ANALYZE audience_candidates; ANALYZE audience_members;');
    return stored;
  });
}

export interface MembershipDelta {
  members: number;
  entering: number;
  leaving: number;
}

/** Members found, and how they differ from what was last published (counts only). */
export async function membershipDelta(ctx: AudienceContext, segment: string): Promise<MembershipDelta> {
  const { db, env } = ctx;
  const one = async (sql: string) => Number((await db.get<{ n: number }>(sql, [env, segment]))?.n ?? 0);
  return {
    members: await one(`SELECT COUNT(*) AS n FROM audience_candidates WHERE env = $1 AND segment = $2`),
    entering: await one(
      `SELECT COUNT(*) AS n FROM audience_candidates c WHERE c.env = $1 AND c.segment = $2
       AND NOT EXISTS (SELECT 1 FROM audience_members m WHERE m.env = c.env AND m.segment = c.segment AND m.person_id = c.person_id)`,
    ),
    leaving: await one(
      `SELECT COUNT(*) AS n FROM audience_members m WHERE m.env = $1 AND m.segment = $2
       AND NOT EXISTS (SELECT 1 FROM audience_candidates c WHERE c.env = m.env AND c.segment = m.segment AND c.person_id = m.person_id)`,
    ),
  };
}

/** How many people are candidates of more than one of these segments (an exclusive group's real overlap). */
export async function candidateOverlap(ctx: AudienceContext, segments: readonly string[]): Promise<number> {
  if (segments.length < 2) return 0;
  const marks = segments.map((_, i) => `$${i + 2}`).join(', ');
  const row = await ctx.db.get<{ n: number }>(
    `SELECT COUNT(*) AS n FROM (SELECT person_id FROM audience_candidates WHERE env = $1 AND segment IN (${marks}) GROUP BY person_id HAVING COUNT(*) > 1) o`,
    [ctx.env, ...segments],
  );
  return Number(row?.n ?? 0);
}

/** Whether anything was ever published for this segment (a first publish has no "previous" size). */
export async function publishedCount(ctx: AudienceContext, segment: string): Promise<number> {
  return Number((await ctx.db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM audience_members WHERE env = $1 AND segment = $2`, [ctx.env, segment]))?.n ?? 0);
}

/** The ids to add (candidates not published) or remove (published, no longer candidates), a page at a time. */
export async function* membershipChanges(ctx: AudienceContext, segment: string, direction: 'add' | 'remove', pageSize = 1000): AsyncGenerator<string[]> {
  const { db, env } = ctx;
  const [from, other] = direction === 'add' ? ['audience_candidates', 'audience_members'] : ['audience_members', 'audience_candidates'];
  let after = '';
  for (;;) {
    const rows = await db.all<{ person_id: string }>(
      `SELECT a.person_id FROM ${from} a WHERE a.env = $1 AND a.segment = $2 AND a.person_id > $3
       AND NOT EXISTS (SELECT 1 FROM ${other} b WHERE b.env = a.env AND b.segment = a.segment AND b.person_id = a.person_id)
       ORDER BY a.person_id LIMIT ${Number(pageSize)}`,
      [env, segment, after],
    );
    if (rows.length === 0) return;
    yield rows.map((r) => r.person_id);
    after = rows[rows.length - 1]!.person_id;
  }
}

/** Records that Customer.io acknowledged these additions or removals (only then does published state move). */
export async function recordPublished(ctx: AudienceContext, segment: string, direction: 'add' | 'remove', ids: readonly string[], at: string): Promise<void> {
  const { db, env } = ctx;
  if (ids.length === 0) return;
  await db.transaction(async () => {
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const marks = chunk.map((_, k) => `$${k + 4}`).join(', ');
      if (direction === 'add') {
        await db.run(
          `INSERT INTO audience_members (env, segment, person_id, published_at) SELECT $1, $2, v.id, $3 FROM (SELECT person_id AS id FROM audience_candidates WHERE env = $1 AND segment = $2 AND person_id IN (${marks})) v WHERE true
           ON CONFLICT (env, segment, person_id) DO NOTHING`,
          [env, segment, at, ...chunk],
        );
      } else {
        await db.run(`DELETE FROM audience_members WHERE env = $1 AND segment = $2 AND $3 = $3 AND person_id IN (${marks})`, [env, segment, at, ...chunk]);
      }
    }
  });
}

/**
 * Replaces the stored members of a segment built in Customer.io's UI: `fill` is handed an `add` to call
 * once per page it reads (through the App API); all of it happens in one transaction, so an evaluation
 * never sees half a segment.
 */
export async function replaceUiSegmentMembers(ctx: AudienceContext, segment: string, fill: (add: (ids: readonly string[]) => Promise<void>) => Promise<void>): Promise<number> {
  const { db, env } = ctx;
  return db.transaction(async () => {
    await db.run(`DELETE FROM ui_segment_members WHERE env = $1 AND segment = $2`, [env, segment]);
    let n = 0;
    await fill(async (ids) => {
      for (let i = 0; i < ids.length; i += 500) {
        const chunk = ids.slice(i, i + 500);
        n += await db.run(
          `INSERT INTO ui_segment_members (env, segment, person_id) VALUES ${chunk.map((_, k) => `($1, $2, $${k + 3})`).join(', ')} ON CONFLICT (env, segment, person_id) DO NOTHING`,
          [env, segment, ...chunk],
        );
      }
    });
    return n;
  });
}
