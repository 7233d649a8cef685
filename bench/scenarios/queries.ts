/**
 * Scenario 4, queries: 90-day rolling DAU/WAU/MAU (+ new users) series for an overall, a 1-filter
 * and a 2-group-by slice, from the rollups (the query API's SQL) vs the exact query over the raw
 * fact table, on a synthetic load written through the ingest table (every view runs) by ClickHouse
 * itself; p50/p95 wall time over HTTP; and the rollups' size on disk vs the fact table's.
 */
import { createClickHouse } from '../../services/lib/clickhouse.ts';
import type { ActiveUsersQuery } from '../../services/query/params.ts';
import type { ActiveUsersRequest } from '../../services/query/sql/builder.ts';
import { loadSynthetic, SYNTH_LAST_DAY } from '../../test/fixtures/synthetic.ts';
import { compare, exactQuery, rollupSql, timedQuery } from '../lib/active-users.ts';
import {
  type Ctx,
  maxTarget,
  migratedDatabase,
  minTarget,
  type Row,
  type Scenario,
  type Target,
} from '../lib/context.ts';
import { benchStore, catchUp, ninetyDayQuery, tableSizes, timeView } from '../lib/finished.ts';
import { MB, round, summary } from '../lib/measure.ts';

export const QUERY_SLICES: readonly [string, Omit<ActiveUsersRequest, 'from' | 'to' | 'tz' | 'window'>][] = [
  ['overall', {}],
  ['1 filter (country = DE)', { filters: { country: ['DE'] } }],
  ['2 group-by (platform, country)', { groupBy: ['platform', 'country'] }],
];

export function ninetyDays(): Pick<ActiveUsersRequest, 'from' | 'to' | 'tz' | 'window'> {
  const { from, to, tz, window } = ninetyDayQuery();
  return { from, to, tz, window };
}

/** The dashboard's views the finished numbers cover: its default, and each canonical slice. */
const FINISHED_VIEWS: readonly [string, Partial<ActiveUsersQuery>, string?][] = [
  ['overall', {}, 'overall'],
  ['1 filter (country = DE)', { filters: { country: ['DE'] } }, '1 filter (country = DE)'],
  ['group-by feature', { groupBy: ['feature'] }],
  ['group-by device_type', { groupBy: ['device_type'] }],
  ['group-by country', { groupBy: ['country'] }],
  ['group-by segment', { groupBy: ['segment'] }],
];

/**
 * Finished numbers (issue 11): the refresher catches up on every closed day of the load (UTC, its
 * default bounds: 7-day runs, max_threads 1), then the query store answers the 90-day views from
 * them: the first request (cold: nothing of it cached anywhere but ClickHouse's page cache) and
 * repeats, against the raw exact query's p50 above; the overall and DE series are checked equal to
 * the exact answer.
 */
async function finishedNumbers(
  ctx: Ctx,
  database: string,
  out: {
    rows: Row[];
    targets: Target[];
    exactBySlice: ReadonlyMap<string, { rows: Record<string, string | number>[]; p50: number }>;
    quick: boolean;
    notes: string[];
  },
): Promise<void> {
  const client = createClickHouse({ url: ctx.clickhouseUrl, database, requestTimeoutMs: 600_000 });
  try {
    ctx.log('  refresher catch-up');
    const caught = await catchUp(client);
    out.rows.push({
      case: 'refresher catch-up, every closed day (UTC)',
      values: {
        days: caught.days,
        seconds: round(caught.seconds, 1),
        's per day': round(caught.seconds / caught.days, 2),
      },
    });
    const store = benchStore(client);
    const runs = out.quick ? 5 : 20;
    for (const [name, over, exactName] of FINISHED_VIEWS) {
      const v = await timeView(store, ninetyDayQuery(over), runs);
      const exact = exactName === undefined ? undefined : out.exactBySlice.get(exactName);
      const err = exact
        ? compare(
            v.result.rows.map((r) => ({ ...r, day: String(r.date) }) as Record<string, string | number>),
            exact.rows,
            [],
          )
        : undefined;
      out.rows.push({
        case: `finished: ${name}`,
        values: {
          'first request ms': round(v.firstMs, 1),
          'p50 ms': round(v.p50, 1),
          'p95 ms': round(v.p95, 1),
          'finished days': v.result.finishedDays ?? 0,
          'result rows': v.result.rows.length,
          ...(exact ? { 'raw exact / finished (p50)': round(exact.p50 / v.p50) } : {}),
          ...(err
            ? { 'max rel err MAU %': round(err.maxRel.mau * 100, 3), 'rows missing': err.missing }
            : {}),
        },
      });
      out.targets.push(maxTarget(`finished p95, ${name}`, v.p95, 50, 'ms'));
      out.targets.push(maxTarget(`finished first request, ${name}`, v.firstMs, 50, 'ms'));
      if (exact)
        out.targets.push(
          minTarget(`finished speed-up vs raw exact (p50), ${name}`, exact.p50 / v.p50, 200, 'x'),
        );
      if (err) out.targets.push(maxTarget(`finished max rel err MAU, ${name}`, err.maxRel.mau * 100, 0, '%'));
    }
    // An ad-hoc slice (not finished): the first request merges sketches, repeats come from the
    // store's cache of closed days.
    const adHoc = await timeView(store, ninetyDayQuery({ groupBy: ['platform', 'country'] }), runs);
    out.rows.push({
      case: 'ad hoc: 2 group-by (platform, country), first then cached',
      values: {
        'first request ms': round(adHoc.firstMs, 1),
        'p50 ms': round(adHoc.repeat.p50, 1),
        'p95 ms': round(adHoc.repeat.p95, 1),
        'cached days': adHoc.result.cachedDays ?? 0,
      },
    });
    out.targets.push(maxTarget('ad hoc 2 group-by, first request', adHoc.firstMs, 1_500, 'ms'));
    out.targets.push(maxTarget('ad hoc 2 group-by, repeat p95', adHoc.repeat.p95, 100, 'ms'));
    out.notes.push(
      `Finished numbers: services/refresher/ caught up on ${caught.days} closed UTC days in one pass (${round(caught.seconds, 1)} s, 7-day runs, max_threads 1); the finished rows are then read through services/query/clickhouse-store.ts (two small metadata queries and one read, as the API does), ${runs} runs per view, the first reported apart. The ad-hoc view's p50/p95 are of the repeats (the cache of closed days).`,
    );
  } finally {
    await client.close();
  }
}

export const queriesScenario: Scenario = async (ctx) => {
  const events = ctx.quick ? 1_000_000 : 10_000_000;
  const users = ctx.quick ? 100_000 : 1_000_000;
  const rollupRuns = ctx.quick ? 5 : 10;
  // The exact query over 10M facts needs more than the local server's per-query memory limit.
  const shards = ctx.quick ? 1 : 8;
  const rawRuns = ctx.quick ? 1 : 3;
  const db = await migratedDatabase(ctx, 'queries');
  ctx.log(`  loading ${events} events for ${users} users`);
  const loadSeconds = await loadSynthetic(db.client, {
    events,
    users,
    chunk: 1_000_000,
    seed: 4,
    log: ctx.log,
  });
  await db.close();
  ctx.shared.set('queries.database', db.name);
  ctx.shared.set('queries.users', users);

  const rows: Row[] = [];
  const targets = [];
  const notes: string[] = [];
  const range = ninetyDays();
  const exactBySlice = new Map<string, { rows: Record<string, string | number>[]; p50: number }>();
  for (const [name, slice] of QUERY_SLICES) {
    const req: ActiveUsersRequest = { ...range, ...slice };
    ctx.log(`  ${name}: ${rollupRuns} rollup runs, ${rawRuns} raw runs`);
    const rollupMs: number[] = [];
    let sketch: Record<string, string | number>[] = [];
    for (let i = 0; i < rollupRuns; i++) {
      const r = await timedQuery(ctx.clickhouseUrl, db.name, rollupSql(req));
      rollupMs.push(r.ms);
      sketch = r.rows;
    }
    const rawMs: number[] = [];
    let exact: Record<string, string | number>[] = [];
    let rawError = '';
    for (let i = 0; i < rawRuns && rawError === ''; i++) {
      try {
        const r = await exactQuery(ctx.clickhouseUrl, db.name, req, shards);
        rawMs.push(r.ms);
        exact = r.rows;
      } catch (err) {
        // The exact query may exceed the server's memory limit at this size: that is a result too.
        rawError = (err as Error).message.slice(0, 200);
        notes.push(`Raw exact query for "${name}" failed: ${rawError}`);
      }
    }
    const ro = summary(rollupMs);
    const raw = summary(rawMs);
    if (rawError === '') exactBySlice.set(name, { rows: exact, p50: raw.p50 });
    const err = compare(sketch, exact, req.groupBy ?? []);
    rows.push({
      case: name,
      values: {
        'rollup p50 ms': round(ro.p50, 1),
        'rollup p95 ms': round(ro.p95, 1),
        'raw exact p50 ms': round(raw.p50),
        'raw exact p95 ms': round(raw.p95),
        'raw/rollup (p50)': round(raw.p50 / ro.p50, 1),
        'result rows': sketch.length,
        'max rel err WAU %': round(err.maxRel.wau * 100, 3),
        'max rel err MAU %': round(err.maxRel.mau * 100, 3),
      },
    });
    targets.push(maxTarget(`rollup p95, ${name}`, ro.p95, 100, 'ms'));
    targets.push(minTarget(`rollup speed-up vs raw exact (p50), ${name}`, raw.p50 / ro.p50, 50, 'x'));
  }

  // Where the rollup time goes, overall slice: the builder's query = day states (read + merge the
  // hourly states per day) -> ARRAY JOIN range(30) and uniqMergeIf per window -> new users (GROUP BY
  // user_key over rollup_user_first_seen). The first and the last part timed on their own.
  const { from, to } = range;
  const diagnoses = [
    [
      'day states alone (overall)',
      // sum() of the finished counts: a bare count() lets ClickHouse drop the state column and merge nothing.
      `SELECT sum(u) AS n FROM (SELECT toDate(hour, 'UTC') AS d, uniqMerge(users) AS u
       FROM rollup_users_hourly_total WHERE hour >= toDateTime('${from} 00:00:00', 'UTC') - 29 * 86400
         AND hour < toDateTime('${to} 00:00:00', 'UTC') + 86400 AND is_test_account = 0 AND is_bot = 0 GROUP BY d)`,
    ],
    [
      'first-seen subquery alone (overall)',
      `SELECT sum(toUInt64(first)) AS n FROM (SELECT user_key, minMerge(first_seen) AS first
       FROM rollup_user_first_seen WHERE is_test_account = 0 AND is_bot = 0 GROUP BY user_key)`,
    ],
  ] as const;
  for (const [name, sql] of diagnoses) {
    const ms: number[] = [];
    for (let i = 0; i < Math.min(rollupRuns, 10); i++)
      ms.push((await timedQuery(ctx.clickhouseUrl, db.name, sql)).ms);
    const f = summary(ms);
    rows.push({
      case: `diagnosis: ${name}`,
      values: { 'rollup p50 ms': round(f.p50, 1), 'rollup p95 ms': round(f.p95, 1) },
    });
  }

  await finishedNumbers(ctx, db.name, { rows, targets, exactBySlice, quick: ctx.quick, notes });

  const s = await tableSizes(ctx.clickhouseUrl, db.name);
  const fact = s.get('fact_user_activity');
  let rollupBytes = 0;
  for (const [table, v] of s) {
    if (!table.startsWith('rollup_') && !table.startsWith('agg_') && table !== 'fact_user_activity') continue;
    rollupBytes += table.startsWith('rollup_') ? v.bytes : 0;
    rows.push({
      case: `size: ${table}`,
      values: { 'MB on disk': round(v.bytes / MB, 1), 'table rows': v.rows },
    });
  }
  rows.push({
    case: 'size: all rollups / fact table',
    values: { 'MB on disk': round(rollupBytes / MB, 1), ratio: round(rollupBytes / (fact?.bytes ?? 1), 3) },
  });
  return {
    id: '4',
    title: 'Queries: rollups vs exact raw query',
    notes: [
      `${events.toLocaleString('en-US')} events, ${users.toLocaleString('en-US')} user ids (power law: not every id is active), 120 days up to ${SYNTH_LAST_DAY}, inserted into ingest_user_activity as INSERT ... SELECT FROM numbers() in 1M-row chunks (${round(loadSeconds)} s, ${round(events / loadSeconds)} rows/s through every view).`,
      `Rollup query = services/query/sql/builder.ts (rolling windows, UTC, with new users); exact = uniqExact over distinct user-days of fact_user_activity, same windows and exclusions (bench/lib/active-users.ts). ${rollupRuns} rollup runs and ${rawRuns} raw runs per slice, sequential, wall time over HTTP. The exact query runs as ${shards} user shard(s) one after another (user_key % ${shards}; exact counts of disjoint users add up), its time is the sum: one query over all users exceeded the local ClickHouse's 3.73 GiB per-query memory limit at 10M events.`,
      'Sizes: system.parts active parts as loaded (merges not forced).',
      ...(ctx.quick ? ['Quick mode: 1M events / 100k users, not the 10M / 1M of the issue.'] : []),
      ...notes,
    ],
    rows,
    targets,
    profiles: [],
  };
};
