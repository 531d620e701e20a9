/**
 * The overlap analysis (reconciler/spec/rules/overlap.ts) against the database: random small conditions
 * and random profiles, membership computed by the SQL compiler on better-sqlite3. The analysis must never
 * call two conditions disjoint when a profile is in both, and every witness it shows must be in both.
 * The small evaluator it re-checks witnesses with must agree with the database on every profile.
 */
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Condition } from '../spec/schema/segment.ts';
import { canOverlap, evaluate, mirrorRow, type OverlapContext, type Profile, type ProfileValue } from '../spec/rules/overlap.ts';
import { compileSegment, type FieldType } from './compile.ts';
import { mirrorDdl } from './mirror-layout.ts';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 0, 31, 12, 0, 0);
const ENV = 'prod';

const FIELD_TYPES: Record<string, FieldType> = { n: 'number', t: 'timestamp', s: 'string', e: 'enum', b: 'boolean' };
const ENUM = ['a', 'b', 'c'];
const SEGMENTS: Record<string, Condition> = {
  seg_x: { all: [{ attribute: { field: 'n', op: 'gt', value: 1 } }, { attribute: { field: 'e', op: 'eq', value: 'a' } }] },
  seg_y: { any: [{ event: { name: 'ev', occurred: true, to: '5d' } }, { attribute: { field: 's', op: 'contains', value: 'a' } }] },
};
const ctx: OverlapContext = { fieldTypes: FIELD_TYPES, enumValues: { e: ENUM }, segmentConditions: (n) => SEGMENTS[n] };

// Values sit on and next to each other's edges, so touching intervals and windows are exercised.
const NUMS = [-1, 0, 1, 2, 2.5, 3, 10];
const AGES = [0, DAY - 1, DAY, 2 * DAY, 5 * DAY - 1, 5 * DAY, 5 * DAY + 1, 7 * DAY, 30 * DAY, 61 * DAY];
const TEXTS = ['', 'a', 'ab', 'ba', 'abc', 'x', 'A'];
const DURATIONS = ['1d', '2d', '5d', '7d', '60d'];

const num = fc.oneof(fc.constantFrom(...NUMS), fc.constantFrom(...NUMS).map(String), fc.constantFrom('2.0', '2.50'));
const instant = fc.oneof(fc.constantFrom(...AGES).map((a) => NOW - a), fc.constantFrom(...AGES).map((a) => new Date(NOW - a).toISOString()));
const text = fc.constantFrom(...TEXTS);
const bool = fc.constantFrom<string | boolean>(true, false, 'TRUE', 'false');

type Op = NonNullable<Condition['attribute']>['op'];
const attr = (field: string, op: Op, value?: unknown, duration?: string): Condition => ({
  attribute: { field, op, ...(value === undefined ? {} : { value: value as string }), ...(duration === undefined ? {} : { duration }) },
});
const list = <T,>(a: fc.Arbitrary<T>) => fc.array(a, { minLength: 0, maxLength: 3 });

const attribute: fc.Arbitrary<Condition> = fc.oneof(
  fc.tuple(fc.constantFrom<Op>('eq', 'neq', 'gt', 'gte', 'lt', 'lte'), num).map(([op, v]) => attr('n', op, v)),
  fc.tuple(fc.constantFrom<Op>('in', 'not_in'), list(num)).map(([op, v]) => attr('n', op, v)),
  fc.tuple(num, num).map(([a, b]) => attr('n', 'between', Number(a) <= Number(b) ? [a, b] : [b, a])),
  fc.tuple(fc.constantFrom<Op>('eq', 'neq', 'gt', 'gte', 'lt', 'lte'), instant).map(([op, v]) => attr('t', op, v)),
  fc.tuple(fc.constantFrom(...AGES), fc.constantFrom(...AGES), fc.boolean()).map(([x, y, iso]) => {
    const [lo, hi] = [NOW - Math.max(x, y), NOW - Math.min(x, y)];
    return attr('t', 'between', iso ? [new Date(lo).toISOString(), new Date(hi).toISOString()] : [lo, hi]);
  }),
  fc.tuple(fc.constantFrom<Op>('within', 'older_than'), fc.constantFrom(...DURATIONS)).map(([op, d]) => attr('t', op, undefined, d)),
  fc.tuple(fc.constantFrom<Op>('eq', 'neq', 'contains'), text).map(([op, v]) => attr('s', op, v)),
  fc.tuple(fc.constantFrom<Op>('in', 'not_in'), list(text)).map(([op, v]) => attr('s', op, v)),
  fc.tuple(fc.constantFrom<Op>('eq', 'neq', 'contains'), fc.constantFrom(...ENUM, 'z')).map(([op, v]) => attr('e', op, v)),
  fc.tuple(fc.constantFrom<Op>('in', 'not_in'), list(fc.constantFrom(...ENUM))).map(([op, v]) => attr('e', op, v)),
  fc.tuple(fc.constantFrom<Op>('eq', 'neq'), bool).map(([op, v]) => attr('b', op, v)),
  fc.tuple(fc.constantFrom('n', 't', 's', 'e', 'b'), fc.constantFrom<Op>('exists', 'not_exists')).map(([f, op]) => attr(f, op)),
);

const COUNTS = [undefined, { min: 2 }, { min: 0, max: 1 }, { min: 1, max: 2 }, { max: 1 }, { min: 3, max: 3 }];
const event: fc.Arbitrary<Condition> = fc
  .record({
    name: fc.constantFrom('ev', 'ev2'),
    occurred: fc.boolean(),
    from: fc.constantFrom(undefined, '1d', '2d', '5d'),
    to: fc.constantFrom(undefined, '2d', '5d', '7d', '30d'),
    count: fc.constantFrom(...COUNTS),
  })
  .map(({ name, occurred, from, to, count }) => {
    const keepTo = to !== undefined && (from === undefined || Number.parseInt(from) < Number.parseInt(to));
    return { event: { name, occurred, ...(from ? { from } : {}), ...(keepTo ? { to } : {}), ...(count ? { count } : {}) } };
  });

const leaf = fc.oneof({ weight: 3, arbitrary: attribute }, { weight: 2, arbitrary: event }, { weight: 1, arbitrary: fc.constantFrom<Condition>({ segment: 'seg_x' }, { segment: 'seg_y' }) });
const condition: fc.Arbitrary<Condition> = fc.letrec<{ c: Condition }>((tie) => ({
  c: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('c'), { minLength: 1, maxLength: 3 }).map((all) => ({ all })),
    fc.array(tie('c'), { minLength: 1, maxLength: 3 }).map((any) => ({ any })),
    tie('c').map((c) => ({ not: c })),
  ),
})).c;

/**
 * Two conditions, independent or the second one kept apart from the first by `not` (which the analysis
 * must see through DNF, not by name): independent pairs mostly overlap, so disjoint ones are made too.
 */
const pair: fc.Arbitrary<[Condition, Condition]> = condition.chain((a) =>
  fc.tuple(
    fc.constant(a),
    fc.oneof(
      { weight: 4, arbitrary: condition },
      { weight: 1, arbitrary: condition.map((c): Condition => ({ all: [c, { not: a }] })) },
      { weight: 1, arbitrary: fc.tuple(condition, leaf).map(([c, l]): Condition => ({ any: [{ all: [c, { not: a }] }, { all: [l, { not: a }] }] })) },
    ),
  ),
);

const value = (field: string): fc.Arbitrary<ProfileValue | undefined> => {
  const absent = fc.constant(undefined);
  switch (FIELD_TYPES[field]) {
    case 'number':
      return fc.oneof(absent, fc.constantFrom(...NUMS).map((v) => ({ kind: 'number' as const, value: v })), fc.constant({ kind: 'unparsed' as const, value: 'n/a' }));
    case 'timestamp':
      return fc.oneof(absent, fc.constantFrom(...AGES, -3_600_000).map((a) => ({ kind: 'timestamp' as const, ageMs: a })), fc.constant({ kind: 'unparsed' as const, value: 'soon' }));
    case 'boolean':
      return fc.oneof(absent, fc.constantFrom('true', 'false').map((v) => ({ kind: 'text' as const, value: v })));
    case 'enum':
      return fc.oneof(absent, fc.constantFrom(...ENUM).map((v) => ({ kind: 'text' as const, value: v })));
    default:
      return fc.oneof(absent, fc.constantFrom(...TEXTS.filter((t) => t !== ''), 'xab', 'bab').map((v) => ({ kind: 'text' as const, value: v })));
  }
};

const profile: fc.Arbitrary<Profile> = fc
  .record({
    n: value('n'),
    t: value('t'),
    s: value('s'),
    e: value('e'),
    b: value('b'),
    events: fc.array(fc.record({ name: fc.constantFrom('ev', 'ev2'), ageMs: fc.constantFrom(...AGES, -3_600_000, 3 * DAY) }), { maxLength: 5 }),
  })
  .map(({ events, ...attrs }) => ({
    attributes: Object.fromEntries(Object.entries(attrs).filter(([, v]) => v !== undefined)) as Record<string, ProfileValue>,
    events,
  }));

let db: Database.Database;
beforeAll(() => {
  db = new Database(':memory:');
  for (const s of mirrorDdl('sqlite')) db.exec(s);
});
afterAll(() => db?.close());

/** Loads the profiles as people p0, p1, … of a fresh mirror. */
function load(profiles: Profile[]): void {
  db.exec('DELETE FROM mirror_people; DELETE FROM mirror_attributes; DELETE FROM mirror_events;');
  const person = db.prepare('INSERT INTO mirror_people VALUES (?, ?)');
  const attribute = db.prepare('INSERT INTO mirror_attributes VALUES (?, ?, ?, ?, ?, ?)');
  const ev = db.prepare('INSERT INTO mirror_events VALUES (?, ?, ?, ?)');
  profiles.forEach((p, i) => {
    const id = `p${i}`;
    person.run(ENV, id);
    for (const [field, v] of Object.entries(p.attributes)) {
      const row = mirrorRow(v, NOW);
      attribute.run(ENV, id, field, row.value, row.num, row.ts);
    }
    for (const e of p.events) ev.run(ENV, id, e.name, NOW - e.ageMs);
  });
}

function members(cond: Condition): Set<string> {
  const { sql, params } = compileSegment(cond, { dialect: 'sqlite', env: ENV, nowMs: NOW, fieldTypes: FIELD_TYPES, segmentConditions: (n) => SEGMENTS[n] });
  return new Set((db.prepare(sql).all(...params) as { person_id: string }[]).map((r) => r.person_id));
}

/** Profiles in A (or B) found by the analysis itself: random profiles alone rarely land in narrow conditions. */
function selfWitnesses(...conds: Condition[]): Profile[] {
  return conds.flatMap((c) => {
    const v = canOverlap(c, c, ctx);
    return v.verdict === 'overlap' ? [v.witness] : [];
  });
}

describe('the overlap analysis, checked in the database', () => {
  it('never calls two conditions disjoint when a profile is in both; every witness is in both; the evaluator agrees with SQL', () => {
    const seen = { disjoint: 0, overlap: 0, unknown: 0 };
    fc.assert(
      fc.property(pair, fc.array(profile, { minLength: 5, maxLength: 25 }), ([a, b], randoms) => {
        const v = canOverlap(a, b, ctx);
        seen[v.verdict]++;
        const people = [...randoms, ...selfWitnesses(a, b, { not: a }, { not: b }), ...(v.verdict === 'overlap' ? [v.witness] : [])];
        load(people);
        const inA = members(a);
        const inB = members(b);
        people.forEach((p, i) => {
          expect(evaluate(a, p, { ...ctx, nowMs: NOW }), `evaluate(a) on p${i}`).toBe(inA.has(`p${i}`));
          expect(evaluate(b, p, { ...ctx, nowMs: NOW }), `evaluate(b) on p${i}`).toBe(inB.has(`p${i}`));
        });
        if (v.verdict === 'disjoint') expect([...inA].filter((id) => inB.has(id))).toEqual([]);
        if (v.verdict === 'overlap') {
          const w = `p${people.length - 1}`;
          expect(inA.has(w) && inB.has(w)).toBe(true);
        }
      }),
      { numRuns: 1000, seed: Number(process.env.OVERLAP_SEED ?? 11) },
    );
    // The property is only worth something if it saw both answers often.
    expect(seen.disjoint).toBeGreaterThan(100);
    expect(seen.overlap).toBeGreaterThan(100);
  });

  it('with a fixed now, instants and ages are related, and the verdicts still hold in the database', () => {
    const fixed = { ...ctx, nowMs: NOW };
    fc.assert(
      fc.property(condition, condition, fc.array(profile, { minLength: 5, maxLength: 15 }), (a, b, randoms) => {
        const v = canOverlap(a, b, fixed);
        const people = [...randoms, ...(v.verdict === 'overlap' ? [v.witness] : [])];
        load(people);
        const inA = members(a);
        const inB = members(b);
        if (v.verdict === 'disjoint') expect([...inA].filter((id) => inB.has(id))).toEqual([]);
        if (v.verdict === 'overlap') expect(inA.has(`p${people.length - 1}`) && inB.has(`p${people.length - 1}`)).toBe(true);
      }),
      { numRuns: 300, seed: Number(process.env.OVERLAP_SEED ?? 12) },
    );
  });
});
