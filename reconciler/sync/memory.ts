/**
 * Keeps a long sync's heap near what it really holds.
 *
 * A run allocates a lot of short-lived garbage per row while keeping a growing index of keys. V8 sizes
 * its old generation by heuristics made for servers: on a machine with plenty of memory it lets a
 * million-row run climb to ~850 MB of resident memory, while what is live stays under 200 MB (measured:
 * the same run completes with --max-old-space-size=200). Heap flags only take effect when given on the
 * command line, which `npx tidemark` and CI do not control, so the engine asks for a full collection
 * itself whenever the heap has grown well past what the last collection left: a few collections per
 * million rows, each a fraction of a second.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

let collect: (() => void) | undefined;

/** A full garbage collection, when the platform lets one be asked for (cached). */
export function collector(): (() => void) | undefined {
  if (collect) return collect;
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') return (collect = exposed);
  try {
    // The flag exposes `gc` in contexts created after it is set.
    v8.setFlagsFromString('--expose-gc');
    const gc: unknown = vm.runInNewContext('gc');
    if (typeof gc === 'function') collect = gc as () => void;
  } catch {
    collect = undefined;
  }
  return collect;
}

export class HeapGovernor {
  private floor: number;
  collections = 0;

  /**
   * `slackBytes`: how far the heap may grow past what the last collection left before collecting again.
   * `heapUsed` and `gc` are injectable for tests.
   */
  constructor(
    private readonly slackBytes = 64 * 1024 * 1024,
    // Not process.memoryUsage(): it also reads the resident set from the kernel, which in a sync's
    // process (a large heap, worker threads) took ~1 ms a call: 367 ms of a 1,000,000-row plan's main
    // thread for 387 checks, against 3 ms for the heap's own count.
    private readonly heapUsed: () => number = () => v8.getHeapStatistics().used_heap_size,
    private readonly gc: (() => void) | undefined = collector(),
  ) {
    this.floor = this.heapUsed();
  }

  /** Call between chunks of work. */
  check(): void {
    if (!this.gc) return;
    if (this.heapUsed() < this.floor + this.slackBytes) return;
    this.gc();
    this.collections++;
    this.floor = this.heapUsed();
  }
}
