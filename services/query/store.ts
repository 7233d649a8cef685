/**
 * What the HTTP layer needs from the database, as an interface: app.ts depends on this, main.ts
 * passes the ClickHouse implementation (./clickhouse-store.ts), and unit tests pass a fake.
 */
import type { ActiveUsersQuery, Dimension, DimensionValuesQuery, EventCountQuery } from './params.ts';

/** One output row: `date`, the group-by dimensions by name, then the measures. */
export type ResultRow = Readonly<Record<string, string | number | boolean>>;

export interface SeriesResult {
  readonly rows: readonly ResultRow[];
  /** Table the numbers came from (a rollup, or fact_user_activity for event counts and zones
   * whose offset is not a whole hour, see sql/builder.ts). */
  readonly source: string;
  readonly fromRollup: boolean;
  /** True when more rows matched than the store returns (MAX_RESULT_ROWS). */
  readonly truncated: boolean;
  /** Days of the range answered from finished numbers (active users only). */
  readonly finishedDays?: number;
  /** Days of the range answered from the query service's cache of closed days (active users only). */
  readonly cachedDays?: number;
}

export interface DimensionValue {
  readonly value: string;
  /** Distinct users with this value in the range and slice. */
  readonly users: number;
}

export interface DimensionValuesResult {
  readonly dimension: Dimension;
  readonly values: readonly DimensionValue[];
  readonly truncated: boolean;
}

export interface QueryStore {
  readonly activeUsers: (q: ActiveUsersQuery) => Promise<SeriesResult>;
  readonly eventCount: (q: EventCountQuery) => Promise<SeriesResult>;
  readonly dimensionValues: (q: DimensionValuesQuery) => Promise<DimensionValuesResult>;
  /** Resolves when the database answers a trivial query as the service's own user. */
  readonly ping: () => Promise<void>;
}

/** A group-by over three high-cardinality dimensions can match millions of rows; a page holds this many. */
export const MAX_RESULT_ROWS = 20_000;

export const ACTIVE_USER_MEASURES = [
  'dau',
  'wau',
  'mau',
  'dau_mau',
  'wau_mau',
  'new_users',
  'returning_users',
] as const;
