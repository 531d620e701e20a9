/**
 * The text side of the line-oriented file parsers (CSV, NDJSON), shared so they cannot drift apart: UTF-8
 * decoding across chunk boundaries, the byte-order mark at the very start, and a CRLF whose CR ended the
 * previous chunk. Pure: no I/O.
 */
import { StringDecoder } from 'node:string_decoder';

export const CR = 0x0d;
export const LF = 0x0a;
const BOM = 0xfeff;

export class ChunkText {
  private readonly decoder = new StringDecoder('utf8');
  private atStart = true;
  /**
   * Set by the parser when a chunk ended with a CR that ended a line: an LF opening the next chunk
   * belongs to it and is dropped.
   */
  endedOnCr = false;

  /** The next chunk as text ready to split (bytes are UTF-8; a character split between chunks is fine). */
  next(chunk: Uint8Array | string): string {
    return this.clean(typeof chunk === 'string' ? chunk : this.decoder.write(chunk));
  }

  /** Whatever the decoder still holds at the end of the input. */
  end(): string {
    return this.clean(this.decoder.end());
  }

  private clean(chunk: string): string {
    let text = chunk;
    if (text.length === 0) return text;
    if (this.atStart) {
      this.atStart = false;
      if (text.charCodeAt(0) === BOM) text = text.slice(1);
    }
    if (this.endedOnCr && text.length > 0) {
      this.endedOnCr = false;
      if (text.charCodeAt(0) === LF) text = text.slice(1);
    }
    return text;
  }
}
