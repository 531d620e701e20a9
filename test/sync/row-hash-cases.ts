/**
 * The rows whose hashes and payloads row-hash-stability.test.ts pins: what every path that normalises,
 * prepares and hashes a row (the sequential normaliser with prepareRow, and the parallel read's segment
 * worker over CSV text) must keep producing byte for byte, since a snapshot stores these hashes and
 * payloads and an upgrade must see unchanged rows as unchanged.
 *
 * `npx tsx test/sync/row-hash-cases.ts` prints the outcomes as the code computes them now (to pin new
 * cases; never to refresh existing pins, which would defeat them).
 */
import type { FieldDef, SourceSpec } from '../../reconciler/spec/schema/index.ts';
import { createNormalizer } from '../../reconciler/sync/normalize.ts';
import { createSegmentWorker } from '../../reconciler/sync/parallel/segment.ts';
import { prepareRow, type Payload } from '../../reconciler/sync/prepare.ts';
import type { NormalizeContext, SourceRow } from '../../reconciler/sync/types.ts';
import { PEOPLE_CSV_HEADER, peopleFields, peopleSource } from '../support/bench-people.ts';

/** The sync benchmark's person source (test/support/bench-people.ts), plus a clearable field. */
export const benchSource: SourceSpec = { ...peopleSource, fields: { ...peopleSource.fields, note: 'note' } };

/** Its fields, plus the clearable `note` and the fields the object source below maps. */
export const benchFields = new Map<string, FieldDef>(
  Object.entries({
    ...peopleFields,
    note: { type: 'string', owner: 'shop', clearable: true },
    tier: { type: 'enum', owner: 'shop' },
    phone: { type: 'string', format: 'phone', owner: 'shop' },
  } satisfies Record<string, FieldDef>),
);

const normalization: NormalizeContext['normalization'] = { email: { trim: true, lowercase: true }, phone: { format: 'e164', default_country: 'US' } };

export const HEADER = `${PEOPLE_CSV_HEADER},note`;

/** CSV records (after the header) covering what the hashed text and the payload depend on. */
export const CSV_LINES = [
  // The benchmark's shape, plain.
  '100000000,Person.0@Example.com,free,2025-01-01 00:00:00,0,0,US,no,2025-01-01 01:00:00,hello',
  // A blank country (not clearable: blocked) and a blank note (clearable: erased).
  '2754435761,Person.1@Example.com,starter,2025-01-02 00:00:01,1,1.37,,yes,2025-01-02 01:00:01,',
  // Naive times in the spring-forward gap and the fall-back overlap of America/New_York.
  '3000000001,  MiXeD@Example.COM ,pro,2026-03-08 02:30:00,22,13659.01,GB,YES,2026-11-01 01:30:00,x',
  // Offsets, fractions, Z; numbers written every way the converter reads them.
  '3000000002,a@b.co,enterprise,2026-03-08T07:30:00.123456Z,1e3,-0,DE,1,2026-03-08T02:30:00-05:00,y',
  '3000000003,c@d.co,free,2026-06-30 23:59:59.9,007,  5.50 ,FR,0,1767225600,z',
  // Quoted values: a delimiter, a doubled quote, a line end, characters JSON escapes, non-ASCII.
  '3000000004,e@f.co,starter,2025-07-04,3,.5,"C,A",true,2025-07-04T12:00:00+05:30,"say ""hi"""',
  '3000000005,g@h.co,pro,2025-12-31T23:59:59Z,+4,1E-7,"AU\nNZ",false,2025-12-31T23:59:59z,"tab\there \u0001 ctrl \\ back"',
  '3000000006,i@j.co,free,2025-01-01,9007199254740993,123456789012345678901234,NL,no,2025-01-01 00:00:00,"émoji 🎉 \u2028 line"',
  // Every optional field blank, the ordering blank too.
  '3000000007,k@l.co,free,,,,,,,',
  // A duplicate key (both rows are hashed; the diff keeps the later one).
  '100000000,Person.0@Example.com,pro,2025-01-01 00:00:00,5,0,US,no,2025-01-01 02:00:00,hello',
  // Rejected rows: a bad enum, a bad email, a column too few.
  '3000000008,m@n.co,diamond,2025-01-01,1,1,SE,no,2025-01-01,',
  '3000000009,not an email,free,2025-01-01,1,1,SE,no,2025-01-01,',
  '3000000010,o@p.co,free',
];

/** What a row comes to: key, hash, ordering, the stored payload's JSON and the lists; or the reject. */
export type Outcome = string;

function outcomeOf(p: { key: string; hash: string; ordering: number | null; payload?: Payload; nullBlocked: readonly string[]; heldBack: readonly string[]; erased: readonly string[] }): Outcome {
  const lists = `blocked=${p.nullBlocked.join('+')} held=${p.heldBack.join('+')} erased=${p.erased.join('+')}`;
  return `${p.key} ${p.hash} ${p.ordering} ${lists} ${p.payload === undefined ? '-' : JSON.stringify(p.payload)}`;
}

const benchCtx = (): NormalizeContext => ({ source: benchSource, fields: benchFields, normalization, primary: 'id' });

/** The CSV records through the parallel read's segment worker (parse, normalise, prepare, hash), payloads asked for. */
export function segmentOutcomes(): Outcome[] {
  const ctx = benchCtx();
  const work = createSegmentWorker({ source: ctx.source, fields: [...ctx.fields], normalization: ctx.normalization, primary: ctx.primary });
  const r = work({
    seq: 0,
    csv: { path: 'data/people.csv', delimiter: ',', maxRecord: 1 << 20, header: HEADER.split(',') },
    segment: { text: `${CSV_LINES.join('\r\n')}\n`, line: 2, mayHoldInvalid: false },
    payloads: true,
  });
  const out: Outcome[] = [];
  const lists = new Map(r.lists.map((l) => [l.index, l]));
  const rejects = new Map(r.rejects.map((j) => [j.index, j]));
  for (let i = 0; i < r.count; i++) {
    const j = rejects.get(i);
    if (j) {
      out.push(`rejected ${j.location} ${j.code} ${j.column ?? ''} ${j.field ?? ''}`);
      continue;
    }
    const l = lists.get(i);
    const o = r.orderings[i]!;
    out.push(
      `${r.kinds[i]} ${r.lines[i]} ` +
        outcomeOf({
          key: r.keys[r.refs[i]!]!,
          hash: r.hashes[r.refs[i]!]!,
          ordering: Number.isNaN(o) ? null : o,
          payload: JSON.parse(r.payloads![r.refs[i]!]!) as Payload,
          nullBlocked: l?.nullBlocked ?? [],
          heldBack: l?.heldBack ?? [],
          erased: l?.erased ?? [],
        }),
    );
  }
  if (r.notes.length > 0) out.push(`notes ${r.notes.join(' | ')}`);
  return out;
}

/** Rows as other connectors give them (typed values, absent keys), normalised and prepared with and without a previous payload. */
export function normalizerOutcomes(): Outcome[] {
  const out: Outcome[] = [];
  const run = (ctx: NormalizeContext, rows: Record<string, unknown>[], previous?: Payload) => {
    const normalize = createNormalizer(ctx);
    rows.forEach((values, i) => {
      const n = normalize({ location: `x:${i}`, values } satisfies SourceRow);
      if (!n.ok) out.push(`rejected ${n.location} ${n.code}`);
      else out.push(outcomeOf(prepareRow(n, ctx.source, ctx.fields, previous)) + (n.notes ? ` notes=${n.notes.join(' | ')}` : ''));
    });
  };
  const previous: Payload = { records: 'person', attributes: { country: 'SE', plan: 'pro', plan_updated_at: 1700000000, note: 'kept?' } };
  const person = benchCtx();
  const typed: Record<string, unknown>[] = [
    { customer_id: 42, email: 'X@Example.COM', plan: 'free', plan_changed_at: 1735689600, orders: 3, lifetime_value: 1.5, country: 'US', accepts_marketing: true, updated_at: new Date(1735693200000), note: null },
    { customer_id: 43n, email: 'q@r.io', plan: '', plan_changed_at: '2025-01-01', orders: 0, lifetime_value: -0, country: '', accepts_marketing: 'No', updated_at: '2025-01-01 00:00', note: '' },
    // Absent keys (an NDJSON row): not provided, held back with the companion.
    { customer_id: 'c-44', email: 'a@b.io', plan_changed_at: '2025-02-01T00:00:00Z', orders: 1 },
    { customer_id: 'c-45', email: 'a@b.io', country: 'NO', note: 'only' },
  ];
  run(person, typed);
  run(person, typed, previous);
  // Many key orders (more than prepare.ts remembers), one after the other and again.
  const cols = ['email', 'plan', 'orders', 'lifetime_value', 'country', 'accepts_marketing', 'note'] as const;
  const values: Record<string, unknown> = { email: 'z@zz.io', plan: 'pro', orders: '2', lifetime_value: '3.25', country: 'IT', accepts_marketing: 'yes', note: 'n' };
  const shapes: Record<string, unknown>[] = [];
  for (let round = 0; round < 2; round++) {
    for (let skip = 0; skip < cols.length; skip++) {
      for (let skip2 = skip + 1; skip2 < cols.length; skip2 += 3) {
        const row: Record<string, unknown> = { customer_id: `s${skip}-${skip2}` };
        cols.forEach((c, i) => {
          if (i !== skip && i !== skip2) row[c] = values[c];
        });
        shapes.push(row);
      }
    }
  }
  run(person, shapes);
  // Overwrite policy: every blank erases.
  run({ ...person, source: { ...benchSource, null_policy: 'overwrite' } }, [typed[1]!], previous);
  // Objects, with and without a related person.
  const object: SourceSpec = {
    ...benchSource,
    name: 'stores',
    records: 'object',
    ordering: undefined,
    object: { type: 'store', type_id: '3', id_column: 'store_id' },
    fields: { tier: 'tier', phone: 'phone', note: 'note' },
  } as SourceSpec;
  run({ ...person, source: object }, [
    { store_id: 's1', customer_id: '42', tier: 'gold', phone: '(415) 555-0100', note: 'a "quoted" note' },
    { store_id: 7, customer_id: '', tier: ' silver ', phone: '+44 20 7946 0958', note: '' },
  ]);
  // Events: the hash covers the event only.
  const event: SourceSpec = {
    ...benchSource,
    name: 'orders',
    records: 'event',
    ordering: undefined,
    event: { name: 'order_placed', timestamp_column: 'placed_at', id_columns: ['order_id', 'placed_at'] },
    fields: { order_count: 'orders', note: 'note' },
  } as SourceSpec;
  run({ ...person, source: event }, [
    { customer_id: '42', placed_at: '2026-03-08 02:30:00', order_id: 'o-1', orders: '1', note: 'first' },
    { customer_id: '42', placed_at: 1767225600, order_id: 991, orders: '', note: '' },
  ]);
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify({ segment: segmentOutcomes(), normalizer: normalizerOutcomes() }, null, 2));
}
