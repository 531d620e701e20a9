/**
 * Apply: carry out a plan's changes in order, one at a time, journalling each one.
 *
 * - Every change is recorded `pending` before the service is called and `applied` only after the state
 *   store holds the result, so a crash leaves a trail recovery can settle (see recovery.ts).
 * - A create that fails without proof that nothing was created (lost answer, 5xx, a failed state write)
 *   is reported failed but stays `pending` in the journal, so the next run adopts what the service may
 *   have made instead of creating it twice.
 * - A failed change does not stop independent ones; what depends on it is skipped (and for deletes, what
 *   it depends on is kept), so nothing is left half-wired.
 * - Blocked changes (gated deletes, duplicates) are never applied; they are reported as skipped.
 */
import type { Clock } from '../core/clock.ts';
import { redact } from '../core/redact.ts';
import type { DesiredResource } from '../plan/desired.ts';
import type { StateEntry } from '../plan/diff.ts';
import type { Change, Plan } from '../plan/plan.ts';
import type { LiveObject, ResourceKind } from '../kinds/kind.ts';
import type { StateStore } from '../state/index.ts';
import { formatAddress } from '../core/address.ts';
import { ProviderError } from '../providers/errors.ts';
import { OUTCOME_UNKNOWN } from './recovery.ts';
import { toManagedInput, toStateEntry } from './state-entries.ts';

export type ChangeStatus = 'applied' | 'failed' | 'skipped' | 'blocked' | 'unchanged';

export interface ChangeResult {
  address: string;
  action: Change['action'];
  status: ChangeStatus;
  remoteId?: string;
  message?: string;
}

export interface ApplyResult {
  runId: string;
  ok: boolean;
  results: ChangeResult[];
  /** What to do next, for people. */
  next: string[];
}

export interface ApplyContext {
  store: StateStore;
  kinds: Record<string, ResourceKind>;
  /** The desired resources the plan was made from (for prevent_destroy and dependencies). */
  desired: DesiredResource[];
  who: string;
  planDigest: string;
  clock: Clock;
  onChange?: (r: ChangeResult) => void;
  /** Test hook: called after the service answered and before the state is written. */
  afterRemoteCall?: (c: Change) => Promise<void> | void;
}

export async function executePlan(plan: Plan, ctx: ApplyContext): Promise<ApplyResult> {
  const desiredBy = new Map(ctx.desired.map((d) => [formatAddress(d.address), d]));
  const toApply = plan.changes.filter((c) => c.action !== 'noop' && !c.blocked);
  const runId = await ctx.store.beginApply({ who: ctx.who, planDigest: ctx.planDigest, changes: toApply.map((c) => ({ address: c.address, action: c.action })) });
  const results: ChangeResult[] = [];
  const failed = new Set<string>();
  const emit = (r: ChangeResult) => {
    results.push(r);
    ctx.onChange?.(r);
  };

  // Dependencies among the changes: a creation waits for what it depends on; a deletion waits for the
  // deletion of what depends on it.
  const dependants = new Map<string, string[]>();
  for (const c of plan.changes) for (const d of c.depends_on) dependants.set(d, [...(dependants.get(d) ?? []), c.address]);
  const dependantsOf = (address: string) => dependants.get(address) ?? [];
  const blockedBy = (c: Change): string | undefined => {
    const upstream = c.action === 'delete' || c.action === 'forget' ? dependantsOf(c.address) : c.depends_on;
    return upstream.find((a) => failed.has(a));
  };

  for (const c of plan.changes) {
    if (c.action === 'noop') continue;
    if (c.blocked) {
      emit({ address: c.address, action: c.action, status: 'blocked', message: c.blocked.message });
      continue;
    }
    const cause = blockedBy(c);
    if (cause) {
      failed.add(c.address);
      await ctx.store.recordChange(runId, c.address, { status: 'skipped', error: `skipped because ${cause} failed` });
      emit({ address: c.address, action: c.action, status: 'skipped', message: `skipped because ${cause} failed` });
      continue;
    }
    const kind = ctx.kinds[c.kind];
    try {
      if (!kind) throw new Error(`no provider for ${c.kind} in this environment`);
      await ctx.store.recordChange(runId, c.address, { status: 'pending', ...(c.remote_id ? { remoteId: c.remote_id } : {}) });
      const remoteId = await applyOne(c, kind, ctx, desiredBy.get(c.address));
      await ctx.store.recordChange(runId, c.address, { status: 'applied', ...(remoteId ? { remoteId } : {}) });
      emit({ address: c.address, action: c.action, status: 'applied', ...(remoteId ? { remoteId } : {}) });
    } catch (err) {
      failed.add(c.address);
      const message = redact(err instanceof Error ? err.message : String(err));
      if (mayHaveCreated(c, err)) {
        // The service may hold a new object the state does not know: leave the change pending so the next
        // run's recovery looks for it and adopts it, instead of the next plan creating a duplicate.
        await ctx.store.recordChange(runId, c.address, { status: 'pending', error: `${OUTCOME_UNKNOWN}: ${message}` });
        emit({
          address: c.address,
          action: c.action,
          status: 'failed',
          message: `${message} (the service may have created it anyway: the next run checks and adopts it rather than creating it twice)`,
        });
      } else {
        await ctx.store.recordChange(runId, c.address, { status: 'failed', error: message });
        emit({ address: c.address, action: c.action, status: 'failed', message });
      }
    }
  }

  await syncStateFlags(plan, ctx, desiredBy);
  // Done means everything planned was applied: a blocked change is a change that did not happen.
  const blockedCount = results.filter((r) => r.status === 'blocked').length;
  const failedCount = results.filter((r) => r.status === 'failed').length;
  const ok = failed.size === 0 && blockedCount === 0;
  const why = [failedCount ? `${failedCount} change(s) failed` : '', blockedCount ? `${blockedCount} change(s) blocked` : '', failed.size > failedCount ? `${failed.size - failedCount} skipped` : '']
    .filter(Boolean)
    .join(', ');
  await ctx.store.finishApply(runId, ok ? { status: 'succeeded' } : { status: 'failed', error: why });
  const next: string[] = [];
  if (!ok) {
    next.push('Changes marked applied are recorded in the state and will not be repeated.');
    next.push('Fix the cause of each failure (see the messages above), then run `tidemark plan` and `tidemark apply` again.');
  }
  const blocked = results.filter((r) => r.status === 'blocked');
  if (blocked.some((r) => r.action === 'delete')) next.push('Blocked deletes stay in place. Re-run with --allow-delete to delete them (prevent_destroy objects must be released first).');
  return { runId, ok, results, next };
}

/** A create (or the create half of a replace) that failed without proof that nothing was created. */
function mayHaveCreated(c: Change, err: unknown): boolean {
  if (c.action !== 'create' && c.action !== 'replace') return false;
  return !(err instanceof ProviderError && err.outcome === 'not-applied');
}

async function applyOne(c: Change, kind: ResourceKind, ctx: ApplyContext, desired: DesiredResource | undefined): Promise<string | undefined> {
  const record = async (live: LiveObject | { id: string; attributes: StateEntry['attributes'] }) => {
    await ctx.afterRemoteCall?.(c);
    await ctx.store.putManaged(
      toManagedInput(
        { address: c.address, kind: c.kind, remoteId: live.id, attributes: live.attributes, dependsOn: c.depends_on, preventDestroy: desired?.preventDestroy ?? false },
        ctx.planDigest,
      ),
    );
    return live.id;
  };
  switch (c.action) {
    case 'create':
      // A renamed spec whose object was gone: the state entry moves to the new address with the new object.
      if (c.moved_from) await ctx.store.moveManaged(c.moved_from, c.address);
      return record(await kind.create(c.after!));
    case 'import': {
      if (c.moved_from) await ctx.store.moveManaged(c.moved_from, c.address);
      let live: LiveObject | undefined = await kind.read(c.remote_id!);
      if (!live) throw new Error(`${c.remote_id} no longer exists; nothing to adopt`);
      if (c.changed.length) live = await kind.update(live.id, c.after!, c.changed);
      return record(live);
    }
    case 'update': {
      if (c.moved_from) await ctx.store.moveManaged(c.moved_from, c.address);
      if (c.changed.length === 0) return record({ id: c.remote_id!, attributes: c.before! });
      return record(await kind.update(c.remote_id!, c.after!, c.changed));
    }
    case 'replace': {
      if (c.moved_from) await ctx.store.moveManaged(c.moved_from, c.address);
      if (c.create_before_destroy) {
        const created = await kind.create(c.after!);
        const id = await record(created);
        try {
          await kind.delete(c.remote_id!);
        } catch (err) {
          await keepLeftover(c, ctx);
          const why = err instanceof Error ? err.message : String(err);
          throw new Error(
            `the replacement ${id} was created, but deleting the old object ${c.remote_id} failed (${why}). Until it is deleted both are live ` +
              `(an event subscription would deliver every response twice); it is kept in the state as ${leftoverAddress(c)}, and the next ` +
              '`tidemark apply --allow-delete` deletes it',
          );
        }
        return id;
      }
      await kind.delete(c.remote_id!);
      return record(await kind.create(c.after!));
    }
    case 'delete':
      await kind.delete(c.remote_id!);
      await ctx.afterRemoteCall?.(c);
      await ctx.store.deleteManaged(c.address);
      return c.remote_id;
    case 'forget':
      await ctx.store.deleteManaged(c.address);
      return c.remote_id;
    default:
      return undefined;
  }
}

/**
 * Where the object a create-before-destroy replace failed to delete is recorded: an address no spec
 * claims, so every plan shows its delete until it is gone, instead of the object living on unmanaged.
 */
function leftoverAddress(c: Change): string {
  return `${c.address}__replaced_${c.remote_id!.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

async function keepLeftover(c: Change, ctx: ApplyContext): Promise<void> {
  await ctx.store.putManaged(
    toManagedInput(
      { address: leftoverAddress(c), kind: c.kind, remoteId: c.remote_id!, attributes: c.before ?? {}, dependsOn: [], preventDestroy: false },
      ctx.planDigest,
    ),
  );
}

/** prevent_destroy lives in the state too (it must outlive the spec): keep it in step for unchanged objects. */
async function syncStateFlags(plan: Plan, ctx: ApplyContext, desiredBy: Map<string, DesiredResource>): Promise<void> {
  for (const c of plan.changes) {
    if (c.action !== 'noop') continue;
    const d = desiredBy.get(c.address);
    const m = await ctx.store.getManaged(c.address);
    if (!d || !m) continue;
    const entry = toStateEntry(m);
    if (entry.preventDestroy !== d.preventDestroy) await ctx.store.putManaged(toManagedInput({ ...entry, preventDestroy: d.preventDestroy }));
  }
}
