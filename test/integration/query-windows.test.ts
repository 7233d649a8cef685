/**
 * The sketch path's windows against the real ClickHouse (18.16): services/query/sql/builder.ts
 * merges the day states into aligned blocks of 1 to 16 days and each window from the longest
 * blocks inside it. Users active on a few scattered days put window edges at every offset of the
 * blocks; per day, DAU / WAU / MAU must equal the users active on the day, in its 7 and 30 days
 * (rolling) or its week and month to date (calendar). Counts stay far below uniq's sampling
 * threshold, where it is exact (clickhouse/README.md), so any block taken twice over the edge of a
 * window, or missed, shows as a wrong count. Each active day is in one of two countries, so a
 * group-by country is split into window branches of days and new-user branches of user_key ranges
 * (WINDOW_BRANCH_DAYS, USER_RANGES): a day or group counted in two branches, or in none, or a user
 * taken as new in a country where an earlier day already had them, shows too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IngestActivityRow } from '../../services/consumer/ingest-row.ts';
import { migrate } from '../../services/lib/datamodel/migrate.ts';
import { DAY_MS } from '../../services/lib/time.ts';
import { type ActiveUsersRow, buildActiveUsersQuery } from '../../services/query/sql/builder.ts';
import { freshDatabase, type TestDatabase } from '../harness/services.ts';
import { generate, rng } from './datamodel-dataset.ts';
import { ingest } from './query-harness.ts';

const FIRST_DAY = Date.UTC(2025, 0, 1);
const DAYS = 120;
const day = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
/** The one user of country IS, active on this day only: the first day of the 30-day window to 2025-03-04. */
const LONE_DAY = Date.UTC(2025, 1, 3);

let db: TestDatabase;
/** Active days (UTC-midnight ms) per user. */
const activity = new Map<string, number[]>();
/** Each user's active days per country: a user can have days in both. */
const byCountry = new Map<string, Map<string, number[]>>();
const COUNTRIES = ['DE', 'FR'];

beforeAll(async () => {
  db = await freshDatabase('query_windows');
  await migrate({ client: db.client, database: db.name });
  const template = generate(1, 1, 1, FIRST_DAY).rows[0] as IngestActivityRow;
  const r = rng(11);
  for (let u = 0; u < 80; u++) {
    const days = Array.from(
      { length: 1 + Math.floor(r() * 4) },
      () => FIRST_DAY + Math.floor(r() * DAYS) * DAY_MS,
    );
    activity.set(`w-${u}`, days);
  }
  const rows: IngestActivityRow[] = [];
  const row = (user: string, dayMs: number, country: string): IngestActivityRow => {
    const ts = dayMs + 3_600_000 * (rows.length % 24);
    return {
      ...template,
      event_id: `win-${rows.length}`,
      user_id: user,
      anonymous_id: null,
      actor_id: user,
      activity_timestamp: ts,
      received_at: ts,
      country_code: country,
      is_test_account: 0,
      is_bot: 0,
    };
  };
  for (const [user, days] of activity)
    for (const d of days) {
      const country = COUNTRIES[Math.floor(r() * COUNTRIES.length)] as string;
      const own = byCountry.get(country) ?? new Map<string, number[]>();
      own.set(user, [...(own.get(user) ?? []), d]);
      byCountry.set(country, own);
      rows.push(row(user, d, country));
    }
  rows.push(row('lone', LONE_DAY, 'IS'));
  activity.set('lone', [LONE_DAY]);
  byCountry.set('IS', new Map([['lone', [LONE_DAY]]]));
  await ingest(db.client, rows);
});

afterAll(async () => {
  await db?.drop();
});

async function series(
  window: 'rolling' | 'calendar',
  filters = {},
  groupBy: 'country'[] = [],
): Promise<ActiveUsersRow[]> {
  const { sql } = buildActiveUsersQuery({
    from: '2025-02-01',
    to: '2025-04-30',
    tz: 'UTC',
    window,
    filters,
    groupBy,
  });
  const rs = await db.client.query({ query: sql, format: 'JSONEachRow' });
  return rs.json<ActiveUsersRow>();
}

/** Users active on a day in [start, end] (UTC-midnight ms), of `users` (default: everyone's days). */
function activeIn(start: number, end: number, users: ReadonlyMap<string, number[]> = activity): number {
  let n = 0;
  for (const days of users.values()) if (days.some((d) => d >= start && d <= end)) n++;
  return n;
}

/** Users whose first active day (of `users`' days, all history) is `t`. */
function firstOn(t: number, users: ReadonlyMap<string, number[]> = activity): number {
  let n = 0;
  for (const days of users.values()) if (Math.min(...days) === t) n++;
  return n;
}

const monday = (ms: number): number => ms - ((new Date(ms).getUTCDay() + 6) % 7) * DAY_MS;
const monthStart = (ms: number): number =>
  Date.UTC(new Date(ms).getUTCFullYear(), new Date(ms).getUTCMonth(), 1);

describe('sketch windows from day blocks', () => {
  for (const window of ['rolling', 'calendar'] as const) {
    it(`${window}: every day's DAU, WAU and MAU equal the users active in its windows`, async () => {
      const got = await series(window);
      const from = Date.parse('2025-02-01T00:00:00Z');
      const to = Date.parse('2025-04-30T00:00:00Z');
      const expected = [];
      for (let t = from; t <= to; t += DAY_MS) {
        const rolling = window === 'rolling';
        expected.push({
          day: day(t),
          dau: activeIn(t, t),
          wau: activeIn(rolling ? t - 6 * DAY_MS : monday(t), t),
          mau: activeIn(rolling ? t - 29 * DAY_MS : monthStart(t), t),
          new_users: firstOn(t),
        });
      }
      expect(got.map(({ day, dau, wau, mau, new_users }) => ({ day, dau, wau, mau, new_users }))).toEqual(
        expected,
      );
    });
  }

  it('group-by country: each day and country once, windows and new users of that country only', async () => {
    const got = await series('rolling', {}, ['country']);
    const expected = [];
    for (let t = Date.parse('2025-02-01T00:00:00Z'); t <= Date.parse('2025-04-30T00:00:00Z'); t += DAY_MS)
      for (const [country, users] of [...byCountry].sort(([a], [b]) => (a < b ? -1 : 1))) {
        // A day appears for a group when the group has activity in its 31 days (the windows' look-back).
        if (activeIn(t - 30 * DAY_MS, t, users) === 0) continue;
        expected.push({
          day: day(t),
          country,
          dau: activeIn(t, t, users),
          wau: activeIn(t - 6 * DAY_MS, t, users),
          mau: activeIn(t - 29 * DAY_MS, t, users),
          new_users: firstOn(t, users),
        });
      }
    expect(
      got.map(({ day, country, dau, wau, mau, new_users }) => ({ day, country, dau, wau, mau, new_users })),
    ).toEqual(expected);
    // The data puts users in both countries on different days: a first day in FR after one in DE.
    const both = [...activity.keys()].filter((u) => COUNTRIES.every((c) => byCountry.get(c)?.has(u)));
    expect(both.length).toBeGreaterThan(5);
  });

  it('a user active only on the first day of a 30-day window counts in its MAU, in the WAU of 7 days only', async () => {
    const got = new Map((await series('rolling', { country: ['IS'] })).map((r) => [r.day, r]));
    const at = (offset: number) => {
      const r = got.get(day(LONE_DAY + offset * DAY_MS));
      return r && [r.dau, r.wau, r.mau];
    };
    expect(at(0)).toEqual([1, 1, 1]);
    expect(at(6)).toEqual([0, 1, 1]);
    expect(at(7)).toEqual([0, 0, 1]);
    expect(at(29)).toEqual([0, 0, 1]);
    expect(at(30)).toEqual([0, 0, 0]);
    expect(at(31)).toBeUndefined();
  });
});
