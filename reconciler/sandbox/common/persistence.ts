/**
 * File persistence for sandbox state: the whole state is one JSON document, written atomically (temp file in
 * the same directory, then rename) so a crash mid-write leaves the previous file intact. Writes are debounced
 * after mutations and forced on close.
 */
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Writes `data` to `file` via a temp file and rename, so readers see the old or the new file, never half. */
export async function writeFileAtomic(file: string, data: string | Buffer): Promise<void> {
  const dir = dirname(file);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(file)}.${process.pid}.${Date.now().toString(36)}.${Math.random().toString(36).slice(2)}.tmp`);
  try {
    await writeFile(tmp, data, { flush: true });
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/** Reads and parses a JSON file; undefined when it does not exist. A corrupt file throws (never silently reset). */
export async function readJsonFile(file: string): Promise<unknown | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new Error(`sandbox data file ${file} is not valid JSON; move it away or fix it`, { cause: err });
  }
}

export interface PersistenceOptions {
  file: string;
  /** Produces the document to write (called at write time, so it sees the latest state). */
  collect(): unknown;
  /** Quiet period after the last mutation before writing. Default 250 ms. */
  debounceMs?: number;
  /** Write failures during debounced saves land here (default: stderr); flush() and close() throw instead. */
  onError?(err: unknown): void;
}

export interface Persistence {
  /** Schedule a debounced write. */
  markDirty(): void;
  /** Write now if anything changed since the last write (or `force`). */
  flush(force?: boolean): Promise<void>;
  /** Cancel the timer and write the final state. Further markDirty calls are ignored. */
  close(): Promise<void>;
}

export function createPersistence(options: PersistenceOptions): Persistence {
  const debounceMs = options.debounceMs ?? 250;
  const onError =
    options.onError ??
    ((err: unknown) => process.stderr.write(`sandbox: could not save ${options.file}: ${String(err)}\n`));
  let dirty = false;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  // Writes are chained so two saves never interleave their renames out of order.
  let chain: Promise<void> = Promise.resolve();

  const write = (): Promise<void> => {
    const next = chain.then(async () => {
      dirty = false;
      await writeFileAtomic(options.file, JSON.stringify(options.collect()));
    });
    chain = next.catch(() => undefined);
    return next;
  };

  return {
    markDirty() {
      if (closed) return;
      dirty = true;
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        timer = undefined;
        write().catch(onError);
      }, debounceMs);
      timer.unref();
    },
    async flush(force = false) {
      if (timer) {
        clearTimeout(timer);
        timer = undefined;
      }
      if (dirty || force) await write();
      else await chain;
    },
    async close() {
      closed = true;
      if (timer) {
        clearTimeout(timer);
        timer = undefined;
      }
      await write();
    },
  };
}
