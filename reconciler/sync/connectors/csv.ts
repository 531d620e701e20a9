/**
 * CSV files, streamed through csv-parse: headers from the first line, the spec's delimiter (default `,`),
 * RFC 4180 quoting (`""` inside quotes), CRLF or LF line ends, a UTF-8 byte-order mark stripped. Values
 * stay strings; the normaliser types them.
 *
 * Bad lines do not stop the read; they become rows carrying `__error` (see rows.ts):
 * - a line with more or fewer columns than the header;
 * - a quoted field followed by other characters before the delimiter (`"7"x`). A bare quote inside an
 *   unquoted field (`12" pizza`) is common in exports and kept literally.
 * One problem cannot be confined to a line: a quote that is opened and never closed makes the rest of the
 * file one field. That ends the read with a last `__error` row marked `__truncated`, located at the line
 * where the unclosed record starts. The same happens for a record larger than `maxRecordChars`, which
 * also keeps memory bounded when a stray quote would otherwise buffer the whole file.
 *
 * Locations are `path:line` with the 1-based line where the record starts (the header is line 1). They are
 * counted here from byte offsets, not taken from csv-parse: its line counter counts a CRLF inside a
 * quoted field twice.
 */
import { Transform, pipeline, type TransformCallback } from 'node:stream';
import { parse, CsvError } from 'csv-parse';
import type { SourceSpec } from '../../spec/schema/index.ts';
import type { Connector, ConnectorContext, SourceRow } from '../types.ts';
import { ConnectorError } from './errors.ts';
import { closeStream, openSourceFile } from './files.ts';
import { errorRow } from './rows.ts';

type CsvSpec = Extract<SourceSpec['connector'], { type: 'csv' }>;

export interface CsvOptions {
  /** Largest record accepted, in characters (default 8 MiB); a larger one ends the read as truncated. */
  maxRecordChars?: number;
}

const CR = 0x0d;
const LF = 0x0a;
const QUOTE = 0x22;
const DEFAULT_MAX_RECORD = 8 * 1024 * 1024;

type FieldState = 'start' | 'unquoted' | 'quoted' | 'quoted_quote';

/**
 * Passes bytes through unchanged and remembers them until the consumer has taken the record they belong
 * to, so each record's start line and quoting can be checked. Memory is bounded by the pipeline's buffers:
 * chunks are dropped as soon as the records covering them are consumed.
 */
class RecordScanner extends Transform {
  private chunks: Buffer[] = [];
  /** Stream offset of chunks[0][0]. */
  private chunksStart = 0;
  /** Offset up to which bytes have been scanned. */
  private pos = 0;
  /** Line number at `pos`. */
  private line = 1;
  private prev = -1;
  /** Quote checks need a one-byte ASCII delimiter; any other delimiter only gets line counting. */
  private readonly delimiter: number | undefined;

  constructor(delimiter: string) {
    super();
    const bytes = Buffer.from(delimiter, 'utf8');
    this.delimiter = bytes.length === 1 ? bytes[0] : undefined;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.chunks.push(chunk);
    callback(null, chunk);
  }

  private countLine(b: number): void {
    if (b === CR || (b === LF && this.prev !== CR)) this.line++;
    this.prev = b;
  }

  /**
   * Visits the bytes from `pos` up to `end` (exclusive), advancing `pos`, until `visit` returns false.
   * Chunks before `pos` are already released, so the walk starts in chunks[0].
   */
  private walk(end: number, visit: (b: number) => boolean): void {
    let base = this.chunksStart;
    for (const c of this.chunks) {
      if (this.pos >= end) return;
      const stop = Math.min(c.length, end - base);
      for (let i = this.pos - base; i < stop; i++) {
        if (!visit(c[i]!)) return;
        this.pos++;
      }
      base += c.length;
    }
  }

  private bufferedEnd(): number {
    let end = this.chunksStart;
    for (const c of this.chunks) end += c.length;
    return end;
  }

  /** Skips the byte-order mark and blank lines before the next record. */
  private skipToContent(end: number): void {
    if (this.pos === 0 && end >= 3) {
      const first = this.chunks[0];
      if (first && first.length >= 3 && first[0] === 0xef && first[1] === 0xbb && first[2] === 0xbf) this.pos = 3;
    }
    this.walk(end, (b) => {
      if (b !== CR && b !== LF) return false;
      this.countLine(b);
      return true;
    });
  }

  /**
   * Consumes the record that ends at stream offset `end` (csv-parse's `info.bytes`, which includes the
   * record delimiter). Returns the line the record starts on and whether its quoting is malformed.
   */
  consumeRecord(end: number): { line: number; badQuotes: boolean } {
    this.skipToContent(end);
    const line = this.line;
    let state: FieldState = 'start';
    let badQuotes = false;
    const delim = this.delimiter;
    this.walk(end, (b) => {
      if (delim !== undefined) {
        switch (state) {
          case 'start':
            state = b === QUOTE ? 'quoted' : b === delim || b === CR || b === LF ? 'start' : 'unquoted';
            break;
          case 'unquoted':
            if (b === delim) state = 'start';
            break;
          case 'quoted':
            if (b === QUOTE) state = 'quoted_quote';
            break;
          case 'quoted_quote':
            // A quote inside quotes is either the first of a doubled pair or the closing quote, which
            // must be followed by the delimiter or the end of the record.
            if (b === QUOTE) state = 'quoted';
            else if (b === delim || b === CR || b === LF) state = 'start';
            else {
              badQuotes = true;
              state = 'unquoted';
            }
            break;
        }
      }
      this.countLine(b);
      return true;
    });
    this.release();
    return { line, badQuotes };
  }

  /** The line where the next (unfinished) record starts. */
  nextRecordLine(): number {
    this.skipToContent(this.bufferedEnd());
    return this.line;
  }

  private release(): void {
    while (this.chunks.length > 0 && this.chunksStart + this.chunks[0]!.length <= this.pos) {
      this.chunksStart += this.chunks.shift()!.length;
    }
  }
}

/** Streams a CSV file as rows; see the module comment for the handling of bad lines. */
export function createCsvConnector(spec: CsvSpec, options: CsvOptions = {}): Connector {
  const delimiter = spec.delimiter ?? ',';
  const maxRecord = options.maxRecordChars ?? DEFAULT_MAX_RECORD;
  return {
    type: 'csv',
    read: (ctx: ConnectorContext) => readCsv(spec.path, delimiter, maxRecord, ctx),
  };
}

async function* readCsv(specPath: string, delimiter: string, maxRecord: number, ctx: ConnectorContext): AsyncGenerator<SourceRow> {
  ctx.signal?.throwIfAborted();
  const handle = await openSourceFile('csv', specPath, ctx.cwd);
  const input = handle.createReadStream();
  const scanner = new RecordScanner(delimiter);
  const parser = parse({
    delimiter,
    bom: true,
    relax_column_count: true,
    relax_quotes: true,
    skip_empty_lines: true,
    info: true,
    max_record_size: maxRecord,
    // Errors that survive the relax options (a quote never closed, an oversized record) leave the parser
    // unable to go on. As skips they end the stream normally, so the records parsed before them are still
    // delivered; thrown, they would discard whatever was buffered.
    skip_records_with_error: true,
  });
  let stop: { code: string; records: number } | undefined;
  parser.on('skip', (err: CsvError & { records?: number }) => {
    stop ??= { code: err.code, records: err.records ?? 0 };
  });
  // pipeline() forwards a read error from the file to the parser, which then rejects the loop below.
  pipeline(input, scanner, parser, () => {});
  let header: string[] | undefined;
  try {
    for await (const item of parser as AsyncIterable<{ record: string[]; info: { bytes: number; records: number } }>) {
      ctx.signal?.throwIfAborted();
      // Records parsed after the failure point would be mislocated fragments: the read ends there.
      if (stop && item.info.records > stop.records) break;
      const { line, badQuotes } = scanner.consumeRecord(item.info.bytes);
      const location = `${specPath}:${line}`;
      if (header === undefined) {
        header = readHeader(item.record, specPath);
        continue;
      }
      if (item.record.length !== header.length) {
        yield errorRow(location, `Malformed CSV line: expected ${header.length} columns (as in the header), got ${item.record.length}.`);
      } else if (badQuotes) {
        yield errorRow(location, 'Malformed CSV line: a quoted field is followed by other characters before the next delimiter.');
      } else {
        const h = header;
        // fromEntries defines own properties, so a header named __proto__ stays an ordinary column.
        yield { location, values: Object.fromEntries(item.record.map((v, i) => [h[i]!, v])) };
      }
    }
  } catch (e) {
    if (e instanceof CsvError) {
      // csv-parse messages can quote field contents, so only the code is passed on.
      throw new ConnectorError('csv', 'format', `${specPath} cannot be read as CSV (${e.code}).`, { cause: e });
    }
    if (e instanceof ConnectorError || (e instanceof Error && e.name === 'AbortError')) throw e;
    throw new ConnectorError('csv', 'io', `Reading ${specPath} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  } finally {
    parser.destroy();
    scanner.destroy();
    await closeStream(input);
  }
  if (stop) {
    const why =
      stop.code === 'CSV_QUOTE_NOT_CLOSED'
        ? 'a quoted field opened here is never closed'
        : stop.code === 'CSV_MAX_RECORD_SIZE'
          ? `a record starting here is larger than ${maxRecord} characters (most likely a quote that is never closed)`
          : `the parser stopped here (${stop.code})`;
    yield errorRow(`${specPath}:${scanner.nextRecordLine()}`, `Malformed CSV: ${why}, so the rest of the file could not be read.`, { truncated: true });
  }
}

function readHeader(record: string[], specPath: string): string[] {
  const names = record.map((n) => n.trim());
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw new ConnectorError('csv', 'format', `${specPath}: the header names column "${n}" more than once, so its values cannot be mapped.`);
    seen.add(n);
  }
  return names;
}
