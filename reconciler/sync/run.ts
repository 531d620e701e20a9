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
 * - acknowledgements are durable as soon as `commit` resolves (see the state store's SnapshotStage).
 *
 * Rejected rows go to a file under the state folder for the person fixing the source, never to logs or
 * PR comments, which only ever carry counts and field names.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import type { Clock } from '../core/clock.ts';
import { redact } from '../core/redact.ts';
import type { CustomerioClient } from '../providers/customerio/client.ts';
import type { V2Entry } from '../providers/customerio/types.ts';
import type { SpecModel } from '../spec/model.ts';
import type { FieldDef, SourceSpec } from '../spec/schema/index.ts';
import { StateConflictError, type SnapshotAckSession, type StagedRow, type StateStore } from '../state/index.ts';
import { createConnector, mappedColumns, readBatches } from './connectors/index.ts';
import { toEntry, type EntryOptions } from './entries.ts';
import { createNormalizer } from './normalize.ts';
import { changedFields, prepareRow, type Payload, type PreparedRow } from './prepare.ts';
import { HeapGovernor } from './memory.ts';
import { RunDiff } from './run-diff.ts';
import type { Connector, NormalizeContext, NormalizedRow } from './types.ts';

export interface SyncCounts {
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
  sent: number;
  acknowledged: number;
  /** Entries Customer.io refused (207); their rows are in the rejects file. */
  refused: number;
  /** Entries whose outcome is unknown or that were not sent because sending stopped. */
  unsent: number;
}

export interface SyncReport {
  format_version: 1;
  source: string;
  mode: 'plan' | 'run';
  run_id?: string;
  status: 'succeeded' | 'failed' | 'planned';
  started_at: string;
  finished_at: string;
  last_sync_at: string | null;
  counts: SyncCounts;
  /** Where the rejected rows are (relative to the working directory), if any. */
  rejects_file?: string;
  error?: string;
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
}

const emptyCounts = (): SyncCounts => ({
  read: 0, rejected: 0, rejected_by_code: {}, new: 0, changed: 0, unchanged: 0, out_of_order: 0, duplicates: 0,
  null_blocked: {}, held_back: {}, erased: {}, sent: 0, acknowledged: 0, refused: 0, unsent: 0,
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

  const rejects = new RejectsFile(path.join(deps.stateDir, 'rejects', name), `${opts.mode === 'run' ? runId : `plan-${startedAt.toISOString().replace(/[:.]/g, '-')}`}.ndjson`);
  let acks: SnapshotAckSession | undefined;
  let sender: Sender | undefined;
  let error: string | undefined;
  let retryLater = 0;
  try {
    // A run's session first: opening it applies what a killed earlier run acknowledged, so the index
    // loaded next is what Customer.io holds. A plan writes nothing and opens none.
    if (opts.mode === 'run') {
      acks = await deps.store.openAckSession(name);
      // Earlier runs still marked running lost their session just now: killed, or about to fail on it.
      const interrupted = await deps.store.interruptRuns(name, runId!, `superseded by run ${runId}: the process stopped before finishing, or a newer sync of the source started`);
      if (interrupted > 0) notes.add(`${interrupted} earlier run(s) of ${name} never finished (killed, or superseded); they are now marked interrupted`);
    }
    const diff = new RunDiff();
    const heap = new HeapGovernor();
    for await (const page of deps.store.readSnapshotIndex(name)) {
      for (const e of page) diff.load(e.key, e.hash, e.ordering);
      heap.check();
    }
    sender = opts.mode === 'run' ? new Sender(deps, source, acks!, counts, rejects, opts, startedAt) : undefined;
    const sample = opts.mode === 'plan' ? new FieldChangeSample() : undefined;
    await readAndDiff(deps, source, ctx, fields, diff, heap, counts, rejects, notes, lastSyncAt, opts, sender, sample);
    const c = diff.counts();
    counts.new = c.new;
    counts.changed = c.changed;
    counts.unchanged = c.unchanged;
    counts.out_of_order = c.outOfOrder;
    counts.duplicates = c.duplicates;
    if (sample) counts.changed_fields = await sample.count(deps.store, name);
    if (sender) {
      await sender.finish();
      retryLater = sender.retryLater;
      if (sender.failure) throw sender.failure;
      if (sender.stoppedEarly) notes.add('sending stopped, so the read stopped too: the counts cover the rows read until then');
    }
  } catch (err) {
    error = redact(err instanceof Error ? err.message : String(err));
  } finally {
    // A read that failed midway may leave chunks on the wire: their acknowledgements still count.
    if (sender) {
      await sender.settle().catch(() => undefined);
      // Everything meant to go out that was neither acknowledged nor refused: entries of unknown outcome,
      // and those never sent because sending stopped (or threw).
      counts.unsent = sender.meantToSend - counts.acknowledged - counts.refused;
    }
    await acks?.close().catch(() => undefined);
    await rejects.close();
  }
  let failed = error !== undefined || counts.unsent > 0;
  if (counts.unsent > 0 && !error) error = `${counts.unsent} entries were not acknowledged; they will be sent again next run`;
  if (runId) {
    const finish = { status: failed ? ('failed' as const) : ('succeeded' as const), counts: flatCounts(counts), ...(error ? { error } : {}) };
    // A failed run leaves the cursor where it was. Entries Customer.io refused for a transient reason
    // are sent again next run; an incremental source only returns them if its next read reaches back as
    // far as this one did.
    const next = retryLater > 0 ? lastSyncAt : startedAt;
    if (!failed && retryLater > 0) {
      notes.add(`${retryLater} entries were refused for a transient reason; the next run reads again from ${lastSyncAt ? lastSyncAt.toISOString() : 'the start'} to send them`);
    }
    try {
      await deps.store.transaction(async (tx) => {
        if (!failed) await tx.setCursor(watermarkCursor(name), next ? next.toISOString() : '');
        await tx.finishRun(runId, finish);
      });
    } catch (e) {
      // A newer run of the source took over and marked this one interrupted: that mark, and its cursor, stand.
      if (!(e instanceof StateConflictError)) throw e;
      failed = true;
      error ??= SUPERSEDED;
      notes.add(SUPERSEDED);
    }
  }
  return {
    format_version: 1,
    source: name,
    mode: opts.mode,
    ...(runId ? { run_id: runId } : {}),
    status: opts.mode === 'plan' ? (error ? 'failed' : 'planned') : failed ? 'failed' : 'succeeded',
    started_at: startedAt.toISOString(),
    finished_at: deps.clock.now().toISOString(),
    last_sync_at: lastSyncAt?.toISOString() ?? null,
    counts,
    ...(rejects.count ? { rejects_file: path.relative(deps.cwd, rejects.file) } : {}),
    ...(error ? { error } : {}),
    notes: [...notes].sort(),
  };
}

const SUPERSEDED = 'a newer sync of this source started while this one ran, and marked this run interrupted';

/** The state cursor holding where the source's next incremental read starts (`''` = from the start). */
export function watermarkCursor(source: string): string {
  return `sync.${source}.last_sync_at`;
}

/**
 * What `:last_sync_at` is bound to: the start of the last successful run, unless that run held it back
 * (see the finish of `syncSource`). Before any run recorded the cursor, the last success decides.
 */
async function readWatermark(store: StateStore, source: string): Promise<Date | null> {
  const held = await store.getCursor(watermarkCursor(source));
  if (held !== undefined) return held === '' ? null : new Date(held);
  const last = await store.lastSuccess(source);
  return last ? new Date(last.startedAt) : null;
}

async function readAndDiff(
  deps: SyncDeps,
  source: SourceSpec,
  ctx: NormalizeContext,
  fields: ReadonlyMap<string, FieldDef>,
  diff: RunDiff,
  heap: HeapGovernor,
  counts: SyncCounts,
  rejects: RejectsFile,
  notes: Set<string>,
  lastSyncAt: Date | null,
  opts: SyncOptions,
  sender: Sender | undefined,
  sample: FieldChangeSample | undefined,
): Promise<void> {
  // The source timezone is also the warehouse session's: a naive timestamp column compares with
  // :last_sync_at (an instant) as the local time it is, not as UTC.
  const connector = deps.connector ?? createConnector(source.connector, source.timezone ? { timezone: source.timezone } : {});
  const normalizeRow = createNormalizer(ctx);
  const events = source.records === 'event';
  let fraction: number | undefined;
  const cctx = {
    lastSyncAt,
    columns: mappedColumns(source),
    cwd: deps.cwd,
    env: deps.env,
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.onProgress ? { onPosition: (done: number, total: number) => void (fraction = total > 0 ? Math.min(1, done / total) : undefined) } : {}),
  };
  for await (const rows of readBatches(connector, cctx)) {
    heap.check();
    const ok: NormalizedRow[] = [];
    // Only rows with blanks need what was sent before (a blocked blank keeps the previous value), and
    // only when something was sent: one lookup for the whole chunk.
    const lookups: string[] = [];
    for (const row of rows) {
      counts.read++;
      const n = normalizeRow(row);
      if (!n.ok) {
        counts.rejected++;
        bump(counts.rejected_by_code, n.code);
        rejects.write({ location: n.location, code: n.code, reason: n.reason, ...(n.column ? { column: n.column } : {}), ...(n.field ? { field: n.field } : {}) });
        continue;
      }
      if (n.notes) for (const note of n.notes) notes.add(note);
      if ((n.blanks.length > 0 || n.absent !== undefined) && !events && diff.inSnapshot(n.key)) lookups.push(n.key);
      ok.push(n);
    }
    const previous = lookups.length > 0 ? await deps.store.getSnapshotPayloads(source.name, lookups) : undefined;
    for (const n of ok) {
      const before = previous?.get(n.key);
      const p = prepareRow(n, source, fields, before === undefined ? undefined : (JSON.parse(before) as Payload));
      for (const f of p.nullBlocked) bump(counts.null_blocked, f);
      for (const f of p.heldBack) bump(counts.held_back, f);
      for (const f of p.erased) bump(counts.erased, f);
      const offer = diff.offer(p.key, p.hash, p.ordering);
      if (offer.verdict === 'duplicate') continue;
      // Events are immutable and sent once: a "changed" event row is the same event id again.
      const wanted = offer.verdict === 'new' || (offer.verdict === 'changed' && !events);
      if (sender) {
        if (offer.displaced) sender.withdraw(offer.slot);
        if (wanted) await sender.add(offer.slot, p, n.location);
      } else if (sample) {
        if (offer.displaced) sample.withdraw(offer.slot);
        if (offer.verdict === 'new' || offer.verdict === 'changed') sample.add(offer.slot, p.key, offer.verdict, p.payload);
      }
    }
    opts.onProgress?.({ phase: 'reading', done: counts.read, ...(fraction !== undefined ? { fraction } : {}) });
    if (sender?.stopped) {
      sender.stoppedEarly = true;
      break;
    }
  }
}

/**
 * Per-field change counts for a sync plan, comparing with what was last sent: a bounded sample of the
 * new and changed rows, kept in memory while reading, their previous payloads read in one pass after.
 */
class FieldChangeSample {
  private readonly rows = new Map<number, { key: string; cls: 'new' | 'changed'; payload: Payload }>();
  constructor(private readonly limit = 50_000) {}

  add(slot: number, key: string, cls: 'new' | 'changed', payload: Payload): void {
    if (this.rows.size < this.limit || this.rows.has(slot)) this.rows.set(slot, { key, cls, payload });
  }

  withdraw(slot: number): void {
    this.rows.delete(slot);
  }

  async count(store: StateStore, source: string): Promise<Record<string, number>> {
    const changed = [...this.rows.values()].filter((r) => r.cls === 'changed').map((r) => r.key);
    const previous = await store.getSnapshotPayloads(source, changed);
    const out: Record<string, number> = {};
    for (const r of this.rows.values()) {
      const before = r.cls === 'changed' ? previous.get(r.key) : undefined;
      for (const f of changedFields(before === undefined ? undefined : (JSON.parse(before) as Payload), r.payload)) bump(out, f);
    }
    return out;
  }
}

interface Outgoing {
  slot: number;
  row: StagedRow;
  location: string;
  entry: V2Entry;
}

/**
 * Sends rows in chunks while the read goes on, with up to `maxInFlight` chunks in flight, and appends
 * each acknowledged row to the ack log. Once sending stops (a batch whose outcome is unknown, or that
 * could not be sent), nothing more is dispatched.
 *
 * A key read twice in one run (see run-diff.ts) is sent once when its earlier row is still waiting here
 * (the winner replaces it); when the earlier row is already on its way, the winner waits until every
 * chunk in flight has settled, so Customer.io receives the two in the order they were read.
 */
class Sender {
  meantToSend = 0;
  retryLater = 0;
  stopped = false;
  stoppedEarly = false;
  failure: unknown;
  private buffer = new Map<number, Outgoing>();
  /** Per run slot (see run-diff.ts): 1 once a row of the key went out. */
  private dispatched = new Uint8Array(1024);
  private readonly late: Outgoing[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private ackChain: Promise<void> = Promise.resolve();
  private readonly entryOpts: EntryOptions;
  private readonly chunk: number;
  private readonly maxInFlight: number;

  constructor(
    private readonly deps: SyncDeps,
    source: SourceSpec,
    private readonly acks: SnapshotAckSession,
    private readonly counts: SyncCounts,
    private readonly rejects: RejectsFile,
    private readonly opts: SyncOptions,
    startedAt: Date,
  ) {
    this.entryOpts = {
      identifier: source.identity.as,
      ...(source.stamp_last_synced ? { stamp: { field: source.stamp_last_synced, at: Math.floor(startedAt.getTime() / 1000) } } : {}),
    };
    this.chunk = opts.sendChunk ?? 5000;
    this.maxInFlight = opts.maxInFlight ?? 4;
  }

  async add(slot: number, p: PreparedRow, location: string): Promise<void> {
    this.meantToSend++;
    const out: Outgoing = {
      slot,
      location,
      row: { key: p.key, hash: p.hash, ordering: p.ordering, payload: JSON.stringify(p.payload) },
      entry: toEntry(p.key, p.payload, this.entryOpts),
    };
    if (slot < this.dispatched.length && this.dispatched[slot] === 1) {
      this.late.push(out);
      return;
    }
    this.buffer.set(slot, out);
    if (this.buffer.size >= this.chunk) await this.dispatch();
  }

  /** A later row of the same key won: the earlier one, if still waiting here, is not sent. */
  withdraw(slot: number): void {
    if (this.buffer.delete(slot)) this.meantToSend--;
    else {
      const i = this.late.findIndex((o) => o.slot === slot);
      if (i >= 0) {
        this.late.splice(i, 1);
        this.meantToSend--;
      }
    }
  }

  async finish(): Promise<void> {
    await this.dispatch();
    await this.drain();
    if (this.late.length > 0 && !this.stopped) {
      const late = this.late.splice(0);
      for (let i = 0; i < late.length && !this.stopped; i += this.chunk) {
        this.send(late.slice(i, i + this.chunk));
        await this.drain();
      }
    }
    await this.ackChain;
  }

  /** Waits for the chunks in flight and their acknowledgements, sending nothing more. */
  async settle(): Promise<void> {
    this.stopped = true;
    await this.drain();
    await this.ackChain;
  }

  private async dispatch(): Promise<void> {
    if (this.buffer.size === 0) return;
    const chunk = [...this.buffer.values()];
    this.buffer = new Map();
    if (this.stopped) return;
    while (this.inFlight.size >= this.maxInFlight) await Promise.race(this.inFlight);
    if (this.stopped) return;
    for (const o of chunk) this.markDispatched(o.slot);
    this.send(chunk);
  }

  private markDispatched(slot: number): void {
    if (slot >= this.dispatched.length) {
      const grown = new Uint8Array(Math.max(slot + 1, this.dispatched.length * 2));
      grown.set(this.dispatched);
      this.dispatched = grown;
    }
    this.dispatched[slot] = 1;
  }

  private async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.race(this.inFlight);
  }

  private send(chunk: Outgoing[]): void {
    const task = this.sendChunk(chunk).catch((err: unknown) => {
      this.failure ??= err;
      this.stopped = true;
    });
    const tracked = task.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  private async sendChunk(chunk: Outgoing[]): Promise<void> {
    const summary = await this.deps.client.sendBatches(
      chunk.map((o) => o.entry),
      this.opts.signal ? { signal: this.opts.signal } : {},
    );
    this.counts.sent += chunk.length;
    const acked: StagedRow[] = [];
    for (const r of summary.results) {
      const o = chunk[r.index]!;
      if (r.ok) acked.push(o.row);
      else if (r.reason === 'not_sent' || r.reason === 'unknown_outcome') this.stopped = true;
      else {
        this.counts.refused++;
        if (r.retryable) this.retryLater++;
        this.rejects.write({ location: o.location, code: `customerio_${r.reason ?? 'rejected'}`, reason: redact(r.message ?? 'refused by Customer.io'), ...(r.field ? { field: r.field } : {}) });
      }
    }
    // Appends go one after another: each is a transaction on the one state connection.
    const append = this.ackChain.then(async () => {
      await this.opts.afterAcknowledge?.(acked.map((a) => a.key));
      await this.acks.append(acked);
      this.counts.acknowledged += acked.length;
      this.opts.onProgress?.({ phase: 'sending', done: this.counts.sent });
    });
    this.ackChain = append.catch(() => undefined);
    await append;
  }
}

function flatCounts(c: SyncCounts): Record<string, number> {
  return {
    read: c.read, rejected: c.rejected, new: c.new, changed: c.changed, unchanged: c.unchanged, out_of_order: c.out_of_order,
    duplicates: c.duplicates, sent: c.sent, acknowledged: c.acknowledged, refused: c.refused, unsent: c.unsent,
    null_blocked: Object.values(c.null_blocked).reduce((a, b) => a + b, 0),
  };
}

/** Rejected rows, one JSON object per line, created only when there is something to write. */
class RejectsFile {
  count = 0;
  private stream: WriteStream | undefined;
  readonly file: string;
  constructor(private readonly dir: string, name: string) {
    this.file = path.join(dir, name);
  }
  write(record: Record<string, unknown>): void {
    if (!this.stream) {
      mkdirSync(this.dir, { recursive: true });
      this.stream = createWriteStream(this.file, { flags: 'a' });
    }
    this.count++;
    this.stream.write(`${JSON.stringify(record)}\n`);
  }
  async close(): Promise<void> {
    const s = this.stream;
    if (!s) return;
    await new Promise<void>((resolve) => s.end(resolve));
  }
}
