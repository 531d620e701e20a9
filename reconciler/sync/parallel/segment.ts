/**
 * The work of one segment of a CSV file, as a worker does it: parse the segment's records (CsvParser,
 * `parseSegment`), make rows of them (CsvRows), normalise and prepare each row, and hand back what the
 * engine's diff needs in compact arrays. Pure: no I/O; the worker (worker.ts) only carries messages.
 *
 * The rows are prepared without a previous payload. A row with blanks whose key the snapshot holds is
 * prepared again on the engine's thread with that payload (diff-rows.ts), as the sequential read does.
 */
import type { FieldDef, SourceSpec, WorkspaceSpec } from '../../spec/schema/index.ts';
import { CsvParser, CsvRows, type CsvSegment, type CsvSegmentSpec } from '../connectors/csv.ts';
import { createNormalizer } from '../normalize.ts';
import { prepareRow, type Payload } from '../prepare.ts';
import type { NormalizeResult, SourceRow } from '../types.ts';

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
}

/** Parses a segment into rows, calling `each` with every row and its record's span. */
export function segmentRows(csv: CsvSegmentSpec, segment: CsvSegment, each: (row: SourceRow, start: number, end: number, line: number) => void): CsvRows {
  const rows = new CsvRows(csv.header, csv.path);
  const parser = new CsvParser(csv.delimiter, csv.maxRecord, (fields, line, bad, start, end) => {
    each(rows.row(fields, line, bad, segment.mayHoldInvalid), start, end, line);
  });
  parser.parseSegment(segment.text, segment.line);
  return rows;
}

/** A segment worker's state: the normaliser, compiled once per source. */
export function createSegmentWorker(context: SegmentContext): (request: SegmentRequest) => SegmentResult {
  const fields = new Map(context.fields);
  const normalize = createNormalizer({ source: context.source, fields, normalization: context.normalization, primary: context.primary });
  const source = context.source;
  return (request) => {
    const results: NormalizeResult[] = [];
    const lines: number[] = [];
    const starts: number[] = [];
    const ends: number[] = [];
    const rows = segmentRows(request.csv, request.segment, (row, start, end, line) => {
      results.push(normalize(row));
      starts.push(start);
      ends.push(end);
      lines.push(line);
    });
    const count = results.length;
    const out: SegmentResult = {
      seq: request.seq,
      count,
      kinds: new Uint8Array(count),
      keys: new Array<string>(count),
      hashes: new Array<string>(count),
      orderings: new Float64Array(count),
      lines: Int32Array.from(lines),
      starts: Int32Array.from(starts),
      ends: Int32Array.from(ends),
      rejects: [],
      lists: [],
      notes: [],
      decoded: rows.decoded,
      undecodable: rows.undecodable,
    };
    const payloads = request.payloads ? new Array<Payload | undefined>(count) : undefined;
    const notes = new Set<string>();
    for (let i = 0; i < count; i++) {
      const n = results[i]!;
      if (!n.ok) {
        out.kinds[i] = REJECTED;
        out.keys[i] = '';
        out.hashes[i] = '';
        out.rejects.push({ index: i, location: n.location, code: n.code, reason: n.reason, ...(n.column ? { column: n.column } : {}), ...(n.field ? { field: n.field } : {}) });
        continue;
      }
      if (n.notes) for (const note of n.notes) notes.add(note);
      const p = prepareRow(n, source, fields, undefined);
      out.kinds[i] = n.blanks.length > 0 || n.absent !== undefined ? ACCEPTED_WITH_BLANKS : ACCEPTED;
      out.keys[i] = p.key;
      out.hashes[i] = p.hash;
      out.orderings[i] = p.ordering ?? Number.NaN;
      if (p.nullBlocked.length > 0 || p.heldBack.length > 0 || p.erased.length > 0) out.lists.push({ index: i, nullBlocked: p.nullBlocked, heldBack: p.heldBack, erased: p.erased });
      if (payloads) payloads[i] = p.payload;
    }
    out.notes = [...notes];
    if (payloads) out.payloads = payloads;
    return out;
  };
}
