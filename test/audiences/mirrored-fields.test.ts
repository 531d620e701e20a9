/**
 * The mirror keeps only the attributes tidemark reads back (audiences/mirrored-fields.ts): every field a
 * Segment's conditions test, at any depth, the survey email field, and each SurveyTarget's zone field and
 * payload. A field only a message would use is not kept.
 */
import { describe, expect, it } from 'vitest';
import { mirroredFields } from '../../reconciler/spec/mirrored-fields.ts';
import { validateSpecs } from '../../reconciler/spec/validate.ts';
import { baseSpecs, toFiles, type SpecSet } from '../support/spec-fixtures.ts';

function fieldsOf(set: SpecSet): string[] {
  const result = validateSpecs(toFiles(set));
  expect(result.model, JSON.stringify(result.diagnostics.filter((d) => d.severity === 'error'))).toBeDefined();
  return mirroredFields(result.model!);
}

describe('mirroredFields', () => {
  it('keeps the segment, email and payload fields, and no other', () => {
    // last_purchase_at and the subscription fields are delivered, but nothing reads them back.
    expect(fieldsOf(baseSpecs())).toEqual(['category', 'email', 'order_count']);
  });

  it('walks nested conditions of every segment, including ones no survey uses', () => {
    const s = baseSpecs();
    s.segments.push({
      kind: 'Segment',
      name: 'lapsed_subscribers',
      conditions: {
        any: [
          { segment: 'consumable_buyers' },
          { all: [{ not: { attribute: { field: 'subscription_status', op: 'eq', value: 'active' } } }, { attribute: { field: 'last_purchase_at', op: 'older_than', duration: '90d' } }] },
        ],
      },
    });
    expect(fieldsOf(s)).toEqual(['category', 'email', 'last_purchase_at', 'order_count', 'subscription_status']);
  });

  it("keeps a survey target's zone field", () => {
    const s = baseSpecs();
    s.fields.fields.timezone = { type: 'string', owner: 'shop' };
    s.sources[0]!.fields.timezone = 'tz';
    s.surveys[0]!.send_window = { hours: '09:00-17:00', field: 'timezone', fallback_timezone: 'America/New_York' };
    expect(fieldsOf(s)).toEqual(['category', 'email', 'order_count', 'timezone']);
  });

  it('keeps nothing for surveys when there are none, and no email field when none is declared', () => {
    const s = baseSpecs();
    s.surveys = [];
    delete s.fields.fields.email.format;
    expect(fieldsOf(s)).toEqual(['category']);
  });
});
