-- Why: a user's deletion (clickhouse/delete-user.ts) must be provable afterwards (who asked, when,
-- how many rows went, which months' rollups were rebuilt) without keeping the id it erased: the
-- record holds user_key, cityHash64 of the user id, the key every rollup already uses, so "was
-- this user deleted?" is answered by hashing the id asked about. rows: JSON of rows per table.
CREATE TABLE IF NOT EXISTS user_deletions (
  deleted_at DateTime('UTC'),
  requested_by String,
  user_key UInt64,
  linked_ids UInt32,
  rows String,
  months String
) ENGINE = MergeTree
ORDER BY deleted_at;
