-- Why: the consumer computes is_first_daily_activity (services/consumer/profiles.ts: best effort, 1
-- for the first event of an actor and UTC day that consumer instance has written) and the ingest
-- row carries it (clickhouse/ingest-row.ts), but ingest_user_activity had no such column and
-- mv_fact_user_activity wrote 0. This adds the column and passes it through to the fact table.
--
-- DEFAULT 0: rows of a consumer built before the column (without the key) still insert.
-- 18.16 has no ADD COLUMN IF NOT EXISTS: the migration runner skips an ADD COLUMN whose column
-- exists (clickhouse/migrate.ts), so a run interrupted after it can be repeated.
--
-- 18.16 cannot change a materialized view's query (no ALTER ... MODIFY QUERY), so the view is
-- dropped and created again with 0002's SELECT, the flag being the only change. An insert into
-- ingest_user_activity between the DROP and the CREATE would reach every other view but not
-- fact_user_activity: apply this with the consumer stopped. The consumer commits Kafka offsets
-- only after ClickHouse acknowledged the rows, so events sent meanwhile wait in Kafka; nothing is
-- lost (clickhouse/README.md, "Migrations").
ALTER TABLE ingest_user_activity ADD COLUMN is_first_daily_activity UInt8 DEFAULT 0;

DROP TABLE IF EXISTS mv_fact_user_activity;

-- As 0002 (its comment on flat views and the activity_timestamp alias applies).
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
  is_first_daily_activity,
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
