import { defineConfig } from 'vitest/config';

/** Files that replace a module with vi.mock: they need a module registry of their own. */
export const MOCKING_FILES = ['test/timing-safe.test.ts'];

export default defineConfig({
  test: {
    setupFiles: ['test/setup/loopback-only.ts'],
    globalSetup: ['test/setup/embedded-image.ts'],
    // Each file builds real apps on a real store; opening the embedded store costs a few seconds.
    // Generous: a slow test costs time, never a verdict; machines here are shared and noisy.
    testTimeout: 90_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: 'suite',
          include: ['test/**/*.test.ts'],
          exclude: MOCKING_FILES,
          // A test process runs file after file on one module registry: importing the app and its
          // libraries again for every file was a third of the suite's time (CPU-bound on 2 cores).
          // Every file builds its own apps and stores, so none sees another's state.
          isolate: false,
        },
      },
      { extends: true, test: { name: 'isolated', include: MOCKING_FILES } },
    ],
  },
});
