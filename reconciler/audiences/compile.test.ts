import { PGlite } from '@electric-sql/pglite';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Condition } from '../spec/schema/segment.ts';
import { compileSegment, SegmentCompileError, type CompileContext, type Dialect, type FieldType } from './compile.ts';
import { mirrorDdl } from './mirror-layout.ts';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 0, 31, 12, 0, 0);
const ENV = 'prod';

const FIELD_TYPES: Record<string, FieldType> = {
  status: 'string',
  plan: 'enum',
  age: 'number',
  vip: 'boolean',
  last_login: 'timestamp',
  nickname: 'string',
};

interface Attr {
  value: string;
  num?: number;
  ts?: number;
}
interface Profile {
  env?: string;
  attrs: Record<string, Attr>;
  events?: [name: string, at: number][];
}

// Missing attributes have no row (the mirror's rule for blanks). Edges sit exactly on window bounds.
const PEOPLE: Record<string, Profile> = {
  p1: {
    attrs: {
      status: { value: 'active' },
      plan: { value: 'gold' },
      age: { value: '30', num: 30 },
      vip: { value: 'true' },
      last_login: { value: 'x', ts: NOW - 14 * DAY }, // exactly on the within 14d edge
      nickname: { value: 'Coffee Lover' },
    },
    events: [
      ['order_delivered', NOW - 5 * DAY], // exactly on the from 5d edge
      ['page_viewed', NOW - DAY],
      ['page_viewed', NOW - 2 * DAY],
      ['page_viewed', NOW - 3 * DAY],
    ],
  },
  p2: {
    attrs: {
      status: { value: 'inactive' },
      plan: { value: 'silver' },
      age: { value: '30.0', num: 30 }, // the same number written differently
      vip: { value: 'false' },
      last_login: { value: 'x', ts: NOW - 14 * DAY - 1 },
      nickname: { value: 'coffee' },
    },
    events: [
      ['order_delivered', NOW - 10 * DAY], // exactly on the to 10d edge
      ['page_viewed', NOW - 2 * DAY],
    ],
  },
  p3: {
    // no status at all
    attrs: {
      plan: { value: 'platinum' },
      age: { value: '9', num: 9 }, // as text '9' > '30'; as a number it is smaller
      last_login: { value: 'x', ts: NOW },
      nickname: { value: 'C_ffee 100%' }, // LIKE wildcards, which contains must take literally
    },
    events: [
      ['order_delivered', NOW - 10 * DAY + 1],
      ['page_viewed', NOW - 10 * DAY], // on the to 10d edge: out
      ['page_viewed', NOW - 9 * DAY], // on the from 9d edge: in
    ],
  },
  p4: { attrs: {}, events: [['signup', NOW - DAY]] },
  p5: {
    attrs: {
      status: { value: 'active' },
      plan: { value: 'gold' },
      age: { value: '100', num: 100 },
      last_login: { value: 'x', ts: NOW - 60 * DAY }, // exactly on the older_than 60d edge
    },
    events: [
      ['order_delivered', NOW + 3_600_000], // in the future: in no window
      ['page_viewed', NOW - DAY],
      ['page_viewed', NOW + 3_600_000], // in the future: never counted
    ],
  },
  px: { env: 'staging', attrs: { status: { value: 'active' } }, events: [['order_delivered', NOW - 6 * DAY]] },
};

const SEGMENTS: Record<string, Condition | null> = {
  active: { attribute: { field: 'status', op: 'eq', value: 'active' } },
  recent_delivery: { event: { name: 'order_delivered', occurred: true, from: '5d', to: '10d' } },
  active_recent: { all: [{ segment: 'active' }, { segment: 'recent_delivery' }] },
  loop_a: { segment: 'loop_b' },
  loop_b: { all: [{ segment: 'active' }, { segment: 'loop_a' }] },
  from_cio: null,
};

const attr = (field: string, op: NonNullable<Condition['attribute']>['op'], value?: unknown, duration?: string): Condition => ({
  attribute: { field, op, ...(value === undefined ? {} : { value: value as string }), ...(duration === undefined ? {} : { duration }) },
});
const ev = (name: string, window: { from?: string; to?: string; occurred?: boolean; count?: { min?: number; max?: number } } = {}): Condition => ({
  event: {
    name,
    occurred: window.occurred ?? true,
    ...(window.from ? { from: window.from } : {}),
    ...(window.to ? { to: window.to } : {}),
    ...(window.count ? { count: window.count } : {}),
  },
});
const iso = (ms: number) => new Date(ms).toISOString();

const CASES: [title: string, cond: Condition, members: string[], env?: string][] = [
  ['eq', attr('status', 'eq', 'active'), ['p1', 'p5']],
  ['neq leaves out people without the attribute', attr('status', 'neq', 'active'), ['p2']],
  ['not eq takes in people without the attribute', { not: attr('status', 'eq', 'active') }, ['p2', 'p3', 'p4']],
  ['in', attr('status', 'in', ['active', 'inactive']), ['p1', 'p2', 'p5']],
  ['in with a single value', attr('plan', 'in', 'platinum'), ['p3']],
  ['not_in leaves out people without the attribute', attr('status', 'not_in', ['active']), ['p2']],
  ['in an empty list', attr('plan', 'in', []), []],
  ['not_in an empty list: everyone with the attribute', attr('plan', 'not_in', []), ['p1', 'p2', 'p3', 'p5']],
  ['exists', attr('status', 'exists'), ['p1', 'p2', 'p5']],
  ['not_exists', attr('status', 'not_exists'), ['p3', 'p4']],
  ['any of eq and neq is still not everyone', { any: [attr('status', 'eq', 'active'), attr('status', 'neq', 'active')] }, ['p1', 'p2', 'p5']],
  ['numbers compare numerically, whatever their text', attr('age', 'eq', 30), ['p1', 'p2']],
  ['gt is numeric, not textual', attr('age', 'gt', 10), ['p1', 'p2', 'p5']],
  ['lte', attr('age', 'lte', 9), ['p3']],
  ['a numeric string value', attr('age', 'gte', '30'), ['p1', 'p2', 'p5']],
  ['lt', attr('age', 'lt', 30), ['p3']],
  ['in on numbers compares numerically', attr('age', 'in', [9, '100.0']), ['p3', 'p5']],
  ['not_in on numbers', attr('age', 'not_in', [30]), ['p3', 'p5']],
  ['neq on numbers', attr('age', 'neq', '30.00'), ['p3', 'p5']],
  ['boolean true', attr('vip', 'eq', true), ['p1']],
  ['boolean written as text', attr('vip', 'eq', 'FALSE'), ['p2']],
  ['within includes its far edge', attr('last_login', 'within', undefined, '14d'), ['p1', 'p3']],
  ['older_than excludes the edge within includes', attr('last_login', 'older_than', undefined, '14d'), ['p2', 'p5']],
  ['older_than exactly at the edge', attr('last_login', 'older_than', undefined, '60d'), []],
  ['older_than just inside', attr('last_login', 'older_than', undefined, '59d'), ['p5']],
  ['timestamp gt an ISO instant', attr('last_login', 'gt', iso(NOW - 14 * DAY)), ['p3']],
  ['timestamp gte an ISO instant', attr('last_login', 'gte', iso(NOW - 14 * DAY)), ['p1', 'p3']],
  ['timestamp eq epoch ms', attr('last_login', 'eq', NOW - 60 * DAY), ['p5']],
  ['event window: from edge in, to edge out', ev('order_delivered', { from: '5d', to: '10d' }), ['p1', 'p3']],
  ['event with no window: any time up to now', ev('order_delivered'), ['p1', 'p2', 'p3']],
  ['event did not occur in the window', ev('order_delivered', { to: '10d', occurred: false }), ['p2', 'p4', 'p5']],
  ['event exactly at the to edge is out', ev('signup', { to: '1d' }), []],
  ['event inside to', ev('signup', { to: '2d' }), ['p4']],
  ['event older than from', ev('order_delivered', { from: '6d' }), ['p2', 'p3']],
  [
    'nested all / any / not',
    { all: [{ any: [attr('status', 'eq', 'active'), attr('plan', 'eq', 'platinum')] }, { not: ev('order_delivered', { from: '5d', to: '10d' }) }] },
    ['p5'],
  ],
  ['not of not', { not: { not: attr('plan', 'eq', 'gold') } }, ['p1', 'p5']],
  ['segment reference', { all: [{ segment: 'active' }, attr('age', 'gt', 50)] }, ['p5']],
  ['not a segment', { not: { segment: 'active' } }, ['p2', 'p3', 'p4']],
  ['segment of segments', { segment: 'active_recent' }, ['p1']],
  // page_viewed per person (ages in days): p1 1, 2, 3; p2 2; p3 10 (edge), 9; p4 none; p5 1 and one in the future.
  ['between includes both ends', attr('age', 'between', [9, 30]), ['p1', 'p2', 'p3']],
  ['between with nothing inside', attr('age', 'between', [10, 29]), []],
  ['between compares numerically, whatever the text', attr('age', 'between', ['30.0', 100]), ['p1', 'p2', 'p5']],
  ['between of one value', attr('age', 'between', [100, 100]), ['p5']],
  ['between ISO instants includes both edges', attr('last_login', 'between', [iso(NOW - 14 * DAY), iso(NOW)]), ['p1', 'p3']],
  ['between just past an edge', attr('last_login', 'between', [iso(NOW - 14 * DAY + 1), iso(NOW - 1)]), []],
  ['between epoch milliseconds', attr('last_login', 'between', [NOW - 60 * DAY, NOW - 14 * DAY - 1]), ['p2', 'p5']],
  ['contains a substring', attr('nickname', 'contains', 'offee'), ['p1', 'p2']],
  ['contains is case-sensitive', attr('nickname', 'contains', 'Coffee'), ['p1']],
  ['contains takes LIKE wildcards literally', attr('nickname', 'contains', '_ffee 100%'), ['p3']],
  ['contains % matches only a real %', attr('nickname', 'contains', '%'), ['p3']],
  ['contains the whole value', attr('nickname', 'contains', 'coffee'), ['p2']],
  ['contains an empty string: everyone who has the attribute', attr('nickname', 'contains', ''), ['p1', 'p2', 'p3']],
  ['not contains takes in people without the attribute', { not: attr('nickname', 'contains', 'offee') }, ['p3', 'p4', 'p5']],
  ['count at least 2 in the last 7 days', ev('page_viewed', { to: '7d', count: { min: 2 } }), ['p1']],
  ['count at least 2 at any time: future events do not count', ev('page_viewed', { count: { min: 2 } }), ['p1', 'p3']],
  ['count exactly 3', ev('page_viewed', { count: { min: 3, max: 3 } }), ['p1']],
  ['count at least 4', ev('page_viewed', { count: { min: 4 } }), []],
  ['count exactly 1 in the last 7 days', ev('page_viewed', { to: '7d', count: { min: 1, max: 1 } }), ['p2', 'p5']],
  ['count max alone keeps the default min of 1', ev('page_viewed', { to: '7d', count: { max: 1 } }), ['p2', 'p5']],
  ['count min 0 takes in people with none', ev('page_viewed', { to: '7d', count: { min: 0, max: 1 } }), ['p2', 'p3', 'p4', 'p5']],
  ['count min 0 and no max: everyone', ev('page_viewed', { to: '7d', count: { min: 0 } }), ['p1', 'p2', 'p3', 'p4', 'p5']],
  ['count min 0, did not occur: no one', ev('page_viewed', { to: '7d', occurred: false, count: { min: 0 } }), []],
  ['count min 0 max 0: people with none in the window', ev('page_viewed', { to: '7d', count: { min: 0, max: 0 } }), ['p3', 'p4']],
  ['count {} is the default: at least 1', ev('page_viewed', { to: '7d', count: {} }), ['p1', 'p2', 'p5']],
  ['count on window edges: from edge in, to edge out', ev('page_viewed', { from: '9d', to: '10d', count: { min: 1, max: 1 } }), ['p3']],
  ['count with both window edges needs both events in', ev('page_viewed', { from: '9d', to: '10d', count: { min: 2 } }), []],
  ['count, did not occur: fewer than 2 in the last 7 days', ev('page_viewed', { to: '7d', occurred: false, count: { min: 2 } }), ['p2', 'p3', 'p4', 'p5']],
  ['count, did not occur: outside 1..1', ev('page_viewed', { to: '7d', occurred: false, count: { min: 1, max: 1 } }), ['p1', 'p3', 'p4']],
  ['another environment is another mirror', attr('status', 'eq', 'active'), ['px'], 'staging'],
  ['not within another environment', { not: ev('order_delivered', { to: '7d' }) }, [], 'staging'],
];

function ctx(dialect: Dialect, env = ENV, name?: string): CompileContext {
  return {
    dialect,
    env,
    nowMs: NOW,
    fieldTypes: FIELD_TYPES,
    segmentConditions: (n) => SEGMENTS[n],
    ...(name === undefined ? {} : { name }),
  };
}

function rows() {
  const people: [string, string][] = [];
  const attrs: [string, string, string, string, number | null, number | null][] = [];
  const events: [string, string, string, number][] = [];
  for (const [id, p] of Object.entries(PEOPLE)) {
    const env = p.env ?? ENV;
    people.push([env, id]);
    for (const [f, a] of Object.entries(p.attrs)) attrs.push([env, id, f, a.value, a.num ?? null, a.ts ?? null]);
    for (const [name, at] of p.events ?? []) events.push([env, id, name, at]);
  }
  return { people, attrs, events };
}

let sqlite: Database.Database;
let pg: PGlite;

beforeAll(async () => {
  const { people, attrs, events } = rows();
  sqlite = new Database(':memory:');
  for (const s of mirrorDdl('sqlite')) sqlite.exec(s);
  for (const r of people) sqlite.prepare('INSERT INTO mirror_people VALUES (?, ?)').run(...r);
  for (const r of attrs) sqlite.prepare('INSERT INTO mirror_attributes VALUES (?, ?, ?, ?, ?, ?)').run(...r);
  for (const r of events) sqlite.prepare('INSERT INTO mirror_events VALUES (?, ?, ?, ?)').run(...r);

  pg = await PGlite.create();
  for (const s of mirrorDdl('postgres')) await pg.exec(s);
  for (const r of people) await pg.query('INSERT INTO mirror_people VALUES ($1, $2)', r);
  for (const r of attrs) await pg.query('INSERT INTO mirror_attributes VALUES ($1, $2, $3, $4, $5, $6)', r);
  for (const r of events) await pg.query('INSERT INTO mirror_events VALUES ($1, $2, $3, $4)', r);
});

afterAll(async () => {
  sqlite?.close();
  await pg?.close();
});

async function members(dialect: Dialect, cond: Condition, env = ENV): Promise<string[]> {
  const { sql, params } = compileSegment(cond, ctx(dialect, env));
  const out =
    dialect === 'sqlite'
      ? (sqlite.prepare(sql).all(...params) as { person_id: string }[])
      : (await pg.query<{ person_id: string }>(sql, params)).rows;
  return out.map((r) => r.person_id).sort();
}

describe('compileSegment on the mirror', () => {
  describe.each(['sqlite', 'postgres'] as const)('%s', (dialect) => {
    it.each(CASES)('%s', async (_title, cond, expected, env) => {
      expect(await members(dialect, cond, env)).toEqual(expected);
    });
  });

  it('binds every value: one parameter per placeholder, no value in the text', () => {
    const cond: Condition = {
      all: [
        attr('status', 'in', ["o'brien", 'x']),
        ev('order_delivered', { to: '3d' }),
        { segment: 'active' },
        attr('age', 'between', [1, 2]),
        attr('nickname', 'contains', "o'b"),
        ev('page_viewed', { from: '1d', to: '3d', count: { min: 2, max: 4 } }),
        ev('page_viewed', { count: { min: 5 } }),
      ],
    };
    const s = compileSegment(cond, ctx('sqlite'));
    expect(s.sql.split('?').length - 1).toBe(s.params.length);
    expect(s.sql).not.toContain("o'brien");
    const p = compileSegment(cond, ctx('postgres'));
    expect(p.params).toEqual(s.params);
    expect([...p.sql.matchAll(/\$(\d+)/g)].map((m) => Number(m[1]))).toEqual(p.params.map((_, i) => i + 1));
  });
});

describe('compileSegment with the members of referenced segments already stored', () => {
  // The evaluation stores segments in dependency order; a later reference reads audience_candidates.
  const stored = new Set(['active', 'recent_delivery']);
  const storedCtx = (dialect: Dialect): CompileContext => ({ ...ctx(dialect), storedSegments: stored });

  beforeAll(async () => {
    const ddl = 'CREATE TABLE IF NOT EXISTS audience_candidates (env TEXT NOT NULL, segment TEXT NOT NULL, person_id TEXT NOT NULL, PRIMARY KEY (env, segment, person_id))';
    sqlite.exec(ddl);
    await pg.exec(ddl);
    for (const name of stored) {
      for (const dialect of ['sqlite', 'postgres'] as const) {
        const ids = await members(dialect, SEGMENTS[name]!);
        for (const id of ids) {
          if (dialect === 'sqlite') sqlite.prepare('INSERT INTO audience_candidates VALUES (?, ?, ?)').run(ENV, name, id);
          else await pg.query('INSERT INTO audience_candidates VALUES ($1, $2, $3)', [ENV, name, id]);
        }
      }
    }
  });

  describe.each(['sqlite', 'postgres'] as const)('%s', (dialect) => {
    it.each([
      ['segment reference', { all: [{ segment: 'active' }, attr('age', 'gt', 50)] }, ['p5']],
      ['not a segment', { not: { segment: 'active' } }, ['p2', 'p3', 'p4']],
      ['segment of segments', { segment: 'active_recent' }, ['p1']],
    ] as [string, Condition, string[]][])('%s reads the stored members and finds the same', async (_t, cond, expected) => {
      const { sql, params } = compileSegment(cond, storedCtx(dialect));
      expect(sql).toContain('audience_candidates');
      const out =
        dialect === 'sqlite' ? (sqlite.prepare(sql).all(...params) as { person_id: string }[]) : (await pg.query<{ person_id: string }>(sql, params)).rows;
      expect(out.map((r) => r.person_id).sort()).toEqual(expected);
    });
  });

  it('still finds a cycle through a stored segment', () => {
    expect(() => compileSegment(SEGMENTS.loop_a!, { ...ctx('sqlite', ENV, 'loop_a'), storedSegments: new Set(['loop_b']) })).toThrow('cycle: loop_a → loop_b → loop_a');
  });
});

describe('compileSegment refuses', () => {
  const fails = (cond: Condition, name?: string) => () => compileSegment(cond, ctx('sqlite', ENV, name));

  it('a cycle of segment references, naming it', () => {
    expect(fails(SEGMENTS.loop_a!, 'loop_a')).toThrow(SegmentCompileError);
    expect(fails(SEGMENTS.loop_a!, 'loop_a')).toThrow('segment references form a cycle: loop_a → loop_b → loop_a');
    // Entered from outside the loop, the cycle is still found (one level later).
    expect(fails({ segment: 'loop_b' })).toThrow('cycle: loop_b → loop_a → loop_b');
  });

  it('a segment that references itself', () => {
    expect(fails({ any: [attr('status', 'exists'), { segment: 'me' }] }, 'me')).toThrow('segment me: segment references form a cycle: me → me');
  });

  it('a diamond of references is no cycle', () => {
    expect(() => compileSegment({ all: [{ segment: 'active' }, { segment: 'active_recent' }] }, ctx('sqlite', ENV, 'diamond'))).not.toThrow();
  });

  it.each([
    ['an undeclared segment', { segment: 'nope' }, 'references segment nope, which is not declared'],
    ['a segment kept in Customer.io', { segment: 'from_cio' }, 'which has no conditions'],
    ['an undeclared attribute', attr('colour', 'eq', 'red'), 'attribute colour is not declared in Fields'],
    ['order on text', attr('status', 'gt', 'a'), 'needs a number or timestamp field; status is string'],
    ['within on a number', attr('age', 'within', undefined, '3d'), 'needs a timestamp field; age is number'],
    ['within without a duration', attr('last_login', 'within'), 'needs a duration'],
    ['a number that is not one', attr('age', 'eq', 'thirty'), 'the value is not a number'],
    ['a naive date-time', attr('last_login', 'gt', '2026-01-01T00:00:00'), 'the value is not a timestamp'],
    ['a boolean that is not one', attr('vip', 'eq', 'yes'), 'the value is not true or false'],
    ['eq without a value', attr('status', 'eq'), 'needs a single value'],
    ['eq with a list', attr('status', 'eq', ['a']), 'needs a single value'],
    ['between on text', attr('status', 'between', ['a', 'b']), 'needs a number or timestamp field; status is string'],
    ['between with one value', attr('age', 'between', 3), 'needs value: [low, high]'],
    ['between with three values', attr('age', 'between', [1, 2, 3]), 'needs value: [low, high]'],
    ['between with a naive date-time', attr('last_login', 'between', ['2026-01-01T00:00:00', iso(NOW)]), 'the value is not a timestamp'],
    ['contains on a number', attr('age', 'contains', '3'), 'needs a string field; age is number'],
    ['contains with a list', attr('nickname', 'contains', ['a']), 'needs a single value'],
    ['a reversed count', ev('page_viewed', { count: { min: 3, max: 1 } }), 'count min 3 is above max 1'],
  ] as [string, Condition, string][])('%s', (_t, cond, message) => {
    expect(fails(cond, 'seg')).toThrow(SegmentCompileError);
    expect(fails(cond, 'seg')).toThrow(/^segment seg: /);
    expect(fails(cond, 'seg')).toThrow(message);
  });
});
