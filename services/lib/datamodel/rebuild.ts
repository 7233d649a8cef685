/**
 * Rebuild: recomputes the rollups for whole months from fact_user_activity (backfills, a changed
 * view, a deleted user). The command: `npm run rollups:rebuild -- --from YYYY-MM-DD --to YYYY-MM-DD`
 * (clickhouse/rebuild.ts); the range is widened to whole months, the rollups' partitions.
 *
 * Per hourly rollup and month: build the month in a staging table from the facts, swap it in with
 * ALTER TABLE ... REPLACE PARTITION (atomic per partition), then re-add the states of facts that
 * were ingested while the rebuild ran (ingested_at >= start), whose live states the swap may have
 * replaced. States are idempotent, so re-adding is harmless: safe while ingestion continues.
 * rollup_user_first_seen has no time partition; its minima are re-inserted from the facts (min is
 * idempotent; removing a user there is an ALTER TABLE ... DELETE WHERE user_key = ...).
 *
 * Refuses months whose facts retention has already dropped: that would wipe kept history.
 *
 * On a cluster (`cluster`, clickhouse/CLUSTER.md) 18.16's DDL worker refuses REPLACE PARTITION ...
 * ON CLUSTER (code 48, "Unsupported type of ALTER query"), and one connection cannot run a
 * statement on each shard otherwise: each hourly rollup's month is dropped ON CLUSTER, then its
 * states are computed from the facts and sent to the shards of their users (cluster-ops.ts
 * rebuildRoute), then the states of facts ingested meanwhile are sent again. Not atomic: between the
 * drop and the insert a reader sees the month's rollup without its states (seconds; the refresher's
 * finished numbers read the facts, not the rollups). first_seen shards by user_key: its insert
 * through the Distributed table lands on the user's shard as it is.
 */
import type { ClickHouseClient } from '../clickhouse.ts';
import { DATAMODEL_CODES } from '../error-codes.ts';
import { PipelineError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { ClusterTarget } from './cluster.ts';
import { dropPartitionStatement, rebuildRoute, shardWeightQuery, systemRowsOf } from './cluster-ops.ts';

export const HOURLY_ROLLUPS = [
  'rollup_users_hourly_total',
  'rollup_users_hourly_feature',
  'rollup_users_hourly_slice',
];
const FIRST_SEEN = 'rollup_user_first_seen';

/** Months (YYYYMM numbers) covering [from, to]. */
export function monthsBetween(from: string, to: string): number[] {
  const bad = [from, to].filter((d) => !/^\d{4}-\d{2}-\d{2}$/.test(d) || Number.isNaN(Date.parse(d)));
  if (bad.length > 0 || to < from) {
    throw new PipelineError(
      DATAMODEL_CODES.rebuildBadRange,
      `invalid range ${from} .. ${to} (YYYY-MM-DD, from <= to)`,
    );
  }
  const out: number[] = [];
  let y = Number(from.slice(0, 4));
  let m = Number(from.slice(5, 7));
  const end = Number(to.slice(0, 4)) * 100 + Number(to.slice(5, 7));
  while (y * 100 + m <= end) {
    out.push(y * 100 + m);
    m += 1;
    if (m > 12) [y, m] = [y + 1, 1];
  }
  return out;
}

async function rows<T>(client: ClickHouseClient, query: string): Promise<T[]> {
  const rs = await client.query({ query, format: 'JSONEachRow' });
  return rs.json<T>();
}

interface Column {
  readonly name: string;
  readonly type: string;
}

const columnsOf = (client: ClickHouseClient, table: string): Promise<Column[]> =>
  rows<Column>(
    client,
    `SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = '${table}'`,
  );

/**
 * The SELECT that computes a rollup from the facts, derived from the rollup's columns: each key
 * column has the same name in fact_user_activity, `hour` is the fact's hour, the state column is
 * the state of the user key. `shardKey`: a further key column `<shardKey> AS shard_key`, grouped
 * by (the cluster route's).
 */
async function selectFromFacts(
  client: ClickHouseClient,
  table: string,
  where: string,
  shardKey?: string,
): Promise<string> {
  const cols = await columnsOf(client, table);
  const keys = cols.filter((c) => !c.type.startsWith('AggregateFunction('));
  const states = cols.filter((c) => c.type.startsWith('AggregateFunction('));
  const select = cols.map((c) => {
    if (c.name === 'hour') return 'toStartOfHour(activity_timestamp) AS hour';
    if (c.type.startsWith('AggregateFunction(uniq,')) return `uniqState(user_key) AS ${c.name}`;
    if (c.type.startsWith('AggregateFunction(min,')) return `minState(activity_timestamp) AS ${c.name}`;
    if (states.includes(c))
      throw new PipelineError(DATAMODEL_CODES.rebuildUnknownState, `${table}.${c.name}: ${c.type}`);
    return c.name;
  });
  const groupBy = keys.map((k) => k.name);
  if (shardKey !== undefined) {
    select.push(`${shardKey} AS shard_key`);
    groupBy.push('shard_key');
  }
  return `SELECT ${select.join(', ')} FROM fact_user_activity WHERE ${where} GROUP BY ${groupBy.join(', ')}`;
}

export interface RebuildOptions {
  readonly client: ClickHouseClient;
  readonly from: string;
  readonly to: string;
  readonly logger?: Logger;
  /** The cluster the tables live on (clickhouse/CLUSTER.md); absent: one node. */
  readonly cluster?: ClusterTarget;
}

export async function rebuildRollups(o: RebuildOptions): Promise<{ months: number[] }> {
  const { client } = o;
  const log = o.logger?.child({ component: 'rebuild' });
  const months = monthsBetween(o.from, o.to);
  const facts = systemRowsOf('parts', 'fact_user_activity', o.cluster);
  const [oldest] = await rows<{ p: number | null }>(
    client,
    `SELECT toUInt32OrZero(min(partition)) AS p FROM ${facts.from}
     WHERE ${facts.where} AND active`,
  );
  const oldestFacts = Number(oldest?.p ?? 0);
  const gone = months.filter((m) => oldestFacts === 0 || m < oldestFacts);
  if (gone.length > 0) {
    throw new PipelineError(
      DATAMODEL_CODES.rebuildFactsGone,
      `no facts for months ${gone.join(', ')} (oldest kept: ${oldestFacts || 'none'}); rebuilding would erase their rollups`,
    );
  }
  if (o.cluster) await rebuildOnCluster(client, months, o.cluster, log);
  else await rebuildOnNode(client, months, log);
  return { months };
}

const since = (start: string | undefined): string => `ingested_at >= toDateTime(${Number(start)}, 'UTC')`;

async function rebuildOnNode(client: ClickHouseClient, months: number[], log?: Logger): Promise<void> {
  for (const month of months) {
    const [start] = await rows<{ t: string }>(client, 'SELECT toUInt32(now()) - 1 AS t');
    const inMonth = `toYYYYMM(activity_timestamp) = ${month}`;
    for (const table of HOURLY_ROLLUPS) {
      const staging = `${table}_rebuild`;
      await client.command({ query: `DROP TABLE IF EXISTS ${staging}` });
      await client.command({ query: `CREATE TABLE ${staging} AS ${table}` });
      await client.command({
        query: `INSERT INTO ${staging} ${await selectFromFacts(client, table, inMonth)}`,
      });
      await client.command({ query: `ALTER TABLE ${table} REPLACE PARTITION ${month} FROM ${staging}` });
      await client.command({
        query: `INSERT INTO ${table} ${await selectFromFacts(client, table, `${inMonth} AND ${since(start?.t)}`)}`,
      });
      await client.command({ query: `DROP TABLE ${staging}` });
    }
    await client.command({
      query: `INSERT INTO ${FIRST_SEEN} ${await selectFromFacts(client, FIRST_SEEN, inMonth)}`,
    });
    log?.info({ month }, 'rollups rebuilt');
  }
}

async function rebuildOnCluster(
  client: ClickHouseClient,
  months: number[],
  t: ClusterTarget,
  log?: Logger,
): Promise<void> {
  const [weight] = await rows<{ w: string }>(client, shardWeightQuery(t));
  const total = Number(weight?.w ?? 0);
  if (!(total > 0)) {
    throw new PipelineError(
      DATAMODEL_CODES.clusterBadName,
      `cluster ${t.cluster} has no shards in this node's system.clusters (remote_servers)`,
    );
  }
  const shardKey = `user_key % ${total}`;
  const routes = await Promise.all(
    HOURLY_ROLLUPS.map(async (table) => ({
      table,
      ...rebuildRoute(table, await columnsOf(client, table), t),
    })),
  );
  // Replicated tables drop an inserted block equal to a recent one, also where a view writes it
  // (seen on 18.16). A rebuilt block may equal one sent before (the same month rebuilt twice); 18.16
  // forgot the blocks of a dropped partition when tried here, but no version promises it. A repeated
  // state changes nothing, so deduplication is off for these inserts.
  const send = { insert_deduplicate: 0, insert_distributed_sync: 1 } as const;
  try {
    for (const route of routes) for (const query of route.setup) await client.command({ query });
    for (const month of months) {
      const [start] = await rows<{ t: string }>(client, 'SELECT toUInt32(now()) - 1 AS t');
      const inMonth = `toYYYYMM(activity_timestamp) = ${month}`;
      for (const { table, insertInto } of routes) {
        await client.command({ query: dropPartitionStatement(table, month, t) });
        for (const where of [inMonth, `${inMonth} AND ${since(start?.t)}`]) {
          await client.command({
            query: `INSERT INTO ${insertInto} ${await selectFromFacts(client, table, where, shardKey)}`,
            clickhouse_settings: send,
          });
        }
      }
      await client.command({
        query: `INSERT INTO ${FIRST_SEEN} ${await selectFromFacts(client, FIRST_SEEN, inMonth)}`,
        clickhouse_settings: send,
      });
      log?.info({ month }, 'rollups rebuilt');
    }
  } finally {
    for (const route of routes) for (const query of route.teardown) await client.command({ query });
  }
}
