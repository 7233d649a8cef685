/**
 * The refresher under ClickHouse's per-query memory limit (issue 11: bounded in memory; the scale
 * ladder's 30M rung failed on it). A run of days whose exact counts exceed the limit is computed
 * again in halves and the numbers equal those of an unlimited refresher on the same data; a single
 * day over the limit fails the pass (retried every interval) and marks nothing finished.
 *
 * The limit is calibrated on this server, not hard-coded: the memory a 7-day run and a 1-day run
 * take (system.query_log) on the test's data, and a limit between the two.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClickHouseClient, ClickHouseSettings } from '../../services/lib/clickhouse.ts';
import { migrate } from '../../services/lib/datamodel/migrate.ts';
import { addDays, isoDay } from '../../services/lib/finished-days.ts';
import { createLogger } from '../../services/lib/logger.ts';
import { DAY_MS } from '../../services/lib/time.ts';
import { createRefresherMetrics, type RefresherMetrics } from '../../services/refresher/metrics.ts';
import { Refresher } from '../../services/refresher/refresher.ts';
import { newUsersQuery, windowsQuery } from '../../services/refresher/sql.ts';
import { loadSynthetic } from '../fixtures/synthetic.ts';
import { freshDatabase, type TestDatabase } from '../harness/services.ts';

const DAYS = 14;
// Closed days well before today: every day a window of the data reaches is due.
const LAST_DAY = isoDay(Math.floor(Date.now() / DAY_MS) * DAY_MS - 40 * DAY_MS);
const FIRST_DAY = addDays(LAST_DAY, -(DAYS - 1));
const ONE_THREAD: ClickHouseSettings = { max_threads: 1 };

let limited: TestDatabase;
let reference: TestDatabase;
/** Peak memory of the largest 7-day run and of the largest single day, on this server. */
let week: number;
let day: number;

async function load(db: TestDatabase): Promise<void> {
  await migrate({ client: db.client, database: db.name });
  // Almost every event from its own user (ids drawn from ten times as many): exact counts hold
  // many distinct users per day, so a run's memory grows with its days.
  await loadSynthetic(db.client, {
    events: 40_000,
    users: 400_000,
    chunk: 40_000,
    seed: 3,
    log: () => {},
    lastDay: LAST_DAY,
    days: DAYS,
  });
}

/** Peak memory of one query as ClickHouse accounted it. */
async function memoryOf(client: ClickHouseClient, query: string): Promise<number> {
  const id = `refmem-${Math.random().toString(36).slice(2)}`;
  await (
    await client.query({
      query,
      format: 'JSONEachRow',
      query_id: id,
      clickhouse_settings: { ...ONE_THREAD, log_queries: 1 },
    })
  ).json();
  // The query log is written in the background; a flush makes it visible, but 18.16 may still
  // show it a moment later.
  for (let attempt = 0; attempt < 50; attempt++) {
    await client.command({ query: 'SYSTEM FLUSH LOGS' });
    const [row] = await (
      await client.query({
        query: `SELECT memory_usage FROM system.query_log WHERE query_id = '${id}' AND type = 2`,
        format: 'JSONEachRow',
      })
    ).json<{ memory_usage: string }>();
    if (row) return Number(row.memory_usage);
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`query ${id} never reached system.query_log`);
}

function refresher(
  client: ClickHouseClient,
  settings: ClickHouseSettings,
  metrics: RefresherMetrics,
): Refresher {
  return new Refresher({
    client,
    timeZones: ['UTC'],
    settleMs: 0,
    runDays: 7,
    maxDaysPerPass: 400,
    intervalMs: 60_000,
    settings,
    metrics,
    logger: createLogger('refresher-memory-test', 'silent'),
  });
}

const metricValue = async (m: { get: () => Promise<{ values: { value: number }[] }> }) =>
  (await m.get()).values[0]?.value ?? 0;

async function finished(client: ClickHouseClient): Promise<string[]> {
  const rows = await (
    await client.query({
      query: `SELECT toString(day) AS day, kind, value, dau, wau, mau, new_users
        FROM agg_active_users_daily FINAL WHERE tz = 'UTC' ORDER BY day, kind, value`,
      format: 'JSONEachRow',
    })
  ).json<Record<string, unknown>>();
  return rows.map((r) => JSON.stringify(r));
}

beforeAll(async () => {
  [limited, reference] = await Promise.all([freshDatabase('refmem'), freshDatabase('refmemref')]);
  await Promise.all([load(limited), load(reference)]);
  // The pass's runs start at the first data day; the second 7-day run ends on the last one, whose
  // windows hold every user of the data: the largest run and the largest single day.
  week = await memoryOf(limited.client, windowsQuery('UTC', addDays(LAST_DAY, -6), LAST_DAY));
  day = Math.max(
    await memoryOf(limited.client, windowsQuery('UTC', LAST_DAY, LAST_DAY)),
    await memoryOf(limited.client, newUsersQuery('UTC', LAST_DAY, LAST_DAY)),
  );
  // Marks and computed_at are whole seconds: let the inserts' second pass.
  await new Promise((r) => setTimeout(r, 1_100));
}, 120_000);
afterAll(async () => {
  await Promise.all([limited?.drop(), reference?.drop()]);
});

describe('refresher under the memory limit', () => {
  it('splits a run that exceeds the limit and computes the same numbers as without a limit', async () => {
    // The calibration holds only if a week's run needs clearly more than a day's.
    expect(week / day).toBeGreaterThan(1.5);
    const limit = Math.round(Math.sqrt(week * day));

    const metrics = createRefresherMetrics();
    const pass = await refresher(
      limited.client,
      { ...ONE_THREAD, max_memory_usage: String(limit) },
      metrics,
    ).pass();
    const unlimited = await refresher(reference.client, ONE_THREAD, createRefresherMetrics()).pass();

    expect(pass).toMatchObject({ computed: unlimited.computed, pending: 0 });
    expect(pass.computed).toBeGreaterThanOrEqual(DAYS);
    expect(await metricValue(metrics.runSplits)).toBeGreaterThan(0);
    expect(await metricValue(metrics.runDays)).toBeLessThan(7);
    const rows = await finished(limited.client);
    expect(rows.length).toBeGreaterThan(DAYS);
    expect(rows).toEqual(await finished(reference.client));
    // Every data day has its numbers (the comparison above would pass on two empty tables).
    expect(rows.filter((r) => r.includes(`"day":"${FIRST_DAY}","kind":0`))).toHaveLength(1);
  }, 300_000);

  it('fails the pass when a single day exceeds the limit, and a later pass within it computes the day', async () => {
    const metrics = createRefresherMetrics();
    const dauOfLastDay = async () =>
      Number(
        (
          await (
            await reference.client.query({
              query: `SELECT dau FROM agg_active_users_daily FINAL WHERE tz = 'UTC' AND kind = 0 AND day = '${LAST_DAY}'`,
              format: 'JSONEachRow',
            })
          ).json<{ dau: number }>()
        )[0]?.dau,
      );
    const before = await dauOfLastDay();
    // Under a single day's need (the pass's small reads of marks and finished days stay under it).
    const r = refresher(
      reference.client,
      { ...ONE_THREAD, max_memory_usage: String(Math.round(day / 2)) },
      metrics,
    );
    // The reference database is finished: a new event on its last day makes days due again.
    await reference.client.insert({
      table: 'ingest_user_activity',
      format: 'JSONEachRow',
      values: [
        {
          event_id: 'late-1',
          source: 'test',
          received_at: Date.now(),
          activity_timestamp: Date.parse(`${LAST_DAY}T12:00:00Z`),
          user_id: 'late-user',
          actor_id: 'late-user',
          activity_name: 'view',
        },
      ],
    });
    await new Promise((res) => setTimeout(res, 1_100));
    // Splitting stops at the first single day over the limit (newest first: a split's single-day
    // tail can come before its longer head), so the run length it ends with is not always 1.
    await expect(r.pass()).rejects.toMatchObject({ message: expect.stringMatching(/241|[Mm]emory limit/) });
    expect(await metricValue(metrics.runSplits)).toBeGreaterThan(0);
    expect(await metricValue(metrics.runDays)).toBeLessThan(7);
    // Nothing was marked finished that was not computed: the late user is not counted yet, and a
    // pass within the server's limit counts it.
    expect(await dauOfLastDay()).toBe(before);
    const retry = await refresher(reference.client, ONE_THREAD, createRefresherMetrics()).pass();
    expect(retry.computed).toBeGreaterThan(0);
    expect(await dauOfLastDay()).toBe(before + 1);
  }, 120_000);
});
