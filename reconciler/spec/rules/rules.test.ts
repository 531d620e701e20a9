import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { baseSpecs, toFiles, type SpecSet } from '../../../test/support/spec-fixtures.ts';
import { validateSpecs } from '../validate.ts';
import { RULES } from './index.ts';

function codes(set: SpecSet): string[] {
  return validateSpecs(toFiles(set)).diagnostics.map((d) => d.code);
}

function run(mutate: (s: SpecSet) => void) {
  const s = baseSpecs();
  mutate(s);
  return validateSpecs(toFiles(s));
}

interface Case {
  code: string;
  why: string;
  fail: (s: SpecSet) => void;
  /** Applied after `fail`: the closest fix. */
  fix: (s: SpecSet) => void;
}

const src = (s: SpecSet, name = 'orders') => s.sources.find((x) => x.name === name)!;
const seg = (s: SpecSet, name: string) => s.segments.find((x) => x.name === name)!;
const survey = (s: SpecSet) => s.surveys[0]!;

const cases: Case[] = [
  {
    code: 'ID001',
    why: 'no workspace',
    fail: (s) => { s.workspace = { kind: 'Fields', name: 'extra' }; },
    fix: (s) => { s.workspace = baseSpecs().workspace; },
  },
  {
    code: 'ID002',
    why: 'source keyed by email while primary is id',
    fail: (s) => { src(s).identity.as = 'email'; },
    fix: (s) => { src(s).identity.as = 'id'; },
  },
  {
    code: 'ID003',
    why: 'survey contacts by email, id not carried',
    fail: (s) => { survey(s).identifier = 'email'; },
    fix: (s) => { s.workspace.identity.immutable_id = 'order_count'; survey(s).payload = ['order_count']; },
  },
  {
    code: 'ID004',
    why: 'email primary while an immutable id exists',
    fail: (s) => {
      s.workspace.identity = { primary: 'email', immutable_id: 'order_count' };
      for (const x of s.sources) x.identity.as = 'email';
    },
    fix: (s) => { delete s.workspace.identity.immutable_id; s.fields.fields.email.nature = 'identifier'; },
  },
  {
    code: 'ID005',
    why: 'emails synced without normalisation',
    fail: (s) => { delete s.workspace.normalization; },
    fix: (s) => { s.workspace.normalization = { email: { trim: true, lowercase: true } }; },
  },
  {
    code: 'OWN001',
    why: 'two systems write one field',
    fail: (s) => { src(s, 'subscriptions').fields.order_count = 'n_orders'; s.fields.fields.order_count.writers = ['subs']; },
    fix: (s) => { s.fields.fields.order_count.combine = 'max'; },
  },
  {
    code: 'OWN002',
    why: 'a source writes a field owned by another system',
    fail: (s) => { s.fields.fields.order_count.owner = 'subs'; },
    fix: (s) => { s.fields.fields.order_count.writers = ['shop']; s.fields.fields.order_count.combine = 'max'; },
  },
  {
    code: 'OWN003',
    why: 'state without updated_at',
    fail: (s) => { delete s.fields.fields.category.updated_at; },
    fix: (s) => { s.fields.fields.category.updated_at = 'last_purchase_at'; },
  },
  {
    code: 'OWN004',
    why: 'owner is no known system',
    fail: (s) => { s.fields.fields.reason.owner = 'cx_team'; },
    fix: (s) => { s.workspace.systems = { cx_team: { description: 'CX tooling' } }; s.fields.fields.reason.owner = 'qualtrics'; },
  },
  {
    code: 'SYNC001',
    why: 'blanks may erase a non-clearable field',
    fail: (s) => { src(s).null_policy = 'overwrite'; },
    fix: (s) => { for (const f of Object.keys(src(s).fields)) s.fields.fields[f].clearable = true; },
  },
  {
    code: 'SYNC002',
    why: 'timestamp columns with no timezone',
    fail: (s) => { delete src(s).timezone; },
    fix: (s) => { src(s).timezone = 'Europe/Berlin'; },
  },
  {
    code: 'SYNC003',
    why: 'daily schedule, 2h SLO',
    fail: (s) => { src(s).schedule = '0 3 * * *'; delete src(s).latency_needed; },
    fix: (s) => { src(s).freshness.max_age = '26h'; },
  },
  {
    code: 'SYNC004',
    why: 'cart recovery from a scheduled sync',
    fail: (s) => { src(s).use_case = 'cart_recovery'; },
    fix: (s) => { src(s).use_case = 'post_purchase_targeting'; },
  },
  {
    code: 'SYNC004',
    why: 'latency need shorter than the schedule gap',
    fail: (s) => { src(s).latency_needed = 'minutes'; },
    fix: (s) => { src(s).latency_needed = 'hourly'; },
  },
  {
    code: 'SYNC005',
    why: 'person source without ordering',
    fail: (s) => { delete src(s).ordering; },
    fix: (s) => { src(s).ordering = 'updated_at'; },
  },
  {
    code: 'SYNC006',
    why: 'an action synced as a person attribute',
    fail: (s) => { s.fields.fields.review_submitted = { type: 'boolean', owner: 'shop', nature: 'action' }; src(s).fields.review_submitted = 'reviewed'; },
    fix: (s) => { s.fields.fields.review_submitted.nature = 'measure'; },
  },
  {
    code: 'SYNC006',
    why: 'state synced as events',
    fail: (s) => {
      s.fields.events.tier_status = { owner: 'shop' };
      s.sources.push({ ...structuredClone(src(s)), name: 'tier_events', records: 'event', fields: {}, event: { name: 'tier_status', timestamp_column: 'at', id_columns: ['id'] } });
      delete s.sources[s.sources.length - 1]!.ordering;
    },
    fix: (s) => { s.fields.events.tier_changed = { owner: 'shop' }; s.sources[s.sources.length - 1]!.event.name = 'tier_changed'; },
  },
  {
    code: 'SYNC007',
    why: 'warehouse query without :last_sync_at',
    fail: (s) => { src(s).connector.query = 'select * from orders'; },
    fix: (s) => { src(s).connector.query = 'select * from orders where updated_at > :last_sync_at'; },
  },
  {
    code: 'SYNC008',
    why: 'invalid cron',
    fail: (s) => { src(s).schedule = '61 * * * *'; },
    fix: (s) => { src(s).schedule = '1 * * * *'; },
  },
  {
    code: 'SYNC009',
    why: 'no freshness SLO',
    fail: (s) => { delete src(s).freshness; },
    fix: (s) => { src(s).freshness = { max_age: '3h' }; },
  },
  {
    code: 'SYNC010',
    why: 'event source without its event block',
    fail: (s) => { src(s, 'subscriptions').records = 'event'; },
    fix: (s) => { src(s, 'subscriptions').records = 'person'; },
  },
  {
    code: 'SEG001',
    why: 'two segments of one group can overlap',
    fail: (s) => { seg(s, 'apparel_buyers').conditions = { attribute: { field: 'order_count', op: 'gt', value: 1 } }; },
    fix: (s) => { seg(s, 'apparel_buyers').conditions = { all: [{ attribute: { field: 'order_count', op: 'gt', value: 1 } }, { not: { segment: 'consumable_buyers' } }] }; },
  },
  {
    code: 'SEG004',
    why: 'an overlap the analysis cannot decide (fixed instant against an age, no fixed now)',
    fail: (s) => {
      seg(s, 'consumable_buyers').conditions = { all: [{ attribute: { field: 'category', op: 'eq', value: 'consumables' } }, { attribute: { field: 'last_purchase_at', op: 'gt', value: '2026-01-01T00:00:00Z' } }] };
      seg(s, 'apparel_buyers').conditions = { attribute: { field: 'last_purchase_at', op: 'older_than', duration: '30d' } };
    },
    fix: (s) => { seg(s, 'apparel_buyers').conditions = { all: [{ attribute: { field: 'category', op: 'eq', value: 'apparel' } }, { attribute: { field: 'last_purchase_at', op: 'older_than', duration: '30d' } }] }; },
  },
  {
    code: 'SEG002',
    why: 'survey audience on synced data without a freshness guard',
    fail: (s) => { delete seg(s, 'consumable_buyers').freshness_guard; },
    fix: (s) => { seg(s, 'consumable_buyers').freshness_guard = { max_age: '2h' }; },
  },
  {
    code: 'SEG003',
    why: 'referenced Customer.io segment in an exclusive group',
    fail: (s) => { s.segments.push({ kind: 'Segment', name: 'ui_built', customerio_segment: { id: 7 }, exclusive_group: 'post_purchase' }); },
    fix: (s) => { delete s.segments[s.segments.length - 1]!.exclusive_group; },
  },
  {
    code: 'SEG005',
    why: 'condition on a field no Source writes',
    fail: (s) => { s.fields.fields.nps_score = { type: 'number', owner: 'shop' }; seg(s, 'apparel_buyers').conditions = { attribute: { field: 'nps_score', op: 'gte', value: 9 } }; },
    fix: (s) => { src(s).fields.nps_score = 'nps'; },
  },
  {
    code: 'SURV001',
    why: 'no frequency cap anywhere',
    fail: (s) => { delete s.workspace.surveys; },
    fix: (s) => { survey(s).frequency_cap = { max: 1, per: '60d' }; },
  },
  {
    code: 'SURV002',
    why: 'too many payload fields',
    fail: (s) => { s.workspace.surveys.max_payload_fields = 2; survey(s).payload = ['order_count', 'category', 'last_purchase_at']; },
    fix: (s) => { survey(s).payload = ['order_count', 'category']; },
  },
  {
    code: 'SURV003',
    why: 'product survey timed from order placed',
    fail: (s) => { survey(s).moment.event = 'order_placed'; },
    fix: (s) => { survey(s).moment.event = 'order_delivered'; },
  },
  {
    code: 'SURV004',
    why: 'consumable survey 1–3 days after delivery',
    fail: (s) => { survey(s).moment = { event: 'order_delivered', after: '1d', before: '3d' }; },
    fix: (s) => { s.workspace.surveys.delay_windows = { consumable: { min: '1d', max: '5d' } }; },
  },
  {
    code: 'SURV005',
    why: 'no response loop',
    fail: (s) => { delete survey(s).responses; },
    fix: (s) => { survey(s).responses = { question: 'QID1', reason_codes: { '1': 'x' }, write: { event: 'survey_answered' } }; },
  },
  {
    code: 'SURV006',
    why: 'no response window',
    fail: (s) => { delete survey(s).response_window; },
    fix: (s) => { survey(s).response_window = '48h'; },
  },
  {
    code: 'SURV007',
    why: 'response window of 10 days',
    fail: (s) => { survey(s).response_window = '10d'; },
    fix: (s) => { survey(s).response_window = '96h'; },
  },
  {
    code: 'SURV008',
    why: 'response window longer than the cap period',
    fail: (s) => { survey(s).frequency_cap = { max: 1, per: '2d' }; },
    fix: (s) => { survey(s).response_window = '72h'; survey(s).frequency_cap.per = '7d'; },
  },
  {
    code: 'SURV009',
    why: 'moment window ends before it starts',
    fail: (s) => { survey(s).moment = { event: 'order_delivered', after: '14d', before: '7d' }; },
    fix: (s) => { survey(s).moment = { event: 'order_delivered', after: '7d', before: '14d' }; },
  },
  {
    code: 'SURV010',
    why: 'no holdout',
    fail: (s) => { delete survey(s).holdout; },
    fix: (s) => { survey(s).holdout = '5%'; },
  },
  {
    code: 'SURV011',
    why: 'webhook responses with no receiver URL',
    fail: (s) => { survey(s).responses.webhook = true; },
    fix: (s) => { s.workspace.environments.production.qualtrics = { datacenter: 'iad1', directory_id: 'POOL_abc123', responses_webhook_url: 'https://hooks.example/q' }; },
  },
  {
    code: 'SURV012',
    why: 'send window hours reversed (quiet hours written in their place)',
    fail: (s) => { survey(s).send_window = { hours: '20:00-08:00', timezone: 'America/New_York' }; },
    fix: (s) => { survey(s).send_window.hours = '08:00-20:00'; },
  },
  {
    code: 'SURV012',
    why: 'send window opening and closing at the same time',
    fail: (s) => { survey(s).send_window = { hours: '09:00-09:00', timezone: 'America/New_York' }; },
    fix: (s) => { survey(s).send_window.hours = '00:00-24:00'; },
  },
  {
    code: 'SURV013',
    why: 'send window with an empty list of days',
    fail: (s) => { survey(s).send_window = { hours: '09:00-20:00', days: [], timezone: 'America/New_York' }; },
    fix: (s) => { delete survey(s).send_window.days; },
  },
  {
    code: 'SURV014',
    why: 'send window with no zone and a Workspace without one',
    fail: (s) => { survey(s).send_window = { hours: '09:00-20:00' }; },
    fix: (s) => { s.workspace.timezone = 'America/New_York'; },
  },
  {
    code: 'SURV014',
    why: 'per-person zone with nothing to fall back on',
    fail: (s) => { s.fields.fields.time_zone = { type: 'string', owner: 'shop' }; survey(s).send_window = { hours: '09:00-20:00', field: 'time_zone' }; },
    fix: (s) => { survey(s).send_window.fallback_timezone = 'America/Chicago'; },
  },
  {
    code: 'SURV015',
    why: 'per-person zone from an undeclared field',
    fail: (s) => { survey(s).send_window = { hours: '09:00-20:00', field: 'time_zone', fallback_timezone: 'UTC' }; },
    fix: (s) => { s.fields.fields.time_zone = { type: 'string', owner: 'shop' }; },
  },
  {
    code: 'SURV015',
    why: 'per-person zone from a number field',
    fail: (s) => { survey(s).send_window = { hours: '09:00-20:00', field: 'order_count', fallback_timezone: 'UTC' }; },
    fix: (s) => { s.fields.fields.zone = { type: 'enum', values: ['America/New_York', 'Europe/Berlin'], owner: 'shop' }; survey(s).send_window.field = 'zone'; },
  },
  {
    code: 'SURV016',
    why: 'a 2-day moment window against a closed weekend',
    fail: (s) => {
      survey(s).moment = { event: 'order_delivered', after: '7d', before: '8d' };
      survey(s).suppress = { SURV004: 'a one-day window on purpose, for this test' };
      survey(s).send_window = { hours: '09:00-20:00', days: ['mon', 'tue', 'wed', 'thu', 'fri'], timezone: 'America/New_York' };
    },
    fix: (s) => { survey(s).send_window.days = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']; },
  },
  {
    code: 'SURV017',
    why: 'outcome on an event Fields does not declare',
    fail: (s) => { survey(s).outcome = { event: 'order_placd', within: '30d' }; },
    fix: (s) => {
      survey(s).outcome.event = 'order_delivered';
      s.sources.push({ ...structuredClone(src(s)), name: 'deliveries', records: 'event', fields: {}, event: { name: 'order_delivered', timestamp_column: 'at', id_columns: ['id'] } });
      delete s.sources[s.sources.length - 1]!.ordering;
    },
  },
  {
    code: 'SURV017',
    why: 'outcome on a declared event no Source sends',
    fail: (s) => { survey(s).outcome = { event: 'order_placed', within: '30d' }; },
    fix: (s) => {
      s.sources.push({ ...structuredClone(src(s)), name: 'placed', records: 'event', fields: {}, event: { name: 'order_placed', timestamp_column: 'at', id_columns: ['id'] } });
      delete s.sources[s.sources.length - 1]!.ordering;
    },
  },
  {
    code: 'SURV018',
    why: 'outcome with a 0% holdout',
    fail: (s) => {
      survey(s).holdout = '0%';
      survey(s).outcome = { event: 'order_delivered', within: '30d' };
      s.sources.push({ ...structuredClone(src(s)), name: 'deliveries', records: 'event', fields: {}, event: { name: 'order_delivered', timestamp_column: 'at', id_columns: ['id'] } });
      delete s.sources[s.sources.length - 1]!.ordering;
    },
    fix: (s) => { survey(s).holdout = '10%'; },
  },
  {
    code: 'SEC001',
    why: 'a Stripe-style key in a description',
    fail: (s) => { src(s).description = 'key sk_live_4eC39HqLyjWDarjtT1zdp7dc'; },
    fix: (s) => { src(s).description = 'key in STRIPE_KEY'; },
  },
  {
    code: 'SEC001',
    why: 'a password inside a connection string',
    fail: (s) => { src(s).connector.query = 'select 1 -- postgres://etl:s3cretpass@db/wh :last_sync_at'; },
    fix: (s) => { src(s).connector.query = 'select 1 where x > :last_sync_at'; },
  },
  {
    code: 'SEC001',
    why: 'a token in the query string of a webhook URL',
    fail: (s) => { s.workspace.environments.production.qualtrics = { datacenter: 'iad1', directory_id: 'POOL_abc123', responses_webhook_url: 'https://hooks.example/q?token=Zq81xPl2' }; },
    fix: (s) => { s.workspace.environments.production.qualtrics.responses_webhook_url = 'https://hooks.example/q'; },
  },
  {
    code: 'SEC001',
    why: 'a password in a URL with no user name',
    fail: (s) => { src(s).description = 'export from https://:hunter22@files.example/orders'; },
    fix: (s) => { src(s).description = 'export from https://files.example/orders'; },
  },
  {
    code: 'SEC001',
    why: 'a secret used as a map key',
    fail: (s) => { src(s).fields = { ...src(s).fields, sk_live_4eC39HqLyjWDarjtT1zdp7dc: 'x' }; },
    fix: (s) => { delete src(s).fields.sk_live_4eC39HqLyjWDarjtT1zdp7dc; },
  },
  {
    code: 'SEC002',
    why: 'a responses webhook over plain http to another host',
    fail: (s) => {
      s.workspace.environments.production.qualtrics = { datacenter: 'iad1', directory_id: 'POOL_abc123', responses_webhook_url: 'http://hooks.example/q' };
      s.workspace.environments.staging = { customerio: { region: 'us' }, qualtrics: { datacenter: 'iad1', directory_id: 'POOL_abc123', responses_webhook_url: 'http://hooks.example/q' } };
      survey(s).responses.webhook = true;
    },
    fix: (s) => {
      s.workspace.environments.production.qualtrics.responses_webhook_url = 'https://hooks.example/q';
      // The sandbox runs on loopback: http is fine there.
      s.workspace.environments.staging.qualtrics.responses_webhook_url = 'http://127.0.0.1:8080/q';
    },
  },
];

describe('policy rules', () => {
  it('the base spec set is clean', () => {
    expect(validateSpecs(toFiles(baseSpecs())).diagnostics).toEqual([]);
  });

  it('every rule in the catalogue has a failing and a passing case', () => {
    const covered = new Set(cases.map((c) => c.code));
    expect(RULES.map((r) => r.code).filter((c) => !covered.has(c))).toEqual([]);
  });

  it('every rule explains the harm it prevents', () => {
    for (const r of RULES) {
      expect(r.harm.length, r.code).toBeGreaterThan(30);
      expect(r.code).toMatch(/^(ID|OWN|SYNC|SEG|SURV|SEC)\d{3}$/);
    }
    expect(new Set(RULES.map((r) => r.code)).size).toBe(RULES.length);
  });

  describe.each(cases)('$code: $why', (c) => {
    it('fires on the failing spec, located and with the catalogue severity', () => {
      const result = run(c.fail);
      const hits = result.diagnostics.filter((d) => d.code === c.code);
      expect(hits.length).toBeGreaterThan(0);
      const rule = RULES.find((r) => r.code === c.code)!;
      for (const d of hits) {
        expect(d.severity).toBe(rule.severity);
        expect(d.source?.file).toMatch(/^specs\//);
        expect(d.source!.start.line).toBeGreaterThanOrEqual(1);
        expect(d.detail).toContain(rule.harm);
      }
    });
    it('stays quiet once fixed', () => {
      expect(codes((() => { const s = baseSpecs(); c.fail(s); c.fix(s); return s; })())).not.toContain(c.code);
    });
  });

  it('workspace policy can change a severity or switch a rule off', () => {
    const warn = run((s) => { delete survey(s).holdout; s.workspace.policy = { SURV010: 'error' }; });
    expect(warn.diagnostics.find((d) => d.code === 'SURV010')?.severity).toBe('error');
    const off = run((s) => { delete survey(s).holdout; s.workspace.policy = { SURV010: 'off' }; });
    expect(off.diagnostics.map((d) => d.code)).not.toContain('SURV010');
  });

  it('a spec can accept a finding with a reason, which is kept for plans', () => {
    const r = run((s) => { delete survey(s).holdout; survey(s).suppress = { SURV010: 'pilot survey, holdout added after the first wave' }; });
    expect(r.diagnostics.map((d) => d.code)).not.toContain('SURV010');
    expect(r.suppressed).toEqual([expect.objectContaining({ reason: 'pilot survey, holdout added after the first wave' })]);
  });

  it('structural errors cannot be switched off by policy', () => {
    const r = run((s) => { survey(s).audience = 'nobody'; s.workspace.policy = { REF003: 'off' }; });
    expect(r.diagnostics.map((d) => d.code)).toContain('REF003');
  });
});

describe('SEG001 / SEG004: exclusive groups, proven', () => {
  const seg001 = (mutate: (s: SpecSet) => void) => run(mutate).diagnostics.filter((d) => d.code === 'SEG001' || d.code === 'SEG004');

  it('an overlap is an error showing a made-up customer who lands in both', () => {
    const d = seg001((s) => { seg(s, 'apparel_buyers').conditions = { attribute: { field: 'order_count', op: 'gt', value: 1 } }; });
    expect(d.map((x) => [x.severity, x.code, x.summary])).toEqual([
      ['error', 'SEG001', 'Segment "consumable_buyers" is in exclusive group "post_purchase" with "apparel_buyers", but a customer can be in both: e.g. one with category=consumables, order_count=2 is in "consumable_buyers" and "apparel_buyers".'],
    ]);
    expect(d[0]!.detail).toContain('made up');
  });

  it('the witness carries events with their ages and says which attributes are not set', () => {
    const d = seg001((s) => {
      seg(s, 'consumable_buyers').conditions = { all: [{ attribute: { field: 'category', op: 'eq', value: 'consumables' } }, { event: { name: 'order_delivered', to: '30d' } }] };
      seg(s, 'apparel_buyers').conditions = { all: [{ not: { attribute: { field: 'category', op: 'eq', value: 'apparel' } } }, { attribute: { field: 'last_purchase_at', op: 'within', duration: '90d' } }] };
    });
    expect(d.map((x) => x.summary)).toEqual([
      'Segment "consumable_buyers" is in exclusive group "post_purchase" with "apparel_buyers", but a customer can be in both: e.g. one with category=consumables, last_purchase_at 45d ago, order_delivered 15d ago is in "consumable_buyers" and "apparel_buyers".',
    ]);
  });

  it('disjoint by a value, by a window, by a count or by `not: segment`: clean', () => {
    const cases: Array<(s: SpecSet) => void> = [
      (s) => {
        seg(s, 'consumable_buyers').conditions = { attribute: { field: 'order_count', op: 'between', value: [1, 5] } };
        seg(s, 'apparel_buyers').conditions = { attribute: { field: 'order_count', op: 'gt', value: '5' } };
      },
      (s) => {
        seg(s, 'consumable_buyers').conditions = { event: { name: 'order_delivered', from: '5d', to: '10d' } };
        seg(s, 'apparel_buyers').conditions = { event: { name: 'order_delivered', occurred: false, to: '30d' } };
      },
      (s) => {
        seg(s, 'consumable_buyers').conditions = { event: { name: 'order_delivered', to: '30d', count: { min: 3 } } };
        seg(s, 'apparel_buyers').conditions = { event: { name: 'order_delivered', to: '60d', count: { max: 2 } } };
      },
      (s) => {
        seg(s, 'apparel_buyers').conditions = { all: [{ attribute: { field: 'order_count', op: 'gt', value: 1 } }, { not: { segment: 'consumable_buyers' } }] };
      },
    ];
    for (const mutate of cases) expect(seg001(mutate)).toEqual([]);
  });

  it('a count that allows the other side is an overlap, found with its events', () => {
    const d = seg001((s) => {
      seg(s, 'consumable_buyers').conditions = { event: { name: 'order_delivered', to: '30d', count: { min: 2 } } };
      seg(s, 'apparel_buyers').conditions = { event: { name: 'order_delivered', to: '7d', occurred: false } };
    });
    expect(d.map((x) => x.summary)).toEqual([
      'Segment "consumable_buyers" is in exclusive group "post_purchase" with "apparel_buyers", but a customer can be in both: e.g. one with order_delivered ×2 18d ago is in "consumable_buyers" and "apparel_buyers".',
    ]);
  });

  it('one number written two ways is one value: the group is not split on it, and the overlap is found', () => {
    const d = seg001((s) => {
      seg(s, 'consumable_buyers').conditions = { attribute: { field: 'order_count', op: 'eq', value: 30 } };
      seg(s, 'apparel_buyers').conditions = { attribute: { field: 'order_count', op: 'eq', value: '30.0' } };
    });
    expect(d.map((x) => x.summary)).toEqual([
      'Segment "consumable_buyers" is in exclusive group "post_purchase" with "apparel_buyers", but a customer can be in both: e.g. one with order_count=30 is in "consumable_buyers" and "apparel_buyers".',
    ]);
  });

  it('an undecided pair is a warning that says why, not an error and not silence', () => {
    const d = seg001((s) => {
      seg(s, 'consumable_buyers').conditions = { attribute: { field: 'last_purchase_at', op: 'gt', value: '2026-01-01T00:00:00Z' } };
      seg(s, 'apparel_buyers').conditions = { attribute: { field: 'last_purchase_at', op: 'older_than', duration: '30d' } };
    });
    expect(d.map((x) => [x.severity, x.code, x.summary])).toEqual([
      ['warning', 'SEG004', 'Segment "consumable_buyers" is in exclusive group "post_purchase" with "apparel_buyers", but tidemark could not decide whether a customer can be in both: last_purchase_at is compared both with fixed instants and with ages from now; without a fixed now they cannot be related.'],
    ]);
  });

  it('the example specs’ groups are shown disjoint, not just left unchecked', async () => {
    const { loadSpecs } = await import('../load.ts');
    const { pairVerdict } = await import('./segments.ts');
    const { model } = await loadSpecs('specs', path.resolve(import.meta.dirname, '../../..'));
    const s = (n: string) => model!.segments.get(n)!;
    expect(pairVerdict(model!, s('delivered_consumables'), s('delivered_apparel'))).toEqual({ verdict: 'disjoint' });
    expect(pairVerdict(model!, s('cancel_intent'), s('lapsed_60_120'))).toEqual({ verdict: 'disjoint' });
  });
});

describe('send windows', () => {
  const diags = (mutate: (s: SpecSet) => void) => run(mutate).diagnostics.map((d) => ({ code: d.code, severity: d.severity, summary: d.summary, path: d.path ?? [], at: `${d.source?.file}:${d.source?.start.line}` }));
  const window = (w: object) => (s: SpecSet) => { survey(s).send_window = w; };
  /** Where `needle` first stands in the file the mutated set writes, as file:line. */
  const lineOf = (mutate: (s: SpecSet) => void, file: string, needle: string) => {
    const set = baseSpecs();
    mutate(set);
    const text = toFiles(set).find((f) => f.path === file)!.text;
    return `${file}:${text.split('\n').findIndex((l) => l.includes(needle)) + 1}`;
  };

  it('a weekday window in the brand zone, or in each person’s with a fallback, is clean', () => {
    expect(diags(window({ hours: '09:00-20:00', days: ['mon', 'tue', 'wed', 'thu', 'fri'], timezone: 'America/New_York' }))).toEqual([]);
    expect(diags((s) => { s.workspace.timezone = 'Europe/Berlin'; survey(s).send_window = { hours: '00:00-24:00', days: ['sat', 'sun'] }; })).toEqual([]);
    expect(diags((s) => { s.fields.fields.time_zone = { type: 'string', owner: 'shop' }; survey(s).send_window = { hours: '08:00-21:30', field: 'time_zone', fallback_timezone: 'America/Chicago' }; })).toEqual([]);
  });

  it('schema: an unknown zone, hours not written HH:MM-HH:MM, an unknown day, both zone forms, a fallback without a field', () => {
    const found = diags(window({ hours: '9-17', days: ['monday'], timezone: 'America/New York' })).filter((d) => d.code.startsWith('SPEC'));
    expect(found.map((d) => [d.code, d.path.join('.')])).toEqual(
      expect.arrayContaining([
        ['SPEC003', 'send_window.hours'],
        ['SPEC003', 'send_window.days.0'],
        ['SPEC003', 'send_window.timezone'],
      ]),
    );
    expect(found.find((d) => d.path.join('.') === 'send_window.timezone')!.summary).toContain('not a known IANA time zone');
    expect(found.find((d) => d.path.join('.') === 'send_window.hours')!.summary).toContain('"09:00-20:00"');
    const both = diags((s) => { s.fields.fields.time_zone = { type: 'string', owner: 'shop' }; survey(s).send_window = { hours: '09:00-20:00', timezone: 'UTC', field: 'time_zone' }; });
    expect(both.map((d) => [d.code, d.path.join('.')])).toEqual([['SPEC003', 'send_window.field']]);
    const fallback = diags(window({ hours: '09:00-20:00', timezone: 'UTC', fallback_timezone: 'UTC' }));
    expect(fallback.map((d) => [d.code, d.path.join('.')])).toEqual([['SPEC003', 'send_window.fallback_timezone']]);
    const eastern = (s: SpecSet) => { s.workspace.timezone = 'Eastern'; };
    expect(diags(eastern).filter((d) => d.code.startsWith('SPEC')).map((d) => [d.code, d.path.join('.'), d.at])).toEqual([
      ['SPEC003', 'timezone', lineOf(eastern, 'specs/workspace.yaml', 'timezone: Eastern')],
    ]);
  });

  it('each finding names the target and points at the key at fault', () => {
    const reversed = window({ hours: '20:00-08:00', timezone: 'UTC' });
    expect(diags(reversed)).toEqual([
      {
        code: 'SURV012',
        severity: 'error',
        summary: 'Send window hours "20:00-08:00" of "fit" end before they start: write the hours invitations may go out, e.g. "09:00-20:00" (a window across midnight is not supported).',
        path: ['send_window', 'hours'],
        at: lineOf(reversed, 'specs/surveys.yaml', 'hours: 20:00-08:00'),
      },
    ]);
    const weekdays = (s: SpecSet) => {
      survey(s).moment = { event: 'order_delivered', after: '1h', before: '2d' };
      delete survey(s).product_type;
      survey(s).send_window = { hours: '09:00-20:00', days: ['mon', 'tue', 'wed', 'thu', 'fri'], timezone: 'America/New_York' };
    };
    const narrow = diags(weekdays);
    expect(narrow.filter((d) => d.code === 'SURV016')).toEqual([
      {
        code: 'SURV016',
        severity: 'warning',
        summary:
          '"fit" may send for 47h after each moment opens (moment 1h–2d), but its send window is closed for 61h at a time (fri 20:00 to mon 09:00): a moment that falls in that span is invited at the next opening, after moment.before.',
        path: ['send_window'],
        at: lineOf(weekdays, 'specs/surveys.yaml', 'send_window:'),
      },
    ]);
  });
});
