/**
 * QueryStore on ClickHouse: SQL from the builder in ./sql (allow-listed identifiers, escaped
 * literals), run as the read-only user whose profile carries the per-query limits. Rows are
 * streamed and cut at MAX_RESULT_ROWS, so a group-by over three wide dimensions cannot build an
 * unbounded response in memory.
 *
 * Active users come from the cheapest correct source per day: the refresher's finished numbers
 * where they cover the request and are current (./finished.ts), this store's cache of closed days
 * answered before and untouched since, and the sketches (or the exact scan) for the rest, each run
 * of consecutive days one query. One small read of the range's dirty marks decides all three.
 */
import type { ClickHouseClient } from '../lib/clickhouse.ts';
import {
  currentDays,
  dayRuns,
  daysOf,
  doneQuery,
  localDay,
  markHoursFor,
  marksQuery,
  newestMarkByDay,
} from '../lib/finished-days.ts';
import { Lru } from '../lib/lru.ts';
import { fromClickHouse, invalidParams } from './errors.ts';
import { type FinishedRow, finishedRowsQuery, finishedSlice } from './finished.ts';
import type { ActiveUsersQuery, Dimension, DimensionValuesQuery, EventCountQuery } from './params.ts';
import {
  type ActiveUsersRow,
  type BuiltQuery,
  buildActiveUsersQuery,
  buildDimensionValuesQuery,
  buildEventCountsQuery,
  buildGroupCountQuery,
  type DimensionValueRow,
  type EventCountsRow,
} from './sql/builder.ts';
import { MAX_RESULT_ROWS, type QueryStore, type ResultRow, type SeriesResult } from './store.ts';

/** Stickiness as a ratio with 4 decimals (0 when nobody was active in the month). */
function ratio(part: number, whole: number): number {
  return whole > 0 ? Math.round((part / whole) * 10_000) / 10_000 : 0;
}

/** The head of an API row: the day as `date`, then each group-by dimension ('' when absent). */
function dated(
  day: string,
  dims: Partial<Record<Dimension, string>>,
  groupBy: readonly Dimension[],
): Record<string, string> {
  const out: Record<string, string> = { date: day };
  for (const d of groupBy) out[d] = dims[d] ?? '';
  return out;
}

/** The API's measures of one row, stickiness derived. */
function measures(dau: number, wau: number, mau: number, newUsers: number, returning: number) {
  return {
    dau,
    wau,
    mau,
    dau_mau: ratio(dau, mau),
    wau_mau: ratio(wau, mau),
    new_users: newUsers,
    returning_users: returning,
  };
}

/** Rows in the builder's order: by day, then by each group-by value. */
function byDateAndGroup(groupBy: readonly Dimension[]) {
  return (a: ResultRow, b: ResultRow): number => {
    for (const k of ['date', ...groupBy]) {
      const x = String(a[k] ?? '');
      const y = String(b[k] ?? '');
      if (x !== y) return x < y ? -1 : 1;
    }
    return 0;
  };
}

/**
 * `now` is the service's clock, for "today" in the request's zone: a day the service thinks closed
 * but ClickHouse's clock does not has no current finished numbers yet, so a skew only sends that
 * day to the sketches.
 */
export interface StoreOptions {
  /** A group-by answered from sketches or facts over more groups than this is refused (400). */
  readonly maxGroups?: number;
  /** Days of estimated answers kept (per request shape and day); 0 keeps none. */
  readonly cacheDays?: number;
  /** How old a day's newest mark must be before its answer is kept (default CACHE_SETTLE_MS). */
  readonly cacheSettleMs?: number;
  readonly now?: () => number;
}

/** A closed day's rows for one request shape, and the newest mark of the day when they were read. */
interface CachedDay {
  readonly stamp: number;
  readonly rows: readonly ResultRow[];
}

/**
 * A day is kept only once its newest mark is this old on the service's clock: an insert that
 * wrote the mark may still be running (REFRESH_SETTLE_SECONDS' reason), and the service's clock
 * may differ from ClickHouse's, which stamps the marks.
 */
const CACHE_SETTLE_MS = 120_000;
/** Days with more rows (wide group-bys) are not kept: the cache's memory is days x this at most. */
const CACHE_MAX_ROWS_PER_DAY = 200;

/** The request without its range: a closed day's answer depends on nothing else. */
function cacheKey(q: ActiveUsersQuery): string {
  const filters = Object.entries(q.filters)
    .filter(([, v]) => v !== undefined)
    .map(([d, v]) => [d, [...(v ?? [])].sort()] as const)
    .sort(([a], [b]) => (a < b ? -1 : 1));
  return JSON.stringify([q.tz, q.window, q.exact, q.includeTest, q.includeBots, q.groupBy, filters]);
}

export function createClickHouseStore(client: ClickHouseClient, o: StoreOptions = {}): QueryStore {
  const now = o.now ?? Date.now;
  const maxGroups = o.maxGroups ?? Number.POSITIVE_INFINITY;
  const cache = new Lru<string, CachedDay>(Math.max(2, o.cacheDays ?? 2_000));
  const cacheOn = (o.cacheDays ?? 2_000) > 0;
  async function rows<T>(q: BuiltQuery, limit: number): Promise<{ rows: T[]; truncated: boolean }> {
    const out: T[] = [];
    let truncated = false;
    try {
      const rs = await client.query({ query: q.sql, format: 'JSONEachRow' });
      // Leaving the loop early closes the response stream; the server stops sending.
      outer: for await (const chunk of rs.stream<T>()) {
        for (const row of chunk) {
          if (out.length >= limit) {
            truncated = true;
            break outer;
          }
          out.push(row.json());
        }
      }
    } catch (err) {
      throw fromClickHouse(err);
    }
    return { rows: out, truncated };
  }

  async function select<T>(sql: string): Promise<T[]> {
    return (await rows<T>({ sql, source: '', fromRollup: false }, Number.POSITIVE_INFINITY)).rows;
  }

  /** Sketches (or the exact scan when asked): every request the finished numbers do not cover. */
  async function estimated(q: ActiveUsersQuery): Promise<SeriesResult> {
    if (q.groupBy.length > 0 && Number.isFinite(maxGroups)) {
      const [count] = await select<{ groups: number }>(buildGroupCountQuery(q).sql);
      const groups = Number(count?.groups ?? 0);
      if (groups > maxGroups) {
        throw invalidParams([
          {
            param: 'group_by',
            message: `group_by=${q.groupBy.join(',')} has about ${groups} groups in this range and slice, more than the ${maxGroups} allowed (QUERY_MAX_GROUPS): add a filter, fewer dimensions or a shorter range`,
          },
        ]);
      }
    }
    const built = buildActiveUsersQuery(q);
    const r = await rows<ActiveUsersRow>(built, MAX_RESULT_ROWS);
    return {
      rows: r.rows.map(
        ({ day, dau, wau, mau, new_users, returning_users, ...dims }): ResultRow => ({
          ...dated(day, dims, q.groupBy),
          ...measures(dau, wau, mau, new_users, returning_users),
          exact: q.exact,
        }),
      ),
      source: built.source,
      fromRollup: built.fromRollup,
      truncated: r.truncated,
      finishedDays: 0,
    };
  }

  return {
    async activeUsers(q: ActiveUsersQuery) {
      const today = localDay(now(), q.tz);
      const slice = finishedSlice(q);
      const hours = markHoursFor(q.from, q.to);
      const [markRows, doneRows] = await Promise.all([
        select<{ hour: number; marked: number }>(
          marksQuery({ hoursFromMs: hours.fromMs, hoursToMs: hours.toMs }),
        ),
        slice === undefined
          ? Promise.resolve([])
          : select<{ day: string; computed: number }>(doneQuery(q.tz, q.from, q.to)),
      ]);
      const marks = markRows.map((m) => ({
        hourMs: Number(m.hour) * 1000,
        markedMs: Number(m.marked) * 1000,
      }));
      const done = new Map(doneRows.map((d) => [d.day, Number(d.computed) * 1000]));
      const newest = newestMarkByDay(marks, q.tz, q.to);
      const current =
        slice === undefined
          ? new Set<string>()
          : currentDays({ from: q.from, to: q.to, newest, done, today });
      const finishedDays = [...current].filter((d) => done.has(d)).sort();
      // Every other day: from the cache when nothing marked it since it was kept, else queried.
      const key = cacheKey(q);
      const out: ResultRow[] = [];
      let cachedDays = 0;
      const toQuery: string[] = [];
      for (const day of daysOf(q.from, q.to)) {
        if (current.has(day)) continue;
        const hit = cacheOn && day < today ? cache.get(`${key}\0${day}`) : undefined;
        if (hit !== undefined && hit.stamp === (newest.get(day) ?? 0)) {
          out.push(...hit.rows);
          cachedDays++;
        } else toQuery.push(day);
      }
      const runs = dayRuns(toQuery);
      const [finished, ...parts] = await Promise.all([
        finishedDays.length === 0
          ? Promise.resolve([])
          : select<FinishedRow>(
              finishedRowsQuery(
                q.tz,
                slice ?? { kind: 0 },
                finishedDays[0] as string,
                finishedDays.at(-1) as string,
              ),
            ),
        ...runs.map(([from, to]) => estimated({ ...q, from, to })),
      ]);
      for (const f of finished) {
        // Current rows only: a recomputation that no longer produced a value leaves an older row.
        if (!current.has(f.day) || done.get(f.day) !== Number(f.computed) * 1000) continue;
        out.push({
          ...dated(f.day, slice?.groupBy ? { [slice.groupBy]: f.value } : {}, q.groupBy),
          ...measures(f.dau, f.wau, f.mau, f.new_users, f.dau - Math.min(f.dau, f.new_users)),
          exact: true,
        });
      }
      const settled = now() - (o.cacheSettleMs ?? CACHE_SETTLE_MS);
      runs.forEach(([from, to], i) => {
        const part = parts[i] as SeriesResult;
        out.push(...part.rows);
        if (part.truncated) return;
        const byDay = new Map<string, ResultRow[]>();
        for (const row of part.rows)
          byDay.set(String(row.date), [...(byDay.get(String(row.date)) ?? []), row]);
        for (const day of daysOf(from, to)) {
          const stamp = newest.get(day) ?? 0;
          const rows = byDay.get(day) ?? [];
          // A closed day whose newest mark has settled (its insert is surely visible); small days only.
          if (day >= today || stamp > settled || rows.length > CACHE_MAX_ROWS_PER_DAY) continue;
          if (cacheOn) cache.set(`${key}\0${day}`, { stamp, rows });
        }
      });
      out.sort(byDateAndGroup(q.groupBy));
      const sources = [
        ...(finishedDays.length > 0 ? ['agg_active_users_daily'] : []),
        ...new Set(parts.map((p) => p.source)),
        ...(cachedDays > 0 ? ['cache'] : []),
      ];
      return {
        rows: out.slice(0, MAX_RESULT_ROWS),
        source: sources.join('+') || 'none',
        fromRollup: parts.every((p) => p.fromRollup),
        truncated: out.length > MAX_RESULT_ROWS || parts.some((p) => p.truncated),
        finishedDays: finishedDays.length,
        cachedDays,
      };
    },

    async eventCount(q: EventCountQuery) {
      const built = buildEventCountsQuery(q);
      const r = await rows<EventCountsRow>(built, MAX_RESULT_ROWS);
      return {
        rows: r.rows.map(
          ({ day, events, ...dims }): ResultRow => ({ ...dated(day, dims, q.groupBy), events }),
        ),
        source: built.source,
        fromRollup: built.fromRollup,
        truncated: r.truncated,
      };
    },

    async dimensionValues(q: DimensionValuesQuery) {
      // One more than asked, to tell whether the list was cut.
      const built = buildDimensionValuesQuery({ ...q, limit: Math.min(q.limit + 1, 1000) });
      const r = await rows<DimensionValueRow>(built, q.limit);
      return { dimension: q.dimension, values: r.rows, truncated: r.truncated };
    },

    async ping() {
      try {
        const rs = await client.query({ query: 'SELECT 1 AS ok', format: 'JSONEachRow' });
        await rs.json();
      } catch (err) {
        throw fromClickHouse(err);
      }
    },
  };
}
