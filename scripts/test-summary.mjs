// Prints vitest's totals as one plain line ("N passed, N failed, N skipped")
// so CI can tell a run with tests from one without.
import { readFileSync } from 'node:fs';

const report = JSON.parse(readFileSync(process.argv[2] ?? '.test-report.json', 'utf8'));
const skipped = report.numPendingTests + report.numTodoTests;
for (const file of report.testResults) {
  for (const t of file.assertionResults) {
    if (t.status === 'pending' || t.status === 'skipped') console.log(`  skipped: ${t.fullName}`);
  }
}
// Last, alone on its line: the totals CI reads.
console.log(`tests: ${report.numPassedTests} passed, ${report.numFailedTests} failed, ${skipped} skipped`);
