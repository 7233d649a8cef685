/**
 * What the consumer needs from the ClickHouse schema, in one place: every column the row builder
 * (services/consumer/ingest-row.ts) writes to the ingest tables, with the type its values are built for,
 * and the dim_users columns the profile look-up reads.
 *
 * Why it is checked: a row ClickHouse refuses for its content is dead-lettered (sink.ts), so a
 * table that disagrees with the row builder (migrations not applied, a column dropped or retyped)
 * would send every event to the DLQ. The consumer checks the schema at start (waiting until it
 * matches) and again before it dead-letters anything, so a mismatch is retried as the deployment
 * problem it is. The lists are typed by the row types, so a field added to a row without its
 * column here fails to compile; test/integration/consumer-schema.test.ts compares them with the
 * migrated tables.
 */

import type { ClickHouseClient } from '../lib/clickhouse.ts';
import { CONSUMER_CODES } from '../lib/error-codes.ts';
import { PipelineError } from '../lib/errors.ts';
import { quoteString } from '../lib/sql.ts';
import type { IngestActivityRow, IngestIdentifyRow } from './ingest-row.ts';

export const INGEST_TABLES = {
  activity: 'ingest_user_activity',
  identify: 'ingest_user_identify',
} as const;

type Columns<Row> = { readonly [K in keyof Row]-?: string };

/** ingest_user_activity: migration 0001, plus is_first_daily_activity (0007). */
const ACTIVITY_COLUMNS = {
  event_id: 'String',
  source: 'String',
  received_at: 'UInt64',
  sent_at: 'Nullable(UInt64)',
  original_timestamp: 'Nullable(UInt64)',
  activity_timestamp: 'UInt64',
  user_id: 'Nullable(String)',
  anonymous_id: 'Nullable(String)',
  actor_id: 'String',
  session_id: 'Nullable(Int64)',
  duration_seconds: 'Nullable(Int32)',
  activity_name: 'String',
  activity_category: 'Nullable(String)',
  is_conversion_event: 'Nullable(UInt8)',
  activity_weight: 'Nullable(Int32)',
  feature_name: 'String',
  feature_category: 'Nullable(String)',
  is_core_feature: 'Nullable(UInt8)',
  feature_release_date: 'Nullable(UInt64)',
  feature_owner: 'Nullable(String)',
  device_id: 'Nullable(String)',
  device_type: 'Nullable(String)',
  platform: 'Nullable(String)',
  os_version: 'Nullable(String)',
  app_version: 'Nullable(String)',
  browser_name: 'Nullable(String)',
  browser_version: 'Nullable(String)',
  continent_code: 'Nullable(String)',
  country_code: 'Nullable(String)',
  country_name: 'Nullable(String)',
  region_code: 'Nullable(String)',
  region_name: 'Nullable(String)',
  city_name: 'Nullable(String)',
  postal_code: 'Nullable(String)',
  latitude: 'Nullable(Float64)',
  longitude: 'Nullable(Float64)',
  timezone: 'Nullable(String)',
  registration_date: 'Nullable(UInt64)',
  birth_date: 'Nullable(String)',
  age_band: 'String',
  gender: 'Nullable(String)',
  segment_name: 'Nullable(String)',
  segment_description: 'Nullable(String)',
  segment_category: 'Nullable(String)',
  account_status: 'Nullable(String)',
  is_test_account: 'UInt8',
  user_attributes: 'Nullable(String)',
  client_ip: 'Nullable(String)',
  user_agent: 'Nullable(String)',
  is_bot: 'UInt8',
  activity_metadata: 'String',
  'details.detail_type': 'Array(String)',
  'details.detail_payload': 'Array(String)',
  is_first_daily_activity: 'UInt8',
} as const satisfies Columns<IngestActivityRow>;

/** ingest_user_identify: migration 0001. */
const IDENTIFY_COLUMNS = {
  event_id: 'String',
  source: 'String',
  received_at: 'UInt64',
  sent_at: 'Nullable(UInt64)',
  identified_at: 'UInt64',
  kind: 'String',
  user_id: 'String',
  anonymous_id: 'Nullable(String)',
  previous_id: 'Nullable(String)',
  registration_date: 'Nullable(UInt64)',
  birth_date: 'Nullable(String)',
  gender: 'Nullable(String)',
  segment_name: 'Nullable(String)',
  segment_description: 'Nullable(String)',
  segment_category: 'Nullable(String)',
  account_status: 'Nullable(String)',
  is_test_account: 'Nullable(UInt8)',
  country_code: 'Nullable(String)',
  user_attributes: 'Nullable(String)',
  client_ip: 'Nullable(String)',
  user_agent: 'Nullable(String)',
} as const satisfies Columns<IngestIdentifyRow>;

/** Column -> ClickHouse type, per table the consumer writes or reads. */
export const EXPECTED_COLUMNS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  [INGEST_TABLES.activity]: ACTIVITY_COLUMNS,
  [INGEST_TABLES.identify]: IDENTIFY_COLUMNS,
  // Read by the profile look-up (lookups.ts); the newest ones come from migration 0008.
  dim_users: {
    user_key: 'UInt64',
    user_id: 'String',
    version: 'UInt64',
    registration_date: "Nullable(DateTime('UTC'))",
    birth_date: 'Nullable(String)',
    gender: 'Nullable(String)',
    segment_name: 'Nullable(String)',
    segment_description: 'Nullable(String)',
    segment_category: 'Nullable(String)',
    account_status: 'Nullable(String)',
    country_code: 'Nullable(String)',
    is_test_account: 'UInt8',
    user_attributes: 'Nullable(String)',
  },
};

/** The columns the consumer inserts into an ingest table, in the order it sends them. */
export function ingestColumns(table: string): readonly string[] {
  return Object.keys(EXPECTED_COLUMNS[table] ?? {});
}

/**
 * A value built for `expected` fits the column when the types are equal, or when the column is the
 * Nullable of it (it accepts every value the builder makes, and null besides).
 */
export function compatible(expected: string, actual: string): boolean {
  return actual === expected || actual === `Nullable(${expected})`;
}

/**
 * What is wrong with `tables` (default: all of EXPECTED_COLUMNS) in the client's database, one line
 * per missing or incompatible column; empty when the consumer can write and read them.
 */
export async function schemaProblems(
  client: ClickHouseClient,
  tables: readonly string[] = Object.keys(EXPECTED_COLUMNS),
): Promise<string[]> {
  const rs = await client.query({
    query: `SELECT table, name, type FROM system.columns
            WHERE database = currentDatabase() AND table IN (${tables.map(quoteString).join(',')})`,
    format: 'JSONEachRow',
  });
  const actual = new Map(
    (await rs.json<{ table: string; name: string; type: string }>()).map((r) => [
      `${r.table}.${r.name}`,
      r.type,
    ]),
  );
  const problems: string[] = [];
  for (const table of tables) {
    for (const [column, expected] of Object.entries(EXPECTED_COLUMNS[table] ?? {})) {
      const type = actual.get(`${table}.${column}`);
      if (type === undefined) problems.push(`${table}.${column} is missing (expected ${expected})`);
      else if (!compatible(expected, type))
        problems.push(`${table}.${column} is ${type}, expected ${expected}`);
    }
  }
  return problems;
}

/** The error the start-up schema wait retries on (retriable: applying the migrations fixes it). */
export function schemaMismatch(problems: readonly string[]): PipelineError | undefined {
  if (problems.length === 0) return undefined;
  return new PipelineError(
    CONSUMER_CODES.schemaOutdated,
    `ClickHouse does not match this consumer: ${problems.join('; ')} (run the migrations: npm run migrate)`,
    { retriable: true },
  );
}
