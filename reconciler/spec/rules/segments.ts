import type { Path } from '../../core/diagnostics.ts';
import { walkConditions } from '../resolve.ts';
import { sorted, type Located, type SpecModel } from '../model.ts';
import type { Condition, SegmentSpec } from '../schema/index.ts';
import type { Finding, Rule } from './rule.ts';
import { decidePrepared, describeProfile, prepareCondition, type FieldType, type OverlapContext, type Prepared as PreparedCondition, type Profile, type Verdict } from './overlap.ts';
import { sourcesFeeding } from './writers.ts';

/** The conditions that must all hold for a member: the top-level conjunction. */
function conjuncts(c: Condition | undefined): Condition[] {
  if (!c) return [];
  if (c.all) return c.all.flatMap((x) => (x.all ? conjuncts(x) : [x]));
  return [c];
}

/** What the overlap analysis needs to know of the model: field types, enum values, other segments. */
function overlapContext(model: SpecModel): OverlapContext {
  const fieldTypes: Record<string, FieldType> = {};
  const enumValues: Record<string, string[]> = {};
  for (const [name, f] of model.fields) {
    fieldTypes[name] = f.def.type;
    if (f.def.type === 'enum' && f.def.values) enumValues[name] = f.def.values;
  }
  return {
    fieldTypes,
    enumValues,
    segmentConditions: (name) => {
      const s = model.segments.get(name);
      return s === undefined ? undefined : (s.spec.conditions ?? null);
    },
  };
}

/** A segment's conditions in DNF, worked out once so a group of N members costs N preparations, not N². */
interface Prepared {
  seg: Located<SegmentSpec>;
  dnf: PreparedCondition;
  /** The single value it requires of a field (a top-level `eq`), by field, as the database compares it. */
  eq: Map<string, string>;
}

function prepare(seg: Located<SegmentSpec>, ctx: OverlapContext): Prepared {
  const eq = new Map<string, string>();
  for (const c of conjuncts(seg.spec.conditions)) {
    const a = c.attribute;
    if (a?.op !== 'eq' || eq.has(a.field)) continue;
    const key = comparedAs(a.value, ctx.fieldTypes[a.field]);
    if (key !== undefined) eq.set(a.field, key);
  }
  return { seg, dnf: prepareCondition(seg.spec.conditions!, ctx, [seg.name]), eq };
}

/**
 * A value as the database compares it, so `eq 30` and `eq "30.0"` on a number land in one bucket (they
 * are the same people). Undefined when the value cannot be read: such a segment is compared with all.
 */
function comparedAs(v: unknown, type: FieldType | undefined): string | undefined {
  if (v === undefined || Array.isArray(v) || type === undefined) return undefined;
  switch (type) {
    case 'number': {
      const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
      return Number.isFinite(n) ? `n${n}` : undefined;
    }
    case 'timestamp': {
      if (typeof v === 'number' && Number.isSafeInteger(v)) return `t${v}`;
      const ms = typeof v === 'string' && /(?:Z|[+-]\d\d:?\d\d)$/i.test(v.trim()) ? Date.parse(v.trim()) : NaN;
      return Number.isFinite(ms) ? `t${ms}` : undefined;
    }
    case 'boolean': {
      const t = String(v).trim().toLowerCase();
      return t === 'true' || t === 'false' ? `b${t}` : undefined;
    }
    default:
      return `s${String(v)}`;
  }
}

function decide(a: Prepared, b: Prepared, ctx: OverlapContext): Verdict {
  return decidePrepared(a.dnf, b.dnf, a.seg.spec.conditions!, b.seg.spec.conditions!, ctx);
}

/** Whether two segments can share a member, by the analysis in overlap.ts. */
export function pairVerdict(model: SpecModel, a: Located<SegmentSpec>, b: Located<SegmentSpec>): Verdict {
  const ctx = overlapContext(model);
  return decide(prepare(a, ctx), prepare(b, ctx), ctx);
}

/** True when the analysis shows that no customer can be in both. */
export function provablyDisjoint(model: SpecModel, a: Located<SegmentSpec>, b: Located<SegmentSpec>): boolean {
  return pairVerdict(model, a, b).verdict === 'disjoint';
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

interface GroupFindings {
  /** SEG001: segments a customer can share with an earlier member, with a witness. */
  overlaps: Finding[];
  /** SEG004: pairs the analysis could not decide. */
  undecided: Finding[];
}

const analyses = new WeakMap<SpecModel, GroupFindings>();

/**
 * SEG001's check: for each exclusive group, the segments that can share a member with an earlier one.
 * `maxPairChecks` bounds the work on a huge group that cannot be bucketed (see candidatePairs).
 */
export function exclusiveGroupOverlaps(model: SpecModel, maxPairChecks = MAX_PAIR_CHECKS): Finding[] {
  return analyseGroups(model, maxPairChecks).overlaps;
}

/** SEG004's check: pairs of one group whose overlap could not be decided. */
export function exclusiveGroupUndecided(model: SpecModel, maxPairChecks = MAX_PAIR_CHECKS): Finding[] {
  return analyseGroups(model, maxPairChecks).undecided;
}

function analyseGroups(model: SpecModel, maxPairChecks: number): GroupFindings {
  // SEG001 and SEG004 read one analysis of the model.
  const cached = maxPairChecks === MAX_PAIR_CHECKS ? analyses.get(model) : undefined;
  if (cached) return cached;
  const ctx = overlapContext(model);
  const groups = new Map<string, Located<SegmentSpec>[]>();
  for (const s of sorted(model.segments)) {
    if (!s.spec.exclusive_group || !s.spec.conditions) continue;
    const list = groups.get(s.spec.exclusive_group);
    if (list) list.push(s);
    else groups.set(s.spec.exclusive_group, [s]);
  }
  const result: GroupFindings = { overlaps: [], undecided: [] };
  for (const [group, list] of [...groups].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const members = list.map((s) => prepare(s, ctx));
    // One finding per segment that overlaps an earlier one, naming a few of them and showing one
    // witness: a group of 1,500 overlapping segments gives 1,499 findings, not 1.1 million.
    const overlaps = new Map<Prepared, Array<{ with: Prepared; witness: Profile }>>();
    const undecided = new Map<Prepared, Array<{ with: Prepared; why: string }>>();
    let checks = 0;
    let stopped = false;
    candidatePairs(members, (a, b) => {
      if (++checks > maxPairChecks) {
        stopped = true;
        return false;
      }
      const v = decide(a, b, ctx);
      if (v.verdict === 'overlap') push(overlaps, b, { with: a, witness: v.witness });
      else if (v.verdict === 'unknown') push(undecided, b, { with: a, why: v.why });
      return true;
    });
    const order = new Map(members.map((m, i) => [m, i]));
    const byOrder = (x: { with: Prepared }, y: { with: Prepared }) => order.get(x.with)! - order.get(y.with)!;
    const named = (list: Array<{ with: Prepared }>) => {
      const names = list.slice(0, 3).map((x) => `"${x.with.seg.name}"`);
      return `${names.join(', ')}${list.length > 3 ? ` and ${list.length - 3} more` : ''}`;
    };
    for (const b of members) {
      const found = overlaps.get(b)?.sort(byOrder);
      if (found) {
        const first = found[0]!;
        const fields = [...new Set([...segmentInputs(model, b.seg).fields, ...segmentInputs(model, first.with.seg).fields])];
        result.overlaps.push({
          spec: b.seg,
          path: ['exclusive_group'],
          summary: `Segment "${b.seg.name}" is in exclusive group "${group}" with ${named(found)}, but a customer can be in both: e.g. one with ${describeProfile(first.witness, fields)} is in "${b.seg.name}" and "${first.with.seg.name}".`,
          detail: `That customer is made up (a witness, not someone in your data). Add a condition that excludes one from the other, e.g. \`not: { segment: ${first.with.seg.name} }\`, or contradictory conditions on the same field.`,
        });
      }
      const open = undecided.get(b)?.sort(byOrder);
      if (open) {
        result.undecided.push({
          spec: b.seg,
          path: ['exclusive_group'],
          summary: `Segment "${b.seg.name}" is in exclusive group "${group}" with ${named(open)}, but tidemark could not decide whether a customer can be in both: ${open[0]!.why}.`,
          detail: `Keep them apart with conditions tidemark can check, e.g. \`not: { segment: ${open[0]!.with.seg.name} }\` or different values of one field.`,
        });
      }
    }
    if (stopped) {
      result.overlaps.push({
        spec: members[0]!.seg,
        path: ['exclusive_group'],
        summary: `Exclusive group "${group}" has ${members.length} segments: overlap checks stopped after ${maxPairChecks.toLocaleString('en-US')} pairs, so it is not shown to be exclusive.`,
        detail: 'Key the group on one field (each segment `eq` a different value of it), which lets tidemark check it without comparing every pair, or split the group.',
      });
    }
  }
  if (maxPairChecks === MAX_PAIR_CHECKS) analyses.set(model, result);
  return result;
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
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
  {
    code: 'SEG004',
    family: 'segments',
    severity: 'warning',
    title: 'Exclusive group overlap that could not be decided',
    harm: 'tidemark cannot show that these segments stay apart, so a customer may land in both and be surveyed twice; it says so rather than guess.',
    check(model) {
      return exclusiveGroupUndecided(model);
    },
  },
];
