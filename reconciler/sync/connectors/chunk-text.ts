/**
 * The text side of the line-oriented file parsers (CSV, NDJSON), shared so they cannot drift apart:
 * decoding across chunk boundaries, the byte-order mark at the very start, and a CRLF whose CR ended the
 * previous chunk. Pure: no I/O.
 *
 * Encodings:
 * - A byte-order mark decides: UTF-8 (EF BB BF), UTF-16LE (FF FE) or UTF-16BE (FE FF), whatever was
 *   declared (as browsers decode); the mark itself is dropped.
 * - Otherwise the declared encoding (a TextDecoder label such as `latin1` or `utf-16le`), or UTF-8.
 * - UTF-8 is decoded strictly, never with U+FFFD replacement characters that would then be sent as data
 *   (`jos\uFFFD@example.com`). Each byte that is not part of a valid sequence becomes a lone low surrogate
 *   U+DC80–U+DCFF (the "surrogateescape" of other languages), which no valid UTF-8 can produce, so the
 *   parser can reject exactly the lines that hold one (`hasInvalidBytes`) and keep reading the others.
 * - Another encoding is decoded by TextDecoder with `fatal: true`; bytes it cannot decode throw a
 *   `TextDecodeError` (for UTF-16 only a broken file does that; single-byte encodings never do).
 */
import { isUtf8 } from 'node:buffer';

export const CR = 0x0d;
export const LF = 0x0a;
const BOM = 0xfeff;

/** Told to the person fixing the file when a line is not UTF-8 (the bytes themselves are never shown). */
export const INVALID_UTF8_HINT = "declare the file's encoding in the connector (`encoding: latin1`, `utf-16le`, …) if it is not UTF-8";

/**
 * Whether the first line of a file looks like UTF-16 read as UTF-8: UTF-16 text without its byte-order
 * mark is valid UTF-8 in which every other byte of plain text is a NUL, which no CSV header or JSON line
 * holds. Such a file is refused as a whole rather than read as lines of garbage.
 */
export function looksLikeUtf16(firstLine: string): boolean {
  return firstLine.includes('\u0000');
}

export const UTF16_HINT = 'it looks like UTF-16 without a byte-order mark; declare `encoding: utf-16le` (or `utf-16be`) in the connector';

/** Raised when bytes cannot be decoded in a declared (non-UTF-8) encoding. */
export class TextDecodeError extends Error {
  override name = 'TextDecodeError';
  constructor(readonly encoding: string) {
    super(`bytes that are not valid ${encoding}`);
  }
}

/** The WHATWG name of a TextDecoder label (`latin1` → `windows-1252`), or undefined when it is not supported. */
export function encodingName(label: string): string | undefined {
  try {
    return new TextDecoder(label.trim()).encoding;
  } catch {
    return undefined;
  }
}

// A lone low surrogate in the escape range: a valid pair's low half is preceded by its high half.
const ESCAPED = /(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/;

/** Whether decoded text holds an escaped invalid byte (see the module comment). */
export function hasInvalidBytes(text: string): boolean {
  return ESCAPED.test(text);
}

export class ChunkText {
  /** Set once an invalid UTF-8 byte was escaped; until then no line needs checking. */
  invalidSeen = false;
  /**
   * Set by the parser when a chunk ended with a CR that ended a line: an LF opening the next chunk
   * belongs to it and is dropped.
   */
  endedOnCr = false;
  /** The encoding in use, once the start of the input was seen (`utf-8` until then). */
  encoding = 'utf-8';
  private atStart = true;
  private sniffed = false;
  /** Whether the byte-order mark was found (and dropped) in the bytes. */
  private markDropped = false;
  /** Bytes held back: the start of the input until a byte-order mark can be told, or a split character. */
  private pending: Buffer | undefined;
  private decoder: InstanceType<typeof TextDecoder> | undefined;

  /** `encoding`: a TextDecoder label, validated by the spec schema; default UTF-8. */
  constructor(private readonly declared?: string) {}

  /**
   * Whether the text so far ended cleanly in plain UTF-8: the start was seen (no byte-order mark left to
   * tell), no other decoder is in use, and nothing is held over (no split character, no CR waiting for
   * its LF). Then bytes up to a line end decode alone exactly as here (`decodeUtf8Strict`), which is what
   * lets the parallel read cut a file's bytes without decoding them (csv.ts `SegmentCutter`).
   */
  get clean(): boolean {
    return this.sniffed && !this.atStart && this.decoder === undefined && this.pending === undefined && !this.endedOnCr;
  }

  /** The next chunk as text ready to split. */
  next(chunk: Uint8Array | string): string {
    if (typeof chunk === 'string') return this.tidy(chunk);
    return this.tidy(this.decode(chunk, false));
  }

  /** Whatever is still held at the end of the input. */
  end(): string {
    return this.tidy(this.decode(new Uint8Array(0), true));
  }

  private decode(chunk: Uint8Array, final: boolean): string {
    let bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.pending) {
      bytes = Buffer.concat([this.pending, bytes]);
      this.pending = undefined;
    }
    if (!this.sniffed) {
      // Wait for enough bytes to tell a byte-order mark (three for UTF-8's).
      if (bytes.length < 3 && !final) {
        // A copy: the caller may reuse its buffer for the next read.
        this.pending = Buffer.from(bytes);
        return '';
      }
      bytes = this.sniff(bytes);
    }
    if (this.decoder) {
      try {
        return this.decoder.decode(bytes, { stream: !final });
      } catch {
        throw new TextDecodeError(this.encoding);
      }
    }
    return this.decodeUtf8(bytes, final);
  }

  /** Chooses the decoder from a byte-order mark or the declared encoding; returns the bytes after the mark. */
  private sniff(bytes: Buffer): Buffer {
    this.sniffed = true;
    let label = this.declared === undefined ? 'utf-8' : (encodingName(this.declared) ?? 'utf-8');
    let skip = 0;
    if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
      label = 'utf-8';
      skip = 3;
    } else if (bytes[0] === 0xff && bytes[1] === 0xfe) {
      label = 'utf-16le';
      skip = 2;
    } else if (bytes[0] === 0xfe && bytes[1] === 0xff) {
      label = 'utf-16be';
      skip = 2;
    }
    this.encoding = label;
    this.markDropped = skip > 0;
    if (label !== 'utf-8') this.decoder = new TextDecoder(label, { fatal: true, ignoreBOM: true });
    return skip > 0 ? bytes.subarray(skip) : bytes;
  }

  /** Strict UTF-8: valid text decoded as is, invalid bytes escaped; an unfinished character is held. */
  private decodeUtf8(bytes: Buffer, final: boolean): string {
    const cut = final ? bytes.length : completeLength(bytes);
    if (cut < bytes.length) this.pending = Buffer.from(bytes.subarray(cut));
    const body = cut < bytes.length ? bytes.subarray(0, cut) : bytes;
    const { text, invalid } = decodeUtf8Strict(body);
    if (invalid) this.invalidSeen = true;
    return text;
  }

  private tidy(chunk: string): string {
    let text = chunk;
    if (text.length === 0) return text;
    if (this.atStart) {
      this.atStart = false;
      // Text handed over as a string still carries its mark as a character.
      if (!this.markDropped && text.charCodeAt(0) === BOM) text = text.slice(1);
    }
    if (this.endedOnCr && text.length > 0) {
      this.endedOnCr = false;
      if (text.charCodeAt(0) === LF) text = text.slice(1);
    }
    return text;
  }
}

/**
 * Complete UTF-8 text (no character split at either end) decoded strictly: valid text as is, each invalid
 * byte escaped; `invalid` says whether one was. `ChunkText` decodes each read's complete part with it, and
 * a worker of the parallel read its segment's bytes, cut at a line end.
 */
export function decodeUtf8Strict(bytes: Uint8Array): { text: string; invalid: boolean } {
  const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (isUtf8(body)) return { text: body.toString('utf8'), invalid: false };
  return { text: escapeInvalid(body), invalid: true };
}

/** Bytes a UTF-8 sequence starting with `lead` takes (1 for anything that cannot start one). */
function sequenceLength(lead: number): number {
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 1;
}

/**
 * How many bytes of `bytes` to decode now: all of them, except a multi-byte character whose lead byte is
 * among the last three and whose continuation bytes have not all arrived yet.
 */
function completeLength(bytes: Buffer): number {
  const n = bytes.length;
  for (let back = 1; back <= 3 && back <= n; back++) {
    const b = bytes[n - back]!;
    if (b < 0x80) return n;
    if (b >= 0xc0) return sequenceLength(b) > back ? n - back : n;
  }
  return n;
}

/** Whether bytes[i…] starts a valid UTF-8 sequence of length `len` (overlongs, surrogates, > U+10FFFF refused). */
function validAt(bytes: Buffer, i: number, len: number): boolean {
  if (i + len > bytes.length) return false;
  const b0 = bytes[i]!;
  const b1 = bytes[i + 1]!;
  let lo = 0x80;
  let hi = 0xbf;
  if (b0 === 0xe0) lo = 0xa0;
  else if (b0 === 0xed) hi = 0x9f;
  else if (b0 === 0xf0) lo = 0x90;
  else if (b0 === 0xf4) hi = 0x8f;
  if (b1 < lo || b1 > hi) return false;
  for (let k = 2; k < len; k++) {
    const b = bytes[i + k]!;
    if (b < 0x80 || b > 0xbf) return false;
  }
  return true;
}

/** Decodes bytes known to hold invalid UTF-8: valid runs as UTF-8, each invalid byte as U+DC80–U+DCFF. */
function escapeInvalid(bytes: Buffer): string {
  let out = '';
  let start = 0;
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    const len = sequenceLength(b);
    if (len > 1 && validAt(bytes, i, len)) {
      i += len;
      continue;
    }
    out += bytes.toString('utf8', start, i) + String.fromCharCode(0xdc00 + b);
    i++;
    start = i;
  }
  return out + bytes.toString('utf8', start, bytes.length);
}
