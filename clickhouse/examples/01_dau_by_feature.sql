-- Seed query 1, "DAU by feature for a specific date", from the raw facts. ClickHouse: count(DISTINCT)
-- is uniqExact; at most one JOIN per query on 18.16, so the date filter uses the fact's own
-- date_key (YYYYMMDD, the same key dim_dates has) through an IN subquery instead of a second JOIN.
-- Test accounts are kept out as everywhere else; the date literal is the seed's.
SELECT f.feature_name, uniqExact(ua.user_key) AS dau
FROM fact_user_activity AS ua
ANY INNER JOIN (SELECT feature_key, feature_name FROM dim_features FINAL) AS f USING (feature_key)
WHERE ua.date_key IN (SELECT date_key FROM dim_dates WHERE full_date = toDate('2023-07-15'))
  AND ua.is_test_account = 0 AND ua.is_bot = 0
GROUP BY f.feature_name
ORDER BY dau DESC, f.feature_name
