/**
 * Can two segment conditions hold for one person at once? A decision procedure for exclusive groups
 * (SEG001). Pure: no I/O, no clock (`nowMs` is an optional argument).
 *
 * Both conditions are expanded into DNF (segment references inlined, `not` pushed down to literals),
 * then every pair of clauses is checked for satisfiability, field by field and event by event: interval
 * sets for numbers and timestamps, finite domains or a constructed string for text, difference
 * constraints for event counts in windows. A satisfiable pair yields a concrete profile, which is then
 * evaluated against both conditions by `evaluate` below (the SQL compiler's semantics, re-stated on one
 * profile); a profile that fails that check is never shown, the verdict is `unknown` instead.
 *
 * The verdicts are one-sided on purpose: `disjoint` only when every clause pair is shown unsatisfiable,
 * `overlap` only with a witness that passed the check, and `unknown` (with why) for anything else.
 *
 * The semantics are those of reconciler/audiences (see its README): a missing attribute has no row; a
 * number or timestamp row whose text did not parse has a NULL num/ts_ms and matches no comparison (only
 * exists); enum fields hold only declared values (the sync refuses others); booleans are `true`/`false`.
 */
import { formatDuration, parseDuration } from '../../core/duration.ts';
import type { AttributeCondition, Condition, EventCondition } from '../schema/segment.ts';

export type FieldType = 'string' | 'number' | 'boolean' | 'timestamp' | 'enum';

export interface OverlapContext {
  /** Declared attribute types, from Fields. */
  fieldTypes: Readonly<Record<string, FieldType>>;
  /** Allowed values of enum fields, from Fields. */
  enumValues?: Readonly<Record<string, readonly string[]>>;
  /** Another segment's conditions; undefined when not declared, null when it has none (a Customer.io segment). */
  segmentConditions(name: string): Condition | null | undefined;
  /**
   * A fixed now. Without it, timestamps compared both with fixed instants and with ages (within,
   * older_than) cannot be related, and such a clause is undecided.
   */
  nowMs?: number;
  /** Past this many DNF clauses on one side, the verdict is unknown. Default MAX_CLAUSES. */
  maxClauses?: number;
}

/** A profile as the mirror would hold it. Timestamps are an age (relative to now) or a fixed instant. */
export interface Profile {
  attributes: Record<string, ProfileValue>;
  events: ProfileEvent[];
}
export type ProfileValue =
  | { kind: 'text'; value: string }
  | { kind: 'number'; value: number }
  | { kind: 'timestamp'; ageMs: number }
  | { kind: 'timestamp'; atMs: number }
  /** A row whose text did not parse as the field's type (num / ts_ms NULL). */
  | { kind: 'unparsed'; value: string; of?: 'number' | 'timestamp' };
export interface ProfileEvent {
  name: string;
  ageMs: number;
}

export type Verdict = { verdict: 'disjoint' } | { verdict: 'overlap'; witness: Profile } | { verdict: 'unknown'; why: string };

export const MAX_CLAUSES = 256;
/** Past this many clause pairs for one pair of conditions, the verdict is unknown (bounds a group's cost). */
export const MAX_CLAUSE_PAIRS = 4_096;
const MAX_WITNESS_EVENTS = 10_000;
/** Per event name, each "did not occur" with a count splits into below-min or above-max: at most 2^this branches. */
const MAX_EVENT_BRANCHES = 10;
/** The now a profile is evaluated at when none is given: any instant works for ages, and fixed instants ignore it. */
export const REFERENCE_NOW = Date.UTC(2026, 0, 1);

class Undecided extends Error {}
const undecided = (why: string): never => {
  throw new Undecided(why);
};

// ---------------------------------------------------------------------------------------------------
// Spec values, read exactly as reconciler/audiences/compile.ts reads them.

function numberOf(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

function instantOf(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v === 'string' && /(?:Z|[+-]\d\d:?\d\d)$/i.test(v.trim())) {
    const ms = Date.parse(v.trim());
    if (Number.isFinite(ms)) return ms;
  }
  return undefined;
}

function textOf(v: unknown, type: FieldType): string | undefined {
  if (type === 'boolean') {
    const t = String(v).trim().toLowerCase();
    return t === 'true' || t === 'false' ? t : undefined;
  }
  return String(v);
}

const ORDERED_OPS = new Set(['gt', 'gte', 'lt', 'lte', 'between']);

/** Refuses what the compiler refuses, so a condition the database cannot run is never called apart. */
function checkAttribute(a: AttributeCondition, type: FieldType | undefined): FieldType {
  if (type === undefined) return undecided(`attribute ${a.field} is not declared in Fields`);
  const where = `attribute ${a.field} (${a.op})`;
  if (ORDERED_OPS.has(a.op) && type !== 'number' && type !== 'timestamp') return undecided(`${where} needs a number or timestamp field`);
  if ((a.op === 'within' || a.op === 'older_than') && (type !== 'timestamp' || a.duration === undefined || parseDuration(a.duration) === undefined)) {
    return undecided(`${where} needs a timestamp field and a duration`);
  }
  if (a.op === 'contains' && type !== 'string' && type !== 'enum') return undecided(`${where} needs a string field`);
  const single = (v: unknown) => {
    if (v === undefined || Array.isArray(v)) undecided(`${where} needs a single value`);
    const ok = type === 'number' ? numberOf(v) !== undefined : type === 'timestamp' ? instantOf(v) !== undefined : textOf(v, type) !== undefined;
    if (!ok) undecided(`${where}: the value is not a ${type}`);
  };
  switch (a.op) {
    case 'eq':
    case 'neq':
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte':
      single(a.value);
      break;
    case 'contains':
      if (a.value === undefined || Array.isArray(a.value)) undecided(`${where} needs a single value`);
      break;
    case 'in':
    case 'not_in':
      if (a.value === undefined) undecided(`${where} needs a value list`);
      (Array.isArray(a.value) ? a.value : [a.value]).forEach(single);
      break;
    case 'between':
      if (!Array.isArray(a.value) || a.value.length !== 2) return undecided(`${where} needs value: [low, high]`);
      a.value.forEach(single);
      break;
    default:
      break;
  }
  return type;
}

// ---------------------------------------------------------------------------------------------------
// DNF

interface AttrLit {
  kind: 'attr';
  /** Identifies the literal regardless of sign, to spot `x` next to `not x`. */
  key: string;
  neg: boolean;
  a: AttributeCondition;
  type: FieldType;
  /** Number fields: the values the literal accepts (its sign applied), once computed. */
  numbers?: IntervalSet;
}
interface EventLit {
  kind: 'event';
  key: string;
  /** true: the count in the window is outside [min, max]. occurred: false is folded in here. */
  neg: boolean;
  e: EventCondition;
  from: number;
  to: number;
  min: number;
  max: number;
}
type Lit = AttrLit | EventLit;
type Clause = Lit[];

/** Conditions in DNF, or why they could not be put in it. */
export type Prepared = { clauses: Clause[] } | { why: string };

export function prepareCondition(c: Condition, ctx: OverlapContext, stack: string[] = []): Prepared {
  try {
    return { clauses: dnf(c, false, ctx, stack, ctx.maxClauses ?? MAX_CLAUSES) };
  } catch (e) {
    if (e instanceof Undecided) return { why: e.message };
    throw e;
  }
}

function dnf(c: Condition, neg: boolean, ctx: OverlapContext, stack: string[], cap: number): Clause[] {
  if (c.attribute) {
    const type = checkAttribute(c.attribute, ctx.fieldTypes[c.attribute.field]);
    return [[{ kind: 'attr', key: `a${JSON.stringify(c.attribute)}`, neg, a: c.attribute, type }]];
  }
  if (c.event) return [[eventLit(c.event, neg)]];
  if (c.segment !== undefined) {
    if (stack.includes(c.segment)) return undecided(`segment references form a cycle through ${c.segment}`);
    const inner = ctx.segmentConditions(c.segment);
    if (inner === undefined) return undecided(`segment ${c.segment} is not declared`);
    if (inner === null) return undecided(`segment ${c.segment} is a Customer.io segment, whose members are not declared`);
    return dnf(inner, neg, ctx, [...stack, c.segment], cap);
  }
  if (c.not) return dnf(c.not, !neg, ctx, stack, cap);
  const items = c.all ?? c.any;
  if (!items || items.length === 0) return undecided('a condition has none of attribute, event, segment, all, any, not');
  // all is a conjunction unless negated (De Morgan), any the other way round.
  const conjunction = (c.all !== undefined) !== neg;
  const parts = items.map((i) => dnf(i, neg, ctx, stack, cap));
  if (!conjunction) {
    const out = parts.flat();
    if (out.length > cap) undecided(`the conditions expand to more than ${cap} alternatives`);
    return out;
  }
  let acc: Clause[] = [[]];
  for (const p of parts) {
    if (acc.length * p.length > cap) undecided(`the conditions expand to more than ${cap} alternatives`);
    acc = acc.flatMap((x) => p.map((y) => [...x, ...y]));
  }
  return acc;
}

function eventLit(e: EventCondition, neg: boolean): EventLit {
  const from = e.from === undefined ? 0 : parseDuration(e.from);
  const to = e.to === undefined ? Infinity : parseDuration(e.to);
  if (from === undefined || to === undefined) return undecided(`event ${e.name}: the window is not a duration`);
  const min = e.count?.min ?? 1;
  const max = e.count?.max ?? Infinity;
  return { kind: 'event', key: `e${JSON.stringify([e.name, from, to, min, max])}`, neg: neg !== (e.occurred === false), e, from, to, min, max };
}

// ---------------------------------------------------------------------------------------------------
// The decision

export function canOverlap(a: Condition, b: Condition, ctx: OverlapContext): Verdict {
  return decidePrepared(prepareCondition(a, ctx), prepareCondition(b, ctx), a, b, ctx);
}

/** canOverlap on conditions already in DNF (a group prepares each member once). */
export function decidePrepared(pa: Prepared, pb: Prepared, a: Condition, b: Condition, ctx: OverlapContext): Verdict {
  if ('why' in pa) return { verdict: 'unknown', why: pa.why };
  if ('why' in pb) return { verdict: 'unknown', why: pb.why };
  if (pa.clauses.length * pb.clauses.length > MAX_CLAUSE_PAIRS) {
    return { verdict: 'unknown', why: `together the conditions have ${pa.clauses.length * pb.clauses.length} pairs of alternatives, more than the ${MAX_CLAUSE_PAIRS.toLocaleString('en-US')} compared` };
  }
  let why: string | undefined;
  for (const ca of pa.clauses) {
    for (const cb of pb.clauses) {
      let r: Solved;
      try {
        r = solveClause(ca.concat(cb), ctx);
      } catch (e) {
        if (!(e instanceof Undecided)) throw e;
        why ??= e.message;
        continue;
      }
      if (r === 'unsat') continue;
      // The solver and the evaluator are written independently; a profile both agree on is shown.
      const evalCtx: EvaluateContext = { fieldTypes: ctx.fieldTypes, segmentConditions: ctx.segmentConditions, nowMs: ctx.nowMs ?? REFERENCE_NOW };
      if (evaluate(a, r, evalCtx) && evaluate(b, r, evalCtx)) return { verdict: 'overlap', witness: r };
      why ??= 'a profile was found for both, but it did not pass the re-check against the conditions';
    }
  }
  return why === undefined ? { verdict: 'disjoint' } : { verdict: 'unknown', why };
}

type Solved = Profile | 'unsat';

function solveClause(lits: Clause, ctx: OverlapContext): Solved {
  const n = lits.length;
  // A literal next to its own negation (`x` and `not: { segment }` containing x) is a contradiction
  // whatever x means, even where x alone is undecided. Clauses are short, and this runs once per pair
  // of a group, so pairwise loops beat building maps.
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) if (lits[i]!.key === lits[j]!.key && lits[i]!.neg !== lits[j]!.neg) return 'unsat';
  }
  const done: boolean[] = new Array<boolean>(n).fill(false);
  const profile: Profile = { attributes: {}, events: [] };
  // Attributes first: they are cheap, so an unsatisfiable pair rarely pays for event solving.
  for (const kind of ['attr', 'event'] as const) {
    for (let i = 0; i < n; i++) {
      const l = lits[i]!;
      if (done[i] || l.kind !== kind) continue;
      const name = l.kind === 'attr' ? l.a.field : l.e.name;
      const group: Lit[] = [l];
      for (let j = i + 1; j < n; j++) {
        const m = lits[j]!;
        if (m.kind === kind && (m.kind === 'attr' ? m.a.field : m.e.name) === name) {
          group.push(m);
          done[j] = true;
        }
      }
      if (kind === 'attr') {
        const v = solveField(name, group as AttrLit[], ctx);
        if (v === 'unsat') return 'unsat';
        if (v !== 'absent') profile.attributes[name] = v;
      } else {
        const ages = solveEvents(name, group as EventLit[]);
        if (ages === 'unsat') return 'unsat';
        for (const ageMs of ages) profile.events.push({ name, ageMs });
      }
    }
  }
  return profile;
}

// --- attributes -------------------------------------------------------------------------------------

function solveField(field: string, lits: AttrLit[], ctx: OverlapContext): ProfileValue | 'absent' | 'unsat' {
  const type = lits[0]!.type;
  // not_exists is a negated exists; after that, no positive literal holds for a missing attribute, so
  // without one, absence satisfies them all, and with one, a negated exists cannot hold.
  // `not_in []` compiles to a bare existence probe (even a row whose text did not parse is in it).
  // Loops rather than every/some/filter: this runs once per pair of a group (a million times for a
  // large one), and under tsx every arrow created here is also renamed at run time.
  let plain = true;
  for (const l of lits) if (l.a.op === 'not_exists' || l.a.op === 'not_in') plain = false;
  const norm = plain ? lits : lits.map(normalizeLit);
  let allNeg = true;
  const valued: AttrLit[] = [];
  for (const l of norm) {
    if (!l.neg) allNeg = false;
    if (l.a.op !== 'exists') valued.push(l);
  }
  if (allNeg) return 'absent';
  for (const l of norm) if (l.neg && l.a.op === 'exists') return 'unsat';
  if (type === 'number' || type === 'timestamp') {
    const v = type === 'number' ? solveNumber(valued) : solveTimestamp(field, valued, ctx);
    if (v !== 'unsat') return v;
    // A row whose text did not parse matches exists and fails every comparison (so every negated one holds).
    for (const l of valued) if (!l.neg) return 'unsat';
    return { kind: 'unparsed', value: 'not-parsed', of: type };
  }
  const domain = type === 'boolean' ? ['true', 'false'] : type === 'enum' ? ctx.enumValues?.[field] : undefined;
  return solveText(field, type, valued, domain);
}

function normalizeLit(l: AttrLit): AttrLit {
  if (l.a.op === 'not_exists') return { ...l, neg: !l.neg, a: { ...l.a, op: 'exists' } };
  if (l.a.op === 'not_in' && listOf(l.a.value).length === 0) return { ...l, a: { ...l.a, op: 'exists' } };
  return l;
}

/** A set of reals (or integers) as sorted disjoint intervals. */
interface Interval {
  lo: number;
  loIn: boolean;
  hi: number;
  hiIn: boolean;
}
type IntervalSet = Interval[];

const ALL: IntervalSet = [{ lo: -Infinity, loIn: false, hi: Infinity, hiIn: false }];
const point = (v: number): Interval => ({ lo: v, loIn: true, hi: v, hiIn: true });

function intersect(a: IntervalSet, b: IntervalSet): IntervalSet {
  const out: IntervalSet = [];
  for (const x of a) {
    for (const y of b) {
      const lo = Math.max(x.lo, y.lo);
      const hi = Math.min(x.hi, y.hi);
      const loIn = (x.lo === lo ? x.loIn : true) && (y.lo === lo ? y.loIn : true);
      const hiIn = (x.hi === hi ? x.hiIn : true) && (y.hi === hi ? y.hiIn : true);
      if (lo < hi || (lo === hi && loIn && hiIn)) out.push({ lo, loIn, hi, hiIn });
    }
  }
  return out.sort((p, q) => p.lo - q.lo);
}

function complement(s: IntervalSet): IntervalSet {
  let out = ALL;
  for (const i of s) {
    const outside: IntervalSet = [];
    if (i.lo > -Infinity) outside.push({ lo: -Infinity, loIn: false, hi: i.lo, hiIn: !i.loIn });
    if (i.hi < Infinity) outside.push({ lo: i.hi, loIn: !i.hiIn, hi: Infinity, hiIn: false });
    out = intersect(out, outside.filter((o) => o.lo < o.hi || (o.loIn && o.hiIn)));
  }
  return out;
}

/** The values an ordered comparison accepts, over reals. */
function orderSet(op: AttributeCondition['op'], values: number[]): IntervalSet {
  const v = values[0]!;
  switch (op) {
    case 'eq':
      return [point(v)];
    case 'neq':
      return complement([point(v)]);
    case 'in':
      return values.map(point).sort((p, q) => p.lo - q.lo);
    case 'not_in':
      return complement(values.map(point).sort((p, q) => p.lo - q.lo));
    case 'gt':
      return [{ lo: v, loIn: false, hi: Infinity, hiIn: false }];
    case 'gte':
      return [{ lo: v, loIn: true, hi: Infinity, hiIn: false }];
    case 'lt':
      return [{ lo: -Infinity, loIn: false, hi: v, hiIn: false }];
    case 'lte':
      return [{ lo: -Infinity, loIn: false, hi: v, hiIn: true }];
    case 'between':
      return v <= values[1]! ? [{ lo: v, loIn: true, hi: values[1]!, hiIn: true }] : [];
    default:
      return undecided(`${op} is not an ordered comparison`);
  }
}

const listOf = (v: AttributeCondition['value']): unknown[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]);

function solveNumber(lits: AttrLit[]): ProfileValue | 'unsat' {
  let set = ALL;
  for (const l of lits) {
    // The literal's accepted values are worked out once: literals are shared by every pair of a group.
    if (l.numbers === undefined) {
      const s = orderSet(l.a.op, listOf(l.a.value).map((v) => numberOf(v)!));
      l.numbers = l.neg ? complement(s) : s;
    }
    set = intersect(set, l.numbers);
    if (set.length === 0) return 'unsat';
  }
  return { kind: 'number', value: pickReal(set[0]!) };
}

function pickReal(i: Interval): number {
  if (i.loIn) return i.lo;
  if (i.hiIn) return i.hi;
  if (i.lo === -Infinity && i.hi === Infinity) return 0;
  if (i.lo === -Infinity) return Math.floor(i.hi) - 1;
  if (i.hi === Infinity) return Math.floor(i.lo) + 1;
  const whole = Math.floor(i.lo) + 1;
  return whole < i.hi ? whole : (i.lo + i.hi) / 2;
}

/** Integers in an interval, as a closed range (ts_ms is whole milliseconds). */
function pickInteger(set: IntervalSet, prefer?: (lo: number, hi: number) => number): number | undefined {
  for (const i of set) {
    const lo = i.lo === -Infinity ? -Infinity : i.loIn ? Math.ceil(i.lo) : Math.floor(i.lo) + 1;
    const hi = i.hi === Infinity ? Infinity : i.hiIn ? Math.floor(i.hi) : Math.ceil(i.hi) - 1;
    if (lo > hi) continue;
    if (prefer) return prefer(lo, hi);
    return lo > -Infinity ? lo : hi < Infinity ? hi : 0;
  }
  return undefined;
}

function solveTimestamp(field: string, lits: AttrLit[], ctx: OverlapContext): ProfileValue | 'unsat' {
  const relative = lits.some((l) => l.a.op === 'within' || l.a.op === 'older_than');
  const fixed = lits.some((l) => l.a.op !== 'within' && l.a.op !== 'older_than');
  // Ages when the field is only compared with now; instants when a fixed now is known or no age is used.
  const useAges = relative && !(fixed && ctx.nowMs !== undefined);
  if (useAges && fixed) undecided(`${field} is compared both with fixed instants and with ages from now; without a fixed now they cannot be related`);
  let set = ALL;
  for (const l of lits) {
    let s: IntervalSet;
    if (l.a.op === 'within' || l.a.op === 'older_than') {
      const d = parseDuration(l.a.duration!)!;
      // within D: now − D ≤ ts ≤ now, i.e. 0 ≤ age ≤ D; older_than D: ts < now − D, i.e. age > D.
      const ages: IntervalSet = l.a.op === 'within' ? [{ lo: 0, loIn: true, hi: d, hiIn: true }] : [{ lo: d, loIn: false, hi: Infinity, hiIn: false }];
      s = useAges ? ages : ages.map((i) => ({ lo: ctx.nowMs! - i.hi, loIn: i.hiIn, hi: ctx.nowMs! - i.lo, hiIn: i.loIn }));
    } else {
      s = orderSet(l.a.op, listOf(l.a.value).map((v) => instantOf(v)!));
    }
    set = intersect(set, l.neg ? complement(s) : s);
    if (set.length === 0) return 'unsat';
  }
  // A witness in the past reads better than one in the future, when the conditions allow either.
  const past = useAges ? intersect(set, [{ lo: 0, loIn: true, hi: Infinity, hiIn: false }]) : [];
  const v = (past.length > 0 ? pickInteger(past, niceAge) : undefined) ?? pickInteger(set);
  if (v === undefined) return 'unsat';
  return useAges ? { kind: 'timestamp', ageMs: v } : { kind: 'timestamp', atMs: v };
}

const DAY = 86_400_000;
const HOUR = 3_600_000;

/** An age in [lo, hi] that reads well (whole days or hours, away from the edges when there is room). */
function niceAge(lo: number, hi: number): number {
  const from = Math.max(lo, 0);
  if (hi === Infinity) {
    const d = Math.ceil(from / DAY) * DAY + DAY;
    return d;
  }
  if (from > hi) return lo;
  const mid = from + Math.floor((hi - from) / 2);
  for (const unit of [DAY, HOUR, 60_000, 1_000]) {
    const r = Math.round(mid / unit) * unit;
    if (r >= from && r <= hi) return r;
  }
  return mid;
}

function solveText(field: string, type: FieldType, lits: AttrLit[], domain: readonly string[] | undefined): ProfileValue | 'unsat' {
  const preds = lits.map((l) => {
    const values = listOf(l.a.value).map((v) => textOf(v, type)!);
    const p = textPredicate(l.a.op, values);
    return l.neg ? (s: string) => !p(s) : p;
  });
  const ok = (s: string) => preds.every((p) => p(s));
  // Values the clause pins the field to (eq / in, or a negated neq / not_in): the candidates are finite.
  const pinned = lits.flatMap((l) => {
    const pins = (!l.neg && (l.a.op === 'eq' || l.a.op === 'in')) || (l.neg && (l.a.op === 'neq' || l.a.op === 'not_in'));
    return pins ? [listOf(l.a.value).map((v) => textOf(v, type)!)] : [];
  });
  let candidates: readonly string[] | undefined = domain;
  for (const p of pinned) candidates = candidates === undefined ? p : candidates.filter((c) => p.includes(c));
  if (candidates !== undefined) {
    const hit = candidates.find(ok);
    return hit === undefined ? 'unsat' : { kind: 'text', value: hit };
  }
  // Free text: only contains / neq / not_in remain. It cannot be satisfied when a text it must not
  // contain is inside one it must contain (or is empty); otherwise build one and check it.
  const required = lits.filter((l) => !l.neg && l.a.op === 'contains').map((l) => String(l.a.value));
  const forbidden = lits.filter((l) => l.neg && l.a.op === 'contains').map((l) => String(l.a.value));
  if (forbidden.some((f) => f === '' || required.some((r) => r.includes(f)))) return 'unsat';
  const needles = required.filter((r, i) => !required.some((o, j) => j !== i && o.includes(r) && (o !== r || j < i)));
  const bases = new Set([needles.join(''), needles.join(' '), [...needles].reverse().join(' '), needles.join('_')]);
  for (const base of bases) {
    for (const suffix of ['', 'x', '-1', 'q', ' 7', 'zz']) {
      for (let n = 0; n < 4; n++) {
        const s = `${base}${suffix}${n === 0 ? '' : String(n)}` || 'sample';
        if (ok(s)) return { kind: 'text', value: s };
      }
    }
  }
  return undecided(`no value of ${field} was found that contains ${required.map((r) => JSON.stringify(r)).join(', ')} while avoiding ${forbidden.map((f) => JSON.stringify(f)).join(', ')}`);
}

function textPredicate(op: AttributeCondition['op'], values: string[]): (s: string) => boolean {
  switch (op) {
    case 'eq':
      return (s) => s === values[0];
    case 'neq':
      return (s) => s !== values[0];
    case 'in':
      return (s) => values.includes(s);
    case 'not_in':
      return (s) => !values.includes(s);
    case 'contains':
      return (s) => s.includes(values[0]!);
    default:
      return undecided(`${op} does not apply to text`);
  }
}

// --- events -----------------------------------------------------------------------------------------

/**
 * Ages of events of one name satisfying every literal. Each literal asks that the count in a window of
 * ages [from, to) lies in (or, negated, outside) [min, max]. With the boundaries of all windows cutting
 * the age line into pieces and S_i the number of events before boundary i, every literal is a bound on
 * S_j − S_i, and "counts are not negative" is S_i ≤ S_i+1: difference constraints, solved exactly by
 * Bellman-Ford (integral bounds give integral solutions).
 */
function solveEvents(name: string, lits: EventLit[]): number[] | 'unsat' {
  // Each literal becomes one or two allowed count ranges.
  const options: Array<Array<[number, number]>> = lits.map((l) => {
    const inside: [number, number] = [l.min, l.max];
    if (!l.neg) return l.min <= l.max ? [inside] : [];
    const out: Array<[number, number]> = [];
    if (l.min > 0) out.push([0, l.min - 1]);
    if (l.max < Infinity) out.push([l.max + 1, Infinity]);
    return out;
  });
  if (options.some((o) => o.length === 0)) return 'unsat';
  const splits = options.filter((o) => o.length > 1).length;
  if (splits > MAX_EVENT_BRANCHES) undecided(`event ${name} has too many "did not occur" conditions with counts to decide`);
  const bounds = [...new Set([0, ...lits.flatMap((l) => [l.from, l.to]).filter((x) => Number.isFinite(x) && x >= 0)])].sort((p, q) => p - q);
  const index = (age: number) => (age === Infinity ? bounds.length : bounds.indexOf(Math.max(age, 0)));
  const choose = (i: number, chosen: Array<[number, number]>): number[] | undefined => {
    if (i === options.length) return solveCounts(bounds, lits, chosen, index);
    for (const o of options[i]!) {
      const r = choose(i + 1, [...chosen, o]);
      if (r) return r;
    }
    return undefined;
  };
  return choose(0, []) ?? 'unsat';
}

function solveCounts(bounds: number[], lits: EventLit[], ranges: Array<[number, number]>, index: (age: number) => number): number[] | undefined {
  const n = bounds.length + 1; // S_0 … S_n-1; piece i is [bounds[i], bounds[i+1]) (the last is open-ended)
  const edges: Array<[from: number, to: number, w: number]> = [];
  for (let i = 0; i + 1 < n; i++) edges.push([i + 1, i, 0]);
  for (let k = 0; k < lits.length; k++) {
    const l = lits[k]!;
    const [lo, hi] = ranges[k]!;
    if (l.from >= l.to) {
      // An empty window counts 0 events.
      if (lo > 0) return undefined;
      continue;
    }
    const i = index(l.from);
    const j = index(l.to);
    if (hi < Infinity) edges.push([i, j, hi]);
    edges.push([j, i, -lo]);
  }
  const dist = new Array<number>(n).fill(0);
  for (let round = 0; round <= n; round++) {
    let changed = false;
    for (const [u, v, w] of edges) {
      if (dist[u]! + w < dist[v]!) {
        dist[v] = dist[u]! + w;
        changed = true;
      }
    }
    if (!changed) {
      // A witness is written out event by event; a count in the millions is decided, not shown.
      if (dist[n - 1]! - dist[0]! > MAX_WITNESS_EVENTS) undecided(`a profile in both needs more than ${MAX_WITNESS_EVENTS.toLocaleString('en-US')} events`);
      const ages: number[] = [];
      for (let i = 0; i + 1 < n; i++) {
        const count = dist[i + 1]! - dist[i]!;
        const lo = bounds[i]!;
        const hi = i + 1 < bounds.length ? bounds[i + 1]! - 1 : Infinity;
        for (let c = 0; c < count; c++) ages.push(niceAge(lo, hi));
      }
      return ages;
    }
  }
  return undefined; // a negative cycle: the counts contradict each other
}

// ---------------------------------------------------------------------------------------------------
// Evaluation of one profile, with the SQL compiler's semantics.

/** Does the profile satisfy the condition at `nowMs`? Unknown fields or segments count as no match. */
export interface EvaluateContext {
  fieldTypes: Readonly<Record<string, FieldType>>;
  segmentConditions(name: string): Condition | null | undefined;
  nowMs: number;
}

export function evaluate(c: Condition, p: Profile, ctx: EvaluateContext, stack: string[] = []): boolean {
  if (c.attribute) return evalAttribute(c.attribute, p, ctx);
  if (c.event) {
    const e = c.event;
    const from = e.from === undefined ? 0 : parseDuration(e.from)!;
    const to = e.to === undefined ? undefined : parseDuration(e.to)!;
    const upper = ctx.nowMs - from;
    const lower = to === undefined ? -Infinity : ctx.nowMs - to;
    const count = p.events.filter((x) => x.name === e.name && ctx.nowMs - x.ageMs <= upper && ctx.nowMs - x.ageMs > lower).length;
    const hit = count >= (e.count?.min ?? 1) && count <= (e.count?.max ?? Infinity);
    return e.occurred === false ? !hit : hit;
  }
  if (c.segment !== undefined) {
    const inner = ctx.segmentConditions(c.segment);
    if (!inner || stack.includes(c.segment)) return false;
    return evaluate(inner, p, ctx, [...stack, c.segment]);
  }
  if (c.all) {
    for (const x of c.all) if (!evaluate(x, p, ctx, stack)) return false;
    return true;
  }
  if (c.any) {
    for (const x of c.any) if (evaluate(x, p, ctx, stack)) return true;
    return false;
  }
  if (c.not) return !evaluate(c.not, p, ctx, stack);
  return false;
}

/** The mirror row of a profile value: its text, and num / ts_ms as the mirror's writer sets them. */
export function mirrorRow(v: ProfileValue, nowMs: number): { value: string; num: number | null; ts: number | null } {
  switch (v.kind) {
    case 'text':
      return { value: v.value, num: null, ts: null };
    case 'number':
      return { value: String(v.value), num: v.value, ts: null };
    case 'unparsed':
      return { value: v.value, num: null, ts: null };
    default: {
      const ts = 'ageMs' in v ? nowMs - v.ageMs : v.atMs;
      return { value: new Date(ts).toISOString(), num: null, ts };
    }
  }
}

function evalAttribute(a: AttributeCondition, p: Profile, ctx: { fieldTypes: Readonly<Record<string, FieldType>>; nowMs: number }): boolean {
  const type = ctx.fieldTypes[a.field];
  const v = p.attributes[a.field];
  if (a.op === 'not_exists') return v === undefined;
  if (v === undefined || type === undefined) return false;
  if (a.op === 'exists' || (a.op === 'not_in' && listOf(a.value).length === 0)) return true;
  const row = mirrorRow(v, ctx.nowMs);
  const values = listOf(a.value);
  if (type === 'number' || type === 'timestamp') {
    const col = type === 'number' ? row.num : row.ts;
    if (col === null) return false;
    const n: number[] = [];
    for (const x of values) {
      const r = type === 'number' ? numberOf(x) : instantOf(x);
      if (r === undefined) return false;
      n.push(r);
    }
    switch (a.op) {
      case 'eq': return col === n[0];
      case 'neq': return col !== n[0];
      case 'in': return n.includes(col);
      case 'not_in': return !n.includes(col);
      case 'gt': return col > n[0]!;
      case 'gte': return col >= n[0]!;
      case 'lt': return col < n[0]!;
      case 'lte': return col <= n[0]!;
      case 'between': return n.length === 2 && col >= n[0]! && col <= n[1]!;
      case 'within': return col >= ctx.nowMs - parseDuration(a.duration ?? '')! && col <= ctx.nowMs;
      case 'older_than': return col < ctx.nowMs - parseDuration(a.duration ?? '')!;
      default: return false;
    }
  }
  const ts = values.map((x) => textOf(x, type));
  if (ts.some((x) => x === undefined)) return false;
  const s = ts as string[];
  switch (a.op) {
    case 'eq': return row.value === s[0];
    case 'neq': return row.value !== s[0];
    case 'in': return s.includes(row.value);
    case 'not_in': return !s.includes(row.value);
    case 'contains': return type !== 'boolean' && row.value.includes(s[0]!);
    default: return false;
  }
}

// ---------------------------------------------------------------------------------------------------

/** A witness for people: `field=value`, `order_delivered 15d ago` (synthetic values, never a customer's). */
export function describeProfile(p: Profile, fields: readonly string[] = []): string {
  const parts: string[] = [];
  for (const [f, v] of Object.entries(p.attributes).sort(([x], [y]) => (x < y ? -1 : 1))) {
    if (v.kind === 'text') parts.push(`${f}=${v.value}`);
    else if (v.kind === 'number') parts.push(`${f}=${v.value}`);
    else if (v.kind === 'unparsed') parts.push(`${f} set to text that is not a ${v.of ?? 'number or timestamp'}`);
    else if ('ageMs' in v) parts.push(`${f} ${ago(v.ageMs)}`);
    else parts.push(`${f}=${new Date(v.atMs).toISOString()}`);
  }
  for (const f of [...fields].sort()) if (!(f in p.attributes)) parts.push(`no ${f}`);
  const byName = new Map<string, Map<number, number>>();
  for (const e of p.events) {
    const m = byName.get(e.name) ?? new Map<number, number>();
    m.set(e.ageMs, (m.get(e.ageMs) ?? 0) + 1);
    byName.set(e.name, m);
  }
  for (const [name, ages] of [...byName].sort(([x], [y]) => (x < y ? -1 : 1))) {
    for (const [age, n] of [...ages].sort(([x], [y]) => x - y)) parts.push(`${name}${n > 1 ? ` ×${n}` : ''} ${ago(age)}`);
  }
  return parts.length === 0 ? 'anyone (no attributes or events needed)' : parts.join(', ');
}

function ago(ms: number): string {
  return ms === 0 ? 'just now' : `${formatDuration(ms)} ago`;
}
