import { configDefaults, defineConfig } from 'vitest/config';

// Two projects: `unit` (beside the code, no I/O beyond the process) and `integration` (test/, against
// real Kafka and ClickHouse provided by test/harness/global-setup.ts). Integration files each use
// their own database and topics, so they can run in parallel and in any order. The long fault
// scenarios (test/faults/full/, outages of 30-60 s) are left to `npm run test:faults`
// (test/faults/vitest.config.ts), which runs them with the short ones.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: [
            'services/**/*.test.ts',
            'deploy/**/*.test.ts',
            'schemas/**/*.test.ts',
            'bench/**/*.test.ts',
          ],
          environment: 'node',
          // Property tests run thousands of cases: on a busy 2-core machine that can pass vitest's
          // 5 s default without anything being wrong (a timeout is not a speed check here).
          testTimeout: 30_000,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/faults/full/**'],
          environment: 'node',
          globalSetup: ['test/harness/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // 2-core machines: more workers than cores only adds contention with Kafka and ClickHouse.
          maxWorkers: 2,
          // Unit tests first (seconds), then integration: a broken build fails fast.
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
