/**
 * The real collector (`node services/collector/main.ts`) as a child process, configured only
 * through its environment (services/collector/config.ts), so SIGKILL is a real kill -9 and a
 * restart is a new process. It listens on a port fixed at creation: a restarted collector answers
 * at the same URL, as a restarted pod behind a load balancer does for an SDK.
 */

import { freePort } from '../../deploy/local/private-stack.ts';
import { WRITE_KEY } from '../integration/collector-harness.ts';
import { type ServiceProcess, spawnService } from './consumer-process.ts';

export interface CollectorProcesses {
  readonly url: string;
  /** Starts a collector (there is at most one at a time); resolves when it logged "collector ready". */
  readonly start: () => Promise<ServiceProcess>;
  /** The running one, if any. */
  readonly current: () => ServiceProcess | undefined;
  /** kill -9 of the running one; resolves when it is gone. */
  readonly kill: () => Promise<void>;
  readonly close: () => Promise<void>;
}

export async function collectorProcesses(o: {
  kafkaBrokers: string;
  topic: string;
  partitions: number;
  extra?: Record<string, string>;
}): Promise<CollectorProcesses> {
  const port = await freePort();
  let current: ServiceProcess | undefined;
  const env = {
    PORT: String(port),
    HOST: '127.0.0.1',
    WRITE_KEYS: `${WRITE_KEY}:faults`,
    KAFKA_BROKERS: o.kafkaBrokers,
    KAFKA_TOPIC: o.topic,
    KAFKA_TOPIC_PARTITIONS: String(o.partitions),
    // A geo database costs its opening time and memory per start; location is not what these tests check.
    GEOIP_ENABLED: 'false',
    // The load here is a few senders on loopback, not abuse.
    RATE_LIMIT_MAX: '100000',
    RATE_LIMIT_PER_ADDRESS_MAX: '100000',
    LOG_LEVEL: 'info',
    KAFKAJS_NO_PARTITIONER_WARNING: '1',
    ...o.extra,
  };
  const kill = async (): Promise<void> => {
    const c = current;
    current = undefined;
    if (!c || c.child.exitCode !== null || c.child.signalCode !== null) return;
    c.child.kill('SIGKILL');
    await c.exited;
  };
  return {
    url: `http://127.0.0.1:${port}`,
    start: async () => {
      if (current) throw new Error('a collector is already running');
      current = await spawnService('services/collector/main.ts', env, '"collector ready"');
      return current;
    },
    current: () => current,
    kill,
    close: kill,
  };
}
