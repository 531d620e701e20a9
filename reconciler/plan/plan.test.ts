import { describe, expect, it } from 'vitest';
import { makePlan } from '../../test/support/plan-fixtures.ts';
import { readSavedPlan, type Plan } from './plan.ts';

describe('readSavedPlan', () => {
  it('reads the `target.kind` of plans saved by older versions as `target.mode`', () => {
    const plan = makePlan([]);
    const { mode, ...target } = plan.target;
    const older = JSON.parse(JSON.stringify({ ...plan, target: { kind: mode, ...target } })) as Plan;
    expect(readSavedPlan(older)).toEqual(plan);
  });

  it('leaves a current plan, and one with no recorded target, as they are', () => {
    const plan = makePlan([]);
    expect(readSavedPlan(plan)).toBe(plan);
    const { target: _target, ...untargeted } = plan;
    expect(readSavedPlan(untargeted as Plan)).toEqual(untargeted);
  });
});
