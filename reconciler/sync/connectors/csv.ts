/**
 * CSV files, read by a hand-written single-pass parser over decoded text: headers from the first record,
 * the spec's delimiter (default `,`; any string, not only one character), RFC 4180 quoting (`""` inside
 * quotes; delimiters and line ends inside quotes are data), CR, LF or CRLF line ends (each line on its
 * own, so a file mixing them still reads line by line), blank lines skipped. Values stay strings; the
 * normaliser types them. Text is decoded by chunk-text.ts: UTF-8 unless the spec declares `encoding`,
 * a byte-order mark (UTF-8, UTF-16LE/BE) overriding both.
 *
 * The header is checked before any row is delivered: every column the spec maps (`ctx.columns`) must be
 * in it, or the read fails naming the missing ones; a header that is not valid UTF-8, or that holds NULs
 * (UTF-16 without its mark), fails the read too.
 *
 * Speed: the engine reads million-row files on every run, so the parser avoids per-character work where
 * it can. A record with no quote character before its line end is cut with `split` on the delimiter;
 * only a record containing a quote goes through the field-by-field path, which still jumps with
 * `indexOf` rather than visiting characters. Rows are handed out a read chunk at a time (`readBatches`,
 * 256 KiB reads); `read` yields the same rows one by one.
 *
 * Bad lines do not stop the read; they become rows carrying `__error` (see rows.ts):
 * - a line with more or fewer columns than the header;
 * - a quoted field followed by other characters before the delimiter (`"7"x`). A bare quote inside an
 *   unquoted field (`12" pizza`) is common in exports and kept literally;
 * - a record holding bytes that are not valid UTF-8 (`__code: invalid_encoding`); when no record at all is
 *   valid UTF-8, the read fails at its end: the file is in another encoding.
 * One problem cannot be confined to a line: a quote that is opened and never closed makes the rest of the
 * file one field. That fails the read (a ConnectorError `truncated`, after the records before it were
 * delivered) with a message saying what was found: the line of the quote that never closes, or the line
 * longer than `maxRecordChars` (counted in characters from the record's start, quotes and delimiters
 * included). The limit also keeps memory bounded when a stray quote would otherwise buffer the whole
 * file: an unfinished record is never carried over between reads once it is longer than that.
 *
 * Locations are `path:line` with the 1-based line where the record starts (the header is line 1); a line
 * end inside a quoted field counts once, whether CR, LF or CRLF.
 */
import type { SourceSpec } from '../../spec/schema/index.ts';
import type { Connector, ConnectorContext, SourceRow } from '../types.ts';
import { checkColumns } from './columns.ts';
import { ConnectorError } from './errors.ts';
import { openSourceFile, rowsOf } from './files.ts';
import { errorRow } from './rows.ts';
import { ChunkText, CR, hasInvalidBytes, INVALID_UTF8_HINT, LF, looksLikeUtf16, TextDecodeError, UTF16_HINT } from './chunk-text.ts';

type CsvSpec = Extract<SourceSpec['connector'], { type: 'csv' }>;

export interface CsvOptions {
  /** Largest record accepted, in characters (default 8 MiB); a larger one ends the read as truncated. */
  maxRecordChars?: number;
  /** Bytes per read (default 256 KiB); tests make it small to cut files into many reads. */
  readBytes?: number;
}

const QUOTE = 0x22;
const DEFAULT_MAX_RECORD = 8 * 1024 * 1024;
/** Bytes per read: large enough that the per-read overhead (a promise, a batch) vanishes per row. */
const READ_CHUNK = 256 * 1024;

/**
 * Receives each record: its fields, the line it starts on, whether a quoted field in it is malformed, and
 * where its text starts and ends (before its line end) in the text parsed (positions are only meaningful
 * for `parseSegment`, whose text is the caller's own).
 */
export type CsvRecordSink = (fields: string[], line: number, badQuotes: boolean, start: number, end: number) => void;

/**
 * Receives, in segment mode, the text of complete records and blank lines (never a part of a record) and
 * the line it starts on. Parsing that text alone (`parseSegment`) gives exactly the records, lines and
 * verdicts the sequential parse gives them: a segment starts where a record starts, where the parser holds
 * no state but the line number.
 */
export type CsvSegmentSink = (text: string, line: number) => void;

/**
 * Why a parser stopped before the end of its input, told by what was actually found. `line` is where the
 * record that could not be read starts.
 * - `unclosed_quote`: at the end of the input, a quote opened on `quoteLine` was never closed; the lines
 *   from `line` to `lastLine` were swallowed by it;
 * - `line_too_long`: line `line` by itself is longer than `maxRecordChars`;
 * - `quote_too_long`: the record's first line is within the limit, but a quoted value opened on it runs
 *   over line ends past the limit (whether or not it closes later).
 * The verdict depends only on the record's first `maxRecordChars + 1` characters, so it is the same however
 * the input is cut into chunks.
 */
export interface CsvStop {
  reason: 'unclosed_quote' | 'line_too_long' | 'quote_too_long';
  line: number;
  quoteLine?: number;
  lastLine?: number;
}

/**
 * The parser proper: pure (no I/O), fed bytes or text in arbitrary chunks, calling the sink once per
 * complete record as soon as its line end has arrived. Only the unfinished record at the end of a chunk
 * is kept between chunks (and re-read with the next one, which keeps the state machine trivial; its
 * length is capped by `maxRecordChars`).
 */
export class CsvParser {
  private readonly text: ChunkText;
  private readonly delimiter: string;
  private readonly maxRecord: number;
  private readonly sink: CsvRecordSink;
  /** The unfinished record left by the previous chunk (its text starts on line `line`). */
  private carry = '';
  /** The line the next record (or blank line) starts on. */
  private line = 1;
  private stop: CsvStop | undefined;
  // Results of parseQuotedRecord, kept in fields so the hot path allocates nothing to return them.
  private recFields: string[] = [];
  private recBad = false;
  /**
   * Segment mode (`segments`): records after the first `fieldsWanted` are not split into fields; each
   * write hands on the text of its complete records instead, for workers to parse (see `parseSegment`).
   */
  private onSegment: CsvSegmentSink | undefined;
  private fieldsWanted = Number.POSITIVE_INFINITY;

  /** `encoding`: a TextDecoder label (default UTF-8; a byte-order mark overrides it), see chunk-text.ts. */
  constructor(delimiter: string, maxRecordChars: number, sink: CsvRecordSink, encoding?: string) {
    if (!validDelimiter(delimiter)) throw new RangeError('a CSV delimiter must be non-empty and contain no quote or line end');
    if (!(maxRecordChars >= 1)) throw new RangeError('maxRecordChars must be positive');
    this.text = new ChunkText(encoding);
    this.delimiter = delimiter;
    this.maxRecord = maxRecordChars;
    this.sink = sink;
  }

  /** Set once the parser has given up; further input is ignored. */
  get stopped(): CsvStop | undefined {
    return this.stop;
  }

  /** Whether invalid UTF-8 was met so far: only then can a record hold escaped bytes (see chunk-text.ts). */
  get invalidSeen(): boolean {
    return this.text.invalidSeen;
  }

  /** The encoding in use (after the first bytes: from the byte-order mark, the declaration, or UTF-8). */
  get encoding(): string {
    return this.text.encoding;
  }

  /** The line the next record starts on (where a decoding failure is located). */
  get nextLine(): number {
    return this.line;
  }

  /**
   * Segment mode: the first `fieldRecords` records still go to the sink (the header), every later one is
   * handed on as text to `onSegment`, one call per write, without being split into fields. The record
   * boundaries are found by this same parser, so quoted line ends are never cut.
   */
  segments(fieldRecords: number, onSegment: CsvSegmentSink): void {
    this.fieldsWanted = fieldRecords;
    this.onSegment = onSegment;
  }

  /**
   * Parses text a segment sink was given (already decoded: no byte-order mark handling, no carry), its
   * first record on `line`, calling the sink per record.
   */
  parseSegment(text: string, line: number): void {
    this.line = line;
    this.carry = '';
    this.parse(text, true);
  }

  /**
   * Whether the bytes that follow may be cut into segments without this parser (`SegmentCutter`): segment
   * mode past the header, nothing held over (no unfinished record, split character or pending CR), UTF-8.
   */
  get byteCuttable(): boolean {
    return this.segmenting && this.carry === '' && this.text.clean;
  }

  /** Segment mode past the header, not stopped. */
  get segmenting(): boolean {
    return this.stop === undefined && this.onSegment !== undefined && this.fieldsWanted === 0;
  }

  /** `SegmentCutter` handed on `lines` complete lines itself: the next record starts that many lines on. */
  skipLines(lines: number): void {
    this.line += lines;
  }

  /** Parses the complete records in `chunk` (bytes are UTF-8; a character split between chunks is fine). */
  write(chunk: Uint8Array | string): void {
    if (this.stop) return;
    this.parse(this.text.next(chunk), false);
  }

  /** Ends the input: parses the last record (a final line end is optional) and reports a stop, if any. */
  end(): CsvStop | undefined {
    if (!this.stop) this.parse(this.text.end(), true);
    return this.stop;
  }

  private parse(text: string, final: boolean): void {
    const s = this.carry.length > 0 ? this.carry + text : text;
    this.carry = '';
    const len = s.length;
    const delim = this.delimiter;
    const max = this.maxRecord;
    let line = this.line;
    let pos = 0;
    // Segment mode: where the records not split into fields begin, and their first line.
    let segStart = 0;
    let segLine = line;
    // Next LF, CR and quote at or after `pos` (`len` when there is none), refreshed only once passed:
    // each indexOf then scans every character at most once per chunk.
    let lf = -1;
    let cr = -1;
    let quote = -1;
    while (pos < len) {
      if (lf < pos) lf = indexOrEnd(s, '\n', pos, len);
      if (cr < pos) cr = indexOrEnd(s, '\r', pos, len);
      if (quote < pos) quote = indexOrEnd(s, '"', pos, len);
      const eol = lf < cr ? lf : cr;
      let end: number;
      if (eol === pos) {
        // A blank line: no record.
        end = pos;
      } else if (quote >= eol) {
        if (eol === len && !final) break;
        if (eol - pos > max) return this.halt(this.tooLong(s, pos, line), s, segStart, pos, segLine);
        if (this.fieldsWanted > 0) {
          this.fieldsWanted--;
          this.sink(s.slice(pos, eol).split(delim), line, false, pos, eol);
          if (this.onSegment) segStart = -1;
        }
        end = eol;
      } else {
        end = this.parseQuotedRecord(s, pos, eol, final);
        if (end < 0) break;
        if (end - pos > max) return this.halt(this.tooLong(s, pos, line), s, segStart, pos, segLine);
        if (this.fieldsWanted > 0) {
          this.fieldsWanted--;
          this.sink(this.recFields, line, this.recBad, pos, end);
          if (this.onSegment) segStart = -1;
        }
        // Line ends inside quoted fields (only there can a record run past its first line end).
        if (end > eol) line += countLineEnds(s, eol, end);
      }
      // Step over the line end.
      line++;
      if (end >= len) {
        pos = len;
      } else if (s.charCodeAt(end) === CR) {
        if (end + 1 < len) pos = s.charCodeAt(end + 1) === LF ? end + 2 : end + 1;
        else {
          pos = len;
          this.text.endedOnCr = !final;
        }
      } else {
        pos = end + 1;
      }
      // A record that went to the sink is not part of any segment: the next one starts after it.
      if (segStart < 0) {
        segStart = pos;
        segLine = line;
      }
    }
    if (pos < len) {
      // An unfinished record: at the end of the input its quote never closed (the only way a record can
      // be left over then); otherwise keep it for the next chunk unless it is already too large.
      if (len - pos > max) return this.halt(this.tooLong(s, pos, line), s, segStart, pos, segLine);
      if (final) return this.halt(this.unclosed(s, pos, line), s, segStart, pos, segLine);
      this.carry = s.slice(pos);
    }
    this.emitSegment(s, segStart, pos, segLine);
    this.line = line;
  }

  /** Stops for good; in segment mode the complete records before the stop still go out. */
  private halt(stop: CsvStop, s?: string, segStart = 0, pos = 0, segLine = 0): void {
    if (s !== undefined) this.emitSegment(s, segStart, pos, segLine);
    this.stop = stop;
    this.carry = '';
  }

  private emitSegment(s: string, from: number, to: number, line: number): void {
    if (this.onSegment && this.fieldsWanted === 0 && from >= 0 && to > from) this.onSegment(s.slice(from, to), line);
  }

  /**
   * The stop for a record s[pos…] longer than the limit: a long first line, or a first line within the
   * limit whose line end sits inside a quoted value (the only way a record goes on past a line end).
   */
  private tooLong(s: string, pos: number, line: number): CsvStop {
    const firstLineEnd = Math.min(indexOrEnd(s, '\n', pos, s.length), indexOrEnd(s, '\r', pos, s.length));
    return firstLineEnd - pos > this.maxRecord ? { reason: 'line_too_long', line } : { reason: 'quote_too_long', line, quoteLine: line };
  }

  /** The stop for the record s[pos…] left unfinished at the end of the input: where its open quote is. */
  private unclosed(s: string, pos: number, line: number): CsvStop {
    const open = openQuoteAt(s, pos, this.delimiter);
    const last = s.charCodeAt(s.length - 1);
    return {
      reason: 'unclosed_quote',
      line,
      quoteLine: open < 0 ? line : line + countLineEnds(s, pos, open),
      lastLine: line + countLineEnds(s, pos, s.length) - (last === LF || last === CR ? 1 : 0),
    };
  }

  /**
   * Parses the record starting at `start` field by field. `eol` is the first line end at or after `start`
   * (or `len`). Returns the index of the record's line end (or the text's length at the end of the input),
   * leaving the fields in `recFields` and the quote check in `recBad`; -1 when the record is not complete
   * in `s` yet.
   */
  private parseQuotedRecord(s: string, start: number, eol: number, final: boolean): number {
    const len = s.length;
    const delim = this.delimiter;
    const dlen = delim.length;
    const fields: string[] = [];
    let bad = false;
    let p = start;
    let nextDelim = -1;
    let lineEnd = eol;
    for (;;) {
      let prefix = '';
      if (s.charCodeAt(p) === QUOTE) {
        // Quoted: jump from quote to quote; `""` is one quote, any other quote closes the field.
        let from = p + 1;
        for (;;) {
          const q = s.indexOf('"', from);
          if (q < 0 || (q + 1 === len && !final)) return -1;
          if (s.charCodeAt(q + 1) === QUOTE) {
            prefix += s.slice(from, q + 1);
            from = q + 2;
            continue;
          }
          prefix += s.slice(from, q);
          p = q + 1;
          break;
        }
        if (p >= len) {
          fields.push(prefix);
          break;
        }
        const c = s.charCodeAt(p);
        if (c === CR || c === LF) {
          fields.push(prefix);
          lineEnd = p;
          break;
        }
        if (s.startsWith(delim, p)) {
          fields.push(prefix);
          p += dlen;
          continue;
        }
        // Maybe the start of a longer delimiter whose rest has not arrived yet.
        if (!final && len - p < dlen && delim.startsWith(s.slice(p))) return -1;
        // Text after the closing quote: the record is malformed. The rest of the field is read as
        // unquoted text so that the record still ends where a reader of the file would expect.
        bad = true;
      }
      // Unquoted: up to the next delimiter or line end, quotes included literally.
      if (lineEnd < p) {
        const nl = indexOrEnd(s, '\n', p, len);
        const nr = indexOrEnd(s, '\r', p, len);
        lineEnd = nl < nr ? nl : nr;
      }
      if (nextDelim < p) nextDelim = indexOrEnd(s, delim, p, len);
      if (nextDelim < lineEnd) {
        fields.push(prefix + s.slice(p, nextDelim));
        p = nextDelim + dlen;
        continue;
      }
      if (lineEnd === len && !final) return -1;
      fields.push(prefix + s.slice(p, lineEnd));
      p = lineEnd;
      break;
    }
    this.recFields = fields;
    this.recBad = bad;
    return p;
  }
}

/** Quotes and line ends have their own meaning, so a delimiter made of them would be ambiguous. */
function validDelimiter(delimiter: string): boolean {
  return delimiter.length > 0 && !/[\r\n"]/.test(delimiter);
}

function indexOrEnd(s: string, search: string, from: number, len: number): number {
  const i = s.indexOf(search, from);
  return i < 0 ? len : i;
}

/**
 * Where the quote that is still open at the end of s starts, reading the unfinished record s[from…] as
 * the parser does (a quote opens a field only at its start; `""` inside is one quote); -1 when none is.
 * Runs once, when a read fails, so it walks the characters plainly.
 */
function openQuoteAt(s: string, from: number, delim: string): number {
  const len = s.length;
  let i = from;
  let fieldStart = true;
  while (i < len) {
    if (fieldStart && s.charCodeAt(i) === QUOTE) {
      const open = i;
      let from2 = i + 1;
      for (;;) {
        const q = s.indexOf('"', from2);
        if (q < 0) return open;
        if (s.charCodeAt(q + 1) === QUOTE) {
          from2 = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      fieldStart = false;
      continue;
    }
    if (s.startsWith(delim, i)) {
      i += delim.length;
      fieldStart = true;
      continue;
    }
    fieldStart = false;
    i++;
  }
  return -1;
}

/** Line ends (CR, LF or CRLF, each counted once) in s[from, to). */
function countLineEnds(s: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c === LF || (c === CR && s.charCodeAt(i + 1) !== LF)) n++;
  }
  return n;
}

/** Streams a CSV file as rows; see the module comment for the handling of bad lines. */
export function createCsvConnector(spec: CsvSpec, options: CsvOptions = {}): Connector {
  const delimiter = spec.delimiter ?? ',';
  const maxRecord = options.maxRecordChars ?? DEFAULT_MAX_RECORD;
  if (!validDelimiter(delimiter)) {
    throw new ConnectorError('csv', 'config', `The CSV delimiter ${JSON.stringify(delimiter)} cannot be used: it must be non-empty and contain no quote or line end.`);
  }
  const readBatches = (ctx: ConnectorContext) => readCsvBatches(spec.path, delimiter, maxRecord, spec.encoding, ctx, options.readBytes);
  return {
    type: 'csv',
    readBatches,
    read: (ctx: ConnectorContext) => rowsOf(readBatches(ctx), ctx.signal),
  };
}

/**
 * Records to rows, as every read of a CSV file makes them once its header is known: the sequential read
 * below, and the workers that parse segments of the file in parallel (sync/parallel/), which must agree
 * with it row for row. Counts the records that were and were not valid UTF-8 (a file with none valid
 * fails its read).
 */
export class CsvRows {
  decoded = 0;
  undecodable = 0;
  private readonly build: (fields: string[]) => Record<string, string>;

  constructor(
    private readonly header: readonly string[],
    private readonly specPath: string,
  ) {
    this.build = rowBuilder(header);
  }

  /** `mayHoldInvalid`: whether invalid UTF-8 was met in the file so far (only then can a field hold escaped bytes). */
  row(fields: string[], line: number, badQuotes: boolean, mayHoldInvalid: boolean): SourceRow {
    const location = `${this.specPath}:${line}`;
    if (mayHoldInvalid && fields.some(hasInvalidBytes)) {
      this.undecodable++;
      return errorRow(location, `Line ${line} is not valid UTF-8, so it was not read; ${INVALID_UTF8_HINT}.`, 'invalid_encoding');
    }
    this.decoded++;
    if (fields.length !== this.header.length) {
      return errorRow(location, `Malformed CSV line: expected ${this.header.length} columns (as in the header), got ${fields.length}.`);
    }
    if (badQuotes) return errorRow(location, 'Malformed CSV line: a quoted field is followed by other characters before the next delimiter.');
    return { location, values: this.build(fields) };
  }
}

/** The header record, checked: readable, not UTF-16 read as UTF-8, unique names, every mapped column present. */
function checkedHeader(parser: CsvParser, fields: string[], line: number, specPath: string, ctx: ConnectorContext): string[] {
  // Without a readable header no column can be mapped: the file as a whole is unreadable.
  if (parser.invalidSeen && fields.some(hasInvalidBytes)) {
    throw new ConnectorError('csv', 'format', `The header of ${specPath} (line ${line}) is not valid UTF-8, so no column can be mapped; ${INVALID_UTF8_HINT}.`);
  }
  if (parser.encoding === 'utf-8' && fields.some(looksLikeUtf16)) {
    throw new ConnectorError('csv', 'format', `The header of ${specPath} holds NUL characters, so no column can be mapped: ${UTF16_HINT}.`);
  }
  const header = readHeader(fields, specPath);
  checkColumns('csv', `The header of ${specPath}`, header, ctx.columns);
  return header;
}

async function* readCsvBatches(specPath: string, delimiter: string, maxRecord: number, encoding: string | undefined, ctx: ConnectorContext, readBytes = READ_CHUNK): AsyncGenerator<SourceRow[]> {
  let batch: SourceRow[] = [];
  let rows: CsvRows | undefined;
  const parser: CsvParser = new CsvParser(delimiter, maxRecord, (fields, line, badQuotes) => {
    if (rows === undefined) rows = new CsvRows(checkedHeader(parser, fields, line, specPath, ctx), specPath);
    else batch.push(rows.row(fields, line, badQuotes, parser.invalidSeen));
  }, encoding);
  for await (const _ of feedCsv(parser, specPath, maxRecord, ctx, readBytes)) {
    if (batch.length > 0) {
      const out = batch;
      batch = [];
      yield out;
    }
  }
  checkDecoded(rows, specPath);
}

/**
 * Reads the file into a parser 256 KiB at a time (yielding after each read, so its caller can hand on
 * what the read produced) and turns every way the read can fail into the connector's error. When the
 * parser stops early, the records before the stop are handed on first; then the read fails, so the run
 * cannot pass for complete (and its watermark does not move).
 */
async function* feedCsv(parser: CsvParser, specPath: string, maxRecord: number, ctx: ConnectorContext, readBytes: number, sink: Pick<CsvParser, 'write' | 'end'> = parser): AsyncGenerator<void> {
  ctx.signal?.throwIfAborted();
  const handle = await openSourceFile('csv', specPath, ctx.cwd);
  const size = ctx.onPosition ? (await handle.stat()).size : 0;
  let position = 0;
  // Decoded strings are copies, so one buffer serves every read.
  const buffer = Buffer.allocUnsafe(readBytes);
  try {
    let stop: CsvStop | undefined;
    for (;;) {
      ctx.signal?.throwIfAborted();
      const { bytesRead } = await handle.read(buffer, 0, readBytes, null);
      position += bytesRead;
      ctx.onPosition?.(position, size);
      if (bytesRead === 0) {
        stop = sink.end();
        break;
      }
      sink.write(buffer.subarray(0, bytesRead));
      stop = parser.stopped;
      if (stop) break;
      yield;
    }
    yield;
    if (stop) throw new ConnectorError('csv', 'truncated', `Reading ${specPath} stopped early: ${describeStop(stop, maxRecord)}.`);
  } catch (e) {
    if (e instanceof ConnectorError || (e instanceof Error && e.name === 'AbortError')) throw e;
    if (e instanceof TextDecodeError) {
      throw new ConnectorError('csv', 'format', `${specPath} is not valid ${e.encoding} (from its byte-order mark or the connector's encoding): bytes after line ${parser.nextLine} cannot be decoded, so nothing from there on was read.`, { cause: e });
    }
    throw new ConnectorError('csv', 'io', `Reading ${specPath} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  } finally {
    await handle.close();
  }
}

/** A file none of whose records is valid UTF-8 is in another encoding: the read fails at its end. */
export function checkDecoded(rows: Pick<CsvRows, 'decoded' | 'undecodable'> | undefined, specPath: string): void {
  if (rows && rows.decoded === 0 && rows.undecodable > 0) {
    throw new ConnectorError('csv', 'format', `None of the ${rows.undecodable} lines of ${specPath} is valid UTF-8, so the file is not read as UTF-8 at all; ${INVALID_UTF8_HINT}.`);
  }
}

/**
 * Complete records for a worker to parse with `parseSegment`: as text the parser cut (see
 * `CsvSegmentSink`), or as UTF-8 bytes `SegmentCutter` cut at a line end without decoding them, which the
 * worker decodes (`decodeUtf8Strict`). Exactly one of the two is set.
 */
export interface CsvSegment {
  text?: string;
  bytes?: Uint8Array;
  /** The line the text starts on. */
  line: number;
  /** Whether invalid UTF-8 was met in the file so far (see `CsvRows.row`); for bytes, the worker finds out. */
  mayHoldInvalid: boolean;
}

/**
 * Cuts the bytes of a file into segments for the parallel read, in front of a parser in segment mode. The
 * parser decodes every byte and walks every record to find where records end; this thread would then
 * spend as long on that as each worker spends parsing (a 1,000,000-row file: ~1.5 s of its ~5 s). Where
 * a read (with what the last one left over) holds no quote and no CR, every LF ends a record and no
 * record runs past one, so the bytes up to the last LF are complete records as they are: they go out
 * undecoded, and the lines are counted with `indexOf`. Anything else (a quote, a CR, a line the parser
 * might call too long, the last record) goes to the parser, at a record boundary, as it came; so the
 * records, their lines and every stop are the parser's own.
 */
export class SegmentCutter {
  /** Bytes after the last LF cut here: the start of a record whose end has not been read yet. */
  private held: Buffer | undefined;

  constructor(
    private readonly parser: CsvParser,
    private readonly maxRecord: number,
    private readonly emit: (segment: CsvSegment) => void,
  ) {}

  write(chunk: Uint8Array): void {
    if (this.parser.stopped) return;
    const read = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.cutPlain(read)) return;
    let all = this.held ? Buffer.concat([this.held, read]) : read;
    this.held = undefined;
    if (!this.parser.byteCuttable) {
      // The parser carries the start of a record (its reads end mid-record): it is given the bytes up to
      // the first LF to finish it, and the rest is cut here if that left it at a boundary.
      const first = this.parser.segmenting ? all.indexOf(LF) : -1;
      if (first < 0) return this.parser.write(all);
      this.parser.write(all.subarray(0, first + 1));
      all = all.subarray(first + 1);
      if (!this.parser.byteCuttable) return this.parser.write(all);
    }
    if (all.indexOf(QUOTE) >= 0 || all.indexOf(CR) >= 0) return this.parser.write(all);
    const last = all.lastIndexOf(LF);
    if (last < 0) {
      // No line end yet: held (a copy: the read's buffer is reused) unless the parser must judge its length.
      if (all.length > this.maxRecord) return this.parser.write(all);
      if (all.length > 0) this.held = Buffer.from(all);
      return;
    }
    let lines = 0;
    let longest = 0;
    for (let from = 0, lf = all.indexOf(LF); lf >= 0; from = lf + 1, lf = from > last ? -1 : all.indexOf(LF, from)) {
      lines++;
      if (lf - from > longest) longest = lf - from;
    }
    // A line longer in bytes than the limit may still be within it in characters: the parser counts.
    if (longest > this.maxRecord) return this.parser.write(all);
    // A copy of its own, so the worker's message clones exactly these bytes.
    this.emit({ bytes: new Uint8Array(all.subarray(0, last + 1)), line: this.parser.nextLine, mayHoldInvalid: false });
    this.parser.skipLines(lines);
    if (last + 1 < all.length) this.held = Buffer.from(all.subarray(last + 1));
  }

  /**
   * The common case of `write`, with one copy of the bytes instead of two: at a record boundary, no quote
   * and no CR in what is held or read, a line end in the read and no line over the limit. The records
   * (what is held, which holds no line end, then the read up to its last one) go out as a buffer of their
   * own. False, with nothing done, for anything else.
   */
  private cutPlain(read: Buffer): boolean {
    const held = this.held;
    if (!this.parser.byteCuttable || read.indexOf(QUOTE) >= 0 || read.indexOf(CR) >= 0) return false;
    if (held !== undefined && (held.indexOf(QUOTE) >= 0 || held.indexOf(CR) >= 0)) return false;
    const last = read.lastIndexOf(LF);
    if (last < 0) return false;
    const before = held?.length ?? 0;
    let lines = 0;
    let longest = 0;
    for (let from = 0, lf = read.indexOf(LF); lf >= 0; from = lf + 1, lf = from > last ? -1 : read.indexOf(LF, from)) {
      const length = lf - from + (lines === 0 ? before : 0);
      lines++;
      if (length > longest) longest = length;
    }
    if (longest > this.maxRecord) return false;
    const out = Buffer.allocUnsafeSlow(before + last + 1);
    if (held !== undefined) held.copy(out, 0);
    read.copy(out, before, 0, last + 1);
    // The rest is a copy: the read's buffer is reused.
    this.held = last + 1 < read.length ? Buffer.from(read.subarray(last + 1)) : undefined;
    this.emit({ bytes: new Uint8Array(out.buffer, out.byteOffset, out.length), line: this.parser.nextLine, mayHoldInvalid: false });
    this.parser.skipLines(lines);
    return true;
  }

  end(): CsvStop | undefined {
    if (this.held) {
      const rest = this.held;
      this.held = undefined;
      this.parser.write(rest);
    }
    return this.parser.end();
  }
}

/** What a parallel read needs to parse segments the way `readBatches` parses the file. */
export interface CsvSegmentSpec {
  path: string;
  delimiter: string;
  maxRecord: number;
  header: string[];
}

/**
 * The file as segments of complete records, for the parallel read (sync/parallel/): the header is read
 * and checked here, as `readBatches` does, then each read's complete records are handed on as text. The
 * same failures as `readBatches`, at the same points; the caller applies `checkDecoded` with the counts
 * of the rows its workers made.
 */
export async function* readCsvSegments(spec: CsvSpec, options: CsvOptions, ctx: ConnectorContext): AsyncGenerator<{ spec: CsvSegmentSpec; segments: CsvSegment[] }> {
  const delimiter = spec.delimiter ?? ',';
  const maxRecord = options.maxRecordChars ?? DEFAULT_MAX_RECORD;
  if (!validDelimiter(delimiter)) {
    throw new ConnectorError('csv', 'config', `The CSV delimiter ${JSON.stringify(delimiter)} cannot be used: it must be non-empty and contain no quote or line end.`);
  }
  let header: string[] | undefined;
  let segments: CsvSegment[] = [];
  const parser: CsvParser = new CsvParser(delimiter, maxRecord, (fields, line) => {
    header = checkedHeader(parser, fields, line, spec.path, ctx);
  }, spec.encoding);
  parser.segments(1, (text, line) => segments.push({ text, line, mayHoldInvalid: parser.invalidSeen }));
  const cutter = new SegmentCutter(parser, maxRecord, (segment) => segments.push(segment));
  for await (const _ of feedCsv(parser, spec.path, maxRecord, ctx, options.readBytes ?? READ_CHUNK, cutter)) {
    if (header !== undefined && segments.length > 0) {
      const out = segments;
      segments = [];
      yield { spec: { path: spec.path, delimiter, maxRecord, header }, segments: out };
    }
  }
}

/** What the parser found, in the words of someone looking at the file. Line numbers only, never content. */
export function describeStop(stop: CsvStop, maxRecord: number): string {
  const limit = `the limit of ${maxRecord} characters`;
  switch (stop.reason) {
    case 'unclosed_quote': {
      const lines = stop.lastLine !== undefined && stop.lastLine > stop.line ? `lines ${stop.line} to ${stop.lastLine} were` : `line ${stop.line} was`;
      return `a quote opened on line ${stop.quoteLine ?? stop.line} is never closed, so ${lines} not read`;
    }
    case 'line_too_long':
      return `line ${stop.line} is longer than ${limit}, so nothing from line ${stop.line} on was read`;
    case 'quote_too_long':
      return `a quoted value opened on line ${stop.quoteLine ?? stop.line} runs over several lines and is not closed within ${limit}, so nothing from line ${stop.line} on was read`;
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

/** Turns a record into a row object keyed by the header. */
function rowBuilder(header: readonly string[]): (fields: string[]) => Record<string, string> {
  // Assigning `__proto__` would set the prototype instead of a column; fromEntries defines own
  // properties. Every other header takes the cheap path, where each row gets the same hidden class.
  if (header.includes('__proto__')) return (fields) => Object.fromEntries(header.map((h, i) => [h, fields[i]!]));
  const n = header.length;
  return (fields) => {
    const values: Record<string, string> = {};
    for (let i = 0; i < n; i++) values[header[i]!] = fields[i]!;
    return values;
  };
}
