import type { Path } from '../../core/diagnostics.ts';
import { parseDuration } from '../../core/duration.ts';
import { walkConditions } from '../resolve.ts';
import { sorted, type Located, type SpecModel } from '../model.ts';
import type { Condition, SegmentSpec } from '../schema/index.ts';
import type { Finding, Rule } from './rule.ts';
import { sourcesFeeding } from './writers.ts';

/** The conditions that must all hold for a member: the top-level conjunction. */
function conjuncts(c: Condition | undefined): Condition[] {
  if (!c) return [];
  if (c.all) return c.all.flatMap((x) => (x.all ? conjuncts(x) : [x]));
  return [c];
}

type Attr = NonNullable<Condition['attribute']>;

function valueSet(a: Attr): Array<string | number | boolean> | undefined {
  if (a.op === 'eq' && a.value !== undefined && !Array.isArray(a.value)) return [a.value];
  if (a.op === 'in' && Array.isArray(a.value)) return a.value;
  return undefined;
}

function excludedSet(a: Attr): Array<string | number | boolean> | undefined {
  if (a.op === 'neq' && a.value !== undefined && !Array.isArray(a.value)) return [a.value];
  if (a.op === 'not_in' && Array.isArray(a.value)) return a.value;
  return undefined;
}

/** Numeric interval [lo, hi] with open/closed ends implied by an attribute comparison. */
function interval(a: Attr): { lo: number; loOpen: boolean; hi: number; hiOpen: boolean } | undefined {
  if (typeof a.value !== 'number') return undefined;
  const v = a.value;
  switch (a.op) {
    case 'gt': return { lo: v, loOpen: true, hi: Infinity, hiOpen: false };
    case 'gte': return { lo: v, loOpen: false, hi: Infinity, hiOpen: false };
    case 'lt': return { lo: -Infinity, loOpen: false, hi: v, hiOpen: true };
    case 'lte': return { lo: -Infinity, loOpen: false, hi: v, hiOpen: false };
    case 'eq': return { lo: v, loOpen: false, hi: v, hiOpen: false };
    default: return undefined;
  }
}

function attributesContradict(a: Attr, b: Attr): boolean {
  if (a.field !== b.field) return false;
  const ops = new Set([a.op, b.op]);
  if (ops.has('exists') && ops.has('not_exists')) return true;
  const va = valueSet(a);
  const vb = valueSet(b);
  if (va && vb && !va.some((x) => vb.includes(x))) return true;
  const xa = excludedSet(a);
  const xb = excludedSet(b);
  if (va && xb && va.every((x) => xb.includes(x))) return true;
  if (vb && xa && vb.every((x) => xa.includes(x))) return true;
  const ia = interval(a);
  const ib = interval(b);
  if (ia && ib) {
    const lo = Math.max(ia.lo, ib.lo);
    const hi = Math.min(ia.hi, ib.hi);
    if (lo > hi) return true;
    if (lo === hi && ((lo === ia.lo && ia.loOpen) || (lo === ib.lo && ib.loOpen) || (hi === ia.hi && ia.hiOpen) || (hi === ib.hi && ib.hiOpen))) return true;
  }
  // "within 30d" (recent) versus "older_than 30d" or more: disjoint on the same timestamp field.
  const within = a.op === 'within' ? a : b.op === 'within' ? b : undefined;
  const older = a.op === 'older_than' ? a : b.op === 'older_than' ? b : undefined;
  if (within && older && within !== older) {
    const w = parseDuration(within.duration ?? '');
    const o = parseDuration(older.duration ?? '');
    if (w !== undefined && o !== undefined && w <= o) return true;
  }
  return false;
}

function eventsContradict(a: NonNullable<Condition['event']>, b: NonNullable<Condition['event']>): boolean {
  if (a.name !== b.name || a.occurred === b.occurred) return false;
  // A count changes what "did not occur" excludes (fewer than 2 still allows one): not decided here.
  if (a.count !== undefined || b.count !== undefined) return false;
  const yes = a.occurred ? a : b;
  const no = a.occurred ? b : a;
  // "did not occur in window N" excludes "occurred in window Y" when N contains Y.
  const yFrom = parseDuration(yes.from ?? '0s') ?? 0;
  const yTo = yes.to ? parseDuration(yes.to) ?? Infinity : Infinity;
  const nFrom = parseDuration(no.from ?? '0s') ?? 0;
  const nTo = no.to ? parseDuration(no.to) ?? Infinity : Infinity;
  return nFrom <= yFrom && nTo >= yTo;
}

/** A segment's conjuncts, worked out once so a group of N members costs N preparations, not N² of them. */
interface Prepared {
  seg: Located<SegmentSpec>;
  conj: Condition[];
  /** Segments it excludes with a top-level `not: { segment }`. */
  excluded: Set<string>;
  /** `not: { attribute }` conjuncts, keyed for comparison with the other side's attributes. */
  notAttrs: Set<string>;
  /** The single value it requires of a field (`eq`), by field: the key segments are bucketed by. */
  eq: Map<string, string>;
}

function prepare(seg: Located<SegmentSpec>): Prepared {
  const conj = conjuncts(seg.spec.conditions);
  const eq = new Map<string, string>();
  for (const c of conj) {
    const a = c.attribute;
    if (a?.op === 'eq' && a.value !== undefined && !Array.isArray(a.value) && !eq.has(a.field)) eq.set(a.field, JSON.stringify(a.value));
  }
  return {
    seg,
    conj,
    excluded: new Set(conj.flatMap((c) => (c.not?.segment !== undefined ? [c.not.segment] : []))),
    notAttrs: new Set(conj.flatMap((c) => (c.not?.attribute ? [attrKey(c.not.attribute)] : []))),
    eq,
  };
}

function disjoint(a: Prepared, b: Prepared): boolean {
  if (a.excluded.has(b.seg.name) || b.excluded.has(a.seg.name)) return true;
  for (const x of a.conj) {
    if (x.segment !== undefined && b.excluded.has(x.segment)) return true;
    if (x.attribute && b.notAttrs.size > 0 && b.notAttrs.has(attrKey(x.attribute))) return true;
    for (const y of b.conj) {
      if (x.attribute && y.attribute && attributesContradict(x.attribute, y.attribute)) return true;
      if (x.event && y.event && eventsContradict(x.event, y.event)) return true;
    }
  }
  for (const y of b.conj) {
    if (y.segment !== undefined && a.excluded.has(y.segment)) return true;
    if (y.attribute && a.notAttrs.size > 0 && a.notAttrs.has(attrKey(y.attribute))) return true;
  }
  return false;
}

/** True when the declared conditions visibly keep the two segments apart. */
export function provablyDisjoint(a: Located<SegmentSpec>, b: Located<SegmentSpec>): boolean {
  return disjoint(prepare(a), prepare(b));
}

const attrKeys = new WeakMap<Attr, string>();

function attrKey(a: Attr): string {
  let k = attrKeys.get(a);
  if (k === undefined) attrKeys.set(a, (k = JSON.stringify(a)));
  return k;
}

/**
 * Pairs of a group that might overlap, without comparing every pair when the group is keyed: members that
 * require different values of the same field (`tier eq gold` / `tier eq silver`) are apart already, so
 * segments are bucketed by the field most of them pin to one value, and only members of one bucket, or
 * members that pin no value (compared with everyone), are checked. `visit` returns false to stop.
 */
function candidatePairs(members: Prepared[], visit: (a: Prepared, b: Prepared) => boolean): void {
  const fieldCounts = new Map<string, number>();
  for (const m of members) for (const f of m.eq.keys()) fieldCounts.set(f, (fieldCounts.get(f) ?? 0) + 1);
  const keyField = [...fieldCounts].sort(([fa, a], [fb, b]) => b - a || (fa < fb ? -1 : 1))[0]?.[0];
  const index = new Map(members.map((m, i) => [m, i]));
  const buckets = new Map<string, Prepared[]>();
  const loose: Prepared[] = [];
  for (const m of members) {
    const v = keyField === undefined ? undefined : m.eq.get(keyField);
    if (v === undefined) loose.push(m);
    else if (buckets.has(v)) buckets.get(v)!.push(m);
    else buckets.set(v, [m]);
  }
  // Every pair is visited once, in member order (a before b), so findings are reproducible.
  const ordered = (x: Prepared, y: Prepared) => (index.get(x)! < index.get(y)! ? visit(x, y) : visit(y, x));
  for (const bucket of buckets.values()) {
    for (let i = 0; i < bucket.length; i++) for (let j = i + 1; j < bucket.length; j++) if (!ordered(bucket[i]!, bucket[j]!)) return;
  }
  for (let i = 0; i < loose.length; i++) {
    for (let j = i + 1; j < loose.length; j++) if (!ordered(loose[i]!, loose[j]!)) return;
    for (const bucket of buckets.values()) for (const m of bucket) if (!ordered(loose[i]!, m)) return;
  }
}

/** Past this many comparisons in one group, SEG001 stops and says the group could not be checked fully. */
export const MAX_PAIR_CHECKS = 5_000_000;

/** Fields and events a segment reads, following references to other segments. */
export function segmentInputs(model: SpecModel, seg: Located<SegmentSpec>, seen = new Set<string>()): { fields: Set<string>; events: Set<string> } {
  const fields = new Set<string>();
  const events = new Set<string>();
  if (seen.has(seg.name)) return { fields, events };
  seen.add(seg.name);
  if (seg.spec.conditions) {
    walkConditions(seg.spec.conditions, [], (c) => {
      if (c.attribute) fields.add(c.attribute.field);
      if (c.event) events.add(c.event.name);
      const ref = c.segment !== undefined ? model.segments.get(c.segment) : undefined;
      if (ref) {
        const inner = segmentInputs(model, ref, seen);
        inner.fields.forEach((f) => fields.add(f));
        inner.events.forEach((e) => events.add(e));
      }
    });
  }
  return { fields, events };
}

/** Sources whose data a segment depends on. */
export function segmentSources(model: SpecModel, seg: Located<SegmentSpec>): string[] {
  const feeding = sourcesFeeding(model);
  const inputs = segmentInputs(model, seg);
  const out = new Set<string>();
  inputs.fields.forEach((f) => feeding.fields.get(f)?.forEach((s) => out.add(s)));
  inputs.events.forEach((e) => feeding.events.get(e)?.forEach((s) => out.add(s)));
  return [...out].sort();
}

/**
 * SEG001's check: for each exclusive group, the segments that nothing keeps apart from an earlier member.
 * `maxPairChecks` bounds the work on a huge group that cannot be bucketed (see candidatePairs).
 */
export function exclusiveGroupOverlaps(model: SpecModel, maxPairChecks = MAX_PAIR_CHECKS): Finding[] {
  const groups = new Map<string, Located<SegmentSpec>[]>();
  for (const s of sorted(model.segments)) {
    if (!s.spec.exclusive_group || !s.spec.conditions) continue;
    const list = groups.get(s.spec.exclusive_group);
    if (list) list.push(s);
    else groups.set(s.spec.exclusive_group, [s]);
  }
  const out: Finding[] = [];
  for (const [group, list] of [...groups].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const members = list.map(prepare);
    // One finding per segment that overlaps an earlier one, naming a few of them: a group of 1,500
    // overlapping segments gives 1,499 findings, not 1.1 million.
    const overlaps = new Map<Prepared, Prepared[]>();
    let checks = 0;
    let stopped = false;
    candidatePairs(members, (a, b) => {
      if (++checks > maxPairChecks) {
        stopped = true;
        return false;
      }
      if (!disjoint(a, b)) {
        const list = overlaps.get(b);
        if (list) list.push(a);
        else overlaps.set(b, [a]);
      }
      return true;
    });
    const order = new Map(members.map((m, i) => [m, i]));
    for (const b of members) {
      const with_ = overlaps.get(b)?.sort((x, y) => order.get(x)! - order.get(y)!);
      if (!with_) continue;
      const names = with_.slice(0, 3).map((x) => `"${x.seg.name}"`);
      const more = with_.length > 3 ? ` and ${with_.length - 3} more` : '';
      out.push({
        spec: b.seg,
        path: ['exclusive_group'],
        summary: `Segment "${b.seg.name}" is in exclusive group "${group}" with ${names.join(', ')}${more}, but nothing in their conditions keeps them apart: a customer can be in both.`,
        detail: `Add a condition that excludes one from the other, e.g. \`not: { segment: ${with_[0]!.seg.name} }\`, or contradictory conditions on the same field.`,
      });
    }
    if (stopped) {
      out.push({
        spec: members[0]!.seg,
        path: ['exclusive_group'],
        summary: `Exclusive group "${group}" has ${members.length} segments: overlap checks stopped after ${maxPairChecks.toLocaleString('en-US')} pairs, so it is not shown to be exclusive.`,
        detail: 'Key the group on one field (each segment `eq` a different value of it), which lets tidemark check it without comparing every pair, or split the group.',
      });
    }
  }
  return out;
}

export const segmentRules: Rule[] = [
  {
    code: 'SEG001',
    family: 'segments',
    severity: 'error',
    title: 'Segments in one exclusive group can overlap',
    harm: 'Overlapping segments that drive different survey experiences lead to double-surveying and biased results.',
    check(model) {
      return exclusiveGroupOverlaps(model);
    },
  },
  {
    code: 'SEG002',
    family: 'segments',
    severity: 'error',
    title: 'High-stakes segment on synced data without a freshness guard',
    harm: 'A segment fed by a scheduled sync is wrong between syncs and after a failed sync; winback offers and surveys then hit the wrong people.',
    check(model) {
      const surveyed = new Set([...model.surveyTargets.values()].map((t) => t.spec.audience));
      const out: Finding[] = [];
      for (const s of sorted(model.segments)) {
        const highStakes = s.spec.high_stakes === true || surveyed.has(s.name);
        if (!highStakes || s.spec.freshness_guard) continue;
        const sources = segmentSources(model, s);
        if (sources.length === 0) continue;
        const path: Path = s.spec.high_stakes ? ['high_stakes'] : ['name'];
        out.push({
          spec: s,
          path,
          summary: `Segment "${s.name}" ${s.spec.high_stakes ? 'is high-stakes' : 'is a survey audience'} and depends on synced source${sources.length > 1 ? 's' : ''} ${sources.join(', ')}, but has no freshness_guard.`,
          detail: 'Add `freshness_guard: {}` so members are suppressed while a source it depends on is stale.',
        });
      }
      return out;
    },
  },
  {
    code: 'SEG003',
    family: 'segments',
    severity: 'warning',
    title: 'Exclusive group membership that cannot be checked',
    harm: 'A referenced Customer.io segment has no declared conditions, so tidemark cannot show it stays apart from the rest of its group.',
    check(model) {
      return sorted(model.segments)
        .filter((s) => s.spec.exclusive_group && s.spec.customerio_segment)
        .map((s) => ({
          spec: s,
          path: ['exclusive_group'],
          summary: `Segment "${s.name}" references Customer.io segment ${s.spec.customerio_segment!.id}; its overlap with group "${s.spec.exclusive_group}" can only be checked at run time.`,
        }));
    },
  },
];
