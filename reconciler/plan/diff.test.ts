import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fixedClock } from '../core/clock.ts';
import type { DesiredResource } from './desired.ts';
import { computePlan, type KindTraits, type LiveEntry, type PlanInput, type StateEntry } from './diff.ts';
import type { Attributes, Plan } from './plan.ts';

const src = { file: 'specs/x.yaml', start: { line: 1, col: 1 }, end: { line: 1, col: 5 } };

const kinds: Record<string, KindTraits> = {
  'customerio.segment': {
    kind: 'customerio.segment', replaceOn: [], createOnly: ['name', 'description'], createBeforeDestroy: false,
    normalize: (a) => ({ name: String(a.name ?? '').trim(), description: String(a.description ?? '').trim() }),
  },
  'qualtrics.mailing_list': {
    kind: 'qualtrics.mailing_list', replaceOn: ['directory_id'], createOnly: [], createBeforeDestroy: false,
    normalize: (a) => ({ name: String(a.name ?? '').trim(), directory_id: a.directory_id ?? null }),
  },
  'qualtrics.event_subscription': {
    kind: 'qualtrics.event_subscription', replaceOn: ['topics', 'publication_url'], createOnly: [], createBeforeDestroy: true,
    normalize: (a) => ({ topics: String(a.topics ?? ''), publication_url: String(a.publication_url ?? '') }),
  },
};

function list(name: string, attrs: Partial<Attributes> = {}, extra: Partial<DesiredResource> = {}): DesiredResource {
  return { address: { provider: 'qualtrics', type: 'mailing_list', name }, attributes: { name, directory_id: 'POOL_1', ...attrs }, dependsOn: [], source: src, preventDestroy: false, ...extra };
}
function segment(name: string, extra: Partial<DesiredResource> = {}): DesiredResource {
  return { address: { provider: 'customerio', type: 'segment', name }, attributes: { name: `tidemark: ${name}`, description: 'd' }, dependsOn: [], source: src, preventDestroy: false, ...extra };
}
function sub(name: string): DesiredResource {
  return {
    address: { provider: 'qualtrics', type: 'event_subscription', name },
    attributes: { topics: 'surveyengine.completedResponse.SV_1', publication_url: 'https://h.example/q' },
    dependsOn: [{ provider: 'qualtrics', type: 'mailing_list', name }],
    source: src,
    preventDestroy: false,
  };
}

function input(over: Partial<PlanInput>): PlanInput {
  return {
    environment: 'staging',
    target: { mode: 'sandbox', id: 'sandbox:staging', label: 'the embedded sandbox' },
    desired: [],
    kinds,
    state: [],
    live: {},
    options: { allowDelete: false, adoptByName: false, targets: [] },
    specs: { revision: 'abc', dirty: false, digest: 'd', files: {} },
    clock: fixedClock('2026-11-23T00:00:00Z'),
    version: '0.1.0',
    ...over,
  };
}

const byAddress = (p: Plan) => Object.fromEntries(p.changes.map((c) => [c.address, c]));

describe('computePlan', () => {
  it('creates what is declared and not managed, dependencies first', () => {
    const p = computePlan(input({ desired: [sub('fit'), list('fit'), segment('vip')] }));
    expect(p.changes.map((c) => [c.action, c.address])).toEqual([
      ['create', 'customerio.segment.vip'],
      ['create', 'qualtrics.mailing_list.fit'],
      ['create', 'qualtrics.event_subscription.fit'],
    ]);
    expect(p.summary).toMatchObject({ create: 3, blocked: 0 });
  });

  it('is all noops when live equals desired (normalisation applied to the desired side)', () => {
    const d = list('fit', { name: '  fit  ' });
    const p = computePlan(input({
      desired: [d],
      state: [{ address: 'qualtrics.mailing_list.fit', kind: 'qualtrics.mailing_list', remoteId: 'CG_1', attributes: { name: 'fit', directory_id: 'POOL_1' }, dependsOn: [], preventDestroy: false }],
      live: { 'qualtrics.mailing_list': [{ id: 'CG_1', name: 'fit', attributes: { name: 'fit', directory_id: 'POOL_1' }, manageable: true }] },
    }));
    expect(p.changes.map((c) => c.action)).toEqual(['noop']);
  });

  it('updates in place, replaces what cannot change in place, and reports create-only differences without acting', () => {
    const state: StateEntry[] = [
      { address: 'qualtrics.mailing_list.a', kind: 'qualtrics.mailing_list', remoteId: 'CG_a', attributes: { name: 'old', directory_id: 'POOL_1' }, dependsOn: [], preventDestroy: false },
      { address: 'qualtrics.mailing_list.b', kind: 'qualtrics.mailing_list', remoteId: 'CG_b', attributes: { name: 'b', directory_id: 'POOL_0' }, dependsOn: [], preventDestroy: false },
      { address: 'customerio.segment.vip', kind: 'customerio.segment', remoteId: '7', attributes: { name: 'tidemark: vip', description: 'old' }, dependsOn: [], preventDestroy: false },
    ];
    const live: Record<string, LiveEntry[]> = {
      'qualtrics.mailing_list': [
        { id: 'CG_a', name: 'old', attributes: { name: 'old', directory_id: 'POOL_1' }, manageable: true },
        { id: 'CG_b', name: 'b', attributes: { name: 'b', directory_id: 'POOL_0' }, manageable: true },
      ],
      'customerio.segment': [{ id: '7', name: 'tidemark: vip', attributes: { name: 'tidemark: vip', description: 'old' }, manageable: true }],
    };
    const c = byAddress(computePlan(input({ desired: [list('a'), list('b'), segment('vip')], state, live })));
    expect(c['qualtrics.mailing_list.a']).toMatchObject({ action: 'update', changed: ['name'], before: { name: 'old' }, after: { name: 'a' }, reason: 'the specs changed' });
    expect(c['qualtrics.mailing_list.b']).toMatchObject({ action: 'replace', requires_replace: ['directory_id'], create_before_destroy: false });
    expect(c['customerio.segment.vip']).toMatchObject({ action: 'noop', ignored_changes: ['description'] });
  });

  it('says when a difference comes from a change made outside tidemark', () => {
    const p = computePlan(input({
      desired: [list('a')],
      state: [{ address: 'qualtrics.mailing_list.a', kind: 'qualtrics.mailing_list', remoteId: 'CG_a', attributes: { name: 'a', directory_id: 'POOL_1' }, dependsOn: [], preventDestroy: false }],
      live: { 'qualtrics.mailing_list': [{ id: 'CG_a', name: 'renamed by hand', attributes: { name: 'renamed by hand', directory_id: 'POOL_1' }, manageable: true }] },
    }));
    expect(p.changes[0]).toMatchObject({ action: 'update', reason: expect.stringContaining('outside tidemark') });
  });

  it('recreates a managed object deleted outside tidemark', () => {
    const p = computePlan(input({
      desired: [list('a')],
      state: [{ address: 'qualtrics.mailing_list.a', kind: 'qualtrics.mailing_list', remoteId: 'CG_gone', attributes: {}, dependsOn: [], preventDestroy: false }],
      live: { 'qualtrics.mailing_list': [] },
    }));
    expect(p.changes[0]).toMatchObject({ action: 'create', reason: expect.stringContaining('deleted outside tidemark') });
  });

  it('never touches unmanaged objects, and blocks a duplicate create when one has the same name', () => {
    const live = { 'qualtrics.mailing_list': [{ id: 'CG_x', name: 'a', attributes: { name: 'a', directory_id: 'POOL_1' }, manageable: true }, { id: 'CG_y', name: 'other', attributes: { name: 'other', directory_id: 'POOL_1' }, manageable: true }] };
    const p = computePlan(input({ desired: [list('a')], live }));
    expect(p.changes).toHaveLength(1);
    expect(p.changes[0]).toMatchObject({ action: 'create', blocked: { code: 'PLAN003' } });
    const adopt = computePlan(input({ desired: [list('a')], live, options: { allowDelete: false, adoptByName: true, targets: [] } }));
    expect(adopt.changes[0]).toMatchObject({ action: 'import', remote_id: 'CG_x', changed: [] });
  });

  it('gates deletes: blocked without --allow-delete, and prevent_destroy survives the removal of the spec', () => {
    const state: StateEntry[] = [
      { address: 'qualtrics.mailing_list.old', kind: 'qualtrics.mailing_list', remoteId: 'CG_o', attributes: { name: 'old' }, dependsOn: [], preventDestroy: false },
      { address: 'customerio.segment.keep', kind: 'customerio.segment', remoteId: '9', attributes: { name: 'k' }, dependsOn: [], preventDestroy: true },
      { address: 'qualtrics.mailing_list.gone', kind: 'qualtrics.mailing_list', remoteId: 'CG_g', attributes: { name: 'gone' }, dependsOn: [], preventDestroy: false },
    ];
    const live = {
      'qualtrics.mailing_list': [{ id: 'CG_o', name: 'old', attributes: { name: 'old', directory_id: 'POOL_1' }, manageable: true }],
      'customerio.segment': [{ id: '9', name: 'k', attributes: { name: 'k', description: '' }, manageable: true }],
    };
    const gated = byAddress(computePlan(input({ state, live })));
    expect(gated['qualtrics.mailing_list.old']).toMatchObject({ action: 'delete', blocked: { code: 'PLAN005' } });
    expect(gated['customerio.segment.keep']).toMatchObject({ action: 'delete', blocked: { code: 'PLAN004' } });
    expect(gated['qualtrics.mailing_list.gone']).toMatchObject({ action: 'forget' });
    const allowed = byAddress(computePlan(input({ state, live, options: { allowDelete: true, adoptByName: false, targets: [] } })));
    expect(allowed['qualtrics.mailing_list.old']!.blocked).toBeUndefined();
    expect(allowed['customerio.segment.keep']!.blocked?.code).toBe('PLAN004');
  });

  it('a declared rename moves the state entry and keeps the remote object', () => {
    const p = computePlan(input({
      desired: [list('new_name', { name: 'old' }, { movedFrom: { provider: 'qualtrics', type: 'mailing_list', name: 'old' } })],
      state: [{ address: 'qualtrics.mailing_list.old', kind: 'qualtrics.mailing_list', remoteId: 'CG_o', attributes: { name: 'old', directory_id: 'POOL_1' }, dependsOn: [], preventDestroy: false }],
      live: { 'qualtrics.mailing_list': [{ id: 'CG_o', name: 'old', attributes: { name: 'old', directory_id: 'POOL_1' }, manageable: true }] },
    }));
    expect(p.changes).toEqual([expect.objectContaining({ action: 'update', address: 'qualtrics.mailing_list.new_name', moved_from: 'qualtrics.mailing_list.old', remote_id: 'CG_o', changed: [] })]);
  });

  it('deletes dependants before what they depend on', () => {
    const state: StateEntry[] = [
      { address: 'qualtrics.mailing_list.fit', kind: 'qualtrics.mailing_list', remoteId: 'CG_1', attributes: {}, dependsOn: [], preventDestroy: false },
      { address: 'qualtrics.event_subscription.fit', kind: 'qualtrics.event_subscription', remoteId: 'SUB_1', attributes: {}, dependsOn: ['qualtrics.mailing_list.fit'], preventDestroy: false },
    ];
    const live = {
      'qualtrics.mailing_list': [{ id: 'CG_1', name: 'fit', attributes: { name: 'fit', directory_id: 'P' }, manageable: true }],
      'qualtrics.event_subscription': [{ id: 'SUB_1', name: 's', attributes: { topics: 't', publication_url: 'u' }, manageable: true }],
    };
    const p = computePlan(input({ state, live, options: { allowDelete: true, adoptByName: false, targets: [] } }));
    expect(p.changes.map((c) => c.address)).toEqual(['qualtrics.event_subscription.fit', 'qualtrics.mailing_list.fit']);
  });

  it('targets keep their dependencies and report unknown targets', () => {
    const p = computePlan(input({ desired: [sub('fit'), list('fit'), segment('vip')], options: { allowDelete: false, adoptByName: false, targets: ['qualtrics.event_subscription.fit', 'customerio.segment.nope'] } }));
    expect(p.changes.map((c) => c.address)).toEqual(['qualtrics.mailing_list.fit', 'qualtrics.event_subscription.fit']);
    expect(p.diagnostics.map((d) => d.code)).toEqual(['PLAN006']);
  });

  it('the same inputs give the same plan, and the live digest follows the live objects', () => {
    const args = input({ desired: [list('a')], live: { 'qualtrics.mailing_list': [] } });
    expect(JSON.stringify(computePlan(args))).toBe(JSON.stringify(computePlan(args)));
    const moved = computePlan({ ...args, state: [{ address: 'qualtrics.mailing_list.a', kind: 'qualtrics.mailing_list', remoteId: 'CG_a', attributes: {}, dependsOn: [], preventDestroy: false }], live: { 'qualtrics.mailing_list': [{ id: 'CG_a', name: 'a', attributes: { name: 'a', directory_id: 'POOL_1' }, manageable: true }] } });
    expect(moved.live.digest).not.toBe(computePlan(args).live.digest);
  });
});

/** A perfect service: applies a plan to live and state the way the executor does. */
let nextId = 1000;
function simulateApply(plan: Plan, state: StateEntry[], live: Record<string, LiveEntry[]>): { state: StateEntry[]; live: Record<string, LiveEntry[]> } {
  const st = new Map(state.map((s) => [s.address, { ...s }]));
  const lv = Object.fromEntries(Object.entries(live).map(([k, l]) => [k, l.map((x) => ({ ...x }))]));
  for (const c of plan.changes) {
    if (c.blocked || c.action === 'noop') continue;
    const kindList = (lv[c.kind] ??= []);
    if (c.action === 'delete' || c.action === 'forget') {
      lv[c.kind] = kindList.filter((l) => l.id !== c.remote_id);
      st.delete(c.address);
      continue;
    }
    let id = c.remote_id;
    if (c.action === 'create' || c.action === 'replace') {
      if (c.action === 'replace') lv[c.kind] = kindList.filter((l) => l.id !== c.remote_id);
      id = `ID_${nextId++}`;
      lv[c.kind]!.push({ id, name: String(c.after!.name ?? ''), attributes: c.after!, manageable: true });
    } else {
      const l = kindList.find((x) => x.id === id)!;
      for (const k of c.changed) l.attributes = { ...l.attributes, [k]: c.after![k]! };
    }
    if (c.moved_from) st.delete(c.moved_from);
    const l = lv[c.kind]!.find((x) => x.id === id)!;
    st.set(c.address, { address: c.address, kind: c.kind, remoteId: id!, attributes: l.attributes, dependsOn: c.depends_on, preventDestroy: false });
  }
  return { state: [...st.values()], live: lv };
}

describe('planner properties', () => {
  const names = fc.uniqueArray(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'), { maxLength: 6 });
  const world = fc.record({
    lists: names,
    segments: names,
    subs: names,
    liveNames: fc.array(fc.constantFrom('a', 'b', 'x', 'tidemark: a'), { maxLength: 4 }),
    dir: fc.constantFrom('POOL_1', 'POOL_2'),
  });

  it('a plan applied to a faithful service converges: the next plan has no changes', () => {
    fc.assert(
      fc.property(world, world, fc.boolean(), (before, after, adopt) => {
        const desiredOf = (w: typeof before) => [
          ...w.lists.map((n) => list(n, { directory_id: w.dir })),
          ...w.segments.map((n) => segment(n)),
          ...w.subs.filter((n) => w.lists.includes(n)).map((n) => sub(n)),
        ];
        const options = { allowDelete: true, adoptByName: adopt, targets: [] };
        const unmanaged = { 'qualtrics.mailing_list': before.liveNames.map((n, i) => ({ id: `U_${i}`, name: n, attributes: { name: n, directory_id: before.dir }, manageable: true })) };
        // First converge on `before`, then change the specs to `after` and converge again.
        const first = computePlan(input({ desired: desiredOf(before), live: unmanaged, options }));
        const adopted = new Set(first.changes.filter((c) => c.action === 'import').map((c) => c.remote_id));
        let s = simulateApply(first, [], unmanaged);
        let p = computePlan(input({ desired: desiredOf(before), state: s.state, live: s.live, options }));
        expect(p.changes.filter((c) => c.action !== 'noop' && !c.blocked)).toEqual([]);
        s = simulateApply(computePlan(input({ desired: desiredOf(after), state: s.state, live: s.live, options })), s.state, s.live);
        p = computePlan(input({ desired: desiredOf(after), state: s.state, live: s.live, options }));
        expect(p.changes.filter((c) => c.action !== 'noop' && !c.blocked)).toEqual([]);
        // Objects tidemark never adopted are never deleted or changed.
        for (const u of unmanaged['qualtrics.mailing_list']) {
          if (!adopted.has(u.id)) expect(s.live['qualtrics.mailing_list']!.some((l) => l.id === u.id && l.name === u.name)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('equal inputs plan no changes', () => {
    fc.assert(
      fc.property(names, (ns) => {
        const desired = ns.map((n) => list(n));
        const state = ns.map((n, i) => ({ address: `qualtrics.mailing_list.${n}`, kind: 'qualtrics.mailing_list', remoteId: `CG_${i}`, attributes: { name: n, directory_id: 'POOL_1' }, dependsOn: [], preventDestroy: false }));
        const live = { 'qualtrics.mailing_list': ns.map((n, i) => ({ id: `CG_${i}`, name: n, attributes: { name: n, directory_id: 'POOL_1' }, manageable: true })) };
        const p = computePlan(input({ desired, state, live }));
        expect(p.changes.every((c) => c.action === 'noop')).toBe(true);
      }),
    );
  });
});
