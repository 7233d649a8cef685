/**
 * Composition root of the query service: reads config, finds the built dashboard, builds the
 * read-only ClickHouse client and the app, installs signal handlers and listens. Nothing else reads
 * the environment.
 */

import { createClickHouse } from '../lib/clickhouse.ts';
import { configOrExit } from '../lib/config.ts';
import { clusterTarget } from '../lib/datamodel/cluster.ts';
import { createLogger } from '../lib/logger.ts';
import { createRegistry } from '../lib/metrics.ts';
import { createShutdown, installSignalHandlers } from '../lib/shutdown.ts';
import { buildApp } from './app.ts';
import { createClickHouseStore } from './clickhouse-store.ts';
import { readQueryConfig } from './config.ts';
import { builtDashboard, DASHBOARD_DIST_DIR } from './dashboard/dist.ts';
import { deleteUser } from './delete-user.ts';

const { config, dashboardDir, cluster } = configOrExit('query', () => {
  const config = readQueryConfig(process.env);
  return {
    config,
    dashboardDir: builtDashboard(config.QUERY_DASHBOARD_DIR || DASHBOARD_DIST_DIR),
    cluster: clusterTarget(config.CLICKHOUSE_CLUSTER, config.CLICKHOUSE_DATABASE),
  };
});

const logger = createLogger('query', config.LOG_LEVEL);
// No per-query settings are sent: a readonly=1 user may not change them, and its profile already
// carries the limits (max_execution_time, max_memory_usage, max_rows_to_read).
const clickhouse = createClickHouse({
  url: config.CLICKHOUSE_URL,
  database: config.CLICKHOUSE_DATABASE,
  username: config.CLICKHOUSE_USER,
  password: config.CLICKHOUSE_PASSWORD,
  requestTimeoutMs: config.CLICKHOUSE_TIMEOUT_MS,
  application: 'query',
  logger,
});

// A writer client only for the admin route: the API itself reads as the read-only user.
const adminClient =
  config.QUERY_ADMIN_TOKENS.length > 0
    ? createClickHouse({
        url: config.CLICKHOUSE_URL,
        database: config.CLICKHOUSE_DATABASE,
        username: config.CLICKHOUSE_ADMIN_USER,
        password: config.CLICKHOUSE_ADMIN_PASSWORD,
        // A deletion waits for its mutations and rebuilds months of rollups.
        requestTimeoutMs: 300_000,
        application: 'query-admin',
        logger,
      })
    : undefined;

let shuttingDown = false;
const app = await buildApp({
  logger,
  store: createClickHouseStore(clickhouse, {
    maxGroups: config.QUERY_MAX_GROUPS,
    cacheDays: config.QUERY_CACHE_DAYS,
  }),
  registry: createRegistry('query'),
  limits: { maxRangeDays: config.QUERY_MAX_RANGE_DAYS },
  tokens: config.QUERY_TOKENS,
  rateLimitPerMinute: config.QUERY_RATE_LIMIT_PER_MINUTE,
  requestTimeoutMs: config.REQUEST_TIMEOUT_MS,
  clickhouseTimeoutMs: config.CLICKHOUSE_TIMEOUT_MS,
  ...(adminClient
    ? {
        admin: {
          tokens: config.QUERY_ADMIN_TOKENS,
          deleteUser: (userId: string, requestedBy: string) =>
            deleteUser({ client: adminClient, userId, requestedBy, logger, ...(cluster ? { cluster } : {}) }),
        },
      }
    : {}),
  dashboardDir,
  isShuttingDown: () => shuttingDown,
});

const shutdown = createShutdown({
  logger,
  deadlineMs: config.SHUTDOWN_DEADLINE_MS,
  steps: [
    {
      name: 'readiness off',
      run: async () => {
        shuttingDown = true;
      },
    },
    // Finishes in-flight requests, then stops listening.
    { name: 'http', run: () => app.close() },
    { name: 'clickhouse', run: () => clickhouse.close() },
    { name: 'clickhouse (admin)', run: async () => adminClient?.close() },
  ],
});
installSignalHandlers(shutdown, logger);

await app.listen({ host: config.HOST, port: config.PORT });
logger.info(
  {
    database: config.CLICKHOUSE_DATABASE,
    user: config.CLICKHOUSE_USER,
    auth: config.QUERY_TOKENS.length > 0 ? 'bearer' : 'open',
  },
  'query service ready',
);
