-- Why: an activity row whose profile the consumer did not know when it wrote it (the user's
-- identify handled by another member or partition, a race, a restart) carries no profile
-- attribute, yet 0008's view wrote it to dim_users with its event time as version: newer than the
-- identify, so argMax / FINAL returned an empty profile and merges dropped the identify's row.
-- A user's profile is, per attribute, the newest non-null value seen (clickhouse/README.md,
-- "Profile attributes"). Such a row now gets version 0: it still creates a dim_users row for a
-- user nobody identified, but never beats a row that carries attributes.
--
-- "Carries no profile attribute" = every profile column NULL and is_test_account 0, country_code
-- aside: on an activity, country_code is the event's geo country unless the consumer filled it
-- from the profile, so it does not show that the consumer knew the profile (an anonymous event
-- with a geo country would otherwise still hide the identify). The profile's own country comes
-- from identify, and from activities that carry any other attribute.
--
-- 18.16 cannot change a materialized view's query, so the view is dropped and created again with
-- 0008's SELECT and the new version. An insert between the DROP and the CREATE would miss
-- dim_users: apply this with the consumer stopped. The consumer commits Kafka offsets only after
-- ClickHouse acknowledged the rows, so events sent meanwhile wait in Kafka; nothing is lost
-- (clickhouse/README.md, "Migrations").
DROP TABLE IF EXISTS mv_dim_users_from_activity;

-- ORDER BY picks the newest row of the block per user before LIMIT 1 BY; attribute-less rows sort
-- last, so a block that holds both keeps the one with attributes.
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_dim_users_from_activity TO dim_users AS
SELECT cityHash64(actor_id) AS user_key, actor_id AS user_id,
  if(isNull(registration_date), CAST(NULL AS Nullable(DateTime('UTC'))), toDateTime(intDiv(assumeNotNull(registration_date), 1000), 'UTC')) AS registration_date,
  cityHash64(ifNull(segment_name, '')) AS user_segment_key,
  account_status, birth_date, gender, is_test_account, user_attributes, segment_name,
  country_code, segment_description, segment_category,
  if(isNull(registration_date) AND isNull(birth_date) AND isNull(gender) AND isNull(segment_name)
      AND isNull(segment_description) AND isNull(segment_category) AND isNull(account_status)
      AND isNull(user_attributes) AND is_test_account = 0,
    toUInt64(0), activity_timestamp) AS version
FROM ingest_user_activity
ORDER BY version DESC
LIMIT 1 BY user_key;
