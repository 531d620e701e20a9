/**
 * The reconciler's use cases, each a short sequence of the pieces above. The CLI calls these and only
 * renders their results.
 */
import os from 'node:os';
import { formatAddress } from '../core/address.ts';
import { UserError } from '../core/user-error.ts';
import { TIDEMARK_VERSION } from '../core/version.ts';
import { systemClock, type Clock } from '../core/clock.ts';
import { hasErrors, type Diagnostic } from '../core/diagnostics.ts';
import { digestOf } from '../core/digest.ts';
import { desiredResources } from '../kinds/index.ts';
import type { DesiredResource } from '../plan/desired.ts';
import { computePlan, type PlanOptions } from '../plan/diff.ts';
import { driftReport, type DriftReport } from '../plan/drift.ts';
import { readSavedPlan, type Plan, type PlanScope } from '../plan/plan.ts';
import { loadSpecs, type LoadResult } from '../spec/load.ts';
import type { SpecModel } from '../spec/model.ts';
import { LockHeldError, type StateStore } from '../state/index.ts';
import { connect, type Connection, type ConnectOptions } from './connect.ts';
import { executePlan, type ApplyResult, type ApplyContext } from '../apply/executor.ts';
import { recoverInterruptedApplies, type RecoveryReport } from '../apply/recovery.ts';
import { refreshLive } from './refresh.ts';
import { dataImpact } from './data-impact.ts';
import { readReferencedSegments, referencedSegmentDiagnostics } from './ui-segments.ts';
import { checkSurveyPayloads } from './survey-mapping.ts';
import { specsRevision } from './revision.ts';
import { planDigest, whatMoved } from '../apply/safety.ts';
import { toManagedInput, toStateEntry } from '../apply/state-entries.ts';


export { openEnvironment, SpecsInvalidError, whoAmI, type EnvironmentRequest, type OpenEnvironment } from './environment.ts';
import { whoAmI, type OpenEnvironment } from './environment.ts';

/**
 * A plan scope: the addresses to plan (the planner adds what they depend on) and what the plan says about
 * them. `targets` empty with `mode: changed` plans nothing: no object's specs changed.
 */
export interface ScopeRequest {
  targets: string[];
  summary: Omit<PlanScope, 'planned'>;
}

export async function makePlan(ws: OpenEnvironment, options: PlanOptions, scope?: ScopeRequest): Promise<Plan> {
  const allState = (await ws.conn.store.listManaged()).map(toStateEntry);
  const nothing = scope?.summary.mode === 'changed' && scope.targets.length === 0;
  const state = nothing ? [] : allState;
  const desired = nothing ? [] : ws.desired;
  if (scope?.summary.mode === 'changed') options = { ...options, targets: scope.targets };
  const needed = [...desired.map((d) => `${d.address.provider}.${d.address.type}`), ...state.map((s) => s.kind)];
  const live = await refreshLive(ws.conn.kinds, needed, state);
  const rev = await specsRevision(ws.cwd, ws.load.dir);
  // Segments built in Customer.io's UI that specs reference: the target must have each one.
  const referenced = referencedSegmentDiagnostics(ws.model, await readReferencedSegments(ws.model, ws.conn.environment, ws.conn.customerio), ws.conn.target.label);
  // The surveys the targets name: each must exist and read the payload it is sent (drift when CX renamed a field).
  const surveys = (await checkSurveyPayloads(ws)).diagnostics;
  const plan = computePlan({
    environment: ws.conn.environment,
    target: { mode: ws.conn.target.mode, id: ws.conn.target.id, label: ws.conn.target.label },
    desired,
    kinds: ws.conn.kinds,
    state,
    live,
    options,
    specs: { revision: rev.revision, dirty: rev.dirty, digest: digestOf(ws.load.digests), files: ws.load.digests },
    clock: ws.clock,
    version: TIDEMARK_VERSION,
    diagnostics: [...ws.load.diagnostics.filter((d) => d.severity === 'warning'), ...referenced, ...surveys],
  });
  const scoped = scope ? { ...plan, scope: { ...scope.summary, planned: plan.changes.length } } : plan;
  // A reference the target lacks cannot be evaluated: the impact waits for it to be fixed.
  if (hasErrors(referenced)) return scoped;
  return { ...scoped, data_impact: await dataImpact(ws) };
}

/** A saved plan's scope, so apply re-plans exactly what was planned (a scope of nothing included). */
export function savedScope(saved: Plan): ScopeRequest | undefined {
  if (saved.scope?.mode !== 'changed') return undefined;
  const { planned: _planned, ...summary } = saved.scope;
  return { targets: saved.options.targets, summary };
}

/** `protected: true` on the environment: applies take a saved (reviewed) plan only. */
export function isProtected(ws: OpenEnvironment): boolean {
  return ws.model.workspace?.spec.environments[ws.conn.environment]?.protected === true;
}


export interface ApplyRequest {
  /** A saved plan to apply exactly; without it a fresh plan is made and applied. */
  saved?: Plan;
  options: PlanOptions;
  who: string;
  /** Asked before anything is written; return false to abort. */
  confirm?: (plan: Plan) => Promise<boolean>;
  onChange?: ApplyContext['onChange'];
  afterRemoteCall?: ApplyContext['afterRemoteCall'];
}

export type ApplyOutcome =
  | { status: 'stale'; plan: Plan; moved: string[] }
  | { status: 'declined'; plan: Plan }
  | { status: 'nothing'; plan: Plan }
  | { status: 'invalid'; plan: Plan }
  | { status: 'locked'; holder: string }
  | { status: 'protected'; plan: Plan }
  | { status: 'done'; plan: Plan; result: ApplyResult };

export async function applyChanges(ws: OpenEnvironment, req: ApplyRequest): Promise<ApplyOutcome> {
  let lock;
  try {
    lock = await ws.conn.store.acquireLock({ operation: 'apply', who: req.who });
  } catch (err) {
    if (err instanceof LockHeldError) return { status: 'locked', holder: err.message };
    throw err;
  }
  try {
    const saved = req.saved ? readSavedPlan(req.saved) : undefined;
    const options = saved
      ? { allowDelete: saved.options.allow_delete, adoptByName: saved.options.adopt_by_name, targets: saved.options.targets }
      : req.options;
    const fresh = await makePlan(ws, options, saved ? savedScope(saved) : undefined);
    let plan = fresh;
    if (saved) {
      const moved = whatMoved(saved, fresh, await writtenSince(ws.conn.store, saved.created_at));
      if (moved.length) return { status: 'stale', plan: saved, moved };
      plan = saved;
    }
    // A plan with errors (e.g. no provider for a kind in this environment) is shown, never applied.
    if (hasErrors(plan.diagnostics)) return { status: 'invalid', plan };
    if (!plan.changes.some((c) => c.action !== 'noop')) return { status: 'nothing', plan };
    // A protected environment changes only by the plan someone reviewed: never a plan made just now.
    if (!saved && isProtected(ws)) return { status: 'protected', plan };
    if (req.confirm && !(await req.confirm(plan))) return { status: 'declined', plan };
    const result = await executePlan(plan, {
      store: ws.conn.store,
      kinds: ws.conn.kinds,
      desired: ws.desired,
      who: req.who,
      planDigest: planDigest(plan),
      clock: ws.clock,
      ...(req.onChange ? { onChange: req.onChange } : {}),
      ...(req.afterRemoteCall ? { afterRemoteCall: req.afterRemoteCall } : {}),
    });
    return { status: 'done', plan, result };
  } finally {
    await lock.release();
  }
}

/**
 * Addresses tidemark wrote since `since` (ISO-8601), with who did it: the changes other applies recorded as
 * applied, then any other state write (an import, recovery).
 */
async function writtenSince(store: StateStore, since: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  // Newest first; a plan rarely waits behind more than a handful of applies.
  for (const run of await store.listApplies(50)) {
    if (run.startedAt < since) break;
    for (const c of (await store.getApply(run.id))?.changes ?? []) {
      if (c.status === 'applied' && !out.has(c.address)) out.set(c.address, `another apply (${run.who})`);
    }
  }
  for (const m of await store.listManaged()) {
    if (m.updatedAt >= since && !out.has(m.address)) out.set(m.address, 'tidemark (an import or a recovered apply)');
  }
  return out;
}

export async function detectDrift(ws: OpenEnvironment): Promise<DriftReport> {
  const state = (await ws.conn.store.listManaged()).map(toStateEntry);
  const needed = [...ws.desired.map((d) => `${d.address.provider}.${d.address.type}`), ...state.map((s) => s.kind)];
  const live = await refreshLive(ws.conn.kinds, needed, state);
  return driftReport({ environment: ws.conn.environment, desired: ws.desired, kinds: ws.conn.kinds, state, live });
}

export type ImportOutcome =
  | { status: 'imported'; address: string; remoteId: string; name: string }
  | { status: 'refused'; reason: string };

/** Adopt an existing remote object under a declared address. */
export async function importObject(ws: OpenEnvironment, address: string, remoteId: string, who: string): Promise<ImportOutcome> {
  const d = ws.desired.find((x) => formatAddress(x.address) === address);
  if (!d) {
    const declared = ws.desired.map((x) => formatAddress(x.address));
    return { status: 'refused', reason: `${address} is not declared in the specs for environment "${ws.conn.environment}" (declared: ${declared.join(', ') || 'none'})` };
  }
  const kindName = `${d.address.provider}.${d.address.type}`;
  const kind = ws.conn.kinds[kindName];
  if (!kind) return { status: 'refused', reason: `no provider for ${kindName} in this environment` };
  const lock = await ws.conn.store.acquireLock({ operation: `import ${address}`, who });
  try {
    const existing = await ws.conn.store.getManaged(address);
    // An entry whose object was deleted outside tidemark may be pointed at a replacement (what the plan's
    // duplicate guard suggests); one whose object still exists is never silently re-pointed.
    if (existing && existing.remoteId !== remoteId && (await kind.read(existing.remoteId))) {
      return { status: 'refused', reason: `${address} already manages ${existing.remoteId}` };
    }
    if (existing?.remoteId === remoteId) return { status: 'refused', reason: `${address} already manages ${remoteId}` };
    const other = (await ws.conn.store.listManaged()).find((m) => m.kind === kindName && m.remoteId === remoteId);
    if (other) return { status: 'refused', reason: `${remoteId} is already managed as ${other.address}` };
    const live = await kind.read(remoteId);
    if (!live) return { status: 'refused', reason: `${kindName} ${remoteId} does not exist` };
    if (!live.manageable) return { status: 'refused', reason: `${kindName} ${remoteId} cannot be managed by tidemark (e.g. a data-driven segment): reference it instead` };
    await ws.conn.store.putManaged(
      toManagedInput({ address, kind: kindName, remoteId, attributes: live.attributes, dependsOn: d.dependsOn.map(formatAddress), preventDestroy: d.preventDestroy }),
    );
    return { status: 'imported', address, remoteId, name: live.name };
  } finally {
    await lock.release();
  }
}

/** Adoption proposals: unmanaged objects whose names match declared ones (what --adopt-by-name would import). */
export function adoptionProposals(plan: Plan): Array<{ address: string; remoteId: string }> {
  return plan.changes.filter((c) => c.action === 'import').map((c) => ({ address: c.address, remoteId: c.remote_id! }));
}
