// Mutation testing of the pure modules (`npm run test:mutation`; scores in docs/TESTING.md). It takes
// tens of minutes, so it is not part of CI; concurrency 1 because the machines it runs on are shared.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'test/mutation/vitest.config.ts', related: true },
  mutate: [
    'services/collector/validation/validate.ts',
    'services/consumer/batcher.ts',
    'services/query/params.ts',
    'services/query/sql/builder.ts',
    'services/lib/finished-days.ts',
  ],
  concurrency: 1,
  coverageAnalysis: 'perTest',
  reporters: ['clear-text', 'html', 'json', 'progress'],
  htmlReporter: { fileName: 'test/artifacts/mutation/index.html' },
  jsonReporter: { fileName: 'test/artifacts/mutation/mutation.json' },
  // The sandbox copies the project: not the local stacks' data, jars and reports.
  ignorePatterns: ['.data', 'test/artifacts', 'bench/out', 'coverage'],
  tempDirName: '.data/stryker-tmp',
  cleanTempDir: 'always',
};
