import { defineConfig } from 'vitest/config';

// `npm run test:faults`: every fault scenario, the short ones that CI runs inside the integration
// project (test/faults/*.test.ts) and the long ones it leaves out (test/faults/full/, minutes each:
// outages of 30-60 s under load). One file at a time: each stops or freezes its own Kafka or
// ClickHouse under load, and two at once on 2 cores would measure each other. docs/RELIABILITY.md
// says which scenario is where and why.
export default defineConfig({
  root: new URL('../../', import.meta.url).pathname,
  test: {
    name: 'faults',
    include: ['test/faults/**/*.test.ts'],
    environment: 'node',
    globalSetup: ['test/harness/global-setup.ts'],
    testTimeout: 600_000,
    hookTimeout: 300_000,
    fileParallelism: false,
  },
});
