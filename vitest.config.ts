import os from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['reconciler/**/*.test.ts', 'stacks/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: ['node_modules/**', 'test/bench/**'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    restoreMocks: true,
    // One test file per core, not vitest's default of one fewer: on the 2-core CI machine that default is a
    // single worker, and most of the slow files wait on child processes, sockets and the disk rather than
    // on their own thread. Measured on a quiet 2-core machine (test/github, test/cli, test/gitops):
    // 389 s of files in one worker, 237 s wall in two.
    maxWorkers: Math.max(2, os.availableParallelism()),
  },
});
