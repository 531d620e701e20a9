/**
 * A segment worker's thread: started by pool.ts with the source's context, it answers each segment with
 * its rows normalised and hashed (segment.ts). An error is answered, not thrown, so the engine can fail the
 * run with it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createSegmentWorker, type SegmentContext, type SegmentRequest } from './segment.ts';

const port = parentPort;
if (!port) throw new Error('worker.ts runs only as a worker thread');
const work = createSegmentWorker(workerData as SegmentContext);

port.on('message', (request: SegmentRequest) => {
  try {
    const result = work(request);
    const arrays = [result.kinds, result.orderings, result.lines, result.starts, result.ends];
    port.postMessage({ ok: true, result }, arrays.map((a) => a.buffer as ArrayBuffer));
  } catch (e) {
    port.postMessage({ ok: false, seq: request.seq, message: e instanceof Error ? e.message : String(e) });
  }
});
port.postMessage({ ready: true });
