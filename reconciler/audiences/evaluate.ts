/**
 * Evaluating the declared segments of one environment: the mirror is rebuilt from what Customer.io
 * acknowledged, each segment's conditions are compiled to SQL and run in the state's database, and the
 * members found are compared with what was last published. Then the guards decide what may be published:
 * a stale source freezes (or empties) a guarded segment; a membership outside its `expect` is held.
 *
 * Counts only: no customer identifier leaves this module (the ids stay in the database).
 */
import { createHash } from 'node:crypto';
import { parseDuration } from '../core/duration.ts';
import { atMost } from '../core/lanes.ts';
import { appliesTo } from '../plan/desired.ts';
import { mirroredFields } from '../spec/mirrored-fields.ts';
import type { SpecModel } from '../spec/model.ts';
import { walkConditions } from '../spec/resolve.ts';
import { responseMirrorSources, sourcesFeeding } from '../spec/rules/writers.ts';
import type { Condition, SegmentSpec } from '../spec/schema/index.ts';
import type { StateStore } from '../state/index.ts';
import { compileSegment, type FieldType } from './compile.ts';

/** What happens to a segment this run. */
export type SegmentVerdict =
  /** Its members may be published. */
  | 'publish'
  /** A source it depends on is stale: nothing changes in Customer.io until it is fresh again. */
  | 'frozen'
  /** A source it depends on is stale and the spec says to empty it meanwhile. */
  | 'emptied'
  /** Its membership moved outside what the spec expects: held until accepted (`--accept`). */
  | 'held';

export interface SegmentEvaluation {
  segment: string;
  members: number;
  entering: number;
  leaving: number;
  /** Members published before this run. */
  published: number;
  verdict: SegmentVerdict;
  /** Why it is frozen, emptied or held, for people. */
  reason?: string;
  /** Where membership goes: the segment's manual segment, a boolean attribute. */
  publish: { customerio_segment: boolean; attribute?: string };
}

export interface AudienceEvaluation {
  /** When the conditions were evaluated (the injected clock). */
  at: string;
  mirror: { people: number; attributes: number; events: number };
  segments: SegmentEvaluation[];
  /** Each exclusive group's real overlap in the mirror: people the group's segments would all claim. */
  groups: Array<{ group: string; segments: string[]; overlap: number }>;
  /** For people: members of UI segments that could not be matched, and the like. */
  notes: string[];
}

export interface EvaluateRequest {
  model: SpecModel;
  environment: string;
  store: StateStore;
  now: Date;
  /** Publish segments whose membership is outside their `expect` anyway. */
  accept?: boolean;
  /**
   * Reads the members of a segment built in Customer.io's UI (by its id) into the store; resolves to a
   * note for people when some could not be matched. Without it, conditions cannot reference such segments.
   */
  loadUiSegment?: (segment: string, id: number) => Promise<string | undefined>;
  /**
   * `false` decides every segment over everyone (the members are the same; it is slower). By default a
   * segment whose stored members are this query's at an earlier instant decides only the people whose
   * membership can have moved since: those whose mirror changed, those a time condition's edge passed.
   */
  incremental?: boolean;
}

type Guarded = SegmentSpec;

/** The declared segments this environment evaluates: those with conditions. */
export function evaluatedSegments(model: SpecModel, environment: string): Array<{ name: string; spec: Guarded }> {
  return [...model.segments.values()]
    .filter((s) => s.spec.conditions && appliesTo(s.spec, environment))
    .map((s) => ({ name: s.name, spec: s.spec as Guarded }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Brings the environment's mirror up to what Customer.io acknowledged, built from the model's sources, its
 * timestamp fields and the fields tidemark reads back. Every reader of the mirror calls this first: the
 * same arguments each time keep the update incremental, and on Postgres an unlogged mirror emptied by a
 * crash is filled again here before anything reads it (migration 0011).
 */
export async function refreshMirror(model: SpecModel, environment: string, store: StateStore): Promise<AudienceEvaluation['mirror']> {
  const sources = [...model.sources.values()].filter((s) => appliesTo(s.spec, environment));
  const stamps = [...model.fields].filter(([, f]) => f.def.type === 'timestamp').map(([n]) => n);
  // The response loop's acknowledged reason codes are delivered data too (issue 13): segments may use them.
  return store.audiences.rebuildMirror(
    [...sources.map((s) => ({ source: s.name, records: s.spec.records })), ...responseMirrorSources(model, environment)],
    stamps,
    mirroredFields(model),
  );
}

export async function evaluateAudiences(req: EvaluateRequest): Promise<AudienceEvaluation> {
  return req.store.audiences.evaluating(() => evaluate(req));
}

async function evaluate(req: EvaluateRequest): Promise<AudienceEvaluation> {
  const { model, environment, store, now } = req;
  const audiences = store.audiences;
  const fieldTypes: Record<string, FieldType> = {};
  for (const [name, f] of model.fields) fieldTypes[name] = f.def.type as FieldType;
  const mirror = await refreshMirror(model, environment, store);

  const feeding = sourcesFeeding(model);
  const notes: string[] = [];
  if (req.loadUiSegment) {
    for (const name of referencedUiSegments(model, environment)) {
      const note = await req.loadUiSegment(name, model.segments.get(name)!.spec.customerio_segment!.id);
      if (note) notes.push(note);
    }
  }
  // Referenced segments first, so a reference reads the members just stored instead of evaluating the
  // referenced conditions again (`reachable: any of three segments` would otherwise run all three twice).
  // The segments of one level read none of each other, so they are stored side by side where the store
  // allows it (Postgres: each on a connection of its own, both cores of the server at work).
  const stored = new Set<string>();
  const digests = new Map<string, string>();
  const whole = new Set<string>();
  const segments = evaluatedSegments(model, environment);
  const width = audiences.concurrency();
  for (const level of dependencyLevels(segments, model)) {
    const jobs: Array<() => Promise<unknown>> = [];
    for (const seg of level) {
      const ctx = {
        dialect: audiences.dialect,
        env: audiences.env,
        nowMs: now.getTime(),
        fieldTypes,
        name: seg.name,
        uiSegmentMembers: !!req.loadUiSegment,
        storedSegments: stored,
        segmentConditions: (n: string) => {
          const other = model.segments.get(n);
          if (!other) return undefined;
          return other.spec.conditions ?? null;
        },
      };
      const compiled = compileSegment(seg.spec.conditions!, ctx);
      const digest = segmentDigest(compileSegment(seg.spec.conditions!, { ...ctx, nowMs: 0 }), digests);
      digests.set(seg.name, digest);
      // Only the people whose membership can have moved are decided again, when the stored members are
      // exactly this query's at a known instant; a segment it reads that was decided whole moved anyone.
      const mark = req.incremental === false ? undefined : await audiences.evaluationMark(seg.name);
      const incremental = mark !== undefined && mark.digest === digest && compiled.uiSegments.length === 0 && !compiled.reads.some((r) => whole.has(r));
      if (incremental) {
        const inc = compileSegment(seg.spec.conditions!, { ...ctx, sinceMs: mark.nowMs });
        jobs.push(() =>
          audiences.storeCandidates(seg.name, dollarPlaceholders(inc.sql, audiences.dialect), inc.params, {
            mark: { digest, nowMs: now.getTime() },
            affected: { sql: dollarPlaceholders(inc.affected!.sql, audiences.dialect), params: inc.affected!.params },
          }),
        );
      } else {
        whole.add(seg.name);
        jobs.push(() => audiences.storeCandidates(seg.name, dollarPlaceholders(compiled.sql, audiences.dialect), compiled.params, { mark: { digest, nowMs: now.getTime() } }));
      }
    }
    await atMost(width, jobs);
    for (const seg of level) stored.add(seg.name);
  }
  await audiences.finishEvaluation(segments.map((s) => s.name));
  const out: SegmentEvaluation[] = [];
  for (const seg of segments) {
    const delta = await audiences.delta(seg.name);
    const published = await audiences.publishedCount(seg.name);
    const base = { segment: seg.name, ...delta, published, publish: { customerio_segment: !!seg.spec.publish?.customerio_segment, ...(seg.spec.publish?.attribute ? { attribute: seg.spec.publish.attribute } : {}) } };

    const stale = seg.spec.freshness_guard ? await staleSources(seg.spec, dependsOn(seg.spec.conditions!, model, feeding), req) : [];
    if (stale.length) {
      const empty = seg.spec.freshness_guard?.on_stale === 'empty';
      out.push({ ...base, verdict: empty ? 'emptied' : 'frozen', reason: `${stale.join('; ')}: ${empty ? 'emptied until it is fresh (on_stale: empty)' : 'frozen, nothing is published until it is fresh'}` });
      continue;
    }
    const held = req.accept ? undefined : outsideExpectation(seg.spec.expect, delta.members, published);
    out.push(held ? { ...base, verdict: 'held', reason: `${held}; publish it anyway with --accept` } : { ...base, verdict: 'publish' });
  }
  const byGroup = new Map<string, string[]>();
  for (const seg of evaluatedSegments(model, environment)) {
    const g = seg.spec.exclusive_group;
    if (g) byGroup.set(g, [...(byGroup.get(g) ?? []), seg.name]);
  }
  const groups: AudienceEvaluation['groups'] = [];
  for (const [group, names] of [...byGroup].sort(([a], [b]) => (a < b ? -1 : 1))) groups.push({ group, segments: names, overlap: await audiences.overlap(names) });
  return { at: now.toISOString(), mirror, segments: out, groups, notes };
}

/**
 * The segments in levels: each comes in a level after those of the evaluated segments it references
 * (directly, or through segments that are not evaluated here and so are inlined), so the segments of one
 * level read none of each other; within a level, by name. A cycle is left to the compiler to report.
 */
function dependencyLevels<T extends { name: string; spec: Guarded }>(segments: readonly T[], model: SpecModel): T[][] {
  const byName = new Map(segments.map((s) => [s.name, s]));
  const levelOf = new Map<string, number>();
  const visiting = new Set<string>();
  const visit = (seg: T): number => {
    const known = levelOf.get(seg.name);
    if (known !== undefined) return known;
    if (visiting.has(seg.name)) return 0;
    visiting.add(seg.name);
    let level = 0;
    const seen = new Set<string>();
    const refs = (cond: Condition) =>
      walkConditions(cond, [], (c) => {
        if (c.segment === undefined || seen.has(c.segment)) return;
        seen.add(c.segment);
        const evaluated = byName.get(c.segment);
        if (evaluated) level = Math.max(level, visit(evaluated) + 1);
        else {
          const inner = model.segments.get(c.segment)?.spec.conditions;
          if (inner) refs(inner);
        }
      });
    refs(seg.spec.conditions!);
    visiting.delete(seg.name);
    levelOf.set(seg.name, level);
    return level;
  };
  const levels: T[][] = [];
  for (const seg of segments) (levels[visit(seg)] ??= []).push(seg);
  return levels.filter((l) => l.length > 0);
}

/** UI segments (`customerio_segment: { id }`) that the evaluated segments' conditions reference, directly or through others. */
function referencedUiSegments(model: SpecModel, environment: string): string[] {
  const found = new Set<string>();
  const seen = new Set<string>();
  const visit = (cond: Condition) =>
    walkConditions(cond, [], (c) => {
      if (c.segment === undefined || seen.has(c.segment)) return;
      seen.add(c.segment);
      const other = model.segments.get(c.segment)?.spec;
      if (other?.customerio_segment) found.add(c.segment);
      else if (other?.conditions) visit(other.conditions);
    });
  for (const seg of evaluatedSegments(model, environment)) visit(seg.spec.conditions!);
  return [...found].sort();
}

export interface GuardVerdict {
  segment: string;
  verdict: 'frozen' | 'emptied';
  reason: string;
}

/**
 * The guarded segments a stale source stops right now (for `tidemark status`): no evaluation, only the
 * freshness of the sources each guard watches.
 */
export async function guardVerdicts(req: Omit<EvaluateRequest, 'accept'>): Promise<GuardVerdict[]> {
  const feeding = sourcesFeeding(req.model);
  const out: GuardVerdict[] = [];
  for (const seg of evaluatedSegments(req.model, req.environment)) {
    if (!seg.spec.freshness_guard) continue;
    const stale = await staleSources(seg.spec, dependsOn(seg.spec.conditions!, req.model, feeding), req);
    if (!stale.length) continue;
    const empty = seg.spec.freshness_guard.on_stale === 'empty';
    out.push({ segment: seg.name, verdict: empty ? 'emptied' : 'frozen', reason: stale.join('; ') });
  }
  return out;
}

/**
 * What a segment's stored members depend on besides the mirror and `now`: its query (compiled at an
 * instant of 0, so only the definition counts), and the digests of the stored segments it reads.
 */
function segmentDigest(compiled: { sql: string; params: unknown[]; reads: string[] }, digests: ReadonlyMap<string, string>): string {
  const h = createHash('sha256').update(JSON.stringify([compiled.sql, compiled.params]));
  for (const r of compiled.reads) h.update(`\n${r}:${digests.get(r) ?? ''}`);
  return h.digest('hex');
}

/** The compiler writes `?` for SQLite; the store's SQL is written with `$n` (its SQLite driver maps them back). */
function dollarPlaceholders(sql: string, dialect: 'sqlite' | 'postgres'): string {
  if (dialect === 'postgres') return sql;
  let i = 0;
  // Every value is a parameter, so a `?` in the compiled SQL is always a placeholder.
  return sql.replace(/\?/g, () => `$${++i}`);
}

/** The sources a segment's data comes from: those that write its fields and events, through referenced segments too. */
function dependsOn(cond: Condition, model: SpecModel, feeding: ReturnType<typeof sourcesFeeding>, seen = new Set<string>()): Set<string> {
  const out = new Set<string>();
  walkConditions(cond, [], (c) => {
    if (c.attribute) for (const s of feeding.fields.get(c.attribute.field) ?? []) out.add(s);
    if (c.event) for (const s of feeding.events.get(c.event.name) ?? []) out.add(s);
    if (c.segment !== undefined && !seen.has(c.segment)) {
      seen.add(c.segment);
      const other = model.segments.get(c.segment)?.spec.conditions;
      if (other) for (const s of dependsOn(other, model, feeding, seen)) out.add(s);
    }
  });
  return out;
}

/** The guard's sources that are staler than allowed, each as a sentence (no identifiers). */
async function staleSources(spec: Guarded, deps: Set<string>, req: Omit<EvaluateRequest, 'accept'>): Promise<string[]> {
  const guard = spec.freshness_guard!;
  const watched = guard.sources ?? [...deps].sort();
  const out: string[] = [];
  for (const name of watched) {
    const source = req.model.sources.get(name);
    if (!source || !appliesTo(source.spec, req.environment)) continue;
    const maxAge = parseDuration(guard.max_age ?? source.spec.freshness?.max_age ?? '') ?? undefined;
    if (maxAge === undefined) continue;
    const last = await req.store.lastSuccess(name);
    if (!last) {
      out.push(`source ${name} has never synced`);
      continue;
    }
    const age = req.now.getTime() - Date.parse(last.startedAt);
    if (age > maxAge) out.push(`source ${name} last synced ${formatAge(age)} ago (max_age ${guard.max_age ?? source.spec.freshness?.max_age})`);
  }
  return out;
}

function formatAge(ms: number): string {
  const h = ms / 3_600_000;
  return h >= 48 ? `${Math.floor(h / 24)}d` : h >= 1 ? `${Math.floor(h)}h` : `${Math.max(1, Math.floor(ms / 60_000))}m`;
}

/** Why a membership is outside what the spec expects, or undefined when it is inside (or nothing is expected). */
export function outsideExpectation(expect: Guarded['expect'], members: number, published: number): string | undefined {
  if (!expect) return undefined;
  if (expect.min !== undefined && members < expect.min) return `membership ${members} is below the expected minimum ${expect.min}`;
  if (expect.max !== undefined && members > expect.max) return `membership ${members} is above the expected maximum ${expect.max}`;
  if (expect.max_change !== undefined && published > 0) {
    const limit = typeof expect.max_change === 'number' ? expect.max_change : Number(String(expect.max_change).replace('%', '')) / (String(expect.max_change).endsWith('%') ? 100 : 1);
    const change = Math.abs(members - published) / published;
    if (change > limit) return `membership moved ${(change * 100).toFixed(1)}% (${published} → ${members}), more than the expected max_change ${expect.max_change}`;
  }
  return undefined;
}
