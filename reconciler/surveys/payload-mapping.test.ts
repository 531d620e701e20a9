import { describe, expect, it } from 'vitest';
import { compareSurveyPayload, filledByQualtrics, surveyEmbeddedFields, type SurveyEmbeddedField } from './payload-mapping.ts';

const recipient = (Field: string) => ({ Description: Field, Type: 'Recipient', Field, VariableType: 'String', DataVisibility: [], AnalyzeText: false });
const custom = (Field: string, Value: string) => ({ ...recipient(Field), Type: 'Custom', Value });
const definition = (flow: unknown[]) => ({ SurveyID: 'SV_1', SurveyFlow: { Type: 'Root', FlowID: 'FL_1', Flow: flow } });
const read = (...names: string[]): SurveyEmbeddedField[] => names.map((name) => ({ name, setInFlow: false }));

describe('surveyEmbeddedFields', () => {
  it('reads the Field of every EmbeddedData element, nested ones included, in flow order and each once', () => {
    const def = definition([
      { Type: 'EmbeddedData', FlowID: 'FL_2', EmbeddedData: [recipient('order_count'), custom('wave', '2')] },
      { Type: 'Block', ID: 'BL_1', FlowID: 'FL_3' },
      {
        Type: 'Branch',
        FlowID: 'FL_4',
        Flow: [
          { Type: 'EmbeddedData', FlowID: 'FL_5', EmbeddedData: [recipient('vip_tier'), recipient('order_count')] },
          { Type: 'BlockRandomizer', FlowID: 'FL_6', Flow: [{ Type: 'EmbeddedData', FlowID: 'FL_7', EmbeddedData: [custom('arm', '${rand://int/1:2}')] }] },
        ],
      },
    ]);
    expect(surveyEmbeddedFields(def)).toEqual([
      { name: 'order_count', setInFlow: false },
      { name: 'wave', setInFlow: true },
      { name: 'vip_tier', setInFlow: false },
      { name: 'arm', setInFlow: true },
    ]);
  });

  it('counts a field as read when any element reads it, and an empty Value as no value', () => {
    const def = definition([
      { Type: 'EmbeddedData', EmbeddedData: [custom('tier', 'none'), custom('blank', '')] },
      { Type: 'EmbeddedData', EmbeddedData: [recipient('tier')] },
    ]);
    expect(surveyEmbeddedFields(def)).toEqual([
      { name: 'tier', setInFlow: false },
      { name: 'blank', setInFlow: false },
    ]);
  });

  it('gives [] for a flow without embedded data, and undefined when there is no flow to read', () => {
    expect(surveyEmbeddedFields(definition([{ Type: 'Block', ID: 'BL_1' }]))).toEqual([]);
    expect(surveyEmbeddedFields({ SurveyID: 'SV_1' })).toBeUndefined();
    expect(surveyEmbeddedFields({ SurveyID: 'SV_1', SurveyFlow: [] })).toBeUndefined();
    expect(surveyEmbeddedFields(null)).toBeUndefined();
  });

  it('skips malformed entries instead of failing', () => {
    const def = definition([{ Type: 'EmbeddedData', EmbeddedData: [null, { Field: 3 }, { Field: '' }, recipient('ok')] }, 'junk', { Type: 'EmbeddedData', EmbeddedData: 'x' }]);
    expect(surveyEmbeddedFields(def)).toEqual([{ name: 'ok', setInFlow: false }]);
  });
});

describe('compareSurveyPayload', () => {
  it.each([
    ['the survey reads exactly the payload', ['order_count', 'vip_tier'], read('vip_tier', 'order_count'), [], []],
    ['CX renamed a field', ['order_count', 'vip_tier'], read('order_count', 'vip_level'), [{ field: 'vip_tier', reason: 'absent' }], ['vip_level']],
    ['CX removed a field', ['order_count', 'vip_tier'], read('order_count'), [{ field: 'vip_tier', reason: 'absent' }], []],
    [
      'only the case differs: a mismatch, named as such, not also reported as unfilled',
      ['vip_tier'],
      read('VIP_Tier'),
      [{ field: 'vip_tier', reason: 'case', surveyField: 'VIP_Tier' }],
      [],
    ],
    ['the survey reads a field nobody sends', ['order_count'], read('order_count', 'id'), [], ['id']],
    ['an empty payload against a survey reading fields', [], read('a', 'b'), [], ['a', 'b']],
  ] as const)('%s', (_name, payload, fields, notRead, unfilled) => {
    expect(compareSurveyPayload(payload, fields)).toEqual({ notRead, unfilled });
  });

  it('does not ask the payload for fields the flow sets itself or Qualtrics fills', () => {
    const fields: SurveyEmbeddedField[] = [
      { name: 'wave', setInFlow: true },
      { name: 'RecipientEmail', setInFlow: false },
      { name: 'ExternalDataReference', setInFlow: false },
      { name: 'Q_URL', setInFlow: false },
      { name: 'order_count', setInFlow: false },
    ];
    expect(compareSurveyPayload(['order_count'], fields)).toEqual({ notRead: [], unfilled: [] });
  });

  it('counts a payload field the flow also sets as read (the survey declares it)', () => {
    expect(compareSurveyPayload(['wave'], [{ name: 'wave', setInFlow: true }])).toEqual({ notRead: [], unfilled: [] });
  });

  it('compares names exactly: Qualtrics built-ins only under their own spelling', () => {
    expect(filledByQualtrics('RecipientEmail')).toBe(true);
    expect(filledByQualtrics('recipientemail')).toBe(false);
    expect(filledByQualtrics('Q_TotalDuration')).toBe(true);
  });
});
