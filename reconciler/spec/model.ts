/** The resolved spec model every later stage (rules, plan, sync, audiences, surveys) reads. */
import type { Path } from '../core/diagnostics.ts';
import type { ParsedDocument } from './parse.ts';
import type { EventDef, FieldDef, FieldsSpec, SegmentSpec, SourceSpec, SurveyTargetSpec, WorkspaceSpec } from './schema/index.ts';

/** A validated spec with the document it came from, so findings can be located. */
export interface Located<T> {
  /** The spec kind: the document's `kind:` (`Segment`, `Source`, …). */
  kind: T extends { kind: infer K } ? K : string;
  name: string;
  /** `source.recharge_subscriptions`, `segment.vip`, `survey_target.post_purchase_fit`, … */
  address: string;
  spec: T;
  pd: ParsedDocument;
}

export interface FieldEntry {
  name: string;
  def: FieldDef;
  at: Located<FieldsSpec>;
  path: Path;
}

export interface EventEntry {
  name: string;
  def: EventDef;
  at: Located<FieldsSpec>;
  path: Path;
}

export interface SpecModel {
  workspace?: Located<WorkspaceSpec>;
  fields: Map<string, FieldEntry>;
  events: Map<string, EventEntry>;
  sources: Map<string, Located<SourceSpec>>;
  segments: Map<string, Located<SegmentSpec>>;
  surveyTargets: Map<string, Located<SurveyTargetSpec>>;
  /** Every parsed document, valid or not (the secrets scan reads them all). */
  documents: ParsedDocument[];
  /**
   * Specs that exist but failed schema validation, as `kind.name`, with the system a broken Source
   * declares. References to them are not reported again: the schema error already is.
   */
  invalid: { addresses: Set<string>; systems: Set<string> };
}

/**
 * Systems tidemark itself writes as: `tidemark` (segment membership attributes, last-synced stamps) and
 * `qualtrics` (the response loop). They are always known owners.
 */
export const BUILTIN_SYSTEMS = ['tidemark', 'qualtrics'] as const;

export function knownSystems(model: SpecModel): Set<string> {
  const out = new Set<string>(BUILTIN_SYSTEMS);
  for (const s of model.sources.values()) out.add(s.spec.system);
  for (const k of Object.keys(model.workspace?.spec.systems ?? {})) out.add(k);
  for (const k of model.invalid.systems) out.add(k);
  return out;
}

export function addressFor(specKind: string, name: string): string {
  const k = specKind === 'SurveyTarget' ? 'survey_target' : specKind.toLowerCase();
  return `${k}.${name}`;
}

/** Sorted values of a map, so every rule walks specs in a reproducible order. */
export function sorted<T>(m: Map<string, T>): T[] {
  return [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
}
