/**
 * SEG005 and the response loop: a segment may use the attribute or event a SurveyTarget's
 * `responses.write` delivers (tidemark writes it, and the audience mirror holds what was acknowledged),
 * and still may not use one nothing delivers.
 */
import { describe, expect, it } from 'vitest';
import { validateSpecs } from '../../reconciler/spec/validate.ts';
import { responseMirrorSources } from '../../reconciler/spec/rules/writers.ts';
import { baseSpecs, toFiles, type SpecSet } from '../support/spec-fixtures.ts';

function seg005(mutate: (s: SpecSet) => void): string[] {
  const s = baseSpecs();
  mutate(s);
  return validateSpecs(toFiles(s)).diagnostics.filter((d) => d.code === 'SEG005').map((d) => d.summary);
}

const reasonSegment = (s: SpecSet) =>
  s.segments.push({ kind: 'Segment', name: 'shipping_complaints', conditions: { any: [{ attribute: { field: 'reason', op: 'eq', value: 'shipping_issue' } }, { event: { name: 'survey_answered', to: '30d' } }] } });

describe('reason codes in segments', () => {
  it('counts responses.write as a writer of its attribute and event', () => {
    expect(seg005(reasonSegment)).toEqual([]);
  });

  it('is SEG005 once no SurveyTarget writes them', () => {
    const found = seg005((s) => {
      reasonSegment(s);
      for (const t of s.surveys) delete t.responses;
    });
    expect(found).toHaveLength(2);
    expect(found.join('\n')).toMatch(/field "reason", which no Source writes/);
    expect(found.join('\n')).toMatch(/event "survey_answered", which no Source sends/);
  });

  it('names the response sources the mirror reads, per environment', () => {
    const s = baseSpecs();
    const result = validateSpecs(toFiles(s));
    const name = s.surveys[0]!.name as string;
    expect(responseMirrorSources(result.model!, 'staging')).toEqual([
      { source: `responses:${name}`, records: 'person' },
      { source: `responses:${name}:event`, records: 'event' },
    ]);
    s.surveys[0]!.environments = ['production'];
    expect(responseMirrorSources(validateSpecs(toFiles(s)).model!, 'staging')).toEqual([]);
  });
});
