/**
 * Publishing evaluated segments to Customer.io: to the segment's manual segment (add/remove diff against
 * the last published membership, at most 1,000 ids per request) and/or to a boolean attribute (Track v2
 * batches of identify calls).
 *
 * Only acknowledged changes advance the published state: each request's ids are recorded as published
 * after Customer.io answered 200 for them, in one transaction per request. A run killed at any point
 * has recorded exactly the requests that were answered; the next run diffs against that and sends the
 * rest. Adding someone already in a segment, or setting an attribute to the value it has, changes
 * nothing in Customer.io, so a request that was applied but whose answer was lost is harmless when sent
 * again: nothing is lost and nothing is duplicated.
 */
import type { CustomerioClient } from '../providers/customerio/client.ts';
import type { V2Entry } from '../providers/customerio/types.ts';
import { ProviderError } from '../providers/errors.ts';
import type { AudienceStore } from '../state/index.ts';
import type { SegmentEvaluation } from './evaluate.ts';

export const MEMBERS_PER_REQUEST = 1000;

/** Where the attribute target's published state is kept: beside the segment's, under its own key. */
export const attributeKey = (segment: string, attribute: string): string => `${segment}@attribute:${attribute}`;

export interface PublishOutcome {
  segment: string;
  /** What went out and was acknowledged. */
  added: number;
  removed: number;
  requests: number;
  /** Why the segment was not published, or not completely. */
  skipped?: string;
  error?: string;
}

export interface PublishDeps {
  audiences: AudienceStore;
  client: Pick<CustomerioClient, 'addToSegment' | 'removeFromSegment' | 'sendBatches'>;
  /** The manual segment's id in Customer.io (from the config state), when it is managed. */
  segmentId(segment: string): Promise<number | undefined>;
}

export async function publishSegment(ev: SegmentEvaluation, deps: PublishDeps): Promise<PublishOutcome[]> {
  const out: PublishOutcome[] = [];
  if (ev.verdict === 'frozen' || ev.verdict === 'held') return [{ segment: ev.segment, added: 0, removed: 0, requests: 0, skipped: ev.reason ?? ev.verdict }];
  // Emptied: the candidates become nobody, so every published member is removed.
  if (ev.verdict === 'emptied') await deps.audiences.storeCandidates(ev.segment, 'SELECT person_id FROM mirror_people WHERE 1 = 0', []);
  if (ev.publish.customerio_segment) out.push(await toManualSegment(ev.segment, deps));
  if (ev.publish.attribute) out.push(await toAttribute(ev.segment, ev.publish.attribute, deps));
  return out;
}

async function toManualSegment(segment: string, deps: PublishDeps): Promise<PublishOutcome> {
  const o: PublishOutcome = { segment, added: 0, removed: 0, requests: 0 };
  const id = await deps.segmentId(segment);
  if (id === undefined) return { ...o, skipped: `its Customer.io segment is not created yet: run \`tidemark apply\` first` };
  try {
    for (const direction of ['remove', 'add'] as const) {
      for await (const page of deps.audiences.changes(segment, direction, MEMBERS_PER_REQUEST)) {
        const r = direction === 'add' ? await deps.client.addToSegment(id, page, 'id') : await deps.client.removeFromSegment(id, page);
        o.requests += r.requests;
        await deps.audiences.recordPublished(segment, direction, page);
        if (direction === 'add') o.added += page.length;
        else o.removed += page.length;
      }
    }
  } catch (err) {
    o.error = safeFailure(err);
  }
  return o;
}

async function toAttribute(segment: string, attribute: string, deps: PublishDeps): Promise<PublishOutcome> {
  const key = attributeKey(segment, attribute);
  const o: PublishOutcome = { segment: `${segment} → attribute ${attribute}`, added: 0, removed: 0, requests: 0 };
  await deps.audiences.storeCandidates(key, `SELECT person_id FROM audience_candidates WHERE env = $1 AND segment = $2`, [deps.audiences.env, segment]);
  try {
    for (const direction of ['remove', 'add'] as const) {
      for await (const page of deps.audiences.changes(key, direction, MEMBERS_PER_REQUEST)) {
        const entries: V2Entry[] = page.map((id) => ({ type: 'person', action: 'identify', identifiers: { id }, attributes: { [attribute]: direction === 'add' } }));
        const summary = await deps.client.sendBatches(entries);
        o.requests += summary.batches;
        const acknowledged = summary.results.filter((r) => r.ok).map((r) => page[r.index]!);
        await deps.audiences.recordPublished(key, direction, acknowledged);
        if (direction === 'add') o.added += acknowledged.length;
        else o.removed += acknowledged.length;
        const failed = summary.results.filter((r) => !r.ok);
        if (failed.length) {
          // Not recorded, so the next run sends them again; stop here rather than run into the same wall.
          o.error = `${failed.length} ${direction === 'add' ? 'additions' : 'removals'} were not acknowledged (${[...new Set(failed.map((f) => f.reason))].join(', ')}); they are sent again next run`;
          return o;
        }
      }
    }
  } catch (err) {
    o.error = safeFailure(err);
  }
  return o;
}

/**
 * What a failed request becomes in outputs: the operation and status or code, never the service's message,
 * which may quote an id from the request. What was not acknowledged is sent again next run.
 */
function safeFailure(err: unknown): string {
  if (err instanceof ProviderError) return `${err.operation} failed (${err.status ? `HTTP ${err.status}` : (err.code ?? 'no answer')}${err.retryable ? ', retryable' : ''}); what was not acknowledged is sent again next run`;
  throw err;
}
