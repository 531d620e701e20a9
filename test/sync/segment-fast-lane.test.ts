/**
 * The segment worker's fast lane (createRecordHasher) against the general path it stands in for: on
 * random CSV records, every row's kind, key, hash, ordering, lists, payload and the segment's notes
 * and rejects must be what parsing the same text into rows and calling the normaliser and prepareRow
 * gives. The values are drawn to reach both lanes: blanks, rejects, whitespace, quoted text, characters
 * JSON escapes, numbers and timestamps in every form the converters read.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FieldDef, SourceSpec } from '../../reconciler/spec/schema/index.ts';
import { createNormalizer, createRecordHasher, type HashedRecord } from '../../reconciler/sync/normalize.ts';
import { ACCEPTED, ACCEPTED_WITH_BLANKS, createSegmentWorker, REJECTED, segmentRows, type SegmentResult } from '../../reconciler/sync/parallel/segment.ts';
import { prepareRow, type Payload } from '../../reconciler/sync/prepare.ts';
import type { NormalizeContext } from '../../reconciler/sync/types.ts';

const FIELDS = new Map<string, FieldDef>(
  Object.entries({
    email: { type: 'string', format: 'email', owner: 'shop' },
    plan: { type: 'enum', values: ['free', 'pro'], owner: 'shop', updated_at: 'plan_at' },
    plan_at: { type: 'timestamp', owner: 'shop' },
    orders: { type: 'number', owner: 'shop' },
    vip: { type: 'boolean', owner: 'shop' },
    note: { type: 'string', owner: 'shop', clearable: true },
    '10': { type: 'string', owner: 'shop' },
  } satisfies Record<string, FieldDef>),
);

const HEADER = ['id', 'email', 'plan', 'plan_at', 'orders', 'vip', 'note', 'at', 'unused'];

function source(over: Partial<SourceSpec> = {}): SourceSpec {
  return {
    kind: 'Source',
    name: 'people',
    system: 'shop',
    connector: { type: 'csv', path: 'p.csv' },
    schedule: '0 3 * * *',
    records: 'person',
    identity: { column: 'id', as: 'id' },
    ordering: 'at',
    timezone: 'Europe/London',
    null_policy: 'protect',
    // '10': an integer-like field name, which objects order first.
    fields: { email: 'email', plan: 'plan', plan_at: 'plan_at', orders: 'orders', vip: 'vip', note: 'note', '10': 'unused' },
    ...over,
  };
}

const oneOf = (...values: string[]) => fc.constantFrom(...values);
const text = fc.string({ unit: fc.constantFrom('a', 'Z', ' ', ',', '"', '\n', 'é', '🎉', '\\', '\t', '\u0001', '\u2028'), maxLength: 6 });
const cell = (valid: fc.Arbitrary<string>) => fc.oneof({ weight: 12, arbitrary: valid }, { weight: 1, arbitrary: oneOf('', ' ', 'bad') });
const stamp = oneOf('2026-03-29 01:30:00', '2026-10-25 01:30', '2025-06-01T12:00:00Z', '2025-06-01', '1767225600', ' 2025-01-01 ', '2025-13-01', '1750000000123');
const record = fc
  .tuple(
    cell(oneOf('1', ' 2 ', 'c-3', '00042', 'x'.repeat(151))),
    cell(oneOf('A@B.io', ' a@b.io ', 'not@', 'z@zz.io')),
    cell(oneOf('free', 'pro', ' pro ', 'gold')),
    cell(stamp),
    cell(oneOf('1', '-0', '1e3', ' 5 ', '.5', '9007199254740993', '1e400', 'x')),
    cell(oneOf('yes', 'NO', '1', ' true ', 'maybe')),
    cell(text),
    cell(stamp),
    cell(text),
  )
  .map((cells) => cells.map((c) => (/[",\r\n]/.test(c) ? `"${c.replaceAll('"', '""')}"` : c)).join(','));
const segmentText = fc.array(fc.oneof({ weight: 30, arbitrary: record }, { weight: 1, arbitrary: oneOf('1,a@b.io', '"2"x,a@b.io,free,,,,,,', '') }), { minLength: 1, maxLength: 40 }).map((rs) => `${rs.join('\n')}\n`);

/** The segment as the general path computes it: rows parsed, normalised and prepared one by one. */
function general(ctx: NormalizeContext, text: string): unknown {
  const normalize = createNormalizer(ctx);
  const out: unknown[] = [];
  const notes = new Set<string>();
  const rows = segmentRows({ path: 'p.csv', delimiter: ',', maxRecord: 1 << 20, header: HEADER }, { text, line: 2, mayHoldInvalid: false }, (row, start, end, line) => {
    const n = normalize(row);
    if (!n.ok) {
      out.push({ kind: REJECTED, line, start, end, reject: { location: n.location, code: n.code, reason: n.reason, column: n.column, field: n.field } });
      return;
    }
    for (const note of n.notes ?? []) notes.add(note);
    const p = prepareRow(n, ctx.source, ctx.fields, undefined);
    const kind = n.blanks.length > 0 || n.absent !== undefined ? ACCEPTED_WITH_BLANKS : ACCEPTED;
    out.push({ kind, line, start, end, key: p.key, hash: p.hash, ordering: p.ordering, lists: [p.nullBlocked, p.heldBack, p.erased], payload: JSON.stringify(p.payload) });
  });
  return { rows: out, notes: [...notes], decoded: rows.decoded, undecodable: rows.undecodable };
}

/** The worker's answer in the same form. */
function worker(ctx: NormalizeContext, text: string): unknown {
  const work = createSegmentWorker({ source: ctx.source, fields: [...ctx.fields], normalization: ctx.normalization, primary: ctx.primary });
  const r: SegmentResult = work({ seq: 0, csv: { path: 'p.csv', delimiter: ',', maxRecord: 1 << 20, header: HEADER }, segment: { text, line: 2, mayHoldInvalid: false }, payloads: true });
  const lists = new Map(r.lists.map((l) => [l.index, [l.nullBlocked, l.heldBack, l.erased]]));
  const rejects = new Map(r.rejects.map((j) => [j.index, j]));
  const out: unknown[] = [];
  for (let i = 0; i < r.count; i++) {
    const at = { kind: r.kinds[i], line: r.lines[i], start: r.starts[i], end: r.ends[i] };
    if (r.kinds[i] === REJECTED) {
      const j = rejects.get(i)!;
      out.push({ ...at, reject: { location: j.location, code: j.code, reason: j.reason, column: j.column, field: j.field } });
      continue;
    }
    const o = r.orderings[i]!;
    // The worker hands back the payload's text: what the general path's payload serialises to.
    const payload = r.payloads?.[r.refs[i]!];
    out.push({ ...at, key: r.keys[r.refs[i]!], hash: r.hashes[r.refs[i]!], ordering: Number.isNaN(o) ? null : o, lists: lists.get(i) ?? [[], [], []], payload });
  }
  return { rows: out, notes: r.notes, decoded: r.decoded, undecodable: r.undecodable };
}

const ctxOf = (src: SourceSpec): NormalizeContext => ({ source: src, fields: FIELDS, normalization: { email: { trim: true, lowercase: true } }, primary: 'id' });

describe('the segment worker fast lane', () => {
  it('gives what the general path gives, row for row, on random records (null policy protect and overwrite)', () => {
    const contexts = [ctxOf(source()), ctxOf(source({ null_policy: 'overwrite' }))];
    fc.assert(
      fc.property(segmentText, fc.constantFrom(0, 1), (text, c) => {
        expect(worker(contexts[c]!, text)).toEqual(general(contexts[c]!, text));
      }),
      { numRuns: 400 },
    );
  });

  it('takes accepted rows, blanks included, and leaves the general path rejects and rows without attributes', () => {
    const ctx = ctxOf(source());
    const hasher = createRecordHasher(ctx, HEADER)!;
    const out: HashedRecord = { key: '', hash: '', ordering: null, blanks: false, nullBlocked: [], heldBack: [], erased: [], notes: undefined, payload: undefined };
    expect(hasher(['1', 'a@b.io', 'pro', '2025-06-01', '2', 'yes', 'n', '2025-06-01', 'u'], out, false)).toBe(true);
    expect(out).toMatchObject({ key: '1', blanks: false, payload: undefined });
    // A blocked plan holds back its companion; a clearable note is erased.
    expect(hasher(['1', 'a@b.io', '', '2025-06-01', '2', 'yes', '', '2025-06-01', 'u'], out, true)).toBe(true);
    expect(out).toMatchObject({ blanks: true, nullBlocked: ['plan'], heldBack: ['plan_at'], erased: ['note'] });
    expect(out.payload).toEqual({ records: 'person', attributes: { '10': 'u', email: 'a@b.io', orders: 2, vip: true, note: null } });
    expect(hasher(['1', 'a@b.io', 'gold', '2025-06-01', '2', 'yes', 'n', '2025-06-01', 'u'], out, false)).toBe(false);
    expect(createRecordHasher(ctxOf(source({ fields: { email: 'email' } })), HEADER)!(['1', ' ', '', '', '', '', '', '', ''], out, false)).toBe(false);
  });

  it('is not used for sources and headers it does not handle', () => {
    expect(createRecordHasher(ctxOf(source({ records: 'object', object: { type: 's', type_id: '1', id_column: 'id' } } as Partial<SourceSpec>)), HEADER)).toBeUndefined();
    expect(createRecordHasher(ctxOf(source()), [...HEADER, '__error'])).toBeUndefined();
    expect(createRecordHasher(ctxOf(source({ fields: { email: 'email', unknown_field: 'note' } })), HEADER)).toBeUndefined();
    expect(createRecordHasher(ctxOf(source({ fields: {} })), HEADER)).toBeUndefined();
  });
});
