-- Why: the seed's dimension tables plus the identity map, all fed from the ingest tables so a
-- batch is still one insert. ReplacingMergeTree(version): the row with the latest event time
-- (epoch ms) per key wins after merges; read with FINAL (or argMax) when the exact latest row
-- matters. Each view keeps only the newest row per key of its block (ORDER BY activity_timestamp DESC
-- LIMIT 1 BY key), so a batch of 10k events writes a handful of dimension rows, not 10k.
-- Views are flat SELECTs (18.16 runs a view's outermost SELECT on the inserted block); aliases
-- that equal a source column (registration_date, ...) convert that column in place.

CREATE TABLE IF NOT EXISTS dim_users (
  user_key UInt64,
  user_id String,
  registration_date Nullable(DateTime('UTC')),
  user_segment_key UInt64,
  account_status Nullable(String),
  birth_date Nullable(String),
  gender Nullable(String),
  is_test_account UInt8,
  user_attributes Nullable(String),
  segment_name Nullable(String),
  version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY user_key;

-- Activity events carry the profile as it was at event time (the consumer enriches them from this
-- table), so they keep dim_users current for users that never sent an identify (anonymous ones).
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_dim_users_from_activity TO dim_users AS
SELECT cityHash64(actor_id) AS user_key, actor_id AS user_id,
  if(isNull(registration_date), CAST(NULL AS Nullable(DateTime('UTC'))), toDateTime(intDiv(assumeNotNull(registration_date), 1000), 'UTC')) AS registration_date,
  cityHash64(ifNull(segment_name, '')) AS user_segment_key,
  account_status, birth_date, gender, is_test_account, user_attributes, segment_name,
  activity_timestamp AS version
FROM ingest_user_activity
ORDER BY activity_timestamp DESC
LIMIT 1 BY user_key;

-- identify carries the full profile (the collector sends every trait it knows, not a delta).
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_dim_users_from_identify TO dim_users AS
SELECT cityHash64(user_id) AS user_key, user_id,
  if(isNull(registration_date), CAST(NULL AS Nullable(DateTime('UTC'))), toDateTime(intDiv(assumeNotNull(registration_date), 1000), 'UTC')) AS registration_date,
  cityHash64(ifNull(segment_name, '')) AS user_segment_key,
  account_status, birth_date, gender, ifNull(is_test_account, 0) AS is_test_account, user_attributes, segment_name,
  identified_at AS version
FROM ingest_user_identify
WHERE kind = 'identify'
ORDER BY identified_at DESC
LIMIT 1 BY user_key;

CREATE TABLE IF NOT EXISTS dim_user_segments (
  user_segment_key UInt64,
  segment_name String,
  segment_description Nullable(String),
  segment_category Nullable(String),
  version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY user_segment_key;

CREATE MATERIALIZED VIEW IF NOT EXISTS mv_dim_user_segments_from_activity TO dim_user_segments AS
SELECT cityHash64(ifNull(segment_name, '')) AS user_segment_key, ifNull(segment_name, '') AS segment_name,
  segment_description, segment_category, activity_timestamp AS version
FROM ingest_user_activity
ORDER BY activity_timestamp DESC
LIMIT 1 BY user_segment_key;

CREATE MATERIALIZED VIEW IF NOT EXISTS mv_dim_user_segments_from_identify TO dim_user_segments AS
SELECT cityHash64(ifNull(segment_name, '')) AS user_segment_key, ifNull(segment_name, '') AS segment_name,
  segment_description, segment_category, identified_at AS version
FROM ingest_user_identify
WHERE kind = 'identify' AND segment_name != ''
ORDER BY identified_at DESC
LIMIT 1 BY user_segment_key;

CREATE TABLE IF NOT EXISTS dim_features (
  feature_key UInt64,
  feature_name String,
  feature_category Nullable(String),
  is_core_feature Nullable(UInt8),
  feature_release_date Nullable(DateTime('UTC')),
  feature_owner Nullable(String),
  version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY feature_key;

CREATE MATERIALIZED VIEW IF NOT EXISTS mv_dim_features TO dim_features AS
SELECT cityHash64(feature_name) AS feature_key, feature_name, feature_category, is_core_feature,
  if(isNull(feature_release_date), CAST(NULL AS Nullable(DateTime('UTC'))),
    toDateTime(intDiv(assumeNotNull(feature_release_date), 1000), 'UTC')) AS feature_release_date,
  feature_owner, activity_timestamp AS version
FROM ingest_user_activity
ORDER BY activity_timestamp DESC
LIMIT 1 BY feature_key;

CREATE TABLE IF NOT EXISTS dim_devices (
  device_key UInt64,
  device_id Nullable(String),
  device_type Nullable(String),
  platform Nullable(String),
  os_version Nullable(String),
  app_version Nullable(String),
  browser_name Nullable(String),
  browser_version Nullable(String),
  version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY device_key;

-- The key hashes every attribute (same expression as mv_fact_user_activity): a device that
-- upgrades its app gets a new row, so facts keep pointing at the attributes they had.
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_dim_devices TO dim_devices AS
SELECT
  cityHash64(ifNull(device_id, ''), ifNull(device_type, ''), ifNull(platform, ''), ifNull(os_version, ''),
    ifNull(app_version, ''), ifNull(browser_name, ''), ifNull(browser_version, '')) AS device_key,
  device_id, device_type, platform, os_version, app_version, browser_name, browser_version,
  activity_timestamp AS version
FROM ingest_user_activity
ORDER BY activity_timestamp DESC
LIMIT 1 BY device_key;

CREATE TABLE IF NOT EXISTS dim_geographies (
  geography_key UInt64,
  continent_code Nullable(String),
  country_code Nullable(String),
  country_name Nullable(String),
  region_code Nullable(String),
  region_name Nullable(String),
  city_name Nullable(String),
  postal_code Nullable(String),
  latitude Nullable(Float64),
  longitude Nullable(Float64),
  timezone Nullable(String),
  version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY geography_key;

CREATE MATERIALIZED VIEW IF NOT EXISTS mv_dim_geographies TO dim_geographies AS
SELECT
  cityHash64(ifNull(country_code, ''), ifNull(region_code, ''), ifNull(city_name, ''), ifNull(postal_code, '')) AS geography_key,
  continent_code, country_code, country_name, region_code, region_name, city_name, postal_code,
  latitude, longitude, timezone, activity_timestamp AS version
FROM ingest_user_activity
ORDER BY activity_timestamp DESC
LIMIT 1 BY geography_key;

CREATE TABLE IF NOT EXISTS dim_activity_types (
  activity_type_key UInt64,
  activity_name String,
  activity_category Nullable(String),
  is_conversion_event Nullable(UInt8),
  activity_weight Nullable(Int32),
  version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY activity_type_key;

CREATE MATERIALIZED VIEW IF NOT EXISTS mv_dim_activity_types TO dim_activity_types AS
SELECT cityHash64(activity_name) AS activity_type_key, activity_name, activity_category, is_conversion_event,
  activity_weight, activity_timestamp AS version
FROM ingest_user_activity
ORDER BY activity_timestamp DESC
LIMIT 1 BY activity_type_key;

-- Filled by clickhouse/dim-dates.ts (run by the migrator after the SQL files): holidays come from
-- the date-holidays package, not typed here. day_of_week and week_of_year are ISO (Monday = 1).
CREATE TABLE IF NOT EXISTS dim_dates (
  date_key UInt32,
  full_date Date,
  day_of_week UInt8,
  day_of_month UInt8,
  day_of_year UInt16,
  week_of_year UInt8,
  iso_year UInt16,
  week_start Date,
  month_number UInt8,
  quarter UInt8,
  year UInt16,
  is_weekend UInt8,
  is_holiday UInt8,
  holiday_name String,
  holiday_country String
) ENGINE = ReplacingMergeTree
ORDER BY date_key;

-- identity_map: anonymous (or earlier) id -> user id, from identify (anonymous_id) and alias
-- (previous_id). The consumer resolves ids through it BEFORE inserting activity; the earliest
-- link wins (argMin(user_id, linked_at) in the lookup), so an id never moves between users once
-- its events were counted. See clickhouse/README.md for the lookup query.
CREATE TABLE IF NOT EXISTS identity_map (
  anonymous_id String,
  user_id String,
  linked_at DateTime('UTC'),
  kind String
) ENGINE = ReplacingMergeTree
ORDER BY (anonymous_id, user_id);

-- anonymous_id is an alias of a source column: the WHERE below sees the converted value ('' when
-- there is no id to link).
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_identity_map TO identity_map AS
SELECT
  ifNull(if(kind = 'alias', previous_id, anonymous_id), '') AS anonymous_id,
  user_id,
  toDateTime(intDiv(identified_at, 1000), 'UTC') AS linked_at,
  kind
FROM ingest_user_identify
WHERE anonymous_id != '';
