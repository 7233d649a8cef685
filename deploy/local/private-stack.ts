/**
 * A private Kafka + ClickHouse for fault tests (stop the broker, stop the database) and for the
 * benches: its own data folder and free ports, so stopping it disturbs no other test file or stack
 * running beside it. Kafka is one broker, or with `kafkaNodes: 3` the local 3-node cluster
 * (./stack.ts), whose nodes a test can kill -9 one by one.
 */

import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  clickhouseDown,
  clickhouseUp,
  type Endpoints,
  endpoints,
  type KafkaNode,
  kafkaDown,
  kafkaNodePid,
  kafkaUp,
  type StackOptions,
  stackOptions,
  status,
} from './stack.ts';

const ROOT = new URL('../../', import.meta.url).pathname;

/** A name no other run uses (data folders here; databases, topics and groups in the tests). */
export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`.replace(
    /[^A-Za-z0-9_]/g,
    '_',
  );
}

/** A port the kernel just handed out and released: free now, on loopback. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface PrivateStack extends Endpoints {
  readonly options: StackOptions;
  /** Starts every Kafka node not running (all of them, or the ones killed) and waits for all. */
  readonly startKafka: () => Promise<void>;
  /** kill -9 of one Kafka node (its broker and its controller); resolves when it is gone. */
  readonly killKafkaNode: (id: number) => Promise<void>;
  readonly stopKafka: () => Promise<void>;
  readonly startClickhouse: () => Promise<void>;
  readonly stopClickhouse: () => Promise<void>;
  /**
   * SIGSTOP: the process keeps its sockets open but answers nothing, the way a hung broker or a
   * database stuck in GC looks to clients (no connection refused, only timeouts). `resume` sends
   * SIGCONT.
   */
  readonly pause: (service: 'kafka' | 'clickhouse') => Promise<void>;
  readonly resume: (service: 'kafka' | 'clickhouse') => Promise<void>;
  /** Stops both and deletes the data folder. */
  readonly destroy: () => Promise<void>;
}

export async function privateStack(
  name: string,
  log: (line: string) => void = () => {},
  kafka: { readonly nodes?: number } = {},
): Promise<PrivateStack> {
  const dataDir = join(ROOT, '.data', 'private', uniqueName(name));
  const env = {
    LOCAL_DATA_DIR: dataDir,
    KAFKA_PORT: String(await freePort()),
    KAFKA_CONTROLLER_PORT: String(await freePort()),
    CLICKHOUSE_HTTP_PORT: String(await freePort()),
    CLICKHOUSE_TCP_PORT: String(await freePort()),
  };
  const single = stackOptions(env, log);
  // A cluster's nodes each take two free ports, not the consecutive pairs the CLI derives.
  const nodes: KafkaNode[] = [];
  for (let id = 1; id <= (kafka.nodes ?? 1); id++)
    nodes.push(
      id === 1
        ? { id, port: single.kafkaPort, controllerPort: single.kafkaControllerPort }
        : { id, port: await freePort(), controllerPort: await freePort() },
    );
  const o: StackOptions = { ...single, kafkaNodes: nodes };
  // Remembered at pause: status() pings the service, which a stopped ClickHouse never answers.
  const paused = new Map<'kafka' | 'clickhouse', number>();
  const pause = async (service: 'kafka' | 'clickhouse'): Promise<void> => {
    const pid = (await status(o)).find((s) => s.name === service)?.pid;
    if (pid === undefined) throw new Error(`${service} of the private stack is not running`);
    process.kill(pid, 'SIGSTOP');
    paused.set(service, pid);
  };
  const resume = async (service: 'kafka' | 'clickhouse'): Promise<void> => {
    const pid = paused.get(service);
    if (pid === undefined) throw new Error(`${service} was not paused`);
    process.kill(pid, 'SIGCONT');
    paused.delete(service);
  };
  return {
    ...endpoints(o),
    options: o,
    startKafka: () => kafkaUp(o),
    killKafkaNode: async (id) => {
      const pid = kafkaNodePid(o, id);
      if (pid === undefined) throw new Error(`kafka node ${id} of the private stack is not running`);
      process.kill(pid, 'SIGKILL');
      while (kafkaNodePid(o, id) !== undefined) await sleep(50);
    },
    stopKafka: () => kafkaDown(o),
    startClickhouse: () => clickhouseUp(o),
    stopClickhouse: () => clickhouseDown(o),
    pause,
    resume,
    destroy: async () => {
      // A stopped process would ignore the SIGTERM of kafkaDown/clickhouseDown until continued.
      for (const service of [...paused.keys()]) await resume(service);
      await kafkaDown(o);
      await clickhouseDown(o);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
