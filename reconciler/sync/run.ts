/**
 * One sync of one source: read → normalise → prepare → stage against the snapshot → send what is new or
 * changed → advance the snapshot for acknowledged entries only.
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
import type { SnapshotStage, StagedRow, StateStore } from '../state/index.ts';
import { createConnector } from './connectors/index.ts';
import { toEntry, type EntryOptions } from './entries.ts';
import { normalize } from './normalize.ts';
import { changedFields, prepareRow, type Payload } from './prepare.ts';
import type { Connector, NormalizeContext } from './types.ts';

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
  done: number;
  total?: number;
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
  /** Entries handed to the client per send call (it packs them into size-limited batches). */
  sendChunk?: number;
  /** Rows per staging insert. */
  stageChunk?: number;
  /** Test hook: called after a chunk was acknowledged and before it is committed. */
  afterAcknowledge?: (keys: string[]) => Promise<void> | void;
}

const emptyCounts = (): SyncCounts => ({
  read: 0, rejected: 0, rejected_by_code: {}, new: 0, changed: 0, unchanged: 0, out_of_order: 0, duplicates: 0,
  null_blocked: {}, erased: {}, sent: 0, acknowledged: 0, refused: 0, unsent: 0,
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
  let stage: SnapshotStage | undefined;
  let error: string | undefined;
  let retryLater = 0;
  try {
    stage = await deps.store.openStage(name);
    await readAndStage(deps, source, ctx, fields, stage, counts, rejects, notes, lastSyncAt, opts);
    const sealed = await stage.seal({ detectRemoved: false });
    counts.new = sealed.new;
    counts.changed = sealed.changed;
    counts.unchanged = sealed.unchanged;
    counts.out_of_order = sealed.outOfOrder;
    counts.duplicates = sealed.duplicates;
    if (opts.mode === 'plan') {
      counts.changed_fields = await fieldChanges(deps.store, name, stage);
    } else {
      retryLater = await send(deps, source, stage, counts, rejects, opts, startedAt);
    }
  } catch (err) {
    error = redact(err instanceof Error ? err.message : String(err));
  } finally {
    await stage?.discard().catch(() => undefined);
    await rejects.close();
  }
  const failed = error !== undefined || counts.unsent > 0;
  if (counts.unsent > 0 && !error) error = `${counts.unsent} entries were not acknowledged; they will be sent again next run`;
  if (runId) {
    const finish = { status: failed ? ('failed' as const) : ('succeeded' as const), counts: flatCounts(counts), ...(error ? { error } : {}) };
    if (failed) {
      await deps.store.finishRun(runId, finish);
    } else {
      // Entries Customer.io refused for a transient reason are sent again next run; an incremental source
      // only returns them if its next read reaches back as far as this one did.
      const next = retryLater > 0 ? lastSyncAt : startedAt;
      if (retryLater > 0) {
        notes.add(`${retryLater} entries were refused for a transient reason; the next run reads again from ${lastSyncAt ? lastSyncAt.toISOString() : 'the start'} to send them`);
      }
      await deps.store.transaction(async (tx) => {
        await tx.setCursor(watermarkCursor(name), next ? next.toISOString() : '');
        await tx.finishRun(runId, finish);
      });
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

async function readAndStage(
  deps: SyncDeps,
  source: SourceSpec,
  ctx: NormalizeContext,
  fields: ReadonlyMap<string, FieldDef>,
  stage: SnapshotStage,
  counts: SyncCounts,
  rejects: RejectsFile,
  notes: Set<string>,
  lastSyncAt: Date | null,
  opts: SyncOptions,
): Promise<void> {
  // The source timezone is also the warehouse session's: a naive timestamp column then compares with
  // :last_sync_at (an instant) as the local time it is, not as UTC.
  const connector = deps.connector ?? createConnector(source.connector, source.timezone ? { timezone: source.timezone } : {});
  const chunk = opts.stageChunk ?? 5000;
  let batch: StagedRow[] = [];
  for await (const row of connector.read({ lastSyncAt, cwd: deps.cwd, env: deps.env, ...(opts.signal ? { signal: opts.signal } : {}) })) {
    counts.read++;
    const n = normalize(row, ctx);
    if (!n.ok) {
      counts.rejected++;
      bump(counts.rejected_by_code, n.code);
      rejects.write({ location: n.location, code: n.code, reason: n.reason, ...(n.column ? { column: n.column } : {}), ...(n.field ? { field: n.field } : {}) });
      continue;
    }
    for (const note of n.notes ?? []) notes.add(note);
    // Only a row with blanks needs what was sent before (a blocked blank keeps the previous value).
    const previous = n.blanks.length > 0 && source.records !== 'event' ? await previousPayload(deps.store, source.name, n.key) : undefined;
    const p = prepareRow(n, source, fields, previous);
    for (const f of p.nullBlocked) bump(counts.null_blocked, f);
    for (const f of p.erased) bump(counts.erased, f);
    batch.push({ key: p.key, hash: p.hash, ordering: p.ordering, payload: JSON.stringify({ ...p.payload, l: n.location }) });
    if (batch.length >= chunk) {
      await stage.add(batch);
      batch = [];
      opts.onProgress?.({ phase: 'reading', done: counts.read });
    }
  }
  if (batch.length) await stage.add(batch);
  opts.onProgress?.({ phase: 'reading', done: counts.read });
}

async function previousPayload(store: StateStore, source: string, key: string): Promise<Payload | undefined> {
  const entry = await store.getSnapshotEntry(source, key);
  return entry?.payload ? (JSON.parse(entry.payload) as Payload) : undefined;
}

/** Per-field change counts for a sync plan, comparing with what was last sent (a bounded sample). */
async function fieldChanges(store: StateStore, source: string, stage: SnapshotStage, limit = 50_000): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  let n = 0;
  for await (const row of stage.diff(['new', 'changed'])) {
    if (n++ >= limit) break;
    const next = JSON.parse(row.payload ?? '{}') as Payload;
    const previous = row.class === 'changed' ? await store.getSnapshotEntry(source, row.key) : undefined;
    const prev = previous?.payload ? (JSON.parse(previous.payload) as Payload) : undefined;
    for (const f of changedFields(prev, next)) bump(out, f);
  }
  return out;
}

async function send(
  deps: SyncDeps,
  source: SourceSpec,
  stage: SnapshotStage,
  counts: SyncCounts,
  rejects: RejectsFile,
  opts: SyncOptions,
  startedAt: Date,
): Promise<number> {
  const entryOpts: EntryOptions = {
    identifier: source.identity.as,
    ...(source.stamp_last_synced ? { stamp: { field: source.stamp_last_synced, at: Math.floor(startedAt.getTime() / 1000) } } : {}),
  };
  // Events are immutable and sent once: a "changed" event row is the same event id again.
  const classes = source.records === 'event' ? (['new'] as const) : (['new', 'changed'] as const);
  const total = source.records === 'event' ? counts.new : counts.new + counts.changed;
  const chunkSize = opts.sendChunk ?? 20_000;
  let keys: string[] = [];
  let entries: V2Entry[] = [];
  let locations: string[] = [];
  let retryLater = 0;
  let stopped = false;
  const flush = async (): Promise<boolean> => {
    if (entries.length === 0) return true;
    const summary = await deps.client.sendBatches(entries, opts.signal ? { signal: opts.signal } : {});
    counts.sent += entries.length;
    const acked: string[] = [];
    for (const r of summary.results) {
      if (r.ok) acked.push(keys[r.index]!);
      else if (r.reason === 'not_sent' || r.reason === 'unknown_outcome') stopped = true;
      else {
        counts.refused++;
        if (r.retryable) retryLater++;
        rejects.write({ location: locations[r.index]!, code: `customerio_${r.reason ?? 'rejected'}`, reason: redact(r.message ?? 'refused by Customer.io'), ...(r.field ? { field: r.field } : {}) });
      }
    }
    await opts.afterAcknowledge?.(acked);
    await stage.commit(acked);
    counts.acknowledged += acked.length;
    opts.onProgress?.({ phase: 'sending', done: counts.sent, total });
    keys = [];
    entries = [];
    locations = [];
    return !stopped;
  };
  try {
    for await (const row of stage.diff(classes)) {
      const payload = JSON.parse(row.payload!) as Payload & { l?: string };
      keys.push(row.key);
      locations.push(payload.l ?? row.key);
      entries.push(toEntry(row.key, payload, entryOpts));
      if (entries.length >= chunkSize && !(await flush())) break;
    }
    if (!stopped) await flush();
  } finally {
    // Everything meant to go out that was neither acknowledged nor refused: entries of unknown outcome,
    // and those never sent because sending stopped (or threw).
    counts.unsent = total - counts.acknowledged - counts.refused;
  }
  return retryLater;
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
