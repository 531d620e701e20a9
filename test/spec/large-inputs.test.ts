/**
 * Large spec sets validate with bounded output (issue 8, point 7). The timings are measured in
 * test/bench/validate.bench.ts, not asserted here: these tests check what is printed and counted.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { countBySeverity, summarizeByCode, type Diagnostic } from '../../reconciler/core/diagnostics.ts';
import { renderDiagnosticsText } from '../../reconciler/plan/render/diagnostics.ts';
import { styleFor } from '../../reconciler/core/style.ts';
import { exclusiveGroupOverlaps, pairVerdict } from '../../reconciler/spec/rules/segments.ts';
import { validateSpecs } from '../../reconciler/spec/validate.ts';
import { disjointGroup, manyDocuments, overlappingGroup, unknownKeys } from '../support/spec-large-inputs.ts';

const plain = styleFor({}, { NO_COLOR: '1' });
const LONG = 180_000;

describe('bounded output', () => {
  it('past 50 diagnostics of one code the rest are one counted summary, and the totals stay true', () => {
    const diags: Diagnostic[] = Array.from({ length: 120 }, (_, i) => ({
      severity: 'error',
      code: 'SPEC004',
      summary: `Unknown key "k${i}".`,
      source: { file: 'a.yaml', start: { line: i + 1, col: 1 }, end: { line: i + 1, col: 3 } },
    }));
    diags.push({ severity: 'warning', code: 'SURV010', summary: 'No holdout.' });
    const out = summarizeByCode(diags);
    expect(out).toHaveLength(52);
    expect(out.filter((d) => d.code === 'SPEC004')).toHaveLength(51);
    const summary = out.find((d) => d.count !== undefined)!;
    expect(summary).toMatchObject({ severity: 'error', code: 'SPEC004', count: 70, source: { start: { line: 51 } } });
    expect(summary.summary).toBe('…and 70 more SPEC004 like the 50 above (not shown).');
    expect(countBySeverity(out)).toEqual({ errors: 120, warnings: 1 });
  });

  it('1,500 overlapping segments in one exclusive group: one finding per segment, 50 shown, the rest counted', { timeout: LONG }, () => {
    const r = validateSpecs(overlappingGroup(1500));
    const seg = r.diagnostics.filter((d) => d.code === 'SEG001');
    expect(seg).toHaveLength(51);
    expect(seg[50]!.summary).toBe('…and 1,449 more SEG001 like the 50 above (not shown).');
    expect(countBySeverity(seg).errors).toBe(1499);
    // Members are compared in name order (seg_0, seg_1, seg_10, seg_100, …, seg_2): seg_2 comes after 612 of them.
    expect(seg[1]!.summary).toBe('Segment "seg_2" is in exclusive group "tiers" with "seg_0", "seg_1", "seg_10" and 609 more, but a customer can be in both: e.g. one with order_count=2 is in "seg_2" and "seg_0".');
    const text = renderDiagnosticsText(r.diagnostics, plain);
    expect(text.length).toBeLessThan(100_000);
  });

  it('1,500 segments keyed on one field are checked without comparing every pair, and are clean', { timeout: LONG }, () => {
    expect(validateSpecs(disjointGroup(1500)).diagnostics).toEqual([]);
  });

  it('50,000 unknown keys: 50 with "did you mean" and one summary counting the rest', { timeout: LONG }, () => {
    const r = validateSpecs(unknownKeys(50_000));
    const unknown = r.diagnostics.filter((d) => d.code === 'SPEC004');
    expect(unknown).toHaveLength(51);
    expect(unknown[0]!.summary).toBe('Unknown key "extra_key_0" in this spec.');
    expect(unknown[0]!.source!.start.line).toBe(4);
    expect(unknown[50]).toMatchObject({ count: 49_950, summary: '…and 49,950 more SPEC004 like the 50 above (not shown).' });
    expect(countBySeverity(r.diagnostics).errors).toBe(50_000);
    expect(renderDiagnosticsText(r.diagnostics, plain).length).toBeLessThan(20_000);
  });

  it('20,000 documents validate into one model', { timeout: LONG }, () => {
    const r = validateSpecs(manyDocuments(20_000));
    expect(r.diagnostics).toEqual([]);
    expect(r.model?.segments.size).toBe(20_000);
    expect(r.counts.Segment).toBe(20_000);
  });
});

describe('exclusive groups', () => {
  // Members drawn from conditions that bucket (eq on one field), that do not (gte, in, events) and that
  // exclude each other by name: the bucketed check must find exactly the pairs a full comparison finds.
  const condition = fc.oneof(
    fc.record({ attribute: fc.record({ field: fc.constantFrom('vip_tier', 'order_count'), op: fc.constant('eq'), value: fc.constantFrom('a', 'b', 'c') }) }),
    fc.record({ attribute: fc.record({ field: fc.constant('order_count'), op: fc.constantFrom('gte', 'lt'), value: fc.integer({ min: 0, max: 3 }) }) }),
    fc.record({ attribute: fc.record({ field: fc.constant('vip_tier'), op: fc.constant('in'), value: fc.subarray(['a', 'b', 'c'], { minLength: 1 }) }) }),
    fc.record({ event: fc.record({ name: fc.constant('order_delivered'), occurred: fc.boolean(), from: fc.constantFrom('1d', '5d'), to: fc.constant('30d') }) }),
    fc.record({ not: fc.record({ segment: fc.constantFrom('seg_0', 'seg_1') }) }),
  );

  it('finds the same overlapping pairs as comparing every pair', { timeout: LONG }, () => {
    fc.assert(
      fc.property(fc.array(fc.array(condition, { minLength: 1, maxLength: 3 }), { minLength: 2, maxLength: 9 }), (groups) => {
        const docs = groups.map((all, i) => `kind: Segment\nname: seg_${i}\nexclusive_group: g\nconditions: ${JSON.stringify({ all })}\n`);
        const files = [overlappingGroup(0)[0]!, { path: 'specs/segments.yaml', text: docs.join('---\n') }];
        const r = validateSpecs(files, { rules: [] });
        // A segment that excludes itself is a reference loop (REF006): no model, nothing to compare.
        fc.pre(r.model !== undefined);
        const model = r.model!;
        const segs = [...model.segments.values()].sort((a, b) => Number(a.name.slice(4)) - Number(b.name.slice(4)));
        const expected = new Map<string, number>();
        for (let j = 0; j < segs.length; j++) {
          for (let i = 0; i < j; i++) if (pairVerdict(model, segs[i]!, segs[j]!).verdict === 'overlap') expected.set(segs[j]!.name, (expected.get(segs[j]!.name) ?? 0) + 1);
        }
        const found = new Map(exclusiveGroupOverlaps(model).map((f) => {
          const m = /with (.*), but/.exec(f.summary)![1]!;
          const more = /and (\d+) more$/.exec(m);
          const named = m.replace(/ and \d+ more$/, '').split(', ').length;
          return [f.spec.name, named + (more ? Number(more[1]) : 0)] as const;
        }));
        expect(found).toEqual(expected);
      }),
      { numRuns: 150, seed: 8 },
    );
  });

  it('stops after its budget of comparisons and says the group is not shown to be exclusive', () => {
    const r = validateSpecs(overlappingGroup(30), { rules: [] });
    const findings = exclusiveGroupOverlaps(r.model!, 10);
    expect(findings.at(-1)!.summary).toBe('Exclusive group "tiers" has 30 segments: overlap checks stopped after 10 pairs, so it is not shown to be exclusive.');
    expect(exclusiveGroupOverlaps(r.model!).map((f) => f.summary).join('\n')).not.toContain('stopped');
  });
});
