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

type Request = { id: number; op: 'checkpoint' | 'forget'; file: string };
type Reply = { id: number; error?: string };

// Plain CommonJS so the thread needs no TypeScript loader. A failed checkpoint is reported, never thrown:
// the next poke tries again, and the writer's own connection checkpoints if the thread is gone.
const THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.sqlite);
const open = new Map();
parentPort.on('message', ({ id, op, file }) => {
  try {
    let db = open.get(file);
    if (op === 'forget') {
      if (db) { open.delete(file); db.close(); }
    } else {
      if (!db) {
        db = new Database(file, { fileMustExist: true });
        db.pragma('busy_timeout = 0');
        db.pragma('cache_size = -2048');
        open.set(file, db);
      }
      db.pragma('wal_checkpoint(PASSIVE)');
    }
    parentPort.postMessage({ id });
  } catch (e) {
    parentPort.postMessage({ id, error: String(e && e.message || e) });
  }
});
`;

interface FileState {
  /** A checkpoint is queued or running. */
  busy: boolean;
  /** Poked while busy: one more checkpoint when the current one ends. */
  again: boolean;
}

class CheckpointThread {
  private worker: Worker | undefined;
  private failed: Error | undefined;
  private nextId = 1;
  private readonly waiting = new Map<number, (reply: Reply) => void>();
  private readonly files = new Map<string, FileState>();
  /** Replies expected before the thread may be unref'd again (a forget awaited on close must arrive). */
  private pending = 0;

  /** Whether checkpoints can be left to the thread; false once it could not start or died. */
  available(): boolean {
    if (this.failed) return false;
    if (this.worker) return true;
    try {
      const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
      const worker = new Worker(THREAD, { eval: true, workerData: { sqlite } });
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

  /** After a write to `file`: checkpoint it soon (coalesced: at most one queued per file). */
  poke(file: string): void {
    if (!this.worker || this.failed) return;
    let state = this.files.get(file);
    if (!state) this.files.set(file, (state = { busy: false, again: false }));
    if (state.busy) {
      state.again = true;
      return;
    }
    state.busy = true;
    void this.send('checkpoint', file).then(() => {
      state.busy = false;
      // Not after a forget: the checkpoint would reopen the file behind it, and the driver's close would no
      // longer be the file's last.
      if (state.again && this.files.get(file) === state) {
        state.again = false;
        this.poke(file);
      }
    });
  }

  /** Closes the thread's connection to `file` once any checkpoint of it has finished. */
  async forget(file: string): Promise<void> {
    this.files.delete(file);
    if (!this.worker || this.failed) return;
    await this.send('forget', file);
  }

  private send(op: Request['op'], file: string): Promise<Reply> {
    const worker = this.worker;
    if (!worker || this.failed) return Promise.resolve({ id: 0 });
    const id = this.nextId++;
    // Referenced while an answer is awaited, so an awaited forget completes before the process may exit.
    if (this.pending++ === 0) worker.ref();
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      worker.postMessage({ id, op, file } satisfies Request);
    });
  }

  private reply(reply: Reply): void {
    const resolve = this.waiting.get(reply.id);
    if (!resolve) return;
    this.waiting.delete(reply.id);
    if (--this.pending === 0) this.worker?.unref();
    resolve(reply);
  }

  private fail(e: Error): void {
    if (this.failed) return;
    this.failed = e;
    this.worker = undefined;
    for (const resolve of this.waiting.values()) resolve({ id: 0, error: e.message });
    this.waiting.clear();
    this.pending = 0;
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
