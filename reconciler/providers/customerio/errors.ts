/**
 * Reading Customer.io's error bodies (reference §3). Four shapes exist:
 * - Track v1: `{"meta":{"errors":["…"]}}`, or `{"meta":{"error":"…"}}` on older endpoints;
 * - Track v2: `{"errors":[{"reason","field","message"}]}` (207 entries add `batch_index`);
 * - App: `{"errors":[{"detail","status","code"?,"source"?}]}`, where detail ends in "(reference …)";
 * - a bare JSON string, e.g. `"Segment not found"` (2022 add/remove_customers 404).
 */
import { isRecord } from '../client-errors.ts';
import type { ServiceErrorDetails } from '../http/http-client.ts';

export function describeCustomerioError(_status: number, body: unknown, _text: string): ServiceErrorDetails {
  if (typeof body === 'string') return body.trim() ? { message: body.trim() } : {};
  if (!isRecord(body)) return {};
  const out: ServiceErrorDetails = {};
  const meta = body.meta;
  if (isRecord(meta)) {
    if (typeof meta.error === 'string' && meta.error) out.message = meta.error;
    else if (Array.isArray(meta.errors)) {
      const texts = meta.errors.filter((e): e is string => typeof e === 'string' && e !== '');
      if (texts.length > 0) out.message = texts.join('; ');
    }
  }
  if (out.message === undefined && Array.isArray(body.errors)) {
    const parts: string[] = [];
    for (const e of body.errors) {
      if (typeof e === 'string') {
        parts.push(e);
        continue;
      }
      if (!isRecord(e)) continue;
      if (typeof e.detail === 'string') {
        parts.push(e.detail);
        const ref = /\(reference ([^)\s]+)\)/.exec(e.detail);
        if (ref && out.requestId === undefined) out.requestId = ref[1]!;
        if (typeof e.code === 'string' && out.code === undefined) out.code = e.code;
      } else {
        parts.push(formatV2Error(e));
      }
    }
    if (parts.length > 0) out.message = parts.join('; ');
  }
  return out;
}

/** `field: message (reason)` for a v2 error entry, with whatever parts are present. */
export function formatV2Error(e: Record<string, unknown>): string {
  const field = typeof e.field === 'string' && e.field ? `${e.field}: ` : '';
  const message = typeof e.message === 'string' ? e.message : '';
  const reason = typeof e.reason === 'string' && e.reason ? e.reason : '';
  if (message && reason) return `${field}${message} (${reason})`;
  return `${field}${message || reason || 'invalid entry'}`;
}
