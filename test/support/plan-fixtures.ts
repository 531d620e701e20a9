/** Hand-built plans for renderer tests: small builders, a representative plan, and a fast-check arbitrary. */
import fc from 'fast-check';
import type { Diagnostic } from '../../reconciler/core/diagnostics.ts';
import { PLAN_FORMAT_VERSION, type Action, type AttributeValue, type Attributes, type Change, type DataImpact, type Plan } from '../../reconciler/plan/plan.ts';

const same = (a: AttributeValue | undefined, b: AttributeValue | undefined) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** Attribute names whose values differ, sorted (what the planner puts in `changed`). */
export function changedBetween(before: Attributes | null, after: Attributes | null): string[] {
  const keys = new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})]);
  return [...keys].filter((k) => !same(before?.[k], after?.[k])).sort();
}

type Extra = Partial<Omit<Change, 'action' | 'address' | 'before' | 'after'>>;

function change(action: Action, address: string, before: Attributes | null, after: Attributes | null, extra: Extra): Change {
  return {
    address,
    kind: address.split('.').slice(0, 2).join('.'),
    action,
    before,
    after,
    changed: changedBetween(before, after),
    reason: `${action} because the test says so`,
    depends_on: [],
    ...extra,
  };
}

export const create = (address: string, after: Attributes, extra: Extra = {}) => change('create', address, null, after, extra);
export const update = (address: string, remoteId: string, before: Attributes, after: Attributes, extra: Extra = {}) =>
  change('update', address, before, after, { remote_id: remoteId, ...extra });
export const replace = (address: string, remoteId: string, before: Attributes, after: Attributes, extra: Extra = {}) =>
  change('replace', address, before, after, { remote_id: remoteId, ...extra });
export const remove = (address: string, remoteId: string, before: Attributes, extra: Extra = {}) =>
  change('delete', address, before, null, { remote_id: remoteId, ...extra });
export const adopt = (address: string, remoteId: string, before: Attributes, after: Attributes, extra: Extra = {}) =>
  change('import', address, before, after, { remote_id: remoteId, ...extra });
export const forget = (address: string, remoteId: string, lastApplied: Attributes, extra: Extra = {}) =>
  change('forget', address, lastApplied, null, { remote_id: remoteId, changed: [], ...extra });
export const noop = (address: string, remoteId: string, before: Attributes, after: Attributes = before, extra: Extra = {}) =>
  change('noop', address, before, after, { remote_id: remoteId, changed: [], ...extra });

export const notComputed: DataImpact = { status: 'not_computed', note: 'run `tidemark sync plan` for row counts', sources: [], audiences: [] };

/** A plan around `changes`, with a summary that agrees with them. */
export function makePlan(changes: Change[], overrides: Partial<Omit<Plan, 'changes' | 'summary'>> = {}): Plan {
  const summary = { noop: 0, create: 0, import: 0, update: 0, replace: 0, delete: 0, forget: 0, blocked: 0 };
  for (const c of changes) {
    summary[c.action]++;
    if (c.blocked) summary.blocked++;
  }
  return {
    format_version: PLAN_FORMAT_VERSION,
    tool: { name: 'tidemark', version: '0.1.0' },
    environment: 'production',
    target: { mode: 'live', id: 'customerio:us:site=3f2a|qualtrics:iad1:directory=POOL_7hNcW3p5YqE2dVu', label: 'Customer.io site 3f2a (us) · Qualtrics iad1, directory POOL_7hNcW3p5YqE2dVu' },
    created_at: '2026-03-01T09:30:00.000Z',
    specs: { revision: '4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39', dirty: false, digest: 'a'.repeat(64), files: { 'specs/segments.yaml': 'b'.repeat(64) } },
    live: { digest: '0123456789abcdef'.repeat(4), objects: Object.fromEntries(changes.map((c) => [c.address, 'c'.repeat(64)])) },
    options: { allow_delete: false, adopt_by_name: false, targets: [] },
    changes,
    summary,
    diagnostics: [],
    data_impact: notComputed,
    ...overrides,
  };
}

const at = (file: string, line: number, col: number) => ({ file, start: { line, col }, end: { line, col: col + 4 } });

/** One change of every action, a blocked delete, a rename, both replace orders, ignored changes, diagnostics, counts. */
export function representativePlan(): Plan {
  const diagnostics: Diagnostic[] = [
    { severity: 'warning', code: 'SEG004', summary: 'Segment vip_customers has no freshness guard.', detail: 'Add freshness_guard so stale sources suppress members.', source: at('specs/segments.yaml', 12, 3) },
    { severity: 'error', code: 'PROV010', summary: 'Qualtrics refused to list directories (403).', address: 'qualtrics.mailing_list.nps_q1' },
  ];
  return makePlan(
    [
      create('customerio.segment.vip_customers', { name: 'VIP customers', description: 'Top 5% by lifetime value' }, { reason: 'declared in the specs, not created yet' }),
      adopt('customerio.segment.lapsed', '31', { name: 'Lapsed', description: '' }, { name: 'Lapsed', description: 'No order in 120 days' }, {
        changed: [],
        ignored_changes: ['description'],
        reason: 'adopts the existing unmanaged object "Lapsed" (31)',
      }),
      update('qualtrics.mailing_list.nps_q1', 'CG_1a2B', { name: 'NPS Q1', category: 'nps' }, { name: 'NPS Q1 2026', category: 'nps' }, {
        reason: 'the specs changed',
        moved_from: 'qualtrics.mailing_list.nps',
      }),
      replace('qualtrics.event_subscription.responses', 'SUB_9', { topics: ['surveyengine.completedResponse.SV_1'], publication_url: 'https://hooks.example/a' }, {
        topics: ['surveyengine.completedResponse.SV_2'],
        publication_url: 'https://hooks.example/a',
      }, { reason: 'topics cannot be changed in place', requires_replace: ['topics'], create_before_destroy: true }),
      replace('qualtrics.mailing_list.churn', 'CG_77', { name: 'Churn', library_id: 'UR_1' }, { name: 'Churn', library_id: 'UR_2' }, {
        reason: 'library_id cannot be changed in place',
        requires_replace: ['library_id'],
        create_before_destroy: false,
      }),
      noop('customerio.segment.winback', '12', { name: 'Win-back', description: 'old' }, { name: 'Win-back', description: 'new' }, {
        ignored_changes: ['description'],
        reason: 'up to date',
      }),
      noop('customerio.segment.loyal', '13', { name: 'Loyal', description: '' }, undefined, { reason: 'up to date' }),
      remove('customerio.segment.old_promo', '7', { name: 'Old promo', description: 'Spring 2025' }, {
        reason: 'its spec was removed',
        blocked: { code: 'PLAN005', message: 'deletes are only applied with --allow-delete' },
      }),
      forget('customerio.segment.gone', '8', { name: 'Gone', description: '' }, { reason: 'its spec was removed and the object is already gone; only the state entry is removed' }),
    ],
    {
      specs: { revision: '4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39', dirty: true, digest: 'a'.repeat(64), files: {} },
      diagnostics,
      data_impact: {
        status: 'computed',
        sources: [
          { name: 'shopify_orders', new: 120, changed: 14, unchanged: 20480, rejected: 2, null_blocked: 1 },
          { name: 'recharge_subscriptions', new: 0, changed: 3, unchanged: 900, rejected: 0, null_blocked: 0 },
        ],
        audiences: [{ name: 'vip_customers', joining: 40, leaving: 5 }],
      },
    },
  );
}

/** The same data with every object's keys inserted in reverse order (renders must not depend on it). */
export function reverseKeyOrder<T>(value: T): T {
  if (Array.isArray(value)) return value.map(reverseKeyOrder) as T;
  if (value !== null && typeof value === 'object') {
    // fromEntries defines own properties: assigning out['__proto__'] would set the prototype instead.
    return Object.fromEntries(Object.keys(value).reverse().map((k) => [k, reverseKeyOrder((value as Record<string, unknown>)[k])])) as T;
  }
  return value;
}

// Strings that try to break things: markdown and HTML syntax, fences, control characters, mentions.
const nasty = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.constantFrom('|', '<details>', '</details>', '```', '````diff', '`', '-->', '\u001b[31mred', 'a\nb', '@octocat', '*_~[x](y)', '\\', '\u202eevil', ''),
  fc.string({ unit: 'binary', maxLength: 20 }),
);
const value: fc.Arbitrary<AttributeValue> = fc.oneof(nasty, fc.integer(), fc.boolean(), fc.constant(null), fc.array(nasty, { maxLength: 3 }));
const attributes = fc.dictionary(fc.oneof(fc.constantFrom('name', 'description', 'topics'), nasty), value, { maxKeys: 4 });
const actions: Action[] = ['noop', 'create', 'import', 'update', 'replace', 'delete', 'forget'];

const arbitraryChange: fc.Arbitrary<Change> = fc
  .record({
    action: fc.constantFrom(...actions),
    address: nasty,
    remote_id: fc.option(nasty, { nil: undefined }),
    before: attributes,
    after: attributes,
    reason: nasty,
    moved_from: fc.option(nasty, { nil: undefined }),
    blocked: fc.option(fc.record({ code: nasty, message: nasty }), { nil: undefined }),
    create_before_destroy: fc.option(fc.boolean(), { nil: undefined }),
    extra: fc.array(nasty, { maxLength: 2 }),
  })
  .map(({ action, address, remote_id, before, after, reason, moved_from, blocked, create_before_destroy, extra }) => {
    const b = action === 'create' ? null : before;
    const a = action === 'delete' || action === 'forget' ? null : action === 'noop' ? before : after;
    const changed = changedBetween(b, a);
    const c: Change = { address, kind: 'customerio.segment', action, before: b, after: a, changed, reason, depends_on: [] };
    if (remote_id !== undefined && action !== 'create') c.remote_id = remote_id;
    if (moved_from !== undefined) c.moved_from = moved_from;
    if (blocked !== undefined) c.blocked = blocked;
    if (action === 'replace') {
      c.requires_replace = changed.slice(0, 1);
      if (create_before_destroy !== undefined) c.create_before_destroy = create_before_destroy;
    }
    if (extra.length > 0) c.ignored_changes = extra;
    return c;
  });

const arbitraryDiagnostic: fc.Arbitrary<Diagnostic> = fc.record(
  {
    severity: fc.constantFrom('error' as const, 'warning' as const),
    code: nasty,
    summary: nasty,
    detail: nasty,
    address: nasty,
    source: fc.record({ file: nasty, start: fc.record({ line: fc.nat(), col: fc.nat() }), end: fc.record({ line: fc.nat(), col: fc.nat() }) }),
  },
  { requiredKeys: ['severity', 'code', 'summary'] },
);

const arbitraryImpact: fc.Arbitrary<DataImpact> = fc.oneof(
  fc.record({ status: fc.constant('not_computed' as const), note: fc.option(nasty, { nil: undefined }), sources: fc.constant<DataImpact['sources']>([]), audiences: fc.constant<DataImpact['audiences']>([]) }, { requiredKeys: ['status', 'sources', 'audiences'] }),
  fc.record({
    status: fc.constant('computed' as const),
    sources: fc.array(fc.record({ name: nasty, new: fc.nat(), changed: fc.nat(), unchanged: fc.nat(), rejected: fc.nat(), null_blocked: fc.nat() }), { maxLength: 3 }),
    audiences: fc.array(fc.record({ name: nasty, joining: fc.nat(), leaving: fc.nat() }), { maxLength: 3 }),
  }),
);

/** Random plans with hostile strings, up to `maxChanges` changes. */
export function arbitraryPlan(maxChanges = 40): fc.Arbitrary<Plan> {
  return fc
    .record({
      changes: fc.array(arbitraryChange, { maxLength: maxChanges }),
      environment: nasty,
      revision: fc.option(fc.stringMatching(/^[0-9a-f]{40}$/), { nil: null }),
      dirty: fc.boolean(),
      diagnostics: fc.array(arbitraryDiagnostic, { maxLength: 5 }),
      data_impact: arbitraryImpact,
      targets: fc.array(nasty, { maxLength: 2 }),
    })
    .map(({ changes, environment, revision, dirty, diagnostics, data_impact, targets }) =>
      makePlan(changes, {
        environment,
        specs: { revision, dirty, digest: 'a'.repeat(64), files: {} },
        diagnostics,
        data_impact,
        options: { allow_delete: false, adopt_by_name: false, targets },
      }),
    );
}
