-- Why: the consumer asks ClickHouse for the identity and profile of an id only when an in-memory
-- set says the id may have one (services/consumer/profiles.ts): with a million users, looking up
-- every new id of every batch made the consumer several times slower than the collector. Ids that
-- ANOTHER member of the group identified or linked (identifies are keyed by user id, so they land
-- on other partitions than the anonymous events they link) must reach that set within a bounded
-- time. dim_users and identity_map only carry event times, which can be far older than the
-- insert, so this log records each identify and alias with the SERVER time of its insert, and
-- each member reads only what was written since its last refresh. One row per identify/alias, a
-- small fraction of the traffic.
CREATE TABLE IF NOT EXISTS identify_log (
  written_at DateTime('UTC'),
  kind String,
  user_id String,
  linked_id String
) ENGINE = MergeTree
-- Monthly, so clickhouse/retention.ts drops old months with the facts (18.16 has no TTL); the
-- consumer only ever reads the last few seconds of it.
PARTITION BY toYYYYMM(written_at)
ORDER BY written_at;

-- linked_id: the id the identify or alias links to user_id (identity_map's anonymous_id), '' if none.
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_identify_log TO identify_log AS
SELECT now() AS written_at, kind, user_id,
  ifNull(if(kind = 'alias', previous_id, anonymous_id), '') AS linked_id
FROM ingest_user_identify;
