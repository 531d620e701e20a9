/**
 * Track v2 batches (§5): what may be sent together, and what each entry's fate was. Packing is greedy and
 * in order, so per-person ordering holds across batches; one request is sent at a time by the caller's
 * `send`, and this module decides what a failure means for every entry it carried.
 */
import { clientErrors, isRecord } from '../client-errors.ts';
import { ProviderError } from '../errors.ts';
import { formatV2Error } from './errors.ts';
import type { BatchSummary, EntryResult, V2Entry } from './types.ts';

const { invalidResponse } = clientErrors('customerio');

/**
 * v2 size limits (§2, §5): "32kb" per entry and "500kb" per batch. ⚠ The docs do not say whether kb is
 * 1000 or 1024 bytes; the smaller reading (1000) is used so nothing we send can be over either limit.
 */
export const V2_ENTRY_LIMIT_BYTES = 32_000;
export const V2_BATCH_LIMIT_BYTES = 500_000;

/**
 * 207 entry reasons that describe a failure on the service's side rather than a bad entry. ⚠ The docs
 * list no reason vocabulary; this is a heuristic so such entries are reported as worth resending.
 */
const TRANSIENT_ENTRY_REASON = /internal|server|unavailable|timeout|rate/i;

const IDEMPOTENT_V2_ACTIONS = new Set([
  'identify',
  'identify_anonymous',
  'delete',
  'add_relationships',
  'delete_relationships',
  'add_device',
  'delete_device',
  'suppress',
  'unsuppress',
]);
const EVENT_V2_ACTIONS = new Set(['event', 'screen', 'page']);

/**
 * Whether sending the entry twice has the effect of sending it once: state-setting actions are, events
 * are only with a dedupe `id`, and `merge` is not (its second run would act on a changed profile).
 */
export function isIdempotentEntry<E extends RetryFacts>(entry: E): boolean {
  const action = String(entry.action);
  if (IDEMPOTENT_V2_ACTIONS.has(action)) return true;
  if (EVENT_V2_ACTIONS.has(action)) return typeof entry.id === 'string' && entry.id !== '';
  return false;
}

export function byteLength(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value), 'utf8');
}

/** What deciding whether an entry may be resent needs of it (`isIdempotentEntry`). */
export type RetryFacts = Pick<V2Entry, 'action' | 'id'>;

/**
 * An entry as it goes on the wire: `text` is exactly `JSON.stringify` of the entry, or those characters'
 * UTF-8 bytes; `action` and `id` are what deciding a retry needs of it (`isIdempotentEntry`). Made where
 * the entry is made (the sync's worker threads make them for the rows they read, as bytes), so the sending
 * thread never serialises it.
 */
export interface SerialisedEntry {
  text: string | Uint8Array;
  action: V2Entry['action'];
  id?: V2Entry['id'];
}

export function serialiseEntry(entry: V2Entry): SerialisedEntry {
  const out: SerialisedEntry = { text: JSON.stringify(entry), action: entry.action };
  if (entry.id !== undefined) out.id = entry.id;
  return out;
}

/**
 * Each entry serialised once: its UTF-8 size packs the batches and its text goes into the body as it is
 * (serialising a million entries twice more, for the size and for the body, was 3 s of a first run).
 */
export function serialiseEntries(entries: readonly unknown[]): { texts: string[]; sizes: number[] } {
  const texts = entries.map((e) => JSON.stringify(e));
  return { texts, sizes: texts.map((t) => Buffer.byteLength(t, 'utf8')) };
}

/** `{"batch":[…]}` of the serialised entries at `indexes`: exactly JSON.stringify({ batch }) of those entries. */
export function batchBodyJson(texts: readonly string[], indexes: readonly number[]): string {
  return `{"batch":[${indexes.map((i) => texts[i]!).join(',')}]}`;
}

const OPEN = Buffer.from('{"batch":[');
const CLOSE = Buffer.from(']}');
const COMMA = 0x2c;

/**
 * `batchBodyJson` for entries given as text or as UTF-8 bytes (`SerialisedEntry.text`), in UTF-8: text when
 * every entry is text, else bytes, the text ones encoded. `sizes` are the entries' UTF-8 lengths.
 */
export function batchBody(texts: readonly (string | Uint8Array)[], sizes: readonly number[], indexes: readonly number[]): string | Uint8Array {
  if (indexes.every((i) => typeof texts[i] === 'string')) return batchBodyJson(texts as string[], indexes);
  let total = OPEN.length + CLOSE.length + Math.max(0, indexes.length - 1);
  for (const i of indexes) total += sizes[i]!;
  const body = Buffer.allocUnsafe(total);
  let at = OPEN.copy(body, 0);
  indexes.forEach((i, k) => {
    if (k > 0) body[at++] = COMMA;
    const t = texts[i]!;
    at += typeof t === 'string' ? body.write(t, at, 'utf8') : (body.set(t, at), t.length);
  });
  at += CLOSE.copy(body, at);
  if (at !== total) throw new Error(`a batch body took ${at} bytes where its entries' sizes add up to ${total}`);
  return body;
}

/** Size of `{"batch":[e1,e2,…]}` given the entries' serialised sizes. */
export function batchBodyBytes(sizes: readonly number[]): number {
  const overhead = '{"batch":[]}'.length;
  return overhead + sizes.reduce((a, b) => a + b, 0) + Math.max(0, sizes.length - 1);
}

export function oversizeResult(index: number, size: number): EntryResult {
  return {
    index,
    ok: false,
    reason: 'entry_too_large',
    message: `entry is ${size} bytes, over the ${V2_ENTRY_LIMIT_BYTES}-byte limit; it was not sent`,
    retryable: false,
  };
}

export function summarize(results: EntryResult[], batches: number): BatchSummary {
  let accepted = 0;
  for (const r of results) if (r.ok) accepted++;
  return { results, batches, accepted, rejected: results.length - accepted };
}

/**
 * Groups entry indexes, in order, into batches whose body stays under `limitBytes` and that hold at most
 * `maxEntries` entries. An entry that could never fit (over 32 kb, or alone over the limit) is left out
 * of every group and listed in `oversize`.
 */
export function packBatches(sizes: readonly number[], limitBytes: number, maxEntries: number): { groups: number[][]; oversize: number[] } {
  const groups: number[][] = [];
  const oversize: number[] = [];
  let current: number[] = [];
  let currentBytes = batchBodyBytes([]);
  sizes.forEach((size, index) => {
    if (size > V2_ENTRY_LIMIT_BYTES || batchBodyBytes([size]) > limitBytes) {
      oversize.push(index);
      return;
    }
    const added = size + (current.length > 0 ? 1 : 0);
    if (current.length > 0 && (currentBytes + added > limitBytes || current.length >= maxEntries)) {
      groups.push(current);
      current = [];
      currentBytes = batchBodyBytes([]);
    }
    currentBytes += size + (current.length > 0 ? 1 : 0);
    current.push(index);
  });
  if (current.length > 0) groups.push(current);
  return { groups, oversize };
}

/** Sends the entries at `indexes` as one request; one result per index, or a `ProviderError`. */
export type SendBatch = (indexes: readonly number[]) => Promise<EntryResult[]>;

/**
 * Sends the groups one after the other into `results`, and returns how many requests were made:
 * - a batch the service refuses as a whole (400/413/422) is split in halves and resent until the bad
 *   entries are isolated, so one malformed entry cannot sink the others;
 * - a transport failure that survives retries stops the run: that batch's entries are reported as
 *   `unknown_outcome` (or `not_sent` when it is certain nothing was applied) and later ones as
 *   `not_sent`, each with `retryable` telling whether resending is safe.
 */
export async function sendGroups(entries: readonly RetryFacts[], groups: readonly number[][], results: EntryResult[], send: SendBatch): Promise<number> {
  let batches = 0;
  const countBatch = () => batches++;
  for (let g = 0; g < groups.length; g++) {
    const stop = await sendGroup(entries, groups[g]!, results, send, countBatch);
    if (stop) {
      for (const rest of groups.slice(g + 1)) for (const index of rest) results[index] = notSent(index);
      break;
    }
  }
  return batches;
}

/** Sends one group, bisecting on whole-request rejections. Returns true when the run must stop. */
async function sendGroup(entries: readonly RetryFacts[], group: number[], results: EntryResult[], send: SendBatch, countBatch: () => void): Promise<boolean> {
  try {
    countBatch();
    for (const r of await send(group)) results[r.index] = r;
    return false;
  } catch (err) {
    if (!(err instanceof ProviderError)) throw err;
    const wholeRequestRejected = err.outcome === 'not-applied' && err.status !== undefined && [400, 413, 422].includes(err.status);
    if (wholeRequestRejected) {
      if (group.length === 1) {
        const index = group[0]!;
        results[index] = { index, ok: false, reason: 'batch_rejected', message: err.message, retryable: false };
        return false;
      }
      const mid = Math.ceil(group.length / 2);
      if (await sendGroup(entries, group.slice(0, mid), results, send, countBatch)) {
        for (const index of group.slice(mid)) results[index] = notSent(index);
        return true;
      }
      return sendGroup(entries, group.slice(mid), results, send, countBatch);
    }
    for (const index of group) {
      const certain = err.outcome === 'not-applied';
      results[index] = {
        index,
        ok: false,
        reason: certain ? 'not_sent' : 'unknown_outcome',
        message: err.message,
        retryable: certain ? err.retryable : isIdempotentEntry(entries[index]!),
      };
    }
    return true;
  }
}

function notSent(index: number): EntryResult {
  return { index, ok: false, reason: 'not_sent', message: 'not sent: an earlier batch failed', retryable: true };
}

/**
 * The result of each entry of one accepted batch request (`entries[i]` for each i in `indexes`): all
 * accepted on 200, and on 207 the failed ones mapped back from their `batch_index`.
 */
export function readBatchResults(op: string, entries: readonly RetryFacts[], indexes: readonly number[], status: number, data: unknown): EntryResult[] {
  const results: EntryResult[] = indexes.map((index) => ({ index, ok: true }));
  if (status !== 207) return results;
  const errors = isRecord(data) && Array.isArray(data.errors) ? data.errors : undefined;
  if (!errors) throw invalidResponse(op, '207 without an errors array', 'applied');
  for (const e of errors) {
    const at = isRecord(e) ? e.batch_index : undefined;
    if (!isRecord(e) || typeof at !== 'number' || !Number.isInteger(at) || at < 0 || at >= indexes.length) {
      // We cannot tell which entry this error belongs to; every entry of the batch is in doubt.
      return indexes.map((index) => ({
        index,
        ok: false,
        reason: 'unknown_outcome',
        message: 'the service reported a failure without a usable batch_index',
        retryable: isIdempotentEntry(entries[index]!),
      }));
    }
    const reason = typeof e.reason === 'string' ? e.reason : undefined;
    const message = typeof e.message === 'string' ? e.message : formatV2Error(e);
    const previous = results[at]!;
    if (!previous.ok) {
      // Several problems with one entry arrive as several errors with the same batch_index.
      previous.message = `${previous.message}; ${message}`;
      continue;
    }
    const result: EntryResult = { index: indexes[at]!, ok: false, message, retryable: reason !== undefined && TRANSIENT_ENTRY_REASON.test(reason) };
    if (reason !== undefined) result.reason = reason;
    if (typeof e.field === 'string' && e.field !== '') result.field = e.field;
    results[at] = result;
  }
  return results;
}
