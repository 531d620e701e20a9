import { describe, expect, it } from 'vitest';
import { answerOf, isLate, mapResponse, type ResponseMapping } from '../../reconciler/responses/mapping.ts';

const HOUR = 3_600_000;
const mapping: ResponseMapping = { question: 'QID2', reason_codes: { '1': 'price', '2': 'too_much_coffee' }, write: { attribute: 'cancel_reason' } };
const invited = Date.parse('2027-01-10T09:00:00Z');
const rec = (values: Record<string, unknown>, id = 'R_1') => ({ responseId: id, values: { recordedDate: '2027-01-11T09:00:00Z', externalDataReference: 'c1', ...values } });

describe('mapping a response', () => {
  it('gives the reason code of the answer recode, to be written', () => {
    expect(mapResponse(rec({ QID2: 1 }), mapping, [invited], 48 * HOUR)).toEqual({
      response_id: 'R_1',
      person_id: 'c1',
      recorded_ms: Date.parse('2027-01-11T09:00:00Z'),
      recorded_at: '2027-01-11T09:00:00.000Z',
      answer: '1',
      reason_code: 'price',
      outcome: 'pending',
    });
  });

  it('is unknown_person without an extRef, or without an invitation at or before the response', () => {
    expect(mapResponse(rec({ QID2: 1, externalDataReference: '' }), mapping, [invited], 48 * HOUR).outcome).toBe('unknown_person');
    expect(mapResponse(rec({ QID2: 1, externalDataReference: null }), mapping, [invited], 48 * HOUR).outcome).toBe('unknown_person');
    expect(mapResponse(rec({ QID2: 1 }), mapping, [], 48 * HOUR).outcome).toBe('unknown_person');
    // Invited only after the response was recorded: not this invitation's answer.
    expect(mapResponse(rec({ QID2: 1 }), mapping, [Date.parse('2027-01-12T00:00:00Z')], 48 * HOUR).outcome).toBe('unknown_person');
  });

  it('is late after the latest invitation + the response window; the window end itself is in time', () => {
    expect(isLate(invited, invited + 48 * HOUR, 48 * HOUR)).toBe(false);
    expect(isLate(invited, invited + 48 * HOUR + 1, 48 * HOUR)).toBe(true);
    expect(mapResponse(rec({ QID2: 1 }), mapping, [invited], 23 * HOUR).outcome).toBe('late');
    // A newer invitation (of a later moment) makes the same response timely.
    expect(mapResponse(rec({ QID2: 1 }), mapping, [invited - 30 * 24 * HOUR, invited], 48 * HOUR).outcome).toBe('pending');
  });

  it('is no_answer when the question is absent, empty or seen-unanswered (-99); unmapped for an answer without a code', () => {
    expect(mapResponse(rec({}), mapping, [invited], 48 * HOUR).outcome).toBe('no_answer');
    expect(mapResponse(rec({ QID2: -99 }), mapping, [invited], 48 * HOUR).outcome).toBe('no_answer');
    expect(mapResponse(rec({ QID2: '' }), mapping, [invited], 48 * HOUR).outcome).toBe('no_answer');
    expect(mapResponse(rec({ QID2: 5 }), mapping, [invited], 48 * HOUR)).toMatchObject({ outcome: 'unmapped', answer: '5', reason_code: null });
  });

  it('reads the first recode of a multiple answer, and never a prototype key as a code', () => {
    expect(answerOf(rec({ QID2: [2, 1] }), 'QID2')).toBe('2');
    expect(mapResponse(rec({ QID2: 'constructor' }), mapping, [invited], 48 * HOUR).outcome).toBe('unmapped');
  });
});
