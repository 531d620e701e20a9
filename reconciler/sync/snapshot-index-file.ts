/**
 * The snapshot's index kept as a file beside the state, so a run loads a million keys with one read
 * instead of paging them out of the store (measured: 1.3–2 s per million keys from SQLite, under a fifth
 * of that from the file; see docs/BENCHMARKS.md, "Sync").
 *
 * Why a copy can never be taken for the truth when it is not: the file is named by, and carries, the
 * snapshot's generation (`StateStore.snapshotGeneration`), a fresh token the store replaces in the same
 * transaction as every change to the snapshot's entries. A file whose generation is not the current one
 * is never read. Only two writers make one:
 * - a run, after its ack session closed: the index it loaded, with exactly the acknowledgements the store
 *   committed laid over it (recorded by `TrackedAckSession` as each commit resolves), tagged with the
 *   generation the close produced. A commit whose outcome is unknown (it threw) means the run's picture
 *   may differ from the store's: no file then.
 * - any read of the entries from the store (a plan, or a run that found no file), when the generation was
 *   the same before and after the read.
 * Anything else (no file, a torn or foreign file, another generation) reads the store, as before.
 *
 * The file holds customer identifiers (the snapshot's keys): it lives in the state folder, which is
 * private to its owner, and is written with mode 0600. Files of older generations of the same source are
 * deleted when a new one is written.
 */
import { close as closeFd, mkdirSync, openSync, write as writeFd } from 'node:fs';
import { mkdir, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { AckedRow, PendingEntry, SnapshotAckSession, StateStore } from '../state/index.ts';
import { parseIndexHeader, SnapshotSections, type RunDiff } from './run-diff.ts';
import type { SentRow } from './sender.ts';

const FOLDER = 'snapshot-index';
const SUFFIX = '.idx';
/** What is read first: the magic, the header's length and the header (a generation token and four numbers). */
const HEAD_BYTES = 64 * 1024;

/** Reads `target.length` bytes from `position`; false when the file ends first. */
async function readFully(handle: FileHandle, target: Uint8Array, position: number): Promise<boolean> {
  // In pieces of 1 GB (one read is limited to 2 GB); a short read is not the end of the file.
  for (let done = 0; done < target.length; ) {
    const { bytesRead } = await handle.read(target, done, Math.min(target.length - done, 1 << 30), position + done);
    if (bytesRead === 0) return false;
    done += bytesRead;
  }
  return true;
}

/** The index files of one source, in the state folder. */
export class SnapshotIndexFiles {
  private readonly dir: string;
  private readonly prefix: string;

  constructor(stateDir: string, source: string) {
    this.dir = path.join(stateDir, FOLDER);
    // Source names are spec names; encoded anyway so no name can reach outside the folder.
    this.prefix = `${encodeURIComponent(source)}.`;
  }

  private file(generation: string): string {
    return path.join(this.dir, `${this.prefix}${encodeURIComponent(generation)}${SUFFIX}`);
  }

  /**
   * Loads the generation's file into an empty diff; false (nothing loaded) when there is no usable one.
   * Each section is read straight into the array the diff keeps (no copy of the whole file in between),
   * so ten million keys cost one pass over the file plus building their buckets.
   */
  async load(generation: string, diff: RunDiff): Promise<boolean> {
    let handle: FileHandle;
    try {
      handle = await open(this.file(generation), 'r');
    } catch {
      return false;
    }
    let sections: SnapshotSections | undefined;
    try {
      const { size } = await handle.stat();
      const head = Buffer.alloc(Math.min(size, HEAD_BYTES));
      await readFully(handle, head, 0);
      const parsed = parseIndexHeader(head);
      if (!parsed || parsed.header.generation !== generation) return false;
      sections = SnapshotSections.plan(parsed.header, parsed.bodyStart, size);
      if (!sections) return false;
      for (const { position, target } of sections.parts) if (!(await readFully(handle, target, position))) return false;
    } catch {
      return false;
    } finally {
      await handle.close().catch(() => undefined);
    }
    return diff.adopt(sections);
  }

  /** Whether the generation's file exists (a run that changed nothing need not write it again). */
  async has(generation: string): Promise<boolean> {
    try {
      await (await open(this.file(generation), 'r')).close();
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Writes the generation's file (to a temporary name, then renamed, so a reader sees all of it or
   * nothing) and deletes the source's other generations. Failing to write only costs the next run a read
   * of the store: errors are swallowed after cleaning up.
   */
  async save(generation: string, chunks: Iterable<Uint8Array>): Promise<boolean> {
    const target = this.file(generation);
    const temporary = `${target}.${process.pid}.tmp`;
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      const handle = await open(temporary, 'w', 0o600);
      try {
        for (const chunk of chunks) if (chunk.length > 0) await handle.write(chunk);
      } finally {
        await handle.close();
      }
      await rename(temporary, target);
    } catch {
      await rm(temporary, { force: true }).catch(() => undefined);
      return false;
    }
    await this.dropOthers(target);
    return true;
  }

  /**
   * Starts writing a file whose generation is not known yet: every part of the body at once, at its
   * place after a prefix of `prefixLength` bytes, to a temporary name. The writes run on libuv's threads,
   * so they go on while this thread is busy (merging the run's acknowledgements in the store); `finish`
   * writes the prefix and gives the file its generation's name.
   */
  writeAhead(body: Iterable<Uint8Array>, prefixLength: number): AheadFile {
    const temporary = path.join(this.dir, `${this.prefix}ahead.${process.pid}.tmp`);
    // Opened and every write handed to libuv now, synchronously: the merge that follows keeps this
    // thread busy without turning the event loop, so anything awaited here would wait for its end.
    let fd: number | undefined;
    let written: Promise<boolean>;
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      fd = openSync(temporary, 'w', 0o600);
      const writes: Promise<void>[] = [];
      let position = prefixLength;
      for (const part of body) {
        if (part.length > 0) writes.push(writeAt(fd, part, position));
        position += part.length;
      }
      written = Promise.all(writes).then(
        () => true,
        () => false,
      );
    } catch {
      written = Promise.resolve(false);
    }
    const close = async () => {
      if (fd === undefined) return;
      const f = fd;
      fd = undefined;
      await new Promise<void>((resolve) => closeFd(f, () => resolve()));
    };
    const remove = async () => {
      await close();
      await rm(temporary, { force: true }).catch(() => undefined);
    };
    return {
      finish: async (generation, prefix) => {
        if (!(await written) || fd === undefined) {
          await remove();
          return false;
        }
        const target = this.file(generation);
        try {
          await writeAt(fd, prefix, 0);
          await close();
          await rename(temporary, target);
        } catch {
          await remove();
          return false;
        }
        await this.dropOthers(target);
        return true;
      },
      discard: async () => {
        await written;
        await remove();
      },
    };
  }

  /**
   * Removes the source's files of other generations, and the temporary files of processes that are gone
   * (a run killed while writing leaves one as large as the index).
   */
  private async dropOthers(target: string): Promise<void> {
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      if (!name.startsWith(this.prefix)) continue;
      const other = path.join(this.dir, name);
      const writer = /\.(\d+)\.tmp$/.exec(name)?.[1];
      const stale = writer !== undefined ? !alive(Number(writer)) : name.endsWith(SUFFIX) && other !== target;
      if (stale) await rm(other, { force: true }).catch(() => undefined);
    }
  }
}

/** Whether process `pid` exists (a signal 0 checks without sending anything). */
function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, under another user.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A file being written before its generation is known (`SnapshotIndexFiles.writeAhead`). */
export interface AheadFile {
  /** Writes the prefix, names the file for `generation`; false when any write failed (nothing is left). */
  finish(generation: string, prefix: Buffer): Promise<boolean>;
  /** Removes what was written. */
  discard(): Promise<void>;
}

/** Writes all of `bytes` at `position` (a write may take less than it was given); the first write is handed to libuv before this returns. */
function writeAt(fd: number, bytes: Uint8Array, position: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (done: number) => {
      if (done >= bytes.length) return resolve();
      writeFd(fd, bytes, done, bytes.length - done, position + done, (error, n) => {
        if (error) return reject(error);
        if (n === 0) return reject(new Error('the index file took no bytes'));
        step(done + n);
      });
    };
    step(0);
  });
}

/**
 * An ack session that tells the run's diff about every acknowledgement the store committed, in commit
 * order, so the index file written after the close matches what the store merged. `uncertain` is set
 * when a commit failed: whether it reached the store is then unknown.
 */
export class TrackedAckSession implements SnapshotAckSession {
  uncertain = false;
  /** Acknowledgements recorded so far, and whether batches are still applied as they are recorded. */
  private recorded = 0;
  private applying = true;

  constructor(
    private readonly inner: SnapshotAckSession,
    private readonly diff: RunDiff,
  ) {}

  get source(): string {
    return this.inner.source;
  }

  get generation(): string | undefined {
    return this.inner.generation;
  }

  async append(rows: readonly AckedRow[]): Promise<number> {
    const n = await this.tracked(() => this.inner.append(rows));
    this.note(rows);
    return n;
  }

  /**
   * Each batch is applied to the snapshot as it is recorded while the run's acknowledgements stay within
   * 1/APPLY_SHARE of the snapshot's keys (a re-sync of a few changes: its merge then runs while the read
   * goes on, instead of after it); from the first batch beyond, and for good, they are left to the close's
   * one sorted pass (a first run, a large change), which writes each page once.
   */
  async record(outcome: { acknowledged: readonly AckedRow[]; pending?: readonly PendingEntry[]; settled?: readonly string[] }): Promise<void> {
    this.recorded += outcome.acknowledged.length;
    this.applying &&= this.recorded * APPLY_SHARE <= this.diff.snapshotSize;
    const apply = this.applying;
    await this.tracked(() => this.inner.record(outcome, { apply }));
    this.note(outcome.acknowledged);
  }

  /** Every acknowledgement of the session passed through here (unless a commit failed): no key twice is known. */
  close(): Promise<void> {
    return this.inner.close({ eachKeyOnce: !this.uncertain && !this.diff.ackedTwice });
  }

  private async tracked<T>(commit: () => Promise<T>): Promise<T> {
    try {
      return await commit();
    } catch (e) {
      this.uncertain = true;
      throw e;
    }
  }

  private note(rows: readonly AckedRow[]): void {
    for (const r of rows) this.diff.acknowledge(r.key, r.hash, r.ordering ?? null, (r as SentRow).print);
  }
}

/**
 * Acknowledgements are applied batch by batch while they number at most the snapshot's keys over this.
 * Measured on a re-sync of 1,000,000 keys: 10,000 acknowledgements in two batches of 5,000 took about as
 * long to merge one batch at a time (0.36–0.46 s and 0.19–0.25 s) as in one pass (0.56–0.84 s), since
 * the batches share few pages, and the first batch's merge was done while the read went on. With more,
 * the batches share pages and the one pass writes each of them once (docs/BENCHMARKS.md, "Issue 15: the
 * re-sync's merge while the read goes on").
 */
const APPLY_SHARE = 64;

/** What a run needs of the state store to load and keep the index. */
type IndexStore = Pick<StateStore, 'snapshotGeneration' | 'readSnapshotIndex'>;

/**
 * One run's use of the index file: `load` fills the run's diff (from the file when the current
 * generation has one, else from the store, then writes the file when the generation held still),
 * `track` wraps the run's ack session, and `keep` writes the file of the generation the close produced.
 */
export class SnapshotIndexCache {
  private readonly files: SnapshotIndexFiles;
  private diff: RunDiff | undefined;
  private loadedGeneration: string | undefined;
  private tracked: TrackedAckSession | undefined;
  /** Where the loaded entries came from (for the report's notes and the benchmark). */
  loadedFrom: 'file' | 'store' | undefined;
  /** Unmerged acknowledgements laid over the loaded entries: the diff is then not the generation's file. */
  private unmerged = 0;
  /** The file begun before the session closed (`writeAhead`), with the maker of its prefix. */
  private ahead: { file: AheadFile; prefix: (generation: string) => Buffer } | undefined;

  constructor(
    private readonly store: IndexStore,
    stateDir: string,
    private readonly source: string,
  ) {
    this.files = new SnapshotIndexFiles(stateDir, source);
  }

  async load(diff: RunDiff, betweenPages: () => void): Promise<void> {
    this.diff = diff;
    const generation = await this.store.snapshotGeneration(this.source);
    this.loadedGeneration = generation;
    if (generation !== undefined && (await this.files.load(generation, diff))) {
      this.loadedFrom = 'file';
    } else {
      this.loadedFrom = 'store';
      for await (const page of this.store.readSnapshotIndex(this.source, { part: 'entries' })) {
        for (const e of page) diff.load(e.key, e.hash, e.ordering);
        betweenPages();
      }
      // Only a generation that held still during the read names what was read.
      if (generation !== undefined && (await this.store.snapshotGeneration(this.source)) === generation) {
        await this.files.save(generation, diff.snapshotChunks(generation));
      }
    }
    // Acknowledgements a session has not merged yet (a run in progress, or killed) come after, latest last.
    for await (const page of this.store.readSnapshotIndex(this.source, { part: 'unmerged' })) {
      for (const e of page) diff.load(e.key, e.hash, e.ordering);
      this.unmerged += page.length;
    }
  }

  /** The session to hand the sender: it reports each committed acknowledgement to the diff. */
  track(acks: SnapshotAckSession): SnapshotAckSession {
    if (!this.diff) return acks;
    this.tracked = new TrackedAckSession(acks, this.diff);
    return this.tracked;
  }

  /**
   * Before the ack session closes: begins writing the file `keep` will most likely want (the loaded index
   * with this run's acknowledgements laid over it), body first, so the write goes on beside the store's
   * merge instead of after it (a million keys: about 0.2 s of writing beside a 0.3 s merge). Nothing when
   * the run has no acknowledgement to lay over or one of its commits failed, nor when some keys read are
   * left out of the file (sending stopped before they went): that body is partly copies, which `keep`
   * writes one block at a time rather than all at once. `keep` names the file, or removes it.
   */
  writeAhead(): void {
    const diff = this.diff;
    const tracked = this.tracked;
    if (!diff || !tracked || tracked.uncertain || diff.acknowledgements === 0) return;
    const { prefix, prefixLength, body, viewsOnly } = diff.snapshotFile(true);
    if (!viewsOnly) return;
    this.ahead = { file: this.files.writeAhead(body, prefixLength!), prefix };
  }

  /**
   * After the ack session closed: writes the index of the generation it produced, when the run knows it
   * exactly (finishing the file `writeAhead` began, when there is one). After a plan (no session): writes the loaded generation's file again when the read learned
   * record prints, the loaded entries are the generation's own and it held still.
   */
  async keep(): Promise<void> {
    const ahead = this.ahead;
    this.ahead = undefined;
    let finished = false;
    try {
      finished = await this.keepWith(ahead);
    } finally {
      if (ahead && !finished) await ahead.file.discard();
    }
  }

  /** True when `ahead` became the file. */
  private async keepWith(ahead: { file: AheadFile; prefix: (generation: string) => Buffer } | undefined): Promise<boolean> {
    const diff = this.diff;
    if (!diff) return false;
    const tracked = this.tracked;
    if (!tracked) {
      const generation = this.loadedGeneration;
      if (diff.learnedPrints === 0 || this.unmerged > 0 || generation === undefined) return false;
      if ((await this.store.snapshotGeneration(this.source)) !== generation) return false;
      await this.files.save(generation, diff.snapshotChunks(generation));
      return false;
    }
    const generation = tracked.generation;
    if (generation === undefined || tracked.uncertain) return false;
    if (generation === this.loadedGeneration) {
      // Nothing merged: the file of the generation stands, unless this run learned prints to add to it
      // (and only when nothing unmerged lies over the loaded entries, which the file must not hold).
      if (this.unmerged > 0) return false;
      if (diff.learnedPrints === 0 && (await this.files.has(generation))) return false;
    }
    if (ahead) {
      let prefix: Buffer | undefined;
      try {
        prefix = ahead.prefix(generation);
      } catch {
        // A generation token too long for the room reserved: written again below.
      }
      if (prefix && (await ahead.file.finish(generation, prefix))) return true;
    }
    await this.files.save(generation, diff.snapshotChunks(generation));
    return false;
  }
}
