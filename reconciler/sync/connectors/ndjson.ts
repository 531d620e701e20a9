/**
 * Newline-delimited JSON: one JSON object per line, LF or CRLF (a lone CR also ends a line, as it did
 * with readline), blank lines skipped, text decoded by chunk-text.ts (UTF-8 unless `encoding` is declared;
 * a byte-order mark overrides both). A line that is not JSON, is JSON but not an object, or holds bytes
 * that are not valid UTF-8 (`invalid_encoding`), becomes a row carrying `__error` (see rows.ts) and the
 * read goes on; when no line is valid UTF-8, or the first holds NULs (UTF-16 without its mark), the read
 * fails. A key missing from an object is left out of the row: the normaliser reads it as not provided,
 * never as a blank. Locations
 * are `path:line`, 1-based, counting blank lines too so they match an editor. A line longer than
 * `maxLineChars` fails the read (a ConnectorError `truncated` naming the line, after the rows before it
 * were delivered): memory stays bounded even for a file that is one huge line.
 *
 * Lines are split here (LineSplitter, with indexOf over each decoded 256 KiB read) rather than by
 * readline, whose per-line events cost more than the JSON parsing; rows are handed out a read chunk at a
 * time (`readBatches`), and `read` yields the same rows one by one.
 *
 * JSON numbers beyond 2^53 are already rounded by JSON.parse; the normaliser refuses such ids rather
 * than send a wrong one, so exporters should write large ids as strings.
 */
import type { SourceSpec } from '../../spec/schema/index.ts';
import type { Connector, ConnectorContext, SourceRow } from '../types.ts';
import { ConnectorError } from './errors.ts';
import { openSourceFile, rowsOf } from './files.ts';
import { errorRow } from './rows.ts';
import { ChunkText, CR, hasInvalidBytes, INVALID_UTF8_HINT, LF, looksLikeUtf16, TextDecodeError, UTF16_HINT } from './chunk-text.ts';

type NdjsonSpec = Extract<SourceSpec['connector'], { type: 'ndjson' }>;

const READ_CHUNK = 256 * 1024;
const DEFAULT_MAX_LINE = 8 * 1024 * 1024;

export interface NdjsonOptions {
  /**
   * Longest line accepted, in characters (default 8 MiB). A longer one ends the read as truncated: a file
   * without line ends (a JSON array, a minified dump) would otherwise be held in memory whole.
   */
  maxLineChars?: number;
}

/**
 * Splits UTF-8 bytes or text, fed in arbitrary chunks, into lines (without their line ends), numbered
 * from 1. Pure: no I/O. A line is handed to the sink as soon as its line end arrives; the last line needs
 * none. Only the unfinished line at the end of a chunk is kept between chunks.
 */
export class LineSplitter {
  private readonly text: ChunkText;
  private readonly sink: (line: string, n: number) => void;
  private carry = '';
  /** Number of the next line. */
  private n = 1;
  /** Set when a line longer than the limit was met: the number of the line where it starts. */
  overlong: number | undefined;

  /** `encoding`: a TextDecoder label (default UTF-8; a byte-order mark overrides it), see chunk-text.ts. */
  constructor(
    sink: (line: string, n: number) => void,
    private readonly maxLine = DEFAULT_MAX_LINE,
    encoding?: string,
  ) {
    this.sink = sink;
    this.text = new ChunkText(encoding);
  }

  /** Whether invalid UTF-8 was met so far: only then can a line hold escaped bytes (see chunk-text.ts). */
  get invalidSeen(): boolean {
    return this.text.invalidSeen;
  }

  /** The encoding in use (after the first bytes: from the byte-order mark, the declaration, or UTF-8). */
  get encoding(): string {
    return this.text.encoding;
  }

  /** The number of the next line (where a decoding failure is located). */
  get nextLine(): number {
    return this.n;
  }

  /** Once a line was too long, nothing more is split: what follows cannot be located. */
  write(chunk: Uint8Array | string): void {
    if (this.overlong === undefined) this.split(this.text.next(chunk), false);
  }

  end(): void {
    if (this.overlong === undefined) this.split(this.text.end(), true);
  }

  private split(text: string, final: boolean): void {
    // The carried text holds no line end, so the search starts in the new text.
    const from = this.carry.length;
    const s = from > 0 ? this.carry + text : text;
    this.carry = '';
    const len = s.length;
    let n = this.n;
    let pos = 0;
    let lf = -1;
    let cr = -1;
    for (;;) {
      if (lf < pos) {
        lf = s.indexOf('\n', pos > from ? pos : from);
        if (lf < 0) lf = len;
      }
      if (cr < pos) {
        cr = s.indexOf('\r', pos > from ? pos : from);
        if (cr < 0) cr = len;
      }
      const eol = lf < cr ? lf : cr;
      if (eol === len) break;
      if (eol - pos > this.maxLine) {
        this.overlong = n;
        return;
      }
      this.sink(s.slice(pos, eol), n++);
      if (s.charCodeAt(eol) === CR) {
        if (eol + 1 < len) pos = s.charCodeAt(eol + 1) === LF ? eol + 2 : eol + 1;
        else {
          pos = len;
          this.text.endedOnCr = !final;
        }
      } else {
        pos = eol + 1;
      }
    }
    if (pos < len) {
      if (len - pos > this.maxLine) {
        this.overlong = n;
        return;
      }
      if (final) this.sink(s.slice(pos), n++);
      else this.carry = s.slice(pos);
    }
    this.n = n;
  }
}

/** Streams an NDJSON file as rows. */
export function createNdjsonConnector(spec: NdjsonSpec, options: NdjsonOptions = {}): Connector {
  const maxLine = options.maxLineChars ?? DEFAULT_MAX_LINE;
  const readBatches = (ctx: ConnectorContext) => readNdjsonBatches(spec.path, maxLine, spec.encoding, ctx);
  return {
    type: 'ndjson',
    readBatches,
    read: (ctx: ConnectorContext) => rowsOf(readBatches(ctx), ctx.signal),
  };
}

async function* readNdjsonBatches(specPath: string, maxLine: number, encoding: string | undefined, ctx: ConnectorContext): AsyncGenerator<SourceRow[]> {
  ctx.signal?.throwIfAborted();
  const handle = await openSourceFile('ndjson', specPath, ctx.cwd);
  const size = ctx.onPosition ? (await handle.stat()).size : 0;
  let position = 0;
  let batch: SourceRow[] = [];
  let decoded = 0;
  let undecodable = 0;
  const lines: LineSplitter = new LineSplitter((text, n) => {
    if (text.trim() === '') return;
    const location = `${specPath}:${n}`;
    if (lines.invalidSeen && hasInvalidBytes(text)) {
      undecodable++;
      batch.push(errorRow(location, `Line ${n} is not valid UTF-8, so it was not read; ${INVALID_UTF8_HINT}.`, 'invalid_encoding'));
      return;
    }
    if (decoded === 0 && undecodable === 0 && lines.encoding === 'utf-8' && looksLikeUtf16(text)) {
      throw new ConnectorError('ndjson', 'format', `Line ${n} of ${specPath} holds NUL characters, which JSON text never does: ${UTF16_HINT}.`);
    }
    decoded++;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      // V8's message quotes the offending text, which may be an email address: say only what is wrong.
      batch.push(errorRow(location, 'Malformed NDJSON line: not valid JSON.'));
      return;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
      batch.push(errorRow(location, `Malformed NDJSON line: expected a JSON object, got ${got}.`));
      return;
    }
    batch.push({ location, values: value as Record<string, unknown> });
  }, maxLine, encoding);
  // Decoded strings are copies, so one buffer serves every read.
  const buffer = Buffer.allocUnsafe(READ_CHUNK);
  try {
    for (;;) {
      ctx.signal?.throwIfAborted();
      const { bytesRead } = await handle.read(buffer, 0, READ_CHUNK, null);
      position += bytesRead;
      ctx.onPosition?.(position, size);
      if (bytesRead === 0) break;
      lines.write(buffer.subarray(0, bytesRead));
      if (lines.overlong !== undefined) break;
      if (batch.length > 0) {
        const out = batch;
        batch = [];
        yield out;
      }
    }
    lines.end();
    // The rows before the failure are delivered; then the read fails, so the run cannot pass for complete.
    if (batch.length > 0) yield batch;
    if (lines.overlong !== undefined) {
      const n = lines.overlong;
      throw new ConnectorError(
        'ndjson',
        'truncated',
        `Reading ${specPath} stopped early: line ${n} is longer than the limit of ${maxLine} characters (a JSON array or a minified dump is not NDJSON), so nothing from line ${n} on was read.`,
      );
    }
    if (decoded === 0 && undecodable > 0) {
      throw new ConnectorError('ndjson', 'format', `None of the ${undecodable} lines of ${specPath} is valid UTF-8, so the file is not read as UTF-8 at all; ${INVALID_UTF8_HINT}.`);
    }
  } catch (e) {
    if (e instanceof ConnectorError || (e instanceof Error && e.name === 'AbortError')) throw e;
    if (e instanceof TextDecodeError) {
      throw new ConnectorError('ndjson', 'format', `${specPath} is not valid ${e.encoding} (from its byte-order mark or the connector's encoding): bytes after line ${lines.nextLine} cannot be decoded, so nothing from there on was read.`, { cause: e });
    }
    throw new ConnectorError('ndjson', 'io', `Reading ${specPath} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  } finally {
    await handle.close();
  }
}
