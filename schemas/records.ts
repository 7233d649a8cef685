/**
 * TypeScript shapes of the Avro records in this folder, as avsc encodes and decodes them (no
 * logical types: timestamp-millis is a number of ms, date a number of days). The collector builds
 * them (and the property test checks every built record encodes), the consumer reads them
 * (clickhouse/ingest-row.test.ts checks a row per record has exactly the .avsc fields).
 */
type Ms = number;

/**
 * Value ranges of the one contract: what the collector accepts is what Avro can encode and what
 * the ClickHouse columns can hold, on 18.16 as on current releases. The collector validates
 * against these, the consumer checks decoded records against the same constants, and
 * services/collector/validation/contract.test.ts drives each bound through Avro and a real insert.
 */
export const CONTRACT = {
  /**
   * Instants (timestamp-millis): UInt64 ms in the ingest tables, DateTime('UTC') (UInt32 seconds,
   * ends 2106-02-07) in the facts and dimensions. The last whole year before that end, so month
   * and week arithmetic on a value can never leave the type.
   */
  minTimeMs: 0,
  maxTimeMs: Date.UTC(2105, 11, 31, 23, 59, 59, 999),
  /**
   * When an activity happened (after clock-skew correction): nothing in this product predates
   * 2000, and an earlier time is a broken client clock or a unit mix-up (seconds sent as millis)
   * that would open a nonsense monthly partition of the facts. The collector's age window
   * (MAX_EVENT_AGE_DAYS) normally refuses such events first; this holds whatever it is set to.
   */
  minActivityTimeMs: Date.UTC(2000, 0, 1),
  /**
   * Calendar dates (Avro date, epoch days; birth_date is ISO text in ClickHouse). From 1900, the
   * start of Date32 on current ClickHouse; earlier values are placeholders such as .NET's
   * DateTime.MinValue (0001-01-01), not dates anyone was born on.
   */
  minDateDays: -25_567, // 1900-01-01
  maxDateDays: 49_672, // 2105-12-31
  /** avsc encodes a long only inside ±(2^53 - 2) (its isSafeLong), so that is the Avro long range. */
  maxLong: 9_007_199_254_740_990,
  /** Avro int and ClickHouse Int32. */
  maxInt: 2_147_483_647,
  /**
   * User-Agent strings are cut here: ua-parser-js reads only the first 500 characters anyway, and
   * a batch-level Segment context copies its user agent into every message of the batch.
   */
  maxUserAgentLength: 500,
} as const;

/**
 * The feature of an event that names none (a login, a page view): an ordinary value, counted like
 * any other. It is the data model's "unknown attribute" convention (the empty string, as for every
 * slice column); the query API filters it with `feature=` and the dashboard shows it as "(none)".
 */
export const NO_FEATURE = '';

/** schemas/user_activity.v1.avsc as avsc decodes it. */
export interface ActivityRecord {
  readonly event_id: string;
  readonly source: string;
  readonly received_at: Ms;
  readonly sent_at: Ms | null;
  readonly original_timestamp: Ms | null;
  readonly activity_timestamp: Ms;
  readonly user_id: string | null;
  readonly anonymous_id: string | null;
  readonly session_id: number | null;
  readonly duration_seconds: number | null;
  readonly activity_name: string;
  readonly activity_category: string | null;
  readonly is_conversion_event: boolean | null;
  readonly activity_weight: number | null;
  readonly feature_name: string;
  readonly feature_category: string | null;
  readonly is_core_feature: boolean | null;
  readonly feature_release_date: Ms | null;
  readonly feature_owner: string | null;
  readonly device_id: string | null;
  readonly device_type: string | null;
  readonly platform: string | null;
  readonly os_version: string | null;
  readonly app_version: string | null;
  readonly browser_name: string | null;
  readonly browser_version: string | null;
  readonly continent_code: string | null;
  readonly country_code: string | null;
  readonly country_name: string | null;
  readonly region_code: string | null;
  readonly region_name: string | null;
  readonly city_name: string | null;
  readonly postal_code: string | null;
  readonly latitude: number | null;
  readonly longitude: number | null;
  readonly timezone: string | null;
  readonly registration_date: Ms | null;
  /** Avro date: days since 1970-01-01 (negative before). */
  readonly birth_date: number | null;
  readonly gender: string | null;
  readonly segment_name: string | null;
  readonly segment_description: string | null;
  readonly segment_category: string | null;
  readonly account_status: string | null;
  readonly is_test_account: boolean;
  readonly user_attributes: string | null;
  readonly client_ip: string | null;
  readonly user_agent: string | null;
  readonly is_bot: boolean;
  readonly activity_metadata: string;
  readonly details: readonly { readonly detail_type: string; readonly detail_payload: string }[];
}

/** schemas/user_identify.v1.avsc as avsc decodes it. */
export interface IdentifyRecord {
  readonly event_id: string;
  readonly source: string;
  readonly received_at: Ms;
  readonly sent_at: Ms | null;
  readonly identified_at: Ms;
  readonly kind: 'identify' | 'alias';
  readonly user_id: string;
  readonly anonymous_id: string | null;
  readonly previous_id: string | null;
  readonly registration_date: Ms | null;
  readonly birth_date: number | null;
  readonly gender: string | null;
  readonly segment_name: string | null;
  readonly segment_description: string | null;
  readonly segment_category: string | null;
  readonly account_status: string | null;
  readonly is_test_account: boolean | null;
  readonly country_code: string | null;
  readonly user_attributes: string | null;
  readonly client_ip: string | null;
  readonly user_agent: string | null;
}
