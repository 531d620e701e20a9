/**
 * The monitoring view of a workspace's sources, read from the state store: what `tidemark status` prints
 * and what `npm start` checks after running the due syncs. The judgement itself is pure (monitor.ts).
 */
import { appliesTo } from '../plan/desired.ts';
import type { Located, SpecModel } from '../spec/model.ts';
import type { SourceSpec } from '../spec/schema/index.ts';
import type { StateStore } from '../state/index.ts';
import { sourceStatus, type SourceStatus } from './monitor.ts';

/** The sources that apply to an environment, by name. */
export function sourcesFor(model: SpecModel, environment: string): Located<SourceSpec>[] {
  return [...model.sources.values()].filter((s) => appliesTo(s.spec, environment)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Each applicable source's status (freshness against its SLO, last run, reject rate, entries waiting, alerts). */
export async function readSourceStatuses(model: SpecModel, store: StateStore, environment: string, now: Date, rejectRateThreshold: number): Promise<SourceStatus[]> {
  const out: SourceStatus[] = [];
  for (const s of sourcesFor(model, environment)) {
    const [lastRun] = await store.lastRuns(s.name, 1);
    const lastSuccess = await store.lastSuccess(s.name);
    const pending = await store.countPending(s.name);
    out.push(sourceStatus(s.name, s.spec, { ...(lastSuccess ? { lastSuccess } : {}), ...(lastRun ? { lastRun } : {}), pending }, now, rejectRateThreshold));
  }
  return out;
}
