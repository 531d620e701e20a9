/** Helpers for the file connector tests: temporary folders, open-descriptor checks, FIFOs, forced GC. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { collector } from '../../reconciler/sync/memory.ts';
import type { Connector, ConnectorContext, SourceRow } from '../../reconciler/sync/types.ts';

export function tempDir(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tidemark-connector-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function context(cwd: string, over: Partial<ConnectorContext> = {}): ConnectorContext {
  return { lastSyncAt: null, cwd, env: {}, ...over };
}

export async function collect(connector: Connector, ctx: ConnectorContext): Promise<SourceRow[]> {
  const rows: SourceRow[] = [];
  for await (const r of connector.read(ctx)) rows.push(r);
  return rows;
}

/** The connector's batches as they come (it must implement `readBatches`). */
export async function collectBatches(connector: Connector, ctx: ConnectorContext): Promise<SourceRow[][]> {
  if (!connector.readBatches) throw new Error(`the ${connector.type} connector has no readBatches`);
  const batches: SourceRow[][] = [];
  for await (const b of connector.readBatches(ctx)) batches.push(b);
  return batches;
}

/** This process's open file descriptors that point at `file` (Linux /proc); null where /proc is absent. */
export function openDescriptorsFor(file: string): number | null {
  let entries: string[];
  try {
    entries = readdirSync('/proc/self/fd');
  } catch {
    return null;
  }
  let n = 0;
  for (const fd of entries) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === file) n++;
    } catch {
      // The descriptor closed while listing.
    }
  }
  return n;
}

/** Creates a named pipe, or returns null where mkfifo is unavailable. */
export function makeFifo(file: string): string | null {
  try {
    execFileSync('mkfifo', [file]);
    return file;
  } catch {
    return null;
  }
}

/** A full garbage collection, so heap sizes compare live data rather than pending garbage. */
export function forceGc(): () => void {
  const gc = collector();
  if (!gc) throw new Error('no way to ask this Node for a full garbage collection');
  return gc;
}

/**
 * Starts reading `file` a chunk at a time, stops after the first chunk, and says whether the file was
 * open while reading and closed after (`null` where open descriptors cannot be inspected).
 */
export async function openWhileReadingClosedAfterStop(connector: Connector, cwd: string, file: string): Promise<{ during: number; after: number } | null> {
  const batches = connector.readBatches!(context(cwd))[Symbol.asyncIterator]();
  if ((await batches.next()).done) throw new Error('the file gave no first chunk');
  const during = openDescriptorsFor(file);
  await batches.return!(undefined);
  const after = openDescriptorsFor(file);
  return during === null || after === null ? null : { during, after };
}

