-- Why: DAU/WAU/MAU for any slice must be a merge of small sketches, not a scan of events.
-- AggregatingMergeTree tables hold uniqState(user_key) per UTC hour and slice; the query builder
-- (services/query/sql/) merges hours into days of the requested timezone (exact for zones whose
-- offsets are whole hours) and days into rolling or calendar windows. uniq was chosen by measured
-- accuracy and state size (clickhouse/measure-sketches.ts, clickhouse/README.md). A sketch of a
-- set is idempotent, so re-delivered events change no number, and late events merge into the
-- past hour they belong to.
--
-- Three grains instead of one giant cube: the builder reads the smallest table whose columns
-- cover the request's filters and group-bys; a total or per-feature series then merges a few
-- states per hour instead of one per (feature x device x geography x demographic) combination.
-- city stays in the fact table only (cardinality times every other dimension).
--
-- The views read the ingest table: 18.16 does not cascade a view's insert into the views of its
-- target table, so they cannot read fact_user_activity. Their slice expressions are the same as
-- mv_fact_user_activity's ('' = unknown) and produce the fact table's column names, so the
-- rebuild command (clickhouse/rebuild.ts) recomputes any rollup from the facts with a SELECT it
-- derives from the rollup's own columns. Keep the three in step when adding a dimension.

CREATE TABLE IF NOT EXISTS rollup_users_hourly_total (
  hour DateTime('UTC'),
  is_test_account UInt8,
  is_bot UInt8,
  users AggregateFunction(uniq, UInt64)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, is_test_account, is_bot);

CREATE MATERIALIZED VIEW IF NOT EXISTS mv_rollup_users_hourly_total TO rollup_users_hourly_total AS
SELECT
  toStartOfHour(toDateTime(intDiv(activity_timestamp, 1000), 'UTC')) AS hour,
  is_test_account,
  is_bot,
  uniqState(cityHash64(actor_id)) AS users
FROM ingest_user_activity
GROUP BY hour, is_test_account, is_bot;

CREATE TABLE IF NOT EXISTS rollup_users_hourly_feature (
  hour DateTime('UTC'),
  is_test_account UInt8,
  is_bot UInt8,
  feature_category String,
  feature String,
  activity_type String,
  users AggregateFunction(uniq, UInt64)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, is_test_account, is_bot, feature_category, feature, activity_type);

CREATE MATERIALIZED VIEW IF NOT EXISTS mv_rollup_users_hourly_feature TO rollup_users_hourly_feature AS
SELECT
  toStartOfHour(toDateTime(intDiv(activity_timestamp, 1000), 'UTC')) AS hour,
  is_test_account,
  is_bot,
  ifNull(feature_category, '') AS feature_category,
  feature_name AS feature,
  activity_name AS activity_type,
  uniqState(cityHash64(actor_id)) AS users
FROM ingest_user_activity
GROUP BY hour, is_test_account, is_bot, feature_category, feature, activity_type;

CREATE TABLE IF NOT EXISTS rollup_users_hourly_slice (
  hour DateTime('UTC'),
  is_test_account UInt8,
  is_bot UInt8,
  feature_category String,
  feature String,
  activity_type String,
  device_type String,
  platform String,
  app_version String,
  continent String,
  country String,
  region String,
  segment String,
  gender String,
  age_band String,
  users AggregateFunction(uniq, UInt64)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, is_test_account, is_bot, feature_category, feature, activity_type, device_type, platform,
  app_version, continent, country, region, segment, gender, age_band);

CREATE MATERIALIZED VIEW IF NOT EXISTS mv_rollup_users_hourly_slice TO rollup_users_hourly_slice AS
SELECT
  toStartOfHour(toDateTime(intDiv(activity_timestamp, 1000), 'UTC')) AS hour,
  is_test_account,
  is_bot,
  ifNull(feature_category, '') AS feature_category,
  feature_name AS feature,
  activity_name AS activity_type,
  ifNull(device_type, '') AS device_type,
  ifNull(platform, '') AS platform,
  ifNull(app_version, '') AS app_version,
  ifNull(continent_code, '') AS continent,
  ifNull(country_code, '') AS country,
  ifNull(region_code, '') AS region,
  ifNull(segment_name, '') AS segment,
  ifNull(gender, '') AS gender,
  age_band,
  uniqState(cityHash64(actor_id)) AS users
FROM ingest_user_activity
GROUP BY hour, is_test_account, is_bot, feature_category, feature, activity_type, device_type, platform,
  app_version, continent, country, region, segment, gender, age_band;

-- New users: a user is new in a slice on the day of their first activity in that slice (with no
-- filter: first activity ever). Sketches cannot say which users were seen before, so this table
-- keeps, per user and slice combination, the exact minimum activity time; a query takes the min
-- over the rows matching its filters per user (and group), and counts users whose minimum falls on
-- each day. No time partition: rows are per user, not per period; size grows with users x
-- combinations, not with events. Late events lower the minimum; duplicates change nothing.
CREATE TABLE IF NOT EXISTS rollup_user_first_seen (
  user_key UInt64,
  is_test_account UInt8,
  is_bot UInt8,
  feature_category String,
  feature String,
  activity_type String,
  device_type String,
  platform String,
  app_version String,
  continent String,
  country String,
  region String,
  segment String,
  gender String,
  age_band String,
  first_seen AggregateFunction(min, DateTime('UTC'))
) ENGINE = AggregatingMergeTree
ORDER BY (user_key, is_test_account, is_bot, feature_category, feature, activity_type, device_type, platform,
  app_version, continent, country, region, segment, gender, age_band);

CREATE MATERIALIZED VIEW IF NOT EXISTS mv_rollup_user_first_seen TO rollup_user_first_seen AS
SELECT
  cityHash64(actor_id) AS user_key,
  is_test_account,
  is_bot,
  ifNull(feature_category, '') AS feature_category,
  feature_name AS feature,
  activity_name AS activity_type,
  ifNull(device_type, '') AS device_type,
  ifNull(platform, '') AS platform,
  ifNull(app_version, '') AS app_version,
  ifNull(continent_code, '') AS continent,
  ifNull(country_code, '') AS country,
  ifNull(region_code, '') AS region,
  ifNull(segment_name, '') AS segment,
  ifNull(gender, '') AS gender,
  age_band,
  minState(toDateTime(intDiv(activity_timestamp, 1000), 'UTC')) AS first_seen
FROM ingest_user_activity
GROUP BY user_key, is_test_account, is_bot, feature_category, feature, activity_type, device_type, platform,
  app_version, continent, country, region, segment, gender, age_band;
