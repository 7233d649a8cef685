/**
 * Conformance: the same migrations and a sample of rollup and exact (fact-scan) queries run on
 * current ClickHouse (chDB) with the same results as on the 18.16 server. Small data set (the
 * accuracy tests live in datamodel.test.ts); dim_dates generation is TS-side and identical on both,
 * so it is skipped here.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IngestActivityRow } from '../../services/consumer/ingest-row.ts';
import { profileQuery } from '../../services/consumer/lookups.ts';
import { loadMigrations, migrate } from '../../services/lib/datamodel/migrate.ts';
import { doneQuery, marksQuery } from '../../services/lib/finished-days.ts';
import { DAY_MS } from '../../services/lib/time.ts';
import { finishedRowsQuery } from '../../services/query/finished.ts';
import {
  buildActiveUsersQuery,
  buildDimensionValuesQuery,
  buildEventCountsQuery,
} from '../../services/query/sql/builder.ts';
import { newUsersQuery, windowsQuery } from '../../services/refresher/sql.ts';
import { runChdb } from '../harness/chdb.ts';
import { testRefresher } from '../harness/refresher.ts';
import { freshDatabase, type TestDatabase } from '../harness/services.ts';
import { generate, localDay } from './datamodel-dataset.ts';

let db: TestDatabase;

beforeAll(async () => {
  db = await freshDatabase('datamodel_chdb');
  await migrate({ client: db.client, database: db.name });
});
afterAll(async () => {
  await db?.drop();
});

describe('current ClickHouse (chDB)', () => {
  it('applies the migrations and returns the same rollup answers as 18.16', async () => {
    const lastDay = Date.UTC(2024, 2, 31);
    const data = generate(11, 200, 40, lastDay);
    // Newer events of a few users that carry no profile attribute (written by a consumer that did
    // not know the user yet), the newest of the data set: dim_users gives them version 0.
    const actors = [...new Set(data.rows.map((r) => r.actor_id))].sort().slice(0, 20);
    const bare: IngestActivityRow[] = actors.slice(0, 10).map((actor, i) => ({
      ...(data.rows.find((r) => r.actor_id === actor) as IngestActivityRow),
      event_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      activity_timestamp: lastDay + DAY_MS - 1_000,
      registration_date: null,
      birth_date: null,
      age_band: '',
      gender: null,
      segment_name: null,
      segment_description: null,
      segment_category: null,
      account_status: null,
      is_test_account: 0,
      user_attributes: null,
    }));
    const rows = [...data.rows, ...bare];
    await db.client.insert({ table: 'ingest_user_activity', format: 'JSONEachRow', values: rows });
    // Finished numbers as the refresher writes them on 18.16; chDB gets the same rows, so the view
    // and the reads over them are compared, and the refresher's own queries are run on both.
    await testRefresher(db.client).pass();
    const finished: string[] = [];
    for (const table of ['agg_active_users_daily', 'agg_active_users_days']) {
      const rs = await db.client.query({ query: `SELECT * FROM ${table}`, format: 'JSONEachRow' });
      const all = (await rs.json()) as object[];
      expect(all.length, table).toBeGreaterThan(0);
      finished.push(
        `INSERT INTO ${table} FORMAT JSONEachRow ${all.map((r) => JSON.stringify(r)).join('\n')}`,
      );
    }
    const from = localDay(lastDay - 6 * DAY_MS, 'UTC');
    const to = localDay(lastDay, 'UTC');
    const queries = [
      buildActiveUsersQuery({ from, to, tz: 'UTC', window: 'rolling' }).sql,
      buildActiveUsersQuery({
        from,
        to,
        tz: 'America/New_York',
        window: 'calendar',
        groupBy: ['country', 'platform'],
      }).sql,
      // 35 days grouped: the builder's split into window branches of days and user_key ranges.
      buildActiveUsersQuery({
        from: localDay(lastDay - 34 * DAY_MS, 'UTC'),
        to,
        tz: 'UTC',
        window: 'rolling',
        groupBy: ['country', 'platform'],
      }).sql,
      buildActiveUsersQuery({
        from,
        to,
        tz: 'Asia/Kolkata',
        window: 'rolling',
        filters: { feature: ['search', 'chat'] },
      }).sql,
      buildActiveUsersQuery({
        from,
        to,
        tz: 'Asia/Kathmandu',
        window: 'calendar',
        groupBy: ['platform'],
        exact: true,
      }).sql,
      buildEventCountsQuery({ from, to, tz: 'Europe/Berlin', groupBy: ['age_band'] }).sql,
      buildDimensionValuesQuery({ from, to, tz: 'UTC', dimension: 'segment', limit: 100 }).sql,
      `SELECT date_key, toString(feature_key) AS feature, toString(device_type_key) AS device_type,
         toString(geography_country_key) AS country, toString(user_segment_key) AS segment,
         dau_count, wau_count, mau_count, new_user_count, returning_user_count FROM dim_agg_daily_active
       -- UInt64 as text: 18.16 quotes 64-bit integers in JSON, current releases do not.
       WHERE date_key BETWEEN ${from.replaceAll('-', '')} AND ${to.replaceAll('-', '')}
       ORDER BY date_key, feature, device_type, country, segment`,
      `SELECT * FROM (${windowsQuery('Asia/Kolkata', from, to)}) ORDER BY day, kind, value`,
      `SELECT * FROM (${newUsersQuery('America/New_York', from, to)}) ORDER BY day, kind, value`,
      `SELECT * FROM (${finishedRowsQuery('UTC', { kind: 3 }, from, to)}) ORDER BY day, value`,
      `SELECT * FROM (${doneQuery('UTC', from, to)}) ORDER BY day`,
      // Marks carry now(): only their hours compare.
      `SELECT toUInt32(count()) AS hours FROM (${marksQuery()})`,
      `SELECT * FROM (${profileQuery(actors)}) ORDER BY user_id`,
      `SELECT user_id, toString(version) AS version FROM dim_users FINAL
       WHERE user_id IN (${actors.map((a) => `'${a}'`).join(',')}) ORDER BY user_id`,
    ];
    const server: string[] = [];
    for (const q of queries) {
      const rs = await db.client.query({ query: q, format: 'JSONEachRow' });
      server.push(JSON.stringify(await rs.json()));
    }
    const statements = [
      ...loadMigrations().flatMap((m) => m.statements.map((sql) => ({ sql }))),
      // chDB keeps data in a session folder; rows go through the same ingest table and views.
      {
        sql: `INSERT INTO ingest_user_activity FORMAT JSONEachRow ${rows.map((r) => JSON.stringify(r)).join('\n')}`,
      },
      ...finished.map((sql) => ({ sql })),
      ...queries.map((sql) => ({ sql, format: 'JSONEachRow' })),
    ];
    const dir = mkdtempSync(join(tmpdir(), 'chdb-datamodel-'));
    const { results } = runChdb(dir, statements);
    const current = results.slice(-queries.length).map((text) =>
      JSON.stringify(
        text
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l)),
      ),
    );
    for (let i = 0; i < queries.length; i++) expect(current[i], queries[i]).toBe(server[i]);
    expect(JSON.parse(server[0] ?? '[]').length).toBe(7);
    // Every generated event carries account_status: the bare newer rows hide it neither from the
    // look-up nor from the merged table.
    const profiles = JSON.parse(server[queries.length - 2] ?? '[]') as { account_status: string | null }[];
    expect(profiles.map((p) => p.account_status)).toEqual(actors.map(() => 'active'));
    const versions = JSON.parse(server[queries.length - 1] ?? '[]') as { version: string }[];
    expect(versions.filter((v) => v.version === '0')).toEqual([]);
  });
});
