-- Why: the consumer fills profile attributes an activity event lacks from dim_users
-- (services/consumer/lookups.ts) when its cache misses, e.g. after a restart. dim_users kept no
-- country or segment description/category, so after a restart those came only from the event.
-- This adds them to dim_users and to both views that write it.
--
-- country_code is the profile's country (identify) or the event's (activity, after the consumer
-- filled it from the profile when the event had none): the same field the consumer fills, and
-- the newest version wins as for every other attribute here.
-- 18.16 has no ADD COLUMN IF NOT EXISTS: the migration runner skips an ADD COLUMN whose column
-- exists (clickhouse/migrate.ts), so a run interrupted half-way can be repeated. Rows written
-- before this migration read NULL for the new columns.
--
-- 18.16 cannot change a materialized view's query, so both views are dropped and created again
-- with 0003's SELECT plus the three columns. An insert between a DROP and its CREATE would miss
-- dim_users: apply this with the consumer stopped. The consumer commits Kafka offsets only after
-- ClickHouse acknowledged the rows, so events sent meanwhile wait in Kafka; nothing is lost
-- (clickhouse/README.md, "Migrations").
ALTER TABLE dim_users ADD COLUMN country_code Nullable(String);

ALTER TABLE dim_users ADD COLUMN segment_description Nullable(String);

ALTER TABLE dim_users ADD COLUMN segment_category Nullable(String);

DROP TABLE IF EXISTS mv_dim_users_from_activity;

CREATE MATERIALIZED VIEW IF NOT EXISTS mv_dim_users_from_activity TO dim_users AS
SELECT cityHash64(actor_id) AS user_key, actor_id AS user_id,
  if(isNull(registration_date), CAST(NULL AS Nullable(DateTime('UTC'))), toDateTime(intDiv(assumeNotNull(registration_date), 1000), 'UTC')) AS registration_date,
  cityHash64(ifNull(segment_name, '')) AS user_segment_key,
  account_status, birth_date, gender, is_test_account, user_attributes, segment_name,
  country_code, segment_description, segment_category,
  activity_timestamp AS version
FROM ingest_user_activity
ORDER BY activity_timestamp DESC
LIMIT 1 BY user_key;

DROP TABLE IF EXISTS mv_dim_users_from_identify;

CREATE MATERIALIZED VIEW IF NOT EXISTS mv_dim_users_from_identify TO dim_users AS
SELECT cityHash64(user_id) AS user_key, user_id,
  if(isNull(registration_date), CAST(NULL AS Nullable(DateTime('UTC'))), toDateTime(intDiv(assumeNotNull(registration_date), 1000), 'UTC')) AS registration_date,
  cityHash64(ifNull(segment_name, '')) AS user_segment_key,
  account_status, birth_date, gender, ifNull(is_test_account, 0) AS is_test_account, user_attributes, segment_name,
  country_code, segment_description, segment_category,
  identified_at AS version
FROM ingest_user_identify
WHERE kind = 'identify'
ORDER BY identified_at DESC
LIMIT 1 BY user_key;
