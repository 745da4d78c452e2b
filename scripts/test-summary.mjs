// Prints vitest's totals as one plain line ("N passed, N failed, N skipped")
// so CI can tell a run with tests from one without. With --e2e-durations it
// prints instead how long each e2e file took, longest first, as JSON for
// test/e2e/durations.json (the order vitest.config.ts starts e2e files in).
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

const args = process.argv.slice(2);
const durations = args.includes('--e2e-durations');
const reportFile = args.find((a) => !a.startsWith('--')) ?? '.test-report.json';
const report = JSON.parse(readFileSync(reportFile, 'utf8'));

if (durations) {
  const seconds = report.testResults
    .map((f) => [relative(process.cwd(), f.name), Math.round((f.endTime - f.startTime) / 1000)])
    .filter(([name]) => name.startsWith('test/e2e/') && !name.endsWith('zz-leftovers.test.ts'))
    .sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1));
  console.log(JSON.stringify(Object.fromEntries(seconds), null, 2));
  process.exit(0);
}

const skipped = report.numPendingTests + report.numTodoTests;
for (const file of report.testResults) {
  for (const t of file.assertionResults) {
    if (t.status === 'pending' || t.status === 'skipped') console.log(`  skipped: ${t.fullName}`);
  }
}
// Last, alone on its line: the totals CI reads.
console.log(`tests: ${report.numPassedTests} passed, ${report.numFailedTests} failed, ${skipped} skipped`);
