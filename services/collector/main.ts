/**
 * Composition root: reads the environment once, builds Kafka, the geo database and the app,
 * installs signal handlers and listens. Shutdown order: readiness off, stop accepting and finish
 * in-flight requests (each waits for its acks), flush the producer, exit 0 within the deadline.
 */
import { AvroCodec } from '../lib/avro.ts';
import { ConfigError } from '../lib/errors.ts';
import { createKafka } from '../lib/kafka.ts';
import { BatchingProducer } from '../lib/kafka-producer.ts';
import { createLogger } from '../lib/logger.ts';
import { createShutdown, installSignalHandlers } from '../lib/shutdown.ts';
import { buildApp } from './app.ts';
import { type CollectorConfig, readCollectorConfig } from './config.ts';
import { defaultGeoFiles, openGeo } from './enrichment/geo.ts';
import { PublishAdmission } from './http/admission.ts';
import { createCollectorMetrics, producerMetrics } from './metrics.ts';

function loadConfig(): CollectorConfig {
  try {
    return readCollectorConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      // One line per bad value, before any logger exists: this is the operator's whole fix list.
      process.stderr.write(`collector: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

const config = loadConfig();
const logger = createLogger('collector', config.LOG_LEVEL);
const metrics = createCollectorMetrics();
const kafka = createKafka({
  brokers: config.KAFKA_BROKERS,
  clientId: config.KAFKA_CLIENT_ID,
  logger,
  retries: config.KAFKA_RETRIES,
});
const admission = new PublishAdmission({
  targetMs: config.MAX_PUBLISH_BACKLOG_MS,
  intervalMs: config.PUBLISH_BACKLOG_INTERVAL_MS,
});
const producer = new BatchingProducer({
  kafka,
  topic: config.KAFKA_TOPIC,
  partitions: config.KAFKA_TOPIC_PARTITIONS,
  replicationFactor: config.KAFKA_REPLICATION_FACTOR,
  logger,
  maxSendBytes: config.KAFKA_MAX_SEND_BYTES,
  maxQueuedBytes: config.KAFKA_MAX_QUEUED_BYTES,
  publishTimeoutMs: config.KAFKA_PUBLISH_TIMEOUT_MS,
  compression: config.KAFKA_COMPRESSION,
  idempotent: config.KAFKA_IDEMPOTENT,
  metrics: producerMetrics(metrics),
});

let shuttingDown = false;
const app = await buildApp({
  config,
  logger,
  codec: new AvroCodec(),
  sink: producer,
  geo: config.GEOIP_ENABLED ? await openGeo(defaultGeoFiles()) : undefined,
  metrics,
  isShuttingDown: () => shuttingDown,
  admission,
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
    {
      name: 'http: stop accepting, finish in-flight requests',
      run: async () => {
        await app.close();
        logger.info('http closed');
      },
    },
    {
      name: 'kafka: flush and disconnect',
      run: async () => {
        await producer.close();
        logger.info('kafka producer closed');
      },
    },
  ],
});
installSignalHandlers(shutdown, logger);

await producer.start();
await app.listen({ port: config.PORT, host: config.HOST });
logger.info({ topic: config.KAFKA_TOPIC, writeKeys: config.WRITE_KEYS.size }, 'collector ready');
