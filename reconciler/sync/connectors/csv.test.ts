import { once } from 'node:events';
import { createWriteStream, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCsvConnector } from './csv.ts';
import { ConnectorError } from './errors.ts';
import { createConnector } from './index.ts';
import { collect, context, forceGc, makeFifo, openDescriptorsFor, tempDir } from './files.test-support.ts';

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => {
  tmp = tempDir();
});
afterAll(() => tmp.cleanup());

function file(name: string, content: string | Buffer): string {
  writeFileSync(path.join(tmp.dir, name), content);
  return name;
}

const read = (name: string, delimiter?: string) =>
  collect(createCsvConnector({ type: 'csv', path: name, ...(delimiter ? { delimiter } : {}) }), context(tmp.dir));

describe('csv connector', () => {
  it('reads quoted fields, doubled quotes, CRLF, a BOM, blank lines and a multi-line field, with record start lines', async () => {
    const name = file('quotes.csv', '\uFEFFid,name,note\r\n1,"Smith, Jo","said ""hi"""\r\n\r\n2,"two\r\nlines",x\r\n3,plain,""\r\n');
    expect(await read(name)).toEqual([
      { location: 'quotes.csv:2', values: { id: '1', name: 'Smith, Jo', note: 'said "hi"' } },
      { location: 'quotes.csv:4', values: { id: '2', name: 'two\r\nlines', note: 'x' } },
      { location: 'quotes.csv:6', values: { id: '3', name: 'plain', note: '' } },
    ]);
  });

  it('counts lines after several CRLFs inside quoted fields exactly', async () => {
    const name = file('multiline.csv', 'a,b\r\n"1\r\n2\r\n3",x\r\n"4\n5",y\r\nlast,z\r\n');
    const rows = await read(name);
    expect(rows.map((r) => r.location)).toEqual(['multiline.csv:2', 'multiline.csv:5', 'multiline.csv:7']);
  });

  it('turns a line with the wrong column count into an __error row and reads on', async () => {
    const name = file('columns.csv', 'id,tier\n1,gold\n2\n3,silver,extra\n4,bronze\n');
    const rows = await read(name);
    expect(rows).toEqual([
      { location: 'columns.csv:2', values: { id: '1', tier: 'gold' } },
      { location: 'columns.csv:3', values: { __error: 'Malformed CSV line: expected 2 columns (as in the header), got 1.' } },
      { location: 'columns.csv:4', values: { __error: 'Malformed CSV line: expected 2 columns (as in the header), got 3.' } },
      { location: 'columns.csv:5', values: { id: '4', tier: 'bronze' } },
    ]);
  });

  it('flags a quoted field followed by other characters but keeps a bare quote in an unquoted field', async () => {
    const name = file('stray.csv', 'id,item\n1,"7"x\n2,12" pizza\n3,"ok" \n4,ok\n');
    const rows = await read(name);
    const malformed = { __error: 'Malformed CSV line: a quoted field is followed by other characters before the next delimiter.' };
    expect(rows).toEqual([
      { location: 'stray.csv:2', values: malformed },
      { location: 'stray.csv:3', values: { id: '2', item: '12" pizza' } },
      { location: 'stray.csv:4', values: malformed },
      { location: 'stray.csv:5', values: { id: '4', item: 'ok' } },
    ]);
  });

  it('ends with a truncated __error row at the start of a quote that never closes', async () => {
    const name = file('unclosed.csv', 'id,note\n1,fine\n2,"never closed\n3,lost\n4,lost\n');
    const rows = await read(name);
    expect(rows).toEqual([
      { location: 'unclosed.csv:2', values: { id: '1', note: 'fine' } },
      {
        location: 'unclosed.csv:3',
        values: { __error: 'Malformed CSV: a quoted field opened here is never closed, so the rest of the file could not be read.', __truncated: true },
      },
    ]);
  });

  it('ends with a truncated __error row when a record exceeds the size limit', async () => {
    const name = file('huge.csv', `id,note\n1,ok\n2,"${'x'.repeat(5000)}"\n3,ok\n`);
    const rows = await collect(createCsvConnector({ type: 'csv', path: name }, { maxRecordChars: 1000 }), context(tmp.dir));
    expect(rows.map((r) => r.location)).toEqual(['huge.csv:2', 'huge.csv:3']);
    expect(rows[1]!.values).toMatchObject({ __truncated: true, __error: expect.stringContaining('larger than 1000 characters') });
  });

  it('never copies cell contents into error messages', async () => {
    const name = file('pii.csv', 'email,phone\n"jo@example.com"junk,+15551234\n');
    const [row] = await read(name);
    expect(JSON.stringify(row)).not.toContain('jo@example.com');
  });

  it.each<[string, string]>([
    [';', 'id;name\n1;"a;b"\n'],
    ['\t', 'id\tname\n1\t"a\tb"\n'],
    ['|', 'id|name\n1|"a|b"\n'],
  ])('uses the delimiter %j from the spec', async (delimiter, content) => {
    const name = file(`delim-${delimiter.charCodeAt(0)}.csv`, content);
    const rows = await read(name, delimiter);
    expect(rows).toEqual([{ location: `${name}:2`, values: { id: '1', name: `a${delimiter}b` } }]);
  });

  it('trims header names and keeps a column named __proto__ as an ordinary column', async () => {
    const name = file('header.csv', ' id , __proto__\n1,x\n');
    const [row] = await read(name);
    expect(Object.hasOwn(row!.values, '__proto__')).toBe(true);
    expect(row!.values.id).toBe('1');
    expect(Object.getPrototypeOf(row!.values)).toBe(Object.prototype);
  });

  it('reads nothing from an empty file or a header alone', async () => {
    expect(await read(file('empty.csv', ''))).toEqual([]);
    expect(await read(file('header-only.csv', 'id,name\r\n'))).toEqual([]);
  });

  it('refuses a header that names a column twice', async () => {
    const name = file('dup.csv', 'id,email,email\n1,a,b\n');
    await expect(read(name)).rejects.toMatchObject({ name: 'ConnectorError', code: 'format', message: expect.stringContaining('"email" more than once') });
  });

  it('reports a missing file with the spec path and the resolved path', async () => {
    const err = await read('data/nope.csv').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectorError);
    expect(err).toMatchObject({ code: 'not_found', connector: 'csv' });
    expect((err as Error).message).toContain('data/nope.csv does not exist');
    expect((err as Error).message).toContain(path.join(tmp.dir, 'data/nope.csv'));
  });

  it('is what createConnector returns for a csv spec', async () => {
    const name = file('via-index.csv', 'id\n7\n');
    const connector = createConnector({ type: 'csv', path: name });
    expect(connector.type).toBe('csv');
    expect(await collect(connector, context(tmp.dir))).toEqual([{ location: `${name}:2`, values: { id: '7' } }]);
  });

  it('stops with the abort reason when the signal fires', async () => {
    const name = file('abort.csv', 'id\n1\n2\n3\n');
    const controller = new AbortController();
    const seen: string[] = [];
    const err = await (async () => {
      for await (const row of createCsvConnector({ type: 'csv', path: name }).read(context(tmp.dir, { signal: controller.signal }))) {
        seen.push(String(row.values.id));
        controller.abort();
      }
    })().catch((e: unknown) => e);
    expect(seen).toEqual(['1']);
    expect(err).toMatchObject({ name: 'AbortError' });
    expect(openDescriptorsFor(path.join(tmp.dir, name)) ?? 0).toBe(0);
  });

  it('releases the file handle when the consumer stops early', async () => {
    const name = file('early.csv', `id\n${Array.from({ length: 5000 }, (_, i) => i).join('\n')}\n`);
    const abs = path.join(tmp.dir, name);
    const it1 = createCsvConnector({ type: 'csv', path: name }).read(context(tmp.dir))[Symbol.asyncIterator]();
    const first = await it1.next();
    expect(first.value).toEqual({ location: 'early.csv:2', values: { id: '0' } });
    const open = openDescriptorsFor(abs);
    if (open === null) return; // no /proc: nothing more to observe
    expect(open).toBe(1);
    await it1.return!(undefined);
    expect(openDescriptorsFor(abs)).toBe(0);

    // The same through `break` in a for-await loop.
    for await (const _row of createCsvConnector({ type: 'csv', path: name }).read(context(tmp.dir))) break;
    expect(openDescriptorsFor(abs)).toBe(0);
  });

  it('yields rows while the file is still being written (it streams)', async () => {
    const fifo = makeFifo(path.join(tmp.dir, 'pipe.csv'));
    if (!fifo) return;
    const rows = createCsvConnector({ type: 'csv', path: 'pipe.csv' }).read(context(tmp.dir))[Symbol.asyncIterator]();
    const firstRow = rows.next();
    const writer = createWriteStream(fifo);
    // csv-parse looks a few bytes past a line end before it emits a record, so the writer runs a line ahead.
    writer.write('id,tier\n1,gold\n2,silver\n');
    expect(await firstRow).toEqual({ done: false, value: { location: 'pipe.csv:2', values: { id: '1', tier: 'gold' } } });
    writer.end('3,bronze\n');
    await once(writer, 'close');
    expect((await rows.next()).value).toEqual({ location: 'pipe.csv:3', values: { id: '2', tier: 'silver' } });
    expect((await rows.next()).value).toEqual({ location: 'pipe.csv:4', values: { id: '3', tier: 'bronze' } });
    expect((await rows.next()).done).toBe(true);
  });

  it('streams a 200k-row file with bounded memory', async () => {
    const name = 'big.csv';
    const abs = path.join(tmp.dir, name);
    const out = createWriteStream(abs);
    out.write('id,email,updated_at\n');
    for (let i = 0; i < 200_000; i++) {
      if (!out.write(`${i},"user${i}@example.com",2026-01-01 00:00:00\n`)) await once(out, 'drain');
    }
    out.end();
    await once(out, 'close');

    const gc = forceGc();
    gc();
    const baseline = process.memoryUsage().heapUsed;
    let count = 0;
    let lastId = '';
    let peakGrowth = 0;
    for await (const row of createCsvConnector({ type: 'csv', path: name }).read(context(tmp.dir))) {
      count++;
      lastId = String(row.values.id);
      if (count % 50_000 === 0) {
        gc();
        peakGrowth = Math.max(peakGrowth, process.memoryUsage().heapUsed - baseline);
      }
    }
    expect(count).toBe(200_000);
    expect(lastId).toBe('199999');
    // The file is about 9 MB and its rows as objects take several times that; holding even a quarter of
    // them would grow the live heap far beyond this bound.
    expect(peakGrowth).toBeLessThan(8 * 1024 * 1024);
  });
});
