-- Seed query 3, "MAU by user segment and geography", from the raw facts. The seed joins dim_users,
-- dim_user_segments and dim_geographies and dim_dates; 18.16 allows one JOIN per query, and the
-- fact row already carries the user's segment name as it was at event time (denormalised at
-- ingest, which is also the right attribution for a past month), so one JOIN to dim_geographies
-- (for the country name) is enough and the date filter uses date_key directly. The seed's
-- BETWEEN CURRENT_DATE - INTERVAL '30 days' AND CURRENT_DATE spans 31 calendar days; so does this.
SELECT ua.segment AS segment_name, g.country_name AS country_name, uniqExact(ua.user_key) AS mau
FROM fact_user_activity AS ua
ANY LEFT JOIN (
  SELECT geography_key, ifNull(country_name, '') AS country_name FROM dim_geographies FINAL
) AS g USING (geography_key)
WHERE ua.date_key BETWEEN toYYYYMMDD(today() - 30) AND toYYYYMMDD(today())
  AND ua.is_test_account = 0 AND ua.is_bot = 0
GROUP BY segment_name, country_name
ORDER BY mau DESC, segment_name, country_name
