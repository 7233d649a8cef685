/**
 * A private ClickHouse cluster for a test file (deploy/local/clickhouse-cluster.ts): ZooKeeper and
 * three ClickHouse processes on free ports, two shards, the first with two replicas, its own data
 * folder; `destroy` stops it and deletes the folder.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  type ClusterMember,
  type ClusterOptions,
  clusterDown,
  clusterUp,
} from '../../deploy/local/clickhouse-cluster.ts';
import { freePort } from '../../deploy/local/private-stack.ts';
import { type ClickHouseClient, createClickHouse } from '../../services/lib/clickhouse.ts';
import { uniqueName } from './services.ts';

const ROOT = new URL('../../', import.meta.url).pathname;

export const TEST_CLUSTER = 'pipeline';

export interface PrivateCluster {
  readonly options: ClusterOptions;
  /** HTTP URL of each member, in `options.members` order. */
  readonly urls: readonly string[];
  /** Waits until every replica of every Replicated table of `database` holds what any has. */
  readonly syncReplicas: (database: string) => Promise<void>;
  readonly destroy: () => Promise<void>;
}

async function member(shard: number, replica: string): Promise<ClusterMember> {
  return {
    shard,
    replica,
    httpPort: await freePort(),
    tcpPort: await freePort(),
    interserverPort: await freePort(),
  };
}

export async function privateCluster(
  name: string,
  log: (line: string) => void = () => {},
): Promise<PrivateCluster> {
  const dataDir = join(ROOT, '.data', 'private', uniqueName(name));
  const options: ClusterOptions = {
    name: TEST_CLUSTER,
    dataDir,
    zookeeperPort: await freePort(),
    members: [await member(1, 'r1'), await member(1, 'r2'), await member(2, 'r1')],
    log,
  };
  await clusterUp(options);
  const urls = options.members.map((m) => `http://127.0.0.1:${m.httpPort}`);
  const withClient = async <T>(url: string, f: (c: ClickHouseClient) => Promise<T>): Promise<T> => {
    const c = createClickHouse({ url, requestTimeoutMs: 300_000 });
    try {
      return await f(c);
    } finally {
      await c.close();
    }
  };
  return {
    options,
    urls,
    syncReplicas: async (database) => {
      for (const url of urls) {
        await withClient(url, async (c) => {
          const rs = await c.query({
            query: `SELECT table FROM system.replicas WHERE database = '${database}'`,
            format: 'JSONEachRow',
          });
          for (const { table } of await rs.json<{ table: string }>()) {
            await c.command({ query: `SYSTEM SYNC REPLICA ${database}.${table}` });
          }
        });
      }
    },
    destroy: async () => {
      await clusterDown(options);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
