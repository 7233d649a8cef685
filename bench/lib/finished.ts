/**
 * Finished numbers in the benches (issue 11): the refresher's catch-up over a loaded database, and
 * the query store (the API's path) timed over 90-day views of the synthetic load. Shared by
 * scenario 4 (queries) and scenario 9 (the scale ladder).
 */
import type { ClickHouseClient } from '../../services/lib/clickhouse.ts';
import { createLogger } from '../../services/lib/logger.ts';
import { DAY_MS } from '../../services/lib/time.ts';
import { createClickHouseStore } from '../../services/query/clickhouse-store.ts';
import type { ActiveUsersQuery } from '../../services/query/params.ts';
import type { QueryStore, SeriesResult } from '../../services/query/store.ts';
import { readRefresherConfig } from '../../services/refresher/config.ts';
import { createRefresherMetrics } from '../../services/refresher/metrics.ts';
import { querySettings, Refresher } from '../../services/refresher/refresher.ts';
import { SYNTH_LAST_DAY } from '../../test/fixtures/synthetic.ts';
import { timedQuery } from './active-users.ts';
import { summary } from './measure.ts';

/**
 * One refresher pass over everything the load marked, with the service's default bounds (run
 * length, max_threads, spill thresholds: services/refresher/config.ts); `runDays` is the run length
 * it ended with (shorter than the default when a run exceeded the memory limit and was split).
 */
export async function catchUp(
  client: ClickHouseClient,
): Promise<{ days: number; seconds: number; runDays: number; splits: number }> {
  const c = readRefresherConfig({});
  const metrics = createRefresherMetrics();
  const refresher = new Refresher({
    client,
    timeZones: ['UTC'],
    // The load has ended: every mark stands for visible rows.
    settleMs: 0,
    runDays: c.REFRESH_RUN_DAYS,
    maxDaysPerPass: 100_000,
    intervalMs: 60_000,
    settings: querySettings({ maxThreads: c.REFRESH_MAX_THREADS, spillBytes: c.REFRESH_SPILL_BYTES }),
    metrics,
    logger: createLogger('bench-refresher', 'silent'),
  });
  const t0 = performance.now();
  const pass = await refresher.pass();
  const seconds = (performance.now() - t0) / 1000;
  const runDays = (await metrics.runDays.get()).values[0]?.value ?? c.REFRESH_RUN_DAYS;
  const splits = (await metrics.runSplits.get()).values[0]?.value ?? 0;
  return { days: pass.computed, seconds, runDays, splits };
}

/**
 * The store as the API builds it, with "today" two days after the synthetic data (every day of a
 * 90-day view is closed) and every mark taken as settled (the load ended before).
 */
export function benchStore(client: ClickHouseClient): QueryStore {
  return createClickHouseStore(client, {
    now: () => Date.parse(`${SYNTH_LAST_DAY}T00:00:00Z`) + 2 * DAY_MS,
    cacheSettleMs: Number.NEGATIVE_INFINITY,
  });
}

/** The synthetic load's last 90 days, rolling, UTC, default population; `over` sets the slice. */
export function ninetyDayQuery(over: Partial<ActiveUsersQuery> = {}): ActiveUsersQuery {
  return {
    from: new Date(Date.parse(`${SYNTH_LAST_DAY}T00:00:00Z`) - 89 * DAY_MS).toISOString().slice(0, 10),
    to: SYNTH_LAST_DAY,
    tz: 'UTC',
    window: 'rolling',
    filters: {},
    groupBy: [],
    includeTest: false,
    includeBots: false,
    exact: false,
    ...over,
  };
}

/** `runs` requests of one view: the first apart, p50 / p95 of the rest included. */
export async function timeView(
  store: QueryStore,
  q: ActiveUsersQuery,
  runs: number,
): Promise<{
  firstMs: number;
  p50: number;
  p95: number;
  repeat: ReturnType<typeof summary>;
  result: SeriesResult;
}> {
  const ms: number[] = [];
  let result: SeriesResult | undefined;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    result = await store.activeUsers(q);
    ms.push(performance.now() - t);
  }
  const all = summary(ms);
  return {
    firstMs: ms[0] ?? Number.NaN,
    p50: all.p50,
    p95: all.p95,
    repeat: summary(ms.slice(1)),
    result: result as SeriesResult,
  };
}

/** Bytes and rows of each table's active parts, as loaded (merges not forced). */
export async function tableSizes(
  clickhouseUrl: string,
  database: string,
): Promise<Map<string, { bytes: number; rows: number }>> {
  const { rows } = await timedQuery(
    clickhouseUrl,
    database,
    `SELECT table, toString(sum(bytes)) AS bytes, toString(sum(rows)) AS rows FROM system.parts
     WHERE database = currentDatabase() AND active GROUP BY table`,
  );
  return new Map(rows.map((r) => [String(r.table), { bytes: Number(r.bytes), rows: Number(r.rows) }]));
}
