/**
 * Data model against the real ClickHouse (18.16): migrations, the ingest path, rollup accuracy
 * against exact answers, duplicate delivery, the seed's example queries, rebuild and retention.
 * One migrated database and one seeded data set (1500 users x 62 days, ~60k events) shared by the
 * tests that only read it (and rebuild, which restores what it corrupts); the migrations test and
 * retention, which drops data, each have a database of their own, so the tests pass in any order.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toIngestIdentifyRow } from '../../services/consumer/ingest-row.ts';
import { loadMigrations, MIGRATIONS_DIR, migrate } from '../../services/lib/datamodel/migrate.ts';
import { rebuildRollups } from '../../services/lib/datamodel/rebuild.ts';
import { dropOldFactPartitions } from '../../services/lib/datamodel/retention.ts';
import { DAY_MS } from '../../services/lib/time.ts';
import { DIMENSIONS, type Dimension } from '../../services/query/params.ts';
import {
  type ActiveUsersRow,
  buildActiveUsersQuery,
  buildEventCountsQuery,
} from '../../services/query/sql/builder.ts';
import { testRefresher } from '../harness/refresher.ts';
import { freshDatabase, type TestDatabase } from '../harness/services.ts';
import { type Dataset, dimValue, generate, localDay, rng, truth } from './datamodel-dataset.ts';

const SKETCH_BOUND = 0.01; // clickhouse/README.md: uniq, measured <= 0.91% up to 1e6 distinct
const EXAMPLES = new URL('../../clickhouse/examples/', import.meta.url).pathname;

let db: TestDatabase;
let data: Dataset;
const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;

async function rowsOf<T>(sql: string, client = db.client): Promise<T[]> {
  const rs = await client.query({ query: sql, format: 'JSONEachRow' });
  return rs.json<T>();
}

async function insertActivity(rows: readonly object[]): Promise<void> {
  await db.client.insert({ table: 'ingest_user_activity', format: 'JSONEachRow', values: [...rows] });
}

const BATCH = 5000;

beforeAll(async () => {
  db = await freshDatabase('datamodel');
  await migrate({ client: db.client, database: db.name });
  data = generate(42, 1500, 62, today - DAY_MS);
});
afterAll(async () => {
  await db?.drop();
});

describe('migrations', () => {
  it('apply to an empty database, re-run as a no-op, and refuse an edited file', async () => {
    const empty = await freshDatabase('datamodel_migrate');
    try {
      const first = await migrate({ client: empty.client, database: empty.name });
      expect(first.applied.length).toBeGreaterThanOrEqual(5);
      const again = await migrate({ client: empty.client, database: empty.name });
      expect(again.applied).toEqual([]);
      expect(again.alreadyApplied).toEqual(first.applied);
      const [dates] = await rowsOf<{ n: string; h: string }>(
        'SELECT count() AS n, sum(is_holiday) AS h FROM dim_dates',
        empty.client,
      );
      expect(Number(dates?.n)).toBe(14976);
      expect(Number(dates?.h)).toBeGreaterThan(400);

      const edited = mkdtempSync(join(tmpdir(), 'migrations-'));
      cpSync(MIGRATIONS_DIR, edited, { recursive: true });
      const file = join(edited, '0001_ingest_tables.sql');
      writeFileSync(file, `${readFileSync(file, 'utf8')}\n-- edited\n`);
      await expect(
        migrate({ client: empty.client, database: empty.name, dir: edited }),
      ).rejects.toMatchObject({ code: 'MIGRATION_CHECKSUM_MISMATCH' });
    } finally {
      await empty.drop();
    }
  });
});

describe('migrations with ADD COLUMN (18.16 has no IF NOT EXISTS there)', () => {
  it('re-run a file interrupted right after its ADD COLUMN', async () => {
    const partial = await freshDatabase('migrate_rerun');
    try {
      const upTo6 = mkdtempSync(join(tmpdir(), 'migrations-'));
      cpSync(MIGRATIONS_DIR, upTo6, { recursive: true, filter: (f) => !/\/000[7-9]_[^/]*$/.test(f) });
      await migrate({ client: partial.client, database: partial.name, dir: upTo6 });
      const [add] = loadMigrations().find((m) => m.version === 7)?.statements ?? [];
      expect(add).toMatch(/^ALTER TABLE ingest_user_activity ADD COLUMN is_first_daily_activity/);
      // What an interrupted run leaves: the column added, the migration not recorded.
      await partial.client.command({ query: add ?? '' });
      const done = await migrate({ client: partial.client, database: partial.name });
      expect(done.applied).toContain('0007_first_daily_activity');
      const rs = await partial.client.query({
        query: `SELECT name FROM system.columns WHERE database = currentDatabase()
                AND table = 'ingest_user_activity' AND name = 'is_first_daily_activity'`,
        format: 'JSONEachRow',
      });
      expect(await rs.json()).toHaveLength(1);
    } finally {
      await partial.drop();
    }
  });
});

describe('ingest path and rollups', () => {
  beforeAll(async () => {
    await db.client.insert({
      table: 'ingest_user_identify',
      format: 'JSONEachRow',
      values: data.identifies.map(toIngestIdentifyRow),
    });
    for (let i = 0; i < data.rows.length; i += BATCH) await insertActivity(data.rows.slice(i, i + BATCH));
    // dim_agg_daily_active (the seed's table) shows the refresher's finished numbers of closed days.
    await testRefresher(db.client).pass();
  });

  it('fans one insert out to facts, details, dimensions and the identity map', async () => {
    const [f] = await rowsOf<{ n: string; e: string }>(
      'SELECT count() AS n, uniqExact(event_id) AS e FROM fact_user_activity',
    );
    expect(Number(f?.e)).toBe(data.rows.length);
    const [d] = await rowsOf<{ n: string }>('SELECT uniqExact(detail_id) AS n FROM fact_activity_details');
    expect(Number(d?.n)).toBe(data.rows.filter((r) => r['details.detail_type'].length > 0).length);
    const [feat] = await rowsOf<{ n: string }>('SELECT count() AS n FROM dim_features FINAL');
    expect(Number(feat?.n)).toBe(6);
    // The lookup the consumer runs (clickhouse/README.md, "Identity").
    const probe = data.identifies.slice(0, 3);
    const links = await rowsOf<{ anonymous_id: string; user_id: string }>(
      `SELECT anonymous_id, argMin(user_id, linked_at) AS user_id FROM identity_map
       WHERE anonymous_id IN (${probe.map((p) => `'${p.anonymous_id}'`).join(', ')}) GROUP BY anonymous_id ORDER BY anonymous_id`,
    );
    expect(links).toEqual(
      probe
        .map((p) => ({ anonymous_id: p.anonymous_id ?? '', user_id: p.user_id }))
        .sort((a, b) => a.anonymous_id.localeCompare(b.anonymous_id)),
    );
  });

  it('matches exact DAU/WAU/MAU/new/returning for 60 random slices, days and zones', async () => {
    const r = rng(7);
    const zones = ['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Tokyo', 'Asia/Kolkata'];
    const valuesOf = (d: Dimension): string[] => [...new Set(data.rows.map((row) => dimValue(row, d)))];
    let worst = 0;
    let compared = 0;
    for (let i = 0; i < 60; i++) {
      const filters: Partial<Record<Dimension, string[]>> = {};
      for (let f = Math.floor(r() * 3); f > 0; f--) {
        const d = DIMENSIONS[Math.floor(r() * DIMENSIONS.length)] as Dimension;
        const vs = valuesOf(d);
        filters[d] = [vs[Math.floor(r() * vs.length)] as string, vs[Math.floor(r() * vs.length)] as string];
      }
      const groupBy = r() < 0.4 ? [DIMENSIONS[Math.floor(r() * DIMENSIONS.length)] as Dimension] : [];
      const tz = zones[i % zones.length] as string;
      // Ranges inside the last 30 days of data: every window has its full history.
      const to = localDay(data.lastDay - Math.floor(r() * 25) * DAY_MS, 'UTC');
      const from = localDay(Date.parse(to) - 2 * DAY_MS, 'UTC');
      const q = { from, to, tz, filters, groupBy, window: 'rolling' as const };
      const got = await rowsOf<ActiveUsersRow>(buildActiveUsersQuery(q).sql);
      const want = truth(data.rows, q);
      const gotKeys = new Map(got.map((g) => [`${g.day}\0${JSON.stringify(groupBy.map((d) => g[d]))}`, g]));
      for (const [key, w] of want) {
        const g = gotKeys.get(key);
        expect(g, `${JSON.stringify(q)} ${key}`).toBeDefined();
        for (const m of ['dau', 'wau', 'mau', 'new_users', 'returning_users'] as const) {
          const err = Math.abs((g?.[m] ?? 0) - w[m]) / Math.max(1, w[m]);
          worst = Math.max(worst, err);
          compared++;
        }
      }
      expect(got.filter((g) => g.mau > 0).length).toBe(want.size);
    }
    process.stdout.write(`datamodel: ${compared} metric values compared, worst relative error ${worst}\n`);
    expect(compared).toBeGreaterThan(500);
    expect(worst).toBeLessThanOrEqual(SKETCH_BOUND);
  });

  it('counts deduplicated events exactly and keeps every number when a batch is delivered twice', async () => {
    const to = localDay(data.lastDay, 'UTC');
    const from = localDay(data.lastDay - 40 * DAY_MS, 'UTC');
    const users = buildActiveUsersQuery({
      from,
      to,
      tz: 'Europe/Berlin',
      window: 'calendar',
      groupBy: ['country', 'segment'],
    }).sql;
    const events = buildEventCountsQuery({
      from,
      to,
      tz: 'UTC',
      groupBy: ['feature'],
      includeTest: true,
      includeBots: true,
    }).sql;
    const before = [await rowsOf(users), await rowsOf(events)];
    await insertActivity(data.rows.slice(0, BATCH));
    const after = [await rowsOf(users), await rowsOf(events)];
    expect(after).toEqual(before);
    const total = (before[1] as { events: number }[]).reduce((s, x) => s + x.events, 0);
    const expected = data.rows.filter((row) => localDay(row.activity_timestamp, 'UTC') >= from).length;
    expect(total).toBe(expected);
  });

  it("answers the seed's three example queries with the exact numbers", async () => {
    const example = (name: string): string => readFileSync(join(EXAMPLES, name), 'utf8');
    const kept = data.rows.filter((row) => !row.is_test_account && !row.is_bot);
    const day = localDay(data.lastDay - 3 * DAY_MS, 'UTC');
    const q1 = await rowsOf<{ feature_name: string; dau: string }>(
      example('01_dau_by_feature.sql').replace("'2023-07-15'", `'${day}'`),
    );
    const want1 = new Map<string, Set<string>>();
    for (const row of kept.filter((x) => localDay(x.activity_timestamp, 'UTC') === day)) {
      want1.set(row.feature_name, (want1.get(row.feature_name) ?? new Set()).add(row.actor_id));
    }
    expect(Object.fromEntries(q1.map((x) => [x.feature_name, Number(x.dau)]))).toEqual(
      Object.fromEntries([...want1].map(([f, s]) => [f, s.size])),
    );

    const from2 = localDay(data.lastDay - 9 * DAY_MS, 'UTC');
    const to2 = localDay(data.lastDay, 'UTC');
    const q2 = await rowsOf<{ feature_name: string; avg_stickiness: number; max_stickiness: number }>(
      example('02_stickiness_by_feature.sql')
        .replace("'2023-07-01'", `'${from2}'`)
        .replace("'2023-07-31'", `'${to2}'`),
    );
    for (const row of q2) {
      const t = truth(kept, {
        from: from2,
        to: to2,
        tz: 'UTC',
        filters: { feature: [row.feature_name] },
        groupBy: [],
      });
      const ratios = [...t.values()].map((x) => x.dau / x.mau);
      expect(row.avg_stickiness).toBeCloseTo(ratios.reduce((s, x) => s + x, 0) / ratios.length, 9);
      expect(row.max_stickiness).toBeCloseTo(Math.max(...ratios), 9);
    }
    expect(q2.length).toBe(6);

    const q3 = await rowsOf<{ segment_name: string; country_name: string; mau: string }>(
      example('03_mau_by_segment_country.sql'),
    );
    const since = localDay(today - 30 * DAY_MS, 'UTC');
    const want3 = new Map<string, Set<string>>();
    for (const row of kept.filter((x) => localDay(x.activity_timestamp, 'UTC') >= since)) {
      const k = `${row.segment_name ?? ''}|${data.countryNames.get(row.country_code ?? '')}`;
      want3.set(k, (want3.get(k) ?? new Set()).add(row.actor_id));
    }
    expect(Object.fromEntries(q3.map((x) => [`${x.segment_name}|${x.country_name}`, Number(x.mau)]))).toEqual(
      Object.fromEntries([...want3].map(([k, s]) => [k, s.size])),
    );
  });

  it('dim_agg_daily_active has device-type, country and segment rows equal to exact truth', async () => {
    const day = localDay(data.lastDay - 4 * DAY_MS, 'UTC');
    type AggRow = {
      keys_set: number;
      dau_count: number;
      wau_count: number;
      mau_count: number;
      dau_mau_ratio: number;
      new_user_count: number;
      returning_user_count: number;
    };
    const agg = (where: string): Promise<AggRow[]> =>
      rowsOf<AggRow>(`SELECT toUInt8(isNotNull(feature_key) + isNotNull(device_type_key)
          + isNotNull(geography_country_key) + isNotNull(user_segment_key)) AS keys_set,
          dau_count, wau_count, mau_count, dau_mau_ratio, new_user_count, returning_user_count
        FROM dim_agg_daily_active WHERE date_key = ${day.replaceAll('-', '')} AND ${where}`);
    // Each key as the dimension tables compute it (0003): the segment's from its dim row, the
    // country and device type by the dim tables' hash with the finer attributes empty.
    const slices = [
      ['device_type', 'mobile', 'device_type_key', "cityHash64('', 'mobile', '', '', '', '', '')"],
      ['country', 'DE', 'geography_country_key', "cityHash64('DE', '', '', '')"],
      [
        'segment',
        'pro',
        'user_segment_key',
        "(SELECT any(user_segment_key) FROM dim_user_segments WHERE segment_name = 'pro')",
      ],
    ] as const;
    for (const [dim, value, column, key] of slices) {
      const rows = await agg(`${column} = ${key}`);
      expect(rows, `${dim}=${value}`).toHaveLength(1);
      const row = rows[0] as AggRow;
      const t = truth(data.rows, {
        from: day,
        to: day,
        tz: 'UTC',
        filters: { [dim]: [value] },
        groupBy: [],
      }).get(`${day}\0[]`);
      expect(t, `${dim}=${value}`).toBeDefined();
      expect(row, `${dim}=${value}`).toMatchObject({
        dau_count: t?.dau,
        wau_count: t?.wau,
        mau_count: t?.mau,
        new_user_count: t?.new_users,
        returning_user_count: t?.returning_users,
      });
      expect(row.dau_mau_ratio).toBeCloseTo((t?.dau ?? 0) / (t?.mau ?? 1), 12);
      // Grouping sets: a slice row carries its own key only.
      expect(row.keys_set).toBe(1);
    }
    // Per day: one row for all, and one per feature, device type, country and segment value.
    const distinct = (d: Dimension): number =>
      new Set(
        data.rows
          .filter((r) => !r.is_test_account && !r.is_bot && localDay(r.activity_timestamp, 'UTC') <= day)
          .filter(
            (r) => localDay(r.activity_timestamp, 'UTC') > localDay(Date.parse(day) - 30 * DAY_MS, 'UTC'),
          )
          .map((r) => dimValue(r, d)),
      ).size;
    const [count] = await rowsOf<{ n: number }>(
      `SELECT toUInt32(count()) AS n FROM dim_agg_daily_active WHERE date_key = ${day.replaceAll('-', '')}`,
    );
    expect(count?.n).toBe(
      1 + distinct('feature') + distinct('device_type') + distinct('country') + distinct('segment'),
    );
  });

  it('rebuild restores rollups from the facts and refuses months without facts', async () => {
    const day = localDay(data.lastDay - 5 * DAY_MS, 'UTC');
    const sql = buildActiveUsersQuery({
      from: day,
      to: day,
      tz: 'UTC',
      window: 'rolling',
      groupBy: ['feature'],
    }).sql;
    const before = await rowsOf(sql);
    // Corrupt: a phantom user in every hour of the day, as a wrong view or a deleted user would leave.
    for (const t of [
      'rollup_users_hourly_total',
      'rollup_users_hourly_feature',
      'rollup_users_hourly_slice',
    ]) {
      await db.client.command({
        query: `INSERT INTO ${t} (hour, is_test_account, is_bot, users)
          SELECT toDateTime('${day} 12:00:00', 'UTC'), 0, 0, uniqState(toUInt64(424242))`,
      });
    }
    expect(await rowsOf(sql)).not.toEqual(before);
    await rebuildRollups({ client: db.client, from: day, to: day });
    expect(await rowsOf(sql)).toEqual(before);
    await expect(
      rebuildRollups({ client: db.client, from: '2001-01-01', to: '2001-01-31' }),
    ).rejects.toMatchObject({
      code: 'REBUILD_FACTS_GONE',
    });
  });
});

describe('retention', () => {
  it('drops old fact months and keeps the rollup history', async () => {
    // A database of its own: dropping months would change what the other tests read.
    const own = await freshDatabase('datamodel_retention');
    try {
      await migrate({ client: own.client, database: own.name });
      // The first day: 61 days before the last, always in a month before the 1-month cutoff (firstDay
      // + 2 fell into the cutoff month itself on some dates, e.g. a run on 2026-11-30). The last
      // week's rows are what retention keeps.
      const kept = data.rows.filter(
        (r) =>
          r.activity_timestamp < data.firstDay + DAY_MS || r.activity_timestamp >= data.lastDay - 6 * DAY_MS,
      );
      await own.client.insert({ table: 'ingest_user_activity', format: 'JSONEachRow', values: kept });
      const old = localDay(data.firstDay, 'UTC');
      const sql = buildActiveUsersQuery({ from: old, to: old, tz: 'UTC', window: 'rolling' }).sql;
      const before = await rowsOf<{ dau: number }>(sql, own.client);
      expect(Number(before[0]?.dau)).toBeGreaterThan(0);
      const oldMonth = Number(old.slice(0, 7).replace('-', ''));
      // The consumer's identify log (migration 0010) is dropped by month alike.
      await own.client.command({
        query: `INSERT INTO identify_log (written_at, kind, user_id, linked_id)
          VALUES (toDateTime('${old} 12:00:00', 'UTC'), 'identify', 'u', '')`,
      });
      const { dropped } = await dropOldFactPartitions({
        client: own.client,
        keepMonths: 1,
        now: new Date(data.lastDay),
      });
      expect(dropped).toContain(`fact_user_activity:${oldMonth}`);
      expect(dropped).toContain(`identify_log:${oldMonth}`);
      const [left] = await rowsOf<{ m: number }>(
        'SELECT min(toYYYYMM(activity_timestamp)) AS m FROM fact_user_activity',
        own.client,
      );
      expect(Number(left?.m)).toBeGreaterThan(oldMonth);
      expect(await rowsOf(sql, own.client)).toEqual(before);
      expect(
        (await dropOldFactPartitions({ client: own.client, keepMonths: 1, now: new Date(data.lastDay) }))
          .dropped,
      ).toEqual([]);
    } finally {
      await own.drop();
    }
  });
});
