import { once } from 'node:events';
import { createWriteStream, writeFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SourceRow } from '../types.ts';
import { ConnectorError } from './errors.ts';
import { createConnector } from './index.ts';
import { LineSplitter, createNdjsonConnector } from './ndjson.ts';
import { collect, collectBatches, context, makeFifo, openDescriptorsFor, tempDir, openWhileReadingClosedAfterStop } from '../../../test/support/connector-files.ts';

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => {
  tmp = tempDir();
});
afterAll(() => tmp.cleanup());

function file(name: string, content: string | Buffer): string {
  writeFileSync(path.join(tmp.dir, name), content);
  return name;
}

const read = (name: string) => collect(createNdjsonConnector({ type: 'ndjson', path: name }), context(tmp.dir));

describe('ndjson connector', () => {
  it('reads one object per line, skips blank lines, and numbers lines like an editor', async () => {
    const name = file('returns.ndjson', '{"id":1,"reason":"damaged"}\n\n   \n{"id":2,"nested":{"a":[1,2]}}\n{"id":3}');
    expect(await read(name)).toEqual([
      { location: 'returns.ndjson:1', values: { id: 1, reason: 'damaged' } },
      { location: 'returns.ndjson:4', values: { id: 2, nested: { a: [1, 2] } } },
      { location: 'returns.ndjson:5', values: { id: 3 } },
    ]);
  });

  it('handles CRLF line ends and a byte-order mark', async () => {
    const name = file('crlf.ndjson', '\uFEFF{"id":"a"}\r\n\r\n{"id":"b"}\r\n');
    expect(await read(name)).toEqual([
      { location: 'crlf.ndjson:1', values: { id: 'a' } },
      { location: 'crlf.ndjson:3', values: { id: 'b' } },
    ]);
  });

  it('turns broken and non-object lines into __error rows and reads on', async () => {
    const name = file(
      'broken.ndjson',
      ['{"id":1}', '{"email":"jo@example.com",', '[1,2]', '42', '"text"', 'null', 'true', '{"id":2}'].join('\n'),
    );
    const rows = await read(name);
    expect(rows).toEqual([
      { location: 'broken.ndjson:1', values: { id: 1 } },
      { location: 'broken.ndjson:2', values: { __error: 'Malformed NDJSON line: not valid JSON.' } },
      { location: 'broken.ndjson:3', values: { __error: 'Malformed NDJSON line: expected a JSON object, got an array.' } },
      { location: 'broken.ndjson:4', values: { __error: 'Malformed NDJSON line: expected a JSON object, got a number.' } },
      { location: 'broken.ndjson:5', values: { __error: 'Malformed NDJSON line: expected a JSON object, got a string.' } },
      { location: 'broken.ndjson:6', values: { __error: 'Malformed NDJSON line: expected a JSON object, got null.' } },
      { location: 'broken.ndjson:7', values: { __error: 'Malformed NDJSON line: expected a JSON object, got a boolean.' } },
      { location: 'broken.ndjson:8', values: { id: 2 } },
    ]);
    // The broken line's content (an email address) never reaches the error text.
    expect(JSON.stringify(rows)).not.toContain('jo@example.com');
  });

  it('keeps a "__proto__" key as an ordinary own property', async () => {
    const [row] = await read(file('proto.ndjson', '{"__proto__":{"x":1},"id":1}\n'));
    expect(Object.hasOwn(row!.values, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(row!.values)).toBe(Object.prototype);
  });

  it('reads nothing from an empty file', async () => {
    expect(await read(file('empty.ndjson', ''))).toEqual([]);
  });

  it('reports a missing file as not_found', async () => {
    const err = await read('nope/returns.ndjson').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectorError);
    expect(err).toMatchObject({ code: 'not_found', connector: 'ndjson', message: expect.stringContaining('nope/returns.ndjson does not exist') });
  });

  it('is what createConnector returns for an ndjson spec', async () => {
    const name = file('index.ndjson', '{"id":1}\n');
    const connector = createConnector({ type: 'ndjson', path: name });
    expect(connector.type).toBe('ndjson');
    expect(await collect(connector, context(tmp.dir))).toEqual([{ location: `${name}:1`, values: { id: 1 } }]);
  });

  it('releases the file handle when the consumer stops early', async () => {
    const name = file('early.ndjson', Array.from({ length: 5000 }, (_, i) => JSON.stringify({ id: i })).join('\n'));
    const abs = path.join(tmp.dir, name);
    const rows = createNdjsonConnector({ type: 'ndjson', path: name }).read(context(tmp.dir))[Symbol.asyncIterator]();
    expect((await rows.next()).value).toEqual({ location: 'early.ndjson:1', values: { id: 0 } });
    const open = openDescriptorsFor(abs);
    if (open === null) return; // no /proc: nothing more to observe
    expect(open).toBe(1);
    await rows.return!(undefined);
    expect(openDescriptorsFor(abs)).toBe(0);

    let seen = 0;
    for await (const _row of createNdjsonConnector({ type: 'ndjson', path: name }).read(context(tmp.dir))) if (++seen === 10) break;
    expect(seen).toBe(10);
    expect(openDescriptorsFor(abs)).toBe(0);
  });

  it('stops with the abort reason when the signal fires, and closes the file', async () => {
    const name = file('abort.ndjson', '{"id":1}\n{"id":2}\n{"id":3}\n');
    const controller = new AbortController();
    const seen: unknown[] = [];
    const err = await (async () => {
      for await (const row of createNdjsonConnector({ type: 'ndjson', path: name }).read(context(tmp.dir, { signal: controller.signal }))) {
        seen.push(row.values.id);
        controller.abort();
      }
    })().catch((e: unknown) => e);
    expect(seen).toEqual([1]);
    expect(err).toMatchObject({ name: 'AbortError' });
    expect(openDescriptorsFor(path.join(tmp.dir, name)) ?? 0).toBe(0);
  });

  it('yields a line as soon as it is complete, while the file is still being written', async () => {
    const fifo = makeFifo(path.join(tmp.dir, 'pipe.ndjson'));
    if (!fifo) return;
    const rows = createNdjsonConnector({ type: 'ndjson', path: 'pipe.ndjson' }).read(context(tmp.dir))[Symbol.asyncIterator]();
    const first = rows.next();
    const writer = createWriteStream(fifo);
    writer.write('{"id":1}\n');
    expect(await first).toEqual({ done: false, value: { location: 'pipe.ndjson:1', values: { id: 1 } } });
    writer.end('{"id":2}\n');
    await once(writer, 'close');
    expect((await rows.next()).value).toEqual({ location: 'pipe.ndjson:2', values: { id: 2 } });
    expect((await rows.next()).done).toBe(true);
  });
});

describe('ndjson connector: readBatches', () => {
  it('gives the same rows as read, a read chunk at a time, across many chunk edges', async () => {
    // About 1.3 MB with CRLF line ends, blank and broken lines and multi-byte text: several 256 KiB reads,
    // each ending inside some line (and, somewhere, between a CR and its LF or inside a character).
    const lines: string[] = [];
    const expected: SourceRow[] = [];
    for (let i = 0; i < 20_000; i++) {
      const n = lines.length + 1;
      if (i % 97 === 0) {
        lines.push('');
        continue;
      }
      if (i % 89 === 0) {
        lines.push('{"broken":');
        expected.push({ location: `batches.ndjson:${n}`, values: { __error: 'Malformed NDJSON line: not valid JSON.' } });
        continue;
      }
      const values = { id: i, city: i % 3 === 0 ? 'Zürich 😀' : 'Łódź', note: 'x'.repeat(i % 40) };
      lines.push(JSON.stringify(values));
      expected.push({ location: `batches.ndjson:${n}`, values });
    }
    const name = file('batches.ndjson', `\uFEFF${lines.join('\r\n')}\r\n`);
    const connector = createNdjsonConnector({ type: 'ndjson', path: name });
    const batches = await collectBatches(connector, context(tmp.dir));
    expect(batches.length).toBeGreaterThan(3);
    expect(batches.every((b) => b.length > 0)).toBe(true);
    const flat = batches.flat();
    expect(flat).toEqual(expected);
    expect(await collect(connector, context(tmp.dir))).toEqual(flat);
  });

  it('closes the file when the batch consumer stops early', async () => {
    const name = file('batches-early.ndjson', Array.from({ length: 50_000 }, (_, i) => JSON.stringify({ id: i })).join('\n'));
    const seen = await openWhileReadingClosedAfterStop(createNdjsonConnector({ type: 'ndjson', path: name }), tmp.dir, path.join(tmp.dir, name));
    if (seen !== null) expect(seen).toEqual({ during: 1, after: 0 });
  });
});

describe('LineSplitter', () => {
  it('splits like readline (LF, CRLF or a lone CR) however the bytes are cut into chunks', () => {
    const units = ['a', '{', '"', ' ', '\n', '\r', '\r\n', 'é', '😀', '\uFEFF'];
    fc.assert(
      fc.property(
        fc.tuple(fc.boolean(), fc.string({ unit: fc.constantFrom(...units), maxLength: 40 })).chain(([bom, body]) => {
          const text = (bom ? '\uFEFF' : '') + body;
          const bytes = new TextEncoder().encode(text);
          return fc.array(fc.integer({ min: 0, max: bytes.length }), { maxLength: 10 }).map((cuts) => ({ text, bytes, cuts }));
        }),
        ({ text, bytes, cuts }) => {
          const got: [string, number][] = [];
          const splitter = new LineSplitter((line, n) => got.push([line, n]));
          let from = 0;
          for (const cut of [...new Set(cuts)].sort((a, b) => a - b)) {
            splitter.write(bytes.subarray(from, cut));
            from = cut;
          }
          splitter.write(bytes.subarray(from));
          splitter.end();
          // Only the BOM that opens the file is dropped; a later one is data.
          const expected = (text.startsWith('\uFEFF') ? text.slice(1) : text).split(/\r\n|\r|\n/);
          if (expected.at(-1) === '') expected.pop();
          expect(got).toEqual(expected.map((line, i) => [line, i + 1]));
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('ndjson encodings', () => {
  it('rejects a line that is not valid UTF-8 as invalid_encoding, reads the others, and fails when no line is UTF-8', async () => {
    const mixed = file('mixed.ndjson', Buffer.concat([Buffer.from('{"id":"a"}\n{"email":"jos'), Buffer.from([0xe9]), Buffer.from('@example.com"}\n{"id":"c"}\n')]));
    const rows = await collect(createNdjsonConnector({ type: 'ndjson', path: mixed }), context(tmp.dir));
    expect(rows.map((r) => [r.location, r.values.__code ?? r.values.id])).toEqual([
      ['mixed.ndjson:1', 'a'],
      ['mixed.ndjson:2', 'invalid_encoding'],
      ['mixed.ndjson:3', 'c'],
    ]);
    expect(JSON.stringify(rows)).not.toMatch(/\uFFFD|jos/);
    const latin1 = file('latin1.ndjson', Buffer.from('{"email":"josé@example.com"}\n', 'latin1'));
    await expect(collect(createNdjsonConnector({ type: 'ndjson', path: latin1 }), context(tmp.dir))).rejects.toMatchObject({
      code: 'format',
      message: expect.stringContaining('None of the 1 lines of latin1.ndjson is valid UTF-8'),
    });
    expect(await collect(createNdjsonConnector({ type: 'ndjson', path: latin1, encoding: 'latin1' }), context(tmp.dir))).toEqual([
      { location: 'latin1.ndjson:1', values: { email: 'josé@example.com' } },
    ]);
  });

  it('refuses a UTF-16 file without a byte-order mark at its first line', async () => {
    const name = file('utf16-no-mark.ndjson', Buffer.from('{"id":"a"}\n{"id":"b"}\n', 'utf16le'));
    await expect(collect(createNdjsonConnector({ type: 'ndjson', path: name }), context(tmp.dir))).rejects.toMatchObject({
      code: 'format',
      message: expect.stringContaining('Line 1 of utf16-no-mark.ndjson holds NUL characters'),
    });
  });

  it('reads UTF-16BE by its byte-order mark', async () => {
    const body = Buffer.from('{"id":"é"}\n{"id":"😀"}\n', 'utf16le').swap16();
    const name = file('be.ndjson', Buffer.concat([Buffer.from([0xfe, 0xff]), body]));
    expect((await collect(createNdjsonConnector({ type: 'ndjson', path: name }), context(tmp.dir))).map((r) => r.values.id)).toEqual(['é', '😀']);
  });
});

describe('ndjson line length limit', () => {
  it('ends the read at a line longer than the limit, located where it starts, after delivering the rows before it', async () => {
    const huge = `[${'{"id":1},'.repeat(50_000)}{"id":2}]`;
    const name = file('array.ndjson', `{"id":"a"}\n{"id":"b"}\n${huge}\n{"id":"c"}\n`);
    const rows: SourceRow[] = [];
    let error: unknown;
    try {
      for await (const r of createNdjsonConnector({ type: 'ndjson', path: name }, { maxLineChars: 100_000 }).read(context(tmp.dir))) rows.push(r);
    } catch (e) {
      error = e;
    }
    expect(rows.map((r) => r.values.id)).toEqual(['a', 'b']);
    expect(error).toBeInstanceOf(ConnectorError);
    expect(error).toMatchObject({ code: 'truncated' });
    expect((error as Error).message).toBe(
      'Reading array.ndjson stopped early: line 3 is longer than the limit of 100000 characters (a JSON array or a minified dump is not NDJSON), so nothing from line 3 on was read.',
    );
  });

  it('stops a splitter fed a line that never ends, whatever the chunking', () => {
    const seen: number[] = [];
    const s = new LineSplitter((_line, n) => void seen.push(n), 10);
    s.write('ok\nstill ok\n');
    for (let i = 0; i < 5; i++) s.write('xxxxx');
    s.write('\nafter\n');
    s.end();
    expect(seen).toEqual([1, 2]);
    expect(s.overlong).toBe(3);
  });

  it('accepts lines at the limit', () => {
    const seen: string[] = [];
    const s = new LineSplitter((line) => void seen.push(line), 5);
    s.write('12345\n123');
    s.write('45');
    s.end();
    expect(seen).toEqual(['12345', '12345']);
    expect(s.overlong).toBeUndefined();
  });
});
