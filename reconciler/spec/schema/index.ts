import { z } from 'zod';
import { FieldsSpec } from './fields.ts';
import { SegmentSpec } from './segment.ts';
import { SourceSpec } from './source.ts';
import { SurveyTargetSpec } from './survey-target.ts';
import { WorkspaceSpec } from './workspace.ts';

/** The spec kinds, keyed by `kind:`. These zod schemas are the single source of truth (JSON Schemas are generated). */
export const KIND_SCHEMAS = {
  Workspace: WorkspaceSpec,
  Fields: FieldsSpec,
  Source: SourceSpec,
  Segment: SegmentSpec,
  SurveyTarget: SurveyTargetSpec,
} as const;

export type Kind = keyof typeof KIND_SCHEMAS;
/** The validated spec of each kind. */
export type SpecOfKind = { [K in Kind]: z.infer<(typeof KIND_SCHEMAS)[K]> };
export const KINDS = Object.keys(KIND_SCHEMAS) as Kind[];

export const AnySpec = z.discriminatedUnion('kind', Object.values(KIND_SCHEMAS) as unknown as [typeof WorkspaceSpec, ...Array<(typeof KIND_SCHEMAS)[Kind]>]);

/** File names of the generated JSON Schemas in specs/schema/. */
export const SCHEMA_FILES: Record<Kind | 'all', string> = {
  all: 'tidemark.json',
  Workspace: 'workspace.json',
  Fields: 'fields.json',
  Source: 'source.json',
  Segment: 'segment.json',
  SurveyTarget: 'survey-target.json',
};

export { FieldsSpec, SegmentSpec, SourceSpec, SurveyTargetSpec, WorkspaceSpec };
export type { FieldDef, EventDef } from './fields.ts';
export type { Condition } from './segment.ts';
