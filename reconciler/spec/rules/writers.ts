/** Who writes each field: sources (as their system), segment membership (tidemark), the response loop (qualtrics). */
import type { Path } from '../../core/diagnostics.ts';
import { sorted, type Located, type SpecModel } from '../model.ts';

export interface Write {
  field: string;
  system: string;
  spec: Located<unknown>;
  path: Path;
}

export function fieldWrites(model: SpecModel): Map<string, Write[]> {
  const out = new Map<string, Write[]>();
  const add = (w: Write) => {
    const list = out.get(w.field) ?? [];
    list.push(w);
    out.set(w.field, list);
  };
  for (const s of sorted(model.sources)) {
    if (s.spec.records === 'event') continue; // event data lands on the event, not on person attributes
    for (const f of Object.keys(s.spec.fields)) add({ field: f, system: s.spec.system, spec: s, path: ['fields', f] });
    if (s.spec.stamp_last_sent) add({ field: s.spec.stamp_last_sent, system: 'tidemark', spec: s, path: ['stamp_last_sent'] });
  }
  for (const seg of sorted(model.segments)) {
    if (seg.spec.publish?.attribute) add({ field: seg.spec.publish.attribute, system: 'tidemark', spec: seg, path: ['publish', 'attribute'] });
  }
  for (const t of sorted(model.surveyTargets)) {
    const a = t.spec.responses?.write.attribute;
    if (a) add({ field: a, system: 'qualtrics', spec: t, path: ['responses', 'write', 'attribute'] });
  }
  return out;
}

/** Fields and events a source feeds into Customer.io: what a segment depending on them depends on. */
export function sourcesFeeding(model: SpecModel): { fields: Map<string, string[]>; events: Map<string, string[]> } {
  const fields = new Map<string, string[]>();
  const events = new Map<string, string[]>();
  for (const s of sorted(model.sources)) {
    if (s.spec.records === 'event' && s.spec.event) {
      events.set(s.spec.event.name, [...(events.get(s.spec.event.name) ?? []), s.name]);
    } else {
      for (const f of Object.keys(s.spec.fields)) fields.set(f, [...(fields.get(f) ?? []), s.name]);
    }
  }
  return { fields, events };
}

/**
 * Where the response loop's acknowledged writes are kept for the audience mirror: a person source per
 * target (its `responses.write.attribute`, keyed by person) and an event source per target (its
 * `responses.write.event`, keyed by response). The names cannot be a Source's (a `:` is not allowed in one).
 */
export const responseAttributeSource = (target: string): string => `responses:${target}`;
export const responseEventSource = (target: string): string => `responses:${target}:event`;

/** The response sources a SurveyTarget writes (see `responseAttributeSource`), as the mirror reads them. */
export function responseMirrorSources(model: SpecModel, environment: string): Array<{ source: string; records: 'person' | 'event' }> {
  const out: Array<{ source: string; records: 'person' | 'event' }> = [];
  for (const t of sorted(model.surveyTargets)) {
    if (t.spec.environments && !t.spec.environments.includes(environment)) continue;
    const w = t.spec.responses?.write;
    if (w?.attribute) out.push({ source: responseAttributeSource(t.name), records: 'person' });
    if (w?.event) out.push({ source: responseEventSource(t.name), records: 'event' });
  }
  return out;
}

/** Fields and events the response loop writes to Customer.io (tidemark delivers them, like a Source). */
export function responsesFeeding(model: SpecModel): { fields: Map<string, string[]>; events: Map<string, string[]> } {
  const fields = new Map<string, string[]>();
  const events = new Map<string, string[]>();
  for (const t of sorted(model.surveyTargets)) {
    const w = t.spec.responses?.write;
    if (w?.attribute) fields.set(w.attribute, [...(fields.get(w.attribute) ?? []), t.name]);
    if (w?.event) events.set(w.event, [...(events.get(w.event) ?? []), t.name]);
  }
  return { fields, events };
}
