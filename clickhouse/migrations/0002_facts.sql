-- Why: the seed's fact tables, fed from the ingest table. One row per event (duplicates included
-- until merges collapse them). Keys are deterministic hashes of natural keys (cityHash64), so the
-- views need no lookup: user_key = cityHash64(actor_id), feature_key = cityHash64(feature_name),
-- activity_type_key = cityHash64(activity_name), device_key = cityHash64 of the device attribute
-- tuple, geography_key = cityHash64(country_code, region_code, city_name, postal_code).
-- date_key = YYYYMMDD and time_key = HHMMSS of activity_timestamp in UTC.
--
-- Engine: ReplacingMergeTree whose sorting key ends in activity_id = cityHash64(event_id): a
-- re-delivered event has the same key and collapses on merge. Reads never rely on merges having
-- happened: event counts use uniqExact(event_id) and user counts are sketches (idempotent).
-- Partition by month: retention drops whole months (clickhouse/retention.ts); no TTL on 18.16.
-- Order (date_key, feature_key, user_key, activity_id): the fact reads are a date range first,
-- then per-feature slices; user_key next keeps one user's events together for uniq(user_key).
--
-- The slice attributes are denormalised onto the row as they were at event time (fact reads and
-- rollup rebuilds need no join). is_first_daily_activity cannot be known at insert time in a
-- streaming, at-least-once pipeline without a read per event; it is written as 0 and the rollups
-- (uniq of user_key per day) replace it. See clickhouse/README.md.
CREATE TABLE IF NOT EXISTS fact_user_activity (
  activity_id UInt64,
  event_id String,
  user_key UInt64,
  date_key UInt32,
  time_key UInt32,
  feature_key UInt64,
  device_key UInt64,
  geography_key UInt64,
  activity_type_key UInt64,
  activity_timestamp DateTime('UTC'),
  session_id Nullable(Int64),
  duration_seconds Nullable(Int32),
  is_first_daily_activity UInt8,
  client_ip Nullable(String),
  activity_metadata String,
  source String,
  actor_id String,
  user_id Nullable(String),
  anonymous_id Nullable(String),
  received_at DateTime('UTC'),
  ingested_at DateTime('UTC'),
  feature String,
  feature_category String,
  activity_type String,
  device_type String,
  platform String,
  app_version String,
  continent String,
  country String,
  region String,
  city_name String,
  segment String,
  gender String,
  age_band String,
  is_test_account UInt8,
  is_bot UInt8
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(activity_timestamp)
ORDER BY (date_key, feature_key, user_key, activity_id);

-- 18.16 executes a materialized view's outermost SELECT directly on the inserted block (a
-- subquery in FROM is not supported there), so the views are flat. An alias equal to a source
-- column (activity_timestamp) replaces that column in every other expression of the SELECT:
-- date_key and time_key are therefore written against the converted DateTime on purpose.
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_fact_user_activity TO fact_user_activity AS
SELECT
  cityHash64(event_id) AS activity_id,
  event_id,
  cityHash64(actor_id) AS user_key,
  toYYYYMMDD(activity_timestamp) AS date_key,
  toUInt32(toHour(activity_timestamp) * 10000 + toMinute(activity_timestamp) * 100 + toSecond(activity_timestamp)) AS time_key,
  cityHash64(feature_name) AS feature_key,
  cityHash64(ifNull(device_id, ''), ifNull(device_type, ''), ifNull(platform, ''), ifNull(os_version, ''),
    ifNull(app_version, ''), ifNull(browser_name, ''), ifNull(browser_version, '')) AS device_key,
  cityHash64(ifNull(country_code, ''), ifNull(region_code, ''), ifNull(city_name, ''), ifNull(postal_code, '')) AS geography_key,
  cityHash64(activity_name) AS activity_type_key,
  toDateTime(intDiv(activity_timestamp, 1000), 'UTC') AS activity_timestamp,
  session_id,
  duration_seconds,
  toUInt8(0) AS is_first_daily_activity,
  client_ip,
  activity_metadata,
  source,
  actor_id,
  user_id,
  anonymous_id,
  toDateTime(intDiv(received_at, 1000), 'UTC') AS received_at,
  now() AS ingested_at,
  feature_name AS feature,
  ifNull(feature_category, '') AS feature_category,
  activity_name AS activity_type,
  ifNull(device_type, '') AS device_type,
  ifNull(platform, '') AS platform,
  ifNull(app_version, '') AS app_version,
  ifNull(continent_code, '') AS continent,
  ifNull(country_code, '') AS country,
  ifNull(region_code, '') AS region,
  ifNull(city_name, '') AS city_name,
  ifNull(segment_name, '') AS segment,
  ifNull(gender, '') AS gender,
  age_band,
  is_test_account,
  is_bot
FROM ingest_user_activity;

-- One row per element of the event's details array; detail_id = cityHash64(event_id, position) so
-- a re-delivered event produces the same ids and collapses like the fact row.
CREATE TABLE IF NOT EXISTS fact_activity_details (
  detail_id UInt64,
  activity_id UInt64,
  event_id String,
  date_key UInt32,
  activity_timestamp DateTime('UTC'),
  detail_type String,
  detail_payload String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(activity_timestamp)
ORDER BY (activity_id, detail_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS mv_fact_activity_details TO fact_activity_details AS
SELECT
  cityHash64(event_id, detail_position) AS detail_id,
  cityHash64(event_id) AS activity_id,
  event_id,
  toYYYYMMDD(activity_timestamp) AS date_key,
  toDateTime(intDiv(activity_timestamp, 1000), 'UTC') AS activity_timestamp,
  details.detail_type AS detail_type,
  details.detail_payload AS detail_payload
FROM ingest_user_activity
ARRAY JOIN details, arrayEnumerate(details.detail_type) AS detail_position;
