import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { addedColumn, loadMigrations, splitStatements } from '../lib/datamodel/migrate.ts';
import {
  type ActivityRecord,
  ageBand,
  type IdentifyRecord,
  toIngestActivityRow,
  toIngestIdentifyRow,
} from './ingest-row.ts';

const avroFields = (file: string): string[] =>
  (
    JSON.parse(readFileSync(new URL(`../../schemas/${file}`, import.meta.url), 'utf8')) as {
      fields: { name: string }[];
    }
  ).fields.map((f) => f.name);

/** Column names of an ingest table after every migration: its CREATE (Nested expanded) + ADD COLUMNs. */
function ingestColumns(table: string): string[] {
  const statements = loadMigrations().flatMap((m) => m.statements);
  const create = statements.find((s) => s.includes(`EXISTS ${table} (`)) ?? '';
  return [
    ...[...create.matchAll(/^ {2}([a-z_]+) (\w+)(?:\((.*)\))?,?$/gm)].flatMap(([, name, type, args]) =>
      type === 'Nested'
        ? [...(args ?? '').matchAll(/(\w+) String/g)].map((m) => `${name}.${m[1]}`)
        : [name as string],
    ),
    ...statements.flatMap((s) => {
      const add = addedColumn(s);
      return add?.table === table ? [add.column] : [];
    }),
  ];
}

const activity: ActivityRecord = {
  event_id: '7d9f4c2e-0000-4000-8000-000000000001',
  source: 'web',
  received_at: Date.UTC(2024, 6, 15, 10),
  sent_at: null,
  original_timestamp: null,
  activity_timestamp: Date.UTC(2024, 6, 15, 10),
  user_id: null,
  anonymous_id: 'a-1',
  session_id: 12,
  duration_seconds: null,
  activity_name: 'click',
  activity_category: null,
  is_conversion_event: true,
  activity_weight: null,
  feature_name: 'search',
  feature_category: null,
  is_core_feature: null,
  feature_release_date: null,
  feature_owner: null,
  device_id: null,
  device_type: 'mobile',
  platform: 'ios',
  os_version: null,
  app_version: null,
  browser_name: null,
  browser_version: null,
  continent_code: null,
  country_code: 'DE',
  country_name: null,
  region_code: null,
  region_name: null,
  city_name: null,
  postal_code: null,
  latitude: null,
  longitude: null,
  timezone: null,
  registration_date: null,
  birth_date: Date.UTC(1960, 6, 16) / 86_400_000,
  gender: null,
  segment_name: null,
  segment_description: null,
  segment_category: null,
  account_status: null,
  is_test_account: false,
  user_attributes: null,
  client_ip: null,
  user_agent: null,
  is_bot: true,
  activity_metadata: '{}',
  details: [
    { detail_type: 'q', detail_payload: '{"q":1}' },
    { detail_type: 'r', detail_payload: '[]' },
  ],
};

describe('toIngestActivityRow', () => {
  it('covers every Avro field and exactly the columns of ingest_user_activity', () => {
    const row = toIngestActivityRow(activity);
    // `details` stays on the row as undefined (a cheaper copy); no insert writes it.
    const written = Object.entries(row)
      .filter(([, v]) => v !== undefined)
      .map(([k]) => k);
    const expected = [
      ...avroFields('user_activity.v1.avsc').filter((f) => f !== 'details'),
      'actor_id',
      'age_band',
      'is_first_daily_activity',
    ];
    expect(written.filter((k) => !k.startsWith('details.')).sort()).toEqual(expected.sort());
    expect(written.sort()).toEqual(ingestColumns('ingest_user_activity').sort());
  });

  it('maps values to the column types', () => {
    const row = toIngestActivityRow(activity);
    expect(row.birth_date).toBe('1960-07-16');
    expect(row.age_band).toBe('55-64'); // the day before the 64th birthday
    expect([row.is_bot, row.is_test_account, row.is_conversion_event, row.is_core_feature]).toEqual([
      1,
      0,
      1,
      null,
    ]);
    expect(row['details.detail_type']).toEqual(['q', 'r']);
    expect(row['details.detail_payload']).toEqual(['{"q":1}', '[]']);
    expect(row.activity_timestamp).toBe(activity.activity_timestamp);
    expect(row.is_first_daily_activity).toBe(0);
    expect(toIngestActivityRow(activity, { isFirstDailyActivity: true }).is_first_daily_activity).toBe(1);
  });

  it('counts the user id, else the resolved id, else the prefixed anonymous id', () => {
    expect(toIngestActivityRow(activity).actor_id).toBe('anon:a-1');
    expect(toIngestActivityRow(activity, { resolvedUserId: 'u-9' })).toMatchObject({
      actor_id: 'u-9',
      user_id: 'u-9',
    });
    expect(toIngestActivityRow({ ...activity, user_id: 'u-1' }, { resolvedUserId: 'u-9' })).toMatchObject({
      actor_id: 'u-1',
      user_id: 'u-1',
    });
    expect(() => toIngestActivityRow({ ...activity, anonymous_id: null })).toThrow(
      expect.objectContaining({ code: 'INGEST_ROW_NO_IDENTITY', retriable: false }),
    );
  });

  it('bands ages on birthdays', () => {
    const at = Date.UTC(2024, 0, 10);
    const days = (y: number, m: number, d: number): number => Date.UTC(y, m, d) / 86_400_000;
    expect(ageBand(null, at)).toBe('');
    expect(ageBand(days(2006, 0, 10), at)).toBe('18-24');
    expect(ageBand(days(2006, 0, 11), at)).toBe('<18');
    expect(ageBand(days(1959, 0, 10), at)).toBe('65+');
    expect(ageBand(days(2030, 0, 1), at)).toBe('');
  });
});

describe('toIngestIdentifyRow', () => {
  it('covers exactly the columns of ingest_user_identify', () => {
    const rec: IdentifyRecord = {
      event_id: 'e',
      source: 's',
      received_at: 1,
      sent_at: null,
      identified_at: 1,
      kind: 'alias',
      user_id: 'u',
      anonymous_id: null,
      previous_id: 'old',
      registration_date: null,
      birth_date: -1,
      gender: null,
      segment_name: null,
      segment_description: null,
      segment_category: null,
      account_status: null,
      is_test_account: true,
      country_code: null,
      user_attributes: null,
      client_ip: null,
      user_agent: null,
    };
    const row = toIngestIdentifyRow(rec);
    expect(Object.keys(row).sort()).toEqual(avroFields('user_identify.v1.avsc').sort());
    expect(Object.keys(row).sort()).toEqual(ingestColumns('ingest_user_identify').sort());
    expect(row).toMatchObject({ birth_date: '1969-12-31', is_test_account: 1 });
  });
});

describe('addedColumn', () => {
  it('names the one column an ALTER adds and refuses several per statement', () => {
    expect(addedColumn('ALTER TABLE t ADD COLUMN c UInt8 DEFAULT 0')).toEqual({ table: 't', column: 'c' });
    expect(addedColumn('CREATE TABLE t (c UInt8) ENGINE = Null')).toBeUndefined();
    expect(() => addedColumn('ALTER TABLE t ADD COLUMN a UInt8, ADD COLUMN b UInt8')).toThrow(
      expect.objectContaining({ code: 'MIGRATION_ADD_COLUMNS' }),
    );
  });
});

describe('splitStatements', () => {
  it('drops comment lines and splits on line-ending semicolons only', () => {
    expect(splitStatements("-- why\nCREATE TABLE a (x String DEFAULT ';');\n\n-- c;\nSELECT 1;\n")).toEqual([
      "CREATE TABLE a (x String DEFAULT ';')",
      'SELECT 1',
    ]);
  });
});
