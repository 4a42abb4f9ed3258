import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx'],
    // A guard against hangs, not a speed target: on a shared 2-core machine (load 20+) a test of
    // five gpuq runs took 60 s. The speed goal (each test under 30 s idle) is watched separately.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
