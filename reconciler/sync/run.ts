/**
 * One sync of one source: read → normalise → prepare → diff against the snapshot in memory → send what
 * is new or changed while the read goes on → advance the snapshot for acknowledged entries only.
 *
 * The snapshot's keys and hashes are loaded into memory (run-diff.ts), rows are read a chunk at a time,
 * and changed rows go out in batches with a few sends in flight, so a re-sync of a million rows is bound
 * by reading the source and a first sync by the API, not by the state store: only acknowledged rows are
 * written to it (an append to the session's ack log).
 *
 * Why a killed run loses nothing and duplicates nothing:
 * - the snapshot advances only after Customer.io acknowledged an entry, so anything unacknowledged is new
 *   or changed again next run and is re-sent;
 * - identify is idempotent (the same attributes again change nothing), and every event carries a
 *   deterministic id that Customer.io deduplicates, so a re-send after a lost answer is harmless;
 * - a chunk's outcome (acknowledgements, pending entries) is durable as soon as `record` resolves (see the
 *   state store's SnapshotAckSession).
 *
 * Why an entry Customer.io did not take is never lost, even when the next read no longer holds its row (a
 * file of deltas, an incremental query): refused for a transient reason, or never acknowledged, it is kept
 * as a pending entry, written in the same transaction as its batch's acknowledgements, and the next run
 * sends it unless a newer row of the same key supersedes it (see PendingBook in run-diff.ts).
 *
 * Rejected rows go to a file under the state folder for the person fixing the source, never to logs or
 * PR comments, which only ever carry counts and field names.
 */
import { createWriteStream, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Clock } from '../core/clock.ts';
import { redact } from '../core/redact.ts';
import type { CustomerioClient } from '../providers/customerio/client.ts';
import type { SpecModel } from '../spec/model.ts';
import type { FieldDef, SourceSpec } from '../spec/schema/index.ts';
import { StateConflictError, type SnapshotAckSession, type StateStore } from '../state/index.ts';
import { createConnector, mappedColumns, readBatches } from './connectors/index.ts';
import { createNormalizer } from './normalize.ts';
import { changedFields, readPayload, type Payload } from './prepare.ts';
import { HeapGovernor } from './memory.ts';
import { rejectThreshold } from './monitor.ts';
import { PendingBook, RunDiff } from './run-diff.ts';
import { chooseDiffPath, describeDiff, type DiffChoice, type DiffPathReport } from './warehouse-diff.ts';
import type { EntryOptions } from './entries.ts';
import { Sender, type SendCounts } from './sender.ts';
import { SnapshotIndexCache } from './snapshot-index-file.ts';
import { diffRows, SerialRows, type DiffRows } from './diff-rows.ts';
import type { SegmentPool } from './parallel/pool.ts';
import { parallelOptionsFromEnv, parallelRows, startWorkers, type ParallelOptions } from './parallel/read.ts';
import type { Connector, ConnectorContext, NormalizeContext } from './types.ts';

export interface SyncCounts extends SendCounts {
  read: number;
  rejected: number;
  rejected_by_code: Record<string, number>;
  new: number;
  changed: number;
  unchanged: number;
  out_of_order: number;
  duplicates: number;
  /** Per field: blanks that were kept from erasing a value (field not clearable). */
  null_blocked: Record<string, number>;
  /** Per field: blanks sent as erases (clearable fields). */
  erased: Record<string, number>;
  /**
   * Per field: updated_at companions that had a value but were held back, because their state field was a
   * blocked blank (or absent) in the same row. Not blanks, so not in `null_blocked`.
   */
  held_back: Record<string, number>;
  /** Per field: how many new or changed rows change it (sync plan only; capped sample). */
  changed_fields?: Record<string, number>;
  /** Entries whose outcome is unknown or that were not sent because sending stopped: kept, sent on the next run. */
  unsent: number;
  /** Rows read that were not newer than an entry an earlier run left waiting for their key (that entry went instead). */
  behind_pending: number;
  /** Entries waiting in the state for the source's next run once this run ended. */
  pending: number;
}

export interface SyncReport {
  format_version: 1;
  source: string;
  mode: 'plan' | 'run';
  run_id?: string;
  /** `partial`: everything was read and recorded, but entries wait for the next run (not a success). */
  status: 'succeeded' | 'partial' | 'failed' | 'planned';
  started_at: string;
  finished_at: string;
  last_sync_at: string | null;
  counts: SyncCounts;
  /** Where the rejected rows are (relative to the working directory), if any. */
  rejects_file?: string;
  /** Postgres sources: whether the diff ran in the warehouse, and the rows that crossed the wire (warehouse-diff.ts). */
  diff?: DiffPathReport;
  /**
   * A CSV file read in parallel: rows answered "unchanged" from their record's print without being
   * parsed (record-prints.ts), and prints learned for the next read.
   */
  prints?: { matched: number; learned: number };
  /** Every reason the run did not do everything, joined (also what the run's record keeps). */
  error?: string;
  /** The same reasons, one plain sentence each. */
  problems?: string[];
  notes: string[];
}

export interface SyncProgress {
  phase: 'reading' | 'sending';
  /** Rows read, or rows sent. */
  done: number;
  /** Share of the source read so far (0..1), when the connector knows its size (files). */
  fraction?: number;
}

export interface SyncDeps {
  model: SpecModel;
  store: StateStore;
  client: CustomerioClient;
  cwd: string;
  env: NodeJS.ProcessEnv;
  clock: Clock;
  /** Folder for rejects files and run reports (the state folder). */
  stateDir: string;
  /** Override the connector (tests). */
  connector?: Connector;
  /** Opens the rejects file's stream (tests inject a failing one); default: append to the file. */
  openRejectsStream?: (file: string) => Writable;
}

export interface SyncOptions {
  mode: 'plan' | 'run';
  onProgress?: (p: SyncProgress) => void;
  signal?: AbortSignal;
  /** Entries handed to the client per send call (it packs them into size-limited batches). Default 5000. */
  sendChunk?: number;
  /** Send calls in flight at once (default 4); the client's rate limiter still paces the requests. */
  maxInFlight?: number;
  /** Test hook: called after a chunk was acknowledged and before it is committed. */
  afterAcknowledge?: (keys: string[]) => Promise<void> | void;
  /** How a large CSV source is read in parallel (default: from the environment, see parallel/read.ts). */
  parallel?: ParallelOptions;
}

const emptyCounts = (): SyncCounts => ({
  read: 0, rejected: 0, rejected_by_code: {}, new: 0, changed: 0, unchanged: 0, out_of_order: 0, duplicates: 0,
  null_blocked: {}, held_back: {}, erased: {}, sent: 0, acknowledged: 0, attempted: 0, refused: 0, retry_later: 0, unsent: 0, retried: 0, behind_pending: 0,
  pending: 0,
});

const bump = (m: Record<string, number>, k: string, n = 1) => { m[k] = (m[k] ?? 0) + n; };

export async function syncSource(deps: SyncDeps, name: string, opts: SyncOptions): Promise<SyncReport> {
  const located = deps.model.sources.get(name);
  if (!located) throw new Error(`no source named "${name}" in the specs`);
  const source = located.spec;
  const fields = new Map<string, FieldDef>([...deps.model.fields].map(([k, v]) => [k, v.def]));
  const ws = deps.model.workspace!.spec;
  const ctx: NormalizeContext = { source, fields, normalization: ws.normalization, primary: ws.identity.primary };
  const startedAt = deps.clock.now();
  const counts = emptyCounts();
  const notes = new Set<string>();
  const lastSyncAt = await readWatermark(deps.store, name);
  const runId = opts.mode === 'run' ? await deps.store.startRun(name, { last_sync_at: lastSyncAt?.toISOString() ?? null }) : undefined;

  const rejects = new RejectsFile(
    path.join(deps.stateDir, 'rejects', name),
    `${opts.mode === 'run' ? runId : `plan-${startedAt.toISOString().replace(/[:.]/g, '-')}`}.ndjson`,
    deps.cwd,
    deps.openRejectsStream,
  );
  let acks: SnapshotAckSession | undefined;
  /** `acks` as the sender writes to it (index.track): closing this one lets the store trust what it saw. */
  let tracked: SnapshotAckSession | undefined;
  // The snapshot's index from its file beside the state when it is current (snapshot-index-file.ts).
  const index = new SnapshotIndexCache(deps.store, deps.stateDir, name);
  let sender: Sender | undefined;
  let book: PendingBook | undefined;
  let error: string | undefined;
  let readComplete = false;
  let workers: SegmentPool | undefined;
  let prints: SyncReport['prints'];
  let where: DiffChoice | undefined;
  try {
    // A run's session first: opening it applies what a killed earlier run acknowledged, so the index
    // loaded next is what Customer.io holds. A plan writes nothing and opens none.
    if (opts.mode === 'run') {
      acks = await deps.store.openAckSession(name);
      // Earlier runs still marked running lost their session just now: killed, or about to fail on it.
      const interrupted = await deps.store.interruptRuns(name, runId!, `superseded by run ${runId}: the process stopped before finishing, or a newer sync of the source started`);
      if (interrupted > 0) notes.add(`${interrupted} earlier run(s) of ${name} never finished (killed, or superseded); they are now marked interrupted`);
    }
    where = await chooseDiffPath({ deps, source, fields, ctx, mode: opts.mode, lastSyncAt });
    const warehouse = where.path === 'warehouse' ? where.session : undefined;
    const diff = warehouse?.diff ?? new RunDiff();
    const heap = new HeapGovernor();
    const pending = await deps.store.readPending(name);
    // The sender's and the workers' (which serialise the entries of the rows they read): one run time in both.
    const entryOptions: EntryOptions = {
      identifier: source.identity.as,
      ...(source.stamp_last_sent ? { stamp: { field: source.stamp_last_sent, at: Math.floor(startedAt.getTime() / 1000) } } : {}),
    };
    // A large CSV file's workers start now, while the index loads (parallel/read.ts).
    if (!warehouse && !deps.connector) {
      workers = await startWorkers(source, ctx, deps.cwd, { ...parallelOptionsFromEnv(deps.env), ...opts.parallel }, opts.mode === 'run' ? entryOptions : undefined);
    }
    // In the warehouse the index stays there: the diff looks up the keys of the rows that cross the wire.
    if (warehouse) await warehouse.start(pending.map((e) => e.key));
    else await index.load(diff, () => heap.check());
    // Entries earlier runs meant to send and Customer.io did not take: they go out this run, whatever it reads.
    book = new PendingBook(pending, (key) => diff.snapshotOrdering(key));
    if (opts.mode === 'run') {
      const onProgress = opts.onProgress;
      sender = new Sender({
        client: deps.client,
        acks: (tracked = index.track(acks!)),
        counts,
        rejects,
        book,
        entryOptions,
        signal: opts.signal,
        sendChunk: opts.sendChunk,
        maxInFlight: opts.maxInFlight,
        afterAcknowledge: opts.afterAcknowledge,
        ...(onProgress ? { onSent: (done: number) => onProgress({ phase: 'sending', done }) } : {}),
      });
    }
    const sample = opts.mode === 'plan' ? new FieldChangeSample(deps.store, name) : undefined;
    const input = { deps, source, ctx, fields, diff, heap, counts, rejects, notes, lastSyncAt, opts, sender, sample, book, workers };
    readComplete = warehouse ? await warehouse.read(input) : await readAndDiff(input);
    const c = diff.counts();
    counts.new = c.new;
    counts.changed = c.changed;
    counts.unchanged = c.unchanged;
    counts.out_of_order = c.outOfOrder;
    counts.duplicates = c.duplicates;
    if (sample) counts.changed_fields = await sample.count();
    if (sender) {
      await sender.finish();
      if (sender.failure) throw sender.failure;
      if (sender.stoppedEarly) readComplete = false;
    } else {
      counts.retried = book.waiting.size;
    }
    // After the sender finished: a row acknowledged with its print counts as learned.
    if (!warehouse && diff.printsRead) prints = { matched: diff.matchedPrints, learned: diff.learnedPrints };
    rejects.check();
  } catch (err) {
    error = redact(err instanceof Error ? err.message : String(err));
  } finally {
    // A read that failed midway may leave chunks on the wire: their acknowledgements still count.
    if (sender) {
      await sender.settle().catch(() => undefined);
      // Everything meant to go out that was neither acknowledged nor refused: entries of unknown outcome,
      // and those never sent because sending stopped (or threw). They wait in the state for the next run.
      counts.unsent = sender.meantToSend - counts.acknowledged - counts.refused - counts.retry_later;
      try {
        await sender.keepLeftovers();
      } catch (e) {
        error ??= redact(`could not keep the unsent entries for the next run: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    if (acks) counts.pending = await deps.store.countPending(name).catch(() => counts.retry_later + counts.unsent);
    // The index file is written beside the close's merge, named once the merge says which generation it is.
    index.writeAhead();
    await (tracked ?? acks)?.close().catch(() => undefined);
    await index.keep().catch(() => undefined);
    await rejects.close();
    if (where?.path === 'warehouse') await where.session.close();
    await workers?.close();
  }
  const diffPath = describeDiff(where, counts);
  if (diffPath.note) notes.add(diffPath.note);
  if (error === undefined && rejects.failure) error = rejects.failureMessage();

  // Each reason a run did not do everything, as one sentence; any of them makes the command exit 1.
  const problems: string[] = [];
  let failed = false;
  if (error !== undefined) {
    failed = true;
    // The root cause as it was raised (a read that stopped early names its line; a service error its status).
    problems.push(sentence(error));
  } else if (!readComplete && opts.mode === 'run') {
    failed = true;
    problems.push('The read stopped early because sending stopped; the rows after that point were not read.');
  }
  const threshold = rejectThreshold(source);
  const notDelivered = counts.rejected + counts.refused;
  if (opts.mode === 'run' && counts.read > 0 && counts.rejected === counts.read) {
    failed = true;
    problems.push(`Every one of the ${counts.read} rows read was rejected (see the rejects file); nothing could be sent.`);
  } else if (opts.mode === 'run' && counts.read > 0 && notDelivered / counts.read > threshold) {
    failed = true;
    problems.push(
      `${notDelivered} of ${counts.read} rows read (${pct(notDelivered / counts.read)}) were rejected or refused by Customer.io for good, over the source's max_rejected of ${pct(threshold)}.`,
    );
  }
  const waiting = counts.retry_later + counts.unsent;
  if (opts.mode === 'run' && waiting > 0) {
    problems.push(
      `${waiting} entries were refused by Customer.io for a transient reason or not acknowledged (${counts.retry_later} refused, ${counts.unsent} not acknowledged); they are kept in the state and sent on the next run.`,
    );
    if (sender?.stopCause) problems.push(`Sending stopped: ${redact(sender.stopCause).replace(/[.\s]+$/, '')}.`);
  }
  let status: SyncReport['status'] = opts.mode === 'plan' ? (error ? 'failed' : 'planned') : failed ? 'failed' : problems.length > 0 ? 'partial' : 'succeeded';
  const summary = problems.length > 0 ? problems.join(' ') : undefined;
  if (runId) {
    const finish = { status: status as 'succeeded' | 'partial' | 'failed', counts: flatCounts(counts), ...(summary ? { error: redact(summary) } : {}) };
    // The cursor moves only when the whole source was read and every row's outcome is recorded: acknowledged,
    // rejected, refused for good, or kept as pending (which guarantees its delivery, so a partial run moves it).
    // A failed run leaves it where it was, so an incremental read reaches back for what that run missed.
    try {
      await deps.store.transaction(async (tx) => {
        if (status !== 'failed') await tx.setCursor(watermarkCursor(name), startedAt.toISOString());
        await tx.finishRun(runId, finish);
      });
    } catch (e) {
      // A newer run of the source took over and marked this one interrupted: that mark, and its cursor, stand.
      if (!(e instanceof StateConflictError)) throw e;
      status = 'failed';
      problems.push(sentence(SUPERSEDED));
      notes.add(SUPERSEDED);
    }
  }
  const reportError = error ?? (problems.length > 0 ? problems.join(' ') : undefined);
  return {
    format_version: 1,
    source: name,
    mode: opts.mode,
    ...(runId ? { run_id: runId } : {}),
    status,
    started_at: startedAt.toISOString(),
    finished_at: deps.clock.now().toISOString(),
    last_sync_at: lastSyncAt?.toISOString() ?? null,
    counts,
    ...(rejects.count ? { rejects_file: path.relative(deps.cwd, rejects.file) } : {}),
    ...(diffPath.report ? { diff: diffPath.report } : {}),
    ...(prints ? { prints } : {}),
    ...(reportError ? { error: redact(reportError), problems: problems.map((p) => redact(p)) } : {}),
    notes: [...notes].sort(),
  };
}

/** A message as a sentence: capitalised, ending with a full stop. */
function sentence(text: string): string {
  const t = text.trim();
  const s = t.charAt(0).toUpperCase() + t.slice(1);
  return /[.!?]$/.test(s) ? s : `${s}.`;
}

const pct = (share: number) => `${Number((share * 100).toFixed(1))}%`;

const SUPERSEDED = 'a newer sync of this source started while this one ran, and marked this run interrupted';

/** The state cursor holding where the source's next incremental read starts (`''` = from the start). */
export function watermarkCursor(source: string): string {
  return `sync.${source}.last_sync_at`;
}

/**
 * What `:last_sync_at` is bound to: the start of the last run that read the whole source and recorded
 * every row's outcome (see the finish of `syncSource`). Before any run recorded the cursor, the last
 * success decides.
 */
async function readWatermark(store: StateStore, source: string): Promise<Date | null> {
  const held = await store.getCursor(watermarkCursor(source));
  if (held !== undefined) return held === '' ? null : new Date(held);
  const last = await store.lastSuccess(source);
  return last ? new Date(last.startedAt) : null;
}

/** What one read-and-diff pass works with: the run's parts, built by `syncSource`. */
interface ReadAndDiffInput {
  deps: SyncDeps;
  source: SourceSpec;
  ctx: NormalizeContext;
  fields: ReadonlyMap<string, FieldDef>;
  diff: RunDiff;
  heap: HeapGovernor;
  counts: SyncCounts;
  rejects: RejectsFile;
  notes: Set<string>;
  lastSyncAt: Date | null;
  opts: SyncOptions;
  /** Set on a run: changed rows go out while the read goes on. */
  sender: Sender | undefined;
  /** Set on a plan: the per-field change counts. */
  sample: FieldChangeSample | undefined;
  book: PendingBook;
  /** The parallel read's workers, started before the index loaded; undefined: the source is read on this thread. */
  workers: SegmentPool | undefined;
}

/**
 * Reads the source a chunk at a time, diffs each row (diff-rows.ts), and hands the rows to send to the
 * sender; false when sending stopped the read early. A large CSV file is read by workers on every core
 * (parallel/read.ts), anything else on this thread; the diff is the same either way.
 */
async function readAndDiff(input: ReadAndDiffInput): Promise<boolean> {
  const { deps, source, ctx, fields, diff, heap, counts, rejects, notes, lastSyncAt, opts, sender, sample, book, workers } = input;
  let fraction: number | undefined;
  const cctx = {
    lastSyncAt,
    columns: mappedColumns(source),
    cwd: deps.cwd,
    env: deps.env,
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.onProgress ? { onPosition: (done: number, total: number) => void (fraction = total > 0 ? Math.min(1, done / total) : undefined) } : {}),
  };
  const parallel = parallelRows(
    { source, ctx, fields, cctx, mostSent: opts.mode === 'run' && diff.snapshotSize === 0, prints: diff, options: { ...parallelOptionsFromEnv(deps.env), ...opts.parallel } },
    workers,
  );
  const chunks = parallel ?? serialRows(deps.connector, source, ctx, fields, cctx);
  const engine = { store: deps.store, source, diff, counts, rejects, notes, book, sender, sample };
  for await (const rows of chunks) {
    heap.check();
    await diffRows(rows, engine);
    opts.onProgress?.({ phase: 'reading', done: counts.read, ...(fraction !== undefined ? { fraction } : {}) });
    if (sender?.stopped) {
      sender.stoppedEarly = true;
      return false;
    }
    // A rejected row that could not be recorded must not pass unnoticed: stop reading.
    rejects.check();
  }
  return true;
}

/** The source read and normalised on this thread, a connector chunk at a time. */
async function* serialRows(override: Connector | undefined, source: SourceSpec, ctx: NormalizeContext, fields: ReadonlyMap<string, FieldDef>, cctx: ConnectorContext): AsyncGenerator<DiffRows> {
  // The source timezone is also the warehouse session's: a naive timestamp column compares with
  // :last_sync_at (an instant) as the local time it is, not as UTC.
  const connector = override ?? createConnector(source.connector, source.timezone ? { timezone: source.timezone } : {});
  const normalizeRow = createNormalizer(ctx);
  for await (const rows of readBatches(connector, cctx)) yield new SerialRows(rows.map(normalizeRow), source, fields);
}

/**
 * Per-field change counts for a sync plan, comparing with what was last sent: a bounded sample of the
 * new and changed rows, kept in memory while reading, their previous payloads read in one pass after.
 */
class FieldChangeSample {
  private readonly rows = new Map<number, { key: string; cls: 'new' | 'changed'; payload: Payload }>();

  constructor(
    private readonly store: StateStore,
    private readonly source: string,
    private readonly limit = 50_000,
  ) {}

  wants(slot: number): boolean {
    return this.rows.size < this.limit || this.rows.has(slot);
  }

  add(slot: number, key: string, cls: 'new' | 'changed', payload: Payload): void {
    if (!this.wants(slot)) return;
    this.rows.set(slot, { key, cls, payload });
  }

  withdraw(slot: number): void {
    this.rows.delete(slot);
  }

  async count(): Promise<Record<string, number>> {
    // One pass in key order, after the read: the lookups walk the payloads' B-tree forwards instead of
    // jumping about it. Fetching batches while the read went on (in the thread's idle moments) was measured
    // no faster (docs/BENCHMARKS.md, "Issue 15, the engine's thread").
    const changed: string[] = [];
    for (const r of this.rows.values()) if (r.cls === 'changed') changed.push(r.key);
    changed.sort();
    const previous = await this.store.getSnapshotPayloads(this.source, changed);
    const out: Record<string, number> = {};
    for (const r of this.rows.values()) {
      const before = r.cls === 'changed' ? previous.get(r.key) : undefined;
      for (const f of changedFields(before === undefined ? undefined : readPayload(before), r.payload)) bump(out, f);
    }
    return out;
  }
}

function flatCounts(c: SyncCounts): Record<string, number> {
  return {
    read: c.read, rejected: c.rejected, new: c.new, changed: c.changed, unchanged: c.unchanged, out_of_order: c.out_of_order,
    duplicates: c.duplicates, sent: c.sent, acknowledged: c.acknowledged, attempted: c.attempted, refused: c.refused, retry_later: c.retry_later,
    unsent: c.unsent, retried: c.retried, behind_pending: c.behind_pending, pending: c.pending,
    null_blocked: Object.values(c.null_blocked).reduce((a, b) => a + b, 0),
  };
}

/**
 * Rejected rows, one JSON object per line, created only when there is something to write. A write that
 * fails (no space left, a read-only or missing folder) is kept as `failure` instead of surfacing as an
 * unhandled 'error' event; the run checks it after each chunk and fails with a one-line message.
 */
class RejectsFile {
  count = 0;
  failure: NodeJS.ErrnoException | undefined;
  private stream: Writable | undefined;
  readonly file: string;
  constructor(
    private readonly dir: string,
    name: string,
    /** The folder is named relative to it in messages. */
    private readonly cwd: string,
    private readonly open: (file: string) => Writable = (file) => createWriteStream(file, { flags: 'a' }),
  ) {
    this.file = path.join(dir, name);
  }
  write(record: Record<string, unknown>): void {
    this.count++;
    if (this.failure) return;
    try {
      if (!this.stream) {
        mkdirSync(this.dir, { recursive: true });
        const s = this.open(this.file);
        s.on('error', (e: NodeJS.ErrnoException) => void (this.failure ??= e));
        this.stream = s;
      }
      this.stream.write(`${JSON.stringify(record)}\n`);
    } catch (e) {
      this.failure ??= e as NodeJS.ErrnoException;
    }
  }
  /** Throws the one-line failure once a write failed. */
  check(): void {
    if (this.failure) throw new Error(this.failureMessage());
  }
  failureMessage(): string {
    const e = this.failure;
    const folder = path.relative(this.cwd, this.dir) || '.';
    return `rejected rows could not be written to ${folder} (${e?.code ?? 'error'}): the run stopped, and the source's cursor stays where it was`;
  }
  async close(): Promise<void> {
    const s = this.stream;
    if (!s) return;
    if (this.failure) {
      s.destroy();
      return;
    }
    s.end();
    try {
      await finished(s);
    } catch (e) {
      this.failure ??= e as NodeJS.ErrnoException;
    }
  }
}
