/**
 * Serving active users from the cheapest correct source, pure parts: whether a request is covered
 * by the finished numbers (clickhouse/migrations/0012, computed by services/refresher/), the SQL
 * that reads them, and the stitching of finished days with sketch days into one series.
 *
 * Covered: the default population (no test accounts, no bots), rolling windows, and either no
 * slice, one group-by over a canonical dimension, or a filter on one value of one. Finished days
 * are the closed days whose numbers are current (services/lib/finished-days.ts); every other day
 * of the range (today, a day awaiting its refresh, a day a late event made stale) comes from the
 * sketches or the exact scan, as an uncovered request does.
 */
import { FINISHED_DIMENSIONS, type FinishedDimension, kindOf } from '../lib/finished-days.ts';
import { quoteString } from '../lib/sql.ts';
import type { ActiveUsersQuery, Dimension } from './params.ts';

export interface FinishedSlice {
  readonly kind: number;
  /** Group rows by the dimension's value (its name), or undefined for one series. */
  readonly groupBy?: FinishedDimension;
  /** Only this value (a one-value filter). */
  readonly value?: string;
}

const isFinished = (d: Dimension): d is FinishedDimension =>
  (FINISHED_DIMENSIONS as readonly string[]).includes(d);

/** The finished slice answering `q`, or undefined when finished numbers cannot. */
export function finishedSlice(q: ActiveUsersQuery): FinishedSlice | undefined {
  if (q.includeTest || q.includeBots || q.window !== 'rolling') return undefined;
  const filters = Object.entries(q.filters).filter(([, v]) => v !== undefined) as [
    Dimension,
    readonly string[],
  ][];
  if (filters.length === 0 && q.groupBy.length === 0) return { kind: 0 };
  if (filters.length === 0 && q.groupBy.length === 1) {
    const d = q.groupBy[0] as Dimension;
    return isFinished(d) ? { kind: kindOf(d), groupBy: d } : undefined;
  }
  if (filters.length === 1 && q.groupBy.length === 0) {
    const [d, values] = filters[0] as [Dimension, readonly string[]];
    // Several values are OR-ed: their users are not a sum of finished per-value numbers.
    if (isFinished(d) && values.length === 1) return { kind: kindOf(d), value: values[0] as string };
  }
  return undefined;
}

/**
 * Finished rows of a slice for [from, to] with their computed_at; the caller keeps current ones.
 * `day` in WHERE is the selected alias (a YYYY-MM-DD string, 18.16 and current ClickHouse alike),
 * so the bounds are string literals: they order the same as the dates.
 */
export function finishedRowsQuery(tz: string, s: FinishedSlice, from: string, to: string): string {
  const where = [
    `tz = ${quoteString(tz)}`,
    `kind = ${s.kind}`,
    `day >= ${quoteString(from)}`,
    `day <= ${quoteString(to)}`,
    ...(s.value === undefined ? [] : [`value = ${quoteString(s.value)}`]),
  ];
  return `SELECT toString(day) AS day, value, dau, wau, mau, new_users, toUInt32(computed_at) AS computed
FROM agg_active_users_daily FINAL
WHERE ${where.join(' AND ')}`;
}

export interface FinishedRow {
  readonly day: string;
  readonly value: string;
  readonly dau: number;
  readonly wau: number;
  readonly mau: number;
  readonly new_users: number;
  readonly computed: number;
}
