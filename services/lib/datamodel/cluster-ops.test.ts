import { describe, expect, it } from 'vitest';
import { DATAMODEL_CODES } from '../error-codes.ts';
import {
  deleteStatement,
  dropPartitionStatement,
  rebuildRoute,
  replicaPathsQuery,
  shardTable,
  systemRowsOf,
} from './cluster-ops.ts';

const t = { cluster: 'pipeline', database: 'analytics' };

describe('one node: the statements the operations ran before cluster mode', () => {
  it('alters the table by its name', () => {
    expect(dropPartitionStatement('fact_user_activity', 202401, undefined)).toBe(
      'ALTER TABLE fact_user_activity DROP PARTITION 202401',
    );
    expect(deleteStatement('dim_users', 'user_key = 1', undefined)).toBe(
      'ALTER TABLE dim_users DELETE WHERE user_key = 1',
    );
    expect(shardTable('fact_user_activity', undefined)).toBe('fact_user_activity');
  });

  it('reads the local system tables of the current database', () => {
    expect(systemRowsOf('parts', 'identify_log', undefined)).toEqual({
      from: 'system.parts',
      where: "database = currentDatabase() AND table = 'identify_log'",
    });
  });

  it('needs no placement (a table unknown to cluster.ts passes)', () => {
    expect(dropPartitionStatement('some_table', 1, undefined)).toBe(
      'ALTER TABLE some_table DROP PARTITION 1',
    );
  });
});

describe('cluster', () => {
  it('drops partitions and mutates a sharded table on its shard-local tables, ON CLUSTER', () => {
    expect(dropPartitionStatement('fact_user_activity', 202401, t)).toBe(
      'ALTER TABLE analytics.fact_user_activity_local ON CLUSTER pipeline DROP PARTITION 202401',
    );
    expect(deleteStatement('identity_map', "user_id = 'u'", t)).toBe(
      "ALTER TABLE analytics.identity_map_local ON CLUSTER pipeline DELETE WHERE user_id = 'u'",
    );
    expect(shardTable('fact_user_activity', t)).toBe('analytics.fact_user_activity_local');
  });

  it('alters a table replicated everywhere once, without ON CLUSTER (it replicates by itself)', () => {
    expect(dropPartitionStatement('agg_dirty_hours', 202401, t)).toBe(
      'ALTER TABLE analytics.agg_dirty_hours DROP PARTITION 202401',
    );
    expect(deleteStatement('user_deletions', 'user_key = 1', t)).toBe(
      'ALTER TABLE analytics.user_deletions DELETE WHERE user_key = 1',
    );
    expect(shardTable('dim_features', t)).toBe('analytics.dim_features');
  });

  it('refuses a table without a placement', () => {
    expect(() => dropPartitionStatement('some_table', 1, t)).toThrow(
      expect.objectContaining({ code: DATAMODEL_CODES.clusterUnplacedTable }),
    );
  });

  it('reads system tables on every shard, naming the database and the shard-local table', () => {
    expect(systemRowsOf('parts', 'fact_user_activity', t)).toEqual({
      from: "cluster('pipeline', system, parts)",
      where: "database = 'analytics' AND table = 'fact_user_activity_local'",
    });
    expect(replicaPathsQuery('agg_dirty_hours', t)).toBe(
      "SELECT DISTINCT zookeeper_path AS path FROM cluster('pipeline', system, replicas) WHERE database = 'analytics' AND table = 'agg_dirty_hours'",
    );
  });

  it("routes a rebuilt rollup's states by shard_key into the shard-local rollup", () => {
    const route = rebuildRoute(
      'rollup_users_hourly_total',
      [
        { name: 'hour', type: "DateTime('UTC')" },
        { name: 'users', type: 'AggregateFunction(uniq, UInt64)' },
      ],
      t,
    );
    const drops = [
      'DROP TABLE IF EXISTS analytics.rollup_users_hourly_total_rebuild ON CLUSTER pipeline',
      'DROP TABLE IF EXISTS analytics.rollup_users_hourly_total_rebuild_mv ON CLUSTER pipeline',
      'DROP TABLE IF EXISTS analytics.rollup_users_hourly_total_rebuild_local ON CLUSTER pipeline',
    ];
    expect(route.insertInto).toBe('analytics.rollup_users_hourly_total_rebuild');
    expect(route.teardown).toEqual(drops);
    expect(route.setup).toEqual([
      ...drops,
      "CREATE TABLE analytics.rollup_users_hourly_total_rebuild_local ON CLUSTER pipeline (hour DateTime('UTC'), users AggregateFunction(uniq, UInt64), shard_key UInt64) ENGINE = Null",
      'CREATE MATERIALIZED VIEW analytics.rollup_users_hourly_total_rebuild_mv ON CLUSTER pipeline TO analytics.rollup_users_hourly_total_local AS SELECT hour, users FROM analytics.rollup_users_hourly_total_rebuild_local',
      'CREATE TABLE analytics.rollup_users_hourly_total_rebuild ON CLUSTER pipeline AS analytics.rollup_users_hourly_total_rebuild_local ENGINE = Distributed(pipeline, analytics, rollup_users_hourly_total_rebuild_local, shard_key)',
    ]);
  });
});
