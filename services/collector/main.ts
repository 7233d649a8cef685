/**
 * Composition root: reads the environment once, builds Kafka, the geo database and the app,
 * installs signal handlers and listens. Shutdown order: readiness off, stop accepting and finish
 * in-flight requests (each waits for its acks), flush the producer, exit 0 within the deadline.
 */
import { watchFile } from 'node:fs';
import { AvroCodec } from '../lib/avro.ts';
import { ConfigError, configOrExit } from '../lib/config.ts';
import { createKafka } from '../lib/kafka.ts';
import { BatchingProducer } from '../lib/kafka-producer.ts';
import { createLogger } from '../lib/logger.ts';
import { createShutdown, installSignalHandlers } from '../lib/shutdown.ts';
import { buildApp } from './app.ts';
import { type CollectorConfig, exposureProblems, readCollectorConfig } from './config.ts';
import { geoFiles, openGeo } from './enrichment/geo.ts';
import { PublishAdmission } from './http/admission.ts';
import { WriteKeys } from './http/write-keys.ts';
import { createCollectorMetrics, producerMetrics } from './metrics.ts';

function loadConfig(): { config: CollectorConfig; writeKeys: WriteKeys } {
  const config = readCollectorConfig(process.env);
  let writeKeys: WriteKeys;
  try {
    writeKeys = new WriteKeys({ fromEnv: config.WRITE_KEYS, file: config.WRITE_KEYS_FILE });
  } catch (err) {
    throw new ConfigError([`WRITE_KEYS_FILE: ${(err as Error).message}`]);
  }
  const exposed = exposureProblems(config, writeKeys);
  if (exposed.length > 0) throw new ConfigError(exposed);
  return { config, writeKeys };
}

const { config, writeKeys } = configOrExit('collector', loadConfig);
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
  lanes: config.KAFKA_PRODUCER_LANES,
  metrics: producerMetrics(metrics),
});

let shuttingDown = false;
const app = await buildApp({
  config,
  logger,
  codec: new AvroCodec(),
  sink: producer,
  geo: config.GEOIP_ENABLED ? await openGeo(geoFiles(config.GEO_DATABASE)) : undefined,
  metrics,
  isShuttingDown: () => shuttingDown,
  admission,
  writeKeys,
});

// Key rotation without a restart: the file is read again on SIGHUP and when it changes (polled,
// which also works on the volume mounts where inotify does not). A file that does not parse keeps
// the keys in use and says why, without any key in the message.
if (config.WRITE_KEYS_FILE !== '') {
  const reload = (why: string): void => {
    const r = writeKeys.reload();
    if (r.ok) logger.info({ why, writeKeys: r.keys }, 'write keys reloaded');
    else logger.error({ why, reason: r.error }, 'write keys file not reloaded; the keys in use stay');
  };
  process.on('SIGHUP', () => reload('SIGHUP'));
  watchFile(config.WRITE_KEYS_FILE, { interval: 2_000, persistent: false }, (now, before) => {
    if (now.mtimeMs !== before.mtimeMs) reload('file changed');
  });
}

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
logger.info({ topic: config.KAFKA_TOPIC, writeKeys: writeKeys.size }, 'collector ready');
