/**
 * Segments built in Customer.io's UI that specs reference by id (`customerio_segment: { id }`, issue 11).
 * tidemark can neither create nor change them (the API creates only empty manual segments), so a plan can
 * only check that the target has each one, of a type it knows, and the audience engine reads their members.
 *
 * - `referencedUiSegments`: which references an environment uses (pure).
 * - `readReferencedSegments`: asks the target about each referenced id, once per id (one App call each).
 * - `referencedSegmentDiagnostics`: what the answers mean for the plan (pure).
 * - `loadUiSegmentMembers`: streams a segment's member ids to a writer, page by page.
 */
import type { Diagnostic } from '../core/diagnostics.ts';
import { appliesTo } from '../plan/desired.ts';
import type { CustomerioAppApi } from '../providers/customerio/app-api.ts';
import type { CallOptions } from '../providers/customerio/types.ts';
import { sorted, type SpecModel } from '../spec/model.ts';
import { locate } from '../spec/parse.ts';

/** A spec's reference to a UI segment. */
export interface UiSegmentRef {
  /** The spec's name. */
  name: string;
  /** The Customer.io segment id. */
  id: number;
  description?: string;
}

/** The referenced segment as the target has it; `type` is null when the API gave none. */
export interface FoundSegment {
  id: number;
  type: string | null;
  name: string;
}

/** By spec name: the segment the target has under the referenced id, or 'missing'. */
export type ReferencedSegments = Map<string, FoundSegment | 'missing'>;

/** The segment types whose membership semantics tidemark knows (REFERENCE §6.1: `dynamic|manual`). */
export const KNOWN_SEGMENT_TYPES: readonly string[] = ['dynamic', 'manual'];

/** Segments of this environment that reference a UI segment, by name. */
export function referencedUiSegments(model: SpecModel, environment: string): UiSegmentRef[] {
  const out: UiSegmentRef[] = [];
  for (const seg of sorted(model.segments)) {
    const ref = seg.spec.customerio_segment;
    if (!ref || !appliesTo(seg.spec, environment)) continue;
    out.push({ name: seg.name, id: ref.id, ...(seg.spec.description !== undefined ? { description: seg.spec.description } : {}) });
  }
  return out;
}

/**
 * Looks up every segment the environment references. Service errors (no App API key, 401, the service
 * down) are thrown as they come: a plan that cannot check its references must not pass as checked.
 */
export async function readReferencedSegments(
  model: SpecModel,
  environment: string,
  client: Pick<CustomerioAppApi, 'getSegment'>,
  options: CallOptions = {},
): Promise<ReferencedSegments> {
  const byId = new Map<number, FoundSegment | 'missing'>();
  const out: ReferencedSegments = new Map();
  for (const ref of referencedUiSegments(model, environment)) {
    let found = byId.get(ref.id);
    if (found === undefined) {
      const seg = await client.getSegment(ref.id, options);
      found = seg ? { id: seg.id, type: seg.type ?? null, name: seg.name } : 'missing';
      byId.set(ref.id, found);
    }
    out.set(ref.name, found);
  }
  return out;
}

/**
 * Errors for references the target does not have, warnings for segments of a type tidemark does not know.
 * Pure: `found` comes from `readReferencedSegments`; `targetLabel` is `Connection.target.label`.
 */
export function referencedSegmentDiagnostics(model: SpecModel, found: ReferencedSegments, targetLabel: string): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const seg of sorted(model.segments)) {
    const ref = seg.spec.customerio_segment;
    const live = found.get(seg.name);
    if (!ref || live === undefined) continue;
    const path = ['customerio_segment', 'id'];
    const where = { address: seg.address, path, source: locate(seg.pd, path) };
    if (live === 'missing') {
      out.push({
        severity: 'error',
        code: 'REF008',
        summary: `Segment "${seg.name}" references Customer.io segment ${ref.id}, which does not exist in ${targetLabel}.`,
        detail:
          'A segment built in the Customer.io UI cannot be created by tidemark. Check the id (it is in the segment’s URL in Customer.io) ' +
          'and that the segment was not deleted, or that this environment is the workspace that has it.',
        ...where,
      });
    } else if (live.type === null || !KNOWN_SEGMENT_TYPES.includes(live.type)) {
      out.push({
        severity: 'warning',
        code: 'REF009',
        summary:
          `Segment "${seg.name}" references Customer.io segment ${ref.id} ("${live.name}"), ` +
          (live.type === null ? 'whose type Customer.io does not report.' : `whose type "${live.type}" tidemark does not know.`),
        detail:
          'tidemark knows dynamic (data-driven) and manual segments. Its members are still read through the App API; check that this is ' +
          'the segment you meant before relying on it.',
        ...where,
      });
    }
  }
  return out;
}

/** What loading one segment's members did. */
export interface UiSegmentLoad {
  segmentId: number;
  /** Pages read. */
  pages: number;
  /** Ids passed to the writer. */
  written: number;
  /** Members without an `id` (people known only by email): left out, since tidemark matches people by id. */
  withoutId: number;
  /** cio_ids of the first few of them (never emails), for the report. */
  withoutIdSample: string[];
  /** One line for the run's output when members were left out. */
  note?: string;
}

const SAMPLE = 5;

/**
 * Streams a segment's members to `write`, one call per page that has members with an `id`: the caller
 * stores them (the audience engine keeps a mirror table), so memory stays one page whatever the segment's
 * size. Members without an id are counted and reported, never matched by email or cio_id. Ids are passed
 * as the API gives them; a writer keyed on the id absorbs a person the service lists twice.
 */
export async function loadUiSegmentMembers(
  write: (personIds: string[]) => Promise<void>,
  client: Pick<CustomerioAppApi, 'segmentMembers'>,
  segmentId: number,
  options: CallOptions & { pageSize?: number } = {},
): Promise<UiSegmentLoad> {
  const load: UiSegmentLoad = { segmentId, pages: 0, written: 0, withoutId: 0, withoutIdSample: [] };
  for await (const page of client.segmentMembers(segmentId, options)) {
    load.pages += 1;
    const ids: string[] = [];
    for (const m of page) {
      if (m.id !== null && m.id !== '') ids.push(m.id);
      else {
        load.withoutId += 1;
        if (load.withoutIdSample.length < SAMPLE && m.cio_id) load.withoutIdSample.push(m.cio_id);
      }
    }
    if (ids.length > 0) {
      await write(ids);
      load.written += ids.length;
    }
  }
  if (load.withoutId > 0) {
    const n = load.withoutId;
    const sample = load.withoutIdSample.length > 0 ? ` (cio_id ${load.withoutIdSample.join(', ')}${n > load.withoutIdSample.length ? ', …' : ''})` : '';
    load.note =
      `${n.toLocaleString('en-US')} ${n === 1 ? 'member' : 'members'} of Customer.io segment ${segmentId} ${n === 1 ? 'has' : 'have'} no id${sample}: ` +
      'tidemark matches people by id, so they are left out.';
  }
  return load;
}
