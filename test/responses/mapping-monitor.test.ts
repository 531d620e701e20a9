import { describe, expect, it } from 'vitest';
import { validateSpecs } from '../../reconciler/spec/validate.ts';
import { baseSpecs, toFiles, type SpecSet } from '../support/spec-fixtures.ts';
import { questionsOf, responseMappingAlerts, type SurveyQuestionLookup } from '../../reconciler/responses/monitor.ts';

const SURVEY = 'SV_3kZ8cTqQ4rPbUuG';

/** The base specs with the fit target's codes widened to three, plus what `mutate` adds. */
function alerts(mutate: (s: SpecSet) => void, o: { surveys?: SurveyQuestionLookup; unmapped?: Array<{ target: string; answer: string; n: number }> } = {}) {
  const s = baseSpecs();
  (s.surveys[0]!.responses as { reason_codes: Record<string, string> }).reason_codes = { '1': 'shipping_issue', '2': 'quality', '3': 'loved_it' };
  mutate(s);
  const result = validateSpecs(toFiles(s));
  expect(result.model, JSON.stringify(result.diagnostics.filter((d) => d.severity === 'error'))).toBeDefined();
  return responseMappingAlerts({ model: result.model!, environment: 'staging', surveys: o.surveys ?? new Map(), unmapped: o.unmapped ?? [], lookBack: '30 days' });
}

const seg = (name: string, conditions: unknown, publish = true) => ({ kind: 'Segment', name, conditions, ...(publish ? { publish: { customerio_segment: true } } : {}) });

describe('reason codes that feed nothing', () => {
  it('names every code when no segment reads the attribute or the event', () => {
    const found = alerts(() => {});
    expect(found.map((a) => [a.kind, a.target])).toEqual([['code_feeds_nothing', 'fit']]);
    expect(found[0]!.message).toMatch(/^reason codes shipping_issue, quality, loved_it of target fit \(attribute reason and event survey_answered\) feed no published segment/);
  });

  it('counts the codes an acting segment names with eq, in, neq and not_in, and no others', () => {
    const found = alerts((s) => {
      s.segments.push(seg('shipping', { any: [{ attribute: { field: 'reason', op: 'eq', value: 'shipping_issue' } }, { attribute: { field: 'reason', op: 'not_in', value: ['quality'] } }] }));
    });
    expect(found.map((a) => a.message)).toEqual([expect.stringMatching(/^reason code loved_it of target fit .* feeds no published segment/)]);
  });

  it('a code used only by a segment nothing acts on still feeds nothing; one named by a published segment through it does', () => {
    const unused = alerts((s) => {
      s.segments.push(seg('said_all', { attribute: { field: 'reason', op: 'in', value: ['shipping_issue', 'quality', 'loved_it'] } }, false));
    });
    expect(unused.map((a) => a.kind)).toEqual(['code_feeds_nothing']);
    const through = alerts((s) => {
      s.segments.push(seg('said_all', { attribute: { field: 'reason', op: 'in', value: ['shipping_issue', 'quality', 'loved_it'] } }, false));
      s.segments.push(seg('winback', { all: [{ segment: 'said_all' }, { attribute: { field: 'category', op: 'eq', value: 'consumables' } }] }));
    });
    expect(through).toEqual([]);
  });

  it('an exists condition on the attribute, or any condition on the event, uses every code', () => {
    expect(alerts((s) => s.segments.push(seg('answered', { attribute: { field: 'reason', op: 'exists' } })))).toEqual([]);
    expect(alerts((s) => s.segments.push(seg('answered', { event: { name: 'survey_answered', to: '30d' } })))).toEqual([]);
  });

  it('a survey audience acts', () => {
    expect(
      alerts((s) => {
        s.segments.push(seg('said_bad', { attribute: { field: 'reason', op: 'in', value: ['shipping_issue', 'quality', 'loved_it'] } }, false));
        s.surveys[0]!.audience = 'said_bad';
      }).filter((a) => a.kind === 'code_feeds_nothing'),
    ).toEqual([]);
  });
});

describe('the survey changed under the mapping', () => {
  const used = (s: SpecSet) => s.segments.push(seg('answered', { attribute: { field: 'reason', op: 'exists' } }));

  it('alerts when the question is gone, or a coded choice is, and not when both are there', () => {
    const gone = alerts(used, { surveys: new Map([[SURVEY, new Map([['QID9', ['1', '2']]])]]) });
    expect(gone).toEqual([{ kind: 'question_missing', target: 'fit', message: expect.stringMatching(/^survey SV_3kZ8cTqQ4rPbUuG has no question QID4 any more \(CX changed the survey\)/) }]);
    const choice = alerts(used, { surveys: new Map([[SURVEY, new Map([['QID4', ['1', '2', '4']]])]]) });
    expect(choice).toEqual([{ kind: 'choice_missing', target: 'fit', message: expect.stringMatching(/has no choice exporting "3" any more .*reason code loved_it of target fit can no longer be answered/) }]);
    expect(alerts(used, { surveys: new Map([[SURVEY, new Map([['QID4', ['1', '2', '3', '4']]])]]) })).toEqual([]);
    expect(alerts(used, { surveys: new Map([[SURVEY, 'missing']]) }).map((a) => a.kind)).toEqual(['question_missing']);
  });

  it('counts answers no code names under today’s mapping, showing only recodes', () => {
    const found = alerts(used, {
      unmapped: [
        { target: 'fit', answer: '4', n: 3 },
        { target: 'fit', answer: '3', n: 2 },
        { target: 'other', answer: '9', n: 1 },
      ],
    });
    // "3" was unmapped when it came; it has a code now, so it no longer counts.
    expect(found).toEqual([{ kind: 'unmapped_answers', target: 'fit', message: '3 responses to target fit in the last 30 days answered QID4 with a choice no reason code names (answer "4"): add the code to responses.reason_codes' }]);
    const typed = alerts(used, { unmapped: [{ target: 'fit', answer: 'my name is Jane Doe', n: 1 }] });
    expect(typed[0]!.message).not.toContain('Jane');
    expect(typed[0]!.message).toMatch(/^1 response to target fit/);
  });

  it('reads questions and their recodes from a survey definition', () => {
    const q = questionsOf({ Questions: { QID1: { QuestionID: 'QID1', Choices: { '1': {}, '2': {} }, RecodeValues: { '1': '10', '2': '20' } }, QID2: { QuestionID: 'QID2', Choices: { '1': {} } }, QID3: { QuestionID: 'QID3' } } });
    expect([...q!]).toEqual([
      ['QID1', ['10', '20']],
      ['QID2', ['1']],
      ['QID3', []],
    ]);
    expect(questionsOf({})).toBeUndefined();
  });
});
