import { defineConfig } from 'vitest/config';

// Two projects: unit tests run anywhere; e2e tests need root and `ip netns`
// and run one file at a time, because each file builds its own lab of hosts.
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
          sequence: { concurrent: false },
        },
      },
    ],
  },
});
