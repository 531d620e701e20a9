/**
 * WAL checkpoints off the writer's path: one background thread per process copies committed WAL frames
 * back into the database files that the embedded store's connections write.
 *
 * SQLite's automatic checkpoint runs inside the COMMIT of the connection whose transaction took the WAL past
 * 1,000 pages, so that COMMIT also copies the pages into the database file and syncs it twice. After the
 * mirror update of 1,000,000 people (a WAL of ~400 MB) that was 1.9 of the COMMIT's 2.4 s, and it stalled an
 * ack-session merge by a second. The connections of a SqliteDriver therefore turn the automatic checkpoint
 * off and poke this thread after each write; the thread runs PASSIVE checkpoints with its own connection,
 * which never block a reader or the writer (SQLite's documented pattern for a checkpoint thread).
 * Durability is unchanged: a committed transaction is in the WAL either way, and a checkpoint cut short by
 * a crash is redone from the WAL by the next connection.
 *
 * The thread is unref'd (it never keeps the process alive) and opens one connection per file, closed
 * before the driver closes its own, so the driver's close is the file's last and removes the WAL.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** How long the thread waits for a file locked while it opens it (the writer's own wait is 10 s). */
const OPEN_WAIT_MS = 5_000;

type Request = { op: 'checkpoint' } | { op: 'open' | 'forget'; file: string; id: number };
type Reply = { id: number; error?: string };

// Plain CommonJS so the thread needs no TypeScript loader. A failed checkpoint is left for the next poke;
// the writer's own connection checkpoints if the thread is gone.
const THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.sqlite);
const pending = new Int32Array(workerData.pending);
const open = new Map();
parentPort.on('message', (m) => {
  if (m.op === 'checkpoint') {
    // Cleared first: a write committed from here on pokes again.
    Atomics.store(pending, 0, 0);
    for (const db of open.values()) {
      try { db.pragma('wal_checkpoint(PASSIVE)'); } catch {}
    }
    return;
  }
  let error;
  try {
    if (m.op === 'open' && !open.has(m.file)) {
      const db = new Database(m.file, { fileMustExist: true });
      try {
        // Reading the schema (cache_size needs it) is refused while the writer's first transactions set up
        // the WAL; without a wait the open failed now and then and the writer checkpointed on its own.
        // PASSIVE checkpoints never call the busy handler, so the wait applies to the open only.
        db.pragma('busy_timeout = ' + workerData.openWaitMs);
        db.pragma('cache_size = -2048');
      } catch (e) {
        // An open connection holds a shared lock: left behind, the writer's close could never take the
        // exclusive lock it needs to copy the WAL into the file and remove it.
        db.close();
        throw e;
      }
      open.set(m.file, db);
    } else if (m.op === 'forget' && open.has(m.file)) {
      open.get(m.file).close();
      open.delete(m.file);
    }
  } catch (e) {
    error = String((e && e.message) || e);
  }
  parentPort.postMessage({ id: m.id, error });
});
`;

class CheckpointThread {
  private worker: Worker | undefined;
  private failed: Error | undefined;
  /**
   * 1 while a checkpoint request is queued and not yet started: later pokes add nothing. Shared memory, not a
   * reply: a writer awaiting only statements of the synchronous SQLite driver never returns to the event loop,
   * so a reply would wait for the end of its work.
   */
  private readonly pending = new Int32Array(new SharedArrayBuffer(4));
  private nextId = 1;
  private readonly waiting = new Map<number, (error: string | undefined) => void>();
  private readonly files = new Map<string, number>();
  /** Each file's open request, whose answer every driver of the file waits on. */
  private readonly opening = new Map<string, Promise<string | undefined>>();

  /** Whether checkpoints can be left to the thread; false once it could not start or died. */
  available(): boolean {
    if (this.failed) return false;
    if (this.worker) return true;
    try {
      const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
      const worker = new Worker(THREAD, { eval: true, workerData: { sqlite, pending: this.pending.buffer, openWaitMs: OPEN_WAIT_MS } });
      worker.unref();
      worker.on('message', (reply: Reply) => this.reply(reply));
      worker.on('error', (e) => this.fail(e));
      worker.on('exit', () => this.fail(new Error('the checkpoint thread stopped')));
      this.worker = worker;
      return true;
    } catch (e) {
      this.failed = e as Error;
      return false;
    }
  }

  /**
   * A driver writes to `file`: the thread opens its own connection to it (counted: two drivers, one
   * connection). `refused` runs if it cannot, so the driver checkpoints in its own commits again.
   */
  open(file: string, refused: () => void): void {
    const users = this.files.get(file) ?? 0;
    this.files.set(file, users + 1);
    const opened = this.opening.get(file) ?? this.send('open', file);
    this.opening.set(file, opened);
    void opened.then((error) => {
      if (error !== undefined) refused();
    });
  }

  /** After a write: checkpoint soon (coalesced: at most one request queued). */
  poke(): void {
    if (!this.worker || this.failed) return;
    if (Atomics.compareExchange(this.pending, 0, 0, 1) === 0) this.worker.postMessage({ op: 'checkpoint' } satisfies Request);
  }

  /** A driver is closing: once its last user is gone, the thread closes its connection to `file` (after any checkpoint of it). */
  async forget(file: string): Promise<void> {
    const users = (this.files.get(file) ?? 1) - 1;
    if (users > 0) {
      this.files.set(file, users);
      return;
    }
    this.files.delete(file);
    this.opening.delete(file);
    await this.send('forget', file);
  }

  /** Resolves to the thread's error, if it failed. */
  private send(op: 'open' | 'forget', file: string): Promise<string | undefined> {
    const worker = this.worker;
    if (!worker || this.failed) return Promise.resolve(this.failed?.message);
    const id = this.nextId++;
    // Referenced while an answer is awaited: an awaited forget must complete before the process may exit.
    if (this.waiting.size === 0) worker.ref();
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      worker.postMessage({ op, file, id } satisfies Request);
    });
  }

  private reply(reply: Reply): void {
    const resolve = this.waiting.get(reply.id);
    if (!resolve) return;
    this.waiting.delete(reply.id);
    if (this.waiting.size === 0) this.worker?.unref();
    resolve(reply.error);
  }

  private fail(e: Error): void {
    if (this.failed) return;
    this.failed = e;
    this.worker = undefined;
    for (const resolve of this.waiting.values()) resolve(e.message);
    this.waiting.clear();
    for (const listener of this.onFailure) listener();
  }

  /** Stops the thread as a crash would (tests: writers must take their checkpoints back). */
  async terminate(): Promise<void> {
    await this.worker?.terminate();
  }

  /** Called when the thread dies, so writers take checkpoints back. */
  readonly onFailure = new Set<() => void>();
}

let thread: CheckpointThread | undefined;

/** The process' checkpoint thread (started on first use). */
export function checkpointThread(): CheckpointThread {
  return (thread ??= new CheckpointThread());
}

export type { CheckpointThread };
