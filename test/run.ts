/**
 * The README's test command (`npm test`): typecheck, lint, then every vitest project (unit and
 * integration against real Kafka and ClickHouse), ending with one plain line `N passed, M failed`
 * for the whole suite. Exit status is non-zero when anything failed.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = new URL('../', import.meta.url).pathname;
const report = join(ROOT, '.data', 'vitest-report.json');
mkdirSync(join(ROOT, '.data'), { recursive: true });

interface Step {
  readonly name: string;
  readonly cmd: string;
  readonly args: readonly string[];
}

const checks: Step[] = [
  { name: 'typecheck', cmd: 'tsc', args: ['-p', 'tsconfig.json'] },
  { name: 'lint', cmd: 'biome', args: ['check', '.'] },
  // The query service serves the built dashboard (integration tests start it).
  { name: 'build dashboard', cmd: process.execPath, args: ['services/query/dashboard/build.ts'] },
];

let passed = 0;
let failed = 0;
let skipped = 0;

for (const step of checks) {
  process.stderr.write(`\n== ${step.name}\n`);
  const r = spawnSync(step.cmd, step.args, { cwd: ROOT, stdio: 'inherit' });
  if (r.status === 0) passed += 1;
  else failed += 1;
  if (r.status !== 0) process.stderr.write(`${step.name} failed (exit ${r.status})\n`);
}

process.stderr.write('\n== vitest\n');
const extra = process.argv.slice(2);
const v = spawnSync(
  'vitest',
  ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...extra],
  {
    cwd: ROOT,
    stdio: 'inherit',
  },
);

let vitestFailures = 0;
try {
  const json = JSON.parse(readFileSync(report, 'utf8')) as {
    numPassedTests: number;
    numFailedTests: number;
    numPendingTests: number;
    numTodoTests: number;
    testResults: { status: string; assertionResults: unknown[] }[];
  };
  passed += json.numPassedTests;
  vitestFailures += json.numFailedTests;
  skipped += json.numPendingTests + json.numTodoTests;
  // A test file that failed to load or whose hooks failed has no failed assertion; count it.
  vitestFailures += json.testResults.filter(
    (f) => f.status === 'failed' && f.assertionResults.length === 0,
  ).length;
} catch {
  process.stderr.write('vitest wrote no report\n');
}
// vitest can fail outside any test (config error, unhandled error): that is a failure too.
if (v.status !== 0 && vitestFailures === 0) vitestFailures = 1;
failed += vitestFailures;

process.stdout.write(`\n${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}\n`);
process.exitCode = failed > 0 ? 1 : 0;
