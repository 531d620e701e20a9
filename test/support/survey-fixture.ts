/**
 * A throwaway project for the survey tests (issue 12): a Workspace whose environment has Customer.io AND
 * Qualtrics, a field registry with an email, a payload field of every type and an optional per-person
 * zone, a person source and an `order_delivered` event source over NDJSON, overlapping Segments and
 * SurveyTargets with distributions. The sandbox side: the Qualtrics directory and the surveys the targets
 * name (their embedded data = each target's payload, so the payload check finds nothing), and the
 * environment that points a CLI (in process or a child) at the sandbox as if it were the live services.
 *
 * Built on test/support/sync-fixture.ts (its credential variables, person source, NDJSON and CLI helpers).
 * Every command a test runs takes `--now`: sends expire relative to the Qualtrics emulator's real clock,
 * so clocks that send are in 2027; clocks that only plan may be anywhere.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { createSandbox, type RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { CREDENTIAL_VARS, cli, makeProject, ndjson, personSource, removeProject, sandboxEnv, writeData, type CliResult } from './sync-fixture.ts';

/** The Workspace's XM directory; the sandbox is given it as a brand would already have it. */
export const DIRECTORY_ID = 'POOL_5urv3yT3st0001';
/** The variable the Workspace names for the Qualtrics token. */
export const QUALTRICS_TOKEN_VAR = 'SURVEY_TEST_QUALTRICS_API_TOKEN';
export const BRAND_ZONE = 'America/New_York';

export const DAY = 86_400_000;
export const HOUR = 3_600_000;

/** One person of the person source. Absent keys are absent from the row (a blank attribute). */
export interface Person {
  id: string;
  email?: string;
  order_count?: number;
  accepts_marketing?: boolean;
  /** ISO-8601 with a zone. */
  last_order_at?: string;
  favourite_blend?: string;
  timezone?: string;
}

/** One `order_delivered` event. */
export type Delivery = {
  order_id: string;
  customer_id: string;
  /** ISO-8601 with a zone (the source reads it as UTC when naive). */
  delivered_at: string;
};

export interface TargetOptions {
  name: string;
  survey: string;
  audience: string;
  after: string;
  before: string;
  priority?: number;
  holdout?: string;
  frequency_cap?: string;
  response_window?: string;
  payload?: string[];
  send_window?: string;
  /** No `distribution:` (the run must skip it). */
  noDistribution?: boolean;
}

/** The payload of the default targets: one field of each type. */
export const PAYLOAD = ['order_count', 'accepts_marketing', 'last_order_at', 'favourite_blend'];

export const DISTRIBUTION = {
  from_name: 'Tidemark Tests',
  from_email: 'surveys@tidemark-tests.example',
  reply_to: 'cx@tidemark-tests.example',
  library_id: 'UR_7tEsTl1bRaRy0',
  message_id: 'MS_1nv1t4t10nMsg',
};

/** Survey ids: one per default target. */
export const SURVEY = { delivery: 'SV_del1v3ryCh3ck0', repeat: 'SV_r3p34tFeedb4ck', nps: 'SV_n3tPr0m0t3r000' } as const;

/**
 * The default targets, on overlapping audiences: everyone delivered in the last 30 days (delivery_check,
 * priority 1), people with 2+ orders (repeat_feedback, priority 2; a subset of the first), people who
 * accept marketing (nps, no priority: claimed last). The Workspace cap (1 per 30d, all surveys) applies to
 * the last two; delivery_check has its own, also across all surveys.
 */
export function defaultTargets(): TargetOptions[] {
  return [
    { name: 'delivery_check', survey: SURVEY.delivery, audience: 'recent_buyers', after: '2d', before: '5d', priority: 1, holdout: '10%', frequency_cap: '{ max: 1, per: 30d }', response_window: '48h' },
    { name: 'repeat_feedback', survey: SURVEY.repeat, audience: 'repeat_buyers', after: '1d', before: '7d', priority: 2, holdout: '20%', response_window: '72h' },
    { name: 'nps', survey: SURVEY.nps, audience: 'marketing_ok', after: '1d', before: '10d', response_window: '96h' },
  ];
}

function workspaceYaml(workspaceCap: string): string {
  return `kind: Workspace
name: survey_tests
identity:
  primary: id
timezone: ${BRAND_ZONE}
normalization:
  email: { trim: true, lowercase: true }
systems:
  crm: {}
  shop: {}
  qualtrics: {}
environments:
  test:
    customerio:
      region: us
      site_id_env: ${CREDENTIAL_VARS.site}
      track_api_key_env: ${CREDENTIAL_VARS.track}
      app_api_key_env: ${CREDENTIAL_VARS.app}
    qualtrics:
      datacenter: iad1
      directory_id: ${DIRECTORY_ID}
      api_token_env: ${QUALTRICS_TOKEN_VAR}
default_environment: test
state:
  backend: embedded
  path: .tidemark
surveys:
  frequency_cap: ${workspaceCap}
`;
}

export const FIELDS_YAML = `kind: Fields
name: survey_tests
fields:
  email: { type: string, format: email, owner: crm, pii: true }
  order_count: { type: number, nature: measure, owner: crm }
  accepts_marketing: { type: boolean, owner: crm }
  last_order_at: { type: timestamp, owner: crm }
  favourite_blend: { type: string, owner: crm }
  timezone: { type: string, owner: crm }
  survey_reason: { type: string, owner: qualtrics }
events:
  order_delivered: { owner: shop, stage: delivery }
`;

const PERSON_COLUMNS = { email: 'email', order_count: 'order_count', accepts_marketing: 'accepts_marketing', last_order_at: 'last_order_at', favourite_blend: 'favourite_blend', timezone: 'timezone' };

export function deliveriesSource(): string {
  return `kind: Source
name: deliveries
system: shop
connector: { type: ndjson, path: data/deliveries.ndjson }
schedule: "*/30 * * * *"
records: event
identity: { column: customer_id, as: id }
event:
  name: order_delivered
  timestamp_column: delivered_at
  id_columns: [order_id]
timezone: UTC
fields: {}
freshness: { max_age: 2h }
latency_needed: hourly
`;
}

// The guard is required on a survey audience (SEG002); a wide max_age keeps it from freezing the
// segments when a test moves the clock days on without syncing again.
const GUARD = 'freshness_guard: { max_age: 400d }';

export const SEGMENTS_YAML = `kind: Segment
name: recent_buyers
conditions:
  event: { name: order_delivered, to: 30d }
${GUARD}
---
kind: Segment
name: repeat_buyers
conditions:
  attribute: { field: order_count, op: gte, value: 2 }
${GUARD}
---
kind: Segment
name: marketing_ok
conditions:
  attribute: { field: accepts_marketing, op: eq, value: true }
${GUARD}
`;

export function targetYaml(t: TargetOptions): string {
  return `kind: SurveyTarget
name: ${t.name}
survey: ${t.survey}
purpose: other
audience: ${t.audience}
moment: { event: order_delivered, after: ${t.after}, before: ${t.before} }
identifier: id
payload: [${(t.payload ?? PAYLOAD).join(', ')}]
mailing_list: { name: "tidemark: ${t.name}" }
${t.priority !== undefined ? `priority: ${t.priority}\n` : ''}${t.holdout ? `holdout: ${t.holdout}\n` : ''}${t.frequency_cap ? `frequency_cap: ${t.frequency_cap}\n` : ''}${t.send_window ? `send_window: ${t.send_window}\n` : ''}response_window: ${t.response_window ?? '72h'}
${
  t.noDistribution
    ? ''
    : `distribution:
  from_name: ${DISTRIBUTION.from_name}
  from_email: ${DISTRIBUTION.from_email}
  reply_to: ${DISTRIBUTION.reply_to}
  subject: "${subjectOf(t.name)}"
  library_id: ${DISTRIBUTION.library_id}
  message_id: ${DISTRIBUTION.message_id}
`
}responses:
  question: QID1
  reason_codes: { "1": good, "2": bad }
  write: { attribute: survey_reason }
`;
}

export const subjectOf = (target: string) => `A quick question (${target})`;

export interface SurveyProject {
  dir: string;
  targets: TargetOptions[];
}

export interface SurveyProjectOptions {
  people: Person[];
  deliveries: Delivery[];
  targets?: TargetOptions[];
  /** The Workspace's `surveys.frequency_cap` (default `{ max: 1, per: 30d }`). */
  workspaceCap?: string;
}

const made: string[] = [];

/** Writes the project: specs (workspace, fields, sources, segments, targets) and the two data files. */
export async function makeSurveyProject(o: SurveyProjectOptions): Promise<SurveyProject> {
  const targets = o.targets ?? defaultTargets();
  const dir = await makeProject({ sources: [personSource({ fields: PERSON_COLUMNS }), deliveriesSource()] });
  made.push(dir);
  await writeFile(path.join(dir, 'specs', 'workspace.yaml'), workspaceYaml(o.workspaceCap ?? '{ max: 1, per: 30d }'));
  await writeFile(path.join(dir, 'specs', 'fields.yaml'), FIELDS_YAML);
  await writeFile(path.join(dir, 'specs', 'segments.yaml'), SEGMENTS_YAML);
  await writeFile(path.join(dir, 'specs', 'surveys.yaml'), targets.map(targetYaml).join('---\n'));
  await writeData(dir, 'customers.ndjson', peopleNdjson(o.people));
  await writeData(dir, 'deliveries.ndjson', ndjson(o.deliveries));
  return { dir, targets };
}

export function peopleNdjson(people: readonly Person[]): string {
  return ndjson(people.map(({ id, ...rest }) => ({ customer_id: id, ...rest })));
}

export async function writePeople(dir: string, people: readonly Person[]): Promise<void> {
  await writeData(dir, 'customers.ndjson', peopleNdjson(people));
}

export async function writeDeliveries(dir: string, deliveries: readonly Delivery[]): Promise<void> {
  await writeData(dir, 'deliveries.ndjson', ndjson(deliveries));
}

/** Adds the project's directory and surveys to the sandbox (the API cannot create either). */
export function seedQualtrics(sandbox: RunningSandbox, targets: readonly TargetOptions[]): void {
  if (!sandbox.qualtrics.hasDirectory(DIRECTORY_ID)) sandbox.qualtrics.seedDirectory({ directoryId: DIRECTORY_ID, name: 'survey tests' });
  const bySurvey = new Map<string, string[]>();
  for (const t of targets) {
    const fields = bySurvey.get(t.survey) ?? [];
    for (const f of t.payload ?? PAYLOAD) if (!fields.includes(f)) fields.push(f);
    bySurvey.set(t.survey, fields);
  }
  sandbox.qualtrics.seedReferencedSurveys(
    [...bySurvey].map(([id, embeddedData]) => ({
      id,
      name: `survey ${id}`,
      questions: [{ id: 'QID1', text: 'How was it?', type: 'single' as const, choices: { '1': 'Good', '2': 'Bad' } }],
      embeddedData,
    })),
  );
}

/** The environment that points a CLI at the sandbox for both services (sync-fixture's, plus Qualtrics). */
export function surveyEnv(sandbox: RunningSandbox): NodeJS.ProcessEnv {
  return {
    ...sandboxEnv(sandbox),
    [QUALTRICS_TOKEN_VAR]: sandbox.env.QUALTRICS_API_TOKEN,
    QUALTRICS_BASE_URL: sandbox.env.QUALTRICS_BASE_URL,
    // The emulator's own limit is the one worth meeting; the client's would only slow the tests.
    QUALTRICS_RATE_PER_MINUTE: '60000',
  };
}

/** Runs the CLI in process against the sandbox, both services. */
export function tm(dir: string, sandbox: RunningSandbox, ...args: string[]): Promise<CliResult> {
  return cli(dir, sandbox, args, surveyEnv(sandbox));
}

/** Like `tm`, failing with the output when the exit code is not the expected one. */
export async function tmOk(dir: string, sandbox: RunningSandbox, args: string[], expected = 0): Promise<CliResult> {
  const r = await tm(dir, sandbox, ...args);
  if (r.code !== expected) throw new Error(`tidemark ${args.join(' ')} exited ${r.code} (expected ${expected})\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** `apply --auto-approve` (creates the mailing lists), at `now`. */
export async function applyAt(dir: string, sandbox: RunningSandbox, now: string): Promise<void> {
  await tmOk(dir, sandbox, ['apply', '--auto-approve', '--now', now]);
}

/** `sync run` of both sources, at `now`. */
export async function syncAt(dir: string, sandbox: RunningSandbox, now: string): Promise<void> {
  await tmOk(dir, sandbox, ['sync', 'run', 'customers', '--now', now]);
  await tmOk(dir, sandbox, ['sync', 'run', 'deliveries', '--now', now]);
}

/** What `surveys plan|run --format json` print. */
export interface Funnel {
  target: string;
  audience: number;
  in_window: number;
  already_invited: number;
  capped: number;
  opted_out: number;
  no_email: number;
  waiting: number;
  waiting_until?: string;
  claimed_by_other: number;
  held_out: number;
  eligible: number;
}

export interface SurveyPlanJson {
  at: string;
  targets: Funnel[];
}

export interface SendJson {
  send_id: string;
  target: string;
  phase: string;
  to_invite: number;
  invited: number;
  held_out: number;
  failed: number;
  no_email: number;
  distribution_id: string | null;
  note?: string;
}

export interface SurveyRunJson {
  at: string;
  ok: boolean;
  resumed: SendJson[];
  targets: Array<{ target: string; eligibility: Funnel; status: string; note?: string; send?: SendJson }>;
}

export async function surveysPlan(dir: string, sandbox: RunningSandbox, now: string): Promise<Record<string, Funnel>> {
  const r = await tmOk(dir, sandbox, ['surveys', 'plan', '--format', 'json', '--now', now]);
  const plan = JSON.parse(r.stdout) as SurveyPlanJson;
  return Object.fromEntries(plan.targets.map((t) => [t.target, t]));
}

export async function surveysRun(dir: string, sandbox: RunningSandbox, now: string, expectedCode = 0): Promise<SurveyRunJson> {
  const r = await tmOk(dir, sandbox, ['surveys', 'run', '--format', 'json', '--now', now], expectedCode);
  return JSON.parse(r.stdout) as SurveyRunJson;
}

// ------------------------------------------------------------------------------------ Qualtrics views

/** The mailing list apply created for a target (by its declared name). */
export function listIdOf(sandbox: RunningSandbox, target: string): string {
  const list = sandbox.qualtrics.listMailingLists(DIRECTORY_ID).find((l) => l.name === `tidemark: ${target}`);
  if (!list) throw new Error(`no mailing list for ${target} in the sandbox`);
  return list.mailingListId;
}

/** Person ids (extRef) of the contacts in each transaction batch, by batch id. */
export function batchPeople(sandbox: RunningSandbox, batchIds: readonly string[]): Map<string, string[]> {
  const contacts = new Map(sandbox.qualtrics.directoryContacts(DIRECTORY_ID).map((c) => [c.contactId, c]));
  const out = new Map<string, string[]>();
  for (const batchId of batchIds) {
    out.set(
      batchId,
      sandbox.qualtrics.batchTransactions(batchId).map((tx) => contacts.get(tx.contactId)?.extRef ?? `?${tx.contactId}`),
    );
  }
  return out;
}

/** Each distribution of a survey with the person ids its batch holds. */
export function distributionsOf(sandbox: RunningSandbox, surveyId: string) {
  const distributions = sandbox.qualtrics.distributions(surveyId);
  const batches = batchPeople(sandbox, distributions.map((d) => d.recipients.transactionBatchId ?? ''));
  return distributions.map((d) => ({ ...d, people: batches.get(d.recipients.transactionBatchId ?? '') ?? [] }));
}

/** Qualtrics API calls the way someone in the UI (or the unsubscribe link) would change things. */
export async function qualtricsApi(sandbox: RunningSandbox, method: string, apiPath: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${sandbox.env.QUALTRICS_BASE_URL}/API/v3${apiPath}`, {
    method,
    headers: { 'x-api-token': sandbox.env.QUALTRICS_API_TOKEN!, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${apiPath}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

/** A person unsubscribes from a target's mailing list (the list's opt-out, through the API). */
export async function unsubscribe(sandbox: RunningSandbox, target: string, personId: string): Promise<void> {
  const listId = listIdOf(sandbox, target);
  const c = sandbox.qualtrics.contacts(listId).find((x) => x.extRef === personId);
  if (!c) throw new Error(`${personId} is not in the list of ${target}`);
  await qualtricsApi(sandbox, 'PUT', `/directories/${DIRECTORY_ID}/mailinglists/${listId}/contacts/${c.contactId}`, { unsubscribed: true });
}

// ------------------------------------------------------------------------------------ lifecycle

/** Puts a sandbox back to a fresh brand with this project's directory, and imports that finish on the first poll. */
export function resetSurveySandbox(sandbox: RunningSandbox): void {
  sandbox.faults.clear();
  sandbox.customerio.reset();
  sandbox.qualtrics.reset();
  sandbox.qualtrics.seedDirectory({ directoryId: DIRECTORY_ID, name: 'survey tests' });
  // One step per import: the CLI polls every second, and three steps would cost two seconds per send.
  sandbox.qualtrics.configure({ jobSteps: 1 });
  sandbox.resetRequestCounts();
}

export function startSurveySandbox(seed: number): Promise<RunningSandbox> {
  return createSandbox({ port: 0, retryAfterSeconds: 0, seed });
}

/**
 * One sandbox per test file, reset before each test; the projects made with `makeSurveyProject` are
 * removed after each test.
 */
export function useSurveySandbox(seed: number, bind: (sandbox: RunningSandbox) => void): void {
  let sandbox: RunningSandbox | undefined;
  beforeAll(async () => {
    sandbox = await startSurveySandbox(seed);
    bind(sandbox);
  });
  afterAll(async () => {
    await sandbox?.close();
  });
  beforeEach(() => resetSurveySandbox(sandbox!));
  afterEach(async () => {
    for (const dir of made.splice(0)) await removeProject(dir);
  });
}

/** ISO of `base` moved by `ms`. */
export function at(base: string, ms: number): string {
  return new Date(Date.parse(base) + ms).toISOString();
}
