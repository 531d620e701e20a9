/**
 * SEG005: a declared segment is evaluated from the mirror of what tidemark delivered to Customer.io. A
 * condition on a field or event that no Source writes can never be true there (a field Customer.io holds
 * from elsewhere, e.g. an email engagement metric, is invisible to tidemark), so the segment would publish
 * an audience that silently lacks everyone it should hold.
 */
import { walkConditions } from '../resolve.ts';
import { sorted, type SpecModel } from '../model.ts';
import type { Finding, Rule } from './rule.ts';
import { responsesFeeding, sourcesFeeding } from './writers.ts';

function unevaluable(model: SpecModel): Finding[] {
  // A Source that failed its schema may be the one that writes the field: its own error is enough.
  if ([...model.invalid.addresses].some((a) => /^source\./i.test(a))) return [];
  const feeding = sourcesFeeding(model);
  const responses = responsesFeeding(model);
  const out: Finding[] = [];
  for (const seg of sorted(model.segments)) {
    if (!seg.spec.conditions) continue;
    walkConditions(seg.spec.conditions, ['conditions'], (c, path) => {
      if (c.attribute && model.fields.has(c.attribute.field) && !feeding.fields.has(c.attribute.field) && !responses.fields.has(c.attribute.field)) {
        out.push({
          spec: seg,
          path: [...path, 'attribute', 'field'],
          summary: `Segment "${seg.name}" needs field "${c.attribute.field}", which no Source writes, so tidemark cannot evaluate it. Build this segment in Customer.io and reference it here by id (customerio_segment: { id: … }), or add a Source (or a SurveyTarget's responses.write) that writes the field.`,
        });
      }
      if (c.event && model.events.has(c.event.name) && !feeding.events.has(c.event.name) && !responses.events.has(c.event.name)) {
        out.push({
          spec: seg,
          path: [...path, 'event', 'name'],
          summary: `Segment "${seg.name}" needs event "${c.event.name}", which no Source sends, so tidemark cannot evaluate it. Build this segment in Customer.io and reference it here by id (customerio_segment: { id: … }), or add a Source (or a SurveyTarget's responses.write) that sends the event.`,
        });
      }
    });
  }
  return out;
}

export const evaluableRules: Rule[] = [
  {
    code: 'SEG005',
    family: 'segments',
    severity: 'error',
    title: 'Segment condition on data no Source delivers',
    harm: 'A segment evaluated from data tidemark never delivered holds nobody who depends on that data: the audience is silently wrong.',
    check: unevaluable,
  },
];
