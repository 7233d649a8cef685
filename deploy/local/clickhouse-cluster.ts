/**
 * A local ClickHouse cluster: one ZooKeeper (deploy/local/zookeeper.ts) and several ClickHouse
 * server processes on 127.0.0.1, each a member of the cluster `name` with its {shard} and
 * {replica} macros, started by stack.ts's node runner with the cluster part of the config added.
 * What the cluster mode of the migrations (services/lib/datamodel/cluster.ts) needs from a cluster,
 * and nothing else: remote_servers with internal_replication (a Distributed insert writes one
 * replica of a shard and ReplicatedMergeTree copies it to the others), macros, zookeeper,
 * distributed_ddl (the ON CLUSTER queue) and the interserver port replicas fetch parts through. See
 * clickhouse/CLUSTER.md.
 */
import { join } from 'node:path';
import { type ClickhouseNode, clickhouseNodeDown, clickhouseNodeUp } from './stack.ts';
import { zookeeperDown, zookeeperUp } from './zookeeper.ts';

export interface ClusterMember {
  readonly shard: number;
  readonly replica: string;
  readonly httpPort: number;
  readonly tcpPort: number;
  readonly interserverPort: number;
}

export interface ClusterOptions {
  /** The cluster's name in remote_servers, what `migrate --cluster NAME` names. */
  readonly name: string;
  readonly dataDir: string;
  readonly zookeeperPort: number;
  readonly members: readonly ClusterMember[];
  readonly log: (line: string) => void;
}

/**
 * Settings of every member's profiles. insert_distributed_sync: an insert into a Distributed table
 * returns once every shard has written its rows (the default queues them on the receiving node and
 * sends them later), so the consumer's "ClickHouse acknowledged, commit the offset" still means
 * the rows are stored where they are read.
 */
export const CLUSTER_PROFILE_SETTINGS = { insert_distributed_sync: 1 } as const;

function remoteServers(o: ClusterOptions): string {
  const shards = [...new Set(o.members.map((m) => m.shard))].sort((a, b) => a - b);
  const xml = shards.map((shard) => {
    const replicas = o.members
      .filter((m) => m.shard === shard)
      .map((m) => `<replica><host>127.0.0.1</host><port>${m.tcpPort}</port></replica>`)
      .join('');
    return `      <shard><internal_replication>true</internal_replication>${replicas}</shard>`;
  });
  return `  <remote_servers>\n    <${o.name}>\n${xml.join('\n')}\n    </${o.name}>\n  </remote_servers>\n`;
}

export function memberNode(o: ClusterOptions, m: ClusterMember): ClickhouseNode {
  const name = `clickhouse-s${m.shard}-${m.replica}`;
  return {
    name,
    dir: join(o.dataDir, name),
    httpPort: m.httpPort,
    tcpPort: m.tcpPort,
    profileSettings: CLUSTER_PROFILE_SETTINGS,
    extraConfig: `${remoteServers(o)}  <macros><shard>${m.shard}</shard><replica>${m.replica}</replica></macros>
  <zookeeper><node><host>127.0.0.1</host><port>${o.zookeeperPort}</port></node></zookeeper>
  <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <interserver_http_port>${m.interserverPort}</interserver_http_port>
`,
  };
}

const zookeeper = (o: ClusterOptions) => ({
  dir: join(o.dataDir, 'zookeeper'),
  port: o.zookeeperPort,
  log: o.log,
});

export async function clusterUp(o: ClusterOptions): Promise<void> {
  await zookeeperUp(zookeeper(o));
  await Promise.all(o.members.map((m) => clickhouseNodeUp(memberNode(o, m), o.log)));
}

export async function clusterDown(o: ClusterOptions): Promise<void> {
  await Promise.all(o.members.map((m) => clickhouseNodeDown(memberNode(o, m), o.log)));
  await zookeeperDown(zookeeper(o));
}
