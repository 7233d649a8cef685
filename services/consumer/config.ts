/**
 * The consumer's configuration: one spec, read once in main.ts (or redrive.ts) from the
 * environment, every bad value reported at once. Defaults are for the local stack; nothing secret
 * has a default (the ClickHouse password defaults to empty, the local `default` user's).
 */
import { bool, type ConfigOf, identifier, int, list, oneOf, secret, str, url } from '../lib/config.ts';

export const consumerSpec = {
  KAFKA_BROKERS: list('Kafka bootstrap brokers, host:port, comma-separated', ['127.0.0.1:9092']),
  KAFKA_TOPIC: str('activity topic (both record types)', 'user-activity.v1'),
  KAFKA_TOPIC_PARTITIONS: int('partitions when the consumer has to create the topic', 6, 1, 10_000),
  KAFKA_REPLICATION_FACTOR: int(
    'replication factor when the consumer creates its topics (3 on a 3-broker cluster)',
    1,
    1,
    10,
  ),
  KAFKA_DLQ_TOPIC: str('dead-letter topic for poison messages', 'user-activity.v1.dlq'),
  KAFKA_GROUP_ID: str('consumer group id', 'activity-consumer'),
  KAFKA_CLIENT_ID: str('Kafka client id', 'activity-consumer'),
  KAFKA_SESSION_TIMEOUT_MS: int('group session timeout', 30_000, 6_000, 300_000),
  KAFKA_HEARTBEAT_INTERVAL_MS: int('group heartbeat interval', 3_000, 100, 60_000),
  CLICKHOUSE_URL: url('ClickHouse HTTP URL', 'http://127.0.0.1:8123'),
  CLICKHOUSE_DATABASE: str('ClickHouse database with the ingest tables', 'analytics'),
  CLICKHOUSE_USER: str('ClickHouse user', 'default'),
  CLICKHOUSE_PASSWORD: secret(str('ClickHouse password', '')),
  CLICKHOUSE_REQUEST_TIMEOUT_MS: int('timeout of one ClickHouse request', 30_000, 1_000, 600_000),
  CLICKHOUSE_RETRY_INITIAL_MS: int('first retry delay after a failed insert', 200, 1, 60_000),
  CLICKHOUSE_RETRY_MAX_MS: int('cap of the exponential retry delay', 10_000, 1, 600_000),
  BATCH_MAX_ROWS: int('rows that make a batch due', 10_000, 1, 1_000_000),
  BATCH_MAX_BYTES: int('Kafka payload bytes that make a batch due', 4_194_304, 1_024),
  FETCH_MAX_BYTES: int(
    'Kafka bytes one fetch brings (all partitions, compressed as stored): the consumer memory lever, and several batches, so one is prepared while another is written (docs/SCALING.md "Memory")',
    12_582_912,
    1_024,
  ),
  FLUSH_INTERVAL_MS: int('a batch is due this long after its first row', 1_000, 0, 60_000),
  FLUSH_IDLE_MS: int(
    'a batch is due this long after its first row once the fetch reached the end of the partitions (at most FLUSH_INTERVAL_MS)',
    250,
    0,
    60_000,
  ),
  PARTITIONS_CONCURRENCY: int('partition batches handled at once (>= partitions per member)', 64, 1, 1_024),
  CACHE_MAX_ENTRIES: int('entries of each identity/profile/actor-day cache', 200_000, 1),
  CACHE_MAX_BYTES: int(
    "estimated heap bytes of each identity/profile/actor-day cache (a profile's traits can be as long as an event)",
    67_108_864,
    65_536,
  ),
  CACHE_NEGATIVE_TTL_MS: int('how long "no identity/profile in ClickHouse" is trusted', 60_000, 0),
  CONTEXT_REFRESH_INTERVAL_MS: int(
    'how often, at most, identifies written by other group members are read (their delay bound)',
    5_000,
    100,
    600_000,
  ),
  LAG_REFRESH_INTERVAL_MS: int(
    'how often lag is read from Kafka (high watermark - committed)',
    5_000,
    100,
    60_000,
  ),
  STUCK_PARTITION_MS: int(
    '/readyz is 503 while an owned partition has lag and its committed offset has not moved this long',
    120_000,
    1_000,
  ),
  CONSUMER_HTTP_PORT: int('port of /healthz /readyz /metrics', 9464, 0, 65_535),
  CONSUMER_HTTP_HOST: str('address of /healthz /readyz /metrics (0.0.0.0 in a container)', '127.0.0.1'),
  SHUTDOWN_TIMEOUT_MS: int('hard deadline of a graceful shutdown', 30_000, 1_000),
  MIGRATE_ON_START: bool('run the migrations (services/lib/datamodel/migrate.ts) before consuming', false),
  CLICKHOUSE_CLUSTER: identifier(
    'with MIGRATE_ON_START: migrate in cluster mode on this remote_servers cluster (clickhouse/CLUSTER.md); empty = one node',
    '',
  ),
  LOG_LEVEL: oneOf(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const,
    'log level',
    'info',
  ),
};

export type ConsumerConfig = ConfigOf<typeof consumerSpec>;
