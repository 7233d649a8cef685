/**
 * Composition root of the consumer: the only place that reads the environment, builds clients,
 * installs signal handlers and listens. `node services/consumer/main.ts` runs it standalone.
 *
 * Shutdown order (SIGTERM/SIGINT): readiness off -> flush what is buffered and stop fetching
 * (in-flight handlers commit after their flush) -> leave the group -> stop reading lag (admin
 * client) -> close the DLQ producer, the ClickHouse client and the HTTP port -> exit 0, or exit 1
 * past SHUTDOWN_TIMEOUT_MS (nothing unwritten is ever committed, so a forced exit only means
 * re-delivery).
 */
import { migrate } from '../../clickhouse/migrate.ts';
import { AvroCodec } from '../lib/avro.ts';
import { type ClickHouseClient, createClickHouse, rowInserter } from '../lib/clickhouse.ts';
import { configOrExit, readConfig } from '../lib/config.ts';
import { CONSUMER_ERRORS } from '../lib/error-codes.ts';
import { PipelineError } from '../lib/errors.ts';
import { createKafka, ensureTopics, groupOffsets } from '../lib/kafka.ts';
import { createGroupConsumer } from '../lib/kafka-consumer.ts';
import { createLogger, type Logger } from '../lib/logger.ts';
import { buildOpsHttp } from '../lib/ops-http.ts';
import { createShutdown, installSignalHandlers } from '../lib/shutdown.ts';
import { type ConsumerConfig, consumerSpec } from './config.ts';
import { createDeadLetterQueue, type DeadLetterQueue } from './dlq.ts';
import { clickhouseLookup } from './lookups.ts';
import { createConsumerMetrics } from './metrics.ts';
import { Pipeline } from './pipeline.ts';
import { UserContext } from './profiles.ts';
import { PartitionProgress } from './progress.ts';
import { retrier } from './retry.ts';
import { ingestColumns, schemaProblems } from './schema.ts';
import { type RetryPolicy, Sink } from './sink.ts';

/** Creates the database and applies the migrations (MIGRATE_ON_START=true only). */
async function migrateOnStart(c: ConsumerConfig, logger: Logger): Promise<void> {
  const admin = createClickHouse({
    url: c.CLICKHOUSE_URL,
    username: c.CLICKHOUSE_USER,
    password: c.CLICKHOUSE_PASSWORD,
  });
  await admin.command({ query: `CREATE DATABASE IF NOT EXISTS ${c.CLICKHOUSE_DATABASE}` });
  await admin.close();
  const client = createClickHouse({
    url: c.CLICKHOUSE_URL,
    database: c.CLICKHOUSE_DATABASE,
    username: c.CLICKHOUSE_USER,
    password: c.CLICKHOUSE_PASSWORD,
    logger,
  });
  await migrate({ client, database: c.CLICKHOUSE_DATABASE, logger });
  await client.close();
}

/** Throws (retriable) until the tables have every column the consumer writes and reads (schema.ts). */
async function checkSchema(client: ClickHouseClient): Promise<void> {
  const problems = await schemaProblems(client);
  if (problems.length > 0) {
    throw new PipelineError(
      'CONSUMER_SCHEMA_OUTDATED',
      `ClickHouse does not match this consumer: ${problems.join('; ')} (run the migrations: npm run migrate)`,
      { retriable: true },
    );
  }
}

async function main(): Promise<void> {
  const c = configOrExit('consumer', () => readConfig(consumerSpec, process.env));
  const logger = createLogger('consumer', c.LOG_LEVEL);
  const metrics = createConsumerMetrics();
  const abort = new AbortController();
  const retry: RetryPolicy = { initialMs: c.CLICKHOUSE_RETRY_INITIAL_MS, maxMs: c.CLICKHOUSE_RETRY_MAX_MS };
  const retrying = retrier(logger, retry, abort.signal);
  let ready = false;
  // Dead-letter sends being retried right now: while any is, the partitions they hold cannot commit.
  let deadLetterSendsFailing = 0;
  let fatal: Error | undefined;
  // Built once ClickHouse and Kafka answer; shutdown and the HTTP port may run before that.
  let pipeline: Pipeline | undefined;
  let dlq: DeadLetterQueue | undefined;

  const kafka = createKafka({ brokers: c.KAFKA_BROKERS, clientId: c.KAFKA_CLIENT_ID, logger });
  const clickhouse = createClickHouse({
    url: c.CLICKHOUSE_URL,
    database: c.CLICKHOUSE_DATABASE,
    username: c.CLICKHOUSE_USER,
    password: c.CLICKHOUSE_PASSWORD,
    requestTimeoutMs: c.CLICKHOUSE_REQUEST_TIMEOUT_MS,
    application: 'activity-consumer',
    logger,
  });

  // Identity and profile context; its look-ups wait in the pipeline's retry like an insert does.
  const lookup = clickhouseLookup(clickhouse, { insertVisibleWithinMs: c.CLICKHOUSE_REQUEST_TIMEOUT_MS });
  const timed =
    <A extends unknown[], R>(kind: string, f: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      metrics.lookups.inc({ kind });
      const end = metrics.lookupSeconds.startTimer({ kind });
      try {
        return await f(...a);
      } finally {
        end();
      }
    };
  const context = new UserContext({
    lookup: {
      identities: timed('identity', lookup.identities),
      profiles: timed('profile', lookup.profiles),
      knownAll: timed('known_all', lookup.knownAll),
      knownSince: timed('known_since', lookup.knownSince),
    },
    maxEntries: c.CACHE_MAX_ENTRIES,
    negativeTtlMs: c.CACHE_NEGATIVE_TTL_MS,
    refreshIntervalMs: c.CONTEXT_REFRESH_INTERVAL_MS,
  });
  metrics.watchKnownIds(() => context.knownSizes());

  const progress = new PartitionProgress();
  metrics.watchPartitions(() => progress.states());
  // Lag read from Kafka on a timer, not only after commits: a wedged partition commits nothing.
  const admin = kafka.admin();
  let lagTimer: NodeJS.Timeout | undefined;
  let refreshing = false;
  const refreshLag = async (): Promise<void> => {
    if (refreshing) return;
    refreshing = true;
    try {
      for (const o of await groupOffsets(admin, c.KAFKA_GROUP_ID, c.KAFKA_TOPIC)) {
        progress.observe(o.partition, o.high, o.committed);
      }
    } catch (err) {
      logger.warn({ err }, 'reading lag from Kafka failed; stalled time keeps counting');
    } finally {
      refreshing = false;
    }
  };

  const consumer = createGroupConsumer({
    kafka,
    groupId: c.KAFKA_GROUP_ID,
    topic: c.KAFKA_TOPIC,
    logger,
    sessionTimeoutMs: c.KAFKA_SESSION_TIMEOUT_MS,
    heartbeatIntervalMs: c.KAFKA_HEARTBEAT_INTERVAL_MS,
    maxWaitTimeMs: c.FLUSH_INTERVAL_MS,
    minBytes: 1,
    maxBytes: c.FETCH_MAX_BYTES,
    concurrency: c.PARTITIONS_CONCURRENCY,
    onAssignment: (partitions) => {
      progress.assign(partitions);
      context.reloadKnown();
    },
    onFatal: (err) => {
      fatal = err;
      logger.fatal({ err }, 'Kafka consumer stopped for good; exiting');
      void shutdown.run('kafka consumer crashed');
    },
  });

  // Backpressure: no new fetches while ClickHouse refuses; buffered data stays at about one batch.
  const backpressure = {
    onRetrying: () => {
      consumer.pause();
      metrics.fetchPaused.set(1);
    },
    onRecovered: () => {
      consumer.resume();
      metrics.fetchPaused.set(0);
    },
  };
  const sink = new Sink({
    insert: rowInserter(clickhouse),
    columnsOf: ingestColumns,
    checkSchema: (table) => schemaProblems(clickhouse, [table]),
    logger,
    retry,
    signal: abort.signal,
    events: {
      onInsert: (table, rows, seconds) => {
        metrics.rowsWritten.inc({ table }, rows);
        metrics.insertSeconds.observe({ table }, seconds);
      },
      onError: (table, code) => metrics.insertErrors.inc({ table, code }),
      onRetrying: (table) => {
        metrics.insertRetries.inc({ table });
        backpressure.onRetrying();
      },
      onRecovered: () => backpressure.onRecovered(),
    },
  });

  const http = await buildOpsHttp({
    service: 'consumer',
    logger,
    registry: metrics.registry,
    errors: CONSUMER_ERRORS,
    isShuttingDown: () => shutdown.isShuttingDown(),
    health: () => (fatal === undefined ? { ok: true } : { ok: false, reason: fatal.message }),
    readiness: () => {
      const stuck = progress.stuck(c.STUCK_PARTITION_MS);
      const detail = {
        partitions: consumer.assignment(),
        stuck,
        paused: consumer.isPaused(),
        deadLetterFailing: deadLetterSendsFailing > 0,
        buffered: pipeline?.buffered(),
      };
      const ok = ready && !consumer.isPaused() && deadLetterSendsFailing === 0 && stuck.length === 0;
      return { ok, detail };
    },
  });

  const shutdown = createShutdown({
    logger,
    deadlineMs: c.SHUTDOWN_TIMEOUT_MS,
    steps: [
      {
        name: 'drain',
        run: async () => {
          ready = false;
          if (pipeline === undefined) return;
          pipeline.drain();
          await consumer.stop();
          await pipeline.idle();
        },
      },
      {
        name: 'kafka admin',
        run: async () => {
          clearInterval(lagTimer);
          await admin.disconnect();
        },
      },
      { name: 'dlq', run: async () => dlq?.close() },
      {
        name: 'clickhouse',
        run: async () => {
          abort.abort();
          await clickhouse.close();
        },
      },
      { name: 'http', run: () => http.close() },
    ],
  });
  installSignalHandlers(shutdown, logger);

  await http.listen({ port: c.CONSUMER_HTTP_PORT, host: c.CONSUMER_HTTP_HOST });

  if (c.MIGRATE_ON_START) await retrying('migrations', () => migrateOnStart(c, logger));
  await retrying('schema check', () => checkSchema(clickhouse));

  await admin.connect();
  await ensureTopics(admin, [
    { topic: c.KAFKA_TOPIC, partitions: c.KAFKA_TOPIC_PARTITIONS },
    { topic: c.KAFKA_DLQ_TOPIC, partitions: c.KAFKA_TOPIC_PARTITIONS },
  ]);

  dlq = await createDeadLetterQueue({
    kafka,
    topic: c.KAFKA_DLQ_TOPIC,
    logger,
    onSent: (reason, count) => metrics.dlqMessages.inc({ reason }, count),
  });
  pipeline = new Pipeline({
    codec: new AvroCodec(),
    sink,
    dlq,
    context,
    limits: { maxRows: c.BATCH_MAX_ROWS, maxBytes: c.BATCH_MAX_BYTES, maxAgeMs: c.FLUSH_INTERVAL_MS },
    logger,
    metrics,
    progress,
    heartbeatEveryMs: Math.max(100, Math.floor(c.KAFKA_HEARTBEAT_INTERVAL_MS / 2)),
    retryLookup: retrier(logger, retry, abort.signal, {
      ...backpressure,
      // A hung or down ClickHouse can show first in the look-up, before any insert fails.
      onAttemptFailed: (code) => metrics.lookupFailures.inc({ code }),
    }),
    retryDeadLetters: retrier(logger, retry, abort.signal, {
      onRetrying: () => {
        deadLetterSendsFailing += 1;
        metrics.dlqSendsFailing.set(deadLetterSendsFailing);
      },
      onRecovered: () => {
        deadLetterSendsFailing -= 1;
        metrics.dlqSendsFailing.set(deadLetterSendsFailing);
      },
    }),
  });
  await consumer.start(pipeline.handle);
  lagTimer = setInterval(() => void refreshLag(), c.LAG_REFRESH_INTERVAL_MS);
  ready = true;
  logger.info(
    {
      topic: c.KAFKA_TOPIC,
      groupId: c.KAFKA_GROUP_ID,
      database: c.CLICKHOUSE_DATABASE,
      httpPort: c.CONSUMER_HTTP_PORT,
    },
    'consumer started',
  );
}

main().catch((err: unknown) => {
  createLogger('consumer').fatal({ err }, 'consumer failed to start');
  process.exit(1);
});
