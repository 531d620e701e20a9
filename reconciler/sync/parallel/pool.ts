/**
 * The segment workers of one read: started with the source's context, each given segments to work on,
 * least busy first. Results come back in any order; read.ts puts them back in source order.
 *
 * The workers load worker.ts as compiled with the CLI, evaluate it compiled into one script (worker-code.ts),
 * or register tsx and import it when that cannot be compiled here; either way it works from
 * `bin/tidemark.js` in any folder and under vitest.
 */
import { Worker } from 'node:worker_threads';
import type { PrintShare } from '../record-prints.ts';
import { movable, type SegmentContext, type SegmentRequest, type SegmentResult } from './segment.ts';
import { workerCode, type WorkerCode } from './worker-code.ts';

type Answer = { ok: true; result: SegmentResult } | { ok: false; seq: number; message: string } | { ready: true };

interface Slot {
  worker: Worker;
  busy: number;
}

export class SegmentPool {
  private readonly slots: Slot[] = [];
  private readonly waiting = new Map<number, { resolve: (r: SegmentResult) => void; reject: (e: Error) => void; slot: Slot }>();
  private failure: Error | undefined;
  private closed = false;

  constructor(size: number, context: SegmentContext, code: WorkerCode = workerCode()) {
    for (let i = 0; i < size; i++) {
      const worker = code.loader === 'compiled' ? new Worker(code.code, { workerData: context }) : new Worker(code.code, { eval: true, workerData: context });
      const slot: Slot = { worker, busy: 0 };
      worker.on('message', (answer: Answer) => this.answer(slot, answer));
      worker.on('error', (e) => this.fail(new Error(`a sync worker failed: ${e.message}`, { cause: e })));
      worker.on('exit', (code) => {
        if (!this.closed) this.fail(new Error(`a sync worker stopped unexpectedly (exit code ${code})`));
      });
      this.slots.push(slot);
    }
  }

  get size(): number {
    return this.slots.length;
  }

  /** Segments handed out and not answered yet. */
  get inFlight(): number {
    return this.waiting.size;
  }

  /**
   * Hands every worker the snapshot's record prints (shared memory, not copied). The workers start before
   * the index is loaded, so their start overlaps it; messages to a worker keep their order, so each has
   * the prints before its first segment.
   */
  sharePrints(share: PrintShare): void {
    for (const s of this.slots) s.worker.postMessage({ share });
  }

  run(request: SegmentRequest): Promise<SegmentResult> {
    if (this.failure) return Promise.reject(this.failure);
    let slot = this.slots[0]!;
    for (const s of this.slots) if (s.busy < slot.busy) slot = s;
    slot.busy++;
    return new Promise((resolve, reject) => {
      this.waiting.set(request.seq, { resolve, reject, slot });
      const bytes = request.segment.bytes;
      slot.worker.postMessage(request, bytes !== undefined && movable(bytes) ? [bytes.buffer as ArrayBuffer] : []);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.fail(new Error('the sync workers were stopped'));
  }

  private answer(slot: Slot, answer: Answer): void {
    if ('ready' in answer) return;
    const seq = answer.ok ? answer.result.seq : answer.seq;
    const w = this.waiting.get(seq);
    if (!w) return;
    this.waiting.delete(seq);
    slot.busy--;
    if (answer.ok) w.resolve(answer.result);
    else w.reject(new Error(`a sync worker failed on a segment: ${answer.message}`));
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const [seq, w] of this.waiting) {
      this.waiting.delete(seq);
      w.reject(this.failure);
    }
  }
}
