/**
 * Where the sketch path's time goes: the query store's active-users SQL for bench scenario 4's
 * three slices (90-day rolling UTC series, services/query/sql/builder.ts as it is at this commit),
 * timed whole and part by part from ClickHouse's own system.query_log: wall ms, CPU seconds (user +
 * system of every thread: on a machine shared with other work the wall time waits for a core, the
 * CPU time does not), rows read and peak memory. Parts are the builder's UNION ALL branches and the
 * subqueries inside them, each wrapped in a sum() of its finalized values, so ClickHouse computes
 * them but returns one row (threads = the mean number of the query's threads alive, their summed
 * real time over the wall time: how parallel its plan is, whether or not a core was free):
 *   - day states: the hourly rollup's states merged per day (and group), every window branch's;
 *   - blocks: the day states merged into aligned 1/4/16-day blocks, day states included;
 *   - windows: every window branch whole (DAU / WAU / MAU from the blocks), blocks included;
 *   - new users: every branch of rollup_user_first_seen's per-user minimums;
 *   - whole query: the builder's SQL as the store sends it (max_threads as the server sets it).
 * Runs are interleaved (each part once, then again), medians reported. The whole query is also run
 * once as the query API's read-only user, whose profile limits memory per query.
 *
 * Usage: node bench/sketch-parts.ts --database NAME [--load] [--runs 3] [--slices 2]
 *   (CLICKHOUSE_URL as for the migrator). --load creates and migrates NAME and loads scenario 4's
 *   synthetic data into it first (10M events, 1M user ids, seed 4: test/fixtures/synthetic.ts), ~5 min.
 *   --slices 2 times only the 2-group-by slice; default all three.
 */
import { randomUUID } from 'node:crypto';
import { createClickHouse } from '../services/lib/clickhouse.ts';
import { readConfig, url } from '../services/lib/config.ts';
import { migrate } from '../services/lib/datamodel/migrate.ts';
import { buildActiveUsersQuery } from '../services/query/sql/builder.ts';
import { loadSynthetic } from '../test/fixtures/synthetic.ts';
import { ninetyDayQuery } from './lib/finished.ts';
import { round } from './lib/measure.ts';
import { QUERY_SLICES } from './scenarios/queries.ts';

const cfg = readConfig({ CLICKHOUSE_URL: url('ClickHouse HTTP URL', 'http://127.0.0.1:8123') }, process.env);
const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const databaseArg = arg('--database');
if (databaseArg === undefined || !/^\w+$/.test(databaseArg)) throw new Error('--database NAME is required');
const database: string = databaseArg;
const runs = Number(arg('--runs') ?? 3);
const onlySlice = arg('--slices');

async function post(sql: string, params: Record<string, string>): Promise<string> {
  const q = new URLSearchParams({ database, ...params });
  const r = await fetch(`${cfg.CLICKHOUSE_URL}/?${q}`, { method: 'POST', body: sql });
  const text = await r.text();
  if (!r.ok) throw new Error(text.slice(0, 300));
  return text;
}

interface Run {
  readonly ms: number;
  readonly cpuS: number;
  readonly readRows: number;
  readonly memoryBytes: number;
  readonly threads: number;
}

/** One run of `sql` with query logging on, its costs as the server logged them. */
async function logged(sql: string): Promise<Run> {
  const id = randomUUID();
  await post(sql, { query_id: id, log_queries: '1' });
  await post('SYSTEM FLUSH LOGS', {});
  const [row] = (
    await post(
      `SELECT query_duration_ms AS ms, read_rows, memory_usage,
         ProfileEvents.Values[indexOf(ProfileEvents.Names, 'UserTimeMicroseconds')]
         + ProfileEvents.Values[indexOf(ProfileEvents.Names, 'SystemTimeMicroseconds')] AS cpu_us,
         ProfileEvents.Values[indexOf(ProfileEvents.Names, 'RealTimeMicroseconds')] AS real_us
       FROM system.query_log WHERE query_id = '${id}' AND type = 2 FORMAT JSONEachRow`,
      {},
    )
  )
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, string | number>);
  if (row === undefined) throw new Error(`query ${id} not in system.query_log`);
  return {
    ms: Number(row.ms),
    cpuS: Number(row.cpu_us) / 1e6,
    readRows: Number(row.read_rows),
    memoryBytes: Number(row.memory_usage),
    threads: Number(row.real_us) / 1000 / Math.max(1, Number(row.ms)),
  };
}

/** A subquery of the builder's fixed layout: from the line starting `head` to the end of the line starting `tail`. */
function cut(branch: string, head: string, tail: string): string {
  const a = branch.indexOf(`\n${head}`);
  const b = branch.indexOf(`\n${tail}`, a);
  if (a < 0 || b < 0)
    throw new Error(`builder layout changed: no ${JSON.stringify(head)} .. ${JSON.stringify(tail)}`);
  return branch.slice(a + 1, branch.indexOf('\n', b + 1));
}

/** The builder's SQL cut into its parts (see the header). */
function parts(sql: string): [string, string][] {
  const open = sql.indexOf('FROM (\n') + 'FROM (\n'.length;
  const close = sql.lastIndexOf('\n)\nGROUP BY day');
  const branches = sql.slice(open, close).split('\n  UNION ALL\n');
  const windows = branches.filter((b) => b.includes('toUInt8(1) AS windowed'));
  const newUsers = branches.filter((b) => b.includes('toUInt8(0) AS windowed'));
  const union = (xs: string[]) => xs.join('\n  UNION ALL\n');
  return [
    [
      'day states',
      `SELECT count(), sum(finalizeAggregation(users)) FROM (${union(windows.map((w) => cut(w, '      SELECT toDate(', '      GROUP BY src_day')))})`,
    ],
    [
      'blocks',
      `SELECT count(), sum(finalizeAggregation(blk)) FROM (${union(windows.map((w) => cut(w, '    SELECT len,', '    GROUP BY len,')))})`,
    ],
    ['windows', `SELECT count(), sum(w_dau + w_wau + w_mau) FROM (${union(windows)})`],
    ['new users', `SELECT count(), sum(first_new) FROM (${union(newUsers)})`],
    ['whole query', sql],
  ];
}

if (process.argv.includes('--load')) {
  const admin = createClickHouse({ url: cfg.CLICKHOUSE_URL });
  await admin.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
  await admin.close();
  const client = createClickHouse({ url: cfg.CLICKHOUSE_URL, database, requestTimeoutMs: 900_000 });
  await migrate({ client, database });
  await loadSynthetic(client, {
    events: 10_000_000,
    users: 1_000_000,
    chunk: 1_000_000,
    seed: 4,
    log: (l) => process.stderr.write(`${l}\n`),
  });
  await client.close();
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const out = [
  '| slice | part | wall ms | CPU s | threads | rows read | peak memory MB |',
  '| --- | --- | --- | --- | --- | --- | --- |',
];
for (const [i, [name, slice]] of QUERY_SLICES.entries()) {
  if (onlySlice !== undefined && String(i) !== onlySlice) continue;
  const sql = buildActiveUsersQuery(ninetyDayQuery(slice as Parameters<typeof ninetyDayQuery>[0])).sql;
  const ps = parts(sql);
  const got = ps.map((): Run[] => []);
  for (let r = 0; r < runs; r++) for (const [j, [, part]] of ps.entries()) got[j]?.push(await logged(part));
  for (const [j, [part]] of ps.entries()) {
    const rs = got[j] ?? [];
    out.push(
      `| ${name} | ${part} | ${round(median(rs.map((x) => x.ms)))} | ${round(median(rs.map((x) => x.cpuS)), 2)} | ${round(median(rs.map((x) => x.threads)), 1)} | ${median(rs.map((x) => x.readRows)).toLocaleString('en-US')} | ${round(median(rs.map((x) => x.memoryBytes)) / 2 ** 20)} |`,
    );
  }
  // The query API's user: readonly, so no query log; whether the query fits its limits is the point.
  const t = performance.now();
  const reader = await post(sql, { user: 'analytics_reader' }).then(
    () => 'ok',
    (err: Error) => err.message.split(',')[0] ?? 'failed',
  );
  out.push(
    `| ${name} | whole query as analytics_reader | ${round(performance.now() - t)} | | | | ${reader} |`,
  );
}
process.stdout.write(`${out.join('\n')}\n`);
