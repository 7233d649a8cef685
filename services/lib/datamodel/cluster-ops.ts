/**
 * The statements of the operations on the data (retention, the rollup rebuild, deleting a user) in
 * their single-node form or, given a ClusterTarget, their cluster form (clickhouse/CLUSTER.md),
 * chosen from cluster.ts's PLACEMENT: no second list of tables. Pure; the callers run them.
 *
 * On a cluster the seed's name of a sharded table is a Distributed table, which takes neither
 * partition drops nor mutations: those go to its shard-local table, ON CLUSTER, and the DDL worker
 * runs an ALTER of a Replicated table on one replica per shard (measured on 18.16 with
 * test/harness/private-cluster.ts: one mutation per shard in ZooKeeper; current ClickHouse does the
 * same, DDLWorker::taskShouldBeExecutedOnLeader), the other replicas of the shard follow through
 * replication. Reads of what exists (parts, replicas) span the cluster through cluster(), which asks
 * one replica per shard.
 */
import { quoteString } from '../sql.ts';
import { type ClusterTarget, localName, placement } from './cluster.ts';

/** Where the operations run: a cluster, or one node (undefined). */
export type Topology = ClusterTarget | undefined;

/**
 * `table` as a statement that each shard runs on its own data names it (an ON CLUSTER mutation's
 * subquery, a per-shard SELECT): the shard-local table of a sharded table, qualified (18.16 runs an
 * ON CLUSTER query's copies in `default`); on one node the name as it is.
 */
export function shardTable(table: string, t: Topology): string {
  return t ? `${t.database}.${nodeTable(table)}` : table;
}

/** The table of a node that holds `table`'s rows there. */
const nodeTable = (table: string): string => (placement(table).kind === 'sharded' ? localName(table) : table);

function alterTable(table: string, t: Topology): string {
  if (!t) return `ALTER TABLE ${table}`;
  if (placement(table).kind === 'sharded') {
    return `ALTER TABLE ${t.database}.${localName(table)} ON CLUSTER ${t.cluster}`;
  }
  // A table replicated everywhere is one replica set spanning every node: the ALTER replicates by
  // itself from the node that runs it. ON CLUSTER would run it once per shard of the cluster, on
  // the same replica set (two mutations in its ZooKeeper log on the two-shard test cluster, 18.16):
  // the same work twice.
  return `ALTER TABLE ${t.database}.${table}`;
}

export const dropPartitionStatement = (table: string, partition: number | string, t: Topology): string =>
  `${alterTable(table, t)} DROP PARTITION ${partition}`;

export const deleteStatement = (table: string, where: string, t: Topology): string =>
  `${alterTable(table, t)} DELETE WHERE ${where}`;

/**
 * FROM and WHERE of `table`'s rows in a system table (parts, mutations, replicas): on a cluster,
 * those of one replica of every shard.
 */
export function systemRowsOf(
  system: 'parts' | 'mutations' | 'replicas',
  table: string,
  t: Topology,
): { readonly from: string; readonly where: string } {
  if (!t) return { from: `system.${system}`, where: `database = currentDatabase() AND table = '${table}'` };
  // The remote nodes run it in their own default database: the database is spelled out.
  return {
    from: `cluster('${t.cluster}', system, ${system})`,
    where: `database = ${quoteString(t.database)} AND table = ${quoteString(nodeTable(table))}`,
  };
}

/**
 * The total weight of the cluster's shards: a Distributed table sends a row with sharding key k to
 * the shard owning slot k % total weight (shards own consecutive slots, as many as their weight).
 */
export const shardWeightQuery = (t: ClusterTarget): string =>
  `SELECT toString(sum(w)) AS w FROM (SELECT shard_num, any(shard_weight) AS w FROM system.clusters
     WHERE cluster = ${quoteString(t.cluster)} GROUP BY shard_num)`;

/**
 * A sharded rollup without a sharding key (an hourly rollup) is filled only by its shard-local
 * view, from the shard's own users. The rebuild writes it the same way through a route built for
 * the run: a Distributed table `<X>_rebuild` over a Null table with the rollup's columns plus
 * `shard_key`, sharded by `shard_key`, and a view from that Null table into `<X>_local` on every
 * node. The rebuild's SELECT groups by `user_key % total weight AS shard_key`: the ingest tables
 * shard by cityHash64(actor) = user_key, so each group's states reach the shard their users' facts
 * (and live states) are on.
 */
export function rebuildRoute(
  table: string,
  columns: readonly { readonly name: string; readonly type: string }[],
  t: ClusterTarget,
): { readonly insertInto: string; readonly setup: string[]; readonly teardown: string[] } {
  const { cluster, database: db } = t;
  const on = `ON CLUSTER ${cluster}`;
  const route = `${table}_rebuild`;
  const input = localName(route);
  const view = `${route}_mv`;
  const names = columns.map((c) => c.name).join(', ');
  const teardown = [route, view, input].map((n) => `DROP TABLE IF EXISTS ${db}.${n} ${on}`);
  return {
    insertInto: `${db}.${route}`,
    // A route left by an interrupted run is dropped first.
    setup: [
      ...teardown,
      `CREATE TABLE ${db}.${input} ${on} (${columns.map((c) => `${c.name} ${c.type}`).join(', ')}, shard_key UInt64) ENGINE = Null`,
      `CREATE MATERIALIZED VIEW ${db}.${view} ${on} TO ${db}.${localName(table)} AS SELECT ${names} FROM ${db}.${input}`,
      `CREATE TABLE ${db}.${route} ${on} AS ${db}.${input} ENGINE = Distributed(${cluster}, ${db}, ${input}, shard_key)`,
    ],
    teardown,
  };
}

/** The ZooKeeper path of each shard's replica set of `table` (one path for a table everywhere). */
export function replicaPathsQuery(table: string, t: ClusterTarget): string {
  const replicas = systemRowsOf('replicas', table, t);
  return `SELECT DISTINCT zookeeper_path AS path FROM ${replicas.from} WHERE ${replicas.where}`;
}

/** Children of a ZooKeeper node with their values (system.zookeeper needs `path =` a constant). */
export const zookeeperChildrenQuery = (path: string, name?: string): string =>
  `SELECT name, value FROM system.zookeeper WHERE path = ${quoteString(path)}${name === undefined ? '' : ` AND name = ${quoteString(name)}`}`;
