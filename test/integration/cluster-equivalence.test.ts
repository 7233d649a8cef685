/**
 * Cluster mode (clickhouse/CLUSTER.md) gives the numbers single-node mode gives: the same data set
 * goes into a single-node database (the shared ClickHouse) and, through the Distributed ingest
 * tables the way the consumer writes, into a private cluster of two shards (the first with two
 * replicas, ZooKeeper from deploy/local); the refresher runs over both, and every query path
 * (finished numbers, sketches from each rollup, the exact scan, the fact-table fallback of a
 * half-hour zone, the store's cache, event counts, dimension values) answers row for row alike.
 *
 * Short by default (seconds of data, for CI); CLUSTER_FULL=1 (`npm run test:cluster`) loads a data
 * set of thousands of users over 90 days and adds a second reporting zone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toIngestIdentifyRow } from '../../services/consumer/ingest-row.ts';
import { type ClickHouseClient, createClickHouse } from '../../services/lib/clickhouse.ts';
import { migrate } from '../../services/lib/datamodel/migrate.ts';
import { addDays, localDay } from '../../services/lib/finished-days.ts';
import { DAY_MS } from '../../services/lib/time.ts';
import { createClickHouseStore } from '../../services/query/clickhouse-store.ts';
import type { ActiveUsersQuery } from '../../services/query/params.ts';
import type { QueryStore } from '../../services/query/store.ts';
import { type PrivateCluster, privateCluster, TEST_CLUSTER } from '../harness/private-cluster.ts';
import { testRefresher } from '../harness/refresher.ts';
import { freshDatabase, type TestDatabase, uniqueName } from '../harness/services.ts';
import { type Dataset, generate } from './datamodel-dataset.ts';

const FULL = process.env.CLUSTER_FULL === '1';
const USERS = FULL ? 4000 : 150;
const DAYS = FULL ? 90 : 35;
const TZS = FULL ? ['UTC', 'Asia/Kolkata'] : ['UTC'];

const now = Date.now();
const today = localDay(now, 'UTC');

let cluster: PrivateCluster;
let single: TestDatabase;
let clusterDb: string;
/** Writes and refreshes on the first replica of shard 1. */
let writer: ClickHouseClient;
/** Reads as the query API's read-only user, on shard 2: any node answers for the whole cluster. */
let reader: ClickHouseClient;
let data: Dataset;

async function load(client: ClickHouseClient): Promise<void> {
  for (let i = 0; i < data.rows.length; i += 2000) {
    await client.insert({
      table: 'ingest_user_activity',
      format: 'JSONEachRow',
      values: data.rows.slice(i, i + 2000),
    });
  }
  await client.insert({
    table: 'ingest_user_identify',
    format: 'JSONEachRow',
    values: data.identifies.map(toIngestIdentifyRow),
  });
}

async function rowsOf<T>(client: ClickHouseClient, query: string): Promise<T[]> {
  return (await client.query({ query, format: 'JSONEachRow' })).json<T>();
}

beforeAll(async () => {
  [cluster, single] = await Promise.all([privateCluster('cluster_equiv'), freshDatabase('cluster_equiv')]);
  clusterDb = uniqueName('t_cluster_equiv');
  const [first, , shard2] = cluster.urls as [string, string, string];
  const admin = createClickHouse({ url: first });
  await admin.command({ query: `CREATE DATABASE IF NOT EXISTS ${clusterDb}` }).finally(() => admin.close());
  writer = createClickHouse({ url: first, database: clusterDb, requestTimeoutMs: 300_000 });
  reader = createClickHouse({ url: shard2, database: clusterDb, username: 'analytics_reader' });
  await migrate({ client: single.client, database: single.name });
  await migrate({ client: writer, database: clusterDb, cluster: TEST_CLUSTER });

  data = generate(23, USERS, DAYS, Date.parse(`${today}T00:00:00Z`) - DAY_MS);
  // Events today: the live day comes from the sketches even where finished numbers cover the rest.
  data.rows.push(
    ...data.rows
      .slice(0, 30)
      .map((r, i) => ({ ...r, event_id: `live-${i}`, activity_timestamp: now - i * 1000 })),
  );
  await Promise.all([load(single.client), load(writer)]);
  await cluster.syncReplicas(clusterDb);
  await Promise.all([testRefresher(single.client, TZS).pass(), testRefresher(writer, TZS).pass()]);
  await cluster.syncReplicas(clusterDb);
}, 600_000);

afterAll(async () => {
  await Promise.all([writer?.close(), reader?.close()]);
  // Minutes on a loaded machine after the full data set: the full run's 120 s ran out here.
  await Promise.all([single?.drop(), cluster?.destroy()]);
}, 600_000);

describe('cluster placement', () => {
  it("keeps each user's rows on one shard and both replicas of a shard alike", async () => {
    const [r1, r2, s2] = await Promise.all(
      cluster.urls.map(async (url) => {
        const c = createClickHouse({ url, database: clusterDb });
        const [row] = await rowsOf<{ rows: string; users: string }>(
          c,
          'SELECT count() AS rows, uniqExact(user_key) AS users FROM fact_user_activity_local',
        ).finally(() => c.close());
        return { rows: Number(row?.rows), users: Number(row?.users) };
      }),
    );
    const [all] = await rowsOf<{ rows: string; users: string }>(
      reader,
      'SELECT count() AS rows, uniqExact(user_key) AS users FROM fact_user_activity',
    );
    expect(r1?.rows).toBeGreaterThan(0);
    expect(s2?.rows).toBeGreaterThan(0);
    expect(r2).toEqual(r1);
    // Disjoint shards: the users of the two add up to the users of the whole.
    expect((r1?.users ?? 0) + (s2?.users ?? 0)).toBe(Number(all?.users));
    expect((r1?.rows ?? 0) + (s2?.rows ?? 0)).toBe(data.rows.length);
  });
});

describe('cluster numbers equal single-node numbers', () => {
  const finishedQuery = `SELECT tz, kind, value, day, dau, wau, mau, new_users
    FROM agg_active_users_daily FINAL
    WHERE (tz, day, computed_at) IN (SELECT tz, day, max(computed_at) FROM agg_active_users_days GROUP BY tz, day)
    ORDER BY tz, kind, value, day`;

  it("the refresher's finished numbers, every day, zone and slice", async () => {
    const [one, many] = await Promise.all([
      rowsOf(single.client, finishedQuery),
      rowsOf(reader, finishedQuery),
    ]);
    expect(one.length).toBeGreaterThan(DAYS * TZS.length);
    expect(many).toEqual(one);
  });

  const from = addDays(today, -13);
  const base: ActiveUsersQuery = {
    from,
    to: today,
    tz: 'UTC',
    filters: {},
    groupBy: [],
    window: 'rolling',
    exact: false,
    includeTest: false,
    includeBots: false,
  };
  // Each request with the source its answer must come from, so every path is taken.
  const requests: [string, ActiveUsersQuery, RegExp][] = [
    ['finished, all users', base, /^agg_active_users_daily\+rollup_users_hourly_total$/],
    [
      'finished, by country',
      { ...base, groupBy: ['country'] },
      /^agg_active_users_daily\+rollup_users_hourly_slice$/,
    ],
    ['sketches, calendar windows', { ...base, window: 'calendar' }, /^rollup_users_hourly_total$/],
    [
      'sketches, by feature filter',
      { ...base, window: 'calendar', filters: { feature: ['search', 'feed'] } },
      /^rollup_users_hourly_feature$/,
    ],
    [
      'sketches, two group-bys',
      { ...base, groupBy: ['device_type', 'segment'], includeTest: true },
      /^rollup_users_hourly_slice$/,
    ],
    ['exact scan', { ...base, exact: true, includeBots: true }, /^fact_user_activity$/],
    [
      'half-hour zone, fact fallback',
      { ...base, tz: 'Asia/Kolkata', window: 'calendar' },
      /^fact_user_activity$/,
    ],
  ];
  /** `clock`: the stores' clock; the cache keeps a day only once its newest mark is older. */
  const stores = (clock = () => now): [QueryStore, QueryStore] => {
    const o = { now: clock, cacheSettleMs: 0 };
    return [createClickHouseStore(single.client, o), createClickHouseStore(reader, o)];
  };

  it.each(requests)('active users: %s', async (_name, q, source) => {
    const [one, many] = stores();
    const [a, b] = await Promise.all([one.activeUsers(q), many.activeUsers(q)]);
    expect(a.source).toMatch(source);
    expect(b.source).toBe(a.source);
    expect(a.rows.length).toBeGreaterThan(0);
    expect(b.rows).toEqual(a.rows);
  });

  it("active users from the store's cache", async () => {
    const [one, many] = stores(Date.now);
    const q: ActiveUsersQuery = { ...base, window: 'calendar', groupBy: ['platform'] };
    const [a, b] = await Promise.all([one.activeUsers(q), many.activeUsers(q)]);
    const [a2, b2] = await Promise.all([one.activeUsers(q), many.activeUsers(q)]);
    expect(b2.cachedDays).toBeGreaterThan(0);
    expect(b2.cachedDays).toBe(a2.cachedDays);
    expect(b2.rows).toEqual(a2.rows);
    expect(b.rows).toEqual(a.rows);
    expect(b2.rows).toEqual(b.rows);
  });

  it('event counts and dimension values', async () => {
    const [one, many] = stores();
    const events = { ...base, groupBy: ['feature' as const] };
    expect((await many.eventCount(events)).rows).toEqual((await one.eventCount(events)).rows);
    const values = { ...base, dimension: 'country' as const, limit: 50 };
    expect((await many.dimensionValues(values)).values).toEqual((await one.dimensionValues(values)).values);
  });
});
