/**
 * The work of one segment of a CSV file, as a worker does it: parse the segment's records (CsvParser,
 * `parseSegment`), make rows of them (CsvRows), normalise and prepare each row, and hand back what the
 * engine's diff needs in compact arrays. Pure: no I/O; the worker (worker.ts) only carries messages.
 *
 * The rows are prepared without a previous payload. A row with blanks whose key the snapshot holds is
 * prepared again on the engine's thread with that payload (diff-rows.ts), as the sequential read does.
 */
import type { FieldDef, SourceSpec, WorkspaceSpec } from '../../spec/schema/index.ts';
import { decodeUtf8Strict, hasInvalidBytes } from '../connectors/chunk-text.ts';
import { CsvParser, CsvRows, type CsvSegment, type CsvSegmentSpec } from '../connectors/csv.ts';
import { createNormalizer, createRecordHasher, type HashedRecord } from '../normalize.ts';
import { prepareRow, type Payload } from '../prepare.ts';
import type { SourceRow } from '../types.ts';

/** What every worker is started with: the source and what normalising its rows needs. */
export interface SegmentContext {
  source: SourceSpec;
  fields: [string, FieldDef][];
  normalization: WorkspaceSpec['normalization'];
  primary: 'id' | 'email';
}

export interface SegmentRequest {
  seq: number;
  csv: CsvSegmentSpec;
  segment: CsvSegment;
  /** Hand back each accepted row's payload (when most rows will be sent: a first run). */
  payloads: boolean;
}

/** Row kinds in `SegmentResult.kinds`. */
export const ACCEPTED = 0;
/** Accepted, with blank or absent fields: its payload depends on what was sent before. */
export const ACCEPTED_WITH_BLANKS = 1;
export const REJECTED = 2;

export interface SegmentResult {
  seq: number;
  count: number;
  kinds: Uint8Array;
  /** Per row (empty for a rejected row). */
  keys: string[];
  hashes: string[];
  /** NaN: no ordering. */
  orderings: Float64Array;
  lines: Int32Array;
  /** Where each record's text starts and ends in the segment's text (to prepare it again). */
  starts: Int32Array;
  ends: Int32Array;
  rejects: { index: number; location: string; code: string; reason: string; column?: string; field?: string }[];
  /** Only rows with something in one of the lists. */
  lists: { index: number; nullBlocked: string[]; heldBack: string[]; erased: string[] }[];
  notes: string[];
  /** When asked for: per row, the payload of an accepted row. */
  payloads?: (Payload | undefined)[];
  decoded: number;
  undecodable: number;
  /**
   * A segment given as bytes: whether they held invalid UTF-8, and their text when some character took
   * more than one byte. `starts`/`ends` count characters, so this thread needs that text to prepare a row
   * again; otherwise every byte is one character and the offsets are the bytes' own.
   */
  invalid?: boolean;
  text?: string;
}

/** A segment's text and whether it may hold escaped invalid bytes: bytes are decoded here, on the worker. */
export function segmentText(segment: CsvSegment): { text: string; mayHoldInvalid: boolean } {
  if (segment.text !== undefined) return { text: segment.text, mayHoldInvalid: segment.mayHoldInvalid };
  const { text, invalid } = decodeUtf8Strict(segment.bytes!);
  return { text, mayHoldInvalid: invalid };
}

/** Parses a segment into rows, calling `each` with every row and its record's span. */
export function segmentRows(csv: CsvSegmentSpec, segment: CsvSegment, each: (row: SourceRow, start: number, end: number, line: number) => void): CsvRows {
  const rows = new CsvRows(csv.header, csv.path);
  const { text, mayHoldInvalid } = segmentText(segment);
  const parser = new CsvParser(csv.delimiter, csv.maxRecord, (fields, line, bad, start, end) => {
    each(rows.row(fields, line, bad, mayHoldInvalid), start, end, line);
  });
  parser.parseSegment(text, segment.line);
  return rows;
}

/** A segment worker's state: the normaliser, compiled once per source (the fast lane once per header). */
export function createSegmentWorker(context: SegmentContext): (request: SegmentRequest) => SegmentResult {
  const fields = new Map(context.fields);
  const ctx = { source: context.source, fields, normalization: context.normalization, primary: context.primary };
  const normalize = createNormalizer(ctx);
  const source = context.source;
  let fastHeader: readonly string[] | undefined;
  let fast: ReturnType<typeof createRecordHasher>;
  const hashed: HashedRecord = { key: '', hash: '', ordering: null, blanks: false, nullBlocked: [], heldBack: [], erased: [], notes: undefined, payload: undefined };
  return (request) => {
    const { csv } = request;
    const { text, mayHoldInvalid } = segmentText(request.segment);
    const segment = { line: request.segment.line, mayHoldInvalid };
    if (fastHeader === undefined || fastHeader.join('\n') !== csv.header.join('\n')) {
      fastHeader = csv.header;
      fast = createRecordHasher(ctx, csv.header);
    }
    const width = csv.header.length;
    const rows = new CsvRows(csv.header, csv.path);
    const kinds: number[] = [];
    const keys: string[] = [];
    const hashes: string[] = [];
    const orderings: number[] = [];
    const lines: number[] = [];
    const starts: number[] = [];
    const ends: number[] = [];
    const rejects: SegmentResult['rejects'] = [];
    const lists: SegmentResult['lists'] = [];
    const notes = new Set<string>();
    const payloads = request.payloads ? ([] as (Payload | undefined)[]) : undefined;
    // Each row is finished before the next is parsed, so what it made dies young (no whole segment of
    // normalised rows kept alive across collections).
    const parser = new CsvParser(csv.delimiter, csv.maxRecord, (values, line, bad, start, end) => {
      const i = keys.length;
      lines.push(line);
      starts.push(start);
      ends.push(end);
      if (
        fast !== undefined &&
        !bad &&
        values.length === width &&
        !(segment.mayHoldInvalid && values.some(hasInvalidBytes)) &&
        fast(values, hashed, payloads !== undefined)
      ) {
        // The fast lane took it: a valid record (counted as CsvRows.row counts it), accepted.
        rows.decoded++;
        kinds.push(hashed.blanks ? ACCEPTED_WITH_BLANKS : ACCEPTED);
        keys.push(hashed.key);
        hashes.push(hashed.hash);
        orderings.push(hashed.ordering ?? Number.NaN);
        if (hashed.blanks) lists.push({ index: i, nullBlocked: hashed.nullBlocked, heldBack: hashed.heldBack, erased: hashed.erased });
        if (hashed.notes) for (const note of hashed.notes) notes.add(note);
        if (payloads) payloads.push(hashed.payload);
        return;
      }
      const n = normalize(rows.row(values, line, bad, segment.mayHoldInvalid));
      if (!n.ok) {
        kinds.push(REJECTED);
        keys.push('');
        hashes.push('');
        orderings.push(Number.NaN);
        rejects.push({ index: i, location: n.location, code: n.code, reason: n.reason, ...(n.column ? { column: n.column } : {}), ...(n.field ? { field: n.field } : {}) });
        if (payloads) payloads.push(undefined);
        return;
      }
      if (n.notes) for (const note of n.notes) notes.add(note);
      const p = prepareRow(n, source, fields, undefined);
      kinds.push(n.blanks.length > 0 || n.absent !== undefined ? ACCEPTED_WITH_BLANKS : ACCEPTED);
      keys.push(p.key);
      hashes.push(p.hash);
      orderings.push(p.ordering ?? Number.NaN);
      if (p.nullBlocked.length > 0 || p.heldBack.length > 0 || p.erased.length > 0) lists.push({ index: i, nullBlocked: p.nullBlocked, heldBack: p.heldBack, erased: p.erased });
      if (payloads) payloads.push(p.payload);
    });
    parser.parseSegment(text, segment.line);
    const out: SegmentResult = {
      seq: request.seq,
      count: keys.length,
      kinds: Uint8Array.from(kinds),
      keys,
      hashes,
      orderings: Float64Array.from(orderings),
      lines: Int32Array.from(lines),
      starts: Int32Array.from(starts),
      ends: Int32Array.from(ends),
      rejects,
      lists,
      notes: [...notes],
      decoded: rows.decoded,
      undecodable: rows.undecodable,
    };
    if (payloads) out.payloads = payloads;
    if (request.segment.bytes) {
      out.invalid = mayHoldInvalid;
      if (text.length !== request.segment.bytes.length) out.text = text;
    }
    return out;
  };
}
