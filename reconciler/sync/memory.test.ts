import { describe, expect, it } from 'vitest';
import { HeapGovernor } from './memory.ts';

describe('HeapGovernor', () => {
  it('collects once the heap grew past the slack over what the last collection left, and not before', () => {
    let heap = 100;
    const collected: number[] = [];
    const g = new HeapGovernor(50, () => heap, () => {
      collected.push(heap);
      heap -= 30; // the collection frees the garbage; 120 stays live
    });
    heap = 149;
    g.check();
    expect(collected).toEqual([]);
    heap = 150;
    g.check();
    expect(collected).toEqual([150]);
    // The new floor is what the collection left (120): the next one comes at 170, not at 150.
    heap = 160;
    g.check();
    expect(g.collections).toBe(1);
    heap = 170;
    g.check();
    expect(collected).toEqual([150, 170]);
  });

  it('finds a real collector in this process and runs it', () => {
    const g = new HeapGovernor(-Number.MAX_SAFE_INTEGER);
    g.check();
    expect(g.collections).toBe(1);
  });
});
