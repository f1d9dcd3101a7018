import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup/loopback-only.ts'],
    globalSetup: ['test/setup/embedded-image.ts'],
    // Each file builds real apps on a real store; opening the embedded store costs a few seconds.
    // Generous: a slow test costs time, never a verdict; machines here are shared and noisy.
    testTimeout: 90_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
