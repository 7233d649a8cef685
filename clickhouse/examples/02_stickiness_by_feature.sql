-- Seed query 2, "DAU/MAU ratio for product stickiness", over the pre-aggregate. dim_agg_daily_active
-- is a view over the uniq states (migration 0005); the dim_dates JOIN becomes an IN subquery
-- (one JOIN per query on 18.16). The date literals are the seed's.
SELECT f.feature_name,
  avg(agg.dau_mau_ratio) AS avg_stickiness,
  max(agg.dau_mau_ratio) AS max_stickiness,
  min(agg.dau_mau_ratio) AS min_stickiness
FROM dim_agg_daily_active AS agg
ANY INNER JOIN (SELECT feature_key, feature_name FROM dim_features FINAL) AS f USING (feature_key)
WHERE agg.date_key IN (SELECT date_key FROM dim_dates WHERE full_date BETWEEN toDate('2023-07-01') AND toDate('2023-07-31'))
GROUP BY f.feature_name
ORDER BY avg_stickiness DESC, f.feature_name
