/**
 * The one implementation of `StateStore`, written once against `SqlDriver`; the backends differ only in
 * their driver and their lock manager.
 */
import type { Clock } from '../core/clock.ts';
import { InternalError } from '../core/diagnostics.ts';
import { redact } from '../core/redact.ts';
import { StateConflictError, StateNotFoundError } from './errors.ts';
import { newId } from './ids.ts';
import type { LockManager } from './locks.ts';
import { readAppliedMigrations } from './migrations/migrate.ts';
import * as snapshot from './snapshot.ts';
import { PostgresFingerprints, type FingerprintStore } from './fingerprints.ts';
import { PostgresDriver } from './sql/postgres-driver.ts';
import * as audiences from './audiences.ts';
import * as surveys from './surveys.ts';
import * as sends from './survey-sends.ts';
import * as surveyLift from './survey-lift.ts';
import * as responses from './survey-responses.ts';
import * as reviewed from './reviewed-plans.ts';
import type { SqlDriver } from './sql/executor.ts';
import type {
  ApplyChangeRecord,
  ApplyChangeStatus,
  ApplyRecord,
  ApplyRunStatus,
  ApplyRunSummary,
  BeginApplyInput,
  ChangeOutcome,
  FinishRunInput,
  Lock,
  LockInfo,
  LockOptions,
  LockRequest,
  ManagedObject,
  ManagedObjectInput,
  PendingEntry,
  SnapshotAckSession,
  SnapshotEntry,
  SnapshotIndexEntry,
  StateBackend,
  StateDescription,
  StateOps,
  StateStore,
  SyncRun,
  SyncRunStatus,
  AudienceStore,
  SurveyStore,
  SurveyResponseStore,
  ReviewedPlanStore,
} from './types.ts';

interface ManagedRow {
  address: string;
  kind: string;
  remote_id: string;
  attributes: string;
  prevent_destroy: number;
  spec_digest: string | null;
  updated_at: string;
}

interface ApplyRunRow {
  run_id: string;
  status: ApplyRunStatus;
  who: string;
  plan_digest: string | null;
  started_at: string;
  finished_at: string | null;
  error: string | null;
}

interface ApplyChangeRow {
  address: string;
  ordinal: number;
  action: string;
  status: ApplyChangeStatus;
  remote_id: string | null;
  error: string | null;
  updated_at: string;
}

interface SyncRunRow {
  run_id: string;
  source: string;
  status: SyncRunStatus;
  meta: string;
  counts: string;
  error: string | null;
  started_at: string;
  finished_at: string | null;
}

const MANAGED_COLUMNS = 'address, kind, remote_id, attributes, prevent_destroy, spec_digest, updated_at';
const APPLY_RUN_COLUMNS = 'run_id, status, who, plan_digest, started_at, finished_at, error';
const SYNC_RUN_COLUMNS = 'run_id, source, status, meta, counts, error, started_at, finished_at';

const CHANGE_STATUSES: readonly ApplyChangeStatus[] = ['pending', 'applied', 'failed', 'skipped'];
const FINAL_APPLY_STATUSES: readonly ApplyRunStatus[] = ['succeeded', 'failed', 'interrupted'];
const FINAL_SYNC_STATUSES: readonly SyncRunStatus[] = ['succeeded', 'partial', 'failed', 'interrupted'];

function toManaged(r: ManagedRow): ManagedObject {
  const obj: ManagedObject = {
    address: r.address,
    kind: r.kind,
    remoteId: r.remote_id,
    attributes: JSON.parse(r.attributes) as unknown,
    preventDestroy: r.prevent_destroy === 1,
    updatedAt: r.updated_at,
  };
  if (r.spec_digest !== null) obj.specDigest = r.spec_digest;
  return obj;
}

function toApplySummary(r: ApplyRunRow): ApplyRunSummary {
  const s: ApplyRunSummary = { id: r.run_id, status: r.status, who: r.who, startedAt: r.started_at };
  if (r.plan_digest !== null) s.planDigest = r.plan_digest;
  if (r.finished_at !== null) s.finishedAt = r.finished_at;
  if (r.error !== null) s.error = r.error;
  return s;
}

function toChange(r: ApplyChangeRow): ApplyChangeRecord {
  const c: ApplyChangeRecord = { address: r.address, action: r.action, status: r.status, position: r.ordinal, updatedAt: r.updated_at };
  if (r.remote_id !== null) c.remoteId = r.remote_id;
  if (r.error !== null) c.error = r.error;
  return c;
}

function toSyncRun(r: SyncRunRow): SyncRun {
  const run: SyncRun = {
    id: r.run_id,
    source: r.source,
    status: r.status,
    startedAt: r.started_at,
    meta: JSON.parse(r.meta) as Record<string, unknown>,
    counts: JSON.parse(r.counts) as Record<string, number>,
  };
  if (r.finished_at !== null) run.finishedAt = r.finished_at;
  if (r.error !== null) run.error = r.error;
  return run;
}

function requireText(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new InternalError(`${what} must be a non-empty string`);
  return value;
}

/** Plain code-unit order: the same on every backend and locale. */
const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export interface SqlStateStoreConfig {
  backend: StateBackend;
  env: string;
  location: string;
  clock: Clock;
  db: SqlDriver;
  locks: LockManager;
}

export class SqlStateStore implements StateStore {
  readonly backend: StateBackend;
  readonly env: string;
  readonly location: string;
  private readonly clock: Clock;
  private readonly db: SqlDriver;
  private readonly locks: LockManager;
  private closed = false;

  constructor(cfg: SqlStateStoreConfig) {
    this.backend = cfg.backend;
    this.env = cfg.env;
    this.location = cfg.location;
    this.clock = cfg.clock;
    this.db = cfg.db;
    this.locks = cfg.locks;
  }

  private now(): string {
    return this.clock.now().toISOString();
  }

  private get snapshotContext() {
    return { db: this.db, env: this.env, clock: this.clock };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.locks.releaseAll();
    } finally {
      await this.db.close();
    }
  }

  async describe(): Promise<StateDescription> {
    const migrations = await readAppliedMigrations(this.db);
    return {
      backend: this.backend,
      env: this.env,
      location: this.location,
      schemaVersion: migrations.at(-1)?.version ?? 0,
      migrations,
    };
  }

  transaction<T>(fn: (tx: StateOps) => Promise<T>): Promise<T> {
    // The driver's transaction is ambient: the store's own methods, called from `fn`, join it.
    return this.db.transaction(() => fn(this));
  }

  // ----- managed objects

  async listManaged(): Promise<ManagedObject[]> {
    const rows = await this.db.all<ManagedRow>(`SELECT ${MANAGED_COLUMNS} FROM managed_objects WHERE env = $1`, [this.env]);
    return rows.map(toManaged).sort((a, b) => byText(a.address, b.address));
  }

  async getManaged(address: string): Promise<ManagedObject | undefined> {
    const row = await this.db.get<ManagedRow>(`SELECT ${MANAGED_COLUMNS} FROM managed_objects WHERE env = $1 AND address = $2`, [
      this.env,
      address,
    ]);
    return row ? toManaged(row) : undefined;
  }

  async putManaged(obj: ManagedObjectInput): Promise<void> {
    requireText(obj.address, 'managed object address');
    requireText(obj.kind, 'managed object kind');
    requireText(obj.remoteId, `remote id of ${obj.address}`);
    const attributes = JSON.stringify(obj.attributes ?? null);
    try {
      await this.db.transaction(async () => {
        const other = await this.db.get<{ address: string }>(
          'SELECT address FROM managed_objects WHERE env = $1 AND kind = $2 AND remote_id = $3 AND address <> $4',
          [this.env, obj.kind, obj.remoteId, obj.address],
        );
        if (other) throw this.remoteTaken(obj, other.address);
        await this.db.run(
          `INSERT INTO managed_objects (env, ${MANAGED_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (env, address) DO UPDATE SET kind = excluded.kind, remote_id = excluded.remote_id,
             attributes = excluded.attributes, prevent_destroy = excluded.prevent_destroy,
             spec_digest = excluded.spec_digest, updated_at = excluded.updated_at`,
          [this.env, obj.address, obj.kind, obj.remoteId, attributes, obj.preventDestroy ? 1 : 0, obj.specDigest ?? null, this.now()],
        );
      });
    } catch (e) {
      // Another process won a race for the same remote object between our check and our write.
      if (this.db.isUniqueViolation(e)) throw this.remoteTaken(obj, 'another address', e);
      throw e;
    }
  }

  private remoteTaken(obj: ManagedObjectInput, other: string, cause?: unknown): StateConflictError {
    return new StateConflictError(
      `${obj.kind} ${obj.remoteId} is already managed as ${other}; one remote object cannot be managed by two addresses (${obj.address}).`,
      { cause },
    );
  }

  async deleteManaged(address: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM managed_objects WHERE env = $1 AND address = $2', [this.env, address])) > 0;
  }

  async moveManaged(from: string, to: string): Promise<void> {
    requireText(to, 'target address');
    if (from === to) throw new StateConflictError(`cannot move ${from} onto itself`);
    await this.db.transaction(async () => {
      if (!(await this.getManaged(from))) throw new StateNotFoundError(`${from} is not managed in ${this.env}; nothing to move.`);
      if (await this.getManaged(to)) throw new StateConflictError(`${to} is already managed in ${this.env}; move or forget it first.`);
      await this.db.run('UPDATE managed_objects SET address = $3, updated_at = $4 WHERE env = $1 AND address = $2', [
        this.env,
        from,
        to,
        this.now(),
      ]);
    });
  }

  // ----- apply journal

  async beginApply(input: BeginApplyInput): Promise<string> {
    requireText(input.who, 'apply who');
    const seen = new Set<string>();
    for (const c of input.changes) {
      requireText(c.address, 'change address');
      requireText(c.action, `action of ${c.address}`);
      if (seen.has(c.address)) throw new InternalError(`apply lists ${c.address} twice`);
      seen.add(c.address);
    }
    const id = newId(this.clock);
    const at = this.now();
    await this.db.transaction(async () => {
      await this.db.run(`INSERT INTO apply_runs (env, ${APPLY_RUN_COLUMNS}) VALUES ($1, $2, 'running', $3, $4, $5, NULL, NULL)`, [
        this.env,
        id,
        input.who,
        input.planDigest ?? null,
        at,
      ]);
      let ordinal = 0;
      for (const c of input.changes) {
        await this.db.run(
          `INSERT INTO apply_changes (env, run_id, address, ordinal, action, status, remote_id, error, updated_at)
           VALUES ($1, $2, $3, $4, $5, 'planned', NULL, NULL, $6)`,
          [this.env, id, c.address, ordinal++, c.action, at],
        );
      }
    });
    return id;
  }

  private async runningApply(runId: string): Promise<void> {
    const run = await this.db.get<{ status: ApplyRunStatus }>('SELECT status FROM apply_runs WHERE env = $1 AND run_id = $2', [this.env, runId]);
    if (!run) throw new StateNotFoundError(`apply run ${runId} does not exist in ${this.env}`);
    if (run.status !== 'running') throw new StateConflictError(`apply run ${runId} already finished (${run.status})`);
  }

  async recordChange(runId: string, address: string, outcome: ChangeOutcome): Promise<void> {
    if (!CHANGE_STATUSES.includes(outcome.status)) throw new InternalError(`unknown change status ${String(outcome.status)}`);
    await this.db.transaction(async () => {
      await this.runningApply(runId);
      const n = await this.db.run(
        `UPDATE apply_changes SET status = $4, remote_id = COALESCE($5, remote_id), error = $6, updated_at = $7
         WHERE env = $1 AND run_id = $2 AND address = $3`,
        [this.env, runId, address, outcome.status, outcome.remoteId ?? null, outcome.error === undefined ? null : redact(outcome.error), this.now()],
      );
      if (n === 0) throw new StateNotFoundError(`${address} is not part of apply run ${runId}`);
    });
  }

  async finishApply(runId: string, outcome: { status: Exclude<ApplyRunStatus, 'running'>; error?: string }): Promise<void> {
    if (!FINAL_APPLY_STATUSES.includes(outcome.status)) throw new InternalError(`unknown final apply status ${String(outcome.status)}`);
    await this.db.transaction(async () => {
      await this.runningApply(runId);
      await this.db.run('UPDATE apply_runs SET status = $3, finished_at = $4, error = $5 WHERE env = $1 AND run_id = $2', [
        this.env,
        runId,
        outcome.status,
        this.now(),
        outcome.error === undefined ? null : redact(outcome.error),
      ]);
    });
  }

  private async loadApply(run: ApplyRunRow): Promise<ApplyRecord> {
    const changes = await this.db.all<ApplyChangeRow>(
      `SELECT address, ordinal, action, status, remote_id, error, updated_at FROM apply_changes
       WHERE env = $1 AND run_id = $2 ORDER BY ordinal`,
      [this.env, run.run_id],
    );
    return { ...toApplySummary(run), changes: changes.map(toChange) };
  }

  async getApply(runId: string): Promise<ApplyRecord | undefined> {
    const run = await this.db.get<ApplyRunRow>(`SELECT ${APPLY_RUN_COLUMNS} FROM apply_runs WHERE env = $1 AND run_id = $2`, [this.env, runId]);
    return run ? this.loadApply(run) : undefined;
  }

  async listApplies(limit = 20): Promise<ApplyRunSummary[]> {
    const rows = await this.db.all<ApplyRunRow>(
      `SELECT ${APPLY_RUN_COLUMNS} FROM apply_runs WHERE env = $1 ORDER BY started_at DESC, run_id DESC LIMIT $2`,
      [this.env, positiveInt(limit, 'limit')],
    );
    return rows.map(toApplySummary);
  }

  async unfinishedApplies(): Promise<ApplyRecord[]> {
    const rows = await this.db.all<ApplyRunRow>(
      `SELECT ${APPLY_RUN_COLUMNS} FROM apply_runs WHERE env = $1 AND status = 'running' ORDER BY started_at, run_id`,
      [this.env],
    );
    const out: ApplyRecord[] = [];
    for (const r of rows) out.push(await this.loadApply(r));
    return out;
  }

  // ----- sync runs

  async startRun(source: string, meta: Record<string, unknown> = {}): Promise<string> {
    requireText(source, 'source name');
    const id = newId(this.clock);
    await this.db.run(`INSERT INTO sync_runs (env, ${SYNC_RUN_COLUMNS}) VALUES ($1, $2, $3, 'running', $4, '{}', NULL, $5, NULL)`, [
      this.env,
      id,
      source,
      JSON.stringify(meta),
      this.now(),
    ]);
    return id;
  }

  async finishRun(runId: string, outcome: FinishRunInput): Promise<void> {
    if (!FINAL_SYNC_STATUSES.includes(outcome.status)) throw new InternalError(`unknown final sync status ${String(outcome.status)}`);
    for (const [k, v] of Object.entries(outcome.counts ?? {})) {
      if (!Number.isFinite(v)) throw new InternalError(`sync count ${k} is not a number`);
    }
    await this.db.transaction(async () => {
      const run = await this.db.get<{ status: SyncRunStatus }>('SELECT status FROM sync_runs WHERE env = $1 AND run_id = $2', [this.env, runId]);
      if (!run) throw new StateNotFoundError(`sync run ${runId} does not exist in ${this.env}`);
      if (run.status !== 'running') throw new StateConflictError(`sync run ${runId} already finished (${run.status})`);
      await this.db.run('UPDATE sync_runs SET status = $3, counts = $4, error = $5, finished_at = $6 WHERE env = $1 AND run_id = $2', [
        this.env,
        runId,
        outcome.status,
        JSON.stringify(outcome.counts ?? {}),
        outcome.error === undefined ? null : redact(outcome.error),
        this.now(),
      ]);
    });
  }

  async interruptRuns(source: string, exceptRunId: string, error: string): Promise<number> {
    return this.db.run(
      `UPDATE sync_runs SET status = 'interrupted', error = $4, finished_at = $5 WHERE env = $1 AND source = $2 AND status = 'running' AND run_id <> $3`,
      [this.env, source, exceptRunId, redact(error), this.now()],
    );
  }

  async lastRuns(source: string, n: number): Promise<SyncRun[]> {
    const rows = await this.db.all<SyncRunRow>(
      `SELECT ${SYNC_RUN_COLUMNS} FROM sync_runs WHERE env = $1 AND source = $2 ORDER BY started_at DESC, run_id DESC LIMIT $3`,
      [this.env, source, positiveInt(n, 'n')],
    );
    return rows.map(toSyncRun);
  }

  async lastSuccess(source: string): Promise<SyncRun | undefined> {
    const row = await this.db.get<SyncRunRow>(
      `SELECT ${SYNC_RUN_COLUMNS} FROM sync_runs WHERE env = $1 AND source = $2 AND status = 'succeeded'
       ORDER BY started_at DESC, run_id DESC LIMIT 1`,
      [this.env, source],
    );
    return row ? toSyncRun(row) : undefined;
  }

  // ----- cursors

  async getCursor(name: string): Promise<string | undefined> {
    const row = await this.db.get<{ value: string }>('SELECT value FROM cursors WHERE env = $1 AND name = $2', [this.env, name]);
    return row?.value;
  }

  async setCursor(name: string, value: string): Promise<void> {
    requireText(name, 'cursor name');
    if (typeof value !== 'string') throw new InternalError(`cursor ${name} value must be a string`);
    await this.db.run(
      `INSERT INTO cursors (env, name, value, updated_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (env, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
      [this.env, name, value, this.now()],
    );
  }

  async deleteCursor(name: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM cursors WHERE env = $1 AND name = $2', [this.env, name])) > 0;
  }

  // ----- locks

  acquireLock(request: LockRequest, opts?: LockOptions): Promise<Lock> {
    requireText(request.operation, 'lock operation');
    requireText(request.who, 'lock who');
    return this.locks.acquire(request, opts);
  }

  lockInfo(): Promise<LockInfo | undefined> {
    return this.locks.info();
  }

  forceUnlock(id?: string): Promise<boolean> {
    return this.locks.forceUnlock(id);
  }

  // ----- snapshots

  openAckSession(source: string): Promise<SnapshotAckSession> {
    requireText(source, 'source name');
    return snapshot.AckSession.open(this.snapshotContext, source);
  }

  readSnapshotIndex(source: string, opts?: { pageSize?: number; part?: 'all' | 'entries' | 'unmerged' }): AsyncIterableIterator<SnapshotIndexEntry[]> {
    return snapshot.readSnapshotIndex(this.snapshotContext, source, opts);
  }

  snapshotGeneration(source: string): Promise<string | undefined> {
    return snapshot.snapshotGeneration(this.snapshotContext, source);
  }

  getSnapshotPayloads(source: string, keys: readonly string[]): Promise<Map<string, string>> {
    return snapshot.getSnapshotPayloads(this.snapshotContext, source, keys);
  }

  getSnapshotEntry(source: string, key: string): Promise<SnapshotEntry | undefined> {
    return snapshot.getSnapshotEntry(this.snapshotContext, source, key);
  }

  countSnapshot(source: string): Promise<number> {
    return snapshot.countSnapshot(this.snapshotContext, source);
  }

  iterateSnapshot(source: string, opts?: { pageSize?: number }): AsyncIterableIterator<SnapshotEntry> {
    return snapshot.iterateSnapshot(this.snapshotContext, source, opts);
  }

  dropSnapshot(source: string): Promise<void> {
    return snapshot.dropSnapshot(this.snapshotContext, source);
  }

  /** Postgres only: the row fingerprints of the diff in the warehouse (fingerprints.ts). */
  get fingerprints(): FingerprintStore | undefined {
    return this.db instanceof PostgresDriver ? new PostgresFingerprints(this.snapshotContext, this.db.schema) : undefined;
  }

  readPending(source: string): Promise<PendingEntry[]> {
    return snapshot.readPending(this.snapshotContext, source);
  }

  countPending(source: string): Promise<number> {
    return snapshot.countPending(this.snapshotContext, source);
  }

  get audiences(): AudienceStore {
    const ctx = { db: this.db, env: this.env };
    return {
      dialect: this.db.dialect,
      env: this.env,
      rebuildMirror: (sources, stamps, fields) => audiences.rebuildMirror(ctx, sources, stamps, fields),
      concurrency: () => audiences.concurrency(ctx),
      evaluating: (fn) => audiences.withEvaluationCache(ctx, fn),
      storeCandidates: (segment, select, params, opts) => audiences.storeCandidates(ctx, segment, select, params, opts),
      evaluationMark: (segment) => audiences.evaluationMark(ctx, segment),
      finishEvaluation: (segments) => audiences.finishEvaluation(ctx, segments),
      delta: (segment) => audiences.membershipDelta(ctx, segment),
      overlap: (segments) => audiences.candidateOverlap(ctx, segments),
      publishedCount: (segment) => audiences.publishedCount(ctx, segment),
      changes: (segment, direction, pageSize) => audiences.membershipChanges(ctx, segment, direction, pageSize),
      recordPublished: (segment, direction, ids) => audiences.recordPublished(ctx, segment, direction, ids, this.now()),
      replaceUiSegmentMembers: (segment, fill) => audiences.replaceUiSegmentMembers(ctx, segment, fill),
    };
  }

  get surveys(): SurveyStore {
    const ctx = { db: this.db, env: this.env };
    return {
      clearCandidates: () => surveys.clearSurveyCandidates(ctx),
      stage: (req) => surveys.stageSurveyTarget(ctx, req),
      drop: (target, ids) => surveys.dropSurveyCandidates(ctx, target, ids),
      moments: (target, zoneField) => surveys.surveyCandidateMoments(ctx, target, zoneField),
      markWaiting: (target, ids) => surveys.markSurveyWaiting(ctx, target, ids),
      dropWithoutEmail: (target, field) => surveys.dropSurveyCandidatesWithoutEmail(ctx, target, field),
      dropClaimed: (target) => surveys.dropClaimedSurveyCandidates(ctx, target),
      candidateContacts: (target, opts) => surveys.surveyCandidateContacts(ctx, target, opts),
      markHoldout: (target, held) => surveys.markSurveyHoldout(ctx, target, held),
      candidates: (target, opts) => surveys.surveyCandidatePages(ctx, target, opts?.heldOut ?? false, opts?.pageSize),
      count: (target, opts) => surveys.countSurveyCandidates(ctx, target, opts?.heldOut ?? false),
      recordInvitations: (target, ids, opts) => surveys.recordSurveyInvitations(ctx, target, ids, { ...opts, at: this.now() }),
      countInvitations: (target) => sends.countInvitations(ctx, target),
      lift: (req) => surveyLift.surveyLiftCounts(ctx, req),
      sends: {
        stage: (send) => sends.stageSend(ctx, send, this.now()),
        open: () => sends.openSends(ctx),
        get: (id) => sends.getSend(ctx, id),
        counts: (id) => sends.sendCounts(ctx, id),
        setPhase: (id, phase, extra) => sends.setSendPhase(ctx, id, phase, this.now(), extra),
        importRange: (id) => sends.importRange(ctx, id),
        members: (id, from, to) => sends.sendMembers(ctx, id, from, to),
        imports: (id) => sends.sendImports(ctx, id),
        markSkipped: (id, seqs) => sends.markSkipped(ctx, id, seqs),
        importStarted: (id, first, last, importId) => sends.recordImportStarted(ctx, id, first, last, importId),
        importOutcome: (id, first, last, failed) => sends.recordImportOutcome(ctx, id, first, last, failed),
        record: (send) => sends.recordSendInvitations(ctx, send, this.now()),
        distributionIds: () => sends.tidemarkDistributionIds(ctx),
        payloadValues: (ids, fields) => sends.payloadValues(ctx, ids, fields),
      },
    };
  }

  get responses(): SurveyResponseStore {
    const ctx = { db: this.db, env: this.env };
    return {
      cursor: (surveyId) => responses.getCursor(ctx, surveyId),
      advanceCursor: (surveyId, cursorAt) => responses.advanceCursor(ctx, surveyId, cursorAt, this.now()),
      insert: (rows) => responses.insertResponses(ctx, rows, this.now()),
      pending: (surveyIds) => responses.pendingResponses(ctx, surveyIds),
      get: (surveyId, responseId) => responses.getResponse(ctx, surveyId, responseId),
      invitationTimes: (targets, ids) => responses.invitationTimes(ctx, targets, ids),
      attributeTimes: (source, ids) => responses.attributeTimes(ctx, source, ids),
      markWritten: (writes) => responses.markWritten(ctx, writes, this.now()),
      count: (target) => responses.countResponses(ctx, target),
      unmappedAnswers: (since) => responses.unmappedAnswers(ctx, since),
    };
  }

  get reviewedPlans(): ReviewedPlanStore {
    const ctx = { db: this.db, env: this.env };
    return {
      keep: (p) => reviewed.keepReviewedPlan(ctx, p, this.now()),
      get: (sha) => reviewed.getReviewedPlan(ctx, sha),
      ofPullRequest: (n) => reviewed.reviewedPlansOf(ctx, n),
      mark: (sha, outcome) => reviewed.markReviewedPlan(ctx, sha, outcome, this.now()),
    };
  }
}

function positiveInt(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`${what} must be a positive integer, got ${n}`);
  return n;
}
