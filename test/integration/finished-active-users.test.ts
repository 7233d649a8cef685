/**
 * Finished active-user numbers against the real ClickHouse (18.16): the refresher computes closed
 * days exactly (every canonical slice, a whole-hour and a half-hour zone), the query store serves
 * them stitched with today's sketches and says per row which is exact, a late event on a closed day
 * makes its day and the 29 after it stale until the next pass recomputes them, and a pass with
 * nothing new computes nothing. Truth is computed from the inserted events (datamodel-dataset.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../services/lib/datamodel/migrate.ts';
import { dropOldFactPartitions } from '../../services/lib/datamodel/retention.ts';
import { addDays, FINISHED_DIMENSIONS, kindOf } from '../../services/lib/finished-days.ts';
import { DAY_MS } from '../../services/lib/time.ts';
import { createClickHouseStore } from '../../services/query/clickhouse-store.ts';
import type { ActiveUsersQuery } from '../../services/query/params.ts';
import { spawnService, waitFor } from '../harness/consumer-process.ts';
import { type TestRefresher, testRefresher } from '../harness/refresher.ts';
import {
  clickhouseUrl,
  freshDatabase,
  kafkaBrokers,
  type TestDatabase,
  uniqueName,
} from '../harness/services.ts';
import { type Dataset, generate, localDay, truth } from './datamodel-dataset.ts';

const TZS = ['UTC', 'Asia/Kolkata'];
let db: TestDatabase;
let data: Dataset;
let refresher: TestRefresher;
const now = Date.now();
const todayUtc = Math.floor(now / DAY_MS) * DAY_MS;

async function rowsOf<T>(sql: string, client = db.client): Promise<T[]> {
  const rs = await client.query({ query: sql, format: 'JSONEachRow' });
  return rs.json<T>();
}

async function insert(rows: readonly object[], client = db.client): Promise<void> {
  for (let i = 0; i < rows.length; i += 5000)
    await client.insert({
      table: 'ingest_user_activity',
      format: 'JSONEachRow',
      values: rows.slice(i, i + 5000),
    });
}

beforeAll(async () => {
  db = await freshDatabase('finished');
  await migrate({ client: db.client, database: db.name });
  data = generate(11, 400, 70, todayUtc - DAY_MS);
  // A few events today (UTC), so the live day has numbers that only sketches can give.
  const live = data.rows
    .slice(0, 40)
    .map((r, i) => ({ ...r, event_id: `live-${i}`, activity_timestamp: now - i * 1000 }));
  data.rows.push(...live);
  await insert(data.rows);
  refresher = testRefresher(db.client, TZS);
}, 120_000);
afterAll(async () => {
  await db?.drop();
});

interface Finished {
  day: string;
  kind: number;
  value: string;
  dau: number;
  wau: number;
  mau: number;
  new_users: number;
}

const finishedRows = (tz: string, kind: number, day: string) =>
  rowsOf<Finished>(`SELECT toString(day) AS day, kind, value, dau, wau, mau, new_users
    FROM agg_active_users_daily FINAL WHERE tz = '${tz}' AND kind = ${kind} AND day = '${day}' ORDER BY value`);

describe('refresher', () => {
  it('computes every closed day exactly, for all users and each canonical slice, in each zone', async () => {
    const first = await refresher.pass();
    expect(first.pending).toBe(0);
    // 70 days of data and the 29 after each (capped at yesterday), in two zones.
    expect(first.computed).toBeGreaterThanOrEqual(2 * 69);
    for (const tz of TZS) {
      const yesterday = addDays(localDay(now, tz), -1);
      for (const day of [yesterday, addDays(yesterday, -9), addDays(yesterday, -40)]) {
        const all = truth(data.rows, { from: day, to: day, tz, filters: {}, groupBy: [] }).get(`${day}\0[]`);
        expect(await finishedRows(tz, 0, day), `${tz} ${day}`).toEqual([
          { day, kind: 0, value: '', dau: all?.dau, wau: all?.wau, mau: all?.mau, new_users: all?.new_users },
        ]);
        for (const d of FINISHED_DIMENSIONS) {
          const t = truth(data.rows, { from: day, to: day, tz, filters: {}, groupBy: [d] });
          const want = [...t.values()]
            .map((x) => ({
              day,
              kind: kindOf(d),
              value: (JSON.parse(x.group) as string[])[0] as string,
              dau: x.dau,
              wau: x.wau,
              mau: x.mau,
              new_users: x.new_users,
            }))
            .sort((a, b) => (a.value < b.value ? -1 : 1));
          expect(await finishedRows(tz, kindOf(d), day), `${tz} ${day} ${d}`).toEqual(want);
        }
      }
      // Today is never finished.
      expect(await finishedRows(tz, 0, localDay(now, tz))).toEqual([]);
    }
  });

  it('computes nothing again when nothing new arrived (idempotent)', async () => {
    expect(await refresher.pass()).toEqual({ computed: 0, pending: 0, waiting: 0 });
  });
});

describe('query store over finished numbers', () => {
  const store = () => createClickHouseStore(db.client, { now: () => now, maxGroups: 1000 });
  const query = (over: Partial<ActiveUsersQuery> = {}): ActiveUsersQuery => ({
    from: addDays(localDay(now, 'UTC'), -39),
    to: localDay(now, 'UTC'),
    tz: 'UTC',
    filters: {},
    includeTest: false,
    includeBots: false,
    window: 'rolling',
    groupBy: [],
    exact: false,
    ...over,
  });

  it('serves closed days exact from finished numbers and today from sketches, in one series', async () => {
    const q = query();
    const r = await store().activeUsers(q);
    const want = truth(data.rows, { from: q.from, to: q.to, tz: 'UTC', filters: {}, groupBy: [] });
    expect(r.finishedDays).toBe(39);
    expect(r.rows).toHaveLength(40);
    for (const row of r.rows) {
      const t = want.get(`${row.date}\0[]`);
      const live = row.date === q.to;
      expect(row.exact, String(row.date)).toBe(!live);
      // Sketches are exact at this size too (uniq is exact below 65,536 distinct values).
      expect(row, String(row.date)).toMatchObject({
        dau: t?.dau,
        wau: t?.wau,
        mau: t?.mau,
        new_users: t?.new_users,
      });
    }
    expect(r.source).toMatch(/^agg_active_users_daily\+rollup_users_hourly_total$/);
  });

  it('serves a group-by and a one-value filter on a canonical slice from finished numbers', async () => {
    const grouped = await store().activeUsers(query({ groupBy: ['country'] }));
    const want = truth(data.rows, { ...query(), groupBy: ['country'] });
    expect(grouped.finishedDays).toBe(39);
    for (const row of grouped.rows) {
      const t = want.get(`${row.date}\0${JSON.stringify([row.country])}`);
      expect(row, `${row.date} ${row.country}`).toMatchObject({ dau: t?.dau, mau: t?.mau });
    }
    expect(grouped.rows.length).toBe(want.size);
    const filtered = await store().activeUsers(query({ filters: { feature: ['search'] } }));
    expect(filtered.finishedDays).toBe(39);
    const wantF = truth(data.rows, { ...query(), filters: { feature: ['search'] } });
    for (const row of filtered.rows) expect(row.mau).toBe(wantF.get(`${row.date}\0[]`)?.mau);
    // Not covered (two values are OR-ed; calendar windows): sketches only.
    expect(
      (await store().activeUsers(query({ filters: { feature: ['search', 'export'] } }))).finishedDays,
    ).toBe(0);
    expect((await store().activeUsers(query({ window: 'calendar' }))).finishedDays).toBe(0);
  });

  it('a late event on a closed day is served at once from sketches and finished again after a pass', async () => {
    const late = addDays(localDay(now, 'UTC'), -12);
    const lateMs = Date.parse(`${late}T10:00:00Z`);
    const newcomer = {
      ...data.rows[0],
      event_id: 'late-1',
      actor_id: 'late-user',
      user_id: 'late-user',
      activity_timestamp: lateMs,
    };
    const before = await store().activeUsers(query());
    await insert([newcomer]);
    data.rows.push(newcomer as (typeof data.rows)[number]);
    const stale = await store().activeUsers(query());
    const byDay = (rows: typeof stale.rows) => new Map(rows.map((r) => [String(r.date), r]));
    const b = byDay(before.rows);
    const s = byDay(stale.rows);
    // The late day and every later day whose 30-day window holds it are no longer finished.
    expect(stale.finishedDays).toBe(39 - 12);
    expect(s.get(late)).toMatchObject({
      exact: false,
      dau: Number(b.get(late)?.dau) + 1,
      mau: Number(b.get(late)?.mau) + 1,
    });
    expect(s.get(addDays(late, -1))).toMatchObject({ exact: true, mau: b.get(addDays(late, -1))?.mau });

    const pass = await refresher.pass();
    // Every closed day from the late one (10:00Z is the same date in Kolkata) to yesterday, per zone.
    const closedFrom = (tz: string) => (Date.parse(localDay(now, tz)) - Date.parse(late)) / DAY_MS;
    expect(pass.computed).toBe(closedFrom('UTC') + closedFrom('Asia/Kolkata'));
    const fresh = await store().activeUsers(query());
    expect(fresh.finishedDays).toBe(39);
    const f = byDay(fresh.rows);
    const want = truth(data.rows, { ...query(), filters: {}, groupBy: [] });
    for (let d = late; d < localDay(now, 'UTC'); d = addDays(d, 1)) {
      expect(f.get(d), d).toMatchObject({
        exact: true,
        mau: want.get(`${d}\0[]`)?.mau,
        new_users: want.get(`${d}\0[]`)?.new_users,
      });
      expect(f.get(d)?.mau, d).toBe(Number(b.get(d)?.mau) + 1);
    }
  });

  it('keeps closed days of estimated answers until a mark says they changed', async () => {
    // Marks are seconds old here: trusted at once (the default waits two minutes).
    const cached = createClickHouseStore(db.client, { now: Date.now, cacheSettleMs: 0 });
    const q = query({ window: 'calendar', groupBy: ['platform'] });
    const first = await cached.activeUsers(q);
    expect(first.cachedDays).toBe(0);
    const again = await cached.activeUsers(q);
    // Every closed day of the range from the cache, today queried again.
    expect(again.cachedDays).toBe(39);
    expect(again.source).toMatch(/\+cache$/);
    expect(again.rows).toEqual(first.rows);
    const late = addDays(localDay(now, 'UTC'), -20);
    const user = {
      ...data.rows[1],
      event_id: 'late-2',
      actor_id: 'late-user-2',
      user_id: 'late-user-2',
      activity_timestamp: Date.parse(`${late}T08:00:00Z`),
    };
    await insert([user]);
    data.rows.push(user as (typeof data.rows)[number]);
    const after = await cached.activeUsers(q);
    // Calendar windows: the late day and the rest of its month to date changed; other days did not.
    const want = truth(data.rows, { ...q, filters: {}, groupBy: ['platform'], window: 'calendar' });
    expect(after.cachedDays).toBeLessThan(39);
    expect(after.cachedDays).toBeGreaterThan(0);
    for (const row of after.rows)
      expect(row, `${row.date} ${row.platform}`).toMatchObject({
        dau: want.get(`${row.date}\0${JSON.stringify([row.platform])}`)?.dau,
      });
    const platform = (user as { platform: string | null }).platform ?? '';
    const day = after.rows.find((r) => r.date === late && r.platform === platform);
    const before = first.rows.find((r) => r.date === late && r.platform === platform);
    expect(Number(day?.dau)).toBe(Number(before?.dau ?? 0) + 1);
  });

  it('refuses a sketch group-by over more groups than the cap before running it', async () => {
    const capped = createClickHouseStore(db.client, { now: () => now, maxGroups: 2 });
    // Finished numbers are cheap whatever the groups: the cap is not applied to them (days before
    // the late events of the tests above, so still finished)...
    const early = await capped.activeUsers(
      query({
        from: addDays(localDay(now, 'UTC'), -30),
        to: addDays(localDay(now, 'UTC'), -25),
        groupBy: ['country'],
      }),
    );
    expect(early.finishedDays).toBe(6);
    expect(early.rows.length).toBeGreaterThan(2 * 6);
    // ...but a sketch group-by (test accounts included) over the same countries is a 400 naming it.
    await expect(
      capped.activeUsers(query({ groupBy: ['country'], includeTest: true })),
    ).rejects.toMatchObject({
      statusCode: 400,
      detail: {
        problems: [
          {
            param: 'group_by',
            message: expect.stringMatching(/groups .* more than the 2 allowed \(QUERY_MAX_GROUPS\)/),
          },
        ],
      },
    });
  });

  it('dim_agg_daily_active shows the finished UTC numbers with the seed columns', async () => {
    await refresher.pass();
    const day = addDays(localDay(now, 'UTC'), -3);
    const t = truth(data.rows, { ...query(), from: day, to: day }).get(`${day}\0[]`);
    const [row] = await rowsOf<Record<string, number | null>>(
      `SELECT dau_count, wau_count, mau_count, new_user_count, returning_user_count, feature_key
       FROM dim_agg_daily_active WHERE date_key = ${day.replaceAll('-', '')} AND feature_key IS NULL
         AND device_type_key IS NULL AND geography_country_key IS NULL AND user_segment_key IS NULL`,
    );
    expect(row).toEqual({
      dau_count: t?.dau,
      wau_count: t?.wau,
      mau_count: t?.mau,
      new_user_count: t?.new_users,
      returning_user_count: t?.returning_users,
      feature_key: null,
    });
  });
});

describe('refresher process (services/refresher/main.ts)', () => {
  it('lists a bad zone and exits 2', async () => {
    const p = spawnService('services/refresher/main.ts', { REFRESH_TIME_ZONES: 'UTC,Mars/Olympus' }, 'never');
    await expect(p).rejects.toThrow(
      /exited with 2[\s\S]*REFRESH_TIME_ZONES: "Mars\/Olympus" is not an IANA time zone/,
    );
  });

  it('passes on its own and says so; is not ready while ClickHouse is unreachable; exits 0 on SIGTERM', async () => {
    const env = {
      REFRESHER_HTTP_PORT: '0',
      REFRESH_INTERVAL_MS: '200',
      LOG_LEVEL: 'info',
      KAFKA_BROKERS: kafkaBrokers().join(','),
    };
    // Two clusters' refreshers (two lease groups): each holds its own lease and runs passes.
    const lease = (name: string) => {
      const id = uniqueName(name);
      return { KAFKA_LEASE_TOPIC: id, KAFKA_LEASE_GROUP_ID: id };
    };
    const ok = await spawnService(
      'services/refresher/main.ts',
      { ...env, ...lease('lease_ok'), CLICKHOUSE_URL: clickhouseUrl(), CLICKHOUSE_DATABASE: db.name },
      '"refresher started"',
    );
    const down = await spawnService(
      'services/refresher/main.ts',
      {
        ...env,
        ...lease('lease_down'),
        CLICKHOUSE_URL: 'http://127.0.0.1:9',
        CLICKHOUSE_REQUEST_TIMEOUT_MS: '1000',
      },
      '"refresher started"',
    );
    try {
      await waitFor(
        'a pass',
        () => ok.metric('refresher_last_success_timestamp_seconds'),
        (v) => v > 0,
        60_000,
      );
      expect((await ok.readyz()).status).toBe(200);
      await waitFor(
        'a failed pass',
        () => down.metric('refresher_pass_failures_total'),
        (v) => v >= 1,
        60_000,
      );
      expect((await down.readyz()).status).toBe(503);
      expect(down.logs.some((l) => l.includes('refresh pass failed'))).toBe(true);
    } finally {
      ok.child.kill('SIGTERM');
      down.child.kill('SIGTERM');
    }
    expect(await ok.exited).toBe(0);
    expect(await down.exited).toBe(0);
  });
});

// Retention drops months of facts: a database of its own (the data set, one refresher pass), so the
// tests above see all their data whatever the order.
describe('fact retention', () => {
  let own: TestDatabase;
  let ownRefresher: TestRefresher;

  beforeAll(async () => {
    own = await freshDatabase('finished_retention');
    await migrate({ client: own.client, database: own.name });
    await insert(data.rows, own.client);
    ownRefresher = testRefresher(own.client, TZS);
    await ownRefresher.pass();
  }, 120_000);
  afterAll(async () => {
    await own?.drop();
  });

  it('leaves days whose window reaches before the kept facts as they are', async () => {
    // Keep from the first of last month: the data's earlier months go, and retention says so.
    const { dropped } = await dropOldFactPartitions({ client: own.client, keepMonths: 1 });
    expect(dropped.some((d) => d.startsWith('fact_user_activity:'))).toBe(true);
    const [kept] = await rowsOf<{ d: string }>(
      'SELECT toString(max(kept_from)) AS d FROM fact_retention',
      own.client,
    );
    const keptFrom = kept?.d ?? '';
    expect(keptFrom).toMatch(/^\d{4}-\d{2}-01$/);
    // A late event in a dropped month: recomputing its days from the facts left would undercount.
    await insert(
      [
        {
          ...data.rows[2],
          event_id: 'late-3',
          actor_id: 'late-user-3',
          user_id: 'late-user-3',
          activity_timestamp: Date.parse(`${addDays(keptFrom, -3)}T12:00:00Z`),
        },
      ],
      own.client,
    );
    expect(await ownRefresher.pass()).toMatchObject({ computed: 0, pending: 0 });
  });
});
