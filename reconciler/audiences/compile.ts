/**
 * Segment conditions → one SQL query over the mirror tables (see mirror-layout.ts), for SQLite or
 * Postgres, so the database computes membership instead of tidemark walking every profile. Pure: no I/O,
 * and `now` is an argument, so the same spec and mirror give the same members at the same instant.
 *
 * Every condition compiles to a boolean predicate on one person row `p` of mirror_people (membership
 * probes, AND, OR, NOT). Predicates rather than INTERSECT/UNION/EXCEPT of sets because SQLite does not
 * accept parenthesised compound SELECTs, and because a probe is never NULL (every person_id column is NOT
 * NULL), so NOT is a plain complement within mirror_people with no three-valued-logic surprises.
 *
 * A probe is `p.person_id IN (SELECT x.person_id FROM … WHERE …)`, uncorrelated: the database computes
 * the set once (one field of everyone is a contiguous range of mirror_attributes; one event name in a
 * window, a range of its index) and looks each person up in it. A correlated EXISTS is one index seek per
 * person per condition on SQLite, which never decorrelates; Postgres makes the IN a semi join, or under
 * OR and NOT a hashed subplan (the caller gives it the memory: see state/audiences.ts).
 *
 * Values are always bound as parameters, never spliced into the text; only placeholders differ by
 * dialect (`?` for SQLite, `$n` for Postgres).
 */
import { parseDuration } from '../core/duration.ts';
import { UserError } from '../core/user-error.ts';
import type { AttributeCondition, Condition, EventCondition } from '../spec/schema/segment.ts';
import type { Dialect } from './mirror-layout.ts';

export type { Dialect } from './mirror-layout.ts';
export type FieldType = 'string' | 'number' | 'boolean' | 'timestamp' | 'enum';
export type SqlParam = string | number;

export interface CompileContext {
  dialect: Dialect;
  env: string;
  nowMs: number;
  /** Declared attribute types, from Fields. */
  fieldTypes: Readonly<Record<string, FieldType>>;
  /**
   * The conditions of another declared segment, for `segment: name`; undefined when no such segment is
   * declared, null when it exists but has no conditions (it references a Customer.io segment).
   */
  segmentConditions(name: string): Condition | null | undefined;
  /**
   * Segments built in Customer.io's UI (`segmentConditions` gives null) are read from `ui_segment_members`,
   * which the caller filled through the App API. Without it, referencing one is an error.
   */
  uiSegmentMembers?: boolean;
  /** The segment being compiled, for messages and to catch a reference back to itself. */
  name?: string;
  /**
   * Segments whose members this evaluation already stored in `audience_candidates` (at the same `nowMs`,
   * from the same mirror): a reference to one reads them instead of evaluating its conditions again.
   */
  storedSegments?: ReadonlySet<string>;
  /**
   * Incremental evaluation: the `nowMs` at which the segment's stored members were last evaluated. The
   * query then selects the members among the affected people only (see `CompiledSegment.affected`), with
   * each probe correlated to the person (an index seek each), where a set probe would read the whole
   * field or event name to decide a few thousand people.
   */
  sinceMs?: number;
}

export interface CompiledSegment {
  /**
   * Selects DISTINCT person_id of the members. With `sinceMs`: of the members among `affected`, read from
   * `audience_affected`, which the caller fills with `affected` first.
   */
  sql: string;
  params: SqlParam[];
  /**
   * With `sinceMs`: selects the people whose membership may differ from that at `sinceMs`, for a mirror
   * whose changes since then are listed in `mirror_touched`: those people, and those for whom a time
   * condition (within, older_than, an event window; of referenced segments too) crossed an edge between
   * `sinceMs` and `nowMs`. Everyone else's membership is what it was.
   */
  affected?: { sql: string; params: SqlParam[] };
  /** The stored segments the query reads (`storedSegments` it references). */
  reads: string[];
  /** The segments built in Customer.io's UI it reads (their members are read anew every evaluation). */
  uiSegments: string[];
}

/** A range of one attribute's instants, or of one event name's times, that a moving `now` crosses. */
type Crossing = { kind: 'attribute'; field: string; lo: number; hi: number } | { kind: 'event'; name: string; lo: number; hi: number };

export class SegmentCompileError extends UserError {
  override name = 'SegmentCompileError';
}

export function compileSegment(cond: Condition, ctx: CompileContext): CompiledSegment {
  const c = new Compiler(ctx);
  const env = c.bind(ctx.env);
  const stack = ctx.name === undefined ? [] : [ctx.name];
  const pred = c.condition(cond, stack);
  const out = { reads: [...c.reads].sort(), uiSegments: [...c.uiSegments].sort() };
  if (ctx.sinceMs === undefined) return { sql: `SELECT DISTINCT p.person_id FROM mirror_people p WHERE p.env = ${env} AND ${pred}`, params: c.params, ...out };
  // The restriction comes last in the text so its binds follow the predicate's; the planner drives the
  // query from it all the same (an IN list on mirror_people's key). The store finds the affected people
  // once, into `audience_affected`, and this reads them from there (state/audiences.ts storeCandidates).
  const restrict = `SELECT f.person_id FROM audience_affected f WHERE f.env = ${c.bind(ctx.env)}`;
  const standalone = new Compiler(ctx);
  const affected = { sql: affectedQuery(standalone, c.crossings, c.readsEvents, [...c.fields].sort()), params: standalone.params };
  return { sql: `SELECT DISTINCT p.person_id FROM mirror_people p WHERE p.env = ${env} AND ${pred} AND p.person_id IN (${restrict})`, params: c.params, affected, ...out };
}

/**
 * The people whose mirror changed, and those in any crossed range (each an index range). For a query that
 * reads no event, of the changed people only those about whom anything may have changed (`attrs` 2), and
 * those whose changed attributes (`attrs` 4, the fields in `mirror_touched_fields`) include one it reads:
 * not those whose events alone changed (`attrs` 3), nor those whose other fields did.
 */
function affectedQuery(c: Compiler, crossings: readonly Crossing[], readsEvents: boolean, fields: readonly string[]): string {
  const env = c.bind(c.env);
  let changed = '';
  if (!readsEvents) {
    const listed = fields.length
      ? ` OR (t.attrs = 4 AND EXISTS (SELECT 1 FROM mirror_touched_fields f WHERE f.env = t.env AND f.person_id = t.person_id AND f.field IN (${fields.map((f) => c.bind(f)).join(', ')})))`
      : '';
    changed = ` AND (t.attrs = 2${listed})`;
  }
  const parts = [`SELECT t.person_id FROM mirror_touched t WHERE t.env = ${env}${changed}`];
  for (const x of crossings) {
    parts.push(
      x.kind === 'attribute'
        ? `SELECT a.person_id FROM mirror_attributes a WHERE a.env = ${c.bind(c.env)} AND a.field = ${c.bind(x.field)} AND a.ts_ms >= ${c.bind(x.lo)} AND a.ts_ms <= ${c.bind(x.hi)}`
        : `SELECT ev.person_id FROM mirror_events ev WHERE ev.env = ${c.bind(c.env)} AND ev.name = ${c.bind(x.name)} AND ev.occurred_ms >= ${c.bind(x.lo)} AND ev.occurred_ms <= ${c.bind(x.hi)}`,
    );
  }
  return parts.join(' UNION ');
}

class Compiler {
  readonly params: SqlParam[] = [];
  readonly crossings: Crossing[] = [];
  readonly reads = new Set<string>();
  readonly uiSegments = new Set<string>();
  /** Whether the query reads events (of referenced segments too): who is affected depends on it. */
  readsEvents = false;
  /** The attributes the query reads (of referenced segments too): whose changed fields affect it. */
  readonly fields = new Set<string>();

  constructor(private readonly ctx: CompileContext) {}

  get env(): string {
    return this.ctx.env;
  }

  /**
   * Records that membership may change for the instants of `edge(now)` as `now` moves from `sinceMs` to
   * `nowMs`: both ends of the range are in (a superset of the instants whose side of the edge changed).
   */
  private crossing(x: { kind: 'attribute'; field: string } | { kind: 'event'; name: string }, offset: number): void {
    const since = this.ctx.sinceMs;
    if (since === undefined || since === this.ctx.nowMs) return;
    const lo = Math.min(since, this.ctx.nowMs) - offset;
    const hi = Math.max(since, this.ctx.nowMs) - offset;
    this.crossings.push({ ...x, lo, hi });
  }

  bind(v: SqlParam): string {
    this.params.push(v);
    return this.ctx.dialect === 'postgres' ? `$${this.params.length}` : '?';
  }

  private fail(stack: readonly string[], what: string, hint?: string): never {
    const where = stack.length > 0 ? `segment ${stack[stack.length - 1]}` : 'segment conditions';
    throw new SegmentCompileError(`${where}: ${what}`, hint === undefined ? {} : { hint });
  }

  // Text is emitted left to right and every bind happens at its place in the text, which keeps `?`
  // positions in step with the params array.
  condition(cond: Condition, stack: string[]): string {
    if (cond.attribute) return this.attribute(cond.attribute, stack);
    if (cond.event) return this.event(cond.event, stack);
    if (cond.segment !== undefined) return this.segment(cond.segment, stack);
    if (cond.all) return this.list(cond.all, 'AND', 'all', stack);
    if (cond.any) return this.list(cond.any, 'OR', 'any', stack);
    if (cond.not) return `(NOT ${this.condition(cond.not, stack)})`;
    return this.fail(stack, 'a condition has none of attribute, event, segment, all, any, not');
  }

  private list(items: readonly Condition[], op: 'AND' | 'OR', key: string, stack: string[]): string {
    if (items.length === 0) this.fail(stack, `${key} has an empty list`);
    return `(${items.map((i) => this.condition(i, stack)).join(` ${op} `)})`;
  }

  private segment(name: string, stack: string[]): string {
    if (stack.includes(name)) {
      const cycle = [...stack.slice(stack.indexOf(name)), name].join(' → ');
      this.fail(stack, `segment references form a cycle: ${cycle}`, 'A segment cannot contain itself; break the cycle in one of these segments.');
    }
    const inner = this.ctx.segmentConditions(name);
    if (inner === undefined) this.fail(stack, `references segment ${name}, which is not declared`);
    if (inner === null) {
      // A segment built in Customer.io's UI: its members were read through the App API into their own table.
      if (this.ctx.uiSegmentMembers) {
        this.uiSegments.add(name);
        return this.member('ui_segment_members', 'u', `u.env = ${this.bind(this.ctx.env)} AND u.segment = ${this.bind(name)}`);
      }
      this.fail(stack, `references segment ${name}, which has no conditions (it points at a Customer.io segment), so its members are not in the mirror`);
    }
    // Its members as stored earlier in this evaluation. Its conditions are still compiled (and thrown
    // away, with their binds) so that a cycle through it or an error in it is reported as when inlined.
    if (this.ctx.storedSegments?.has(name)) {
      // Its time conditions still move its members (and so this segment's): their crossings count here.
      const thrown = new Compiler(this.ctx);
      thrown.condition(inner, [...stack, name]);
      this.crossings.push(...thrown.crossings);
      if (thrown.readsEvents) this.readsEvents = true;
      for (const f of thrown.fields) this.fields.add(f);
      for (const u of thrown.uiSegments) this.uiSegments.add(u);
      this.reads.add(name);
      return this.member('audience_candidates', 'c', `c.env = ${this.bind(this.ctx.env)} AND c.segment = ${this.bind(name)}`);
    }
    // Inlined: the referenced segment's predicate reads the same `p`, so it is exactly its membership.
    return this.condition(inner, [...stack, name]);
  }

  /**
   * `p` is a member when a row of `table` (as `alias`) satisfies `where`, whose binds are already made
   * (this adds none, so the text order of the placeholders holds).
   */
  private member(table: string, alias: string, where: string): string {
    // Deciding a few affected people, one index seek each beats reading everyone's field.
    if (this.ctx.sinceMs !== undefined) return `EXISTS (SELECT 1 FROM ${table} ${alias} WHERE ${where} AND ${alias}.person_id = p.person_id)`;
    return `p.person_id IN (SELECT ${alias}.person_id FROM ${table} ${alias} WHERE ${where})`;
  }

  private attrProbe(field: string, extra: string): string {
    const env = this.bind(this.ctx.env);
    const f = this.bind(field);
    return this.member('mirror_attributes', 'a', `a.env = ${env} AND a.field = ${f}${extra ? ` AND ${extra}` : ''}`);
  }

  private attribute(a: AttributeCondition, stack: string[]): string {
    this.fields.add(a.field);
    const type = this.ctx.fieldTypes[a.field];
    if (type === undefined) this.fail(stack, `attribute ${a.field} is not declared in Fields`);
    const where = `attribute ${a.field} (${a.op})`;
    switch (a.op) {
      case 'exists':
        return this.attrProbe(a.field, '');
      case 'not_exists':
        return `(NOT ${this.attrProbe(a.field, '')})`;
      case 'eq':
      case 'neq': {
        const v = this.scalar(a.value, type, where, stack);
        const col = columnOf(type);
        // Binds must follow the text order: probe's env and field first, then the value.
        const env = this.bind(this.ctx.env);
        const f = this.bind(a.field);
        const p = this.bind(v);
        return this.member('mirror_attributes', 'a', `a.env = ${env} AND a.field = ${f} AND a.${col} ${a.op === 'eq' ? '=' : '<>'} ${p}`);
      }
      case 'in':
      case 'not_in': {
        const raw = Array.isArray(a.value) ? a.value : a.value === undefined ? undefined : [a.value];
        if (raw === undefined) this.fail(stack, `${where} needs a value list, e.g. value: [gold, platinum]`);
        const values = raw.map((r) => this.scalar(r, type, where, stack));
        // Nothing is in an empty list, and everyone who has the attribute is outside it.
        if (values.length === 0) return a.op === 'in' ? `(1 = 0)` : this.attrProbe(a.field, '');
        const col = columnOf(type);
        const env = this.bind(this.ctx.env);
        const f = this.bind(a.field);
        const list = values.map((v) => this.bind(v)).join(', ');
        return this.member('mirror_attributes', 'a', `a.env = ${env} AND a.field = ${f} AND a.${col} ${a.op === 'in' ? 'IN' : 'NOT IN'} (${list})`);
      }
      case 'gt':
      case 'gte':
      case 'lt':
      case 'lte': {
        if (type !== 'number' && type !== 'timestamp') {
          this.fail(stack, `${where} compares order, which needs a number or timestamp field; ${a.field} is ${type}`);
        }
        const v = this.scalar(a.value, type, where, stack);
        const sym = { gt: '>', gte: '>=', lt: '<', lte: '<=' }[a.op];
        const env = this.bind(this.ctx.env);
        const f = this.bind(a.field);
        const p = this.bind(v);
        return this.member('mirror_attributes', 'a', `a.env = ${env} AND a.field = ${f} AND a.${columnOf(type)} ${sym} ${p}`);
      }
      case 'between': {
        if (type !== 'number' && type !== 'timestamp') {
          this.fail(stack, `${where} compares order, which needs a number or timestamp field; ${a.field} is ${type}`);
        }
        if (!Array.isArray(a.value) || a.value.length !== 2) this.fail(stack, `${where} needs value: [low, high]`);
        const lo = this.scalar(a.value[0], type, where, stack);
        const hi = this.scalar(a.value[1], type, where, stack);
        const env = this.bind(this.ctx.env);
        const f = this.bind(a.field);
        const col = columnOf(type);
        // Both ends included, as SQL BETWEEN; a reversed pair matches no one (the schema refuses it).
        return this.member('mirror_attributes', 'a', `a.env = ${env} AND a.field = ${f} AND a.${col} >= ${this.bind(lo)} AND a.${col} <= ${this.bind(hi)}`);
      }
      case 'contains': {
        if (type !== 'string' && type !== 'enum') this.fail(stack, `${where} looks for text, which needs a string field; ${a.field} is ${type}`);
        if (a.value === undefined || Array.isArray(a.value)) this.fail(stack, `${where} needs a single value`);
        const env = this.bind(this.ctx.env);
        const f = this.bind(a.field);
        const needle = this.bind(String(a.value));
        // instr and strpos are both byte/character-exact and case-sensitive, and both give 1 for an
        // empty needle, so the two engines agree on every input (LIKE would not: its case folding and
        // escapes differ).
        const fn = this.ctx.dialect === 'postgres' ? 'strpos' : 'instr';
        return this.member('mirror_attributes', 'a', `a.env = ${env} AND a.field = ${f} AND ${fn}(a.value, ${needle}) > 0`);
      }
      case 'within':
      case 'older_than': {
        if (type !== 'timestamp') this.fail(stack, `${where} needs a timestamp field; ${a.field} is ${type}`);
        const d = a.duration === undefined ? undefined : parseDuration(a.duration);
        if (d === undefined) this.fail(stack, `${where} needs a duration, e.g. duration: 14d`);
        const env = this.bind(this.ctx.env);
        const f = this.bind(a.field);
        this.crossing({ kind: 'attribute', field: a.field }, d);
        if (a.op === 'within') this.crossing({ kind: 'attribute', field: a.field }, 0);
        const edge = this.bind(this.ctx.nowMs - d);
        const cond = a.op === 'within' ? `a.ts_ms >= ${edge} AND a.ts_ms <= ${this.bind(this.ctx.nowMs)}` : `a.ts_ms < ${edge}`;
        return this.member('mirror_attributes', 'a', `a.env = ${env} AND a.field = ${f} AND ${cond}`);
      }
    }
  }

  /** A spec value in the form of the column it is compared with (see columnOf). */
  private scalar(value: AttributeCondition['value'], type: FieldType, where: string, stack: string[]): SqlParam {
    if (value === undefined || Array.isArray(value)) this.fail(stack, `${where} needs a single value`);
    switch (type) {
      case 'number': {
        const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
        if (!Number.isFinite(n)) this.fail(stack, `${where}: the value is not a number`);
        return n;
      }
      case 'timestamp': {
        // A number is epoch milliseconds (the mirror's unit); text must carry its own offset or Z, since
        // a pure compiler has no timezone to read a naive date-time in.
        if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
        if (typeof value === 'string' && /(?:Z|[+-]\d\d:?\d\d)$/i.test(value.trim())) {
          const ms = Date.parse(value.trim());
          if (Number.isFinite(ms)) return ms;
        }
        return this.fail(stack, `${where}: the value is not a timestamp`, 'Give an ISO date-time with an offset (2026-01-31T00:00:00Z) or epoch milliseconds.');
      }
      case 'boolean': {
        const t = String(value).trim().toLowerCase();
        if (t !== 'true' && t !== 'false') this.fail(stack, `${where}: the value is not true or false`);
        return t;
      }
      default:
        return String(value);
    }
  }

  private event(e: EventCondition, stack: string[]): string {
    this.readsEvents = true;
    const from = e.from === undefined ? 0 : parseDuration(e.from);
    const to = e.to === undefined ? undefined : parseDuration(e.to);
    if (from === undefined || (e.to !== undefined && to === undefined)) this.fail(stack, `event ${e.name}: the window is not a duration`);
    const min = e.count?.min ?? 1;
    const max = e.count?.max;
    if (max !== undefined && min > max) this.fail(stack, `event ${e.name}: count min ${min} is above max ${max}`);
    this.crossing({ kind: 'event', name: e.name }, from);
    if (to !== undefined) this.crossing({ kind: 'event', name: e.name }, to);
    const env = this.bind(this.ctx.env);
    const name = this.bind(e.name);
    const upper = this.bind(this.ctx.nowMs - from);
    const lower = to === undefined ? '' : ` AND ev.occurred_ms > ${this.bind(this.ctx.nowMs - to)}`;
    const window = `ev.env = ${env} AND ev.name = ${name} AND ev.occurred_ms <= ${upper}${lower}`;
    let probe: string;
    if (min === 1 && max === undefined) {
      // The default (at least one) is a plain membership probe; only a real count pays for COUNT(*).
      probe = this.member('mirror_events', 'ev', window);
    } else {
      // Counted once per person who has any such event; those who have none have a count of 0, which is
      // in min..max exactly when min <= 0, so then the members are everyone outside the people whose
      // count is out of range.
      const range = max === undefined ? `>= ${this.bind(min)}` : `BETWEEN ${this.bind(min)} AND ${this.bind(max)}`;
      if (this.ctx.sinceMs !== undefined) {
        // The same sets as below, decided per person.
        const grouped = (having: string) => `EXISTS (SELECT 1 FROM mirror_events ev WHERE ${window} AND ev.person_id = p.person_id GROUP BY ev.person_id HAVING ${having})`;
        probe = min >= 1 ? grouped(`COUNT(*) ${range}`) : `(NOT ${grouped(`NOT (COUNT(*) ${range})`)})`;
        return e.occurred === false ? `(NOT ${probe})` : probe;
      }
      const grouped = (having: string) => `p.person_id IN (SELECT ev.person_id FROM mirror_events ev WHERE ${window} GROUP BY ev.person_id HAVING ${having})`;
      probe = min >= 1 ? grouped(`COUNT(*) ${range}`) : `(NOT ${grouped(`NOT (COUNT(*) ${range})`)})`;
    }
    return e.occurred === false ? `(NOT ${probe})` : probe;
  }
}

/** Which mirror column a field's comparisons read: numbers numerically, timestamps by instant, the rest as text. */
function columnOf(type: FieldType): 'num' | 'ts_ms' | 'value' {
  return type === 'number' ? 'num' : type === 'timestamp' ? 'ts_ms' : 'value';
}
