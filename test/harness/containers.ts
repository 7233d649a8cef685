/**
 * testcontainers path of the harness: used when a Docker engine answers. Images are pinned to the
 * same versions as docker-compose.yml.
 */
import { GenericContainer, getContainerRuntimeClient, type StartedTestContainer, Wait } from 'testcontainers';

export const KAFKA_IMAGE = 'apache/kafka:4.1.1';
export const CLICKHOUSE_IMAGE = 'clickhouse/clickhouse-server:25.8';

export interface Containers {
  readonly kafkaBrokers: string;
  readonly clickhouseUrl: string;
  readonly stop: () => Promise<void>;
}

async function dockerAvailable(): Promise<boolean> {
  try {
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

export async function startContainers(log: (line: string) => void): Promise<Containers | undefined> {
  if (!(await dockerAvailable())) {
    log('no Docker engine: using the local stack');
    return undefined;
  }
  log(`starting ${KAFKA_IMAGE} and ${CLICKHOUSE_IMAGE}`);
  // The broker must advertise the host-mapped port, which is known only after start; a fixed
  // host port picked from the ephemeral range avoids the chicken-and-egg.
  const hostPort = 20000 + Math.floor(Math.random() * 20000);
  const kafka: StartedTestContainer = await new GenericContainer(KAFKA_IMAGE)
    .withExposedPorts({ container: 9092, host: hostPort })
    .withEnvironment({
      KAFKA_NODE_ID: '1',
      KAFKA_PROCESS_ROLES: 'broker,controller',
      KAFKA_LISTENERS: 'PLAINTEXT://:9092,CONTROLLER://:9093',
      KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://127.0.0.1:${hostPort}`,
      KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
      KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9093',
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'false',
    })
    .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
    .start();
  const clickhouse: StartedTestContainer = await new GenericContainer(CLICKHOUSE_IMAGE)
    .withExposedPorts(8123)
    .withEnvironment({ CLICKHOUSE_SKIP_USER_SETUP: '1' })
    .withWaitStrategy(Wait.forHttp('/ping', 8123))
    .start();
  return {
    kafkaBrokers: `127.0.0.1:${hostPort}`,
    clickhouseUrl: `http://${clickhouse.getHost()}:${clickhouse.getMappedPort(8123)}`,
    stop: async () => {
      await kafka.stop();
      await clickhouse.stop();
    },
  };
}
