/** The Segment schema's own checks on between and event counts: reversed ranges are located errors. */
import { describe, expect, it } from 'vitest';
import { baseSpecs, toFiles, type SpecSet } from '../../../test/support/spec-fixtures.ts';
import { validateSpecs } from '../validate.ts';

function run(mutate: (s: SpecSet) => void) {
  const s = baseSpecs();
  mutate(s);
  return validateSpecs(toFiles(s));
}

const setConditions = (conditions: unknown) => (s: SpecSet) => {
  // apparel_buyers: not a survey audience, so only this condition is under test.
  s.segments[1]!.conditions = conditions;
  delete s.segments[1]!.exclusive_group;
};

const spec = (r: ReturnType<typeof run>) => r.diagnostics.filter((d) => d.code.startsWith('SPEC')).map((d) => d.summary);

describe('between', () => {
  it('a reversed range is an error at its value, quoting both ends', () => {
    const r = run(setConditions({ attribute: { field: 'order_count', op: 'between', value: [20, 10] } }));
    expect(spec(r)).toEqual(['"conditions.attribute.value": between is reversed: the low end 20 is above the high end 10; write [low, high].']);
    expect(r.diagnostics[0]!.source).toMatchObject({ file: 'specs/segments.yaml' });
    expect(r.model).toBeUndefined();
  });

  it('reversed ISO instants are an error too', () => {
    const r = run(setConditions({ attribute: { field: 'last_purchase_at', op: 'between', value: ['2026-02-01T00:00:00Z', '2026-01-01T00:00:00Z'] } }));
    expect(spec(r)[0]).toMatch(/^"conditions\.attribute\.value": between is reversed/);
  });

  it('needs exactly two ends', () => {
    expect(spec(run(setConditions({ attribute: { field: 'order_count', op: 'between', value: 3 } }))))
      .toEqual(['"conditions.attribute.value": between needs value: [low, high], two numbers or two ISO timestamps, e.g. [10, 20] (found 3).']);
    expect(spec(run(setConditions({ attribute: { field: 'order_count', op: 'between', value: [1, 2, 3] } })))).toHaveLength(1);
  });

  it('a range of one value, and ranges the right way round, are clean', () => {
    for (const value of [[10, 10], [1, 20], ['2026-01-01T00:00:00Z', '2026-02-01T00:00:00Z']]) {
      const field = typeof value[0] === 'string' ? 'last_purchase_at' : 'order_count';
      expect(spec(run(setConditions({ attribute: { field, op: 'between', value } })))).toEqual([]);
    }
  });
});

describe('contains', () => {
  it('is accepted with a text value', () => {
    expect(spec(run(setConditions({ attribute: { field: 'reason', op: 'contains', value: 'late' } })))).toEqual([]);
  });
});

describe('event count', () => {
  it('min above max is an error at max', () => {
    const r = run(setConditions({ event: { name: 'order_delivered', to: '30d', count: { min: 3, max: 1 } } }));
    expect(spec(r)).toEqual(['"conditions.event.count.max": count is reversed: min 3 is above max 1, so no one can match (found 1).']);
  });

  it('a negative or fractional count is refused', () => {
    expect(spec(run(setConditions({ event: { name: 'order_delivered', count: { min: -1 } } })))).toHaveLength(1);
    expect(spec(run(setConditions({ event: { name: 'order_delivered', count: { min: 1.5 } } })))).toHaveLength(1);
  });

  it('min alone, max alone and min == max are clean', () => {
    for (const count of [{ min: 2 }, { max: 4 }, { min: 2, max: 2 }, {}]) {
      expect(spec(run(setConditions({ event: { name: 'order_delivered', to: '30d', count } })))).toEqual([]);
    }
  });
});
