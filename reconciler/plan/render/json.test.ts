import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, renderPlanJson } from './json.ts';
import { arbitraryPlan, makePlan, representativePlan, reverseKeyOrder } from '../../../test/support/plan-fixtures.ts';

describe('canonicalJson', () => {
  it('sorts keys recursively, inside arrays too, with a 2-space indent', () => {
    expect(canonicalJson({ b: 1, a: { d: [{ z: true, y: null }], c: 'x' } })).toBe(
      ['{', '  "a": {', '    "c": "x",', '    "d": [', '      {', '        "y": null,', '        "z": true', '      }', '    ]', '  },', '  "b": 1', '}'].join('\n'),
    );
  });

  it('sorts integer-like keys as strings, which JSON.stringify on a sorted copy cannot do', () => {
    expect(canonicalJson({ 2: 'two', 10: 'ten', a: 'a' })).toBe('{\n  "10": "ten",\n  "2": "two",\n  "a": "a"\n}');
  });

  it('follows JSON.stringify for values JSON has no direct form for', () => {
    const when = new Date('2026-01-02T03:04:05.000Z');
    expect(canonicalJson({ skip: undefined, when, list: [undefined, Number.NaN, -0], empty: {}, none: [] })).toBe(
      '{\n  "empty": {},\n  "list": [\n    null,\n    null,\n    0\n  ],\n  "none": [],\n  "when": "2026-01-02T03:04:05.000Z"\n}',
    );
  });

  it('refuses cycles, bigints and a top-level value with no JSON form', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => canonicalJson(cyclic)).toThrow(/cyclic/);
    expect(() => canonicalJson({ n: 1n })).toThrow(/BigInt/);
    expect(() => canonicalJson(undefined)).toThrow(TypeError);
  });

  it('allows the same object twice when it is not a cycle', () => {
    const shared = { k: 1 };
    expect(canonicalJson([shared, shared])).toBe('[\n  {\n    "k": 1\n  },\n  {\n    "k": 1\n  }\n]');
  });

  it('round-trips any JSON value and ignores key insertion order', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const out = canonicalJson(v);
        expect(JSON.parse(out)).toEqual(JSON.parse(JSON.stringify(v)));
        expect(canonicalJson(reverseKeyOrder(v))).toBe(out);
      }),
    );
  });
});

describe('renderPlanJson', () => {
  it('ends with a newline and parses back to the plan', () => {
    const plan = representativePlan();
    const out = renderPlanJson(plan);
    expect(out.endsWith('}\n')).toBe(true);
    expect(JSON.parse(out)).toEqual(plan);
    expect(out.split('\n')[1]).toBe('  "changes": [');
  });

  it('renders equal plans byte-identically whatever the key insertion order', () => {
    const plan = representativePlan();
    expect(renderPlanJson(reverseKeyOrder(plan))).toBe(renderPlanJson(plan));
    fc.assert(fc.property(arbitraryPlan(10), (p) => renderPlanJson(reverseKeyOrder(p)) === renderPlanJson(p)));
  });

  it('keeps change order, which is the apply order', () => {
    const plan = makePlan(representativePlan().changes.slice().reverse());
    const parsed = JSON.parse(renderPlanJson(plan)) as { changes: Array<{ address: string }> };
    expect(parsed.changes.map((c) => c.address)).toEqual(plan.changes.map((c) => c.address));
  });

  it('never contains raw control characters', () => {
    const plan = makePlan([], { environment: 'prod\u001b[31m\u0007' });
    expect(renderPlanJson(plan)).toContain('"environment": "prod\\u001b[31m\\u0007"');
  });
});
