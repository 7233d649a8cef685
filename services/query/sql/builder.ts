/**
 * Pure SQL builder for the active-user API: a validated request in, SQL text out. The requests are
 * the types ../params.ts produces, and the builder trusts them: every rule about what a request may
 * ask (dates, range lengths, zones, value counts, limits) is checked there, once. What the builder
 * keeps is its own SQL safety, whatever reaches it: ClickHouse 18.16 has no query parameters, so
 * every identifier comes from an allow-list (DIMENSIONS and the tables below; anything else throws
 * QUERY_UNSAFE_SQL, a bug in the caller) and every literal is quoted with quoteString or rebuilt
 * from a parsed number.
 *
 * Reads (see clickhouse/README.md for the model):
 *   - active users: hourly uniq states from the smallest rollup covering the request's filters and
 *     group-bys, merged into days of the requested timezone, then fanned out to rolling (7/30 day)
 *     or calendar (week-to-date / month-to-date) windows; new users from rollup_user_first_seen.
 *     Zones whose UTC offset is not a whole number of hours in the range cannot be cut from hourly
 *     states; those read fact_user_activity instead (exact days, but only within fact retention).
 *     `exact: true` counts uniqExact(user_key) over the facts, one row per event_id, for the range
 *     plus its 30-day look-back: exact numbers at the cost of a scan. New users come from
 *     rollup_user_first_seen in every mode (see buildActiveUsersQuery).
 *   - event counts: uniqExact(event_id) over fact_user_activity (exact after duplicate delivery).
 *   - dimension values: distinct values of one dimension with their active users over the range.
 * Every result is ordered by day and the group-by columns; counts are UInt32 (JSON numbers).
 */

import { QUERY_ERRORS } from '../../lib/error-codes.ts';
import { offsetMinutes } from '../../lib/finished-days.ts';
import { quoteString } from '../../lib/sql.ts';
import { DAY_MS } from '../../lib/time.ts';
import {
  type ActiveUsersQuery,
  DIMENSIONS,
  type Dimension,
  type DimensionValuesQuery,
  type EventCountQuery,
  isDimension,
} from '../params.ts';

// Part of the builder's API too: callers that put literals beside the builder's SQL use the same escaping.
export { quoteString };

/**
 * The validated requests, with the fields whose default is "none" or false optional, for the
 * callers that build requests in code (tests, the bench): leaving one out means its default.
 */
type Defaulted = 'filters' | 'groupBy' | 'includeTest' | 'includeBots' | 'exact';
type WithDefaults<T> = Omit<T, Defaulted> & Partial<Pick<T, Extract<keyof T, Defaulted>>>;
export type ActiveUsersRequest = WithDefaults<ActiveUsersQuery>;
export type EventCountsRequest = WithDefaults<EventCountQuery>;
export type DimensionValuesRequest = WithDefaults<DimensionValuesQuery>;

type DimensionColumns = Partial<Record<Dimension, string>>;

/** One row of buildActiveUsersQuery's result (JSONEachRow); group-by dimensions appear as keys. */
export type ActiveUsersRow = DimensionColumns & {
  readonly day: string;
  readonly dau: number;
  readonly wau: number;
  readonly mau: number;
  /** Users whose first activity in the slice (first ever, without filters) was on `day`. */
  readonly new_users: number;
  /** dau - new_users. */
  readonly returning_users: number;
};

export type EventCountsRow = DimensionColumns & { readonly day: string; readonly events: number };

export interface DimensionValueRow {
  readonly value: string;
  readonly users: number;
}

export interface BuiltQuery {
  readonly sql: string;
  /** Table the user counts come from (for logs and the response's metadata). */
  readonly source: string;
  /** False when the zone forced the fact-table fallback (history limited to fact retention). */
  readonly fromRollup: boolean;
}

interface Rollup {
  readonly table: string;
  readonly dimensions: readonly Dimension[];
}

/** Smallest first: the builder reads the first one that has every dimension the request uses. */
const ROLLUPS: readonly Rollup[] = [
  { table: 'rollup_users_hourly_total', dimensions: [] },
  { table: 'rollup_users_hourly_feature', dimensions: ['feature', 'feature_category', 'activity_type'] },
  { table: 'rollup_users_hourly_slice', dimensions: DIMENSIONS },
];

/**
 * The SQL-safety guard on identifiers (not a validation rule): a dimension name is written into SQL
 * only if it is on the allow-list, even when a cast let something else into a typed field.
 */
function column(d: string): Dimension {
  if (!isDimension(d)) throw QUERY_ERRORS.unsafeSql(`not a dimension: ${JSON.stringify(d)}`);
  return d;
}

/** UTC-midnight ms of a validated YYYY-MM-DD day; literals are rebuilt from it, never copied. */
function dayMs(day: string): number {
  const ms = Date.parse(`${day}T00:00:00Z`);
  if (Number.isNaN(ms)) throw QUERY_ERRORS.unsafeSql(`not a day: ${JSON.stringify(day)}`);
  return ms;
}

const isoDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/**
 * True when every local midnight between the two instants falls on a whole UTC hour, so days in
 * `tz` are unions of hourly UTC buckets. Offsets are sampled twice a day: zones change offset at
 * most a few times a year and never by less than 30 minutes within a day.
 */
export function isWholeHourZone(tz: string, fromMs: number, toMs: number): boolean {
  for (let ms = fromMs; ms <= toMs; ms += DAY_MS / 2) {
    const off = offsetMinutes(tz, ms);
    if (off === undefined || off % 60 !== 0) return false;
  }
  return true;
}

interface Plan {
  readonly fromMs: number;
  readonly toMs: number;
  readonly tz: string;
  readonly filters: readonly (readonly [Dimension, readonly string[]])[];
  readonly groupBy: readonly Dimension[];
  readonly includeTest: boolean;
  readonly includeBots: boolean;
}

/** The request as the SQL needs it; no rule is checked here (../params.ts did), only SQL safety. */
function plan(req: EventCountsRequest): Plan {
  return {
    fromMs: dayMs(req.from),
    toMs: dayMs(req.to),
    tz: req.tz,
    filters: Object.entries(req.filters ?? {})
      .filter((e): e is [string, readonly string[]] => e[1] !== undefined)
      .map(([d, values]) => [column(d), values] as const),
    groupBy: (req.groupBy ?? []).map(column),
    includeTest: req.includeTest === true,
    includeBots: req.includeBots === true,
  };
}

function pickRollup(v: Plan, also: readonly Dimension[] = []): Rollup {
  const needed = [...v.filters.map(([d]) => d), ...v.groupBy, ...also];
  const r = ROLLUPS.find((x) => needed.every((d) => x.dimensions.includes(d)));
  // The last rollup has every dimension, so find() always succeeds for allow-listed dimensions.
  return r ?? (ROLLUPS.at(-1) as Rollup);
}

/** WHERE conditions shared by every read: flags and slice filters. */
function sliceConditions(v: Plan): string[] {
  const c: string[] = [];
  if (!v.includeTest) c.push('is_test_account = 0');
  if (!v.includeBots) c.push('is_bot = 0');
  for (const [dim, values] of v.filters) c.push(`${dim} IN (${values.map(quoteString).join(', ')})`);
  return c;
}

const tzLit = (v: Plan): string => quoteString(v.tz);
/** Start of local day `ms` (a UTC-midnight ms standing for a calendar day) in the request zone. */
const localMidnight = (v: Plan, ms: number): string =>
  `toDateTime(${quoteString(`${isoDay(ms)} 00:00:00`)}, ${tzLit(v)})`;
const groupList = (g: readonly Dimension[]): string => g.map((d) => `, ${d}`).join('');

/** Window lookback: rolling MAU needs 29 earlier days, month-to-date at most 30. */
const LOOKBACK_DAYS = 30;

/**
 * Windows from blocks: day states are merged once per request into aligned blocks of 1, 4 and 16
 * days, and each window [start, day] is the union of the longest blocks inside it (at most 3 per
 * length on each side: about 8 merges for a 30-day window), instead of every day state merged
 * into each of the 38 windows (1 + 7 + 30) that hold it. A uniq merge inserts every element of its
 * source, so what this saves is the users active on several days of a block, counted once in it:
 * much for the population series, nothing for sparse group-bys whose users rarely come back
 * within a group (clickhouse/README.md, "Query cost"). Ratio 4 rather than 2: half the block
 * levels to build, which is pure cost where blocks do not deduplicate.
 */
const BLOCK_RATIO = 4;
const BLOCK_DAYS = [1, BLOCK_RATIO, BLOCK_RATIO ** 2] as const;
const LONGEST_BLOCK = BLOCK_DAYS[BLOCK_DAYS.length - 1];

/**
 * True for a block the window [start, day] takes: inside it, and the longest such (its parent
 * block, BLOCK_RATIO times as long, is not inside it). These blocks partition the window, since
 * aligned blocks are nested or disjoint. No window reaches before the scan's first day or after
 * its last, so a block cut short by the scan's edges is never taken.
 */
const covers = (start: string): string =>
  `(blk_start >= ${start} AND (len = ${LONGEST_BLOCK} OR parent < ${start} OR parent + (${BLOCK_RATIO} * len - 1) > day))`;

/** `YYYYMMDD` of a UTC-midnight ms, the fact table's date_key. */
const dateKey = (ms: number): string => isoDay(ms).replaceAll('-', '');

/** How a request's user sets are read: one of the three sources below. */
interface Source {
  /** FROM clause (and WHERE) over [scanFromMs, scanToMs) local time. */
  readonly from: (scanFromMs: number, scanToMs: number) => string;
  readonly time: string;
  readonly state: string;
  readonly merge: string;
  readonly table: string;
}

/**
 * Output days per window branch of a group-by. A branch holds a DAU, WAU and MAU state per day and
 * group at once (up to ~0.8 MB each once a window passes uniq's 65,536-element cap: 1,890 days x
 * groups of the bench's platform x country took 1.7 GB in one branch, over the reader's 1 GB
 * limit), and it reads its own days plus their look-back, so shorter branches trade memory for
 * re-reading look-back days (measured in clickhouse/README.md, "Query cost").
 */
const WINDOW_BRANCH_DAYS = 15;

/** New users are counted in this many branches of disjoint user_key ranges (see userRanges). */
const USER_RANGES = 8;

/**
 * [lo, hi) bounds of user_key (UInt64) splitting it into USER_RANGES equal ranges; the first has
 * no lower bound and the last no upper one, so every key is in exactly one. user_key leads
 * rollup_user_first_seen's sorting key, so each branch reads only its own part of the table, and
 * its per-user GROUP BY holds an eighth of the users.
 */
function userRanges(): readonly (readonly [string | undefined, string | undefined])[] {
  const step = 2n ** 64n / BigInt(USER_RANGES);
  return Array.from({ length: USER_RANGES }, (_, i) => [
    i === 0 ? undefined : (step * BigInt(i)).toString(),
    i === USER_RANGES - 1 ? undefined : (step * BigInt(i + 1)).toString(),
  ]);
}

/**
 * Runs of output days, [fromMs, toMs] inclusive: one per window branch. Split only for group-bys
 * read from a rollup: without groups a branch holds one row per day, and a fact-table read (exact
 * mode, zones off the whole hour) would scan and sort each branch's look-back days again.
 */
function outputRuns(v: Plan, split: boolean): readonly (readonly [number, number])[] {
  const len = split && v.groupBy.length > 0 ? WINDOW_BRANCH_DAYS : Number.POSITIVE_INFINITY;
  const runs: [number, number][] = [];
  for (let from = v.fromMs; from <= v.toMs; from += len * DAY_MS)
    runs.push([from, Math.min(v.toMs, from + (len - 1) * DAY_MS)]);
  return runs;
}

export function buildActiveUsersQuery(req: ActiveUsersRequest): BuiltQuery {
  const exact = req.exact === true;
  const v = plan(req);
  const g = groupList(v.groupBy);
  // Whole-hour zones are checked over the whole request (with its look-back): every branch then
  // reads the same source.
  const whole = !exact && isWholeHourZone(v.tz, v.fromMs - LOOKBACK_DAYS * DAY_MS, v.toMs + DAY_MS);
  const rollup = pickRollup(v);
  const timeRange = (column: string, fromMs: number, toMs: number): string[] => [
    `${column} >= ${localMidnight(v, fromMs)}`,
    `${column} < ${localMidnight(v, toMs)}`,
  ];
  // Local midnights lie within UTC-12..UTC+14 of UTC midnight, so the facts in range have UTC
  // date_keys from the day before scanFrom to the day of scanTo; the bound lets the primary key
  // (date_key first) skip granules that the activity_timestamp condition alone would still read.
  const factWhere = (fromMs: number, toMs: number): string =>
    [
      `date_key >= ${dateKey(fromMs - DAY_MS)}`,
      `date_key <= ${dateKey(toMs)}`,
      ...timeRange('activity_timestamp', fromMs, toMs),
      ...sliceConditions(v),
    ].join(' AND ');
  // Exact: each event counts once, as its first-ingested row. Identical re-deliveries would not
  // change a uniqExact of users anyway, but a re-delivered event can carry another user_key (its
  // anonymous id resolved to a user by then) and stays a separate row even after merges, because
  // user_key is in the sorting key. Filters apply before the dedup so that only matching rows are
  // sorted; an event whose re-delivery changed a slice attribute counts in each slice it matched.
  const source: Source = exact
    ? {
        from: (f, t) => `(
      SELECT user_key, activity_timestamp${g}
      FROM fact_user_activity
      WHERE ${factWhere(f, t)}
      ORDER BY event_id, ingested_at, user_key
      LIMIT 1 BY event_id
    ) AS events`,
        time: 'activity_timestamp',
        state: 'uniqExactState(user_key)',
        merge: 'uniqExactMerge',
        table: 'fact_user_activity',
      }
    : whole
      ? {
          from: (f, t) =>
            `${rollup.table}\n    WHERE ${[...timeRange('hour', f, t), ...sliceConditions(v)].join(' AND ')}`,
          time: 'hour',
          state: 'uniqMergeState(users)',
          merge: 'uniqMerge',
          table: rollup.table,
        }
      : {
          from: (f, t) => `fact_user_activity\n    WHERE ${factWhere(f, t)}`,
          time: 'activity_timestamp',
          state: 'uniqState(user_key)',
          merge: 'uniqMerge',
          table: 'fact_user_activity',
        };
  const rolling = req.window === 'rolling';
  const wauStart = rolling ? 'day - 6' : 'toMonday(day)';
  const mauStart = rolling ? 'day - 29' : 'toStartOfMonth(day)';
  /** Windows of the output days [fromMs, toMs], from the day states of those days and their look-back. */
  const windowBranch = (
    fromMs: number,
    toMs: number,
  ): string => `  SELECT addDays(blk_start, len - 1 + k) AS day${g},
    ${source.merge}If(blk, len = 1 AND k = 0) AS w_dau, ${source.merge}If(blk, ${covers(wauStart)}) AS w_wau,
    ${source.merge}If(blk, ${covers(mauStart)}) AS w_mau, toUInt64(0) AS first_new, toUInt8(1) AS windowed
  FROM (
    SELECT len, src_day - toUInt32(src_day) % len AS blk_start, blk_start - toUInt32(blk_start) % (${BLOCK_RATIO} * len) AS parent${g},
      ${source.merge}State(users) AS blk
    FROM (
      SELECT toDate(${source.time}, ${tzLit(v)}) AS src_day${g}, ${source.state} AS users
      FROM ${source.from(fromMs - LOOKBACK_DAYS * DAY_MS, toMs + DAY_MS)}
      GROUP BY src_day${g}
    )
    ARRAY JOIN [${BLOCK_DAYS.join(', ')}] AS len
    GROUP BY len, blk_start, parent${g}
  )
  ARRAY JOIN range(${LOOKBACK_DAYS + 1}) AS k
  WHERE day >= toDate(${quoteString(isoDay(fromMs))}) AND day <= toDate(${quoteString(isoDay(toMs))})
    AND (len = 1 OR ${covers(wauStart)} OR ${covers(mauStart)})
  GROUP BY day${g}`;
  // New users read the exact per-user minimums in every mode, exact included: "first activity ever
  // in the slice" lies before any bounded scan, and fact retention drops old months.
  // A row whose (partial) minimum is past the range cannot make a user new within it: either a row
  // before the end holds the user's minimum, or the user's first day is after the range. Skipping
  // those rows before the GROUP BY shrinks it for every range that does not end today.
  const end = localMidnight(v, v.toMs + DAY_MS);
  const newUsersBranch = ([lo, hi]: readonly [string | undefined, string | undefined]): string => {
    const where = [
      ...(lo === undefined ? [] : [`user_key >= ${lo}`]),
      ...(hi === undefined ? [] : [`user_key < ${hi}`]),
      ...sliceConditions(v),
      `finalizeAggregation(first_seen) < ${end}`,
    ];
    return `  SELECT toDate(first, ${tzLit(v)}) AS day${g},
    toUInt64(0) AS w_dau, toUInt64(0) AS w_wau, toUInt64(0) AS w_mau, count() AS first_new, toUInt8(0) AS windowed
  FROM (
    SELECT user_key${g}, minMerge(first_seen) AS first
    FROM rollup_user_first_seen
    WHERE ${where.join(' AND ')}
    GROUP BY user_key${g}
  )
  WHERE first >= ${localMidnight(v, v.fromMs)} AND first < ${end}
  GROUP BY day${g}`;
  };
  const branches = [
    ...outputRuns(v, whole).map(([f, t]) => windowBranch(f, t)),
    ...userRanges().map(newUsersBranch),
  ];
  // Every branch is an independent aggregation: 18.16 runs UNION ALL branches in parallel threads
  // (max_threads of them at once) and frees each one's states once it has produced its rows, so
  // splitting bounds the memory held at once and lets two branches work at once (clickhouse/README.md,
  // "Query cost"). Window branches cover disjoint days and new-user branches disjoint users, so
  // sum() puts a day and group's parts side by side; HAVING keeps the days the windows produced,
  // as a LEFT JOIN would (a first-seen minimum without windows can occur, e.g. on fact-table
  // reads after retention dropped the range).
  const sql = `SELECT day${g}, toUInt32(sum(w_dau)) AS dau, toUInt32(sum(w_wau)) AS wau, toUInt32(sum(w_mau)) AS mau,
  toUInt32(sum(first_new)) AS new_users, toUInt32(if(new_users > dau, 0, dau - new_users)) AS returning_users
FROM (
${branches.join('\n  UNION ALL\n')}
)
GROUP BY day${g}
HAVING max(windowed) = 1
ORDER BY day${g}`;
  return { sql, source: source.table, fromRollup: whole };
}

/**
 * How many groups a group-by would return (combinations of its dimensions with activity in the
 * range and its look-back, estimated with uniq over the same source the answer reads), so a
 * request over too many is refused before ClickHouse merges a sketch per group and day.
 */
export function buildGroupCountQuery(req: ActiveUsersRequest): BuiltQuery {
  const v = plan(req);
  // uniq() of no columns is a syntax error: counting groups means there is a group-by.
  if (v.groupBy.length === 0) throw QUERY_ERRORS.unsafeSql('group count without a group-by');
  const scanFrom = v.fromMs - LOOKBACK_DAYS * DAY_MS;
  const scanTo = v.toMs + DAY_MS;
  const whole = req.exact !== true && isWholeHourZone(v.tz, scanFrom, scanTo);
  const table = whole ? pickRollup(v).table : 'fact_user_activity';
  const time = whole ? 'hour' : 'activity_timestamp';
  const where = [
    `${time} >= ${localMidnight(v, scanFrom)}`,
    `${time} < ${localMidnight(v, scanTo)}`,
    ...sliceConditions(v),
  ].join(' AND ');
  return {
    sql: `SELECT toUInt32(uniq(${v.groupBy.join(', ')})) AS groups FROM ${table} WHERE ${where}`,
    source: table,
    fromRollup: whole,
  };
}

export function buildEventCountsQuery(req: EventCountsRequest): BuiltQuery {
  const v = plan(req);
  const g = groupList(v.groupBy);
  const where = [
    `activity_timestamp >= ${localMidnight(v, v.fromMs)}`,
    `activity_timestamp < ${localMidnight(v, v.toMs + DAY_MS)}`,
    ...sliceConditions(v),
  ].join(' AND ');
  // uniqExact(event_id), not count(): a re-delivered event is a second row until merges collapse it.
  const sql = `SELECT toDate(activity_timestamp, ${tzLit(v)}) AS day${g}, toUInt32(uniqExact(event_id)) AS events
FROM fact_user_activity
WHERE ${where}
GROUP BY day${g}
ORDER BY day${g}`;
  return { sql, source: 'fact_user_activity', fromRollup: false };
}

export function buildDimensionValuesQuery(req: DimensionValuesRequest): BuiltQuery {
  const v = plan(req);
  const dimension = column(req.dimension);
  // The one number written into SQL unquoted: only a positive integer prints as digits alone.
  if (!Number.isSafeInteger(req.limit) || req.limit < 1)
    throw QUERY_ERRORS.unsafeSql(`not a row limit: ${req.limit}`);
  const whole = isWholeHourZone(v.tz, v.fromMs, v.toMs + DAY_MS);
  const rollup = pickRollup(v, [dimension]);
  const source = whole
    ? { table: rollup.table, time: 'hour', users: 'uniqMerge(users)' }
    : { table: 'fact_user_activity', time: 'activity_timestamp', users: 'uniq(user_key)' };
  const where = [
    `${source.time} >= ${localMidnight(v, v.fromMs)}`,
    `${source.time} < ${localMidnight(v, v.toMs + DAY_MS)}`,
    ...sliceConditions(v),
  ].join(' AND ');
  const sql = `SELECT ${dimension} AS value, toUInt32(${source.users}) AS users
FROM ${source.table}
WHERE ${where}
GROUP BY value
ORDER BY users DESC, value
LIMIT ${req.limit}`;
  return { sql, source: source.table, fromRollup: whole };
}
