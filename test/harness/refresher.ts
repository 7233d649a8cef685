/**
 * The refresher (services/refresher/) for tests: one pass computes every closed day the inserts
 * marked. Marks and computed_at are whole seconds on ClickHouse's clock, so a pass waits until the
 * second of the latest insert is over; settle 0 because every insert awaited has ended.
 */
import type { ClickHouseClient } from '../../services/lib/clickhouse.ts';
import { createLogger } from '../../services/lib/logger.ts';
import { createRefresherMetrics } from '../../services/refresher/metrics.ts';
import { type PassResult, Refresher } from '../../services/refresher/refresher.ts';

export interface TestRefresher {
  readonly refresher: Refresher;
  /** Waits out the current second, then runs one pass. */
  readonly pass: () => Promise<PassResult>;
}

export function testRefresher(
  client: ClickHouseClient,
  timeZones: readonly string[] = ['UTC'],
): TestRefresher {
  const refresher = new Refresher({
    client,
    timeZones,
    settleMs: 0,
    runDays: 7,
    maxDaysPerPass: 400,
    intervalMs: 60_000,
    metrics: createRefresherMetrics(),
    logger: createLogger('refresher-test', 'silent'),
  });
  return {
    refresher,
    pass: async () => {
      await new Promise((r) => setTimeout(r, 1_100));
      return refresher.pass();
    },
  };
}
