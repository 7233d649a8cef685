-- Why: the seed's pre-aggregate table, kept with its columns so the seed's stickiness query runs
-- (clickhouse/examples/02_stickiness_by_feature.sql). It is a VIEW over the states, not a table
-- refreshed daily: it is never stale, late events show up at once, and nothing stores fixed
-- counts that cannot be combined. Rows: one per UTC day and feature, plus one per day for all
-- features (feature_key NULL, the seed's "NULL = all"); device_type_key, geography_country_key
-- and user_segment_key are always NULL here because other slices are served by the query API
-- (services/query/sql/), which merges states for any combination. Test accounts and bots are
-- excluded. Ratios are Float64 (Decimal needs an experimental setting on 18.16).
-- Joined subqueries carry aliases: current ClickHouse requires them.
-- One arrayJoin copies each state row into its feature's group and the all-features group
-- (is_all), another fans each day out to the 30 days whose windows contain it.
CREATE VIEW IF NOT EXISTS dim_agg_daily_active AS
SELECT
  cityHash64(date_key, is_all, feat) AS agg_id,
  toYYYYMMDD(day) AS date_key,
  if(is_all = 1, CAST(NULL AS Nullable(UInt64)), CAST(cityHash64(feat) AS Nullable(UInt64))) AS feature_key,
  CAST(NULL AS Nullable(UInt64)) AS device_type_key,
  CAST(NULL AS Nullable(UInt64)) AS geography_country_key,
  CAST(NULL AS Nullable(UInt64)) AS user_segment_key,
  toUInt32(dau) AS dau_count,
  toUInt32(wau) AS wau_count,
  toUInt32(mau) AS mau_count,
  if(mau = 0, 0, dau / mau) AS dau_mau_ratio,
  if(mau = 0, 0, wau / mau) AS wau_mau_ratio,
  toUInt32(new_user_count) AS new_user_count,
  toUInt32(if(new_user_count > dau, 0, dau - new_user_count)) AS returning_user_count
FROM (
  SELECT addDays(src_day, k) AS day, is_all, feat,
    uniqMergeIf(users, k = 0) AS dau, uniqMergeIf(users, k < 7) AS wau, uniqMerge(users) AS mau
  FROM (
    SELECT toDate(hour) AS src_day, arrayJoin([0, 1]) AS is_all, if(is_all = 1, '', feature) AS feat,
      uniqMergeState(users) AS users
    FROM rollup_users_hourly_feature
    WHERE is_test_account = 0 AND is_bot = 0
    GROUP BY src_day, is_all, feat
  )
  ARRAY JOIN range(30) AS k
  WHERE day <= today()
  GROUP BY day, is_all, feat
) AS windows
ANY LEFT JOIN (
  SELECT toDate(first) AS day, is_all, feat, count() AS new_user_count
  FROM (
    SELECT user_key, arrayJoin([0, 1]) AS is_all, if(is_all = 1, '', feature) AS feat, minMerge(first_seen) AS first
    FROM rollup_user_first_seen
    WHERE is_test_account = 0 AND is_bot = 0
    GROUP BY user_key, is_all, feat
  )
  GROUP BY day, is_all, feat
) AS first_days USING (day, is_all, feat);
