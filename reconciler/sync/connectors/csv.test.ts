import { once } from 'node:events';
import { createWriteStream, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse as csvParseOracle } from 'csv-parse/sync';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SourceRow } from '../types.ts';
import { decodeUtf8Strict } from './chunk-text.ts';
import { CsvParser, createCsvConnector, SegmentCutter, type CsvSegment, type CsvStop } from './csv.ts';
import { ConnectorError } from './errors.ts';
import { createConnector } from './index.ts';
import { collect, collectBatches, context, forceGc, makeFifo, openDescriptorsFor, tempDir, openWhileReadingClosedAfterStop } from '../../../test/support/connector-files.ts';

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

/** The rows delivered before the read failed, and the failure. */
async function readUntilError(name: string, maxRecordChars?: number): Promise<{ rows: SourceRow[]; error: ConnectorError | undefined }> {
  const rows: SourceRow[] = [];
  try {
    for await (const r of createCsvConnector({ type: 'csv', path: name }, maxRecordChars ? { maxRecordChars } : {}).read(context(tmp.dir))) rows.push(r);
  } catch (e) {
    if (!(e instanceof ConnectorError)) throw e;
    return { rows, error: e };
  }
  return { rows, error: undefined };
}

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

  it('fails the read at a quote that never closes, naming the line of the quote and the lines left unread, after the rows before it', async () => {
    const name = file('unclosed.csv', 'id,note\n1,fine\n2,"never closed\n3,lost\n4,lost\n');
    const { rows, error } = await readUntilError(name);
    expect(rows).toEqual([{ location: 'unclosed.csv:2', values: { id: '1', note: 'fine' } }]);
    expect(error).toBeInstanceOf(ConnectorError);
    expect(error).toMatchObject({ code: 'truncated', connector: 'csv' });
    expect(error?.message).toBe('Reading unclosed.csv stopped early: a quote opened on line 3 is never closed, so lines 3 to 5 were not read.');
  });

  it('names the line of the quote that stays open, not the first quote of the record', async () => {
    const { error } = await readUntilError(file('second-quote.csv', 'id,a,b\n1,"two\nlines","open\n2,x,y\n'));
    expect(error?.message).toBe('Reading second-quote.csv stopped early: a quote opened on line 3 is never closed, so lines 2 to 4 were not read.');
  });

  it('tells a line over the limit apart from a quote that is not closed within it', async () => {
    const long = await readUntilError(file('long-line.csv', `id,note\n1,ok\n2,${'x'.repeat(5000)}\n3,ok\n`), 1000);
    expect(long.rows.map((r) => r.location)).toEqual(['long-line.csv:2']);
    expect(long.error?.message).toBe('Reading long-line.csv stopped early: line 3 is longer than the limit of 1000 characters, so nothing from line 3 on was read.');
    // The same length with a quote opened at the start of the line: still the line that is too long.
    const quotedLong = await readUntilError(file('quoted-long.csv', `id,note\n1,ok\n2,"${'x'.repeat(5000)}"\n3,ok\n`), 1000);
    expect(quotedLong.error?.message).toMatch(/line 3 is longer than the limit of 1000 characters/);
    const open = await readUntilError(file('open-quote.csv', `id,note\n1,ok\n2,"short\n${'3,lost\n'.repeat(500)}`), 1000);
    expect(open.rows.map((r) => r.location)).toEqual(['open-quote.csv:2']);
    expect(open.error?.message).toBe(
      'Reading open-quote.csv stopped early: a quoted value opened on line 3 runs over several lines and is not closed within the limit of 1000 characters, so nothing from line 3 on was read.',
    );
    for (const e of [long.error, quotedLong.error, open.error]) expect(e?.message).not.toMatch(/xxx|lost/);
  });

  it('fails before delivering any row when the header lacks columns the spec maps, naming them and the header', async () => {
    const name = file('renamed.csv', 'customer_id,tel,store_name\n1,+15551234,Berlin\n');
    const columns = [
      { column: 'customer_id', key: 'identity.column' },
      { column: 'phone', key: 'fields.phone' },
      { column: 'store', key: 'fields.preferred_store' },
    ];
    const delivered: SourceRow[] = [];
    const err = await (async () => {
      for await (const r of createCsvConnector({ type: 'csv', path: name }).read(context(tmp.dir, { columns }))) delivered.push(r);
    })().catch((e: unknown) => e);
    expect(delivered).toEqual([]);
    expect(err).toBeInstanceOf(ConnectorError);
    expect(err).toMatchObject({
      code: 'format',
      message:
        'The header of renamed.csv has no columns "phone" (fields.phone), "store" (fields.preferred_store), which the source maps; nothing was sent. Its columns are: customer_id, tel, store_name.',
    });
    // With every mapped column present, the same file reads.
    expect(await collect(createCsvConnector({ type: 'csv', path: name }), context(tmp.dir, { columns: columns.slice(0, 1) }))).toHaveLength(1);
  });

  it('rejects a line that is not valid UTF-8 as invalid_encoding with its line, and reads the others', async () => {
    const name = file('latin1-row.csv', Buffer.concat([Buffer.from('id,email\n1,ana@example.com\n2,jos'), Buffer.from([0xe9]), Buffer.from('@example.com\n3,bo@example.com\n')]));
    const rows = await read(name);
    expect(rows).toEqual([
      { location: 'latin1-row.csv:2', values: { id: '1', email: 'ana@example.com' } },
      {
        location: 'latin1-row.csv:3',
        values: {
          __error: "Line 3 is not valid UTF-8, so it was not read; declare the file's encoding in the connector (`encoding: latin1`, `utf-16le`, …) if it is not UTF-8.",
          __code: 'invalid_encoding',
        },
      },
      { location: 'latin1-row.csv:4', values: { id: '3', email: 'bo@example.com' } },
    ]);
    expect(JSON.stringify(rows)).not.toContain('\uFFFD');
  });

  it('reads the same file with encoding: latin1 declared, and a UTF-16 file by its byte-order mark', async () => {
    const latin1 = file('latin1.csv', Buffer.from('id,email\n2,josé@example.com\n', 'latin1'));
    expect(await collect(createCsvConnector({ type: 'csv', path: latin1, encoding: 'latin1' }), context(tmp.dir))).toEqual([
      { location: 'latin1.csv:2', values: { id: '2', email: 'josé@example.com' } },
    ]);
    const utf16 = file('utf16.csv', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('id,email\r\n2,josé@example.com\r\n', 'utf16le')]));
    expect(await read(utf16)).toEqual([{ location: 'utf16.csv:2', values: { id: '2', email: 'josé@example.com' } }]);
  });

  it('fails the read when the header, or every line, is not valid UTF-8: the file is not UTF-8 at all', async () => {
    const header = file('bad-header.csv', Buffer.concat([Buffer.from('id,'), Buffer.from([0xe9]), Buffer.from('mail\n1,x\n')]));
    await expect(read(header)).rejects.toMatchObject({ code: 'format', message: expect.stringContaining('The header of bad-header.csv (line 1) is not valid UTF-8') });
    const all = file('all-bad.csv', Buffer.concat([Buffer.from('id,name\n1,'), Buffer.from([0xe9]), Buffer.from('\n2,'), Buffer.from([0xe8]), Buffer.from('\n')]));
    await expect(read(all)).rejects.toMatchObject({ code: 'format', message: expect.stringContaining('None of the 2 lines of all-bad.csv is valid UTF-8') });
  });

  it('refuses a UTF-16 file without a byte-order mark instead of reading NUL-riddled columns, and reads it once declared', async () => {
    const name = file('utf16-no-mark.csv', Buffer.from('id,email\n1,a@example.com\n', 'utf16le'));
    await expect(read(name)).rejects.toMatchObject({ code: 'format', message: expect.stringContaining('looks like UTF-16 without a byte-order mark') });
    expect(await collect(createCsvConnector({ type: 'csv', path: name, encoding: 'utf-16le' }), context(tmp.dir))).toEqual([
      { location: 'utf16-no-mark.csv:2', values: { id: '1', email: 'a@example.com' } },
    ]);
  });

  it('fails the read when bytes cannot be decoded in the declared encoding, naming where', async () => {
    const odd = file('odd.csv', Buffer.concat([Buffer.from('id\n1\n', 'utf16le'), Buffer.from([0x32])]));
    await expect(collect(createCsvConnector({ type: 'csv', path: odd, encoding: 'utf-16le' }), context(tmp.dir))).rejects.toMatchObject({
      code: 'format',
      message: expect.stringContaining('odd.csv is not valid utf-16le'),
    });
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
    // A record is emitted as soon as its line end arrives: nothing past it is needed.
    writer.write('id,tier\n1,gold\n');
    expect(await firstRow).toEqual({ done: false, value: { location: 'pipe.csv:2', values: { id: '1', tier: 'gold' } } });
    writer.end('2,silver\n3,bronze\n');
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

describe('csv connector: readBatches', () => {
  /** Rows with quoted multi-line fields, doubled quotes and multi-byte text, so chunk edges fall everywhere. */
  function bigFile(name: string, rows: number): { name: string; expected: SourceRow[]; nextLine: number } {
    const lines = ['id,note,city\r\n'];
    const expected: SourceRow[] = [];
    let line = 2;
    for (let i = 0; i < rows; i++) {
      const note = i % 7 === 0 ? `two\r\nlines ${i}` : i % 5 === 0 ? `say "héllo" ${i}` : `plain ${i}`;
      const city = i % 3 === 0 ? 'Zürich 😀' : 'Łódź';
      lines.push(`${i},"${note.replaceAll('"', '""')}",${city}\r\n`);
      expected.push({ location: `${name}:${line}`, values: { id: String(i), note, city } });
      line += i % 7 === 0 ? 2 : 1;
    }
    file(name, lines.join(''));
    return { name, expected, nextLine: line };
  }

  it('gives the same rows as read, a read chunk at a time, across many chunk edges', async () => {
    // About 1.1 MB: several 256 KiB reads, each ending inside some record.
    const { name, expected } = bigFile('batches.csv', 30_000);
    const connector = createCsvConnector({ type: 'csv', path: name });
    const batches = await collectBatches(connector, context(tmp.dir));
    expect(batches.length).toBeGreaterThan(3);
    expect(batches.every((b) => b.length > 0)).toBe(true);
    const flat = batches.flat();
    expect(flat).toEqual(expected);
    expect(await collect(connector, context(tmp.dir))).toEqual(flat);
  });

  it('is what the readBatches helper uses, and still delivers the rows before a truncation in a later chunk', async () => {
    const { name, expected, nextLine } = bigFile('late-unclosed.csv', 20_000);
    writeFileSync(path.join(tmp.dir, name), '99999,"never closed\r\n1,x,y\r\n', { flag: 'a' });
    const batches: SourceRow[][] = [];
    const failure = await (async () => {
      for await (const b of createCsvConnector({ type: 'csv', path: name }).readBatches!(context(tmp.dir))) batches.push(b);
    })().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(batches.flat()).toEqual(expected);
    expect(failure).toMatchObject({ code: 'truncated', message: expect.stringContaining(`a quote opened on line ${nextLine} is never closed`) });
  });

  it('closes the file when the batch consumer stops early', async () => {
    const { name } = bigFile('batches-early.csv', 20_000);
    const seen = await openWhileReadingClosedAfterStop(createCsvConnector({ type: 'csv', path: name }), tmp.dir, path.join(tmp.dir, name));
    if (seen !== null) expect(seen).toEqual({ during: 1, after: 0 });
  });
});

describe('csv connector: line ends and delimiters', () => {
  it('reads CR-only line ends, and a file mixing CR, LF and CRLF line by line', async () => {
    const name = file('mixed.csv', 'id,note\r1,"a\rb"\r\n2,x\n\r3,y\r\n');
    expect(await read(name)).toEqual([
      { location: 'mixed.csv:2', values: { id: '1', note: 'a\rb' } },
      { location: 'mixed.csv:4', values: { id: '2', note: 'x' } },
      { location: 'mixed.csv:6', values: { id: '3', note: 'y' } },
    ]);
  });

  it('refuses a delimiter that contains a quote or a line end', () => {
    expect(() => createCsvConnector({ type: 'csv', path: 'x.csv', delimiter: '"' })).toThrow(ConnectorError);
    expect(() => createCsvConnector({ type: 'csv', path: 'x.csv', delimiter: '\n' })).toThrow(/cannot be used/);
  });
});

// ---------------------------------------------------------------------------------------------------------
// The parser alone (pure): fed bytes in arbitrary chunks.

interface Parsed {
  records: { fields: string[]; line: number; bad: boolean }[];
  stop: CsvStop | undefined;
}

function parseChunks(bytes: Uint8Array, cuts: number[], delimiter: string, maxRecordChars = 8 * 1024 * 1024): Parsed {
  const records: Parsed['records'] = [];
  const parser = new CsvParser(delimiter, maxRecordChars, (fields, line, bad) => records.push({ fields, line, bad }));
  let from = 0;
  for (const cut of [...new Set(cuts)].sort((a, b) => a - b)) {
    parser.write(bytes.subarray(from, cut));
    from = cut;
  }
  parser.write(bytes.subarray(from));
  return { records, stop: parser.end() };
}

/** Byte offsets inside `bytes` at which to cut it, often splitting a multi-byte character. */
const cutsIn = (length: number) => fc.array(fc.integer({ min: 0, max: length }), { maxLength: 12 });

const FIELD_UNITS = ['a', 'b', 'Z', ' ', '"', ',', ';', '|', '\t', '\r', '\n', 'é', '😀', '¦', '1'];

/** Line ends before `offset`: CR, LF and CRLF each count once. */
function linesBefore(text: string, offset: number): number {
  let n = 0;
  for (let i = 0; i < offset; i++) {
    const c = text[i];
    if (c === '\n' || (c === '\r' && text[i + 1] !== '\n')) n++;
  }
  return n;
}

describe('CsvParser', () => {
  it('yields exactly the records csv-parse yields for well-formed CSV, with the line each record starts on', () => {
    const csv = fc.record({
      delimiter: fc.constantFrom(',', ';', '\t', '|', '||', '¦'),
      eol: fc.constantFrom('\n', '\r\n', '\r'),
      bom: fc.boolean(),
      finalEol: fc.boolean(),
      records: fc.array(
        fc.record({
          blankBefore: fc.nat({ max: 2 }),
          fields: fc.array(fc.record({ value: fc.string({ unit: fc.constantFrom(...FIELD_UNITS), maxLength: 8 }), quote: fc.boolean() }), {
            minLength: 1,
            maxLength: 5,
          }),
        }),
        { minLength: 1, maxLength: 25 },
      ),
    });
    fc.assert(
      fc.property(
        csv.chain((c) => {
          let text = c.bom ? '\uFEFF' : '';
          const starts: number[] = [];
          c.records.forEach((r, i) => {
            text += c.eol.repeat(r.blankBefore);
            starts.push(text.length);
            const single = r.fields.length === 1;
            text += r.fields
              .map(({ value, quote }) => {
                // Quoting is optional unless the field holds a delimiter character, a line end or a leading
                // quote, or is a record's only field and empty (an empty line is skipped, not a record). A
                // quote further inside an unquoted field is the "bare quote" both parsers keep literally.
                const must = [...c.delimiter, '\r', '\n'].some((ch) => value.includes(ch)) || value.startsWith('"') || (single && value === '');
                return must || quote ? `"${value.replaceAll('"', '""')}"` : value;
              })
              .join(c.delimiter);
            if (i < c.records.length - 1 || c.finalEol) text += c.eol;
          });
          const bytes = new TextEncoder().encode(text);
          return fc.record({ cuts: cutsIn(bytes.length) }).map(({ cuts }) => ({ c, text, bytes, starts, cuts }));
        }),
        ({ c, text, bytes, starts, cuts }) => {
          const oracle = csvParseOracle(text, {
            delimiter: c.delimiter,
            record_delimiter: c.eol,
            bom: true,
            relax_column_count: true,
            relax_quotes: true,
            skip_empty_lines: true,
          }) as string[][];
          const got = parseChunks(bytes, cuts, c.delimiter);
          expect(got.stop).toBeUndefined();
          expect(got.records.map((r) => r.fields)).toEqual(oracle);
          expect(got.records.map((r) => r.fields)).toEqual(c.records.map((r) => r.fields.map((f) => f.value)));
          // The BOM is not a line: line numbers count from the first character after it.
          expect(got.records.map((r) => r.line)).toEqual(starts.map((s) => 1 + linesBefore(text, s)));
          expect(got.records.every((r) => !r.bad)).toBe(true);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('gives the same result however arbitrary (also malformed) input is cut into chunks', () => {
    const units = ['a', '"', '""', ',', '\r', '\n', '\r\n', 'é', '😀', ' '];
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(...units), maxLength: 60 }).chain((text) => {
          const bytes = new TextEncoder().encode(text);
          return fc.record({ cuts: cutsIn(bytes.length), max: fc.integer({ min: 1, max: 40 }) }).map((r) => ({ bytes, ...r }));
        }),
        ({ bytes, cuts, max }) => {
          const whole = parseChunks(bytes, [], ',', max);
          expect(parseChunks(bytes, cuts, ',', max)).toEqual(whole);
          // Lines only move forward, and a stop is located at or after the last record.
          const lines = whole.records.map((r) => r.line);
          expect(lines).toEqual([...lines].sort((a, b) => a - b));
          if (whole.stop && lines.length > 0) expect(whole.stop.line).toBeGreaterThan(lines.at(-1)!);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('in segment mode, hands on text that parses alone into exactly the records of the sequential parse, however it is cut (property)', () => {
    // What the parallel read relies on: segments are cut by this same parser at record boundaries, so a
    // quoted line end, a CRLF split between reads or a stray quote never lands a record in two segments.
    const units = ['a', '"', '""', ',', '\r', '\n', '\r\n', 'é', '😀', ' ', '\uFEFF'];
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(...units), maxLength: 80 }).chain((text) => {
          const bytes = new TextEncoder().encode(text);
          return fc.record({ cuts: cutsIn(bytes.length), max: fc.integer({ min: 1, max: 40 }) }).map((r) => ({ bytes, ...r }));
        }),
        ({ bytes, cuts, max }) => {
          const whole = parseChunks(bytes, [], ',', max);
          const records: Parsed['records'] = [];
          const segments: { text: string; line: number }[] = [];
          const parser = new CsvParser(',', max, (fields, line, bad) => records.push({ fields, line, bad }));
          parser.segments(1, (text, line) => segments.push({ text, line }));
          let from = 0;
          for (const cut of [...new Set(cuts)].sort((a, b) => a - b)) {
            parser.write(bytes.subarray(from, cut));
            from = cut;
          }
          parser.write(bytes.subarray(from));
          const stop = parser.end();
          for (const segment of segments) {
            const alone = new CsvParser(',', max, (fields, line, bad) => records.push({ fields, line, bad }));
            alone.parseSegment(segment.text, segment.line);
            expect(alone.stopped).toBeUndefined();
          }
          expect({ records, stop }).toEqual(whole);
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('cut by SegmentCutter (bytes where a read holds no quote or CR, the parser elsewhere), gives the records, lines and stop of the sequential parse (property)', () => {
    // Mostly plain lines, so many reads take the byte path; now and then a line with a quote (balanced
    // or not), a CR, a BOM, an invalid byte or a line over the limit in bytes (but maybe not in
    // characters), which sends its read back to the parser; characters split between reads.
    const plain = fc.string({ unit: fc.constantFrom('a', 'b', ',', 'é', '😀', ' '), maxLength: 12 });
    const odd = fc.string({ unit: fc.constantFrom('a', ',', '"', '""', '\r\n', '\r', '\n', '\uFEFF', '\u0080', 'é'), maxLength: 8 });
    const line = fc.oneof({ weight: 8, arbitrary: plain }, { weight: 1, arbitrary: odd });
    let viaBytes = 0;
    fc.assert(
      fc.property(
        fc.tuple(fc.array(line, { maxLength: 40 }), fc.boolean(), fc.boolean()).chain(([lines, invalid, lastEnd]) => {
          const text = lines.join('\n') + (lastEnd ? '\n' : '');
          const encoded = new TextEncoder().encode(text);
          // Sometimes a byte that is not UTF-8 at all (latin1's é), which the worker must escape.
          const bytes = invalid && encoded.length > 4 ? Uint8Array.from(encoded, (b, i) => (i === encoded.length >> 1 ? 0xe9 : b)) : encoded;
          return fc.record({ cuts: cutsIn(bytes.length), max: fc.integer({ min: 1, max: 60 }) }).map((r) => ({ bytes, ...r }));
        }),
        ({ bytes, cuts, max }) => {
          const whole = parseChunks(bytes, [], ',', max);
          const records: Parsed['records'] = [];
          const segments: CsvSegment[] = [];
          const parser = new CsvParser(',', max, (fields, line, bad) => records.push({ fields, line, bad }));
          parser.segments(1, (text, line) => segments.push({ text, line, mayHoldInvalid: parser.invalidSeen }));
          const cutter = new SegmentCutter(parser, max, (segment) => segments.push(segment));
          let from = 0;
          for (const cut of [...new Set(cuts)].sort((a, b) => a - b)) {
            // A reused read buffer, as the file read hands over: the cutter must copy what it keeps.
            const read = Buffer.from(bytes.subarray(from, cut));
            cutter.write(read);
            read.fill(0x78);
            from = cut;
          }
          cutter.write(bytes.subarray(from));
          const stop = cutter.end();
          for (const segment of segments) {
            const alone = new CsvParser(',', max, (fields, line, bad) => records.push({ fields, line, bad }));
            if (segment.bytes) viaBytes++;
            alone.parseSegment(segment.text ?? decodeUtf8Strict(segment.bytes!).text, segment.line);
            expect(alone.stopped).toBeUndefined();
          }
          expect({ records, stop }).toEqual(whole);
        },
      ),
      { numRuns: 3000 },
    );
    // The byte path was taken, not only the parser's (it is what the property is about).
    expect(viaBytes).toBeGreaterThan(1000);
  });

  it('SegmentCutter hands a plain file to the workers as bytes, not text', () => {
    const lines = ['id,name', ...Array.from({ length: 200 }, (_, i) => `${i},person ${i}`)];
    const bytes = new TextEncoder().encode(`${lines.join('\n')}\n`);
    const segments: CsvSegment[] = [];
    const parser = new CsvParser(',', 1000, () => undefined);
    parser.segments(1, (text, line) => segments.push({ text, line, mayHoldInvalid: false }));
    const cutter = new SegmentCutter(parser, 1000, (segment) => segments.push(segment));
    for (let i = 0; i < bytes.length; i += 256) cutter.write(bytes.subarray(i, i + 256));
    expect(cutter.end()).toBeUndefined();
    // The first read (the header, and the record it ends in) and each record a read ends in are the
    // parser's; everything else went out as bytes.
    const byteCount = segments.filter((s) => s.bytes).reduce((n, s) => n + s.bytes!.length, 0);
    expect(byteCount).toBeGreaterThan(bytes.length * 0.8);
    expect(segments.map((s) => s.line)).toEqual([...segments.map((s) => s.line)].sort((a, b) => a - b));
  });

  it('gives up on an unfinished record as soon as it grows past the limit, without waiting for the end', () => {
    const records: string[][] = [];
    const parser = new CsvParser(',', 1000, (fields) => records.push(fields));
    parser.write('id,note\n1,ok\n2,"opened');
    expect(parser.stopped).toBeUndefined();
    parser.write('x'.repeat(600));
    expect(parser.stopped).toBeUndefined();
    parser.write('x'.repeat(600));
    expect(parser.stopped).toEqual({ reason: 'line_too_long', line: 3 });
    // Input after the stop is not looked at (nor kept).
    parser.write('"\n3,late\n');
    expect(parser.end()).toEqual({ reason: 'line_too_long', line: 3 });
    expect(records).toEqual([
      ['id', 'note'],
      ['1', 'ok'],
    ]);
  });

  it('keeps a CRLF split between chunks as one line end, inside and outside quotes', () => {
    const got: [string[], number][] = [];
    const parser = new CsvParser(',', 100, (fields, line) => got.push([fields, line]));
    for (const chunk of ['a,b\r', '\n"x\r', '\ny",1\r', '\n', '\r', '\nlast,2']) parser.write(chunk);
    expect(parser.end()).toBeUndefined();
    expect(got).toEqual([
      [['a', 'b'], 1],
      [['x\r\ny', '1'], 2],
      [['last', '2'], 5],
    ]);
  });

  it('waits for the rest of a multi-character delimiter after a closing quote', () => {
    const got: string[][] = [];
    const parser = new CsvParser('||', 100, (fields) => got.push(fields));
    parser.write('"a"|');
    parser.write('|b\n');
    expect(parser.end()).toBeUndefined();
    expect(got).toEqual([['a', 'b']]);
  });
});
