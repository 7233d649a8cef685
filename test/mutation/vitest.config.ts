import { defineConfig } from 'vitest/config';

// The unit tests of the modules stryker.config.json mutates, and nothing else: the root config's
// integration project needs Kafka and ClickHouse, which a mutation run has no use for.
export default defineConfig({
  test: {
    root: new URL('../../', import.meta.url).pathname,
    include: [
      'services/collector/validation/*.test.ts',
      'services/consumer/batcher.test.ts',
      'services/query/params.test.ts',
      'services/query/sql/builder.test.ts',
      'services/lib/finished-days.test.ts',
    ],
    environment: 'node',
    testTimeout: 60_000,
  },
});
