/**
 * Survey outcomes (issue 13 point 3): the event `tidemark surveys report` counts to compare the invited
 * group with the holdout. The report reads it from the mirror of what tidemark delivered to Customer.io
 * (like SEG005's segments), so an event no Source sends would count nobody in either group: a lift of
 * exactly 0 that looks like a finding.
 */
import { sorted, type SpecModel } from '../model.ts';
import { didYouMean } from '../suggest.ts';
import type { Finding, Rule } from './rule.ts';
import { sourcesFeeding } from './writers.ts';

/** The schema allows only `N%` with N in 0–100. */
function holdsOut(holdout: string | undefined): boolean {
  return holdout !== undefined && Number(holdout.replace('%', '')) > 0;
}

function undelivered(model: SpecModel): Finding[] {
  // A Source that failed its schema may be the one that sends the event: its own error is enough.
  if ([...model.invalid.addresses].some((a) => /^source\./i.test(a))) return [];
  const feeding = sourcesFeeding(model);
  const out: Finding[] = [];
  for (const t of sorted(model.surveyTargets)) {
    const event = t.spec.outcome?.event;
    if (event === undefined) continue;
    if (!model.events.has(event)) {
      out.push({
        spec: t,
        path: ['outcome', 'event'],
        summary: `The outcome of "${t.name}" is event "${event}", which Fields does not declare.${didYouMean(event, model.events.keys())}`,
        detail: 'Declare it under `events:` in Fields and have a Source send it.',
      });
    } else if (!feeding.events.has(event)) {
      out.push({
        spec: t,
        path: ['outcome', 'event'],
        summary: `The outcome of "${t.name}" is event "${event}", which no Source sends, so tidemark cannot see who had it and the report would count nobody.`,
        detail: 'Add a Source with `records: event` that sends it, or measure an event a Source already sends.',
      });
    }
  }
  return out;
}

export const outcomeRules: Rule[] = [
  {
    code: 'SURV017',
    family: 'surveys',
    severity: 'error',
    title: 'Survey outcome on an event no Source delivers',
    harm: 'Lift is counted from the events tidemark delivered: an outcome no Source sends reaches nobody in either group, and the report shows no effect where it cannot see one.',
    check: undelivered,
  },
  {
    code: 'SURV018',
    family: 'surveys',
    severity: 'warning',
    title: 'Survey outcome without a holdout',
    harm: 'Without a holdout there is no one to compare the invited with: the outcome cannot show any lift.',
    check(model) {
      return sorted(model.surveyTargets)
        .filter((t) => t.spec.outcome && !holdsOut(t.spec.holdout))
        .map((t) => ({
          spec: t,
          path: t.spec.holdout === undefined ? ['outcome'] : ['holdout'],
          summary: `Survey target "${t.name}" declares an outcome but holds nobody out${t.spec.holdout === undefined ? '' : ` (holdout ${t.spec.holdout})`}: there is nothing to compare the invited with.`,
          detail: 'Add e.g. `holdout: 10%`.',
        }));
    },
  },
];
