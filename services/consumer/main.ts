/**
 * Composition root of the consumer: reads the environment, connects the real Kafka and ClickHouse,
 * builds the consumer (consumer.ts) and its HTTP port, installs signal handlers and starts.
 *
 * Shutdown order (SIGTERM/SIGINT): readiness off -> flush what is buffered and stop fetching
 * (in-flight handlers commit after their flush) -> leave the group -> close the DLQ producer and the
 * clients -> close the HTTP port -> exit 0, or exit 1 past SHUTDOWN_TIMEOUT_MS.
 */
import { configOrExit, readConfig } from '../lib/config.ts';
import { CONSUMER_ERRORS } from '../lib/error-codes.ts';
import { createLogger } from '../lib/logger.ts';
import { buildOpsHttp } from '../lib/ops-http.ts';
import { createShutdown, installSignalHandlers } from '../lib/shutdown.ts';
import { consumerSpec } from './config.ts';
import { buildConsumer, connect } from './consumer.ts';

const c = configOrExit('consumer', () => readConfig(consumerSpec, process.env));
const logger = createLogger('consumer', c.LOG_LEVEL);
const consumer = buildConsumer({
  config: c,
  logger,
  boundary: connect(c, logger),
  onFatal: () => void shutdown.run('kafka consumer crashed'),
});
const http = await buildOpsHttp({
  service: 'consumer',
  logger,
  registry: consumer.metrics.registry,
  errors: CONSUMER_ERRORS,
  health: consumer.health,
  readiness: consumer.readiness,
  isShuttingDown: () => shutdown.isShuttingDown(),
});
const shutdown = createShutdown({
  logger,
  deadlineMs: c.SHUTDOWN_TIMEOUT_MS,
  steps: [...consumer.stopSteps, { name: 'http', run: () => http.close() }],
});
installSignalHandlers(shutdown, logger);

await http.listen({ port: c.CONSUMER_HTTP_PORT, host: c.CONSUMER_HTTP_HOST });
try {
  await consumer.start();
  logger.info(
    {
      topic: c.KAFKA_TOPIC,
      groupId: c.KAFKA_GROUP_ID,
      database: c.CLICKHOUSE_DATABASE,
      httpPort: c.CONSUMER_HTTP_PORT,
    },
    'consumer started',
  );
} catch (err) {
  // Aborted by a shutdown that came during the start-up waits: the shutdown exits.
  if (!shutdown.isShuttingDown()) {
    logger.fatal({ err }, 'consumer failed to start');
    process.exit(1);
  }
}
