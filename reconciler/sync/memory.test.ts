import { describe, expect, it } from 'vitest';
import { HeapGovernor } from './memory.ts';

describe('HeapGovernor', () => {
  it('collects once the heap grew past the slack, and not before', () => {
    const g = new HeapGovernor(1024 * 1024 * 1024);
    g.check();
    expect(g.collections).toBe(0);
    const small = new HeapGovernor(1);
    const keep: number[][] = [];
    for (let i = 0; i < 200; i++) keep.push(Array.from({ length: 1000 }, (_, j) => j * i));
    small.check();
    expect(small.collections).toBe(1);
    expect(keep).toHaveLength(200);
  });
});
