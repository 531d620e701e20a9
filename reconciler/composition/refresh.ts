/**
 * Refresh: read every live object of the kinds in play, all pages, concurrently across kinds (each
 * client keeps to its service's rate limits). Live state comes back in the same shape as desired state.
 */
import type { LiveEntry, StateEntry } from '../plan/diff.ts';
import type { ResourceKind } from '../kinds/kind.ts';

/**
 * `state` tells each kind which objects tidemark manages, so a kind whose objects can live in more than
 * one container (a mailing list moved to another directory) also reads where the managed ones are.
 */
export async function refreshLive(
  kinds: Record<string, ResourceKind>,
  needed: Iterable<string>,
  state: readonly StateEntry[] = [],
): Promise<Record<string, LiveEntry[]>> {
  const wanted = [...new Set(needed)].filter((k) => kinds[k]).sort();
  const lists = await Promise.all(
    wanted.map((k) => kinds[k]!.list(state.filter((s) => s.kind === k).map((s) => ({ id: s.remoteId, attributes: s.attributes })))),
  );
  return Object.fromEntries(wanted.map((k, i) => [k, lists[i]!]));
}
