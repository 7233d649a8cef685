/**
 * The refresher's configuration: one spec, read once in main.ts, every bad value reported at once.
 * It writes (finished numbers), so it connects as a user that may insert: the consumer's. Kafka
 * holds only its lease (one refresher per cluster computes; the others stand by).
 */
import { ConfigError, type ConfigOf, int, list, oneOf, readConfig, secret, str, url } from '../lib/config.ts';
import { canonicalTimeZone } from '../lib/finished-days.ts';

export const refresherSpec = {
  CLICKHOUSE_URL: url('ClickHouse HTTP URL', 'http://127.0.0.1:8123'),
  CLICKHOUSE_DATABASE: str('ClickHouse database with the facts', 'analytics'),
  CLICKHOUSE_USER: str('ClickHouse user that may insert', 'default'),
  CLICKHOUSE_PASSWORD: secret(str('ClickHouse password', '')),
  CLICKHOUSE_REQUEST_TIMEOUT_MS: int('timeout of one ClickHouse query', 300_000, 1_000, 3_600_000),
  REFRESH_TIME_ZONES: list('reporting time zones with finished numbers (IANA names, comma-separated)', [
    'UTC',
  ]),
  REFRESH_INTERVAL_MS: int('pause between passes when nothing is pending', 10_000, 100, 3_600_000),
  REFRESH_SETTLE_SECONDS: int(
    'a mark is trusted (its insert has ended) after this; longer than the longest insert',
    60,
    0,
    3_600,
  ),
  REFRESH_RUN_DAYS: int('consecutive days computed by one query (bounds its memory)', 7, 1, 31),
  REFRESH_MAX_DAYS_PER_PASS: int('days computed per pass before the state is read again', 31, 1, 400),
  REFRESH_MAX_THREADS: int(
    'ClickHouse max_threads of each refresher query (ingestion keeps the rest)',
    1,
    1,
    64,
  ),
  REFRESH_SPILL_BYTES: int(
    'sorts and aggregations of a refresher query past this many bytes spill to disk (bounds its memory)',
    1_073_741_824,
    16_777_216,
  ),
  KAFKA_BROKERS: list('Kafka bootstrap brokers for the lease, host:port,...', ['127.0.0.1:9092']),
  KAFKA_CLIENT_ID: str('Kafka client id', 'refresher'),
  KAFKA_LEASE_TOPIC: str(
    'one-partition topic whose group decides which refresher runs passes',
    'refresher-lease',
  ),
  KAFKA_LEASE_GROUP_ID: str('consumer group of the refreshers of one ClickHouse cluster', 'refresher-lease'),
  KAFKA_REPLICATION_FACTOR: int(
    'replication factor when the refresher creates the lease topic (3 on a 3-broker cluster)',
    1,
    1,
    10,
  ),
  KAFKA_SESSION_TIMEOUT_MS: int(
    'a refresher that dies holding the lease is replaced after this (the group session timeout)',
    10_000,
    1_000,
    300_000,
  ),
  KAFKA_HEARTBEAT_INTERVAL_MS: int(
    'lease heartbeat interval (well below the session timeout)',
    1_000,
    100,
    60_000,
  ),
  REFRESHER_HTTP_PORT: int('port of /healthz /readyz /metrics', 9465, 0, 65_535),
  REFRESHER_HTTP_HOST: str('address of /healthz /readyz /metrics (0.0.0.0 in a container)', '127.0.0.1'),
  SHUTDOWN_TIMEOUT_MS: int('hard deadline of a graceful shutdown', 30_000, 1_000),
  LOG_LEVEL: oneOf(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const,
    'log level',
    'info',
  ),
};

export type RefresherConfig = ConfigOf<typeof refresherSpec> & { readonly timeZones: readonly string[] };

export function readRefresherConfig(env: Readonly<Record<string, string | undefined>>): RefresherConfig {
  const c = readConfig(refresherSpec, env);
  const timeZones: string[] = [];
  const problems: string[] = [];
  for (const tz of c.REFRESH_TIME_ZONES) {
    const canonical = canonicalTimeZone(tz);
    if (canonical === undefined)
      problems.push(`REFRESH_TIME_ZONES: ${JSON.stringify(tz)} is not an IANA time zone`);
    else if (!timeZones.includes(canonical)) timeZones.push(canonical);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { ...c, timeZones };
}
