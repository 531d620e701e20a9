/**
 * Which transaction of a driver an async call belongs to, tracked with AsyncLocalStorage only while one
 * of the driver's transactions is open.
 *
 * Why not all the time: on Node 20 and 22 an enabled AsyncLocalStorage installs promise hooks for the
 * whole process, so every promise anyone creates pays for it afterwards. The state store's first
 * transaction enabled it for the rest of the run; a 1,000,000-row `sync plan` then spent 0.15–0.2 s of its
 * 2.3 s (0.3 s of CPU) in those hooks while reading the file (docs/BENCHMARKS.md, "Promise hooks only
 * inside transactions"). So the storage is disabled when the driver's last open transaction ends, and the
 * next transaction enables it again.
 *
 * What that leaves of the drivers' guard against a statement issued, by code its transaction did not
 * await, after the transaction finished: while any transaction of the driver is open such a statement is
 * still refused; once none is, it runs on its own, as a statement outside any transaction does.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export class TransactionContext<T> {
  private readonly storage = new AsyncLocalStorage<T>();
  private open = 0;

  /** The transaction the calling code runs in, if any. */
  current(): T | undefined {
    return this.storage.getStore();
  }

  /** Runs `fn` inside `ctx`; code `fn` starts and awaits sees `ctx` as `current()`. */
  async run<R>(ctx: T, fn: () => Promise<R>): Promise<R> {
    this.open++;
    try {
      return await this.storage.run(ctx, fn);
    } finally {
      if (--this.open === 0) this.storage.disable();
    }
  }
}
