/**
 * Cluster mode (clickhouse/CLUSTER.md) gives the numbers single-node mode gives: the same data set
 * goes into a single-node database (the shared ClickHouse) and, through the Distributed ingest
 * tables the way the consumer writes, into a private cluster of two shards (the first with two
 * replicas, ZooKeeper from deploy/local); the refresher runs over both, and every query path
 * (finished numbers, sketches from each rollup, the exact scan, the fact-table fallback of a
 * half-hour zone, the store's cache, event counts, dimension values) answers row for row alike.
 *
 * Short by default (seconds of data, for CI); CLUSTER_FULL=1 (`npm run test:cluster`) loads a data
 * set of thousands of users over 90 days, adds a second reporting zone, and runs the operations
 * (user deletion, retention, rollup rebuild) in their cluster form.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toIngestIdentifyRow } from '../../services/consumer/ingest-row.ts';
import { type ClickHouseClient, createClickHouse } from '../../services/lib/clickhouse.ts';
import { migrate } from '../../services/lib/datamodel/migrate.ts';
import { rebuildRollups } from '../../services/lib/datamodel/rebuild.ts';
import { dropOldFactPartitions } from '../../services/lib/datamodel/retention.ts';
import { addDays, localDay } from '../../services/lib/finished-days.ts';
import { DAY_MS } from '../../services/lib/time.ts';
import { createClickHouseStore } from '../../services/query/clickhouse-store.ts';
import { type DeletionReport, deleteUser, deletionWhere } from '../../services/query/delete-user.ts';
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

const finishedQuery = `SELECT tz, kind, value, day, dau, wau, mau, new_users
  FROM agg_active_users_daily FINAL
  WHERE (tz, day, computed_at) IN (SELECT tz, day, max(computed_at) FROM agg_active_users_days GROUP BY tz, day)
  ORDER BY tz, kind, value, day`;

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
  it("the refresher's finished numbers, every day, zone and slice", async () => {
    const [one, many] = await Promise.all([
      rowsOf(single.client, finishedQuery),
      rowsOf(reader, finishedQuery),
    ]);
    expect(one.length).toBeGreaterThan(DAYS * TZS.length);
    expect(many).toEqual(one);
  });

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

/**
 * The operations on the data (services/lib/datamodel/cluster-ops.ts) in their cluster form, after
 * the same operation in its single-node form on the single node: the answers stay equal, and on
 * every node each hourly rollup still counts exactly the users of that shard's facts (a state sent
 * to the wrong shard, or left from a deleted user, breaks that even where a merged count hides it).
 */
// Full runs only (`npm run test:cluster`): 18.16's DDL worker once ran one of these ON CLUSTER
// statements on both replicas of a shard under load, the second replica's worker stopped ("Node
// exists"), and every later ON CLUSTER statement waited out its 180 s timeout (clickhouse/CLUSTER.md).
// Seen once in seven runs on a busy machine; in CI it would cost minutes and a red run, so the CI
// suite keeps the equivalence checks above and these run where a hang costs nobody a merge. Not
// registered at all in the short run (as test/faults/full/ is not), so CI reports no skipped tests.
const describeFull = FULL ? describe : (_name: string, _body: () => void): void => {};
describeFull('operations in cluster form leave the single-node answers', () => {
  const onCluster = () => ({ cluster: TEST_CLUSTER, database: clusterDb });
  const HOURLY = ['rollup_users_hourly_total', 'rollup_users_hourly_feature', 'rollup_users_hourly_slice'];
  const monthly = [
    'SELECT toYYYYMM(activity_timestamp) AS m, count() AS n, uniqExact(user_key) AS users FROM fact_user_activity GROUP BY m ORDER BY m',
    'SELECT count() AS n FROM fact_activity_details',
    ...HOURLY.map(
      (t) => `SELECT toYYYYMM(hour) AS m, uniqMerge(users) AS users FROM ${t} GROUP BY m ORDER BY m`,
    ),
  ];

  /** Every path's answers, the finished numbers and the monthly counts, after a refresher pass. */
  async function answers(): Promise<[unknown[], unknown[]]> {
    await cluster.syncReplicas(clusterDb);
    await Promise.all([testRefresher(single.client, TZS).pass(), testRefresher(writer, TZS).pass()]);
    await cluster.syncReplicas(clusterDb);
    const [one, many] = stores();
    // One query at a time: the reader's profile caps its concurrent queries.
    const read = async (store: QueryStore, client: ClickHouseClient): Promise<unknown[]> => {
      const out: unknown[] = [];
      for (const [, q] of requests) out.push((await store.activeUsers(q)).rows);
      for (const q of [finishedQuery, ...monthly]) out.push(await rowsOf(client, q));
      return out;
    };
    return Promise.all([read(one, single.client), read(many, reader)]);
  }

  /** Per node: users per month in each hourly rollup = users per month in the node's facts. */
  async function expectRollupsFollowFacts(): Promise<void> {
    for (const url of cluster.urls) {
      const c = createClickHouse({ url, database: clusterDb });
      try {
        const facts = await rowsOf<{ m: number; users: string }>(
          c,
          'SELECT toYYYYMM(activity_timestamp) AS m, uniqExact(user_key) AS users FROM fact_user_activity_local GROUP BY m ORDER BY m',
        );
        expect(facts.length).toBeGreaterThan(0);
        for (const t of HOURLY) {
          const rollup = await rowsOf<{ m: number; users: string }>(
            c,
            `SELECT toYYYYMM(hour) AS m, uniqMerge(users) AS users FROM ${t}_local
             WHERE toYYYYMM(hour) IN (SELECT toYYYYMM(activity_timestamp) FROM fact_user_activity_local)
             GROUP BY m ORDER BY m`,
          );
          expect(rollup, `${url} ${t}`).toEqual(facts);
        }
        // The rebuild's routes are gone.
        expect(
          await rowsOf(
            c,
            "SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE '%rebuild%'",
          ),
        ).toEqual([]);
      } finally {
        await c.close();
      }
    }
  }

  it('deleting a user removes them from every shard and replica', async () => {
    const victim = data.identifies[0]?.user_id ?? '';
    const [linked] = await rowsOf<{ ids: string[] }>(
      single.client,
      `SELECT groupUniqArray(anonymous_id) AS ids FROM identity_map WHERE user_id = '${victim}'`,
    );
    const own = deletionWhere(victim, linked?.ids ?? []);
    const events = (
      await rowsOf<{ e: string }>(
        single.client,
        `SELECT event_id AS e FROM fact_user_activity WHERE ${own.fact_user_activity}`,
      )
    ).map((r) => `'${r.e}'`);
    expect(events.length).toBeGreaterThan(0);
    const left = async (client: ClickHouseClient, local: string): Promise<number[]> =>
      Promise.all(
        [
          `SELECT count() AS n FROM fact_user_activity${local} WHERE ${own.fact_user_activity}`,
          `SELECT count() AS n FROM fact_activity_details${local} WHERE event_id IN (${events.join(', ')})`,
          ...['dim_users', 'rollup_user_first_seen', 'identity_map'].map(
            (t) => `SELECT count() AS n FROM ${t}${local} WHERE ${own[t]}`,
          ),
        ].map(async (q) => Number((await rowsOf<{ n: string }>(client, q))[0]?.n)),
      );
    expect((await left(reader, '')).every((n) => n > 0)).toBe(true);

    const [a, b] = await Promise.all([
      deleteUser({ client: single.client, userId: victim, requestedBy: 'test' }),
      deleteUser({ client: writer, userId: victim, requestedBy: 'test', cluster: onCluster() }),
    ]);
    // Not the reports' row counts: counted without FINAL, they hold what merges have not yet
    // collapsed, which differs between servers.
    const same = ({ userKey, linkedIds, months }: DeletionReport) => ({ userKey, linkedIds, months });
    expect(same(b)).toEqual(same(a));
    await cluster.syncReplicas(clusterDb);
    for (const url of cluster.urls) {
      const c = createClickHouse({ url, database: clusterDb });
      expect(await left(c, '_local').finally(() => c.close()), url).toEqual([0, 0, 0, 0, 0]);
    }
    const [one, many] = await answers();
    expect(many).toEqual(one);
    await expectRollupsFollowFacts();
  });

  it('retention drops the oldest month on every shard', async () => {
    const oldest = new Date(data.rows.reduce((m, r) => Math.min(m, Number(r.activity_timestamp)), Infinity));
    // keep one month, as of a day two months after the oldest: the oldest month goes, no other.
    const asOf = new Date(Date.UTC(oldest.getUTCFullYear(), oldest.getUTCMonth() + 2, 15));
    const month = oldest.getUTCFullYear() * 100 + oldest.getUTCMonth() + 1;
    const [a, b] = await Promise.all([
      dropOldFactPartitions({ client: single.client, keepMonths: 1, now: asOf }),
      dropOldFactPartitions({ client: writer, keepMonths: 1, now: asOf, cluster: onCluster() }),
    ]);
    expect(a.dropped).toContain(`fact_user_activity:${month}`);
    expect(b.dropped).toEqual(a.dropped);
    const [one, many] = await answers();
    expect(many).toEqual(one);
  });

  it('rebuilding a month of rollups leaves every answer as it was', async () => {
    const [before] = await answers();
    const range = { from: `${today.slice(0, 7)}-01`, to: today };
    await Promise.all([
      rebuildRollups({ client: single.client, ...range }),
      rebuildRollups({ client: writer, ...range, cluster: onCluster() }),
    ]);
    const [one, many] = await answers();
    expect(one).toEqual(before);
    expect(many).toEqual(one);
    await expectRollupsFollowFacts();
  });
});
