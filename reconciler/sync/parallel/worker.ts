/**
 * A segment worker's thread: started by pool.ts with the source's context, it answers each segment with
 * its rows normalised and hashed (segment.ts). An error is answered, not thrown, so the engine can fail the
 * run with it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { PrintShare } from '../record-prints.ts';
import { createSegmentWorker, movable, type SegmentContext, type SegmentRequest } from './segment.ts';

const port = parentPort;
if (!port) throw new Error('worker.ts runs only as a worker thread');
let work = createSegmentWorker(workerData as SegmentContext);

port.on('message', (message: SegmentRequest | { share: PrintShare }) => {
  // The snapshot's prints come once, before the first segment (SegmentPool.sharePrints).
  if ('share' in message) {
    work = createSegmentWorker({ ...(workerData as SegmentContext), prints: message.share });
    return;
  }
  const request = message;
  try {
    const result = work(request);
    const arrays: ArrayBufferView[] = [result.kinds, result.refs, result.orderings, result.lines, result.starts, result.ends];
    if (result.slots) arrays.push(result.slots);
    if (result.prints) arrays.push(result.prints);
    if (result.entries) arrays.push(result.entries.bytes, result.entries.ends);
    // The segment's bytes were moved here (SegmentPool.run): they go back for the rows prepared again there.
    const bytes = request.segment.bytes;
    if (bytes !== undefined && movable(bytes)) {
      result.bytes = bytes;
      arrays.push(bytes);
    }
    port.postMessage({ ok: true, result }, arrays.map((a) => a.buffer as ArrayBuffer));
  } catch (e) {
    port.postMessage({ ok: false, seq: request.seq, message: e instanceof Error ? e.message : String(e) });
  }
});
port.postMessage({ ready: true });
