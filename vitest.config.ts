import { defineConfig } from 'vitest/config';

/** Unit files that replace a module with vi.mock: they need a module graph of their own. */
const MOCKS_MODULES = ['test/unit/ledger-files.test.ts'];

export default defineConfig({
  test: {
    // A guard against hangs, not a speed target: on a shared 2-core machine (load 20+) a test of
    // five gpuq runs took 60 s. The speed goal (each test under 30 s idle) is watched separately.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    // Each file's temp folders live under one folder of its own, removed (after killing what still
    // runs in it, which fails the file) when the file ends: see test/helpers/tmp-root.ts.
    setupFiles: ['test/helpers/tmp-root.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'test/unit/**/*.test.tsx'],
          exclude: MOCKS_MODULES,
          // The unit files share their workers' processes: a fresh process and module graph per file
          // (vitest's default) cost 54 s of CPU for the 29 files instead of 31 s.
          isolate: false,
        },
      },
      {
        extends: true,
        // vi.mock only reaches modules not yet loaded: in a shared worker another file has loaded them.
        test: { name: 'unit-isolated', include: MOCKS_MODULES },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/integration/**/*.test.tsx'],
          // As for the unit files: a worker runs its files one after another in one process, so
          // the test helpers are loaded and transformed once per worker, not once per file (~1.5 s
          // of CPU a file). Nothing in test/helpers keeps state between files (tmp-root.ts resets
          // TMPDIR per file; a file that changes process.env or the umask restores it).
          isolate: false,
        },
      },
    ],
  },
});
