/**
 * Composition root of the refresher: reads config, builds the ClickHouse client, the refresher
 * loop and the ops HTTP port, installs signal handlers. `node services/refresher/main.ts` runs it.
 * Its own small process rather than a loop in the query service (read-only by design, and scaled
 * out) or in the consumer (one per partition group): one refresher per ClickHouse cluster is the
 * deployment, and its heavy queries are bounded apart from either service's work.
 */
import { createClickHouse } from '../lib/clickhouse.ts';
import { configOrExit } from '../lib/config.ts';
import { REFRESHER_ERRORS } from '../lib/error-codes.ts';
import { createKafka } from '../lib/kafka.ts';
import { createLease } from '../lib/kafka-lease.ts';
import { createLogger } from '../lib/logger.ts';
import { buildOpsHttp } from '../lib/ops-http.ts';
import { createShutdown, installSignalHandlers } from '../lib/shutdown.ts';
import { readRefresherConfig } from './config.ts';
import { createRefresherMetrics } from './metrics.ts';
import { querySettings, Refresher } from './refresher.ts';

const c = configOrExit('refresher', () => readRefresherConfig(process.env));

const logger = createLogger('refresher', c.LOG_LEVEL);
const metrics = createRefresherMetrics();
const client = createClickHouse({
  url: c.CLICKHOUSE_URL,
  database: c.CLICKHOUSE_DATABASE,
  username: c.CLICKHOUSE_USER,
  password: c.CLICKHOUSE_PASSWORD,
  requestTimeoutMs: c.CLICKHOUSE_REQUEST_TIMEOUT_MS,
  application: 'refresher',
  logger,
});
// One refresher per cluster computes: the one holding the lease (docs/KAFKA.md, "Refresher lease").
const lease = createLease({
  kafka: createKafka({ brokers: c.KAFKA_BROKERS, clientId: c.KAFKA_CLIENT_ID, logger }),
  topic: c.KAFKA_LEASE_TOPIC,
  groupId: c.KAFKA_LEASE_GROUP_ID,
  replicationFactor: c.KAFKA_REPLICATION_FACTOR,
  sessionTimeoutMs: c.KAFKA_SESSION_TIMEOUT_MS,
  heartbeatIntervalMs: c.KAFKA_HEARTBEAT_INTERVAL_MS,
  logger,
  onChange: (leader) => metrics.leader.set(leader ? 1 : 0),
});
const refresher = new Refresher({
  mayRun: lease.isLeader,
  client,
  timeZones: c.timeZones,
  settleMs: c.REFRESH_SETTLE_SECONDS * 1000,
  runDays: c.REFRESH_RUN_DAYS,
  maxDaysPerPass: c.REFRESH_MAX_DAYS_PER_PASS,
  intervalMs: c.REFRESH_INTERVAL_MS,
  settings: querySettings({ maxThreads: c.REFRESH_MAX_THREADS, spillBytes: c.REFRESH_SPILL_BYTES }),
  metrics,
  logger,
});
let shuttingDown = false;
const http = await buildOpsHttp({
  service: 'refresher',
  logger,
  registry: metrics.registry,
  errors: REFRESHER_ERRORS,
  readiness: () => refresher.status(),
  isShuttingDown: () => shuttingDown,
});
const shutdown = createShutdown({
  logger,
  deadlineMs: c.SHUTDOWN_TIMEOUT_MS,
  steps: [
    {
      name: 'stop refreshing',
      run: async () => {
        shuttingDown = true;
        await refresher.stop();
      },
    },
    { name: 'release the lease', run: () => lease.stop() },
    { name: 'close http', run: () => http.close() },
    { name: 'close clickhouse', run: () => client.close() },
  ],
});
installSignalHandlers(shutdown, logger);
await http.listen({ port: c.REFRESHER_HTTP_PORT, host: c.REFRESHER_HTTP_HOST });
await lease.start();
refresher.start();
logger.info({ timeZones: c.timeZones, httpPort: c.REFRESHER_HTTP_PORT }, 'refresher started');
