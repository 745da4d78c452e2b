import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { configDefaults, defineConfig } from 'vitest/config';

const LEFTOVERS = 'test/e2e/zz-leftovers.test.ts';

/**
 * Seconds each e2e file took in a full run (`npm run test:report`, then
 * `node scripts/test-summary.mjs .test-report.json --e2e-durations` prints
 * this list). Only the order comes from it: CI starts from a fresh clone,
 * without the duration cache vitest keeps in node_modules.
 */
const E2E_SECONDS = JSON.parse(
  readFileSync(new URL('./test/e2e/durations.json', import.meta.url), 'utf8'),
) as Record<string, number>;

/**
 * vitest's order (projects by sequence.groupOrder, then by name), except that
 * the e2e files go longest first: files run side by side, so one long file
 * started last would run on alone at the end. A file not in the list yet goes
 * first, as vitest itself runs files it knows nothing about first.
 */
class SlowestE2eFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const seconds = (f: TestSpecification): number =>
      E2E_SECONDS[relative(f.project.config.root, f.moduleId)] ?? Infinity;
    const e2e = sorted.filter((f) => f.project.name === 'e2e').sort((a, b) => seconds(b) - seconds(a));
    // super.sort keeps each project's files together: the e2e block is put back where it was.
    const at = sorted.findIndex((f) => f.project.name === 'e2e');
    const rest = sorted.filter((f) => f.project.name !== 'e2e');
    return at < 0 ? sorted : [...rest.slice(0, at), ...e2e, ...rest.slice(at)];
  }
}

// Projects run in groups, lowest sequence.groupOrder first; a group starts when
// the one before has finished. Unit tests run anywhere. e2e tests need root and
// `ip netns`; each file builds its own labs (namespaces, /etc/netns dirs and
// pids of their own, and a home of its own for the client user), so files run
// side by side, the tests of one file one after another. The leftovers check
// looks for anything a lab left behind, so it runs alone after every e2e file.
export default defineConfig({
  test: {
    sequence: { sequencer: SlowestE2eFirst },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          // Unit files wait a lot too (real relays, timers): at least two at a time, even on
          // CI's 2 cores, where vitest's default is one (there 137 s against 87 s).
          maxWorkers: Math.max(2, availableParallelism() - 1),
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          exclude: [...configDefaults.exclude, LEFTOVERS],
          // The files mostly wait (timeouts, outages, handshakes): on CI's 2 cores three
          // at a time took the e2e files from 800 s one at a time to about 430 s, two to 460-575 s.
          maxWorkers: 3,
          testTimeout: 120_000,
          hookTimeout: 120_000,
          sequence: { groupOrder: 1, concurrent: false },
        },
      },
      {
        test: {
          name: 'e2e-leftovers',
          include: [LEFTOVERS],
          maxWorkers: 1,
          testTimeout: 120_000,
          hookTimeout: 120_000,
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
