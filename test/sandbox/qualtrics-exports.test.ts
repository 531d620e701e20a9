/**
 * Surveys and response exports through the Qualtrics emulator's `handle()`: survey metadata and
 * definitions for seeded surveys, and the start → poll → download → unzip → parse loop in JSON, CSV and
 * NDJSON with date filters, limits, continuation tokens, injected failures and request validation.
 */
import { parse as parseCsv } from 'csv-parse/sync';
import { unzipSync } from 'fflate';
import { beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { SandboxResponse } from '../../reconciler/sandbox/common/types.ts';
import { createQualtricsEmulator, type QualtricsEmulator } from '../../reconciler/sandbox/qualtrics/index.ts';

const TOKEN = 'export-token-91';
const ORIGIN = 'http://127.0.0.1:4011';

const meta = z.object({ httpStatus: z.string().regex(/^\d{3} - \S.*$/), requestId: z.uuid(), notice: z.string().optional() }).strict();
const okEnvelope = <T extends z.ZodType>(result: T) => z.object({ result, meta }).strict();
const errorEnvelope = z
  .object({
    meta: z
      .object({
        httpStatus: z.string(),
        requestId: z.uuid(),
        error: z.object({ errorMessage: z.string().min(1), errorCode: z.string().min(1) }).strict(),
      })
      .strict(),
  })
  .strict();

const exportStarted = z.object({ progressId: z.string().regex(/^ES_\w+$/), percentComplete: z.number(), status: z.literal('inProgress') }).strict();
const exportProgress = z.union([
  z.object({ percentComplete: z.number().min(0).max(100), status: z.literal('inProgress') }).strict(),
  z.object({ percentComplete: z.literal(100), status: z.literal('complete'), fileId: z.string().min(1), continuationToken: z.string().optional() }).strict(),
  z.object({ percentComplete: z.literal(100), status: z.literal('failed'), fileId: z.null() }).strict(),
]);
const recordValue = z.union([z.string(), z.number(), z.array(z.number())]);
const responseRecord = z
  .object({
    responseId: z.string().regex(/^R_\w+$/),
    values: z.record(z.string(), recordValue),
    labels: z.record(z.string(), z.union([z.string(), z.array(z.string())])),
    displayedFields: z.array(z.string()),
    displayedValues: z.record(z.string(), z.array(z.number())),
  })
  .strict();
const jsonExportFile = z.object({ responses: z.array(responseRecord) }).strict();

const surveyResult = z.object({
  id: z.string(),
  name: z.string(),
  ownerId: z.string(),
  organizationId: z.string(),
  isActive: z.boolean(),
  creationDate: z.iso.datetime(),
  lastModifiedDate: z.iso.datetime(),
  expiration: z.object({ startDate: z.string().nullable(), endDate: z.string().nullable() }),
  questions: z.record(
    z.string().regex(/^QID\d+$/),
    z.object({
      questionType: z.object({ type: z.string(), selector: z.string(), subSelector: z.string().nullable() }),
      questionText: z.string(),
      questionName: z.string(),
      validation: z.object({ doesForceResponse: z.boolean() }),
      choices: z.record(z.string(), z.object({ recode: z.string(), choiceText: z.string(), description: z.string() })).optional(),
    }),
  ),
  exportColumnMap: z.record(z.string(), z.object({ question: z.string() }).loose()),
  blocks: z.record(z.string(), z.object({ description: z.string(), elements: z.array(z.object({ type: z.string() }).loose()) })),
  flow: z.array(z.object({ id: z.string(), type: z.string() })),
  embeddedData: z.array(z.object({ name: z.string() }).loose()),
  comments: z.object({}),
  loopAndMerge: z.object({}),
  responseCounts: z.object({ auditable: z.number(), generated: z.number(), deleted: z.number() }),
});
const definitionResult = z.object({
  SurveyID: z.string(),
  SurveyName: z.string(),
  SurveyStatus: z.enum(['Active', 'Inactive']),
  BrandID: z.string(),
  OwnerID: z.string(),
  QuestionCount: z.string(),
  Questions: z.record(
    z.string(),
    z
      .object({
        QuestionID: z.string(),
        QuestionText: z.string(),
        DataExportTag: z.string(),
        QuestionType: z.string(),
        Selector: z.string(),
        Choices: z.record(z.string(), z.object({ Display: z.string() })).optional(),
        ChoiceOrder: z.array(z.string()).optional(),
      })
      .loose(),
  ),
  Blocks: z.record(z.string(), z.object({ BlockElements: z.array(z.object({ Type: z.string(), QuestionID: z.string() })) }).loose()),
  SurveyFlow: z.object({ Flow: z.array(z.unknown()), Type: z.literal('Root') }).loose(),
  SurveyOptions: z.record(z.string(), z.unknown()),
});

function expectError(res: SandboxResponse, status: number, code?: string): void {
  expect(res.status).toBe(status);
  const parsed = errorEnvelope.parse(res.json);
  if (code) expect(parsed.meta.error.errorCode).toBe(code);
}

describe('Qualtrics surveys and response exports over handle()', () => {
  let emu: QualtricsEmulator;
  let survey: string;
  let ids: { r1: string; r2: string; r3: string; r4: string };
  const nowMs = Date.parse('2025-03-01T12:00:00Z');

  async function call(method: string, pathOrUrl: string, body?: unknown, token: string | null = TOKEN): Promise<SandboxResponse> {
    const url = new URL(pathOrUrl.startsWith('http') ? pathOrUrl : `${ORIGIN}/API/v3${pathOrUrl}`);
    const headers: Record<string, string> = {};
    if (token !== null) headers['x-api-token'] = token;
    if (body !== undefined) headers['content-type'] = 'application/json';
    return emu.handle({ method, url, headers, body: Buffer.from(body === undefined ? '' : JSON.stringify(body)) }, {});
  }

  /** Starts an export and polls it to the end; returns every progress answer seen. */
  async function runExport(body: Record<string, unknown>, surveyId = survey): Promise<z.infer<typeof exportProgress>[]> {
    const start = await call('POST', `/surveys/${surveyId}/export-responses`, body);
    expect(start.status).toBe(200);
    const { progressId, percentComplete } = okEnvelope(exportStarted).parse(start.json).result;
    expect(percentComplete).toBe(0);
    const seen: z.infer<typeof exportProgress>[] = [];
    for (let i = 0; i < 10; i++) {
      const p = okEnvelope(exportProgress).parse((await call('GET', `/surveys/${surveyId}/export-responses/${progressId}`)).json).result;
      seen.push(p);
      if (p.status !== 'inProgress') break;
    }
    return seen;
  }

  async function download(fileId: string, surveyId = survey): Promise<SandboxResponse> {
    const res = await call('GET', `/surveys/${surveyId}/export-responses/${fileId}/file`);
    expect(res.status).toBe(200);
    expect(res.json).toBeUndefined();
    return res;
  }

  function unzipOne(res: SandboxResponse): { name: string; text: string } {
    expect(res.headers?.['content-type']).toBe('application/zip');
    const entries = unzipSync(new Uint8Array(res.raw ?? Buffer.alloc(0)));
    const names = Object.keys(entries);
    expect(names).toHaveLength(1);
    const name = names[0] ?? '';
    return { name, text: Buffer.from(entries[name] ?? new Uint8Array()).toString('utf8') };
  }

  function completedFileId(progress: z.infer<typeof exportProgress>[]): string {
    const last = progress.at(-1);
    if (!last || last.status !== 'complete') throw new Error(`export did not complete: ${JSON.stringify(last)}`);
    return last.fileId;
  }

  beforeEach(async () => {
    emu = createQualtricsEmulator({ apiToken: TOKEN, seed: 9, now: () => new Date(nowMs) });
    survey = emu.seedSurvey({
      id: 'SV_3kZ8cTqQ4rPbUuG',
      name: 'Post purchase fit',
      creationDate: '2025-01-02T03:04:05Z',
      questions: [
        { text: 'What best describes your order?', type: 'single', choices: ['Shipping issue', 'Product quality', 'Loved it'] },
        { text: 'Anything else?', type: 'text' },
        { text: 'How likely are you to recommend us?', type: 'nps' },
        { text: 'How did you hear about us?', type: 'multi', choices: { '1': { text: 'Email', recode: '10' }, '2': 'Friend', '3': 'Ad' } },
      ],
      embeddedData: ['order_count', { name: 'vip_tier', defaultValue: 'none' }],
    });
    const dir = emu.defaultDirectoryId();
    const list = okEnvelope(z.object({ id: z.string() })).parse((await call('POST', `/directories/${dir}/mailinglists`, { name: 'L' })).json).result.id;
    const contact = okEnvelope(z.object({ id: z.string() })).parse(
      (await call('POST', `/directories/${dir}/mailinglists/${list}/contacts`, { email: 'ana@example.com', firstName: 'Ana', extRef: 'cust-17' })).json,
    ).result.id;
    const [r1, r2, r3, r4] = emu.seedResponses(survey, [
      {
        recordedDate: '2025-01-10T10:00:00Z',
        contactId: contact,
        values: { QID1: 1, QID2: 'Box arrived, late', QID3: 3, QID4: ['1', '3'] },
        embeddedData: { order_count: 2 },
      },
      {
        recordedDate: '2025-02-05T08:30:00.250Z',
        duration: 95,
        recipient: { email: 'bo@example.com', externalDataReference: 'cust-18' },
        values: { QID1: '3', QID3: 10, QID2: 'line one\nline two' },
        embeddedData: { vip_tier: 'gold' },
      },
      { recordedDate: '2025-02-20T00:00:00Z', values: { QID1: 2 } },
      { recordedDate: '2025-02-01T00:00:00Z', displayed: ['QID1', 'QID4'], finished: false },
    ]);
    ids = { r1: r1 ?? '', r2: r2 ?? '', r3: r3 ?? '', r4: r4 ?? '' };
  });

  describe('surveys', () => {
    it('lists surveys and returns a seeded survey in the documented shape', async () => {
      const list = okEnvelope(
        z.object({
          elements: z.array(z.object({ id: z.string(), name: z.string(), ownerId: z.string(), lastModified: z.string(), creationDate: z.string(), isActive: z.boolean() })),
          nextPage: z.url().nullable(),
        }),
      ).parse((await call('GET', '/surveys')).json);
      expect(list.result.elements).toEqual([expect.objectContaining({ id: survey, name: 'Post purchase fit', isActive: true, creationDate: '2025-01-02T03:04:05Z' })]);

      const s = okEnvelope(surveyResult).parse((await call('GET', `/surveys/${survey}`)).json).result;
      expect(Object.keys(s.questions)).toEqual(['QID1', 'QID2', 'QID3', 'QID4']);
      expect(s.questions['QID1']?.questionType).toEqual({ type: 'MC', selector: 'SAVR', subSelector: 'TX' });
      expect(s.questions['QID4']?.choices?.['1']).toMatchObject({ recode: '10', choiceText: 'Email' });
      expect(s.questions['QID2']?.questionType.type).toBe('TE');
      expect(s.exportColumnMap['Q1']).toEqual({ question: 'QID1' });
      expect(s.exportColumnMap['Q4_2']).toMatchObject({ question: 'QID4' });
      expect(s.embeddedData.map((e) => e.name)).toEqual(['order_count', 'vip_tier']);
      expect(s.responseCounts.auditable).toBe(4);
    });

    it('returns the survey definition and its questions', async () => {
      const def = okEnvelope(definitionResult).parse((await call('GET', `/survey-definitions/${survey}`)).json).result;
      expect(def).toMatchObject({ SurveyID: survey, SurveyName: 'Post purchase fit', SurveyStatus: 'Active', QuestionCount: '4', BrandID: 'tidemark' });
      expect(def.Questions['QID1']).toMatchObject({ DataExportTag: 'Q1', QuestionType: 'MC', Selector: 'SAVR', ChoiceOrder: ['1', '2', '3'] });
      expect(def.Questions['QID1']?.Choices?.['3']).toEqual({ Display: 'Loved it' });
      expect(def.Questions['QID4']).toMatchObject({ RecodeValues: { '1': '10', '2': '2', '3': '3' } });
      const questions = okEnvelope(z.object({ elements: z.array(z.object({ QuestionID: z.string() }).loose()) })).parse(
        (await call('GET', `/survey-definitions/${survey}/questions`)).json,
      );
      expect(questions.result.elements.map((q) => q.QuestionID)).toEqual(['QID1', 'QID2', 'QID3', 'QID4']);
      expectError(await call('GET', `/survey-definitions/${survey}?format=qsf`), 400);
    });

    it('returns one response record and 404s for unknown surveys and responses', async () => {
      const rec = okEnvelope(responseRecord).parse((await call('GET', `/surveys/${survey}/responses/${ids.r1}`)).json).result;
      expect(rec.values).toMatchObject({ QID1: 1, QID2_TEXT: 'Box arrived, late', QID3: 3, QID3_NPS_GROUP: 1, QID4: [10, 3], order_count: '2', vip_tier: 'none' });
      expect(rec.values).toMatchObject({ recipientEmail: 'ana@example.com', recipientFirstName: 'Ana', externalDataReference: 'cust-17', distributionChannel: 'email' });
      expect(rec.labels).toMatchObject({ QID1: 'Shipping issue', QID3_NPS_GROUP: 'Detractor', QID4: ['Email', 'Ad'], finished: 'True' });
      expectError(await call('GET', `/surveys/SV_000000000000000`), 404);
      expectError(await call('GET', `/survey-definitions/SV_000000000000000`), 404);
      expectError(await call('GET', `/surveys/${survey}/responses/R_000000000000000`), 404);
      expectError(await call('GET', `/surveys/${survey}`, undefined, null), 400);
    });
  });

  describe('response exports', () => {
    it('exports JSON filtered by recorded date: start, poll, download, unzip, parse', async () => {
      const progress = await runExport({ format: 'json', startDate: '2025-02-01T00:00:00Z', endDate: '2025-02-20T00:00:00Z' });
      expect(progress.map((p) => [p.status, p.percentComplete])).toEqual([
        ['inProgress', 33.3],
        ['inProgress', 66.7],
        ['complete', 100],
      ]);
      const { name, text } = unzipOne(await download(completedFileId(progress)));
      expect(name).toBe('Post purchase fit.json');
      const file = jsonExportFile.parse(JSON.parse(text));
      // Start inclusive, end exclusive; in recorded-date order.
      expect(file.responses.map((r) => r.responseId)).toEqual([ids.r4, ids.r2]);
      const r2 = file.responses[1];
      expect(r2?.values).toMatchObject({
        _recordId: ids.r2,
        recordedDate: '2025-02-05T08:30:00.250Z',
        duration: 95,
        finished: 1,
        status: 0,
        progress: 100,
        recipientEmail: 'bo@example.com',
        externalDataReference: 'cust-18',
        QID1: 3,
        QID3: 10,
        QID3_NPS_GROUP: 3,
        QID2_TEXT: 'line one\nline two',
        vip_tier: 'gold',
      });
      expect(r2?.labels).toMatchObject({ QID1: 'Loved it', QID3_NPS_GROUP: 'Promoter', status: 'IP Address' });
      expect(r2?.displayedFields).toEqual(['QID1', 'QID2', 'QID3']);
      expect(r2?.displayedValues['QID3']).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      const r4 = file.responses[0];
      expect(r4?.values).toMatchObject({ finished: 0, progress: 50, distributionChannel: 'anonymous' });
      expect(r4?.values['recipientEmail']).toBeUndefined();
      expect(r4?.values['QID1']).toBeUndefined();
    });

    it('exports CSV with the three header rows, labels, broken-out multi-select and a time zone', async () => {
      const progress = await runExport({ format: 'csv', useLabels: true, timeZone: 'America/New_York', endDate: '2025-02-01T00:00:00Z' });
      const { name, text } = unzipOne(await download(completedFileId(progress)));
      expect(name).toBe('Post purchase fit.csv');
      const rows = parseCsv(text) as string[][];
      const [header, labels, importIds, ...data] = rows;
      expect(header?.slice(0, 3)).toEqual(['StartDate', 'EndDate', 'Status']);
      expect(header).toEqual(expect.arrayContaining(['ResponseId', 'RecipientEmail', 'Q1', 'Q2', 'Q3', 'Q3_NPS_GROUP', 'Q4_1', 'Q4_2', 'Q4_3', 'order_count', 'vip_tier']));
      expect(labels?.[header?.indexOf('Q1') ?? -1]).toBe('What best describes your order?');
      expect(importIds?.[header?.indexOf('RecordedDate') ?? -1]).toBe('{"ImportId":"recordedDate","timeZone":"America/New_York"}');
      expect(importIds?.[header?.indexOf('Q2') ?? -1]).toBe('{"ImportId":"QID2_TEXT"}');
      expect(data).toHaveLength(1);
      const row = Object.fromEntries((header ?? []).map((h, i) => [h, data[0]?.[i]]));
      expect(row).toMatchObject({
        ResponseId: ids.r1,
        RecordedDate: '2025-01-10 05:00:00',
        Q1: 'Shipping issue',
        Q2: 'Box arrived, late',
        Q3: '3',
        Q3_NPS_GROUP: 'Detractor',
        Q4_1: 'Email',
        Q4_2: '',
        Q4_3: 'Ad',
        RecipientEmail: 'ana@example.com',
        order_count: '2',
        Finished: 'True',
      });
    });

    it('exports uncompressed NDJSON restricted to chosen fields, with seen-unanswered recodes', async () => {
      const progress = await runExport({
        format: 'ndjson',
        compress: false,
        questionIds: ['QID1', 'QID4'],
        embeddedDataIds: ['vip_tier'],
        surveyMetadataIds: ['recordedDate'],
        seenUnansweredRecode: -99,
        multiselectSeenUnansweredRecode: 0,
      });
      const res = await download(completedFileId(progress));
      expect(res.headers?.['content-type']).toBe('application/x-ndjson');
      expect(res.headers?.['content-disposition']).toBe('attachment; filename="Post purchase fit.ndjson"');
      const records = (res.raw ?? Buffer.alloc(0))
        .toString('utf8')
        .trim()
        .split('\n')
        .map((line) => responseRecord.parse(JSON.parse(line)));
      expect(records.map((r) => r.responseId)).toEqual([ids.r1, ids.r4, ids.r2, ids.r3]);
      expect(records[0]?.values).toEqual({ recordedDate: '2025-01-10T10:00:00.000Z', QID1: 1, QID4: [10, 3], vip_tier: 'none' });
      expect(records[1]?.values).toEqual({ recordedDate: '2025-02-01T00:00:00.000Z', QID1: -99, QID4: [0], vip_tier: 'none' });
    });

    it('continues from a previous export and honours limit', async () => {
      const first = await runExport({ format: 'json', limit: 3, allowContinuation: true });
      const last = first.at(-1);
      if (last?.status !== 'complete' || !last.continuationToken) throw new Error('expected a continuation token');
      const firstIds = jsonExportFile.parse(JSON.parse(unzipOne(await download(last.fileId)).text)).responses.map((r) => r.responseId);
      // limit and continuation follow arrival (here: seeding) order; the file is in recorded-date order.
      expect(firstIds).toEqual([ids.r1, ids.r2, ids.r3]);

      const [r5] = emu.seedResponses(survey, [{ recordedDate: '2025-02-28T00:00:00Z', values: { QID1: 2 } }]);
      const next = await runExport({ format: 'json', continuationToken: last.continuationToken, allowContinuation: true });
      const nextIds = jsonExportFile.parse(JSON.parse(unzipOne(await download(completedFileId(next))).text)).responses.map((r) => r.responseId);
      expect(nextIds).toEqual([ids.r4, r5]);
      expectError(await call('POST', `/surveys/${survey}/export-responses`, { format: 'json', continuationToken: 'not-a-token' }), 400);
    });

    it('reports an injected failure the documented way', async () => {
      emu.configure({ exportFailuresPending: 1 });
      const failed = await runExport({ format: 'json' });
      expect(failed.at(-1)).toEqual({ fileId: null, percentComplete: 100, status: 'failed' });
      const retried = await runExport({ format: 'json' });
      expect(retried.at(-1)?.status).toBe('complete');
    });

    it.each([
      ['a missing format', {}, 'RP_10'],
      ['a wrongly cased key', { Format: 'json' }, 'RP_9'],
      ['an unknown format', { format: 'pdf' }, 'RP_1'],
      ['an end before the start', { format: 'json', startDate: '2025-02-02T00:00:00Z', endDate: '2025-02-01T00:00:00Z' }, 'RP_1'],
      ['a date without zone', { format: 'json', startDate: '2025-02-02 00:00:00' }, 'RP_1'],
      ['an unknown question id', { format: 'csv', questionIds: ['QID99'] }, 'RP_1'],
      ['labels with JSON', { format: 'json', useLabels: true }, 'RP_1'],
      ['an unknown time zone', { format: 'csv', timeZone: 'Mars/Olympus' }, 'RP_1'],
      ['a filter id', { format: 'csv', filterId: 'abc' }, 'RP_1'],
      ['a filter id with continuation', { format: 'csv', filterId: 'abc', allowContinuation: true }, 'RP_1'],
      ['a zero limit', { format: 'csv', limit: 0 }, 'RP_1'],
    ])('refuses an export request with %s', async (_name, body, code) => {
      expectError(await call('POST', `/surveys/${survey}/export-responses`, body), 400, code);
    });

    it('404s unknown surveys, progress ids and files, and refuses missing credentials', async () => {
      expectError(await call('POST', `/surveys/SV_000000000000000/export-responses`, { format: 'json' }), 404);
      expectError(await call('GET', `/surveys/${survey}/export-responses/ES_000000000000000`), 404);
      expectError(await call('GET', `/surveys/${survey}/export-responses/00000000-0000-4000-8000-000000000000/file`), 404);
      const other = emu.seedSurvey({ name: 'Other' });
      const fileId = completedFileId(await runExport({ format: 'json' }));
      expectError(await call('GET', `/surveys/${other}/export-responses/${fileId}/file`), 404);
      expectError(await call('POST', `/surveys/${survey}/export-responses`, { format: 'json' }, 'wrong'), 401);
    });
  });
});
