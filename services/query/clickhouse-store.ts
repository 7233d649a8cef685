/**
 * QueryStore on ClickHouse: SQL from the builder in ./sql (allow-listed identifiers, escaped
 * literals), run as the read-only user whose profile carries the per-query limits. Rows are
 * streamed and cut at MAX_RESULT_ROWS, so a group-by over three wide dimensions cannot build an
 * unbounded response in memory.
 */
import type { ClickHouseClient } from '../lib/clickhouse.ts';
import { PipelineError } from '../lib/errors.ts';
import { fromClickHouse, invalidParams } from './errors.ts';
import type { ActiveUsersQuery, Dimension, DimensionValuesQuery, EventCountQuery } from './params.ts';
import {
  type ActiveUsersRow,
  type BuiltQuery,
  buildActiveUsersQuery,
  buildDimensionValuesQuery,
  buildEventCountsQuery,
  type DimensionValueRow,
  type EventCountsRow,
} from './sql/builder.ts';
import { MAX_RESULT_ROWS, type QueryStore, type ResultRow } from './store.ts';

/** Stickiness as a ratio with 4 decimals (0 when nobody was active in the month). */
function ratio(part: number, whole: number): number {
  return whole > 0 ? Math.round((part / whole) * 10_000) / 10_000 : 0;
}

/** Builder errors mean the API let through something the builder refuses: still the caller's 400. */
function build(make: () => BuiltQuery): BuiltQuery {
  try {
    return make();
  } catch (err) {
    if (err instanceof PipelineError && err.code === 'QUERY_INVALID_REQUEST') {
      throw invalidParams([{ param: 'query', message: err.message }]);
    }
    throw err;
  }
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

export function createClickHouseStore(client: ClickHouseClient): QueryStore {
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

  return {
    // The API's queries are the builder's requests (ActiveUsersQuery is an ActiveUsersRequest, ...).
    async activeUsers(q: ActiveUsersQuery) {
      const built = build(() => buildActiveUsersQuery(q));
      const r = await rows<ActiveUsersRow>(built, MAX_RESULT_ROWS);
      return {
        rows: r.rows.map(
          ({ day, dau, wau, mau, new_users, returning_users, ...dims }): ResultRow => ({
            ...dated(day, dims, q.groupBy),
            dau,
            wau,
            mau,
            dau_mau: ratio(dau, mau),
            wau_mau: ratio(wau, mau),
            new_users,
            returning_users,
          }),
        ),
        source: built.source,
        fromRollup: built.fromRollup,
        truncated: r.truncated,
      };
    },

    async eventCount(q: EventCountQuery) {
      const built = build(() => buildEventCountsQuery(q));
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
      const built = build(() => buildDimensionValuesQuery({ ...q, limit: Math.min(q.limit + 1, 1000) }));
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
