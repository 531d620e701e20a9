/**
 * A small, valid spec set as plain objects, for tests that mutate one thing and check one finding.
 */
import { stringify } from 'yaml';
import type { SpecFile } from '../../reconciler/spec/validate.ts';

export type Doc = Record<string, any>;

export interface SpecSet {
  workspace: Doc;
  fields: Doc;
  sources: Doc[];
  segments: Doc[];
  surveys: Doc[];
}

export function baseSpecs(): SpecSet {
  return {
    workspace: {
      kind: 'Workspace',
      name: 'acme',
      identity: { primary: 'id' },
      normalization: { email: { trim: true, lowercase: true } },
      environments: { production: { customerio: { region: 'us' } } },
      surveys: { frequency_cap: { max: 1, per: '30d' } },
    },
    fields: {
      kind: 'Fields',
      name: 'registry',
      fields: {
        email: { type: 'string', format: 'email', owner: 'shop', nature: 'identifier' },
        last_purchase_at: { type: 'timestamp', owner: 'shop' },
        order_count: { type: 'number', owner: 'shop', nature: 'measure' },
        category: { type: 'enum', values: ['consumables', 'apparel'], owner: 'shop', nature: 'state', updated_at: 'last_purchase_at' },
        subscription_status: { type: 'enum', values: ['active', 'cancelled'], owner: 'subs', updated_at: 'subscription_status_updated_at' },
        subscription_status_updated_at: { type: 'timestamp', owner: 'subs' },
        reason: { type: 'string', owner: 'qualtrics' },
      },
      events: {
        order_placed: { owner: 'shop', stage: 'pre_delivery' },
        order_delivered: { owner: 'shop', stage: 'delivery' },
        survey_answered: { owner: 'qualtrics' },
      },
    },
    sources: [
      {
        kind: 'Source',
        name: 'orders',
        system: 'shop',
        connector: { type: 'postgres', url_env: 'WAREHOUSE_URL', query: 'select * from orders where updated_at > :last_sync_at' },
        schedule: '5 * * * *',
        records: 'person',
        identity: { column: 'customer_id', as: 'id' },
        ordering: 'updated_at',
        timezone: 'UTC',
        fields: { email: 'email', last_purchase_at: 'last_order_at', order_count: 'orders', category: 'category' },
        freshness: { max_age: '2h' },
        latency_needed: 'hourly',
      },
      {
        kind: 'Source',
        name: 'subscriptions',
        system: 'subs',
        connector: { type: 'csv', path: 'subs.csv' },
        schedule: '15 * * * *',
        records: 'person',
        identity: { column: 'customer_id', as: 'id' },
        ordering: 'changed_at',
        timezone: 'America/New_York',
        fields: { subscription_status: 'status', subscription_status_updated_at: 'changed_at' },
        freshness: { max_age: '2h' },
      },
    ],
    segments: [
      {
        kind: 'Segment',
        name: 'consumable_buyers',
        conditions: { all: [{ attribute: { field: 'category', op: 'eq', value: 'consumables' } }] },
        exclusive_group: 'post_purchase',
        freshness_guard: {},
      },
      {
        kind: 'Segment',
        name: 'apparel_buyers',
        conditions: { attribute: { field: 'category', op: 'eq', value: 'apparel' } },
        exclusive_group: 'post_purchase',
        freshness_guard: {},
      },
    ],
    surveys: [
      {
        kind: 'SurveyTarget',
        name: 'fit',
        survey: 'SV_3kZ8cTqQ4rPbUuG',
        purpose: 'product_feedback',
        product_type: 'consumable',
        audience: 'consumable_buyers',
        moment: { event: 'order_delivered', after: '7d', before: '14d' },
        identifier: 'id',
        payload: ['order_count'],
        mailing_list: { name: 'fit' },
        holdout: '10%',
        response_window: '72h',
        responses: { question: 'QID4', reason_codes: { '1': 'shipping_issue' }, write: { attribute: 'reason', event: 'survey_answered' } },
      },
    ],
  };
}

/** One file per kind, several documents per file where there are several specs. */
export function toFiles(set: SpecSet): SpecFile[] {
  const docs = (list: Doc[]) => list.map((d) => stringify(d)).join('---\n');
  const files: SpecFile[] = [
    { path: 'specs/workspace.yaml', text: stringify(set.workspace) },
    { path: 'specs/fields.yaml', text: stringify(set.fields) },
  ];
  if (set.sources.length) files.push({ path: 'specs/sources.yaml', text: docs(set.sources) });
  if (set.segments.length) files.push({ path: 'specs/segments.yaml', text: docs(set.segments) });
  if (set.surveys.length) files.push({ path: 'specs/surveys.yaml', text: docs(set.surveys) });
  return files;
}
