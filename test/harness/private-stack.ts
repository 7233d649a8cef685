/**
 * A private Kafka + ClickHouse for fault tests (stop the broker, stop the database): its own data
 * folder and free ports, so stopping it disturbs no other test file running beside it.
 */

import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import {
  clickhouseDown,
  clickhouseUp,
  type Endpoints,
  endpoints,
  kafkaDown,
  kafkaUp,
  type StackOptions,
  stackOptions,
} from '../../deploy/local/stack.ts';
import { uniqueName } from './services.ts';

const ROOT = new URL('../../', import.meta.url).pathname;

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
  readonly startKafka: () => Promise<void>;
  readonly stopKafka: () => Promise<void>;
  readonly startClickhouse: () => Promise<void>;
  readonly stopClickhouse: () => Promise<void>;
  /** Stops both and deletes the data folder. */
  readonly destroy: () => Promise<void>;
}

export async function privateStack(
  name: string,
  log: (line: string) => void = () => {},
): Promise<PrivateStack> {
  const dataDir = join(ROOT, '.data', 'private', uniqueName(name));
  const env = {
    LOCAL_DATA_DIR: dataDir,
    KAFKA_PORT: String(await freePort()),
    KAFKA_CONTROLLER_PORT: String(await freePort()),
    CLICKHOUSE_HTTP_PORT: String(await freePort()),
    CLICKHOUSE_TCP_PORT: String(await freePort()),
  };
  const o = stackOptions(env, log);
  return {
    ...endpoints(o),
    options: o,
    startKafka: () => kafkaUp(o),
    stopKafka: () => kafkaDown(o),
    startClickhouse: () => clickhouseUp(o),
    stopClickhouse: () => clickhouseDown(o),
    destroy: async () => {
      await kafkaDown(o);
      await clickhouseDown(o);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
