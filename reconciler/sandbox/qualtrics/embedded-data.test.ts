/**
 * A survey's embedded data as `GET /survey-definitions/{id}` reports it (the survey flow's EmbeddedData
 * elements), and the admin edit that plays CX renaming or removing a field in the Qualtrics UI.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { createQualtricsEmulator, type QualtricsEmulator } from './emulator.ts';

const TOKEN = 'sandbox-qualtrics-token';
const ORIGIN = 'http://127.0.0.1:4012';

let emu: QualtricsEmulator;
let nowMs = Date.parse('2026-03-01T10:00:00Z');

async function call(method: string, path: string, body?: unknown, api = true) {
  const url = new URL(`${ORIGIN}${api ? '/API/v3' : ''}${path}`);
  const headers: Record<string, string> = api ? { 'x-api-token': TOKEN } : {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await emu.handle({ method, url, headers, body: Buffer.from(body === undefined ? '' : JSON.stringify(body)) }, {});
  return { status: res.status, json: res.json as Record<string, unknown> };
}

interface FlowElement {
  Type: string;
  FlowID?: string;
  EmbeddedData?: Array<{ Field: string; Type: string; Value?: string; Description: string; VariableType: string }>;
}

async function flow(surveyId: string): Promise<FlowElement[]> {
  const res = await call('GET', `/survey-definitions/${surveyId}`);
  expect(res.status).toBe(200);
  const result = res.json['result'] as { SurveyFlow: { Type: string; Flow: FlowElement[] } };
  expect(result.SurveyFlow.Type).toBe('Root');
  return result.SurveyFlow.Flow;
}

const fieldsOf = (elements: FlowElement[]) => elements.filter((e) => e.Type === 'EmbeddedData').flatMap((e) => e.EmbeddedData ?? []);

beforeEach(() => {
  nowMs = Date.parse('2026-03-01T10:00:00Z');
  emu = createQualtricsEmulator({ apiToken: TOKEN, seed: 3, now: () => new Date(nowMs) });
  emu.seedSurvey({
    id: 'SV_3kZ8cTqQ4rPbUuG',
    name: 'Fit',
    creationDate: '2026-01-01T00:00:00Z',
    embeddedData: ['order_count', 'vip_tier', { name: 'wave', defaultValue: '2' }],
  });
});

describe('the survey definition', () => {
  it('lists the flow embedded data in the documented shape: Recipient fields, and Custom ones with their Value', async () => {
    const fields = fieldsOf(await flow('SV_3kZ8cTqQ4rPbUuG'));
    expect(fields.map((f) => [f.Field, f.Type, f.Value])).toEqual([
      ['order_count', 'Recipient', undefined],
      ['vip_tier', 'Recipient', undefined],
      ['wave', 'Custom', '2'],
    ]);
    expect(fields[0]).toMatchObject({ Description: 'order_count', VariableType: 'String' });
  });

  it('has no EmbeddedData element when the survey declares none', async () => {
    emu.seedSurvey({ id: 'SV_1pXv7KdN3sGa9Lq', name: 'Plain' });
    expect((await flow('SV_1pXv7KdN3sGa9Lq')).map((e) => e.Type)).toEqual(['Block']);
  });
});

describe('POST /__sandbox/qualtrics/surveys/{id}/embedded-data', () => {
  it('renames in place, removes and adds, and the definition shows it; the survey counts as modified', async () => {
    nowMs = Date.parse('2026-03-02T08:00:00Z');
    const res = await call('POST', '/__sandbox/qualtrics/surveys/SV_3kZ8cTqQ4rPbUuG/embedded-data', { rename: { vip_tier: 'VIP_Tier' }, remove: ['order_count'], add: ['segment'] }, false);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      surveyId: 'SV_3kZ8cTqQ4rPbUuG',
      embeddedData: [
        { name: 'VIP_Tier', defaultValue: null },
        { name: 'wave', defaultValue: '2' },
        { name: 'segment', defaultValue: null },
      ],
    });
    expect(fieldsOf(await flow('SV_3kZ8cTqQ4rPbUuG')).map((f) => f.Field)).toEqual(['VIP_Tier', 'wave', 'segment']);
    const survey = (await call('GET', '/surveys/SV_3kZ8cTqQ4rPbUuG')).json['result'] as { lastModifiedDate: string; embeddedData: Array<{ name: string }> };
    expect(survey.lastModifiedDate).toBe('2026-03-02T08:00:00Z');
    expect(survey.embeddedData.map((e) => e.name)).toEqual(['VIP_Tier', 'wave', 'segment']);
  });

  it.each([
    [{ rename: { nope: 'x' } }, 'has no embedded data field nope'],
    [{ rename: { order_count: 'vip_tier' } }, 'already has an embedded data field vip_tier'],
    [{ remove: ['Order_Count'] }, 'has no embedded data field Order_Count'],
    [{ add: ['wave'] }, 'already has an embedded data field wave'],
    [{ rename: { vip_tier: '' } }, 'embedded data edit'],
    [{ drop: ['vip_tier'] }, 'embedded data edit'],
  ])('refuses %j whole (400) and leaves the survey as it was', async (edit, message) => {
    const res = await call('POST', '/__sandbox/qualtrics/surveys/SV_3kZ8cTqQ4rPbUuG/embedded-data', edit, false);
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.json)).toContain(message);
    expect(fieldsOf(await flow('SV_3kZ8cTqQ4rPbUuG')).map((f) => f.Field)).toEqual(['order_count', 'vip_tier', 'wave']);
  });

  it('refuses an unknown survey', async () => {
    const res = await call('POST', '/__sandbox/qualtrics/surveys/SV_000000000000000/embedded-data', { remove: ['x'] }, false);
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.json)).toContain('survey SV_000000000000000 does not exist');
  });

  it('is listed with the other admin routes', async () => {
    const res = await call('GET', '/__sandbox/qualtrics', undefined, false);
    expect(JSON.stringify(res.json)).toContain('/surveys/{id}/embedded-data');
  });
});

describe('seedReferencedSurveys', () => {
  it('adds only the surveys the brand lacks and keeps edited ones as they are', () => {
    emu.editEmbeddedData('SV_3kZ8cTqQ4rPbUuG', { rename: { vip_tier: 'tier' } });
    const added = emu.seedReferencedSurveys([
      { id: 'SV_3kZ8cTqQ4rPbUuG', name: 'Fit', embeddedData: ['order_count', 'vip_tier'] },
      { id: 'SV_8mWq2ZcR5tYhJ1n', name: 'Cancel', embeddedData: ['order_count'] },
    ]);
    expect(added).toEqual(['SV_8mWq2ZcR5tYhJ1n']);
    expect(emu.hasSurvey('SV_8mWq2ZcR5tYhJ1n')).toBe(true);
    expect(emu.editEmbeddedData('SV_3kZ8cTqQ4rPbUuG', {}).map((e) => e.name)).toEqual(['order_count', 'tier', 'wave']);
  });
});
