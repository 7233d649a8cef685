/**
 * Delete a user: the query service's admin route, or `npm run delete-user -- <user_id> [--by <who>]`
 * (clickhouse/delete-user.ts). Removes every row that names the user or an anonymous id linked to
 * it from the facts, their details, dim_users, the identity map, identify_log and first-seen, then rebuilds the
 * hourly rollups of the months the user was active in from the remaining facts (a uniq sketch
 * cannot forget one member), so the user counts in no DAU / WAU / MAU while everyone else's numbers
 * stay as they were. The deletion is recorded in user_deletions with the user's key
 * (cityHash64(user id), what the rollups hash) instead of the id.
 *
 * Mutations (ALTER TABLE ... DELETE) are asynchronous on every ClickHouse version; 18.16 has no
 * mutations_sync, so each is waited for in system.mutations. The details go first: their WHERE
 * reads the facts. Events still in Kafka (retention) or in the dead-letter topic are not touched:
 * a redrive of such a letter would write the user again (docs/SECURITY.md).
 *
 * On a cluster (`cluster`, clickhouse/CLUSTER.md) the mutations run ON CLUSTER on the shard-local
 * tables (services/lib/datamodel/cluster-ops.ts), the details' subquery reading the shard's own
 * facts (details sit on their event's shard), and each is waited for on every replica: a replica
 * evaluates a mutation's WHERE against its own copy of the facts when it runs it, so the facts may
 * go only once every replica has deleted the details. The reads go through the Distributed tables;
 * the inserts are unchanged (into tables replicated everywhere, or identify_log's Distributed table,
 * which shards by user id).
 */

import type { ClickHouseClient } from '../lib/clickhouse.ts';
import type { ClusterTarget } from '../lib/datamodel/cluster.ts';
import {
  deleteStatement,
  replicaPathsQuery,
  shardTable,
  systemRowsOf,
  type Topology,
  zookeeperChildrenQuery,
} from '../lib/datamodel/cluster-ops.ts';
import { rebuildRollups } from '../lib/datamodel/rebuild.ts';
import { QUERY_CODES } from '../lib/error-codes.ts';
import { PipelineError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { quoteString } from '../lib/sql.ts';

export interface DeletionReport {
  /** cityHash64 of the user id, as a decimal string (UInt64). */
  readonly userKey: string;
  /** Anonymous ids linked to the user whose rows went too. */
  readonly linkedIds: number;
  /** Rows removed per table (counted before the delete). */
  readonly rows: Readonly<Record<string, number>>;
  /** Months (YYYYMM) whose rollups were rebuilt. */
  readonly months: readonly number[];
}

async function rows<T>(client: ClickHouseClient, query: string): Promise<T[]> {
  const rs = await client.query({ query, format: 'JSONEachRow' });
  return rs.json<T>();
}

/**
 * The WHERE of each table's rows for the user and the anonymous ids linked to it. `facts`: how the
 * details' condition reaches the facts, `IN (SELECT ... FROM <table>`; on a cluster GLOBAL IN over
 * the Distributed table for a read, IN over the shard-local table for a mutation.
 */
export function deletionWhere(
  userId: string,
  linked: readonly string[],
  facts: { readonly in: 'IN' | 'GLOBAL IN'; readonly table: string } = {
    in: 'IN',
    table: 'fact_user_activity',
  },
): Record<string, string> {
  const user = quoteString(userId);
  const anon = linked.map(quoteString);
  // Actor ids: the user id, and `anon:<id>` for events sent before the link was known.
  const actors = [user, ...linked.map((a) => quoteString(`anon:${a}`))];
  const anonIn = anon.length > 0 ? ` OR anonymous_id IN (${anon.join(', ')})` : '';
  const own = `user_id = ${user} OR actor_id IN (${actors.join(', ')})${anonIn}`;
  const keys = `user_key IN (${actors.map((a) => `cityHash64(${a})`).join(', ')})`;
  return {
    fact_activity_details: `activity_id ${facts.in} (SELECT cityHash64(event_id) FROM ${facts.table} WHERE ${own})`,
    fact_user_activity: own,
    dim_users: keys,
    rollup_user_first_seen: keys,
    identity_map: `user_id = ${user} OR anonymous_id IN (${[user, ...anon].join(', ')})`,
    identify_log: `user_id = ${user} OR linked_id IN (${[user, ...anon].join(', ')})`,
  };
}

async function waitForMutations(
  client: ClickHouseClient,
  table: string,
  t: Topology,
  pollMs = 200,
): Promise<void> {
  const mutations = systemRowsOf('mutations', table, t);
  const open = `FROM ${mutations.from}
       WHERE ${mutations.where} AND is_done = 0`;
  for (;;) {
    const [state] = await rows<{ n: string; reason: string }>(
      client,
      `SELECT count() AS n, any(latest_fail_reason) AS reason ${open}`,
    ).catch(async () =>
      // 18.16's system.mutations has no latest_fail_reason column.
      rows<{ n: string; reason: string }>(client, `SELECT count() AS n, '' AS reason ${open}`),
    );
    if (Number(state?.n ?? 0) === 0 && (!t || (await doneOnEveryReplica(client, table, t)))) return;
    if (state?.reason)
      throw new PipelineError(QUERY_CODES.deleteUserMutationFailed, `${table}: ${state.reason}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/**
 * Whether every replica of every shard has finished the newest mutation of `table`. system.mutations
 * shows one replica's progress (cluster() asks one per shard; 18.16 has no mutations_sync): each
 * replica records the last mutation it finished in ZooKeeper as `mutation_pointer`, what current
 * ClickHouse's mutations_sync = 2 waits for.
 */
async function doneOnEveryReplica(
  client: ClickHouseClient,
  table: string,
  t: ClusterTarget,
): Promise<boolean> {
  for (const { path } of await rows<{ path: string }>(client, replicaPathsQuery(table, t))) {
    const ids = await rows<{ name: string }>(client, zookeeperChildrenQuery(`${path}/mutations`));
    const newest = ids
      .map((m) => m.name)
      .sort()
      .at(-1);
    if (newest === undefined) continue;
    for (const { name: replica } of await rows<{ name: string }>(
      client,
      zookeeperChildrenQuery(`${path}/replicas`),
    )) {
      const [pointer] = await rows<{ value: string }>(
        client,
        zookeeperChildrenQuery(`${path}/replicas/${replica}`, 'mutation_pointer'),
      );
      if ((pointer?.value ?? '') < newest) return false;
    }
  }
  return true;
}

export async function deleteUser(o: {
  readonly client: ClickHouseClient;
  readonly userId: string;
  readonly requestedBy: string;
  readonly logger?: Logger;
  /** The cluster the tables live on (clickhouse/CLUSTER.md); absent: one node. */
  readonly cluster?: ClusterTarget;
}): Promise<DeletionReport> {
  const { client, userId, cluster } = o;
  if (userId === '') throw new PipelineError(QUERY_CODES.deleteUserBadId, 'a user id is required');
  const log = o.logger?.child({ component: 'delete-user' });
  const linked = (
    await rows<{ anonymous_id: string }>(
      client,
      `SELECT DISTINCT anonymous_id FROM identity_map WHERE user_id = ${quoteString(userId)}`,
    )
  ).map((r) => r.anonymous_id);
  const where = cluster
    ? deletionWhere(userId, linked, { in: 'GLOBAL IN', table: 'fact_user_activity' })
    : deletionWhere(userId, linked);
  // What each shard deletes from its own tables (the same as `where` on one node).
  const own = deletionWhere(userId, linked, { in: 'IN', table: shardTable('fact_user_activity', cluster) });
  const counts: Record<string, number> = {};
  for (const [table, cond] of Object.entries(where)) {
    const [c] = await rows<{ n: string }>(client, `SELECT count() AS n FROM ${table} WHERE ${cond}`);
    counts[table] = Number(c?.n ?? 0);
  }
  const [span] = await rows<{ lo: string; hi: string; n: string }>(
    client,
    `SELECT toString(toDate(min(activity_timestamp))) AS lo, toString(toDate(max(activity_timestamp))) AS hi,
       count() AS n FROM fact_user_activity WHERE ${where.fact_user_activity}`,
  );
  // The hours the user was active in: their finished days are computed again once the facts are
  // gone (services/lib/finished-days.ts), like days a late event touched.
  const hours = await rows<{ h: string }>(
    client,
    `SELECT DISTINCT toUInt32(toStartOfHour(activity_timestamp)) AS h FROM fact_user_activity WHERE ${where.fact_user_activity}`,
  );
  // Details read the facts: deleted (and waited for) before the facts are.
  for (const [table, cond] of Object.entries(own)) {
    if ((counts[table] ?? 0) === 0) continue;
    await client.command({ query: deleteStatement(table, cond, cluster) });
    await waitForMutations(client, table, cluster);
  }
  const months =
    Number(span?.n ?? 0) > 0 && span
      ? (
          await rebuildRollups({
            client,
            from: span.lo,
            to: span.hi,
            ...(log ? { logger: log } : {}),
            ...(cluster ? { cluster } : {}),
          })
        ).months
      : [];
  if (hours.length > 0) {
    // Stamped after every mutation finished, so the refresher's recomputation cannot see the rows.
    await client.command({
      query: `INSERT INTO agg_dirty_hours (hour, marked_at)
        SELECT toDateTime(arrayJoin([${hours.map((h) => Number(h.h)).join(', ')}]), 'UTC'), now()`,
    });
  }
  const [key] = await rows<{ k: string }>(client, `SELECT toString(cityHash64(${quoteString(userId)})) AS k`);
  const report: DeletionReport = { userKey: key?.k ?? '', linkedIds: linked.length, rows: counts, months };
  await client.command({
    query: `INSERT INTO user_deletions (deleted_at, requested_by, user_key, linked_ids, rows, months)
      SELECT now(), ${quoteString(o.requestedBy)}, cityHash64(${quoteString(userId)}), ${linked.length},
        ${quoteString(JSON.stringify(counts))}, ${quoteString(months.join(','))}`,
  });
  // Consumers cache profiles and links in memory: a `delete` row in identify_log makes each drop
  // what it holds for these ids at its next refresh (CONTEXT_REFRESH_INTERVAL_MS), so a later event
  // of the same id is not filled from the deleted profile. The row names the ids until retention
  // drops its month, the only place they remain.
  await client.command({
    query: `INSERT INTO identify_log (written_at, kind, user_id, linked_id)
      SELECT now(), 'delete', ${quoteString(userId)}, arrayJoin(${`[${['', ...linked].map(quoteString).join(', ')}]`})`,
  });
  log?.info({ userKey: report.userKey, rows: counts, months }, 'user deleted');
  return report;
}
