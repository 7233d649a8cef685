/**
 * DAU/WAU/MAU two ways over the same database: the query API's rollup query
 * (services/query/sql/builder.ts) and the exact answer from the raw fact table (uniqExact over
 * distinct user-days, the same rolling windows, test accounts and bots excluded as the builder
 * does), and their comparison.
 */

import { DAY_MS } from '../../services/lib/time.ts';
import {
  type ActiveUsersRequest,
  buildActiveUsersQuery,
  quoteString,
} from '../../services/query/sql/builder.ts';

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

export function rollupSql(req: ActiveUsersRequest): string {
  return buildActiveUsersQuery(req).sql;
}

/**
 * The exact answer from fact_user_activity, rolling windows in UTC only, for the users with
 * `user_key % shards = shard`: users are disjoint across shards, so exact counts add up.
 */
export function exactSql(req: ActiveUsersRequest, shard = 0, shards = 1): string {
  const fromMs = Date.parse(`${req.from}T00:00:00Z`);
  const toMs = Date.parse(`${req.to}T00:00:00Z`);
  const g = (req.groupBy ?? []).map((d) => `, ${d}`).join('');
  const filters = Object.entries(req.filters ?? {})
    .map(([dim, values]) => ` AND ${dim} IN (${(values ?? []).map(quoteString).join(', ')})`)
    .join('');
  const slice = `is_test_account = 0 AND is_bot = 0${filters}${shards > 1 ? ` AND user_key % ${shards} = ${shard}` : ''}`;
  const ts = (ms: number) => `toDateTime(${quoteString(`${day(ms)} 00:00:00`)}, 'UTC')`;
  return `SELECT day${g}, toUInt32(dau) AS dau, toUInt32(wau) AS wau, toUInt32(mau) AS mau,
  toUInt32(new_users) AS new_users
FROM (
  SELECT addDays(src_day, k) AS day${g},
    uniqExactIf(user_key, k = 0) AS dau, uniqExactIf(user_key, k < 7) AS wau, uniqExact(user_key) AS mau
  FROM (
    SELECT DISTINCT toDate(activity_timestamp) AS src_day${g}, user_key
    FROM fact_user_activity
    WHERE activity_timestamp >= ${ts(fromMs - 29 * DAY_MS)} AND activity_timestamp < ${ts(toMs + DAY_MS)} AND ${slice}
  )
  ARRAY JOIN range(30) AS k
  WHERE day >= toDate(${quoteString(req.from)}) AND day <= toDate(${quoteString(req.to)})
  GROUP BY day${g}
) AS windows
ANY LEFT JOIN (
  SELECT toDate(first) AS day${g}, count() AS new_users
  FROM (SELECT user_key${g}, min(activity_timestamp) AS first FROM fact_user_activity WHERE ${slice} GROUP BY user_key${g})
  WHERE first >= ${ts(fromMs)} AND first < ${ts(toMs + DAY_MS)}
  GROUP BY day${g}
) AS first_days USING (day${g})
ORDER BY day${g}`;
}

export type Counts = Record<string, string | number>;

/** Runs a query over HTTP; wall-clock ms and the JSONEachRow rows. */
export async function timedQuery(
  clickhouseUrl: string,
  database: string,
  sql: string,
): Promise<{ ms: number; rows: Counts[] }> {
  const t = performance.now();
  const r = await fetch(`${clickhouseUrl}/?database=${database}`, {
    method: 'POST',
    body: `${sql}\nFORMAT JSONEachRow`,
  });
  const text = await r.text();
  const ms = performance.now() - t;
  if (!r.ok) throw new Error(`query failed (${r.status}): ${text.slice(0, 500)}`);
  const rows = text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Counts);
  return { ms, rows };
}

/**
 * The exact query run as `shards` user shards one after another (so each fits the server's
 * per-query memory limit), rows summed per day and group; ms is the total.
 */
export async function exactQuery(
  clickhouseUrl: string,
  database: string,
  req: ActiveUsersRequest,
  shards: number,
): Promise<{ ms: number; rows: Counts[] }> {
  const groupBy = req.groupBy ?? [];
  const merged = new Map<string, Counts>();
  let ms = 0;
  for (let shard = 0; shard < shards; shard++) {
    const r = await timedQuery(clickhouseUrl, database, exactSql(req, shard, shards));
    ms += r.ms;
    for (const row of r.rows) {
      const key = [row.day, ...groupBy.map((g) => row[g])].join('|');
      const acc = merged.get(key);
      if (acc === undefined) merged.set(key, { ...row });
      else for (const m of ['dau', 'wau', 'mau', 'new_users']) acc[m] = Number(acc[m]) + Number(row[m]);
    }
  }
  return { ms, rows: [...merged.values()] };
}

export interface ErrorStats {
  readonly compared: number;
  readonly missing: number;
  readonly maxRel: Record<'dau' | 'wau' | 'mau', number>;
  readonly meanRel: Record<'dau' | 'wau' | 'mau', number>;
  readonly maxExact: Record<'dau' | 'wau' | 'mau', number>;
}

/** Relative error of the sketch answer per (day, group) row against the exact one. */
export function compare(
  sketch: readonly Counts[],
  exact: readonly Counts[],
  groupBy: readonly string[],
): ErrorStats {
  const key = (r: Counts) => [r.day, ...groupBy.map((g) => r[g])].join('|');
  const byKey = new Map(sketch.map((r) => [key(r), r]));
  const metrics = ['dau', 'wau', 'mau'] as const;
  const maxRel = { dau: 0, wau: 0, mau: 0 };
  const sumRel = { dau: 0, wau: 0, mau: 0 };
  const maxExact = { dau: 0, wau: 0, mau: 0 };
  let compared = 0;
  let missing = 0;
  for (const e of exact) {
    const s = byKey.get(key(e));
    if (!s) {
      missing++;
      continue;
    }
    compared++;
    for (const m of metrics) {
      const ev = Number(e[m]);
      const rel = ev === 0 ? (Number(s[m]) === 0 ? 0 : 1) : Math.abs(Number(s[m]) - ev) / ev;
      maxRel[m] = Math.max(maxRel[m], rel);
      sumRel[m] += rel;
      maxExact[m] = Math.max(maxExact[m], ev);
    }
  }
  const mean = (m: (typeof metrics)[number]) => (compared === 0 ? 0 : sumRel[m] / compared);
  return {
    compared,
    missing,
    maxRel,
    meanRel: { dau: mean('dau'), wau: mean('wau'), mau: mean('mau') },
    maxExact,
  };
}
