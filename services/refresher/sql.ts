/**
 * The refresher's SQL, pure: exact finished numbers for a run of closed days in one reporting time
 * zone, for the whole population and the canonical slices at once (kind 0 all, then
 * FINISHED_DIMENSIONS), plus the reads of marks and finished days. Runs on ClickHouse 18.16 and
 * current ClickHouse (no query parameters: the zone and days are validated, then quoted).
 *
 * Exact means the query API's exact mode (services/query/sql/builder.ts): uniqExact over the
 * facts, each event counted once as its first-ingested row (a re-delivery can carry another user
 * key, see there). The dedup runs once over the run's scan, then every event is counted in the
 * population and in its slice of each dimension (ARRAY JOIN), so five series cost one scan.
 */
import { addDays, dayMs, FINISHED_DIMENSIONS, isoDay, WINDOW_DAYS } from '../lib/finished-days.ts';
import { quoteString } from '../lib/sql.ts';
import { DAY_MS } from '../lib/time.ts';

const kinds = `[${FINISHED_DIMENSIONS.map((_, i) => i + 1).join(', ')}]`;
/** The slice ARRAY JOIN: each row once per kind, with the value of that kind's dimension. */
const SLICES = `ARRAY JOIN arrayConcat([0], ${kinds}) AS kind, ['', ${FINISHED_DIMENSIONS.join(', ')}] AS value`;

const localMidnight = (day: string, tz: string): string =>
  `toDateTime(${quoteString(`${day} 00:00:00`)}, ${quoteString(tz)})`;
/** `YYYYMMDD` of a day: the fact table's date_key, first in its sorting key. */
const dateKey = (day: string): string => day.replaceAll('-', '');

/** One row per day of [from, to] and slice with users in its window: dau, wau, mau. */
export function windowsQuery(tz: string, from: string, to: string): string {
  const scanFrom = addDays(from, -(WINDOW_DAYS - 1));
  const scanTo = addDays(to, 1);
  // Local midnights lie within UTC-12..UTC+14 of UTC midnight: date_key bounds a day wider.
  const where = [
    `date_key >= ${dateKey(isoDay(dayMs(scanFrom) - DAY_MS))}`,
    `date_key <= ${dateKey(scanTo)}`,
    `activity_timestamp >= ${localMidnight(scanFrom, tz)}`,
    `activity_timestamp < ${localMidnight(scanTo, tz)}`,
    'is_test_account = 0',
    'is_bot = 0',
  ].join(' AND ');
  return `SELECT toString(day) AS day, kind, value, toUInt32(dau) AS dau, toUInt32(wau) AS wau, toUInt32(mau) AS mau
FROM (
  SELECT addDays(src_day, k) AS day, kind, value,
    uniqExactMergeIf(users, k = 0) AS dau, uniqExactMergeIf(users, k < 7) AS wau, uniqExactMerge(users) AS mau
  FROM (
    SELECT toDate(activity_timestamp, ${quoteString(tz)}) AS src_day, kind, value, uniqExactState(user_key) AS users
    FROM (
      SELECT user_key, activity_timestamp, ${FINISHED_DIMENSIONS.join(', ')}
      FROM fact_user_activity
      WHERE ${where}
      ORDER BY event_id, ingested_at, user_key
      LIMIT 1 BY event_id
    )
    ${SLICES}
    GROUP BY src_day, kind, value
  )
  ARRAY JOIN range(${WINDOW_DAYS}) AS k
  WHERE day >= toDate(${quoteString(from)}) AND day <= toDate(${quoteString(to)})
  GROUP BY day, kind, value
)`;
}

/**
 * New users per day of [from, to] and slice: users whose first activity in the slice (first ever
 * for kind 0) fell on the day, from the exact per-user minimums. Only users active in the run are
 * read: a user new on a day was active that day. GLOBAL IN: in cluster mode both tables are
 * Distributed (clickhouse/CLUSTER.md) and 18.16 refuses a plain IN between two of them; GLOBAL runs
 * the active-user subquery once and sends its set to every shard. On one node it is a plain IN.
 */
export function newUsersQuery(tz: string, from: string, to: string): string {
  const until = addDays(to, 1);
  const active = `SELECT user_key FROM fact_user_activity
      WHERE date_key >= ${dateKey(isoDay(dayMs(from) - DAY_MS))} AND date_key <= ${dateKey(until)}
        AND activity_timestamp >= ${localMidnight(from, tz)} AND activity_timestamp < ${localMidnight(until, tz)}`;
  return `SELECT toString(toDate(first, ${quoteString(tz)})) AS day, kind, value, toUInt32(count()) AS new_users
FROM (
  SELECT user_key, kind, value, minMerge(first_seen) AS first
  FROM rollup_user_first_seen
  ${SLICES}
  WHERE is_test_account = 0 AND is_bot = 0 AND user_key GLOBAL IN (${active})
  GROUP BY user_key, kind, value
)
WHERE first >= ${localMidnight(from, tz)} AND first < ${localMidnight(until, tz)}
GROUP BY day, kind, value`;
}

/**
 * The server's clock (seconds: marks and computed_at are both stamped by it) and the first day
 * fact retention keeps (days since 1970; 0 when retention never dropped facts).
 */
export const STATE_QUERY = `SELECT toUInt32(now()) AS now,
  (SELECT toUInt32(max(kept_from)) FROM fact_retention) AS facts_from`;
