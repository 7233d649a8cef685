-- Why: the consumer writes each Kafka batch as ONE JSONEachRow insert per ingest table, and every
-- materialized view below fans that block out to facts, dimensions, identity and rollups, so a
-- batch is one round trip. Engine Null: the ingest tables store nothing themselves.
--
-- Column names are the Avro field names of schemas/user_activity.v1.avsc and
-- user_identify.v1.avsc (the contract); rows are produced by clickhouse/ingest-row.ts. Types:
--   * timestamp-millis -> UInt64 epoch milliseconds (DateTime64 does not exist on 18.16; the views
--     convert to DateTime('UTC') where seconds suffice and keep the millis where order matters).
--   * Avro date (birth_date) -> 'YYYY-MM-DD' text: 18.16's Date cannot hold days before 1970, and
--     many birth dates are; ISO text still sorts and compares as a date.
--   * boolean -> UInt8 0/1.
--   * details (array of records) -> Nested(detail_type, detail_payload).
-- Added by ingest-row (not in Avro): actor_id (the resolved identity that counts as one active user)
-- and age_band (age at event time, so the rollups need no date arithmetic per row).
CREATE TABLE IF NOT EXISTS ingest_user_activity (
  event_id String,
  source String,
  received_at UInt64,
  sent_at Nullable(UInt64),
  original_timestamp Nullable(UInt64),
  activity_timestamp UInt64,
  user_id Nullable(String),
  anonymous_id Nullable(String),
  actor_id String,
  session_id Nullable(Int64),
  duration_seconds Nullable(Int32),
  activity_name String,
  activity_category Nullable(String),
  is_conversion_event Nullable(UInt8),
  activity_weight Nullable(Int32),
  feature_name String,
  feature_category Nullable(String),
  is_core_feature Nullable(UInt8),
  feature_release_date Nullable(UInt64),
  feature_owner Nullable(String),
  device_id Nullable(String),
  device_type Nullable(String),
  platform Nullable(String),
  os_version Nullable(String),
  app_version Nullable(String),
  browser_name Nullable(String),
  browser_version Nullable(String),
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
  registration_date Nullable(UInt64),
  birth_date Nullable(String),
  age_band String,
  gender Nullable(String),
  segment_name Nullable(String),
  segment_description Nullable(String),
  segment_category Nullable(String),
  account_status Nullable(String),
  is_test_account UInt8,
  user_attributes Nullable(String),
  client_ip Nullable(String),
  user_agent Nullable(String),
  is_bot UInt8,
  activity_metadata String,
  details Nested(detail_type String, detail_payload String)
) ENGINE = Null;

CREATE TABLE IF NOT EXISTS ingest_user_identify (
  event_id String,
  source String,
  received_at UInt64,
  sent_at Nullable(UInt64),
  identified_at UInt64,
  kind String,
  user_id String,
  anonymous_id Nullable(String),
  previous_id Nullable(String),
  registration_date Nullable(UInt64),
  birth_date Nullable(String),
  gender Nullable(String),
  segment_name Nullable(String),
  segment_description Nullable(String),
  segment_category Nullable(String),
  account_status Nullable(String),
  is_test_account Nullable(UInt8),
  country_code Nullable(String),
  user_attributes Nullable(String),
  client_ip Nullable(String),
  user_agent Nullable(String)
) ENGINE = Null;
