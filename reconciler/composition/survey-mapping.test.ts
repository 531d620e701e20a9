/**
 * Survey targets' payloads against their surveys: the reader (one call per survey), the pure findings and
 * diagnostics on made-up answers, the surveys a sandbox gets, and the embedded sandbox made by connect().
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { findSpecFiles } from '../spec/load.ts';
import type { SpecModel } from '../spec/model.ts';
import { validateSpecs, type SpecFile } from '../spec/validate.ts';
import { compareSurveyPayload } from '../surveys/payload-mapping.ts';
import { WORLD_SURVEYS } from '../world/surveys.ts';
import { connect } from './connect.ts';
import {
  hasSurveyDrift,
  readSurveyFields,
  sandboxSurveys,
  surveyPayloadDiagnostics,
  surveyPayloadFindings,
  type SurveyFieldLookup,
} from './survey-mapping.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const FIT = 'SV_3kZ8cTqQ4rPbUuG';
const CANCEL = 'SV_8mWq2ZcR5tYhJ1n';
const LAPSED = 'SV_1pXv7KdN3sGa9Lq';

/** The example specs, plus extra documents in their own file. */
async function model(extra = ''): Promise<SpecModel> {
  const files: SpecFile[] = [];
  for (const f of await findSpecFiles(path.join(REPO, 'specs'))) files.push({ path: path.relative(REPO, f).split(path.sep).join('/'), text: await readFile(f, 'utf8') });
  if (extra) files.push({ path: 'specs/extra.yaml', text: extra });
  const result = validateSpecs(files);
  if (!result.model) throw new Error(`specs do not validate: ${JSON.stringify(result.diagnostics.filter((d) => d.severity === 'error').slice(0, 3))}`);
  return result.model;
}

/** A second target on the post-purchase survey, and one on a survey the world does not have. */
const target = (name: string, survey: string, payload: string, environments = '') => `kind: SurveyTarget
name: ${name}
survey: ${survey}
purpose: product_feedback
product_type: consumable
audience: delivered_consumables
moment: { event: order_delivered, after: 7d, before: 14d }
identifier: id
payload: [${payload}]
mailing_list: { name: "tidemark: ${name}" }
holdout: 10%
response_window: 72h
${environments}responses:
  question: QID2
  reason_codes: { "1": shipping_issue, "2": product_quality }
  write: { event: survey_answered }
`;

/** The 1-based line of the example's surveys.yaml holding `needle` (the file grows; the tests follow it). */
const SURVEYS_YAML = await readFile(path.join(REPO, 'specs/surveys.yaml'), 'utf8');
const lineOf = (needle: string) => SURVEYS_YAML.split('\n').findIndex((l) => l.includes(needle)) + 1;
const FIT_PAYLOAD_LINE = lineOf('payload: [last_purchase_at, order_count, product_category_last_purchased, vip_tier]');

const fields = (...names: string[]) => names.map((name) => ({ name, setInFlow: false }));

/** What the example's surveys read when nobody touched them. */
function cleanLookup(): SurveyFieldLookup {
  return new Map(WORLD_SURVEYS.map((s) => [s.id, fields(...s.embeddedData)]));
}

describe('readSurveyFields', () => {
  it('asks once per survey, even when two targets share one, and tells a missing survey from one without a flow', async () => {
    const m = await model(`${target('fit_followup', FIT, 'order_count')}---\n${target('other_survey', 'SV_9zzzzzzzzzzzzzz', 'order_count')}`);
    const asked: string[] = [];
    const lookup = await readSurveyFields(m, 'staging', {
      async getSurveyDefinition(id: string) {
        asked.push(id);
        if (id === 'SV_9zzzzzzzzzzzzzz') return undefined;
        if (id === LAPSED) return { SurveyID: id };
        return { SurveyID: id, SurveyFlow: { Type: 'Root', Flow: [{ Type: 'EmbeddedData', EmbeddedData: [{ Field: 'order_count', Type: 'Recipient' }] }] } };
      },
    });
    expect(asked.sort()).toEqual([LAPSED, FIT, CANCEL, 'SV_9zzzzzzzzzzzzzz'].sort());
    expect(lookup.get(FIT)).toEqual(fields('order_count'));
    expect(lookup.get(LAPSED)).toBe('unreadable');
    expect(lookup.get('SV_9zzzzzzzzzzzzzz')).toBe('missing');
  });

  it('asks only about the targets of the environment', async () => {
    const m = await model(target('production_only', 'SV_9zzzzzzzzzzzzzz', 'order_count', 'environments: [production]\n'));
    const asked: string[] = [];
    await readSurveyFields(m, 'staging', { getSurveyDefinition: async (id: string) => (asked.push(id), { SurveyID: id, SurveyFlow: { Flow: [] } }) });
    expect(asked).not.toContain('SV_9zzzzzzzzzzzzzz');
  });
});

describe('surveyPayloadFindings and surveyPayloadDiagnostics', () => {
  it('finds the example clean against the surveys as the world declares them', async () => {
    const m = await model();
    const findings = surveyPayloadFindings(m, 'staging', cleanLookup());
    expect(findings.map((f) => [f.target, f.status, f.blocksSend])).toEqual([
      ['cancel_intent_reason', 'ok', false],
      ['lapsed_diagnosis', 'ok', false],
      ['post_purchase_fit', 'ok', false],
    ]);
    expect(surveyPayloadDiagnostics(m, findings, 'the embedded sandbox')).toEqual([]);
  });

  it('reports a renamed field as drift on the payload entry, names the likely new name, and blocks only that target', async () => {
    const m = await model();
    const lookup = cleanLookup();
    lookup.set(FIT, fields('last_purchase_at', 'order_count', 'product_category_last_purchased', 'vip_level'));
    const findings = surveyPayloadFindings(m, 'staging', lookup);
    const fit = findings.find((f) => f.target === 'post_purchase_fit')!;
    expect(fit).toEqual({
      target: 'post_purchase_fit',
      address: 'survey_target.post_purchase_fit',
      survey: FIT,
      status: 'drift',
      notRead: [{ field: 'vip_tier', reason: 'absent' }],
      unfilled: ['vip_level'],
      blocksSend: true,
    });
    expect(findings.filter((f) => f.blocksSend).map((f) => f.target)).toEqual(['post_purchase_fit']);

    const diags = surveyPayloadDiagnostics(m, findings, 'the embedded sandbox');
    expect(diags.map((d) => [d.severity, d.code, d.address, d.path, d.source?.file, d.source?.start.line])).toEqual([
      ['warning', 'REF011', 'survey_target.post_purchase_fit', ['payload', 3], 'specs/surveys.yaml', FIT_PAYLOAD_LINE],
      ['warning', 'REF012', 'survey_target.post_purchase_fit', ['payload'], 'specs/surveys.yaml', FIT_PAYLOAD_LINE],
    ]);
    expect(diags[0]!.summary).toBe(`Drift: survey ${FIT} does not read embedded-data field "vip_tier", which survey target "post_purchase_fit" sends.`);
    expect(diags[0]!.detail).toContain('The survey reads "vip_level", which nothing sends');
    expect(diags[0]!.detail).toContain('`tidemark surveys run` does not send this target');
    expect(diags[1]!.summary).toContain('reads embedded-data field "vip_level"');
    expect(hasSurveyDrift({ diagnostics: diags })).toBe(true);
    expect(hasSurveyDrift({ diagnostics: diags.slice(1) })).toBe(false);
  });

  it('names a difference in case as such', async () => {
    const m = await model();
    const lookup = cleanLookup();
    lookup.set(CANCEL, fields('subscription_status', 'Loyalty_Tier', 'order_count'));
    const [diag, ...rest] = surveyPayloadDiagnostics(m, surveyPayloadFindings(m, 'staging', lookup), 'x');
    expect(rest).toEqual([]);
    expect(diag).toMatchObject({ code: 'REF011', path: ['payload', 1] });
    expect(diag!.summary).toContain('reads embedded-data field "Loyalty_Tier", but survey target "cancel_intent_reason" sends "loyalty_tier" (the names differ only in case)');
  });

  it('makes a missing survey an error on the survey key, and a flow it cannot read drift; neither is sent', async () => {
    const m = await model();
    const lookup = cleanLookup();
    lookup.set(FIT, 'missing');
    lookup.set(LAPSED, 'unreadable');
    const findings = surveyPayloadFindings(m, 'staging', lookup);
    expect(findings.map((f) => [f.target, f.status, f.blocksSend])).toEqual([
      ['cancel_intent_reason', 'ok', false],
      ['lapsed_diagnosis', 'unreadable', true],
      ['post_purchase_fit', 'missing_survey', true],
    ]);
    const diags = surveyPayloadDiagnostics(m, findings, 'Qualtrics brand x');
    expect(diags.map((d) => [d.severity, d.code, d.path, d.source?.start.line])).toEqual([
      ['warning', 'REF011', ['survey'], lineOf(`survey: ${LAPSED}`)],
      ['error', 'REF010', ['survey'], lineOf(`survey: ${FIT}`)],
    ]);
    expect(diags[1]!.summary).toBe(`Survey target "post_purchase_fit" names Qualtrics survey ${FIT}, which does not exist in Qualtrics brand x.`);
  });

  it('leaves targets unchecked (and unsendable) when there was nothing to ask', async () => {
    const m = await model();
    const findings = surveyPayloadFindings(m, 'staging', undefined);
    expect(findings.every((f) => f.status === 'unchecked' && f.blocksSend)).toBe(true);
    expect(surveyPayloadDiagnostics(m, findings, 'x')).toEqual([]);
  });
});

describe('sandboxSurveys', () => {
  it('gives the world’s surveys, whose flows read exactly what the example targets send', async () => {
    const m = await model();
    const seeds = sandboxSurveys(m);
    expect(seeds.map((s) => s.id)).toEqual(WORLD_SURVEYS.map((s) => s.id));
    for (const t of m.surveyTargets.values()) {
      const seed = seeds.find((s) => s.id === t.spec.survey)!;
      const names = (seed.embeddedData ?? []).map((e) => (typeof e === 'string' ? e : e.name));
      expect(compareSurveyPayload(t.spec.payload, fields(...names)), t.name).toEqual({ notRead: [], unfilled: [] });
    }
  });

  it('stands in for any other survey: its flow reads every payload sent to it, its question carries the reason codes', async () => {
    const m = await model(`${target('a_new_one', 'SV_9zzzzzzzzzzzzzz', 'order_count, vip_tier')}---\n${target('b_same', 'SV_9zzzzzzzzzzzzzz', 'loyalty_tier, order_count', 'environments: [production]\n')}`);
    const standIn = sandboxSurveys(m).find((s) => s.id === 'SV_9zzzzzzzzzzzzzz');
    expect(standIn).toEqual({
      id: 'SV_9zzzzzzzzzzzzzz',
      name: 'a_new_one (sandbox stand-in)',
      embeddedData: ['order_count', 'vip_tier', 'loyalty_tier'],
      questions: [
        {
          id: 'QID2',
          text: expect.stringContaining('stand-in'),
          type: 'single',
          choices: { '1': { text: 'shipping_issue', recode: '1' }, '2': { text: 'product_quality', recode: '2' } },
        },
      ],
    });
  });
});

describe('the embedded sandbox made by connect()', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tidemark-survey-mapping-'));
    return () => rm(dir, { recursive: true, force: true });
  });

  it('has the surveys the targets name from the first connect, reads them clean, and keeps a CX edit across runs', async () => {
    const m = await model();
    const first = await connect(m, { cwd: dir, env: {}, sandbox: true });
    try {
      const findings = surveyPayloadFindings(m, first.environment, await readSurveyFields(m, first.environment, first.qualtrics!));
      expect(findings.map((f) => f.status)).toEqual(['ok', 'ok', 'ok']);
      first.sandbox!.qualtrics.editEmbeddedData(FIT, { rename: { vip_tier: 'vip_level' } });
    } finally {
      await first.close();
    }
    const second = await connect(m, { cwd: dir, env: {}, sandbox: true });
    try {
      const findings = surveyPayloadFindings(m, second.environment, await readSurveyFields(m, second.environment, second.qualtrics!));
      expect(findings.map((f) => [f.target, f.status])).toEqual([
        ['cancel_intent_reason', 'ok'],
        ['lapsed_diagnosis', 'ok'],
        ['post_purchase_fit', 'drift'],
      ]);
    } finally {
      await second.close();
    }
  });
});
