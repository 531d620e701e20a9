/**
 * The audience job (`tidemark audiences plan|run`, and a step of the main job): evaluate the declared
 * segments of this environment against the mirror of what Customer.io acknowledged, and publish the
 * ones the guards allow.
 */
import { evaluateAudiences, type AudienceEvaluation } from '../audiences/evaluate.ts';
import { publishSegment, type PublishOutcome } from '../audiences/publish.ts';
import type { OpenEnvironment } from './use-cases.ts';
import { loadUiSegmentMembers } from './ui-segments.ts';

export interface AudienceJobRequest {
  mode: 'plan' | 'run';
  /** Publish segments whose membership is outside their `expect`. */
  accept?: boolean;
}

export interface AudienceJobResult {
  evaluation: AudienceEvaluation;
  published: PublishOutcome[];
  /** Everything the run set out to publish was acknowledged (a plan is always ok). */
  ok: boolean;
}

/** Reads a UI-built segment's members through the App API into the store (see ui-segments.ts). */
export function uiSegmentLoader(ws: OpenEnvironment) {
  return async (segment: string, id: number): Promise<string | undefined> => {
    let note: string | undefined;
    await ws.conn.store.audiences.replaceUiSegmentMembers(segment, async (add) => {
      note = (await loadUiSegmentMembers(add, ws.conn.customerio, id)).note;
    });
    return note;
  };
}

export async function runAudienceJob(ws: OpenEnvironment, req: AudienceJobRequest): Promise<AudienceJobResult> {
  const evaluation = await evaluateAudiences({ model: ws.model, environment: ws.conn.environment, store: ws.conn.store, now: ws.clock.now(), loadUiSegment: uiSegmentLoader(ws), ...(req.accept ? { accept: true } : {}) });
  if (req.mode === 'plan') return { evaluation, published: [], ok: true };
  const published: PublishOutcome[] = [];
  const deps = {
    audiences: ws.conn.store.audiences,
    client: ws.conn.customerio,
    segmentId: async (segment: string) => {
      const managed = await ws.conn.store.getManaged(`customerio.segment.${segment}`);
      const id = managed ? Number(managed.remoteId) : NaN;
      return Number.isSafeInteger(id) ? id : undefined;
    },
  };
  for (const ev of evaluation.segments) published.push(...(await publishSegment(ev, deps)));
  // Frozen and held segments did what they should (nothing); an error or an unapplied segment did not.
  const ok = published.every((p) => !p.error && !(p.skipped && /not created yet/.test(p.skipped)));
  return { evaluation, published, ok };
}
