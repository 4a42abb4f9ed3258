import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx'],
    // Each file's temp folders live under one folder of its own, removed (after killing what still
    // runs in it, which fails the file) when the file ends: see test/helpers/tmp-root.ts.
    setupFiles: ['test/helpers/tmp-root.ts'],
    // A guard against hangs, not a speed target: on a shared 2-core machine (load 20+) a test of
    // five gpuq runs took 60 s. The speed goal (each test under 30 s idle) is watched separately.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
