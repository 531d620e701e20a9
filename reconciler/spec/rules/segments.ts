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
  const yes = a.occurred ? a : b;
  const no = a.occurred ? b : a;
  // "did not occur in window N" excludes "occurred in window Y" when N contains Y.
  const yFrom = parseDuration(yes.from ?? '0s') ?? 0;
  const yTo = yes.to ? parseDuration(yes.to) ?? Infinity : Infinity;
  const nFrom = parseDuration(no.from ?? '0s') ?? 0;
  const nTo = no.to ? parseDuration(no.to) ?? Infinity : Infinity;
  return nFrom <= yFrom && nTo >= yTo;
}

/** True when the declared conditions visibly keep the two segments apart. */
export function provablyDisjoint(a: Located<SegmentSpec>, b: Located<SegmentSpec>): boolean {
  const ca = conjuncts(a.spec.conditions);
  const cb = conjuncts(b.spec.conditions);
  const excludes = (cs: Condition[], name: string) => cs.some((c) => c.not?.segment === name);
  if (excludes(ca, b.name) || excludes(cb, a.name)) return true;
  for (const x of ca) {
    for (const y of cb) {
      if (x.attribute && y.attribute && attributesContradict(x.attribute, y.attribute)) return true;
      if (x.event && y.event && eventsContradict(x.event, y.event)) return true;
      if (x.segment && y.not?.segment === x.segment) return true;
      if (y.segment && x.not?.segment === y.segment) return true;
      if (x.attribute && y.not?.attribute && sameAttr(x.attribute, y.not.attribute)) return true;
      if (y.attribute && x.not?.attribute && sameAttr(y.attribute, x.not.attribute)) return true;
    }
  }
  return false;
}

function sameAttr(a: Attr, b: Attr): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

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

export const segmentRules: Rule[] = [
  {
    code: 'SEG001',
    family: 'segments',
    severity: 'error',
    title: 'Segments in one exclusive group can overlap',
    harm: 'Overlapping segments that drive different survey experiences lead to double-surveying and biased results.',
    check(model) {
      const groups = new Map<string, Located<SegmentSpec>[]>();
      for (const s of sorted(model.segments)) {
        if (!s.spec.exclusive_group || !s.spec.conditions) continue;
        groups.set(s.spec.exclusive_group, [...(groups.get(s.spec.exclusive_group) ?? []), s]);
      }
      const out: Finding[] = [];
      for (const [group, members] of [...groups].sort(([a], [b]) => (a < b ? -1 : 1))) {
        for (let i = 0; i < members.length; i++) {
          for (let j = i + 1; j < members.length; j++) {
            const a = members[i]!;
            const b = members[j]!;
            if (provablyDisjoint(a, b)) continue;
            out.push({
              spec: b,
              path: ['exclusive_group'],
              summary: `Segments "${a.name}" and "${b.name}" are in exclusive group "${group}" but nothing in their conditions keeps them apart: a customer can be in both.`,
              detail: `Add a condition that excludes one from the other, e.g. \`not: { segment: ${a.name} }\`, or contradictory conditions on the same field.`,
            });
          }
        }
      }
      return out;
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
