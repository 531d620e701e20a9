import { DAY_MS, HOUR_MS, formatDuration, parseDuration } from '../../core/duration.ts';
import { sorted, type SpecModel } from '../model.ts';
import type { Finding, Rule } from './rule.ts';

/** Days after delivery a product survey should land, per product type (the guide's sweet spots). */
export const DEFAULT_DELAY_WINDOWS: Record<string, { min: string; max: string }> = {
  consumable: { min: '7d', max: '14d' },
  consumables: { min: '7d', max: '14d' },
  apparel: { min: '3d', max: '7d' },
};

const DEFAULT_RESPONSE_WINDOW = { min: 48 * HOUR_MS, max: 96 * HOUR_MS };
const PRODUCT_PURPOSES = new Set(['product_feedback', 'usage']);
// Recognised by name when the event registry does not declare a stage.
const PRE_DELIVERY_NAMES = /(^|_)(order_placed|order_created|order_paid|order_confirmed|checkout_(started|completed)|order_shipped|order_fulfilled|purchase|purchased|placed_order)($|_)/;

function frequencyCap(model: SpecModel, name: string) {
  const t = model.surveyTargets.get(name)!;
  return t.spec.frequency_cap ?? model.workspace?.spec.surveys?.frequency_cap;
}

export function isPreDelivery(model: SpecModel, event: string): boolean {
  const stage = model.events.get(event)?.def.stage;
  if (stage) return stage === 'pre_delivery';
  return PRE_DELIVERY_NAMES.test(event);
}

export const surveyRules: Rule[] = [
  {
    code: 'SURV001',
    family: 'surveys',
    severity: 'error',
    title: 'No frequency cap',
    harm: 'Surveying the same customer after every order tanks engagement and increases unsubscribes and spam complaints.',
    check(model) {
      return sorted(model.surveyTargets)
        .filter((t) => !frequencyCap(model, t.name))
        .map((t) => ({
          spec: t,
          path: ['name'],
          summary: `Survey target "${t.name}" has no frequency cap, and the Workspace sets no default.`,
          detail: 'Add `frequency_cap: { max: 1, per: 60d }` (per person, across all surveys by default).',
        }));
    },
  },
  {
    code: 'SURV002',
    family: 'surveys',
    severity: 'warning',
    title: 'Too many payload fields',
    harm: 'Every extra mapped attribute is another thing that breaks silently when the ecommerce platform changes naming or formatting.',
    check(model) {
      const max = model.workspace?.spec.surveys?.max_payload_fields ?? 8;
      return sorted(model.surveyTargets)
        .filter((t) => t.spec.payload.length > max)
        .map((t) => ({
          spec: t,
          path: ['payload'],
          summary: `Survey target "${t.name}" sends ${t.spec.payload.length} payload fields; the maximum is ${max}.`,
          detail: 'Send only fields you will use to target or analyse; raise surveys.max_payload_fields in the Workspace if you must.',
        }));
    },
  },
  {
    code: 'SURV003',
    family: 'surveys',
    severity: 'error',
    title: 'Product survey triggered before delivery',
    harm: 'Asking about product satisfaction before delivery (or before the usage window) produces misleading negatives.',
    check(model) {
      return sorted(model.surveyTargets)
        .filter((t) => PRODUCT_PURPOSES.has(t.spec.purpose) && isPreDelivery(model, t.spec.moment.event))
        .map((t) => ({
          spec: t,
          path: ['moment', 'event'],
          summary: `"${t.name}" asks about the product (${t.spec.purpose}) but is timed from "${t.spec.moment.event}", which happens before delivery.`,
          detail: 'Time it from the delivery event (e.g. order_delivered) instead.',
        }));
    },
  },
  {
    code: 'SURV004',
    family: 'surveys',
    severity: 'warning',
    title: 'Delay window outside what the product type needs',
    harm: 'For consumables the sweet spot is 7–14 days after delivery, for apparel 3–7 days: earlier or later asks before use or after memory fades.',
    check(model) {
      const windows = { ...DEFAULT_DELAY_WINDOWS, ...(model.workspace?.spec.surveys?.delay_windows ?? {}) };
      const out: Finding[] = [];
      for (const t of sorted(model.surveyTargets)) {
        if (!PRODUCT_PURPOSES.has(t.spec.purpose) || !t.spec.product_type) continue;
        // product_type is free text: `constructor` or `toString` must not find Object.prototype's.
        const w = Object.hasOwn(windows, t.spec.product_type) ? windows[t.spec.product_type] : undefined;
        if (!w) continue;
        const after = parseDuration(t.spec.moment.after);
        const before = parseDuration(t.spec.moment.before);
        const min = parseDuration(w.min);
        const max = parseDuration(w.max);
        if (after === undefined || before === undefined || min === undefined || max === undefined) continue;
        if (after < min || before > max) {
          out.push({
            spec: t,
            path: ['moment'],
            summary: `"${t.name}" surveys ${t.spec.moment.after}–${t.spec.moment.before} after ${t.spec.moment.event}; ${t.spec.product_type} needs ${w.min}–${w.max}.`,
            detail: 'Move the window, or set surveys.delay_windows in the Workspace (or suppress SURV004 here with a reason) if this product differs.',
          });
        }
      }
      return out;
    },
  },
  {
    code: 'SURV005',
    family: 'surveys',
    severity: 'error',
    title: 'No response loop',
    harm: 'If responses don’t change a segment, a suppression rule or an audience, the survey is busywork.',
    check(model) {
      return sorted(model.surveyTargets)
        .filter((t) => !t.spec.responses)
        .map((t) => ({
          spec: t,
          path: ['name'],
          summary: `Survey target "${t.name}" has no response loop: answers change nothing downstream.`,
          detail: 'Add `responses:` mapping answer codes to reason codes and the attribute/event they write in Customer.io.',
        }));
    },
  },
  {
    code: 'SURV006',
    family: 'surveys',
    severity: 'error',
    title: 'No response window',
    harm: 'Without an expiry, late responses arrive that no longer map to the customer’s current state.',
    check(model) {
      return sorted(model.surveyTargets)
        .filter((t) => !t.spec.response_window)
        .map((t) => ({
          spec: t,
          path: ['name'],
          summary: `Survey target "${t.name}" has no response_window (it becomes the distribution's expiration).`,
          detail: 'For post-purchase surveys 48–96h keeps the signal fresh: add `response_window: 72h`.',
        }));
    },
  },
  {
    code: 'SURV007',
    family: 'surveys',
    severity: 'warning',
    title: 'Response window outside 48–96 hours',
    harm: 'A 48–96 hour window keeps the signal fresh and reduces late, noisy responses.',
    check(model) {
      const cfg = model.workspace?.spec.surveys?.response_window;
      const min = cfg ? parseDuration(cfg.min) ?? DEFAULT_RESPONSE_WINDOW.min : DEFAULT_RESPONSE_WINDOW.min;
      const max = cfg ? parseDuration(cfg.max) ?? DEFAULT_RESPONSE_WINDOW.max : DEFAULT_RESPONSE_WINDOW.max;
      const out: Finding[] = [];
      for (const t of sorted(model.surveyTargets)) {
        const w = t.spec.response_window ? parseDuration(t.spec.response_window) : undefined;
        if (w === undefined || (w >= min && w <= max)) continue;
        out.push({
          spec: t,
          path: ['response_window'],
          summary: `Response window ${t.spec.response_window} is outside ${formatDuration(min)}–${formatDuration(max)}.`,
        });
      }
      return out;
    },
  },
  {
    code: 'SURV008',
    family: 'surveys',
    severity: 'error',
    title: 'Response window longer than the frequency cap',
    harm: 'A link still open when the next survey may be sent lets one person hold two open surveys at once: the cap no longer caps.',
    check(model) {
      const out: Finding[] = [];
      for (const t of sorted(model.surveyTargets)) {
        const cap = frequencyCap(model, t.name);
        const w = t.spec.response_window ? parseDuration(t.spec.response_window) : undefined;
        const per = cap ? parseDuration(cap.per) : undefined;
        if (w === undefined || per === undefined || w <= per) continue;
        out.push({
          spec: t,
          path: ['response_window'],
          summary: `Response window ${t.spec.response_window} is longer than the frequency cap period ${cap!.per}.`,
        });
      }
      return out;
    },
  },
  {
    code: 'SURV009',
    family: 'surveys',
    severity: 'error',
    title: 'Moment window is empty',
    harm: 'A window whose start is after its end never matches anyone: the survey silently never goes out.',
    check(model) {
      const out: Finding[] = [];
      for (const t of sorted(model.surveyTargets)) {
        const a = parseDuration(t.spec.moment.after);
        const b = parseDuration(t.spec.moment.before);
        if (a !== undefined && b !== undefined && a >= b) {
          out.push({ spec: t, path: ['moment', 'before'], summary: `moment.before (${t.spec.moment.before}) must be later than moment.after (${t.spec.moment.after}).` });
        }
        if (b !== undefined && b > 365 * DAY_MS) {
          out.push({ spec: t, path: ['moment', 'before'], summary: `moment.before (${t.spec.moment.before}) is more than a year after the event.` });
        }
      }
      return out;
    },
  },
  {
    code: 'SURV010',
    family: 'surveys',
    severity: 'warning',
    title: 'No holdout',
    harm: 'When messaging changes based on responses, a small holdout is the only way to quantify the lift.',
    check(model) {
      return sorted(model.surveyTargets)
        .filter((t) => t.spec.holdout === undefined)
        .map((t) => ({ spec: t, path: ['name'], summary: `Survey target "${t.name}" has no holdout, so its lift cannot be measured.`, detail: 'Add e.g. `holdout: 10%`.' }));
    },
  },
  {
    code: 'SURV011',
    family: 'surveys',
    severity: 'error',
    title: 'Webhook responses without a receiver',
    harm: 'A survey that asks for webhook delivery in an environment with no receiver URL silently loses the response loop there.',
    check(model) {
      const out: Finding[] = [];
      const envs = model.workspace?.spec.environments ?? {};
      for (const t of sorted(model.surveyTargets)) {
        if (!t.spec.responses?.webhook) continue;
        const missing = Object.keys(envs)
          .filter((e) => !t.spec.environments || t.spec.environments.includes(e))
          .filter((e) => !envs[e]?.qualtrics?.responses_webhook_url)
          .sort();
        if (missing.length) {
          out.push({
            spec: t,
            path: ['responses', 'webhook'],
            summary: `Responses of "${t.name}" are delivered by webhook, but environment${missing.length > 1 ? 's' : ''} ${missing.join(', ')} ha${missing.length > 1 ? 've' : 's'} no qualtrics.responses_webhook_url.`,
          });
        }
      }
      return out;
    },
  },
];
