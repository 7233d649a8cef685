-- Why: the seed's dim_agg_daily_active holds "aggregations at different granularity levels through
-- nullable dimension keys", but the view of 0005 only had rows per feature and for all features;
-- device_type_key, geography_country_key and user_segment_key were always NULL. This adds one row
-- per UTC day for each device type, each country and each user segment, every other key NULL (the
-- grouping sets feature / device type / country / segment / all, as UNION ALL branches). Merged
-- migrations are immutable, so this one replaces the view: it holds no data, DROP and CREATE are
-- both safe to re-run. Same rules as 0005: states of test accounts and bots excluded, ratios Float64.
--
-- Keys are the dimension tables' own hashes (0003) at the slice's level of the hierarchy:
--   user_segment_key      = cityHash64(segment), dim_user_segments.user_segment_key itself;
--   geography_country_key = cityHash64(country, '', '', ''), dim_geographies' key of a location
--                           known only to the country (region, city and postal code empty);
--   device_type_key       = cityHash64('', device_type, '', '', '', '', ''), dim_devices' key of a
--                           device known only by its type.
--   feature_key           = cityHash64(feature), dim_features.feature_key, as in 0005.
-- A geography or device row with exactly those attributes may not exist: join on the expression
-- (e.g. cityHash64(g.country_code, '', '', '')) to name a country or a device type.
--
-- 18.16 has no GROUPING SETS. The grouping sets are UNION ALL branches over the hour states, each
-- reading the smallest rollup that has its dimension; windows and the new-user join then run once
-- over all of them (one JOIN per query). `kind` says which key a row carries: 0 all, 1 feature,
-- 2 device type, 3 country, 4 segment; `val` is that dimension's value ('' for all).
DROP TABLE IF EXISTS dim_agg_daily_active;

CREATE VIEW IF NOT EXISTS dim_agg_daily_active AS
SELECT
  cityHash64(date_key, kind, val) AS agg_id,
  toYYYYMMDD(day) AS date_key,
  if(kind = 1, CAST(cityHash64(val) AS Nullable(UInt64)), CAST(NULL AS Nullable(UInt64))) AS feature_key,
  if(kind = 2, CAST(cityHash64('', val, '', '', '', '', '') AS Nullable(UInt64)), CAST(NULL AS Nullable(UInt64))) AS device_type_key,
  if(kind = 3, CAST(cityHash64(val, '', '', '') AS Nullable(UInt64)), CAST(NULL AS Nullable(UInt64))) AS geography_country_key,
  if(kind = 4, CAST(cityHash64(val) AS Nullable(UInt64)), CAST(NULL AS Nullable(UInt64))) AS user_segment_key,
  toUInt32(dau) AS dau_count,
  toUInt32(wau) AS wau_count,
  toUInt32(mau) AS mau_count,
  if(mau = 0, 0, dau / mau) AS dau_mau_ratio,
  if(mau = 0, 0, wau / mau) AS wau_mau_ratio,
  toUInt32(new_user_count) AS new_user_count,
  toUInt32(if(new_user_count > dau, 0, dau - new_user_count)) AS returning_user_count
FROM (
  SELECT addDays(src_day, k) AS day, kind, val,
    uniqMergeIf(users, k = 0) AS dau, uniqMergeIf(users, k < 7) AS wau, uniqMerge(users) AS mau
  FROM (
    SELECT toDate(hour) AS src_day, arrayJoin([0, 1]) AS kind, if(kind = 1, feature, '') AS val,
      uniqMergeState(users) AS users
    FROM rollup_users_hourly_feature
    WHERE is_test_account = 0 AND is_bot = 0
    GROUP BY src_day, kind, val
    UNION ALL
    SELECT toDate(hour) AS src_day, arrayJoin([2, 3, 4]) AS kind,
      multiIf(kind = 2, device_type, kind = 3, country, segment) AS val,
      uniqMergeState(users) AS users
    FROM rollup_users_hourly_slice
    WHERE is_test_account = 0 AND is_bot = 0
    GROUP BY src_day, kind, val
  ) AS states
  ARRAY JOIN range(30) AS k
  WHERE day <= today()
  GROUP BY day, kind, val
) AS windows
ANY LEFT JOIN (
  SELECT toDate(first) AS day, kind, val, count() AS new_user_count
  FROM (
    SELECT user_key, arrayJoin([0, 1, 2, 3, 4]) AS kind,
      multiIf(kind = 1, feature, kind = 2, device_type, kind = 3, country, kind = 4, segment, '') AS val,
      minMerge(first_seen) AS first
    FROM rollup_user_first_seen
    WHERE is_test_account = 0 AND is_bot = 0
    GROUP BY user_key, kind, val
  )
  GROUP BY day, kind, val
) AS first_days USING (day, kind, val);
