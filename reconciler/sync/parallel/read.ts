/**
 * The parallel read of a CSV source (issue 15): this thread reads the file and finds its record
 * boundaries with the same parser the sequential read uses (csv.ts, segment mode), workers parse,
 * normalise, prepare and hash the segments (segment.ts), and the results come back here in source order as
 * `DiffRows`, for the engine's one diff (diff-rows.ts). So every order-dependent rule (latest ordering
 * wins, a later duplicate wins a tie, rejects numbered by source line and written in order) is applied
 * exactly as in the sequential read; only the per-row work moves.
 *
 * A row's payload is not carried back (cloning it costs this thread about what preparing it did): a row
 * that is sent or sampled is parsed and prepared again here from its record's text. When most rows are
 * sent (a first run), the workers are asked for the payloads instead; the share of rows prepared again is
 * watched to decide.
 *
 * Used for CSV files of at least `minBytes` (below that, starting the workers costs more than it saves),
 * with `workers` threads (default: the machine's available parallelism).
 */
import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { InternalError } from '../../core/diagnostics.ts';
import type { FieldDef, SourceSpec } from '../../spec/schema/index.ts';
import { checkDecoded, readCsvSegments, type CsvSegment, type CsvSegmentSpec } from '../connectors/csv.ts';
import type { DiffRows } from '../diff-rows.ts';
import { printContext } from '../record-prints.ts';
import type { RunDiff } from '../run-diff.ts';
import type { SerialisedEntry } from '../../providers/customerio/v2-batch.ts';
import type { EntryOptions } from '../entries.ts';
import { createNormalizer } from '../normalize.ts';
import { prepareRow, type Payload, type PreparedRow } from '../prepare.ts';
import type { ConnectorContext, NormalizeContext, RejectedRow, SourceRow } from '../types.ts';
import { SegmentPool } from './pool.ts';
import { workerCode, type WorkerCompiler } from './worker-code.ts';
import { ACCEPTED_WITH_BLANKS, packedEntry, REJECTED, segmentRows, type SegmentResult } from './segment.ts';

/** How the parallel read is chosen. */
export interface ParallelOptions {
  /** Worker threads; 0 or 1 reads sequentially. Default: `os.availableParallelism()`. */
  workers?: number;
  /** Files smaller than this are read sequentially. */
  minBytes?: number;
  /** Bytes per read of the file (tests: small, so a small file makes many segments). */
  readBytes?: number;
  /** How the workers' code is compiled (tests: one that fails, so the workers fall back to tsx). */
  compile?: WorkerCompiler;
}

/**
 * Files below this many bytes are read sequentially. Chosen when starting two workers took about 0.3 s
 * (each registered tsx), which a read of ~15 MB (150,000 rows of the benchmark's shape) won back. With the
 * workers' code compiled (worker-code.ts) a 5 MB file (50,000 rows) reads about as fast either way
 * (plan 1.5 s parallel against 1.8 s sequential, a plan of an empty snapshot 1.9 against 1.7 s), so the
 * threshold stays. See docs/BENCHMARKS.md, "Sync".
 */
export const DEFAULT_MIN_BYTES = 16 * 1024 * 1024;

/** Segments read ahead of the diff, per worker. */
const AHEAD_PER_WORKER = 3;

/** Share of rows prepared again on this thread above which the workers are asked for payloads. */
const PAYLOAD_SHARE = 0.05;

/** The options from the environment: `TIDEMARK_SYNC_WORKERS` (0 = sequential), `TIDEMARK_SYNC_PARALLEL_MIN_BYTES`. */
export function parallelOptionsFromEnv(env: NodeJS.ProcessEnv): ParallelOptions {
  const out: ParallelOptions = {};
  const workers = env.TIDEMARK_SYNC_WORKERS?.trim();
  if (workers && /^\d+$/.test(workers)) out.workers = Number(workers);
  const min = env.TIDEMARK_SYNC_PARALLEL_MIN_BYTES?.trim();
  if (min && /^\d+$/.test(min)) out.minBytes = Number(min);
  return out;
}

export interface ParallelReadInput {
  source: SourceSpec;
  ctx: NormalizeContext;
  fields: ReadonlyMap<string, FieldDef>;
  cctx: ConnectorContext;
  /** Whether most rows are expected to be sent (a run against an empty snapshot): payloads come back from the start. */
  mostSent: boolean;
  options: ParallelOptions;
  /** The run's diff, for its record prints: the loaded ones to match, and the context to make them under. */
  prints?: Pick<RunDiff, 'printShare' | 'usePrintsUnder'>;
}

/**
 * Starts the workers of a source that will be read in parallel, before the snapshot's index is loaded, so
 * their start (compiling their code once, ~0.1 s, then evaluating it in each thread) overlaps that load. Undefined when
 * the source is read sequentially. The caller closes it (closing twice is harmless).
 */
export async function startWorkers(source: SourceSpec, ctx: NormalizeContext, cwd: string, options: ParallelOptions, entryOptions?: EntryOptions): Promise<SegmentPool | undefined> {
  if (source.connector.type !== 'csv') return undefined;
  const workers = options.workers ?? availableParallelism();
  if (workers < 2) return undefined;
  let size: number;
  try {
    size = (await stat(path.resolve(cwd, source.connector.path))).size;
  } catch {
    // The sequential read reports a missing file the way it always has.
    return undefined;
  }
  if (size < (options.minBytes ?? DEFAULT_MIN_BYTES)) return undefined;
  return new SegmentPool(
    workers,
    { source: ctx.source, fields: [...ctx.fields], normalization: ctx.normalization, primary: ctx.primary, ...(entryOptions ? { entryOptions } : {}) },
    workerCode(options.compile),
  );
}

/** The parallel read's chunks on started workers (`startWorkers`), or undefined when there are none. */
export function parallelRows(input: ParallelReadInput, pool: SegmentPool | undefined): AsyncGenerator<DiffRows> | undefined {
  const { source } = input;
  if (pool === undefined || source.connector.type !== 'csv') return undefined;
  return readParallel(input, pool, source.connector);
}

async function* readParallel(input: ParallelReadInput, pool: SegmentPool, spec: Extract<SourceSpec['connector'], { type: 'csv' }>): AsyncGenerator<DiffRows> {
  const { ctx } = input;
  const workers = pool.size;
  const share = input.prints?.printShare();
  if (share) pool.sharePrints(share);
  /** Whether the loaded prints were made under this read's context (known once the header is). */
  let matching: boolean | undefined;
  const printMode = (spec: CsvSegmentSpec): 'match' | 'learn' | 'off' => {
    if (!input.prints) return 'off';
    matching ??= input.prints.usePrintsUnder(
      printContext({ source: ctx.source, fields: [...ctx.fields], normalization: ctx.normalization, primary: ctx.primary, header: spec.header, delimiter: spec.delimiter, maxRecord: spec.maxRecord }, process.versions),
    );
    // A first run sends nearly every row, whose payloads come from the workers: nothing to match, but
    // each row sent carries its print, kept once acknowledged.
    if (wantPayloads) return 'learn';
    return matching && share ? 'match' : 'learn';
  };
  const again = new Reprepare(input);
  let wantPayloads = input.mostSent;
  const queue: { rows: Promise<SegmentResult>; segment: CsvSegment; csv: CsvSegmentSpec }[] = [];
  const decodedCount = { decoded: 0, undecodable: 0 };
  let seq = 0;
  let csv: CsvSegmentSpec | undefined;
  const take = async (): Promise<ParallelRows> => {
    const next = queue.shift()!;
    const result = await next.rows;
    decodedCount.decoded += result.decoded;
    decodedCount.undecodable += result.undecodable;
    return new ParallelRows(result, next.segment, next.csv, again);
  };
  // Once the diff asked for payloads of most of a chunk's rows, the next segments bring them along.
  const observe = (rows: ParallelRows) => {
    if (rows.count > 0) wantPayloads = rows.prepared / rows.count > PAYLOAD_SHARE || (wantPayloads && rows.fromWorker / rows.count > PAYLOAD_SHARE);
  };
  let failure: unknown;
  try {
    try {
      for await (const read of readCsvSegments(spec, input.options.readBytes ? { readBytes: input.options.readBytes } : {}, input.cctx)) {
        csv = read.spec;
        for (const segment of read.segments) {
          queue.push({ rows: pool.run({ seq: seq++, csv, segment, payloads: wantPayloads, prints: printMode(csv) }), segment, csv });
          // Handled only after the diff is done with it, so a rejected promise is never left unobserved.
          queue.at(-1)!.rows.catch(() => undefined);
        }
        while (queue.length > workers * AHEAD_PER_WORKER) {
          const rows = await take();
          yield rows;
          observe(rows);
        }
      }
    } catch (e) {
      // The read failed (a stop, an unreadable file): the rows before the failure are diffed first, as
      // the sequential read delivers them before it fails.
      failure = e;
    }
    while (queue.length > 0) {
      const rows = await take();
      yield rows;
      observe(rows);
    }
    if (failure !== undefined) throw failure;
    if (csv) checkDecoded(decodedCount, csv.path);
  } finally {
    await pool.close();
  }
}

/** Prepares a row again on this thread from its record's text, exactly as the worker did (plus a previous payload). */
class Reprepare {
  private readonly normalize: ReturnType<typeof createNormalizer>;

  constructor(private readonly input: ParallelReadInput) {
    this.normalize = createNormalizer(input.ctx);
  }

  prepare(csv: CsvSegmentSpec, record: CsvSegment, line: number, previous: Payload | undefined): PreparedRow {
    let row: SourceRow | undefined;
    segmentRows(csv, record, (r) => (row ??= r));
    const n = row ? this.normalize(row) : undefined;
    if (!n?.ok) throw new InternalError(`the record at ${csv.path}:${line} did not read again as the worker read it`);
    return prepareRow(n, this.input.source, this.input.fields, previous);
  }
}

const NONE: readonly string[] = [];

/**
 * A row a worker prepared, as the texts it made: the payload object only when something asks for it (a
 * plan's sample); a run sends the texts as they are. A class, so a million of them share one shape.
 */
class GivenRow implements PreparedRow {
  readonly key: string;
  readonly hash: string;
  readonly ordering: number | null;
  readonly nullBlocked: string[];
  readonly heldBack: string[];
  readonly erased: string[];
  private parsed: Payload | undefined;

  constructor(
    light: Pick<PreparedRow, 'key' | 'hash' | 'ordering' | 'nullBlocked' | 'heldBack' | 'erased'>,
    readonly payloadJson: string,
    readonly entry: SerialisedEntry | undefined,
  ) {
    this.key = light.key;
    this.hash = light.hash;
    this.ordering = light.ordering;
    this.nullBlocked = light.nullBlocked;
    this.heldBack = light.heldBack;
    this.erased = light.erased;
  }

  get payload(): Payload {
    return (this.parsed ??= JSON.parse(this.payloadJson) as Payload);
  }
}

/** One segment's rows as the workers prepared them. */
class ParallelRows implements DiffRows {
  /** Rows whose payload was prepared again on this thread, and rows whose payload the worker gave. */
  prepared = 0;
  fromWorker = 0;
  private readonly lists = new Map<number, SegmentResult['lists'][number]>();
  private readonly rejects = new Map<number, SegmentResult['rejects'][number]>();

  constructor(
    private readonly r: SegmentResult,
    private readonly segment: CsvSegment,
    private readonly csv: CsvSegmentSpec,
    private readonly again: Reprepare,
  ) {
    for (const l of r.lists) this.lists.set(l.index, l);
    for (const j of r.rejects) this.rejects.set(j.index, j);
  }

  get size(): number {
    return this.r.count;
  }

  get count(): number {
    return this.r.count;
  }

  rejected(i: number): RejectedRow | undefined {
    if (this.r.kinds[i] !== REJECTED) return undefined;
    const j = this.rejects.get(i)!;
    const out: RejectedRow = { ok: false, location: j.location, code: j.code, reason: j.reason };
    if (j.column !== undefined) out.column = j.column;
    if (j.field !== undefined) out.field = j.field;
    return out;
  }

  key(i: number): string {
    return this.r.keys[this.r.refs[i]!]!;
  }

  hit(i: number): number {
    return this.r.slots ? this.r.slots[i]! : -1;
  }

  get prints(): Uint32Array | undefined {
    return this.r.prints;
  }

  hasBlanks(i: number): boolean {
    return this.r.kinds[i] === ACCEPTED_WITH_BLANKS;
  }

  light(i: number): Pick<PreparedRow, 'key' | 'hash' | 'ordering' | 'nullBlocked' | 'heldBack' | 'erased'> {
    const o = this.r.orderings[i]!;
    const l = this.lists.get(i);
    const ref = this.r.refs[i]!;
    return {
      key: this.r.keys[ref]!,
      hash: this.r.hashes[ref]!,
      ordering: Number.isNaN(o) ? null : o,
      nullBlocked: (l?.nullBlocked ?? NONE) as string[],
      heldBack: (l?.heldBack ?? NONE) as string[],
      erased: (l?.erased ?? NONE) as string[],
    };
  }

  prepare(i: number, previous: Payload | undefined): PreparedRow {
    const ref = this.r.refs[i]!;
    const given = previous === undefined ? this.r.payloads?.[ref] : undefined;
    if (given !== undefined) {
      this.fromWorker++;
      return new GivenRow(this.light(i), given, this.r.entries ? packedEntry(this.r.entries, ref) : undefined);
    }
    this.prepared++;
    return this.again.prepare(this.csv, this.record(i), this.r.lines[i]!, previous);
  }

  /** Row i's record alone, as a segment of its own (bytes are decoded, and checked, by `segmentRows`). */
  private record(i: number): CsvSegment {
    const [start, end, line] = [this.r.starts[i]!, this.r.ends[i]!, this.r.lines[i]!];
    const { text } = this.segment;
    // Moved to the worker and back (SegmentPool.run), or copied there and still here.
    const bytes = this.r.bytes ?? this.segment.bytes;
    if (text !== undefined) return { text: text.slice(start, end), line, mayHoldInvalid: this.segment.mayHoldInvalid };
    // Bytes: the worker's text when a character took more than one byte (its offsets count characters),
    // else the bytes' own offsets are the characters'.
    if (this.r.text !== undefined) return { text: this.r.text.slice(start, end), line, mayHoldInvalid: this.r.invalid === true };
    return { bytes: bytes!.subarray(start, end), line, mayHoldInvalid: false };
  }

  location(i: number): string {
    return `${this.csv.path}:${this.r.lines[i]!}`;
  }

  notes(): Iterable<string> {
    return this.r.notes;
  }
}
