-- Why: dashboards read the same closed days over and over, and re-merging 30 day-sketches per
-- output day on every request is what made the rollup path seconds slow (clickhouse/README.md).
-- Numbers of a day that is over are computed once, exactly, by the refresher (services/refresher/)
-- and kept here; the query API reads them where a request is covered and sketches elsewhere.
--
-- agg_active_users_daily: finished values per reporting time zone, slice and local day. `kind`
-- names the slice: 0 all (value ''), 1 feature, 2 device_type, 3 country, 4 segment (value the
-- dimension's value, '' = unknown). Test accounts and bots are excluded, as by default in the API.
-- Rolling windows: wau = distinct users in [day-6, day], mau = [day-29, day]. A row is current only
-- when its computed_at equals its day's in agg_active_users_days: a recomputation writes every row
-- of the day again with a newer computed_at (ReplacingMergeTree drops the old ones at merges), and
-- a value that vanished (a deleted user's only feature) leaves an older row that readers skip.
CREATE TABLE IF NOT EXISTS agg_active_users_daily (
  tz String,
  kind UInt8,
  value String,
  day Date,
  dau UInt32,
  wau UInt32,
  mau UInt32,
  new_users UInt32,
  computed_at DateTime('UTC')
) ENGINE = ReplacingMergeTree(computed_at)
ORDER BY (tz, kind, day, value);

-- One row per (time zone, day) the refresher finished: the day's numbers include every event whose
-- mark (below) is older than computed_at. A day without a row here is not finished.
CREATE TABLE IF NOT EXISTS agg_active_users_days (
  tz String,
  day Date,
  computed_at DateTime('UTC')
) ENGINE = ReplacingMergeTree(computed_at)
ORDER BY (tz, day);

-- Dirty marks: every insert marks the UTC hours its events fall in with the time it was written
-- (its rows are visible once the insert ends: the refresher trusts a mark only after
-- REFRESH_SETTLE_SECONDS, longer than an insert takes). Late and re-delivered events mark their past
-- hour, so the finished days whose windows contain it are computed again. Hours, not days: a UTC
-- day overlaps two local days in most zones, and marking by day would keep yesterday dirty all day
-- long in every zone west of UTC. Only the newest mark per hour matters (readers take max): merges
-- keep one row per hour.
CREATE TABLE IF NOT EXISTS agg_dirty_hours (
  hour DateTime('UTC'),
  marked_at DateTime('UTC')
) ENGINE = ReplacingMergeTree(marked_at)
ORDER BY hour;

-- Reads the ingest table like the rollup views (0004: 18.16 does not cascade views).
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_agg_dirty_hours TO agg_dirty_hours AS
SELECT
  toStartOfHour(toDateTime(intDiv(activity_timestamp, 1000), 'UTC')) AS hour,
  now() AS marked_at
FROM ingest_user_activity
GROUP BY hour, marked_at;

-- Activity written before this migration: every hour with activity is dirty once, so the refresher
-- finishes its days on its first pass. Read from the hourly rollup, which keeps the whole history:
-- the facts may have lost old months to retention, and a day without any mark counts as a day
-- without activity.
INSERT INTO agg_dirty_hours (hour, marked_at)
SELECT hour, now() AS marked_at
FROM rollup_users_hourly_total
GROUP BY hour;

-- The first day fact retention keeps (clickhouse/retention.ts writes it when it drops months). A
-- day whose 30-day window reaches before it cannot be computed again from the facts: the refresher
-- leaves it as it is (numbers computed while the facts were there stay; a day never computed is
-- served from the sketches, which keep the whole history).
CREATE TABLE IF NOT EXISTS fact_retention (
  kept_from Date,
  applied_at DateTime('UTC')
) ENGINE = ReplacingMergeTree(applied_at)
ORDER BY tuple();

-- The seed's pre-aggregate table, now over the finished numbers (UTC days), replacing 0006's view
-- over the sketches: exact, and no longer re-merging every state on each read. Keys as in 0006.
-- Only current rows (computed_at equal to their day's) are shown.
DROP TABLE IF EXISTS dim_agg_daily_active;

CREATE VIEW IF NOT EXISTS dim_agg_daily_active AS
SELECT
  cityHash64(date_key, kind, value) AS agg_id,
  toYYYYMMDD(day) AS date_key,
  if(kind = 1, CAST(cityHash64(value) AS Nullable(UInt64)), CAST(NULL AS Nullable(UInt64))) AS feature_key,
  if(kind = 2, CAST(cityHash64('', value, '', '', '', '', '') AS Nullable(UInt64)), CAST(NULL AS Nullable(UInt64))) AS device_type_key,
  if(kind = 3, CAST(cityHash64(value, '', '', '') AS Nullable(UInt64)), CAST(NULL AS Nullable(UInt64))) AS geography_country_key,
  if(kind = 4, CAST(cityHash64(value) AS Nullable(UInt64)), CAST(NULL AS Nullable(UInt64))) AS user_segment_key,
  dau AS dau_count,
  wau AS wau_count,
  mau AS mau_count,
  if(mau = 0, 0, dau / mau) AS dau_mau_ratio,
  if(mau = 0, 0, wau / mau) AS wau_mau_ratio,
  new_users AS new_user_count,
  toUInt32(if(new_users > dau, 0, dau - new_users)) AS returning_user_count
FROM agg_active_users_daily FINAL
WHERE tz = 'UTC'
  AND (day, computed_at) IN (SELECT day, max(computed_at) FROM agg_active_users_days WHERE tz = 'UTC' GROUP BY day);
