import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { colorStyle, plainStyle } from '../../core/style.ts';
import type { Plan } from '../plan.ts';
import {
  adopt,
  arbitraryPlan,
  create,
  forget,
  makePlan,
  noop,
  remove,
  replace,
  representativePlan,
  reverseKeyOrder,
  update,
} from '../../../test/support/plan-fixtures.ts';
import { countChanges, describeDeletes, formatPlanSummary, renderPlanText } from './text.ts';

const text = (plan: Plan) => renderPlanText(plan, plainStyle);
const lines = (plan: Plan) => text(plan).trimEnd().split('\n');
const blocked = { code: 'PLAN005', message: 'deletes are only applied with --allow-delete' };

describe('renderPlanText', () => {
  it('pins the layout of a representative plan', () => {
    expect(text(representativePlan())).toMatchInlineSnapshot(`
      "! This plan deletes 3 objects (2 by replacement; 1 blocked, not applied).

      tidemark plan for production
      Against: Customer.io site 3f2a (us) · Qualtrics iad1, directory POOL_7hNcW3p5YqE2dVu
      Specs: 4f2a9c1 + uncommitted changes

      Symbols:
          + create
          ~ update in place
        -/+ replace: delete, then create
        +/- replace: create, then delete
          - delete
         <= import: adopt an existing object
          x forget: already gone, removed from state only
          = no change: differences that cannot be applied

          + customerio.segment.vip_customers
            # declared in the specs, not created yet
            + description: "Top 5% by lifetime value"
            + name: "VIP customers"

         <= customerio.segment.lapsed (id 31)
            # adopts the existing unmanaged object "Lapsed" (31)
            ~ description: "" -> "No order in 120 days" (cannot be changed in place; not applied)

          ~ qualtrics.mailing_list.nps_q1 (id CG_1a2B)
            # the specs changed
            # renamed from qualtrics.mailing_list.nps
            ~ name: "NPS Q1" -> "NPS Q1 2026"

        +/- qualtrics.event_subscription.responses (id SUB_9)
            # topics cannot be changed in place
            ~ topics: ["surveyengine.completedResponse.SV_1"] -> ["surveyengine.completedResponse.SV_2"] (forces replacement)

        -/+ qualtrics.mailing_list.churn (id CG_77)
            # library_id cannot be changed in place
            ~ library_id: "UR_1" -> "UR_2" (forces replacement)

          = customerio.segment.winback (id 12)
            # up to date
            ~ description: "old" -> "new" (cannot be changed in place; not applied)

          - customerio.segment.old_promo (id 7)
            # its spec was removed
            ! blocked, will not be applied: PLAN005 deletes are only applied with --allow-delete
            - description: "Spring 2025"
            - name: "Old promo"

          x customerio.segment.gone (id 8)
            # its spec was removed and the object is already gone; only the state entry is removed
            - description: ""
            - name: "Gone"

      Diagnostics:
        qualtrics.mailing_list.nps_q1: error PROV010 Qualtrics refused to list directories (403).
        specs/segments.yaml:12:3: warning SEG004 Segment vip_customers has no freshness guard.
            Add freshness_guard so stale sources suppress members.

      Data impact:
        Source                  New  Changed  Unchanged  Rejected  Blocked nulls
        shopify_orders          120       14      20480         2              1
        recharge_subscriptions    0        3        900         0              0

        Audience       Joining  Leaving
        vip_customers       40        5

      Plan: 1 to create, 1 to update, 2 to replace, 1 to delete, 1 to import, 1 to forget (1 blocked). 2 unchanged.
      "
    `);
  });

  it('renders an empty plan as no changes', () => {
    expect(text(makePlan([]))).toMatchInlineSnapshot(`
      "tidemark plan for production
      Against: Customer.io site 3f2a (us) · Qualtrics iad1, directory POOL_7hNcW3p5YqE2dVu
      Specs: 4f2a9c1

      Data impact: not computed (run \`tidemark sync plan\` for row counts).

      No changes. Live Customer.io and Qualtrics match the specs.
      "
    `);
  });

  it('says so on the first line when anything is deleted, blocked deletes and replacements included', () => {
    const del = makePlan([create('customerio.segment.a', { name: 'A' }), remove('customerio.segment.b', '2', { name: 'B' }, { blocked })]);
    expect(lines(del)[0]).toBe('! This plan deletes 1 object (1 blocked, not applied).');
    const rep = makePlan([replace('qualtrics.mailing_list.c', 'CG_1', { library_id: 'UR_1' }, { library_id: 'UR_2' }, { requires_replace: ['library_id'] })]);
    expect(lines(rep)[0]).toBe('! This plan deletes 1 object (1 by replacement).');
  });

  it('has no delete warning for creates, updates, imports and forgets', () => {
    const plan = makePlan([
      create('customerio.segment.a', { name: 'A' }),
      update('customerio.segment.b', '2', { name: 'B' }, { name: 'B2' }),
      adopt('customerio.segment.c', '3', { name: 'C' }, { name: 'C' }),
      forget('customerio.segment.d', '4', { name: 'D' }),
    ]);
    expect(lines(plan)[0]).toBe('tidemark plan for production');
    expect(describeDeletes(plan)).toBeUndefined();
  });

  it('shows the short specs revision and whether the tree was dirty', () => {
    const at = (specs: Partial<Plan['specs']>) => lines(makePlan([], { specs: { ...makePlan([]).specs, ...specs } }))[2];
    expect(at({ dirty: false })).toBe('Specs: 4f2a9c1');
    expect(at({ dirty: true })).toBe('Specs: 4f2a9c1 + uncommitted changes');
    expect(at({ revision: null, dirty: false })).toBe('Specs: not in git');
  });

  it('says which services it was made against, the sandbox in colour so it stands out', () => {
    expect(lines(makePlan([]))[1]).toBe('Against: Customer.io site 3f2a (us) · Qualtrics iad1, directory POOL_7hNcW3p5YqE2dVu');
    const sandbox = makePlan([], { target: { mode: 'sandbox', id: 'sandbox:production', label: 'the embedded sandbox' } });
    expect(lines(sandbox)[1]).toBe('Against: the embedded sandbox');
    expect(renderPlanText(sandbox, colorStyle).split('\n')[1]).toContain('\u001b[33mthe embedded sandbox');
  });

  it('says when the plan was limited to targets', () => {
    const plan = makePlan([], { options: { allow_delete: false, adopt_by_name: false, targets: ['customerio.segment.a'] } });
    expect(lines(plan)[3]).toBe('Targets: customerio.segment.a (and what they depend on; everything else is left out)');
  });

  it('shows only the changed attributes of an update, and all of them for a create or delete', () => {
    const out = text(
      makePlan([
        update('customerio.segment.b', '2', { name: 'B', description: 'same' }, { name: 'B2', description: 'same' }),
        create('customerio.segment.a', { name: 'A', description: 'new' }),
        remove('customerio.segment.c', '3', { name: 'C', description: 'gone' }, { blocked }),
      ]),
    );
    expect(out).toContain('      ~ name: "B" -> "B2"\n');
    expect(out).not.toContain('"same"');
    expect(out).toContain('      + description: "new"\n      + name: "A"\n');
    expect(out).toContain('      - description: "gone"\n      - name: "C"\n');
  });

  it('uses -/+ or +/- for a replace depending on create_before_destroy, and marks forcing attributes', () => {
    const before = { topics: ['a'], url: 'u' };
    const after = { topics: ['b'], url: 'u' };
    const plan = makePlan([
      replace('qualtrics.event_subscription.x', 'S1', before, after, { requires_replace: ['topics'], create_before_destroy: true }),
      replace('qualtrics.event_subscription.y', 'S2', before, after, { requires_replace: ['topics'] }),
    ]);
    const out = lines(plan);
    expect(out).toContain('  +/- qualtrics.event_subscription.x (id S1)');
    expect(out).toContain('  -/+ qualtrics.event_subscription.y (id S2)');
    expect(out).toContain('      ~ topics: ["a"] -> ["b"] (forces replacement)');
  });

  it('marks blocked changes as not applied, with the code and message', () => {
    const out = lines(makePlan([remove('customerio.segment.c', '3', { name: 'C' }, { blocked })]));
    expect(out).toContain('      ! blocked, will not be applied: PLAN005 deletes are only applied with --allow-delete');
    expect(out.at(-1)).toBe('Plan: 0 to create, 0 to update, 0 to replace, 1 to delete, 0 to import (1 blocked). 0 unchanged.');
  });

  it('notes renames and attributes that cannot change in place', () => {
    const out = lines(
      makePlan([
        update('customerio.segment.new', '5', { name: 'N' }, { name: 'N' }, { moved_from: 'customerio.segment.old', reason: 'renamed' }),
        noop('customerio.segment.w', '6', { description: 'a' }, { description: 'b' }, { ignored_changes: ['description'] }),
      ]),
    );
    expect(out).toContain('      # renamed from customerio.segment.old');
    expect(out).toContain('    = customerio.segment.w (id 6)');
    expect(out).toContain('      ~ description: "a" -> "b" (cannot be changed in place; not applied)');
  });

  it('counts noops without listing them', () => {
    const plan = makePlan([noop('customerio.segment.a', '1', { name: 'A' }), update('customerio.segment.b', '2', { name: 'B' }, { name: 'C' })]);
    const out = text(plan);
    expect(out).not.toContain('customerio.segment.a');
    expect(lines(plan).at(-1)).toBe('Plan: 0 to create, 1 to update, 0 to replace, 0 to delete, 0 to import. 1 unchanged.');
  });

  it('prints diagnostics sorted by location as file:line:col: severity CODE summary', () => {
    const plan = makePlan([], {
      diagnostics: [
        { severity: 'warning', code: 'SEG004', summary: 'Late.', source: { file: 'specs/b.yaml', start: { line: 2, col: 1 }, end: { line: 2, col: 4 } } },
        { severity: 'error', code: 'REF001', summary: 'Missing.', detail: 'Declare it.', source: { file: 'specs/a.yaml', start: { line: 9, col: 5 }, end: { line: 9, col: 9 } } },
      ],
    });
    const out = lines(plan);
    const start = out.indexOf('Diagnostics:');
    expect(out.slice(start, start + 4)).toEqual([
      'Diagnostics:',
      '  specs/a.yaml:9:5: error REF001 Missing.',
      '      Declare it.',
      '  specs/b.yaml:2:1: warning SEG004 Late.',
    ]);
  });

  it('does not claim that live matches the specs when the plan has errors', () => {
    const plan = makePlan([], { diagnostics: [{ severity: 'error', code: 'PLAN001', summary: 'No provider.' }] });
    expect(lines(plan).at(-1)).toBe('No changes planned, but the plan has 1 error: nothing can be applied until they are fixed.');
  });

  it('says data impact was not computed, with the note, in one line', () => {
    const out = lines(makePlan([]));
    expect(out.filter((l) => l.startsWith('Data impact'))).toEqual(['Data impact: not computed (run `tidemark sync plan` for row counts).']);
    const bare = lines(makePlan([], { data_impact: { status: 'not_computed', sources: [], audiences: [] } }));
    expect(bare).toContain('Data impact: not computed.');
    const none = lines(makePlan([], { data_impact: { status: 'computed', sources: [], audiences: [] } }));
    expect(none).toContain('Data impact: no source rows or audience members change.');
  });

  it('writes control characters and bidi overrides from services as visible escapes', () => {
    const plan = makePlan([update('customerio.segment.x', '1\u001b[2J', { name: 'a\u001b[31m' }, { name: 'b\u202e' }, { reason: 'line\nbreak\u0007' })]);
    const out = text(plan);
    expect(out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/);
    expect(out).toContain('(id 1\\u001b[2J)');
    expect(out).toContain('~ name: "a\\u001b[31m" -> "b\\u202e"');
    expect(out).toContain('# line\\nbreak\\u0007');
  });

  it('colours only through the style it is given', () => {
    const plan = representativePlan();
    expect(renderPlanText(plan, colorStyle)).toContain('\u001b[31m');
    expect(text(plan)).not.toContain('\u001b');
  });

  it('renders equal plans byte-identically whatever the key insertion order', () => {
    const plan = representativePlan();
    expect(renderPlanText(reverseKeyOrder(plan), colorStyle)).toBe(renderPlanText(plan, colorStyle));
  });

  it('never throws on random plans, keeps the first-line warning rule and ends with the summary', () => {
    fc.assert(
      fc.property(arbitraryPlan(), (plan) => {
        const out = text(plan);
        expect(out).not.toContain('\u001b');
        const all = out.trimEnd().split('\n');
        const deletes = plan.changes.some((c) => c.action === 'delete' || c.action === 'replace');
        expect(all[0]!.startsWith('! This plan deletes')).toBe(deletes);
        expect(all.at(-1)).toBe(formatPlanSummary(plan));
        expect(renderPlanText(reverseKeyOrder(plan), plainStyle)).toBe(out);
      }),
      { numRuns: 200 },
    );
  });
});

describe('countChanges', () => {
  it('counts every action and the blocked ones among them', () => {
    const plan = representativePlan();
    expect(countChanges(plan)).toEqual(plan.summary);
  });
});
