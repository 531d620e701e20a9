/**
 * The audience tables (migrations 0003 and 0006): the mirror of the sync snapshots, the candidates an
 * evaluation found, the membership last published, and the members of segments built in Customer.io's UI.
 *
 * The mirror is built in SQL from `snapshot_payloads` (what Customer.io acknowledged), so a million
 * people never pass through JavaScript, and after its first fill only the snapshot rows that changed are
 * rebuilt. The JSON functions are the one place the two dialects differ:
 * SQLite's `json_each`/`json_extract`, Postgres' `jsonb_each`/`->>`.
 *
 * Incremental evaluation keeps its state without a table of its own: `mirror_touched` outlives an update
 * (the people no evaluation has seen change yet), and each segment's evaluation mark is a `cursors` row
 * (`audience-eval:<segment>`), written in the transaction that stores its candidates.
 */
import { atMost } from '../core/lanes.ts';
import { lockSourcesForMirror } from './snapshot-changes.ts';
import type { SqlDriver, SqlValue } from './sql/executor.ts';
import { ADVISORY_CLASS, type PostgresDriver } from './sql/postgres-driver.ts';

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
 * What the mirror of an environment was built with; a change of stamps, of the kept fields or of a source's
 * kind rebuilds it whole.
 */
interface BuildConfig {
  stamps: string[];
  sources: Array<{ source: string; records: 'person' | 'event' }>;
  /** The attributes kept, sorted; absent: every attribute (and every build made before fields were chosen). */
  fields?: string[];
}

interface BuildRow {
  config: string;
  people: number;
  attributes: number;
  events: number;
}

/**
 * Brings the environment's mirror up to what the snapshots hold now. `timestampFields`: the attributes
 * whose (epoch-second) values are instants, stored as `ts_ms` too.
 *
 * Only what changed is rebuilt: the snapshot entries whose hash or acknowledgement time differ from those
 * the mirror was built from (`mirror_rows`), the keys that appeared, and those gone. A person's attributes
 * are rebuilt from all person sources together (so the result is what a whole rebuild gives), an event
 * row's event on its own. The first run, a new timestamp field list, or a source that changed its kind
 * fills the mirror whole. It reads only the merged snapshot (acknowledged rows). A whole fill, and any
 * update on SQLite or inside a caller's transaction, is one transaction: a run killed anywhere leaves the
 * mirror as it was. On Postgres an update commits in steps, its person and event parts side by side
 * (`UpdatePart` says why a run killed between them loses nothing: the next update completes it).
 *
 * `fields`: the attributes to keep (spec/mirrored-fields.ts: those tidemark reads back); absent, all.
 * A different list fills the mirror whole, as a new timestamp field does (only the kept ones count).
 */
export async function rebuildMirror(ctx: AudienceContext, sources: readonly MirrorSource[], timestampFields: readonly string[], fields?: readonly string[]): Promise<MirrorCounts> {
  const { db, env } = ctx;
  const kept = fields ? [...new Set(fields)].sort() : undefined;
  const keptSet = kept ? new Set(kept) : undefined;
  const config: BuildConfig = {
    stamps: [...new Set(timestampFields)].filter((f) => !keptSet || keptSet.has(f)).sort(),
    sources: sources.filter((s): s is MirrorSource & { records: 'person' | 'event' } => s.records === 'person' || s.records === 'event').map((s) => ({ source: s.source, records: s.records })),
    ...(kept ? { fields: kept } : {}),
  };
  // Where transactions can run side by side (Postgres, outside a caller's transaction: `concurrency`), the
  // update's parts each commit on a connection of their own (see `UpdatePart`). Otherwise one transaction
  // does it all, as SQLite must.
  const width = concurrency(ctx);
  // Two evaluations of one environment at once (two processes, one state): the second waits for the
  // first's whole update, then finds the change logs it emptied empty. An update in parts spans several
  // transactions, so its lock is a session's, on a connection of its own (freed with the session if the
  // process dies); within one transaction, the transaction's.
  const unlock = width > 1 ? await lockMirror(db, env) : undefined;
  try {
    return await fillOrUpdate(ctx, config, width);
  } finally {
    await unlock?.();
  }
}

/** `rebuildMirror`'s work, under the environment's mirror lock: `width` > 1 updates in parts. */
async function fillOrUpdate(ctx: AudienceContext, config: BuildConfig, width: number): Promise<MirrorCounts> {
  const { db, env } = ctx;
  const pg = db.dialect === 'postgres';
  const inParts = width > 1;
  const started = await db.transaction(async (): Promise<{ counts: MirrorCounts } | { before: BuildConfig; parts: UpdatePart[]; recovered: number }> => {
    await lockSourcesForMirror(db, env);
    if (pg && !inParts) await db.run('SELECT pg_advisory_xact_lock($1, hashtext(current_schema() || $2))', [ADVISORY_CLASS, mirrorLockName(env)]);
    const built = await db.get<BuildRow>('SELECT config, people, attributes, events FROM mirror_builds WHERE env = $1', [env]);
    const before = built ? (JSON.parse(built.config) as BuildConfig) : undefined;
    const kindOf = new Map(before?.sources.map((s) => [s.source, s.records]));
    const whole =
      !built ||
      JSON.stringify(before!.stamps) !== JSON.stringify(config.stamps) ||
      JSON.stringify(before!.fields ?? null) !== JSON.stringify(config.fields ?? null) ||
      config.sources.some((s) => kindOf.has(s.source) && kindOf.get(s.source) !== s.records);
    if (whole) {
      const counts = await fillMirror(ctx, config);
      await db.run(
        `INSERT INTO mirror_builds (env, config, people, attributes, events) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (env) DO UPDATE SET config = excluded.config, people = excluded.people, attributes = excluded.attributes, events = excluded.events`,
        [env, JSON.stringify(config), counts.people, counts.attributes, counts.events],
      );
      await analyzeAfterBuild(ctx, Infinity, counts.people);
      return { counts };
    }
    const { parts, recovered } = await startUpdate(ctx, config, before!);
    if (inParts) return { before: before!, parts, recovered };
    // SQLite: the changed values lie each on its own page of the field-first mirror (~100,000 pages after 1%
    // of 1,000,000 people changed). Spilled to the WAL one by one as the 64 MB cache fills, they cost 3.3–5.3 s
    // of the write; with up to 256 MB of them held until the commit, 2.1 s (512 MB: 1.7 s at 930 MB peak RSS).
    // A number sets the threshold but also reads as a boolean from its low byte (65,536 turns spilling off), so
    // ON follows. 1 is the default: spill once the cache is full.
    if (!pg) await db.exec(`PRAGMA cache_spill = ${MIRROR_UPDATE_SPILL_PAGES}; PRAGMA cache_spill = ON`);
    try {
      let moved = 0;
      for (const part of parts) moved += await updatePart(ctx, config, before!, part);
      return { counts: await finishUpdate(ctx, config, moved + recovered) };
    } finally {
      if (!pg) await db.exec('PRAGMA cache_spill = 1');
    }
  });
  if ('counts' in started) return started.counts;
  let moved = 0;
  await atMost(
    width,
    started.parts.map((part) => async () => {
      // Read after the await: `moved += await …` would read moved before it, and the part that ends last
      // would overwrite the other's count.
      const n = await db.transaction(async () => {
        await lockSourcesForMirror(db, env);
        return updatePart(ctx, config, started.before, part);
      });
      moved += n;
    }),
  );
  return db.transaction(async () => {
    await lockSourcesForMirror(db, env);
    return finishUpdate(ctx, config, moved + started.recovered);
  });
}

/** The advisory lock an environment's mirror update holds: in tidemark's class, keyed by schema too. */
const mirrorLockName = (env: string) => ` mirror ${env}`;

/**
 * Postgres: takes the environment's mirror lock for a session, on a dedicated connection, and resolves to
 * what releases it (ending the connection frees it too).
 */
async function lockMirror(db: SqlDriver, env: string): Promise<() => Promise<void>> {
  const client = await (db as unknown as PostgresDriver).connectDedicated();
  // A connection the server drops ends the session and frees the lock; the update's own connections report it.
  client.on('error', () => {});
  try {
    await client.query('SELECT pg_advisory_lock($1, hashtext(current_schema() || $2))', [ADVISORY_CLASS, mirrorLockName(env)]);
  } catch (err) {
    await client.end().catch(() => {});
    throw err;
  }
  return () => client.end();
}

/**
 * Statistics after the mirror moved: filled in bulk and queried at once, before autovacuum has looked,
 * without statistics Postgres plans the probes and anti joins for one row, and a delta over 100,000 people
 * becomes quadratic. A small update leaves the statistics true enough.
 */
async function analyzeAfterBuild(ctx: AudienceContext, moved: number, people: number): Promise<void> {
  const { db } = ctx;
  if (db.dialect !== 'postgres') return;
  if (moved > 0.05 * Math.max(people, 1)) {
    await db.exec('ANALYZE mirror_people; ANALYZE mirror_attributes; ANALYZE mirror_events; ANALYZE mirror_rows;');
  }
  // A first publish fills audience_members with millions of rows that autovacuum has not looked at yet.
  // Planned as if it were empty, each incremental count started from the segment's published members
  // (1,000,000 people, the evaluation after the first publish: 20 segments 57.5 s, the largest 10.8 s).
  const stale = await db.get<{ stale: boolean }>(
    `SELECT s.n_mod_since_analyze > 0.1 * GREATEST(c.reltuples, 1000) AS stale
     FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid WHERE s.relid = to_regclass('audience_members')`,
  );
  if (stale?.stale) await db.exec('ANALYZE audience_members');
}

/**
 * The fields the environment's mirror holds, by one index seek per field (a loose index scan: the table
 * is keyed (env, field, person_id), and a plain DISTINCT would read every row).
 */
async function mirrorFields(ctx: AudienceContext): Promise<string[]> {
  const rows = await ctx.db.all<{ field: string }>(
    `WITH RECURSIVE f (field) AS (
       SELECT MIN(field) FROM mirror_attributes WHERE env = $1
       UNION ALL
       SELECT (SELECT MIN(a.field) FROM mirror_attributes a WHERE a.env = $1 AND a.field > f.field) FROM f WHERE f.field IS NOT NULL
     ) SELECT field FROM f WHERE field IS NOT NULL`,
    [ctx.env],
  );
  return rows.map((r) => r.field);
}

async function sourceId(ctx: AudienceContext, source: string): Promise<number | undefined> {
  return (await ctx.db.get<{ sid: number }>('SELECT sid FROM snapshot_sources WHERE env = $1 AND source = $2', [ctx.env, source]))?.sid;
}

/** How `attributeInsert` writes. */
interface AttributeInsert {
  /** The table written: `mirror_attributes` or a scratch table keyed alike. */
  into: string;
  /** Rows written in the table's key order (Postgres keeps rows where they were written). */
  ordered?: boolean;
  /** `from` binds `p.sid` (filter on $2). */
  bySid?: boolean;
  /**
   * More than one person source writes the table: a later source's value replaces an earlier one's, as in
   * a whole rebuild. Two sources never own one field (rule OWN001), so with one person source nothing can
   * conflict and the insert is a plain one: Postgres' speculative insertion cost 1.5 s of the 2.0 s of
   * writing 300,000 changed people's rows to a scratch table (and a whole fill's 30,000,000 rows pay it too).
   */
  upsert: boolean;
  /** Only the attributes named by $4, a JSON array (the build's kept fields). */
  kept?: boolean;
}

/**
 * Postgres: the mirror's `value`, `num` and `ts_ms` columns of the jsonb value `v` of attribute `key`
 * ($3 = the timestamp fields as a JSON array). A string is its text, anything else its JSON text; a number
 * is also `num`, and an instant in milliseconds when its field is a timestamp field.
 */
function pgValueColumns(v: string, key: string): string {
  return `CASE jsonb_typeof(${v}) WHEN 'string' THEN ${v} #>> '{}' ELSE ${v}::text END,
         CASE WHEN jsonb_typeof(${v}) = 'number' THEN (${v}::text)::double precision END,
         CASE WHEN jsonb_typeof(${v}) = 'number' AND ${key} IN (SELECT jsonb_array_elements_text($3::jsonb))
              THEN round((${v}::text)::numeric * 1000)::bigint END`;
}

/**
 * `INSERT … SELECT` of person attributes from the payloads `from` names (it must bind `p`, the payload row:
 * `row_key`, `payload`, and `sid` unless `bySid` is false; $1 = env, $2 = sid, $3 = the timestamp fields as a
 * JSON array; $4 the kept fields with `kept`: `attributeParams` builds them).
 */
function attributeInsert(pg: boolean, from: string, opts: AttributeInsert): string {
  const { into, ordered = false, bySid = true, upsert, kept = false } = opts;
  // Postgres keeps rows in the order they were written: written field by field, a condition's field is a
  // contiguous run of pages instead of a row on every page of the table.
  const order = ordered ? ' ORDER BY 3, 2' : '';
  const conflict = upsert ? '\n       ON CONFLICT (env, person_id, field) DO UPDATE SET value = excluded.value, num = excluded.num, ts_ms = excluded.ts_ms' : '';
  if (pg && kept) {
    // Only the kept fields, each looked up in the parsed payload (an object's keys are sorted in jsonb, so
    // a lookup is a binary search), where jsonb_each made a row of every attribute and the filter dropped
    // most: 10,000 changed people's 31 attributes, 12 kept, 572 ms → 284 ms. OFFSET 0 keeps the subquery
    // whole, so each payload is parsed once and not once per kept field.
    return `INSERT INTO ${into} (env, person_id, field, value, num, ts_ms)
       SELECT $1, p.row_key, j.key,
         ${pgValueColumns('j.value', 'j.key')}
       FROM (SELECT p.row_key, p.payload::jsonb -> 'attributes' AS attributes FROM ${from}${bySid ? ' WHERE p.sid = $2' : ''} OFFSET 0) p,
         LATERAL (SELECT k.key, p.attributes -> k.key AS value FROM jsonb_array_elements_text($4::jsonb) k (key)) j
       WHERE jsonb_typeof(j.value) <> 'null'${order}${conflict}`;
  }
  return pg
    ? `INSERT INTO ${into} (env, person_id, field, value, num, ts_ms)
       SELECT $1, p.row_key, j.key,
         ${pgValueColumns('j.value', 'j.key')}
       FROM ${from}, jsonb_each(p.payload::jsonb -> 'attributes') j
       WHERE ${bySid ? 'p.sid = $2 AND ' : ''}jsonb_typeof(j.value) <> 'null'${kept ? ' AND j.key IN (SELECT jsonb_array_elements_text($4::jsonb))' : ''}${order}${conflict}`
    : `INSERT INTO ${into} (env, person_id, field, value, num, ts_ms)
       SELECT $1, p.row_key, j.key,
         CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(j.value AS TEXT) END,
         CASE WHEN j.type IN ('integer', 'real') THEN j.value END,
         CASE WHEN j.type IN ('integer', 'real') AND j.key IN (SELECT value FROM json_each($3))
              THEN CAST(round(j.value * 1000) AS INTEGER) END
       FROM ${from}, json_each(p.payload, '$.attributes') j
       WHERE ${bySid ? 'p.sid = $2 AND ' : ''}j.type <> 'null'${kept ? ' AND j.key IN (SELECT value FROM json_each($4))' : ''}${order}${conflict}`;
}

/** The parameters of an `attributeInsert` for `config` (`kept` set when it keeps only some fields). */
function attributeParams(env: string, sid: number, config: BuildConfig): { params: SqlValue[]; kept: boolean } {
  const params: SqlValue[] = [env, sid, JSON.stringify(config.stamps)];
  if (config.fields) params.push(JSON.stringify(config.fields));
  return { params, kept: !!config.fields };
}

/** `INSERT … SELECT` of the events of the payloads `from` names ($1 = env, $2 = sid, $3 = source). */
function eventInsert(pg: boolean, from: string, ordered = false): string {
  const [person, name, ts] = pg
    ? [`p.payload::jsonb -> 'event' ->> 'person'`, `p.payload::jsonb -> 'event' ->> 'name'`, `(p.payload::jsonb -> 'event' ->> 'timestamp')::bigint`]
    : [`json_extract(p.payload, '$.event.person')`, `json_extract(p.payload, '$.event.name')`, `CAST(json_extract(p.payload, '$.event.timestamp') AS INTEGER)`];
  return `INSERT INTO mirror_events (env, person_id, name, occurred_ms, source, row_key)
     SELECT $1, ${person}, ${name}, ${ts} * 1000, $3, p.row_key FROM ${from} WHERE p.sid = $2 AND ${name} IS NOT NULL AND ${person} IS NOT NULL${ordered ? ' ORDER BY 3, 4' : ''}`;
}

/**
 * The whole mirror, from every payload. Each source's keys are recorded (with the entry's hash and
 * acknowledgement time) before its payloads are read: on Postgres, where each statement sees what was
 * committed when it began, the content is then never older than what `mirror_rows` says it was built
 * from, so a row acknowledged meanwhile differs next run and is rebuilt.
 */
async function fillMirror(ctx: AudienceContext, config: BuildConfig): Promise<MirrorCounts> {
  const { db, env } = ctx;
  const pg = db.dialect === 'postgres';
  const persons = config.sources.filter((s) => s.records === 'person').length;
  // Sorting thirty million rows, and the hash joins of an update, in memory; SET LOCAL ends with the transaction.
  if (pg) await db.exec(`SET LOCAL work_mem = '256MB'`);
  for (const t of ['mirror_attributes', 'mirror_events', 'mirror_people', 'mirror_rows', 'mirror_touched', 'mirror_touched_fields', 'mirror_touched_events']) await db.run(`DELETE FROM ${t} WHERE env = $1`, [env]);
  // Read whole below: what was logged before is in it.
  await db.run('DELETE FROM snapshot_changes WHERE sid IN (SELECT sid FROM snapshot_sources WHERE env = $1)', [env]);
  // Nobody's stored membership can be carried over a whole fill: every segment is evaluated whole next.
  await db.run(`DELETE FROM cursors WHERE env = $1 AND substr(name, 1, ${EVALUATION_MARK.length}) = $2`, [env, EVALUATION_MARK]);
  for (const s of config.sources) {
    const sid = await sourceId(ctx, s.source);
    if (sid === undefined) continue;
    await db.run(
      `INSERT INTO mirror_rows (env, source, row_key, hash, sent_at)
       SELECT $1, $2, e.row_key, e.hash, e.sent_at FROM snapshot_entries e
       WHERE e.sid = $3 AND EXISTS (SELECT 1 FROM snapshot_payloads p WHERE p.sid = e.sid AND p.row_key = e.row_key)`,
      [env, s.source, sid],
    );
    if (s.records === 'person') {
      const { params, kept } = attributeParams(env, sid, config);
      await db.run(attributeInsert(pg, 'snapshot_payloads p', { into: 'mirror_attributes', ordered: pg, upsert: persons > 1, kept }), params);
      await db.run(`INSERT INTO mirror_people (env, person_id) SELECT env, row_key FROM mirror_rows WHERE env = $1 AND source = $2 ON CONFLICT (env, person_id) DO NOTHING`, [env, s.source]);
    } else {
      await db.run(eventInsert(pg, 'snapshot_payloads p', pg), [env, sid, s.source]);
      await db.run(
        `INSERT INTO mirror_people (env, person_id) SELECT DISTINCT env, person_id FROM mirror_events WHERE env = $1 AND source = $2 ON CONFLICT (env, person_id) DO NOTHING`,
        [env, s.source],
      );
    }
  }
  const count = async (t: string) => Number((await db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${t} WHERE env = $1`, [env]))?.n ?? 0);
  return { people: await count('mirror_people'), attributes: await count('mirror_attributes'), events: await count('mirror_events') };
}

/**
 * `mirror_touched.attrs` during an update, for a person rebuilt now who was already marked 2 (anything may
 * have changed) by an earlier update no evaluation has read: rebuilt as 1 is, then 2 again.
 */
const REBUILT_ANYTHING = 6;

/** How many pages the SQLite mirror update may hold before spilling dirty ones (4 KiB pages: 256 MB). */
const MIRROR_UPDATE_SPILL_PAGES = 65_536;

/**
 * One part of an update: the person sources together (a person's attributes come from all of them), or
 * the event sources (each event row on its own). On Postgres outside a caller's transaction the parts
 * are committed each in its own transaction, side by side on two connections (1,000,000 people, 1%
 * changed: the person part ~2.8 s and the event part ~2.5 s, one core each), then `finishUpdate` decides
 * who is one of the mirror's people. What keeps a kill between commits harmless:
 * - each part empties the change logs of its own sources in its own commit, so what it did is never redone
 *   and what it did not is still logged;
 * - each part moves its own count in `mirror_builds` (attributes, events) in the same commit;
 * - the event part lists the people its rows concern in `mirror_touched_events`, never in `mirror_touched`,
 *   which the person part writes: two transactions inserting the same people in different orders could
 *   wait for each other. `finishUpdate` moves them over; one that did not run leaves them for the next;
 * - the person part leaves every person it touched marked 2 or 4 when it commits (1 and 6 exist only
 *   inside it), and `startUpdate` moves whoever an interrupted update left in `mirror_touched_events` to
 *   `mirror_touched` marked 2 (anything may have changed);
 * - `finishUpdate` recomputes who is a person for everyone in `mirror_touched`, whoever listed them.
 */
interface UpdatePart {
  records: 'person' | 'event';
  /** The sources of this kind, of the model now and of the last build (those dropped since). */
  sources: Array<{ source: string; records: 'person' | 'event' }>;
}

/**
 * The first step of an update (its own transaction, or the start of the single one): puts right what an
 * interrupted update left, empties the work table and says which parts there are.
 */
async function startUpdate(ctx: AudienceContext, config: BuildConfig, before: BuildConfig): Promise<{ parts: UpdatePart[]; recovered: number }> {
  const { db, env } = ctx;
  // People the event part of an interrupted update listed: the last step that would have moved them over
  // did not run. (Marks 0, 1 and 6 never outlive the transaction that sets them.)
  const recovered = await db.run(
    `INSERT INTO mirror_touched (env, person_id, attrs) SELECT env, person_id, 2 FROM mirror_touched_events WHERE env = $1
     ON CONFLICT (env, person_id) DO UPDATE SET attrs = 2`,
    [env],
  );
  await db.run('DELETE FROM mirror_touched_events WHERE env = $1', [env]);
  // mirror_touched is not emptied: it keeps the people of earlier updates that no evaluation has seen yet.
  await db.run('DELETE FROM mirror_work WHERE env = $1', [env]);
  // The change logs were written since the last update: with the sizes of the last (emptied) ones,
  // Postgres hashed each source's whole snapshot to join them (1,000,000 people, 10,000 logged: 0.8 s a
  // source, against a probe per logged key).
  if (db.dialect === 'postgres') await db.exec('ANALYZE snapshot_changes');
  const current = new Set(config.sources.map((s) => s.source));
  // A source dropped from the model keeps no mirror: all its keys are gone.
  const all = [...config.sources, ...before.sources.filter((s) => !current.has(s.source))];
  const parts = (['person', 'event'] as const).map((records) => ({ records, sources: all.filter((s) => s.records === records) })).filter((p) => p.sources.length > 0);
  // What an interrupted update left counts as moved: finishUpdate decides those people again.
  return { parts, recovered };
}

/**
 * Rebuilds what changed in one part's sources since the mirror was last built: the keys to redo go to
 * `mirror_work` (entry differs from `mirror_rows`, or is new: `known = 0`; or is gone: `hash` NULL), the
 * people they concern to `mirror_touched` (person part) or `mirror_touched_events` (event part); then the
 * keys' records, and those people's attributes or those keys' events. Resolves to how many keys moved.
 */
async function updatePart(ctx: AudienceContext, config: BuildConfig, before: BuildConfig, part: UpdatePart): Promise<number> {
  const { db, env } = ctx;
  const pg = db.dialect === 'postgres';
  if (pg) {
    // Probes of a few thousand keys each: JIT compiling them (where a stale estimate passed the server's
    // threshold) costs more than it saves.
    await db.exec(`SET LOCAL work_mem = '256MB'; SET LOCAL jit = off`);
  }
  const current = new Set(config.sources.map((s) => s.source));
  const known = new Set(before.sources.map((s) => s.source));
  const all = part.sources;
  const sids = new Map<string, number>();
  /** Every snapshot the part accounts for: their change logs are read, and emptied at its end. */
  const logged: number[] = [];
  let moved = 0;
  for (const s of all) {
    const sid = current.has(s.source) ? await sourceId(ctx, s.source) : undefined;
    if (sid === undefined) {
      const gone = await sourceId(ctx, s.source);
      if (gone !== undefined) logged.push(gone);
      moved += await db.run(
        `INSERT INTO mirror_work (env, source, row_key, hash, sent_at, known) SELECT env, source, row_key, NULL, NULL, 1 FROM mirror_rows WHERE env = $1 AND source = $2`,
        [env, s.source],
      );
      continue;
    }
    sids.set(s.source, sid);
    logged.push(sid);
    if (known.has(s.source)) {
      // A source the mirror was built from: the keys its snapshot changed since are in its change log
      // (state/snapshot-changes.ts), each compared with what the mirror recorded for it. A logged key no
      // longer in the snapshot is gone; one the mirror never had (no payload then) and still without an
      // entry is nothing.
      moved += await db.run(
        `INSERT INTO mirror_work (env, source, row_key, hash, sent_at, known)
         SELECT $1, $2, c.row_key, e.hash, e.sent_at, CASE WHEN r.row_key IS NULL THEN 0 ELSE 1 END
         FROM snapshot_changes c
         LEFT JOIN snapshot_entries e ON e.sid = c.sid AND e.row_key = c.row_key
         LEFT JOIN mirror_rows r ON r.env = $1 AND r.source = $2 AND r.row_key = c.row_key
         WHERE c.sid = $3 AND (CASE WHEN e.row_key IS NULL THEN r.row_key IS NOT NULL
           ELSE (r.row_key IS NULL OR r.hash <> e.hash OR r.sent_at <> e.sent_at) END)`,
        [env, s.source, sid],
      );
      continue;
    }
    // A source new to the mirror: every entry is compared (its log may be partial: it was written only
    // while the source's snapshot and the mirror both existed).
    // Entries without a payload are never recorded in mirror_rows, so they come back here every run;
    // the sync engine always acknowledges with a payload, so there are none in practice.
    const differing = await db.run(
      `INSERT INTO mirror_work (env, source, row_key, hash, sent_at, known)
       SELECT $1, $2, e.row_key, e.hash, e.sent_at, CASE WHEN r.row_key IS NULL THEN 0 ELSE 1 END
       FROM snapshot_entries e LEFT JOIN mirror_rows r ON r.env = $1 AND r.source = $2 AND r.row_key = e.row_key
       WHERE e.sid = $3 AND (r.row_key IS NULL OR r.hash <> e.hash OR r.sent_at <> e.sent_at)`,
      [env, s.source, sid],
    );
    moved += differing;
    // Keys gone from the snapshot (rare: a removal or a dropped snapshot) are found by counting first, so
    // the usual run pays no anti join over every recorded key.
    const recorded = Number((await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM mirror_rows WHERE env = $1 AND source = $2', [env, s.source]))?.n ?? 0);
    const entries = Number((await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM snapshot_entries WHERE sid = $1', [sid]))?.n ?? 0);
    const unknown = Number((await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM mirror_work WHERE env = $1 AND source = $2 AND known = 0', [env, s.source]))?.n ?? 0);
    if (recorded - (entries - unknown) > 0) {
      moved += await db.run(
        `INSERT INTO mirror_work (env, source, row_key, hash, sent_at, known)
         SELECT r.env, r.source, r.row_key, NULL, NULL, 1 FROM mirror_rows r
         WHERE r.env = $1 AND r.source = $2 AND NOT EXISTS (SELECT 1 FROM snapshot_entries e WHERE e.sid = $3 AND e.row_key = r.row_key)`,
        [env, s.source, sid],
      );
    }
  }
  const forget = async () => {
    for (const sid of logged) await db.run('DELETE FROM snapshot_changes WHERE sid = $1', [sid]);
  };
  if (moved === 0) {
    await forget();
    return 0;
  }

  const work = `(SELECT row_key FROM mirror_work WHERE env = $1 AND source = $2)`;
  // No DISTINCT in the inserts into the touched tables (the conflict clause drops repeats): with it SQLite
  // walks mirror_events by person instead of probing it by row key.
  // Who is concerned: the keys of person sources are people; an event row concerns its old and new person.
  for (const s of all) {
    if (s.records === 'person') {
      await db.run(
        `INSERT INTO mirror_touched (env, person_id, attrs) SELECT env, row_key, 1 FROM mirror_work WHERE env = $1 AND source = $2
         ON CONFLICT (env, person_id) DO UPDATE SET attrs = CASE WHEN mirror_touched.attrs = 2 THEN ${REBUILT_ANYTHING} ELSE 1 END`,
        [env, s.source],
      );
    } else {
      await db.run(
        `INSERT INTO mirror_touched_events (env, person_id) SELECT env, person_id FROM mirror_events
         WHERE env = $1 AND source = $2 AND row_key IN ${work} ON CONFLICT (env, person_id) DO NOTHING`,
        [env, s.source],
      );
    }
  }
  // The keys' records first, then their content (see fillMirror for why this order). A key recorded before
  // and still there with a payload is rewritten in place, where deleting and inserting it again cost two
  // index writes (and on Postgres a new row version elsewhere: migration 13 leaves room for it on its page);
  // one gone or left without a payload loses its record; a new one gets one.
  for (const s of all) {
    const sid = sids.get(s.source);
    if (sid === undefined) {
      await db.run(`DELETE FROM mirror_rows WHERE env = $1 AND source = $2 AND row_key IN ${work}`, [env, s.source]);
      continue;
    }
    const payload = 'EXISTS (SELECT 1 FROM snapshot_payloads p WHERE p.sid = $3 AND p.row_key = w.row_key)';
    await db.run(
      `DELETE FROM mirror_rows WHERE env = $1 AND source = $2 AND row_key IN (
         SELECT w.row_key FROM mirror_work w WHERE w.env = $1 AND w.source = $2 AND w.known = 1 AND (w.hash IS NULL OR NOT ${payload}))`,
      [env, s.source, sid],
    );
    await db.run(
      `UPDATE mirror_rows SET hash = w.hash, sent_at = w.sent_at FROM mirror_work w
       WHERE mirror_rows.env = $1 AND mirror_rows.source = $2 AND mirror_rows.row_key = w.row_key
         AND w.env = $1 AND w.source = $2 AND w.known = 1 AND w.hash IS NOT NULL AND ${payload}`,
      [env, s.source, sid],
    );
    await db.run(
      `INSERT INTO mirror_rows (env, source, row_key, hash, sent_at)
       SELECT w.env, w.source, w.row_key, w.hash, w.sent_at FROM mirror_work w
       WHERE w.env = $1 AND w.source = $2 AND w.known = 0 AND w.hash IS NOT NULL AND ${payload}`,
      [env, s.source, sid],
    );
  }
  let events = 0;
  let attributes = 0;
  if (part.records === 'event') {
    for (const s of all) {
      events -= await db.run(`DELETE FROM mirror_events WHERE env = $1 AND source = $2 AND row_key IN ${work}`, [env, s.source]);
      const sid = sids.get(s.source);
      if (sid === undefined) continue;
      const from = `(SELECT row_key FROM mirror_work WHERE env = $1 AND source = $3 AND hash IS NOT NULL) w JOIN snapshot_payloads p ON p.row_key = w.row_key`;
      events += await db.run(eventInsert(pg, from), [env, sid, s.source]);
      await db.run(
        `INSERT INTO mirror_touched_events (env, person_id) SELECT env, person_id FROM mirror_events
         WHERE env = $1 AND source = $2 AND row_key IN ${work} ON CONFLICT (env, person_id) DO NOTHING`,
        [env, s.source],
      );
    }
  } else {
    attributes = await updateAttributes(ctx, config, before, sids);
  }
  await db.run('UPDATE mirror_builds SET attributes = attributes + $2, events = events + $3 WHERE env = $1', [env, attributes, events]);
  await db.run(`DELETE FROM mirror_work WHERE env = $1 AND source IN (${all.map((_, i) => `$${i + 2}`).join(', ')})`, [env, ...all.map((s) => s.source)]);
  await forget();
  return moved;
}

/**
 * The person part's attributes: those of people whose person rows changed are rebuilt from every person
 * source, in the model's order, as a whole rebuild would, into mirror_attr_work; then only the rows that
 * differ from the mirror's are written. Then each person the part touched is marked for the evaluation.
 * Resolves to how the attribute count moved.
 */
async function updateAttributes(ctx: AudienceContext, config: BuildConfig, before: BuildConfig, sids: ReadonlyMap<string, number>): Promise<number> {
  const { db, env } = ctx;
  const pg = db.dialect === 'postgres';
  // The mirror is keyed field first, so one person's rows lie on as many pages as they have fields: reading
  // them back, or rewriting every row of every such person, touches most pages of a large mirror. So what
  // they were is found without reading the mirror when the change log can tell.
  await db.run('DELETE FROM mirror_attr_work WHERE env = $1', [env]);
  // Who changed was written just now: without fresh sizes Postgres joins the payloads by scanning them.
  if (pg) await db.exec('ANALYZE mirror_touched');
  const persons = config.sources.filter((s) => s.records === 'person').map((s) => s.source);
  const personsBefore = new Set(before.sources.filter((s) => s.records === 'person').map((s) => s.source));
  const precise = persons.length === personsBefore.size && persons.every((p) => personsBefore.has(p));
  const only = persons.length === 1 ? sids.get(persons[0]!) : undefined;
  let moved: number;
  if (pg && precise && only !== undefined) {
    moved = await attributesByDiff(ctx, config, only);
  } else {
    for (const s of config.sources) {
      const sid = sids.get(s.source);
      if (s.records !== 'person' || sid === undefined) continue;
      const { params, kept } = attributeParams(env, sid, config);
      await db.run(
        attributeInsert(pg, `(SELECT person_id FROM mirror_touched WHERE env = $1 AND attrs IN (1, ${REBUILT_ANYTHING})) t JOIN snapshot_payloads p ON p.row_key = t.person_id`, { into: 'mirror_attr_work', upsert: persons.length > 1, kept }),
        params,
      );
    }
    moved = precise ? await attributesFromLog(ctx, config, sids) : await attributesByProbe(ctx);
  }
  await db.run('DELETE FROM mirror_attr_work WHERE env = $1', [env]);
  // Kept for the next evaluation, which starts from these people: attrs = 2, anything about them may have
  // changed; 4, only the attributes listed in mirror_touched_fields (and perhaps their events): their
  // person rows were there before and still are, and both versions of their attributes were compared.
  // Marks of earlier updates stay: a person rebuilt now who was 2 stays 2 (REBUILT_ANYTHING), one who was
  // 4 keeps the fields listed then. (3, only their events moved, is finishUpdate's.)
  const marks = persons.map((_, i) => `$${i + 2}`).join(', ');
  const appearedOrGone = persons.length
    ? `EXISTS (SELECT 1 FROM mirror_work w WHERE w.env = $1 AND w.source IN (${marks}) AND w.row_key = mirror_touched.person_id AND (w.known = 0 OR w.hash IS NULL))`
    : 'true';
  await db.run(
    `UPDATE mirror_touched SET attrs = CASE WHEN attrs = 1 AND ${precise ? 'true' : 'false'} AND NOT ${appearedOrGone} THEN 4 ELSE 2 END
     WHERE env = $1 AND attrs IN (1, ${REBUILT_ANYTHING})`,
    [env, ...persons],
  );
  return moved;
}

/**
 * The last step of an update: the event part's people join `mirror_touched`, and who is one of the mirror's
 * people is decided again for everyone there; the build's config is recorded. `moved`: keys the parts
 * moved, plus people an interrupted update left. Resolves to the counts.
 */
async function finishUpdate(ctx: AudienceContext, config: BuildConfig, moved: number): Promise<MirrorCounts> {
  const { db, env } = ctx;
  const persons = config.sources.filter((s) => s.records === 'person').map((s) => s.source);
  const marks = persons.map((_, i) => `$${i + 2}`).join(', ');
  let people = 0;
  if (moved > 0) {
    await db.run(
      `INSERT INTO mirror_touched (env, person_id, attrs) SELECT env, person_id, 0 FROM mirror_touched_events WHERE env = $1
       ON CONFLICT (env, person_id) DO NOTHING`,
      [env],
    );
    await db.run('DELETE FROM mirror_touched_events WHERE env = $1', [env]);
    const touched = `(SELECT person_id FROM mirror_touched WHERE env = $1)`;
    // A touched person is one of the mirror's people while a person row or an event of theirs is recorded.
    // Only those who stopped or started being one move: deleting and inserting every touched person again
    // left each of their rows a new version the visibility map does not yet call visible, so every segment's
    // probe of mirror_people fetched its heap page too (Postgres: 10,001 heap fetches a segment, 1% changed).
    // Each test a probe per person, written as a scalar subquery: as EXISTS under OR, Postgres hashed every
    // person source's recorded key to test 10,000 people (1,000,000 people: 1.3 s).
    const recorded = (id: string) =>
      `(${persons.length ? `(SELECT 1 FROM mirror_rows r WHERE r.env = $1 AND r.source IN (${marks}) AND r.row_key = ${id} LIMIT 1) IS NOT NULL OR ` : ''}
         (SELECT 1 FROM mirror_events ev WHERE ev.env = $1 AND ev.person_id = ${id} LIMIT 1) IS NOT NULL)`;
    people -= await db.run(`DELETE FROM mirror_people WHERE env = $1 AND person_id IN ${touched} AND NOT ${recorded('mirror_people.person_id')}`, [env, ...persons]);
    people += await db.run(
      `INSERT INTO mirror_people (env, person_id) SELECT t.env, t.person_id FROM mirror_touched t
       WHERE t.env = $1 AND NOT EXISTS (SELECT 1 FROM mirror_people mp WHERE mp.env = $1 AND mp.person_id = t.person_id) AND ${recorded('t.person_id')}`,
      [env, ...persons],
    );
    // 3: only their events moved (a person row that did not change keeps them in mirror_people), so a
    // segment that reads no event leaves them be; without a person row, 2.
    await db.run(
      `UPDATE mirror_touched SET attrs = CASE WHEN ${persons.length ? `EXISTS (SELECT 1 FROM mirror_rows r WHERE r.env = $1 AND r.source IN (${marks}) AND r.row_key = mirror_touched.person_id)` : 'false'} THEN 3 ELSE 2 END
       WHERE env = $1 AND attrs = 0`,
      [env, ...persons],
    );
  }
  await db.run('UPDATE mirror_builds SET config = $2, people = people + $3 WHERE env = $1', [env, JSON.stringify(config), people]);
  const row = await db.get<BuildRow>('SELECT config, people, attributes, events FROM mirror_builds WHERE env = $1', [env]);
  const counts = { people: Number(row?.people ?? 0), attributes: Number(row?.attributes ?? 0), events: Number(row?.events ?? 0) };
  await analyzeAfterBuild(ctx, moved, counts.people);
  return counts;
}

/**
 * The changed people's attributes as the mirror holds them are those their person sources' payloads gave
 * at the last update: for a key logged since, the payload its log row kept; otherwise the payload as it is
 * (unchanged since). Valid when the same person sources fed that update (the caller checks). Found into
 * `mirror_attr_before` and compared with `mirror_attr_work`, two small tables keyed alike; only the rows
 * that differ touch the mirror. Resolves to how the attribute count moved.
 */
async function attributesFromLog(ctx: AudienceContext, config: BuildConfig, sids: ReadonlyMap<string, number>): Promise<number> {
  const { db, env } = ctx;
  const pg = db.dialect === 'postgres';
  await db.run('DELETE FROM mirror_attr_before WHERE env = $1', [env]);
  const persons = config.sources.filter((s) => s.records === 'person').length;
  for (const s of config.sources) {
    const sid = sids.get(s.source);
    if (s.records !== 'person' || sid === undefined) continue;
    const was = `(SELECT t.person_id AS row_key, CASE WHEN c.row_key IS NULL THEN cur.payload ELSE c.old_payload END AS payload
      FROM mirror_touched t
      LEFT JOIN snapshot_changes c ON c.sid = $2 AND c.row_key = t.person_id
      LEFT JOIN snapshot_payloads cur ON cur.sid = $2 AND cur.row_key = t.person_id
      WHERE t.env = $1 AND t.attrs IN (1, ${REBUILT_ANYTHING})) p`;
    const { params, kept } = attributeParams(env, sid, config);
    await db.run(attributeInsert(pg, was, { into: 'mirror_attr_before', bySid: false, upsert: persons > 1, kept }), params);
  }
  // Scratch tables filled just now: without their sizes Postgres plans the probes below as scans.
  if (pg) await db.exec('ANALYZE mirror_attr_work; ANALYZE mirror_attr_before;');
  const same = pg ? 'IS NOT DISTINCT FROM' : 'IS';
  const at = (a: string, b: string) => `${a}.env = ${b}.env AND ${a}.field = ${b}.field AND ${a}.person_id = ${b}.person_id`;
  const added = Number(
    (await db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM mirror_attr_work n WHERE n.env = $1 AND NOT EXISTS (SELECT 1 FROM mirror_attr_before o WHERE ${at('o', 'n')})`, [env]))?.n ?? 0,
  );
  let removed = 0;
  // Which fields of whom moved, for the segments that read them (migration 12): values new or different, and
  // values gone. The two halves are disjoint (a gone value has no row in the work), so UNION ALL; a pair an
  // earlier update listed is skipped by a probe, not by ON CONFLICT, whose speculative insertion costs
  // Postgres most of a bulk insert's time.
  await db.run(
    `INSERT INTO mirror_touched_fields (env, person_id, field)
     SELECT x.env, x.person_id, x.field FROM (
       SELECT n.env, n.person_id, n.field FROM mirror_attr_work n
       WHERE n.env = $1 AND NOT EXISTS (SELECT 1 FROM mirror_attr_before o WHERE ${at('o', 'n')}
         AND o.value = n.value AND o.num ${same} n.num AND o.ts_ms ${same} n.ts_ms)
       UNION ALL
       SELECT o.env, o.person_id, o.field FROM mirror_attr_before o
       WHERE o.env = $1 AND NOT EXISTS (SELECT 1 FROM mirror_attr_work n WHERE ${at('n', 'o')})
     ) x
     WHERE NOT EXISTS (SELECT 1 FROM mirror_touched_fields t WHERE t.env = x.env AND t.person_id = x.person_id AND t.field = x.field)`,
    [env],
  );
  const fields = (await db.all<{ field: string }>('SELECT DISTINCT field FROM mirror_attr_before WHERE env = $1', [env])).map((r) => r.field);
  // Per field, so each delete is a range of the mirror's key probed by the few ids (never a scan).
  for (const field of fields) {
    removed += await db.run(
      `DELETE FROM mirror_attributes WHERE env = $1 AND field = $2 AND person_id IN (
         SELECT o.person_id FROM mirror_attr_before o WHERE o.env = $1 AND o.field = $2
         AND NOT EXISTS (SELECT 1 FROM mirror_attr_work n WHERE ${at('n', 'o')}))`,
      [env, field],
    );
  }
  await db.run(
    `INSERT INTO mirror_attributes (env, person_id, field, value, num, ts_ms)
     SELECT n.env, n.person_id, n.field, n.value, n.num, n.ts_ms FROM mirror_attr_work n
     WHERE n.env = $1 AND NOT EXISTS (SELECT 1 FROM mirror_attr_before o WHERE ${at('o', 'n')}
       AND o.value = n.value AND o.num ${same} n.num AND o.ts_ms ${same} n.ts_ms)
     ORDER BY n.field, n.person_id
     ON CONFLICT (env, field, person_id) DO UPDATE SET value = excluded.value, num = excluded.num, ts_ms = excluded.ts_ms`,
    [env],
  );
  await db.run('DELETE FROM mirror_attr_before WHERE env = $1', [env]);
  return added - removed;
}

/**
 * Postgres, one person source, the same one as at the last update: the changed people's attributes are
 * compared in the payloads themselves, old and new side by side, and only the values that differ become
 * rows (`mirror_attr_work`: `state` 1 changed, 2 new, 3 gone, `value` NULL when gone). `attributesFromLog`
 * instead writes every kept value of both versions to two scratch tables (1,000,000 people, 1% changed:
 * ~114,000 rows each, 0.46 + 0.45 s), analyses them and compares them by probes (0.15 s to count, 0.29 s to
 * list the moved fields, and the write's own anti join). A value is compared as jsonb text, so `1.0` and
 * `1` differ as the mirror's `value` column would. With several person sources a value is the last
 * source's that has one, which the two tables and their upserts give; that path stays.
 * Resolves to how the attribute count moved.
 */
async function attributesByDiff(ctx: AudienceContext, config: BuildConfig, sid: number): Promise<number> {
  const { db, env } = ctx;
  const params: SqlValue[] = [env, sid, JSON.stringify(config.stamps)];
  // The keys compared: the kept fields, or with no choice made every key of either version.
  const keys = config.fields ? 'jsonb_array_elements_text($4::jsonb) k (key)' : '(SELECT jsonb_object_keys(p.n) UNION SELECT jsonb_object_keys(p.o)) k (key)';
  if (config.fields) params.push(JSON.stringify(config.fields));
  // The old version is what the mirror was built from: the payload the change log kept for a key logged
  // since, otherwise the payload as it is (unchanged since). OFFSET 0 keeps the subquery whole, so each
  // payload is parsed once and not once per key.
  await db.run(
    `INSERT INTO mirror_attr_work (env, person_id, field, value, num, ts_ms, state)
     SELECT $1, p.person_id, d.key,
       ${pgValueColumns('d.nv', 'd.key')},
       CASE WHEN d.ov IS NULL THEN 2 WHEN d.nv IS NULL THEN 3 ELSE 1 END
     FROM (SELECT t.person_id, cur.payload::jsonb -> 'attributes' AS n,
             (CASE WHEN c.row_key IS NULL THEN cur.payload ELSE c.old_payload END)::jsonb -> 'attributes' AS o
           FROM mirror_touched t
           LEFT JOIN snapshot_changes c ON c.sid = $2 AND c.row_key = t.person_id
           LEFT JOIN snapshot_payloads cur ON cur.sid = $2 AND cur.row_key = t.person_id
           WHERE t.env = $1 AND t.attrs IN (1, ${REBUILT_ANYTHING}) OFFSET 0) p,
       LATERAL (SELECT k.key, NULLIF(p.n -> k.key, 'null'::jsonb) AS nv, NULLIF(p.o -> k.key, 'null'::jsonb) AS ov FROM ${keys}) d
     WHERE (d.nv)::text IS DISTINCT FROM (d.ov)::text`,
    params,
  );
  // Which fields of whom moved, for the segments that read them (migration 12); a pair an earlier update
  // listed is skipped by a probe, not by ON CONFLICT (speculative insertion is most of a bulk insert's time).
  await db.run(
    `INSERT INTO mirror_touched_fields (env, person_id, field)
     SELECT w.env, w.person_id, w.field FROM mirror_attr_work w
     WHERE w.env = $1 AND NOT EXISTS (SELECT 1 FROM mirror_touched_fields t WHERE t.env = w.env AND t.person_id = w.person_id AND t.field = w.field)`,
    [env],
  );
  let removed = 0;
  // One pass over the work for both numbers; values gone are rare, their fields looked up only then.
  const tally = await db.get<{ added: number; gone: number }>(
    'SELECT COUNT(*) FILTER (WHERE state = 2) AS added, COUNT(*) FILTER (WHERE state = 3) AS gone FROM mirror_attr_work WHERE env = $1',
    [env],
  );
  const gone = Number(tally?.gone ?? 0) > 0 ? (await db.all<{ field: string }>('SELECT DISTINCT field FROM mirror_attr_work WHERE env = $1 AND state = 3', [env])).map((r) => r.field) : [];
  // Per field, so each delete is a range of the mirror's key probed by the few ids (never a scan).
  for (const field of gone) {
    removed += await db.run(
      `DELETE FROM mirror_attributes WHERE env = $1 AND field = $2
       AND person_id IN (SELECT w.person_id FROM mirror_attr_work w WHERE w.env = $1 AND w.field = $2 AND w.state = 3)`,
      [env, field],
    );
  }
  await db.run(
    `INSERT INTO mirror_attributes (env, person_id, field, value, num, ts_ms)
     SELECT w.env, w.person_id, w.field, w.value, w.num, w.ts_ms FROM mirror_attr_work w
     WHERE w.env = $1 AND w.state IN (1, 2)
     ORDER BY w.field, w.person_id
     ON CONFLICT (env, field, person_id) DO UPDATE SET value = excluded.value, num = excluded.num, ts_ms = excluded.ts_ms`,
    [env],
  );
  return Number(tally?.added ?? 0) - removed;
}

/**
 * When the log cannot tell what the changed people's attributes were (a person source joined or left the
 * model): every field the mirror knows that such a person no longer has gets a row in `mirror_attr_work`
 * too (value NULL), and one pass over the work in its key order (field first, as the mirror's) compares
 * each row with the mirror's at the same place: state 0 the same, 1 different or to delete, 2 new.
 * Resolves to how the attribute count moved.
 */
async function attributesByProbe(ctx: AudienceContext): Promise<number> {
  const { db, env } = ctx;
  const pg = db.dialect === 'postgres';
  const fields = await mirrorFields(ctx);
  for (const field of fields) {
    await db.run(
      `INSERT INTO mirror_attr_work (env, field, person_id) SELECT $1, $2, t.person_id FROM mirror_touched t WHERE t.env = $1 AND t.attrs IN (1, ${REBUILT_ANYTHING})
       ON CONFLICT (env, field, person_id) DO NOTHING`,
      [env, field],
    );
  }
  const same = pg ? 'IS NOT DISTINCT FROM' : 'IS';
  const w = 'mirror_attr_work';
  await db.run(
    `UPDATE ${w} SET state = COALESCE(
       (SELECT CASE WHEN ${w}.value IS NOT NULL AND a.value = ${w}.value AND a.num ${same} ${w}.num AND a.ts_ms ${same} ${w}.ts_ms THEN 0 ELSE 1 END
        FROM mirror_attributes a WHERE a.env = ${w}.env AND a.field = ${w}.field AND a.person_id = ${w}.person_id),
       CASE WHEN ${w}.value IS NULL THEN 0 ELSE 2 END)
     WHERE env = $1`,
    [env],
  );
  let moved = 0;
  for (const field of fields) {
    moved -= await db.run(
      `DELETE FROM mirror_attributes WHERE env = $1 AND field = $2
       AND person_id IN (SELECT person_id FROM ${w} WHERE env = $1 AND field = $2 AND state = 1 AND value IS NULL)`,
      [env, field],
    );
  }
  await db.run(
    `INSERT INTO mirror_attributes (env, person_id, field, value, num, ts_ms)
     SELECT env, person_id, field, value, num, ts_ms FROM ${w} WHERE env = $1 AND state IN (1, 2) AND value IS NOT NULL ORDER BY field, person_id
     ON CONFLICT (env, field, person_id) DO UPDATE SET value = excluded.value, num = excluded.num, ts_ms = excluded.ts_ms`,
    [env],
  );
  moved += Number((await db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${w} WHERE env = $1 AND state = 2`, [env]))?.n ?? 0);
  return moved;
}

/** Where a segment's evaluation mark is kept (`cursors`, name prefix + segment). */
const EVALUATION_MARK = 'audience-eval:';

/**
 * What a segment's stored candidates are: the exact members, at `nowMs`, of the compiled query whose
 * digest is `digest`, over the mirror as it was less the people in `mirror_touched`. Absent when the
 * candidates are anything else (never evaluated, emptied, or the mirror filled whole since).
 */
export interface EvaluationMark {
  digest: string;
  nowMs: number;
  /**
   * Set by the store (a caller's is ignored): candidates, published, and both, kept exact by every
   * later store of candidates and every recorded publish, so an incremental evaluation's delta needs no
   * count over a million rows.
   */
  counts?: SetCounts;
}

interface SetCounts {
  members: number;
  published: number;
  both: number;
}

async function writeMark(ctx: AudienceContext, segment: string, mark: EvaluationMark): Promise<void> {
  await ctx.db.run(
    `INSERT INTO cursors (env, name, value, updated_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (env, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
    [ctx.env, EVALUATION_MARK + segment, JSON.stringify(mark), new Date(mark.nowMs).toISOString()],
  );
}

/** The three sizes a delta is made of, counted. */
async function countSets(ctx: AudienceContext, segment: string): Promise<SetCounts> {
  const { db, env } = ctx;
  const one = async (sql: string) => Number((await db.get<{ n: number }>(sql, [env, segment]))?.n ?? 0);
  const members = await one(`SELECT COUNT(*) AS n FROM audience_candidates WHERE env = $1 AND segment = $2`);
  const published = await one(`SELECT COUNT(*) AS n FROM audience_members WHERE env = $1 AND segment = $2`);
  const both =
    members === 0 || published === 0
      ? 0
      : await one(
          `SELECT COUNT(*) AS n FROM audience_candidates c JOIN audience_members m ON m.env = c.env AND m.segment = c.segment AND m.person_id = c.person_id
           WHERE c.env = $1 AND c.segment = $2`,
        );
  return { members, published, both };
}

export async function evaluationMark(ctx: AudienceContext, segment: string): Promise<EvaluationMark | undefined> {
  const row = await ctx.db.get<{ value: string }>('SELECT value FROM cursors WHERE env = $1 AND name = $2', [ctx.env, EVALUATION_MARK + segment]);
  return row ? (JSON.parse(row.value) as EvaluationMark) : undefined;
}

/**
 * After every segment of `evaluated` was stored: the mirror's changes are accounted for, so
 * `mirror_touched` empties; segments not evaluated now lose their mark, since their candidates did not
 * see these changes.
 */
export async function finishEvaluation(ctx: AudienceContext, evaluated: readonly string[]): Promise<void> {
  const { db, env } = ctx;
  await db.transaction(async () => {
    const marks = await db.all<{ name: string }>(`SELECT name FROM cursors WHERE env = $1 AND substr(name, 1, ${EVALUATION_MARK.length}) = $2`, [env, EVALUATION_MARK]);
    const keep = new Set(evaluated.map((s) => EVALUATION_MARK + s));
    for (const m of marks) if (!keep.has(m.name)) await db.run('DELETE FROM cursors WHERE env = $1 AND name = $2', [env, m.name]);
    await db.run('DELETE FROM mirror_touched WHERE env = $1', [env]);
    await db.run('DELETE FROM mirror_touched_fields WHERE env = $1', [env]);
  });
}

/** How many of `ids` are published members of the segment (a probe each, 500 to a statement). */
async function countPublished(ctx: AudienceContext, segment: string, ids: readonly string[]): Promise<number> {
  let n = 0;
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    const marks = chunk.map((_, k) => `$${k + 3}`).join(', ');
    n += Number(
      (await ctx.db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM audience_members WHERE env = $1 AND segment = $2 AND person_id IN (${marks})`, [ctx.env, segment, ...chunk]))?.n ?? 0,
    );
  }
  return n;
}

/**
 * The embedded store's page cache while an evaluation runs (KiB): 512 MB, where the connection's own is
 * 64 MB (sqlite-driver.ts, sized for the sync's snapshot probes). An evaluation after a sync reads the
 * same index pages several times (who changed, their events, their rows, then each segment's probes of
 * the same people); with 64 MB most reads were evicted in between and read again from the file, a system
 * call each, which is what this VM makes slow. Measured on one kept 1,000,000-people store, rounds
 * alternated: the diffed evaluation 11.06–14.18 s with 64 MB, 10.06–10.76 s with 256 MB, 8.17–9.34 s with
 * 512 MB, 11.10–13.53 s with 1 GB (allocating more pages than are read again). SQLite allocates the cache as
 * it fills, so a small mirror costs what it uses.
 */
export const EVALUATION_CACHE_KIB = 524_288;

/**
 * Runs `fn` with the embedded store's page cache widened to `EVALUATION_CACHE_KIB`, and puts the
 * connection's size back after (SQLite then frees the pages over it). Postgres sizes its memory per
 * transaction (`work_mem`), so nothing changes there.
 */
export async function withEvaluationCache<T>(ctx: AudienceContext, fn: () => Promise<T>): Promise<T> {
  if (ctx.db.dialect !== 'sqlite') return fn();
  const before = Number((await ctx.db.get<{ cache_size: number }>('PRAGMA cache_size'))?.cache_size);
  // A nested scope reads the widened size and puts it back: only the outermost restores the connection's.
  if (before === -EVALUATION_CACHE_KIB) return fn();
  await ctx.db.exec(`PRAGMA cache_size = -${EVALUATION_CACHE_KIB}`);
  try {
    return await fn();
  } finally {
    await ctx.db.exec(`PRAGMA cache_size = ${Number.isFinite(before) ? before : -65_536}`);
  }
}

/**
 * How many segments' candidates may be stored at once. SQLite has one writer. Postgres gives each
 * transaction a connection of its own, and the scratch tables of an incremental store are each
 * connection's own there (`scratchTables`), so two segments proceed side by side; within a caller's
 * transaction there is one connection, so one at a time. Two: the server's cores are not known, and two
 * is what a small server has.
 */
export function concurrency(ctx: AudienceContext): number {
  return ctx.db.dialect === 'postgres' && !ctx.db.inTransaction() ? 2 : 1;
}

/**
 * Postgres: `audience_affected` and `audience_selected` as temporary tables of this connection, emptied at
 * each commit. A temporary table is found before a table of the schema with the same name (Postgres
 * searches the session's temporary schema first), so the same statements, and the compiled segment SQL
 * that reads `audience_affected`, use them unchanged. Shared, two segments stored at once would wait for each
 * other on every key they both hold and on each other's ANALYZE (held to the end of the transaction); a
 * temporary table is not written to the WAL and leaves no dead rows for vacuum behind either.
 */
async function scratchTables(db: SqlDriver): Promise<void> {
  if (db.dialect !== 'postgres') return;
  await db.exec(`SET LOCAL client_min_messages = warning;
    CREATE TEMP TABLE IF NOT EXISTS audience_affected (env TEXT NOT NULL, person_id TEXT NOT NULL, PRIMARY KEY (env, person_id)) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS audience_selected (env TEXT NOT NULL, person_id TEXT NOT NULL, PRIMARY KEY (env, person_id)) ON COMMIT DELETE ROWS`);
}

/** How to store: `mark` records the evaluation; with `affected`, only those people are re-decided. */
export interface StoreCandidatesOptions {
  mark?: EvaluationMark;
  /** Selects the people whose membership may have changed since the mark (`$n` placeholders, own params). */
  affected?: { sql: string; params: readonly SqlValue[] };
}

/**
 * Stores a segment's members as found by an evaluation: `select` is the compiled query (its parameters
 * in `params`, written with `$n` placeholders) returning `person_id`.
 *
 * Whole: SQLite replaces them (appending a sorted run to a B-tree it just emptied is cheaper than
 * finding what changed). Postgres brings them to the new set instead, deleting those no longer selected
 * (a hash anti join) and inserting the new ones: rewriting every row would leave millions of dead tuples
 * per run. Incremental (`affected`): the affected people are removed and `select`, which decides only
 * them, puts back those who are members. The mark is written in the same transaction (or removed, when
 * the caller gives none).
 */
export async function storeCandidates(ctx: AudienceContext, segment: string, select: string, params: readonly SqlValue[], opts: StoreCandidatesOptions = {}): Promise<number> {
  const { db, env } = ctx;
  const n = params.length;
  const [e, s] = [`$${n + 1}`, `$${n + 2}`];
  const insert = `INSERT INTO audience_candidates (env, segment, person_id) SELECT ${e}, ${s}, m.person_id FROM (${select}) m WHERE true
       ON CONFLICT (env, segment, person_id) DO NOTHING`;
  const mark = async (counts?: SetCounts) => {
    if (opts.mark) await writeMark(ctx, segment, { digest: opts.mark.digest, nowMs: opts.mark.nowMs, ...(counts ? { counts } : {}) });
    else await db.run('DELETE FROM cursors WHERE env = $1 AND name = $2', [env, EVALUATION_MARK + segment]);
  };
  return db.transaction(async () => {
    if (opts.affected) {
      // Every statement here probes the affected people one by one. Postgres, once mirror_touched is
      // analysed, prefers a hash join over the segment's whole candidates for each count and delete
      // (1,000,000 people: 20 segment queries 80 s); nested loops are what these statements are.
      // JIT compilation off too: these statements probe a few thousand people each; where the estimated cost
      // passed the server's threshold (a scan of a mirror_touched full of dead rows), a statement compiled
      // 16–80 functions (up to 33 ms) to run for a few hundred milliseconds.
      if (db.dialect === 'postgres') await db.exec(`SET LOCAL work_mem = '256MB'; SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; SET LOCAL jit = off`);
      const a = opts.affected;
      await scratchTables(db);
      // The affected people are found once, into audience_affected (the select was compiled to read it; inline,
      // the query ran four times), and every statement goes from them outwards: as `person_id IN (affected)` Postgres read each segment's
      // whole candidates and probed the affected for each (1,000,000 people, 23,229 affected: the two counts of
      // the 799,982-member segment took 5.8 and 5.0 s, all 20 segments' statements 62 s).
      await db.run('DELETE FROM audience_affected WHERE env = $1', [env]);
      await db.run(
        `INSERT INTO audience_affected (env, person_id) SELECT $${a.params.length + 1}, x.person_id FROM (${a.sql}) x WHERE true ON CONFLICT (env, person_id) DO NOTHING`,
        [...a.params, env],
      );
      // Filled just now: its size is what decides which side of each join drives.
      if (db.dialect === 'postgres') await db.exec('ANALYZE audience_affected');
      // Who the query selects among them, once: then only the candidates that left are deleted and only
      // those that joined inserted (audience_selected, migration 10), and the rows those two statements
      // return are exactly what moved. Deleting every affected candidate and inserting back the selected ones
      // wrote ten to twenty thousand rows a segment to move hundreds, and needed two counts of the affected
      // among the candidates and the published (SQLite ~50 ms each; Postgres 0.15–0.45 s each).
      await db.run('DELETE FROM audience_selected WHERE env = $1', [env]);
      await db.run(`INSERT INTO audience_selected (env, person_id) SELECT ${e}, m.person_id FROM (${select}) m WHERE true ON CONFLICT (env, person_id) DO NOTHING`, [...params, env]);
      // Filled just now, as audience_affected was.
      if (db.dialect === 'postgres') await db.exec('ANALYZE audience_selected');
      // The leavers are found among the affected, in the subquery: with the test on the selected outside it,
      // Postgres read the segment's whole candidates and probed the affected for each (the 501,670-member
      // segment: 1.7 s for 6,302 affected).
      const left = await db.all<{ person_id: string }>(
        `DELETE FROM audience_candidates WHERE env = $1 AND segment = $2
           AND person_id IN (SELECT t.person_id FROM audience_affected t WHERE t.env = $1
             AND NOT EXISTS (SELECT 1 FROM audience_selected x WHERE x.env = $1 AND x.person_id = t.person_id))
         RETURNING person_id`,
        [env, segment],
      );
      const joined = await db.all<{ person_id: string }>(
        `INSERT INTO audience_candidates (env, segment, person_id) SELECT $1, $2, x.person_id FROM audience_selected x WHERE x.env = $1
         ON CONFLICT (env, segment, person_id) DO NOTHING RETURNING person_id`,
        [env, segment],
      );
      await db.run('DELETE FROM audience_selected WHERE env = $1', [env]);
      const prev = (await evaluationMark(ctx, segment))?.counts;
      if (!prev) {
        await db.run('DELETE FROM audience_affected WHERE env = $1', [env]);
        await mark(await countSets(ctx, segment));
        return Number((await db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM audience_candidates WHERE env = $1 AND segment = $2`, [env, segment]))?.n ?? 0);
      }
      // The delta moves only with what moved: a leaver who was published leaves "both", a joiner who was joins it.
      const [removed, added] = [left.length, joined.length];
      const bothBefore = await countPublished(ctx, segment, left.map((r) => r.person_id));
      const bothAfter = await countPublished(ctx, segment, joined.map((r) => r.person_id));
      await db.run('DELETE FROM audience_affected WHERE env = $1', [env]);
      const counts = { members: prev.members - removed + added, published: prev.published, both: prev.both - bothBefore + bothAfter };
      await mark(counts);
      return counts.members;
    }
    if (db.dialect === 'sqlite') {
      await db.run(`DELETE FROM audience_candidates WHERE env = $1 AND segment = $2`, [env, segment]);
      const stored = await db.run(insert, [...params, env, segment]);
      await mark(opts.mark ? await countSets(ctx, segment) : undefined);
      return stored;
    }
    // Hash joins and hashed subplans over a million ids stay in memory (with the default 4 MB Postgres
    // would probe per row); SET LOCAL ends with the transaction.
    await db.exec(`SET LOCAL work_mem = '256MB'`);
    const before = Number((await db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM audience_candidates WHERE env = $1 AND segment = $2`, [env, segment]))?.n ?? 0);
    const removed = await db.run(
      `DELETE FROM audience_candidates c WHERE c.env = ${e} AND c.segment = ${s} AND NOT EXISTS (SELECT 1 FROM (${select}) m WHERE m.person_id = c.person_id)`,
      [...params, env, segment],
    );
    const added = await db.run(insert, [...params, env, segment]);
    // Statistics for the delta's joins, when the set moved enough to make the old ones wrong.
    if (removed + added > 0.1 * Math.max(before, 1)) await db.exec('ANALYZE audience_candidates; ANALYZE audience_members;');
    await mark(opts.mark ? await countSets(ctx, segment) : undefined);
    return before - removed + added;
  });
}

export interface MembershipDelta {
  members: number;
  entering: number;
  leaving: number;
}

/**
 * Members found, and how they differ from what was last published (counts only): from the two sizes and
 * one pass over their intersection, rather than an anti join each way.
 */
export async function membershipDelta(ctx: AudienceContext, segment: string): Promise<MembershipDelta> {
  const c = (await evaluationMark(ctx, segment))?.counts ?? (await countSets(ctx, segment));
  return { members: c.members, entering: c.members - c.both, leaving: c.published - c.both };
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
  const counts = (await evaluationMark(ctx, segment))?.counts;
  if (counts) return counts.published;
  return Number((await ctx.db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM audience_members WHERE env = $1 AND segment = $2`, [ctx.env, segment]))?.n ?? 0);
}

/** The ids to add (candidates not published) or remove (published, no longer candidates), a page at a time. */
export async function* membershipChanges(ctx: AudienceContext, segment: string, direction: 'add' | 'remove', pageSize = 1000): AsyncGenerator<string[]> {
  const { db, env } = ctx;
  const [from, other] = direction === 'add' ? ['audience_candidates', 'audience_members'] : ['audience_members', 'audience_candidates'];
  let after = '';
  for (;;) {
    // The test is a probe per row, written as a scalar subquery so Postgres cannot plan it as an anti join:
    // for a segment its statistics took for empty (a first publish), it kept the other side's rows in memory
    // and compared every row with all of them, a page at a time, while each page's publish grew that side
    // (10,000 additions: 5.1 s, growing with the square of the count).
    const rows = await db.all<{ person_id: string }>(
      `SELECT a.person_id FROM ${from} a WHERE a.env = $1 AND a.segment = $2 AND a.person_id > $3
       AND (SELECT 1 FROM ${other} b WHERE b.env = a.env AND b.segment = a.segment AND b.person_id = a.person_id LIMIT 1) IS NULL
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
    const mark = await evaluationMark(ctx, segment);
    const counts = mark?.counts;
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const marks = chunk.map((_, k) => `$${k + 4}`).join(', ');
      if (direction === 'add') {
        // Only candidates are inserted: each one published is one more in both.
        const added = await db.run(
          `INSERT INTO audience_members (env, segment, person_id, published_at) SELECT $1, $2, v.id, $3 FROM (SELECT person_id AS id FROM audience_candidates WHERE env = $1 AND segment = $2 AND person_id IN (${marks})) v WHERE true
           ON CONFLICT (env, segment, person_id) DO NOTHING`,
          [env, segment, at, ...chunk],
        );
        if (counts) {
          counts.published += added;
          counts.both += added;
        }
      } else {
        if (counts) {
          counts.both -= Number(
            (
              await db.get<{ n: number }>(
                `SELECT COUNT(*) AS n FROM audience_members m WHERE m.env = $1 AND m.segment = $2 AND $3 = $3 AND m.person_id IN (${marks})
                 AND EXISTS (SELECT 1 FROM audience_candidates c WHERE c.env = m.env AND c.segment = m.segment AND c.person_id = m.person_id)`,
                [env, segment, at, ...chunk],
              )
            )?.n ?? 0,
          );
        }
        const removed = await db.run(`DELETE FROM audience_members WHERE env = $1 AND segment = $2 AND $3 = $3 AND person_id IN (${marks})`, [env, segment, at, ...chunk]);
        if (counts) counts.published -= removed;
      }
    }
    if (mark && counts) await writeMark(ctx, segment, mark);
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
