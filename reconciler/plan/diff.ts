/**
 * The planner: desired objects + tidemark's state + refreshed live objects → a Plan. Pure: every input is
 * a value, the clock is injected. Refresh and apply live at the edges (reconciler/apply).
 *
 * Pairing (gitops-engine's reconcile): a desired object is paired with the state entry at its address
 * (or at its `moved_from` address), and the state entry with the live object of the same remote id.
 * Only objects with a state entry are ever updated or deleted: live objects tidemark does not manage
 * are never touched, only offered for adoption by name.
 */
import { parseAddress } from '../core/address.ts';
import type { Clock } from '../core/clock.ts';
import type { Diagnostic } from '../core/diagnostics.ts';
import { canonicalJson, digestOf } from '../core/digest.ts';
import type { DesiredResource } from './desired.ts';
import { formatAddress } from '../core/address.ts';
import { dependencyWaves } from './order.ts';
import { PLAN_FORMAT_VERSION, type Action, type Attributes, type Change, type Plan } from './plan.ts';

/** The pure part of a resource kind the planner needs (no I/O). */
export interface KindTraits {
  /** `customerio.segment`. */
  kind: string;
  /** Attributes the service cannot change in place: a difference forces a replace. */
  replaceOn: readonly string[];
  /** Attributes that can only be set at creation and cannot be updated or replaced safely: reported only. */
  createOnly: readonly string[];
  /** Whether a new object may be created before the old one is deleted during a replace. */
  createBeforeDestroy: boolean;
  /** Normalise desired attributes the way live ones are (defaults filled, order canonical). */
  normalize(desired: Attributes): Attributes;
  /** A kind's own reason a change cannot be applied as planned (e.g. a setting its environment lacks). */
  guard?(change: Change): { code: string; message: string } | undefined;
}

/** A live object as refreshed (same shape as providers' LiveObject). */
export interface LiveEntry {
  id: string;
  name: string;
  attributes: Attributes;
  updatedAt?: string;
  manageable: boolean;
}

/** What the state store remembers of a managed object. */
export interface StateEntry {
  address: string;
  kind: string;
  remoteId: string;
  attributes: Attributes;
  dependsOn: string[];
  preventDestroy: boolean;
}

export interface PlanOptions {
  allowDelete: boolean;
  adoptByName: boolean;
  /** Limit the plan to these addresses and what they depend on. */
  targets: string[];
}

export interface PlanInput {
  environment: string;
  target: Plan['target'];
  desired: DesiredResource[];
  kinds: Record<string, KindTraits>;
  state: StateEntry[];
  /** Live objects per kind. */
  live: Record<string, LiveEntry[]>;
  options: PlanOptions;
  specs: Plan['specs'];
  clock: Clock;
  version: string;
  diagnostics?: Diagnostic[];
}

function equalValue(a: unknown, b: unknown): boolean {
  return canonicalJson(a ?? null) === canonicalJson(b ?? null);
}

function changedKeys(before: Attributes | null, after: Attributes | null): string[] {
  const keys = new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})]);
  return [...keys].filter((k) => !equalValue(before?.[k], after?.[k])).sort();
}

/**
 * Whether an unmanaged live object is the one a desired object describes (adoption by name, duplicate
 * guards, drift's unmanaged matches, crash recovery). Objects with a name match on it; every attribute that
 * cannot be changed in place must match too (a list in another directory is another list). Kinds whose
 * objects have no name (event subscriptions) are identified by those attributes alone, so a subscription
 * with the same topics and URL is found instead of duplicated.
 */
export function isSameObject(traits: KindTraits, desired: Attributes, live: LiveEntry): boolean {
  if (!live.manageable) return false;
  if (Object.hasOwn(desired, 'name')) {
    const name = String(desired.name ?? '');
    if (name === '' || live.name !== name) return false;
  } else if (traits.replaceOn.length === 0) {
    return false;
  }
  return traits.replaceOn.every((k) => equalValue(live.attributes[k], desired[k]));
}

/** How people recognise the match `isSameObject` found: `named "x"`, or `with the same topics and publication_url`. */
export function matchLabel(traits: KindTraits, desired: Attributes): string {
  return Object.hasOwn(desired, 'name') ? `named "${String(desired.name ?? '')}"` : `with the same ${traits.replaceOn.join(' and ')}`;
}

export function computePlan(input: PlanInput): Plan {
  const diagnostics: Diagnostic[] = [...(input.diagnostics ?? [])];
  const pairs = pairInputs(input);
  const changes = [...input.desired.flatMap((d) => decideDesired(d, input, pairs, diagnostics)), ...decideOrphans(input, pairs)];
  guardChanges(changes, input.kinds);
  const ordered = orderAndGate(changes, input.options, diagnostics);
  return assemblePlan(input, ordered, pairs.liveDigests, diagnostics);
}

/** Desired objects, state entries and live objects, indexed so each desired object finds its pair. */
interface Pairs {
  stateByAddress: Map<string, StateEntry>;
  managedIds: Set<string>;
  liveByKind: Map<string, Map<string, LiveEntry>>;
  /** Adoption looks objects up by name: indexed once rather than scanned per desired object. */
  liveByName: Map<string, LiveEntry[]>;
  desiredAddresses: Set<string>;
  /** State entries a desired object claimed (the rest are orphans). */
  consumedState: Set<string>;
  /** What each planned address saw live, so a saved plan can tell what moved since. */
  liveDigests: Record<string, string>;
}

function pairInputs(input: PlanInput): Pairs {
  const liveByName = new Map<string, LiveEntry[]>();
  for (const [k, list] of Object.entries(input.live)) {
    for (const l of list) {
      const key = `${k}|${l.name}`;
      const bucket = liveByName.get(key);
      if (bucket) bucket.push(l);
      else liveByName.set(key, [l]);
    }
  }
  return {
    stateByAddress: new Map(input.state.map((s) => [s.address, s])),
    managedIds: new Set(input.state.map((s) => `${s.kind}|${s.remoteId}`)),
    liveByKind: new Map(Object.entries(input.live).map(([k, list]) => [k, new Map(list.map((l) => [l.id, l]))])),
    liveByName,
    desiredAddresses: new Set(input.desired.map((x) => formatAddress(x.address))),
    consumedState: new Set<string>(),
    liveDigests: {},
  };
}

function recordLive(pairs: Pairs, address: string, l: LiveEntry | undefined): void {
  pairs.liveDigests[address] = l ? digestOf({ id: l.id, attributes: l.attributes, updatedAt: l.updatedAt ?? null }) : 'absent';
}

/** The change one desired object needs: noop, update, replace, rename, import, or create (guarded against duplicates). */
function decideDesired(d: DesiredResource, input: PlanInput, pairs: Pairs, diagnostics: Diagnostic[]): Change[] {
  const { kinds, options } = input;
  const address = formatAddress(d.address);
  const kindName = `${d.address.provider}.${d.address.type}`;
  const traits = kinds[kindName];
  if (!traits) {
    diagnostics.push({ severity: 'error', code: 'PLAN001', summary: `No provider handles ${kindName}.`, address, source: d.source });
    return [];
  }
  const after = traits.normalize(d.attributes);
  const dependsOn = d.dependsOn.map(formatAddress).sort();
  let entry = pairs.stateByAddress.get(address);
  let movedFrom: string | undefined;
  if (!entry && d.movedFrom) {
    const from = formatAddress(d.movedFrom);
    const prior = pairs.stateByAddress.get(from);
    if (prior && prior.kind === kindName && !pairs.desiredAddresses.has(from)) {
      entry = prior;
      movedFrom = from;
    }
  }
  const base = { address, kind: kindName, depends_on: dependsOn, source: d.source } as const;
  const liveOfKind = pairs.liveByKind.get(kindName) ?? new Map<string, LiveEntry>();

  // Unmanaged objects this spec describes: adopted with --adopt-by-name, otherwise never duplicated.
  // Named objects come from the name index; kinds without names (few objects) are scanned.
  const pool = Object.hasOwn(after, 'name') ? (pairs.liveByName.get(`${kindName}|${String(after.name ?? '')}`) ?? []) : [...liveOfKind.values()];
  const candidates = pool
    .filter((l) => isSameObject(traits, after, l) && !pairs.managedIds.has(`${kindName}|${l.id}`))
    .sort((a, b) => (a.id < b.id ? -1 : 1));
  let createReason = 'declared in the specs, not created yet';

  if (entry) {
    pairs.consumedState.add(entry.address);
    const live = liveOfKind.get(entry.remoteId);
    if (live) {
      recordLive(pairs, address, live);
      const changed = changedKeys(live.attributes, after);
      const ignored = changed.filter((k) => traits.createOnly.includes(k));
      const effective = changed.filter((k) => !traits.createOnly.includes(k));
      const forcing = effective.filter((k) => traits.replaceOn.includes(k));
      const drifted = (keys: string[]) => keys.some((k) => !equalValue(entry!.attributes[k], live.attributes[k]));
      let action: Action = 'noop';
      let reason = 'up to date';
      if (forcing.length) {
        action = 'replace';
        reason = `${forcing.join(', ')} cannot be changed in place`;
      } else if (effective.length) {
        action = 'update';
        reason = drifted(effective) ? 'changed outside tidemark since the last apply (drift)' : 'the specs changed';
      } else if (movedFrom) {
        // The renderers add "renamed from …" from moved_from; the reason says what happens to the object.
        action = 'update';
        reason = 'renamed in the specs; the remote object is kept and only the state entry moves';
      } else if (ignored.length) {
        reason = `${ignored.join(', ')} ${drifted(ignored) ? 'changed outside tidemark' : 'changed in the specs'}, but cannot be changed in place: left as it is`;
      }
      return [
        {
          ...base,
          action,
          remote_id: live.id,
          before: live.attributes,
          after,
          changed: effective,
          reason,
          ...(forcing.length ? { requires_replace: forcing, create_before_destroy: traits.createBeforeDestroy } : {}),
          ...(ignored.length ? { ignored_changes: ignored } : {}),
          ...(movedFrom ? { moved_from: movedFrom } : {}),
        },
      ];
    }
    // The managed object is gone: create it again, unless an unmanaged copy exists (made by hand, or by an
    // apply whose answer was lost), which is adopted or guarded like any other.
    createReason = `${entry.remoteId} was deleted outside tidemark since the last apply; it will be created again`;
  }

  recordLive(pairs, address, candidates[0]);
  if (candidates.length === 1 && options.adoptByName) {
    const live = candidates[0]!;
    const changed = changedKeys(live.attributes, after);
    return [
      {
        ...base,
        action: 'import',
        remote_id: live.id,
        before: live.attributes,
        after,
        changed: changed.filter((k) => !traits.createOnly.includes(k)),
        reason: `adopts the existing unmanaged object "${live.name}" (${live.id})`,
        ...(changed.some((k) => traits.createOnly.includes(k)) ? { ignored_changes: changed.filter((k) => traits.createOnly.includes(k)) } : {}),
        ...(movedFrom ? { moved_from: movedFrom } : {}),
      },
    ];
  }
  const change: Change = {
    ...base,
    action: 'create',
    before: null,
    after,
    changed: changedKeys(null, after),
    reason: createReason,
    ...(movedFrom ? { moved_from: movedFrom } : {}),
  };
  if (candidates.length > 0) {
    const label = matchLabel(traits, after);
    change.blocked = {
      code: 'PLAN003',
      message:
        candidates.length === 1
          ? `an unmanaged ${kindName} ${label} already exists (${candidates[0]!.id}): adopt it with --adopt-by-name or \`tidemark import ${address} ${candidates[0]!.id}\` instead of creating a duplicate`
          : `${candidates.length} unmanaged objects ${label} exist (${candidates.map((c) => c.id).join(', ')}): import the right one with \`tidemark import ${address} ID\``,
    };
  }
  return [change];
}

/** State entries no spec claims any more: delete (gated) or forget (already gone). */
function decideOrphans(input: PlanInput, pairs: Pairs): Change[] {
  const changes: Change[] = [];
  for (const entry of [...input.state].sort((a, b) => (a.address < b.address ? -1 : 1))) {
    if (pairs.consumedState.has(entry.address)) continue;
    const live = pairs.liveByKind.get(entry.kind)?.get(entry.remoteId);
    recordLive(pairs, entry.address, live);
    const base = { address: entry.address, kind: entry.kind, depends_on: [...entry.dependsOn].sort(), remote_id: entry.remoteId } as const;
    if (!live) {
      changes.push({ ...base, action: 'forget', before: entry.attributes, after: null, changed: [], reason: 'its spec was removed and the object is already gone; only the state entry is removed' });
      continue;
    }
    const change: Change = { ...base, action: 'delete', before: live.attributes, after: null, changed: changedKeys(live.attributes, null), reason: 'its spec was removed' };
    if (entry.preventDestroy) {
      change.blocked = {
        code: 'PLAN004',
        message: `prevent_destroy was set when it was last applied, so it is kept even though its spec is gone. To delete it, release it with \`tidemark state unprotect ${entry.address}\` first`,
      };
    } else if (!input.options.allowDelete) {
      change.blocked = { code: 'PLAN005', message: 'deletes are only applied with --allow-delete' };
    }
    changes.push(change);
  }
  return changes;
}

/** Each kind's own reasons a change cannot be applied as planned. */
function guardChanges(changes: Change[], kinds: Record<string, KindTraits>): void {
  for (const c of changes) {
    if (c.blocked || c.action === 'noop') continue;
    const blocked = kinds[c.kind]?.guard?.(c);
    if (blocked) c.blocked = blocked;
  }
}

/** The targeted subset in dependency order; what depends on an object that will not exist is blocked too. */
function orderAndGate(changes: Change[], options: PlanOptions, diagnostics: Diagnostic[]): Change[] {
  const selected = options.targets.length ? selectTargets(changes, options.targets, diagnostics) : changes;
  const ordered = orderChanges(selected);
  const missing = new Map<string, string>();
  for (const c of ordered) {
    const waitingOn = c.depends_on.find((d) => missing.has(d));
    if (waitingOn && !c.blocked && c.action !== 'delete' && c.action !== 'forget' && c.action !== 'noop') {
      c.blocked = { code: 'PLAN007', message: `depends on ${waitingOn}, which is not going to be created (${missing.get(waitingOn)})` };
    }
    if (c.blocked && (c.action === 'create' || c.action === 'replace' || c.action === 'import')) missing.set(c.address, c.blocked.code);
  }
  return ordered;
}

function assemblePlan(input: PlanInput, ordered: Change[], liveDigests: Record<string, string>, diagnostics: Diagnostic[]): Plan {
  const { options } = input;
  const summary = { noop: 0, create: 0, import: 0, update: 0, replace: 0, delete: 0, forget: 0, blocked: 0 };
  for (const c of ordered) {
    summary[c.action]++;
    if (c.blocked) summary.blocked++;
  }
  const inPlan = new Set(ordered.map((c) => c.address));
  const objects = Object.fromEntries(Object.entries(liveDigests).filter(([a]) => inPlan.has(a)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return {
    format_version: PLAN_FORMAT_VERSION,
    tool: { name: 'tidemark', version: input.version },
    environment: input.environment,
    target: input.target,
    created_at: input.clock.now().toISOString(),
    specs: input.specs,
    live: { digest: digestOf(objects), objects },
    options: { allow_delete: options.allowDelete, adopt_by_name: options.adoptByName, targets: [...options.targets].sort() },
    changes: ordered,
    summary,
    diagnostics,
    // Nothing adds counts to a plan yet, whatever the note says: `tidemark sync plan` prints a source's counts
    // on its own and audiences have no planner. The note is plan output (the golden plans), so its wording
    // changes with the audience planning that fills this (issue 11), not in a change that keeps behaviour.
    data_impact: { status: 'not_computed', note: 'data-plane impact (sync and audience counts) is added by `tidemark sync plan` and audience planning', sources: [], audiences: [] },
  };
}

/** Targeted plans keep the targets and everything they depend on (so the result can be applied). */
function selectTargets(changes: Change[], targets: string[], diagnostics: Diagnostic[]): Change[] {
  const byAddress = new Map(changes.map((c) => [c.address, c]));
  const keep = new Set<string>();
  const visit = (a: string) => {
    if (keep.has(a) || !byAddress.has(a)) return;
    keep.add(a);
    byAddress.get(a)!.depends_on.forEach(visit);
  };
  for (const t of targets) {
    if (!parseAddress(t) || !byAddress.has(t)) {
      diagnostics.push({ severity: 'error', code: 'PLAN006', summary: `--target ${t} matches no managed or declared object.` });
      continue;
    }
    visit(t);
  }
  return changes.filter((c) => keep.has(c.address));
}

/**
 * Creates, imports, updates and replaces run in dependency waves; deletes and forgets afterwards, in
 * reverse dependency order (a dependant goes before what it depends on).
 */
export function orderChanges(changes: Change[]): Change[] {
  const toNode = (c: Change) => ({ change: c, address: parseAddress(c.address) ?? { type: c.kind, name: c.address }, dependsOn: c.depends_on.map((d) => parseAddress(d)!).filter(Boolean) });
  const forward = changes.filter((c) => c.action !== 'delete' && c.action !== 'forget').map(toNode);
  const backward = changes.filter((c) => c.action === 'delete' || c.action === 'forget').map(toNode);
  return [...dependencyWaves(forward).flat(), ...dependencyWaves(backward).reverse().flat()].map((n) => n.change);
}
