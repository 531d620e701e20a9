/**
 * Per row: identities normalised, rows without a valid identity rejected with a reason (in the rejects
 * file under the state folder, never in the report or on stdout), naive timestamps read in the source's
 * timezone (DST gap and overlap included), values checked against the field registry's types.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import type { SyncReport } from '../../reconciler/sync/run.ts';
import { createConnector } from '../../reconciler/sync/connectors/index.ts';
import { attributesOf, cli, makeProject, ndjson, personSource, readRejects, rejectsOf, returnsSource, sync, syncOk, useSandbox, writeData } from '../support/sync-fixture.ts';

let sandbox: RunningSandbox;
let dir: string | undefined;

useSandbox(11, (s) => (sandbox = s));

// Values that must never reach a report, stdout or a rejects reason: they identify people.
const PII = ['Ana.Souza@Example.COM', 'ana.souza@example.com', 'not-an-email@', '(415) 555-0132', '+14155550132', '555-12', 'bob@example'];

const CUSTOMER_FIELDS = { email: 'email', phone: 'phone', order_count: 'orders', accepts_marketing: 'marketing', last_seen_at: 'seen_at' };

describe('identities', () => {
  it('stores ids as strings, trims them, lowercases and trims emails, and writes phones as E.164 with the default country', async () => {
    dir = await makeProject({
      sources: [personSource({ fields: CUSTOMER_FIELDS })],
      data: {
        'customers.ndjson': ndjson([
          { customer_id: 1001, email: '  Ana.Souza@Example.COM ', phone: '(415) 555-0132', orders: 3, marketing: 'yes' },
          { customer_id: ' 1002 ', email: 'BOB@example.org', phone: '+44 20 7946 0958', orders: '7', marketing: false },
          { customer_id: 1003.0, orders: 0, marketing: 1 },
        ]),
      },
    });
    const r = await syncOk(dir, sandbox, 'customers');
    expect(r.counts).toMatchObject({ read: 3, rejected: 0, new: 3, sent: 3, acknowledged: 3 });
    expect(sandbox.customerio.listPeople().map((p) => p.id).sort()).toEqual(['1001', '1002', '1003']);
    expect(attributesOf(sandbox, '1001')).toMatchObject({ phone: '+14155550132', order_count: 3, accepts_marketing: true });
    expect(attributesOf(sandbox, '1002')).toMatchObject({ phone: '+442079460958', order_count: 7, accepts_marketing: false });
    expect(attributesOf(sandbox, '1003')).toMatchObject({ order_count: 0, accepts_marketing: true });
    // Customer.io keeps the email attribute as the person's email identifier.
    expect(sandbox.customerio.getPerson('1001')?.email).toBe('ana.souza@example.com');
    expect(sandbox.customerio.getPerson('1002')?.email).toBe('bob@example.org');
  });

  it('normalises an email used as the primary identifier before it reaches Customer.io', async () => {
    dir = await makeProject({
      primary: 'email',
      sources: [personSource({ fields: { order_count: 'orders' }, identity: { column: 'email', as: 'email' } })],
      data: { 'customers.ndjson': ndjson([{ email: '  Ana.Souza@Example.COM ', orders: 2 }, { email: 'ana.souza@example.com', orders: 2 }]) },
    });
    const r = await syncOk(dir, sandbox, 'customers');
    // Both spellings are one person: the second row is a duplicate key, not a second profile.
    expect(r.counts).toMatchObject({ read: 2, new: 1, duplicates: 1, sent: 1 });
    const people = sandbox.customerio.listPeople();
    expect(people.map((p) => [p.id, p.email])).toEqual([[null, 'ana.souza@example.com']]);
    expect(people[0]!.attributes).toMatchObject({ order_count: 2 });
  });

  it('rejects rows without a valid identity, with the reason in the rejects file and no identifier in the report or on stdout', async () => {
    dir = await makeProject({
      // 5 of 6 rows are rejected: within the threshold this source declares, so the run succeeds.
      sources: [personSource({ fields: CUSTOMER_FIELDS, extra: 'max_rejected: 90%\n' })],
      data: {
        'customers.ndjson': ndjson([
          { customer_id: 2001, email: 'Ana.Souza@Example.COM', phone: '(415) 555-0132', orders: 1 },
          { email: 'not-an-email@', orders: 1 },
          { customer_id: '   ', email: 'bob@example', orders: 1 },
          { customer_id: 2004, email: 'not-an-email@', orders: 1 },
          { customer_id: 2005, phone: '555-12', orders: 1 },
          { customer_id: 12.5, orders: 1 },
        ]),
      },
    });
    const run = await cli(dir, sandbox, ['sync', 'run', 'customers']);
    expect(run.code, run.stderr).toBe(0);
    const json = await cli(dir, sandbox, ['sync', 'plan', 'customers', '--format', 'json']);
    for (const text of [run.stdout, run.stderr, json.stdout, json.stderr]) {
      for (const value of PII) expect(text).not.toContain(value);
      expect(text).not.toMatch(/\b200[1-5]\b/);
    }
    expect(run.stdout).toMatch(/rejected 5 \(identity_invalid_id 1, identity_missing 2, value_invalid_email 1, value_invalid_phone 1\)/);
    expect(run.stdout).toContain(`rejected rows: ${path.join('.tidemark', 'rejects', 'customers')}`);

    expect(sandbox.customerio.listPeople().map((p) => p.id)).toEqual(['2001']);
    const files = await readRejects(dir, 'customers');
    // One file for the run and one for the plan that read the same rows again.
    expect(files).toHaveLength(2);
    const rows = files.find((f) => !path.basename(f.file).startsWith('plan-'))!.rows;
    expect(rows).toEqual([
      { location: 'data/customers.ndjson:2', code: 'identity_missing', reason: 'Identity column "customer_id" (as id) is empty.', column: 'customer_id' },
      { location: 'data/customers.ndjson:3', code: 'identity_missing', reason: 'Identity column "customer_id" (as id) is empty.', column: 'customer_id' },
      {
        location: 'data/customers.ndjson:4',
        code: 'value_invalid_email',
        reason: 'Field email (column "email") is not a valid email address.',
        column: 'email',
        field: 'email',
      },
      {
        location: 'data/customers.ndjson:5',
        code: 'value_invalid_phone',
        reason: 'Field phone (column "phone") is not a valid phone number.',
        column: 'phone',
        field: 'phone',
      },
      {
        location: 'data/customers.ndjson:6',
        code: 'identity_invalid_id',
        reason: 'Identity column "customer_id" (as id) is a number with a fractional part, not an id.',
        column: 'customer_id',
      },
    ]);
    const rejectsText = await readFile(files[0]!.file, 'utf8');
    for (const value of PII) expect(rejectsText).not.toContain(value);
  });
});

describe('timestamps', () => {
  it('reads naive times in the source timezone and lands the documented UTC instants, across both DST transitions', async () => {
    dir = await makeProject({
      sources: [personSource({ fields: { last_seen_at: 'seen_at' }, timezone: 'America/New_York' })],
      data: {
        'customers.ndjson': ndjson([
          // Spring forward: 02:30 never happened in New York; it is read as 03:30 EDT.
          { customer_id: 'gap', seen_at: '2026-03-08 02:30' },
          // Fall back: 01:30 happened twice; the earlier instant (EDT) is used.
          { customer_id: 'overlap', seen_at: '2026-11-01 01:30' },
          { customer_id: 'summer', seen_at: '2026-07-04T12:00:00' },
          // An explicit offset wins over the source timezone.
          { customer_id: 'offset', seen_at: '2026-07-04T12:00:00+02:00' },
          { customer_id: 'epoch', seen_at: 1783180800 },
        ]),
      },
    });
    const r = await syncOk(dir, sandbox, 'customers');
    expect(r.counts).toMatchObject({ read: 5, rejected: 0, sent: 5 });
    expect(attributesOf(sandbox, 'gap')?.last_seen_at).toBe(Date.parse('2026-03-08T07:30:00Z') / 1000);
    expect(attributesOf(sandbox, 'overlap')?.last_seen_at).toBe(Date.parse('2026-11-01T05:30:00Z') / 1000);
    expect(attributesOf(sandbox, 'summer')?.last_seen_at).toBe(Date.parse('2026-07-04T16:00:00Z') / 1000);
    expect(attributesOf(sandbox, 'offset')?.last_seen_at).toBe(Date.parse('2026-07-04T10:00:00Z') / 1000);
    expect(attributesOf(sandbox, 'epoch')?.last_seen_at).toBe(1783180800);
    // The report says which rule was applied (by column, never by value).
    expect(r.notes.some((n) => /daylight-saving gap of America\/New_York/.test(n))).toBe(true);
    expect(r.notes.some((n) => /ambiguous in America\/New_York/.test(n))).toBe(true);
  });

  it('rejects a naive timestamp that is not a calendar time', async () => {
    dir = await makeProject({
      sources: [personSource({ fields: { last_seen_at: 'seen_at' }, timezone: 'America/New_York' })],
      data: { 'customers.ndjson': ndjson([{ customer_id: 'a', seen_at: '2026-02-30 10:00' }, { customer_id: 'b', seen_at: 'yesterday' }]) },
    });
    const r = await sync(dir, sandbox, 'customers');
    expect(r.counts).toMatchObject({ read: 2, rejected: 2, rejected_by_code: { timestamp_invalid: 2 }, sent: 0 });
    // Nothing could be sent: a failure, not a quiet success.
    expect(r.status).toBe('failed');
    expect(r.problems).toEqual(['Every one of the 2 rows read was rejected (see the rejects file); nothing could be sent.']);
    expect((await rejectsOf(dir, r)).map((x) => x.field)).toEqual(['last_seen_at', 'last_seen_at']);
    expect(sandbox.customerio.listPeople()).toEqual([]);
  });
});

describe('early end of a read', () => {
  const csvSource = (file: string) => personSource({ connector: `{ type: csv, path: data/${file} }`, fields: { order_count: 'orders' } });
  const lines = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `c${from + i},${from + i}`).join('\n');

  it('fails the run at a quote that never closes, naming its line and the lines left unread; the watermark stays', async () => {
    // Header on line 1, rows on lines 2..501, the quote opens on line 502, 500 more rows after it.
    const text = `customer_id,orders\n${lines(2, 501)}\nc502,"7\n${lines(503, 1002)}\n`;
    dir = await makeProject({ sources: [csvSource('customers.csv')], data: { 'customers.csv': text } });
    const run = await cli(dir, sandbox, ['sync', 'run', 'customers']);
    expect(run.code).toBe(1);
    expect(run.stdout + run.stderr).toContain('a quote opened on line 502 is never closed, so lines 502 to 1002 were not read');
    const report = JSON.parse((await cli(dir, sandbox, ['status', '--format', 'json'])).stdout) as unknown;
    expect(JSON.stringify(report)).toContain('line 502');
    // The run failed, so the next one still reads from the start.
    const again = JSON.parse((await cli(dir, sandbox, ['sync', 'run', 'customers', '--format', 'json'])).stdout) as { runs: SyncReport[] };
    expect(again.runs[0]!.status).toBe('failed');
    expect(again.runs[0]!.last_sync_at).toBeNull();
  });

  it('fails the run at a line over the limit, saying so instead of blaming a quote (NDJSON and CSV)', async () => {
    dir = await makeProject({
      sources: [csvSource('customers.csv'), personSource({ name: 'dump', fields: { order_count: 'orders' } })],
      policy: { OWN001: 'off' },
      data: {
        'customers.csv': `customer_id,orders\nc1,1\nc2,${'9'.repeat(2000)}\nc3,3\n`,
        'dump.ndjson': `{"customer_id":"d1","orders":1}\n[${'{"customer_id":"x"},'.repeat(200)}{}]\n{"customer_id":"d3","orders":3}\n`,
      },
    });
    const csv = await sync(dir, sandbox, 'customers', { connector: createConnector({ type: 'csv', path: 'data/customers.csv' }, { csv: { maxRecordChars: 1000 } }) });
    expect(csv.status).toBe('failed');
    expect(csv.error).toContain('Reading data/customers.csv stopped early: line 3 is longer than the limit of 1000 characters, so nothing from line 3 on was read.');
    const nd = await sync(dir, sandbox, 'dump', { connector: createConnector({ type: 'ndjson', path: 'data/dump.ndjson' }, { ndjson: { maxLineChars: 1000 } }) });
    expect(nd.status).toBe('failed');
    expect(nd.error).toMatch(/Reading data\/dump\.ndjson stopped early: line 2 is longer than the limit of 1000 characters/);
    expect(nd.error).not.toMatch(/quote/);
  });
});

describe('missing mapped columns', () => {
  it('fails a CSV run before anything is sent when the header lacks a mapped column, naming it and the file', async () => {
    const source = personSource({ connector: '{ type: csv, path: data/customers.csv }', fields: { preferred_store: 'store', order_count: 'orders' } });
    dir = await makeProject({ sources: [source], data: { 'customers.csv': 'customer_id,store,orders\nc1,Berlin,1\nc2,Paris,2\n' } });
    expect((await cli(dir, sandbox, ['sync', 'run', 'customers'])).code).toBe(0);
    expect(attributesOf(sandbox, 'c1')).toMatchObject({ preferred_store: 'Berlin' });

    // The export renames `store`: read as blank, it would erase the clearable field for everyone.
    await writeFile(path.join(dir, 'data', 'customers.csv'), 'customer_id,store_name,orders\nc1,Berlin,5\nc2,Paris,6\n');
    sandbox.resetRequestCounts();
    const run = await cli(dir, sandbox, ['sync', 'run', 'customers']);
    expect(run.code).toBe(1);
    expect(run.stdout + run.stderr).toContain(
      'The header of data/customers.csv has no column "store" (fields.preferred_store), which the source maps; nothing was sent. Its columns are: customer_id, store_name, orders.',
    );
    expect(sandbox.requestCounts()['POST /api/v2/batch'] ?? 0).toBe(0);
    expect(attributesOf(sandbox, 'c1')).toMatchObject({ preferred_store: 'Berlin', order_count: 1 });
  });

  it('reads a key missing from an NDJSON object as not provided, never as a blank that erases', async () => {
    dir = await makeProject({
      sources: [personSource({ fields: { preferred_store: 'store', order_count: 'orders' } })],
      data: { 'customers.ndjson': ndjson([{ customer_id: 'c1', store: 'Berlin', orders: 1 }, { customer_id: 'c2', store: 'Paris', orders: 1 }]) },
    });
    await syncOk(dir, sandbox, 'customers');
    // c1 leaves the key out (not provided); c2 says null explicitly (a blank: the clearable field is erased).
    await writeData(dir, 'customers.ndjson', ndjson([{ customer_id: 'c1', orders: 2 }, { customer_id: 'c2', store: null, orders: 1 }]));
    const r = await syncOk(dir, sandbox, 'customers');
    expect(r.counts).toMatchObject({ changed: 2, erased: { preferred_store: 1 }, null_blocked: {} });
    expect(attributesOf(sandbox, 'c1')).toMatchObject({ preferred_store: 'Berlin', order_count: 2 });
    expect(attributesOf(sandbox, 'c2')?.preferred_store).toBeUndefined();
    // Read again, the row without the key is no change: the value Customer.io holds is still mirrored.
    expect((await syncOk(dir, sandbox, 'customers')).counts).toMatchObject({ unchanged: 2, sent: 0 });
  });
});

describe('encodings', () => {
  it('rejects a line that is not UTF-8 with its line number, never sending replacement characters, and sends the others', async () => {
    dir = await makeProject({
      primary: 'email',
      sources: [personSource({ fields: { order_count: 'orders' }, identity: { column: 'email', as: 'email' }, extra: 'max_rejected: 50%\n' })],
    });
    await writeFile(
      path.join(dir, 'data', 'customers.ndjson'),
      Buffer.concat([Buffer.from('{"email":"ana@example.com","orders":1}\n{"email":"jos'), Buffer.from([0xe9]), Buffer.from('@example.com","orders":2}\n{"email":"bo@example.com","orders":3}\n')]),
    );
    const r = await syncOk(dir, sandbox, 'customers');
    expect(r.counts).toMatchObject({ read: 3, rejected: 1, rejected_by_code: { invalid_encoding: 1 }, acknowledged: 2 });
    expect(await rejectsOf(dir, r)).toEqual([
      {
        location: 'data/customers.ndjson:2',
        code: 'invalid_encoding',
        reason: "Line 2 is not valid UTF-8, so it was not read; declare the file's encoding in the connector (`encoding: latin1`, `utf-16le`, …) if it is not UTF-8.",
      },
    ]);
    const emails = sandbox.customerio.listPeople().map((p) => p.email).sort();
    expect(emails).toEqual(['ana@example.com', 'bo@example.com']);
    expect(JSON.stringify(sandbox.customerio.listPeople())).not.toContain('\uFFFD');
  });

  it('decodes a declared latin1 file and a UTF-16 file with a byte-order mark', async () => {
    const latin1 = personSource({ name: 'legacy', connector: '{ type: csv, path: data/legacy.csv, encoding: latin1 }', fields: { preferred_store: 'store' } });
    const utf16 = personSource({ name: 'excel', connector: '{ type: csv, path: data/excel.csv }', fields: { preferred_store: 'store' } });
    dir = await makeProject({ sources: [latin1, utf16], policy: { OWN001: 'off' } });
    await writeFile(path.join(dir, 'data', 'legacy.csv'), Buffer.from('customer_id,store\nl1,Málaga\n', 'latin1'));
    await writeFile(path.join(dir, 'data', 'excel.csv'), Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('customer_id,store\r\nx1,Köln\r\n', 'utf16le')]));
    await syncOk(dir, sandbox, 'legacy');
    await syncOk(dir, sandbox, 'excel');
    expect(attributesOf(sandbox, 'l1')).toMatchObject({ preferred_store: 'Málaga' });
    expect(attributesOf(sandbox, 'x1')).toMatchObject({ preferred_store: 'Köln' });
  });

  it('refuses at validation an encoding this runtime cannot decode', async () => {
    dir = await makeProject({ sources: [personSource({ connector: '{ type: csv, path: data/c.csv, encoding: ebcdic }', fields: { order_count: 'orders' } })] });
    const v = await cli(dir, sandbox, ['validate']);
    expect(v.code).toBe(1);
    expect(v.stdout + v.stderr).toMatch(/not an encoding this runtime can decode/);
  });
});

describe('event identity', () => {
  const returns = [
    { return_id: 'R-1', customer_id: 'c1', created_at: '2026-11-21 14:03:00', reason: 'too_strong', amount: 18.5 },
    { return_id: 'R-2', customer_id: 'c1', created_at: '2026-11-22 09:41:00', reason: 'damaged', amount: 32 },
    { return_id: 'R-3', customer_id: 'c2', created_at: '2026-07-01 09:00:00', reason: 'wrong_size', amount: 12 },
  ];
  const events = () => [...sandbox.customerio.eventsFor('c1'), ...sandbox.customerio.eventsFor('c2')];

  it('re-delivers no event when the source timezone is corrected, with the snapshot kept or lost', async () => {
    dir = await makeProject({ sources: [returnsSource({ timezone: 'Europe/London' })], data: { 'returns.ndjson': ndjson(returns) } });
    expect((await syncOk(dir, sandbox, 'returns')).counts).toMatchObject({ new: 3, acknowledged: 3 });
    const ids = events().map((e) => e.id).sort();
    expect(ids).toHaveLength(3);

    // The timezone fix moves every event's instant; the events themselves are the ones already delivered.
    const fixed = await makeProject({ sources: [returnsSource({ timezone: 'America/New_York' })], data: { 'returns.ndjson': ndjson(returns) } });
    await writeFile(path.join(dir, 'specs', 'sources', 'sources.yaml'), await readFile(path.join(fixed, 'specs', 'sources', 'sources.yaml'), 'utf8'));
    const again = await syncOk(dir, sandbox, 'returns');
    expect(again.counts).toMatchObject({ read: 3, new: 0, sent: 0 });

    // A project with no snapshot at all (state lost) sends them again, under the same ids, so Customer.io
    // deduplicates them: still three events.
    const replay = await syncOk(fixed, sandbox, 'returns');
    expect(replay.counts).toMatchObject({ new: 3, sent: 3, acknowledged: 3 });
    expect(events().map((e) => e.id).sort()).toEqual(ids);
  });
});

describe('field types', () => {
  it('converts values to the registry type and rejects the row when a value does not fit', async () => {
    dir = await makeProject({
      sources: [
        personSource({ name: 'vip', system: 'warehouse', fields: { vip_tier: 'tier' }, extra: 'max_rejected: 0.5\n' }),
        personSource({ fields: { order_count: 'orders', accepts_marketing: 'marketing' }, extra: 'max_rejected: 50%\n' }),
      ],
      data: {
        'vip.ndjson': ndjson([
          { customer_id: 'v1', tier: 'gold' },
          { customer_id: 'v2', tier: 'diamond' },
        ]),
        'customers.ndjson': ndjson([
          { customer_id: 'c1', orders: '12', marketing: 'TRUE' },
          { customer_id: 'c2', orders: 'many', marketing: 'yes' },
          { customer_id: 'c3', orders: 4, marketing: 'maybe' },
          { customer_id: 'c4', orders: '1e3', marketing: 0 },
        ]),
      },
    });
    const vip = await syncOk(dir, sandbox, 'vip');
    expect(vip.counts).toMatchObject({ read: 2, rejected: 1, rejected_by_code: { type_mismatch: 1 }, sent: 1 });
    // Enum values are declared vocabulary, so the reason may name them.
    expect(await rejectsOf(dir, vip)).toEqual([
      {
        location: 'data/vip.ndjson:2',
        code: 'type_mismatch',
        reason: 'Field vip_tier (column "tier") has "diamond", which is not one of: none, silver, gold, platinum.',
        column: 'tier',
        field: 'vip_tier',
      },
    ]);
    const customers = await syncOk(dir, sandbox, 'customers');
    expect(customers.counts).toMatchObject({ read: 4, rejected: 2, rejected_by_code: { type_mismatch: 2 }, sent: 2 });
    expect((await rejectsOf(dir, customers)).map((x) => [x.location, x.field])).toEqual([
      ['data/customers.ndjson:2', 'order_count'],
      ['data/customers.ndjson:3', 'accepts_marketing'],
    ]);
    expect(attributesOf(sandbox, 'v1')).toMatchObject({ vip_tier: 'gold' });
    expect(sandbox.customerio.getPerson('v2')).toBeUndefined();
    expect(attributesOf(sandbox, 'c1')).toMatchObject({ order_count: 12, accepts_marketing: true });
    expect(attributesOf(sandbox, 'c4')).toMatchObject({ order_count: 1000, accepts_marketing: false });
    expect(sandbox.customerio.getPerson('c2')).toBeUndefined();
    expect(sandbox.customerio.getPerson('c3')).toBeUndefined();
  });
});
