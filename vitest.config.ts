import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { defineConfig } from 'vitest/config';

/**
 * The default order is by past duration and size; the e2e leftovers check must
 * come after every other e2e file, whatever their sizes, so it goes last.
 */
class LeftoversCheckLast extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const last = (f: TestSpecification): boolean => f.moduleId.endsWith('zz-leftovers.test.ts');
    return [...sorted.filter((f) => !last(f)), ...sorted.filter(last)];
  }
}

// Two projects: unit tests run anywhere; e2e tests need root and `ip netns`
// and run one file at a time, because each file builds its own lab of hosts.
export default defineConfig({
  test: {
    sequence: { sequencer: LeftoversCheckLast },
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
