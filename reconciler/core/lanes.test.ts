import { describe, expect, it } from 'vitest';
import { atMost } from './lanes.ts';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('atMost', () => {
  it('runs every job, never more than the width at once, and a free lane takes the next job at once', async () => {
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    const durations = [30, 5, 5, 5, 5, 5];
    await atMost(
      2,
      durations.map((ms, i) => async () => {
        started.push(i);
        peak = Math.max(peak, ++running);
        await tick(ms);
        running--;
      }),
    );
    expect(started).toEqual([0, 1, 2, 3, 4, 5]);
    expect(peak).toBe(2);
  });

  it('starts nothing after a failure, waits for what runs, and throws the first failure', async () => {
    const done: number[] = [];
    const jobs = [0, 1, 2, 3].map((i) => async () => {
      if (i === 1) throw new Error('job 1 failed');
      await tick(i === 0 ? 20 : 1);
      done.push(i);
    });
    await expect(atMost(2, jobs)).rejects.toThrow('job 1 failed');
    expect(done).toEqual([0]);
  });

  it('resolves for no jobs, and a width under one still runs them one by one', async () => {
    await atMost(3, []);
    const order: number[] = [];
    await atMost(0, [1, 2].map((i) => async () => void order.push(i)));
    expect(order).toEqual([1, 2]);
  });
});
