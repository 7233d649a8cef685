/**
 * The query API against the real ClickHouse (18.16): a seeded data set goes in through the ingest
 * path (migrations, then ingest_user_activity inserts, as the consumer does), and the HTTP answers
 * for random slices, group-bys, time zones and both window kinds are compared with exact numbers
 * computed here from the generated events. Also: every validation rule over HTTP, an SQL-injection
 * corpus, and the read-only user's inability to write.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClickHouseClient, clickhouseErrorCode } from '../../services/lib/clickhouse.ts';
import { migrate } from '../../services/lib/datamodel/migrate.ts';
import { DAY_MS, HOUR_MS } from '../../services/lib/time.ts';
import { DIMENSIONS, type Dimension } from '../../services/query/params.ts';
import { freshDatabase, type TestDatabase } from '../harness/services.ts';
import { type Dataset, dimValue, generate, localDay, rng, truth } from './datamodel-dataset.ts';
import { ingest, type QueryApi, sliceQuery as query, type Slice, startQueryApi } from './query-harness.ts';

/** clickhouse/README.md: uniq's measured worst relative error is under 1% up to 1e6 distinct. */
const SKETCH_BOUND = 0.01;
// A fixed period that spans both the US (Mar 9) and the EU (Mar 30) daylight-saving changes.
const LAST_DAY = Date.UTC(2025, 3, 10);
const DAYS = 75;
const ZONES = [
  'UTC',
  'America/New_York',
  'Europe/Berlin',
  'Asia/Tokyo',
  'Asia/Kolkata',
  'Australia/Adelaide',
];

let db: TestDatabase;
let api: QueryApi;
let reader: ClickHouseClient;
let data: Dataset;
let worstError = 0;

const iso = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

type Row = typeof data.rows extends readonly (infer R)[] ? R : never;

function matches(row: Row, s: Pick<Slice, 'filters' | 'includeTest' | 'includeBots'>): boolean {
  if (!s.includeTest && row.is_test_account) return false;
  if (!s.includeBots && row.is_bot) return false;
  return Object.entries(s.filters).every(([d, vs]) =>
    (vs as string[]).includes(dimValue(row, d as Dimension)),
  );
}

interface Measures {
  dau: number;
  wau: number;
  mau: number;
  new_users: number;
  returning_users: number;
}

const get = (url: string) => api.get(url);

function entry<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  const found = map.get(key);
  if (found !== undefined) return found;
  const made = make();
  map.set(key, made);
  return made;
}

const ZERO: Measures = { dau: 0, wau: 0, mau: 0, new_users: 0, returning_users: 0 };

/**
 * Compares every measure of every (day, group) within the sketch bound; missing rows are zeros.
 * Returns how many of the compared values were non-zero in the truth: a comparison of zeros with
 * zeros (a slice or a data set that matches nothing) would pass whatever the API answered.
 */
function expectClose(got: Map<string, Measures>, exact: Map<string, Measures>, label: string): number {
  let nonZero = 0;
  for (const key of new Set([...got.keys(), ...exact.keys()])) {
    const a = got.get(key) ?? ZERO;
    const t = exact.get(key) ?? ZERO;
    for (const m of Object.keys(ZERO) as (keyof Measures)[]) {
      // new users come from exact per-user minimums; returning = dau - new inherits dau's bound.
      const bound = m === 'new_users' ? 0 : Math.ceil(SKETCH_BOUND * t[m]);
      const err = Math.abs(a[m] - t[m]);
      if (t[m] > 0) {
        nonZero++;
        worstError = Math.max(worstError, err / t[m]);
      }
      if (err > bound) {
        throw new Error(
          `${label}: ${m} at ${key.replace('\0', ' ')} is ${a[m]}, exact ${t[m]} (bound ${bound})`,
        );
      }
    }
  }
  return nonZero;
}

function valuesOf(d: Dimension): string[] {
  return [...new Set(data.rows.map((r) => dimValue(r, d)))].sort();
}

beforeAll(async () => {
  db = await freshDatabase('query');
  await migrate({ client: db.client, database: db.name });
  data = generate(6, 1200, DAYS, LAST_DAY);
  await ingest(db.client, data.rows);
  // At-least-once delivery: a re-sent batch must change no number.
  await ingest(db.client, data.rows.slice(0, 3000));
  api = await startQueryApi(db.name, new Date(LAST_DAY + 12 * 3_600_000));
  reader = api.reader;
});

afterAll(async () => {
  process.stderr.write(`[query-api] worst relative error vs exact: ${(worstError * 100).toFixed(3)}%\n`);
  await api?.close();
  await db?.drop();
});

describe('active users equal exact truth', () => {
  it('for 40 random slices, group-bys, zones and windows', async () => {
    const r = rng(2024);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
    const firstDay = LAST_DAY - (DAYS - 1) * DAY_MS;
    const perSlice: number[] = [];
    for (let i = 0; i < 40; i++) {
      const start = firstDay + Math.floor(r() * (DAYS - 1)) * DAY_MS;
      const end = Math.min(LAST_DAY, start + Math.floor(r() * 35) * DAY_MS);
      const dims = [...DIMENSIONS].sort(() => r() - 0.5);
      const includeTest = r() < 0.2;
      const includeBots = r() < 0.2;
      // Each filter keeps the value of one row inside the slice, so no slice matches nothing; the
      // second value is any value. Between 05:00 and 13:00 UTC a day is the same local day in every
      // zone of ZONES (UTC-5 to UTC+10:30).
      const inside = data.rows.filter(
        (row) =>
          row.activity_timestamp >= start + 5 * HOUR_MS &&
          row.activity_timestamp < end + 13 * HOUR_MS &&
          matches(row, { filters: {}, includeTest, includeBots }),
      );
      expect(inside.length, `rows inside ${iso(start)}..${iso(end)}`).toBeGreaterThan(0);
      const anchor = pick(inside);
      const filters: Partial<Record<Dimension, string[]>> = {};
      for (const d of dims.slice(0, Math.floor(r() * 3))) {
        filters[d] = [...new Set([dimValue(anchor, d), pick(valuesOf(d))])];
      }
      const s: Slice = {
        from: iso(start),
        to: iso(end),
        tz: pick(ZONES),
        window: r() < 0.5 ? 'rolling' : 'calendar',
        filters,
        groupBy: dims.slice(3, 3 + Math.floor(r() * 3)),
        includeTest,
        includeBots,
      };
      const res = await get(`/v1/active-users?${query(s)}`);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const got = new Map<string, Measures>();
      for (const row of res.body.rows as Record<string, number | string>[]) {
        const group = JSON.stringify(s.groupBy.map((g) => row[g]));
        got.set(`${row.date}\0${group}`, row as unknown as Measures);
        // Stickiness is derived from the same row.
        expect(row.dau_mau).toBeCloseTo(Number(row.mau) > 0 ? Number(row.dau) / Number(row.mau) : 0, 3);
      }
      perSlice.push(expectClose(got, truth(data.rows, s), `slice ${i} ${query(s)}`));
    }
    process.stderr.write(`[query-api] non-zero values compared per slice: ${perSlice.join(' ')}\n`);
    expect(Math.min(...perSlice)).toBeGreaterThan(0);
  });

  it('distinguishes rolling from calendar windows, and new from returning users', async () => {
    const base: Slice = {
      from: '2025-03-01',
      to: '2025-03-31',
      tz: 'UTC',
      window: 'rolling',
      filters: {},
      groupBy: [],
      includeTest: false,
      includeBots: false,
    };
    type ApiRow = Measures & { date: string };
    const rolling = (await get(`/v1/active-users?${query(base)}`)).body.rows as ApiRow[];
    const calendar = (await get(`/v1/active-users?${query({ ...base, window: 'calendar' })}`)).body
      .rows as ApiRow[];
    // On the 1st of a month the calendar MAU is that day's DAU; rolling MAU spans 30 days.
    const firstRolling = rolling[0] as ApiRow;
    const firstCalendar = calendar[0] as ApiRow;
    expect(firstCalendar.mau).toBe(firstCalendar.dau);
    expect(firstRolling.mau).toBeGreaterThan(firstRolling.dau);
    // On the month's last day the calendar MAU is the whole month.
    const exactCal = truth(data.rows, { ...base, window: 'calendar' });
    expect((calendar.at(-1) as ApiRow).mau).toBeGreaterThan(firstCalendar.mau);
    expect(
      expectClose(new Map(calendar.map((row) => [`${row.date}\0[]`, row])), exactCal, 'calendar'),
    ).toBeGreaterThan(100);
    for (const row of rolling) {
      expect(row.new_users + row.returning_users).toBe(row.dau);
    }
    expect(rolling.some((row) => row.new_users > 0)).toBe(true);
    expect(rolling.some((row) => row.returning_users > 0)).toBe(true);
  });
});

describe('event counts and dimension values', () => {
  it('counts each event once despite the re-sent batch, per day and group', async () => {
    const s = {
      from: '2025-02-10',
      to: '2025-03-12',
      tz: 'America/New_York',
      groupBy: ['platform' as Dimension],
    };
    const res = await get(`/v1/events/count?from=${s.from}&to=${s.to}&tz=${s.tz}&group_by=platform`);
    expect(res.status).toBe(200);
    const exact = new Map<string, Set<string>>();
    for (const row of data.rows) {
      if (!matches(row, { filters: {}, includeTest: false, includeBots: false })) continue;
      const day = localDay(row.activity_timestamp, s.tz);
      if (day < s.from || day > s.to) continue;
      const k = `${day} ${row.platform ?? ''}`;
      entry(exact, k, () => new Set<string>()).add(row.event_id);
    }
    const counted = new Map(
      (res.body.rows as { date: string; platform: string; events: number }[]).map((r) => [
        `${r.date} ${r.platform}`,
        r.events,
      ]),
    );
    // 31 days x the platforms: an empty answer must not match an empty truth.
    expect(exact.size).toBeGreaterThan(60);
    expect(counted).toEqual(new Map([...exact].map(([k, set]) => [k, set.size])));
  });

  // A month and its last day alone: a range that lost its last day would still list most of a
  // month's values within the sketch bound, but not one day's.
  it.each([
    ['2025-03-01', '2025-03-31'],
    ['2025-03-31', '2025-03-31'],
  ])('lists dimension values with their active users, most users first: %s..%s', async (from, to) => {
    const res = await get(`/v1/dimensions/country?from=${from}&to=${to}&segment=pro`);
    expect(res.status).toBe(200);
    const exact = new Map<string, Set<string>>();
    for (const row of data.rows) {
      if (!matches(row, { filters: { segment: ['pro'] }, includeTest: false, includeBots: false })) continue;
      const day = localDay(row.activity_timestamp, 'UTC');
      if (day < from || day > to) continue;
      const v = dimValue(row, 'country');
      entry(exact, v, () => new Set<string>()).add(row.actor_id);
    }
    const values = res.body.values as { value: string; users: number }[];
    expect(exact.size).toBeGreaterThan(3);
    expect(values.map((v) => v.value).sort()).toEqual([...exact.keys()].sort());
    for (const v of values) {
      const t = exact.get(v.value)?.size ?? 0;
      expect(Math.abs(v.users - t)).toBeLessThanOrEqual(Math.ceil(SKETCH_BOUND * t));
    }
    expect(values.map((v) => v.users)).toEqual([...values.map((v) => v.users)].sort((a, b) => b - a));
  });
});

describe('validation over HTTP', () => {
  it.each([
    ['unknown parameter', '/v1/active-users?contry=US', 'valid parameters:'],
    ['unknown group-by dimension', '/v1/active-users?group_by=city', 'valid dimensions:'],
    ['unknown dimension name', '/v1/dimensions/city', 'valid dimensions:'],
    ['more than 3 group-bys', '/v1/active-users?group_by=feature,country,platform,segment', 'at most 3'],
    ['repeated group-by', '/v1/active-users?group_by=country,country', 'appears twice'],
    ['not a date', '/v1/active-users?from=2025-02-30', 'calendar date'],
    ['date out of range', '/v1/active-users?from=1970-01-01&to=1970-01-05', 'between'],
    ['from after to', '/v1/active-users?from=2025-03-02&to=2025-03-01', 'must not be after'],
    ['range too long', '/v1/active-users?from=2020-01-01&to=2025-01-01', 'at most 400'],
    ['unknown zone', '/v1/active-users?tz=Mars/Base', 'IANA time zone'],
    ['bad window', '/v1/active-users?window=weekly', 'rolling, calendar'],
    ['bad boolean', '/v1/active-users?include_test=maybe', 'true or false'],
    ['repeated scalar', '/v1/active-users?tz=UTC&tz=Asia/Tokyo', 'given 2 times'],
    ['control character', '/v1/active-users?country=U%00S', 'control characters'],
    ['overlong value', `/v1/active-users?country=${'x'.repeat(300)}`, 'at most 256'],
    ['window on event counts', '/v1/events/count?window=rolling', 'unknown parameter "window"'],
    ['bad limit', '/v1/dimensions/country?limit=5000', 'limit'],
  ])('%s -> 400', async (_name, url, message) => {
    const res = await get(url);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('QUERY_PARAM_INVALID');
    expect(String(res.body.message)).toContain(message);
  });
});

describe('SQL injection corpus', () => {
  const CORPUS = [
    "' OR 1=1 --",
    "US' OR '1'='1",
    "US'); DROP TABLE fact_user_activity; --",
    "\\' OR 1=1 --",
    'US\\',
    "\\\\' OR ''='",
    "' UNION ALL SELECT name, 1 FROM system.tables --",
    "US' FORMAT TabSeparated --",
    "'; SELECT sleep(3); --",
    'US` OR 1=1',
    '"US" OR 1=1',
    'US /* */ OR 1=1',
    'US\u2019 OR \u20181\u2019=\u20181',
    'ＵＳ',
    "🙂' OR 1=1 --",
    "'".repeat(256),
    '\\'.repeat(255),
    '%27%20OR%201%3D1',
    "' || '",
    "x' AND 1=(SELECT count() FROM system.one) AND 'a'='a",
  ];

  /** The tables and the distinct events: what a successful injection would change. */
  async function fingerprint(): Promise<string> {
    const rs = await db.client.query({
      query: `SELECT
        (SELECT groupArray(name) FROM (SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name)) AS tables,
        (SELECT uniqExact(event_id) FROM fact_user_activity) AS events`,
      format: 'JSONEachRow',
    });
    return JSON.stringify(await rs.json());
  }

  it('treats every payload in a filter value of every dimension as a literal that matches nothing', async () => {
    const before = await fingerprint();
    for (const payload of CORPUS) {
      for (const dim of DIMENSIONS) {
        const p = new URLSearchParams({ from: '2025-03-01', to: '2025-03-10', group_by: dim });
        p.append(dim, payload);
        const res = await get(`/v1/active-users?${p}`);
        expect(res.status, `${dim}=${payload}: ${JSON.stringify(res.body)}`).toBe(200);
        const rows = res.body.rows as { dau: number; mau: number; [k: string]: unknown }[];
        expect(
          rows.filter((r) => r.mau > 0),
          `${dim}=${payload}`,
        ).toEqual([]);
        const counts = await get(`/v1/events/count?${p}`);
        expect(counts.body.rows, `${dim}=${payload}`).toEqual([]);
        const values = await get(`/v1/dimensions/${dim}?${new URLSearchParams([[dim, payload]])}`);
        expect(values.body.values, `${dim}=${payload}`).toEqual([]);
      }
    }
    expect(await fingerprint()).toBe(before);
  });

  it('refuses every payload as a name, zone, date, group-by or limit', async () => {
    for (const payload of CORPUS) {
      const e = encodeURIComponent(payload);
      for (const url of [
        `/v1/active-users?group_by=${e}`,
        `/v1/active-users?group_by=country,${e}`,
        `/v1/active-users?tz=${e}`,
        `/v1/active-users?from=${e}`,
        `/v1/active-users?from=2025-03-01&to=${e}`,
        `/v1/active-users?window=${e}`,
        `/v1/active-users?exact=${e}`,
        `/v1/active-users?include_test=${e}`,
        `/v1/active-users?include_bots=${e}`,
        `/v1/events/count?tz=${e}`,
        `/v1/events/count?group_by=${e}`,
        `/v1/active-users?${e}=1`,
        `/v1/dimensions/${e}`,
        `/v1/dimensions/country?limit=${e}`,
      ]) {
        const res = await get(url);
        // 414: a path parameter longer than the router accepts.
        expect([400, 404, 414], `${url}: ${res.status}`).toContain(res.status);
      }
    }
  });
});

describe('the read-only user', () => {
  it('cannot write, create, drop, alter or lift its own limits', async () => {
    const attempts = [
      `INSERT INTO ingest_user_activity (event_id) VALUES ('x')`,
      'CREATE TABLE evil (x UInt8) ENGINE = Memory',
      'DROP TABLE fact_user_activity',
      'TRUNCATE TABLE fact_user_activity',
      'ALTER TABLE fact_user_activity DELETE WHERE 1',
      `CREATE DATABASE evil_${db.name}`,
    ];
    for (const query of attempts) {
      const err = await reader.command({ query }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(clickhouseErrorCode(err), query).toBe(164); // READONLY
    }
    const lifted = await reader
      .query({
        query: 'SELECT 1',
        format: 'JSONEachRow',
        clickhouse_settings: { max_execution_time: 100_000 },
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(clickhouseErrorCode(lifted)).toBe(164);
    const rs = await reader.query({
      query: `SELECT name, value FROM system.settings
        WHERE name IN ('readonly', 'max_execution_time', 'max_memory_usage', 'max_rows_to_read') ORDER BY name`,
      format: 'JSONEachRow',
    });
    const settings = Object.fromEntries(
      (await rs.json<{ name: string; value: string }>()).map((s) => [s.name, s.value]),
    );
    expect(settings.readonly).toBe('1');
    for (const limit of ['max_execution_time', 'max_memory_usage', 'max_rows_to_read']) {
      expect(Number(settings[limit]), limit).toBeGreaterThan(0);
    }
    const [[tables]] = [
      await (
        await db.client.query({ query: 'EXISTS TABLE fact_user_activity', format: 'JSONEachRow' })
      ).json(),
    ];
    expect(tables).toEqual({ result: 1 });
  });
});
