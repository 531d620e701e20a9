/**
 * Which attributes the mirror keeps: the ones tidemark reads back from it. A Source usually delivers many
 * more fields than any segment or survey looks at (everything a message personalises with), and each
 * kept field is a row per person that every whole fill writes and every changed person rewrites. Pure.
 */
import type { SpecModel } from './model.ts';
import { walkConditions } from './resolve.ts';

/**
 * The attribute that holds a person's email address: the field declared with `format: email`, preferring
 * one named `email` when several are.
 */
export function emailField(model: SpecModel): string | undefined {
  const emails = [...model.fields.values()].filter((f) => f.def.format === 'email').map((f) => f.name);
  return emails.includes('email') ? 'email' : emails.sort()[0];
}

/**
 * The fields read from the mirror, sorted: every field a Segment's conditions test (all Segments of the
 * model, whatever environment they apply to, so switching environments never refills the mirror), the
 * email field a survey send addresses, and each SurveyTarget's per-person time zone field and payload
 * (embedded data). A reader of `mirror_attributes` added anywhere else must add its fields here, or it
 * finds no rows.
 */
export function mirroredFields(model: SpecModel): string[] {
  const out = new Set<string>();
  for (const seg of model.segments.values()) {
    if (seg.spec.conditions) walkConditions(seg.spec.conditions, [], (c) => c.attribute && out.add(c.attribute.field));
  }
  const email = emailField(model);
  if (email) out.add(email);
  for (const t of model.surveyTargets.values()) {
    if (t.spec.send_window?.field) out.add(t.spec.send_window.field);
    for (const f of t.spec.payload ?? []) out.add(f);
  }
  return [...out].sort();
}
